package server

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

// PathADEDeviceIdentities is the admin route that issues a virtual device
// an identity from the mock Apple device CA.
const PathADEDeviceIdentities = "/v1/ade/device-identities"

// Device identity validity: a day by default (an activation takes
// seconds), at most a year.
const (
	defaultDeviceIdentityValidity = 24 * time.Hour
	maxDeviceIdentityValidity     = 365 * 24 * time.Hour
	maxDeviceIdentityRequest      = 4 << 10
)

// DeviceIdentityRequest is the body of POST /v1/ade/device-identities.
type DeviceIdentityRequest struct {
	SerialNumber string `json:"serial_number"`
	UDID         string `json:"udid"`
	// Validity is a Go duration ("24h"); empty for a day.
	Validity string `json:"validity,omitempty"`
}

// DeviceIdentity is its answer: the identity as PEM.
type DeviceIdentity struct {
	SerialNumber string    `json:"serial_number"`
	UDID         string    `json:"udid"`
	Certificate  string    `json:"certificate"`
	PrivateKey   string    `json:"private_key"`
	NotAfter     time.Time `json:"not_after"`
}

// serveDeviceIdentity issues an identity from the mock Apple device CA for
// a serial and UDID. It exists because a virtual device run outside the
// server's process (mockmdm scenario run -server, a test suite's own
// devices) must sign its ADE MachineInfo with an Apple-style identity that
// the server's strict verification accepts, and only the server holds the
// mock CA's key. Real Apple never offers this: a real device gets its
// identity at activation. The route is behind the API key.
func (s *Server) serveDeviceIdentity(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) { writeAPIError(w, err) }
	if s.pki.AppleDeviceCA == nil {
		fail(httperr.New(http.StatusConflict, "this server has no mock Apple device CA to issue identities from"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDeviceIdentityRequest))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(httperr.New(http.StatusRequestEntityTooLarge, "the request is larger than %d bytes; send {\"serial_number\", \"udid\"}", maxDeviceIdentityRequest))
			return
		}
		fail(httperr.Wrap(http.StatusBadRequest, err, "reading the request"))
		return
	}
	var req DeviceIdentityRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(httperr.Wrap(http.StatusBadRequest, err, "the body must be JSON {\"serial_number\": \"…\", \"udid\": \"…\", \"validity\": \"24h\"}: %v", err))
		return
	}
	req.SerialNumber, req.UDID = strings.TrimSpace(req.SerialNumber), strings.TrimSpace(req.UDID)
	if req.SerialNumber == "" || req.UDID == "" {
		fail(httperr.New(http.StatusBadRequest, "give both serial_number and udid: the identity names the device by them, as Apple's does"))
		return
	}
	if len(req.SerialNumber) > 64 || len(req.UDID) > 128 || strings.ContainsAny(req.SerialNumber+req.UDID, "\x00\r\n") {
		fail(httperr.New(http.StatusBadRequest, "serial_number (at most 64 characters) or udid (at most 128) is not a device identifier"))
		return
	}
	validity := defaultDeviceIdentityValidity
	if req.Validity != "" {
		d, err := time.ParseDuration(req.Validity)
		if err != nil || d <= 0 || d > maxDeviceIdentityValidity {
			fail(httperr.New(http.StatusBadRequest, "validity %q: give a positive duration up to %s, such as 24h", req.Validity, maxDeviceIdentityValidity))
			return
		}
		validity = d
	}
	cert, key, err := s.pki.AppleDeviceCA.IssueDevice(req.SerialNumber, req.UDID, validity)
	if err != nil {
		fail(httperr.Wrap(http.StatusInternalServerError, err, "issuing the device identity"))
		return
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		fail(httperr.Wrap(http.StatusInternalServerError, err, "encoding the device key"))
		return
	}
	out, _ := json.Marshal(DeviceIdentity{
		SerialNumber: req.SerialNumber, UDID: req.UDID, NotAfter: cert.NotAfter.UTC(),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		PrivateKey:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	})
	s.log.InfoContext(r.Context(), "issued a mock Apple device identity", "serial", req.SerialNumber, "udid", req.UDID, "not_after", cert.NotAfter)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}
