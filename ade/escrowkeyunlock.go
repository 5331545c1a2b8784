package ade

import (
	"context"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/micromdm/nanodep/albc"
)

// Apple's "escrow key unlock" turns off the organisation's Activation Lock
// on a device with a bypass code: an MDM server POSTs to
// https://deviceservices-external.apple.com/deviceservicesworkers/escrowKeyUnlock
// with serial, productType (and imei, imei2, meid for a cellular device)
// in the query, orgName, guid and escrowKey (the bypass code in its
// human-readable, dash-separated form) as a form body, authenticated by
// mutual TLS with its APNs push certificate. Apple's "Creating and Using
// Bypass Codes" describes it; NanoMDM v0.9.0's escrowkeyunlock package is
// the client the parameters were checked against, and every client seen
// treats 200 as unlocked and anything else as refused.
//
// Apple documents no error answers, so these are mockmdm's: 400 for a
// missing or malformed parameter, a bypass code that does not unlock the
// lock, or a device with no lock to turn off; 404 for a serial the
// organisation does not own. The check is the one Apple's page implies:
// the code's hash (the PBKDF2 derivation NanoDEP's albc package computes)
// must be the escrow key the server gave "Activation Lock a Device".

// EscrowKeyUnlockRequest is an "escrow key unlock" request's parameters.
type EscrowKeyUnlockRequest struct {
	// From the query.
	Serial, ProductType, IMEI, IMEI2, MEID string
	// From the form body.
	OrgName, GUID, EscrowKey string
}

// maxUnlockParam bounds each parameter: Apple states no limit, and none
// of them is long.
const maxUnlockParam = 256

// ParseEscrowKeyUnlock checks an "escrow key unlock" request's query and
// form: the required parameters present, each in its place, none repeated
// or too long.
func ParseEscrowKeyUnlock(query, form url.Values) (*EscrowKeyUnlockRequest, error) {
	var req EscrowKeyUnlockRequest
	fields := []struct {
		in       url.Values
		where    string
		name     string
		to       *string
		required bool
	}{
		{query, "query", "serial", &req.Serial, true},
		{query, "query", "productType", &req.ProductType, true},
		{query, "query", "imei", &req.IMEI, false},
		{query, "query", "imei2", &req.IMEI2, false},
		{query, "query", "meid", &req.MEID, false},
		{form, "form body", "orgName", &req.OrgName, true},
		{form, "form body", "guid", &req.GUID, true},
		{form, "form body", "escrowKey", &req.EscrowKey, true},
	}
	for _, f := range fields {
		vs := f.in[f.name]
		switch {
		case len(vs) > 1:
			return nil, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "%s is given %d times in the %s; give it once", f.name, len(vs), f.where)
		case len(vs) == 0 || strings.TrimSpace(vs[0]) == "":
			if f.required {
				return nil, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "%s is missing from the %s (escrow key unlock takes serial and productType in the query, orgName, guid and escrowKey in the form body)", f.name, f.where)
			}
			continue
		case len(vs[0]) > maxUnlockParam:
			return nil, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "%s is %d bytes long; at most %d", f.name, len(vs[0]), maxUnlockParam)
		}
		*f.to = vs[0]
	}
	// Parameters in the wrong place are a client bug worth naming.
	for _, name := range []string{"orgName", "guid", "escrowKey"} {
		if query.Has(name) {
			return nil, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "%s is in the query; it belongs in the form body", name)
		}
	}
	return &req, nil
}

// EscrowKeyUnlock turns off the organisation's lock on the device when the
// bypass code is the one whose hash the lock holds.
func (s *Service) EscrowKeyUnlock(ctx context.Context, req *EscrowKeyUnlockRequest) error {
	code, err := albc.NewFromCode(req.EscrowKey)
	if err != nil {
		return apiErr(http.StatusBadRequest, "INVALID_ESCROW_KEY", "escrowKey is not a bypass code in its human-readable form (%v): send the code itself, not its hash", err)
	}
	hash, err := code.Hash()
	if err != nil {
		return apiErr(http.StatusBadRequest, "INVALID_ESCROW_KEY", "escrowKey cannot be hashed: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.lookup(ctx, req.Serial)
	switch {
	case err != nil:
		return err
	case rec == nil:
		return apiErr(http.StatusNotFound, "NOT_FOUND", "the organisation does not own a device with serial %q", truncate(req.Serial, 70))
	case rec.Lock == nil:
		return apiErr(http.StatusBadRequest, "NOT_LOCKED", "device %s has no Activation Lock of the organisation's to turn off", rec.SerialNumber)
	case rec.Lock.EscrowKey == "":
		return apiErr(http.StatusBadRequest, "NO_ESCROW_KEY", "device %s was locked without an escrow key, so no bypass code unlocks it; turn the lock off in Apple Business Manager (DELETE /v1/ade/devices/%s/activation-lock)", rec.SerialNumber, rec.SerialNumber)
	case subtle.ConstantTimeCompare([]byte(strings.ToLower(rec.Lock.EscrowKey)), []byte(hash)) != 1:
		return apiErr(http.StatusBadRequest, "ESCROW_KEY_MISMATCH", "the bypass code does not unlock device %s: its hash is not the escrow key the lock was made with (try the device's own bypass code, as Apple's page advises)", rec.SerialNumber)
	}
	rec.Lock = nil
	return s.putJSON(ctx, KindDevice, rec.SerialNumber, rec)
}

// PathEscrowKeyUnlock is the path of Apple's "escrow key unlock" on its
// host (deviceservices-external.apple.com); mount it at the root, as Routes.
const PathEscrowKeyUnlock = "/deviceservicesworkers/escrowKeyUnlock"

// EscrowKeyUnlockRoutes is the mock of Apple's "escrow key unlock". auth
// decides whether the request comes from the MDM server: Apple
// authenticates it by mutual TLS with the server's APNs push certificate,
// which the caller holds.
func (s *Service) EscrowKeyUnlockRoutes(auth func(*http.Request) error) []Route {
	return []Route{{http.MethodPost, PathEscrowKeyUnlock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handleEscrowKeyUnlock(w, r, auth)
	})}}
}

func (s *Service) handleEscrowKeyUnlock(w http.ResponseWriter, r *http.Request, auth func(*http.Request) error) {
	rec := &recorder{ResponseWriter: w}
	var body []byte
	err := auth(r) // before any work: the bypass code's hash is costly
	if err == nil {
		if body, err = s.readBody(rec, r); err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				err = apiErr(http.StatusRequestEntityTooLarge, "REQUEST_ENTITY_TOO_LARGE", "the body is larger than %d bytes", s.maxBody)
			} else {
				err = apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "reading the body: %v", err)
			}
		}
	}
	if err == nil {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
			err = apiErr(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type is %q; escrow key unlock takes a form body (application/x-www-form-urlencoded)", truncate(r.Header.Get("Content-Type"), 80))
		}
	}
	var form url.Values
	if err == nil {
		if form, err = url.ParseQuery(string(body)); err != nil {
			err = apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "the form body does not parse: %v", err)
		}
	}
	var req *EscrowKeyUnlockRequest
	if err == nil {
		req, err = ParseEscrowKeyUnlock(r.URL.Query(), form)
	}
	if err == nil {
		err = s.EscrowKeyUnlock(r.Context(), req)
	}
	note := ""
	if err != nil {
		note = s.writeErr(rec, err)
	} else {
		rec.WriteHeader(http.StatusOK)
		note = "unlocked " + req.Serial
	}
	s.record(r.Context(), "ade", "escrow-key-unlock", r, redactedForm(body), rec, note)
}

// redactedForm is a form body as the transcript keeps it: the bypass code
// unlocks the device, so escrowKey is replaced, however the client encoded
// its name; a body that does not parse as a form is not kept at all, as it
// might hold the code in a form this cannot find.
func redactedForm(body []byte) []byte {
	if len(body) == 0 {
		return nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return []byte("(the body is not kept: it does not parse as a form)")
	}
	if form.Has("escrowKey") {
		form["escrowKey"] = []string{"(redacted)"}
	}
	return []byte(form.Encode())
}
