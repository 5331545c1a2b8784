package device

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
)

// testPKI is made once per package: RSA key generation dominates the
// package's run time on two cores.
type testPKI struct {
	ca, otherCA             *certs.CA
	signer, otherSigner     *x509.Certificate
	signerKey, otherSignKey *rsa.PrivateKey
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  error
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		if pki.ca, pkiErr = certs.NewCA("device test CA", 2048, 24*time.Hour); pkiErr != nil {
			return
		}
		if pki.otherCA, pkiErr = certs.NewCA("untrusted CA", 1024, 24*time.Hour); pkiErr != nil {
			return
		}
		if pki.signer, pki.signerKey, pkiErr = pki.ca.IssueSigner("profile signer", time.Hour); pkiErr != nil {
			return
		}
		pki.otherSigner, pki.otherSignKey, pkiErr = pki.otherCA.IssueSigner("untrusted signer", time.Hour)
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return &pki
}

// trustPool is the pool a device uses to verify profiles of the test CA.
func (p *testPKI) trustPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return pool
}

// checkin is a check-in the fake server received.
type checkin struct {
	msg         mdm.CheckinMessage
	signer      *x509.Certificate // from Mdm-Signature or the TLS client certificate
	signed      bool              // Mdm-Signature was present
	contentType string
}

// report is a command-endpoint message the fake server received.
type report struct {
	res         *mdm.CommandResults
	signer      *x509.Certificate
	signed      bool
	contentType string
}

// fakeMDM is a tiny MDM server that speaks Apple's protocol: it serves a
// signed enrollment profile, a SCEP endpoint of the test CA, and check-in
// and connect endpoints that authenticate every message (Mdm-Signature or
// TLS client certificate, chained to the CA) and serve a command queue with
// NanoMDM's NotNow rule (a NotNow'd command waits for the next session).
type fakeMDM struct {
	t   *testing.T
	srv *httptest.Server
	pki *testPKI

	mu       sync.Mutex
	profile  []byte
	checkins []checkin
	reports  []report
	queue    []*mdm.Command
	skip     map[string]bool
	// status overrides the answer per message type ("Authenticate",
	// "TokenUpdate", "CheckOut", "connect"); 0 = 200.
	status map[string]int
	// resendNotNow makes the server misbehave: re-offer NotNow'd commands.
	resendNotNow bool
	// errs collects authentication failures (the test fails on them).
	errs []string
	// dm answers DeclarativeManagement check-ins (nil: an empty 200).
	dm func(endpoint string) (status int, body string)
}

type fakeOption func(*fakeMDM, *http.ServeMux)

// newFakeMDM starts the server over TLS. mtls makes it ask for client
// certificates (for SignMessage=false profiles).
func newFakeMDM(t *testing.T, mtls bool) *fakeMDM {
	t.Helper()
	f := &fakeMDM{t: t, pki: getPKI(t), skip: map[string]bool{}, status: map[string]int{}}
	scep, err := certs.NewSCEPHandler(f.pki.ca, certs.WithStaticChallenge("secret"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scep", scep)
	mux.HandleFunc("GET /enroll", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		p := f.profile
		f.mu.Unlock()
		w.Header().Set("Content-Type", profiles.ContentType)
		w.Write(p)
	})
	mux.HandleFunc("PUT /checkin", f.serveCheckin)
	mux.HandleFunc("PUT /mdm", f.serveConnect)
	f.srv = httptest.NewUnstartedServer(mux)
	if mtls {
		f.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, e := range f.errs {
			t.Errorf("fake MDM: %s", e)
		}
	})
	return f
}

// options are enrollment profile options pointing at this server.
func (f *fakeMDM) options() profiles.EnrollmentOptions {
	return profiles.EnrollmentOptions{
		Identifier:    "com.example.mdm.enroll",
		DisplayName:   "Example MDM",
		Organization:  "Example",
		ServerURL:     f.srv.URL + "/mdm",
		CheckInURL:    f.srv.URL + "/checkin",
		Topic:         "com.apple.mgmt.External.4b7f1c2e-6a51-4f0e-9f55-0d3f7c9a1b22",
		SignMessage:   true,
		AccessRights:  profiles.AccessAll,
		RootCA:        f.pki.ca.Cert,
		SCEPURL:       f.srv.URL + "/scep",
		SCEPChallenge: "secret",
		SCEPSubject:   [][][]string{{{"O", "Example"}}, {{"CN", "virtual device"}}},
		SCEPKeysize:   1024,
		UUIDSeed:      "device-tests",
	}
}

// signedProfile builds and signs a profile with the trusted signer.
func (f *fakeMDM) signedProfile(o profiles.EnrollmentOptions) []byte {
	f.t.Helper()
	raw, err := profiles.BuildEnrollment(o)
	if err != nil {
		f.t.Fatal(err)
	}
	signed, err := profiles.Sign(raw, f.pki.signer, f.pki.signerKey, f.pki.ca.Cert)
	if err != nil {
		f.t.Fatal(err)
	}
	return signed
}

// serve sets the profile served at /enroll and returns its URL.
func (f *fakeMDM) serve(profile []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.profile = profile
	return f.srv.URL + "/enroll"
}

// newDevice is a device that reaches this server.
func (f *fakeMDM) newDevice(opts ...Option) *Device {
	base := []Option{WithSeed(42), WithKeySize(1024), WithTrust(f.pki.trustPool())}
	return New(f.srv.Client(), append(base, opts...)...)
}

// enqueue adds typed commands to the queue and returns their UUIDs.
func (f *fakeMDM) enqueue(reqs ...mdm.CommandRequest) []string {
	f.t.Helper()
	var ids []string
	for _, req := range reqs {
		id := fmt.Sprintf("%s-%d", strings.TrimPrefix(fmt.Sprintf("%T", req), "*mdm."), len(f.queue)+len(ids))
		c, err := mdm.NewCommand(id, req)
		if err != nil {
			f.t.Fatal(err)
		}
		f.enqueueRaw(c)
		ids = append(ids, id)
	}
	return ids
}

func (f *fakeMDM) enqueueRaw(c *mdm.Command) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, c)
}

func (f *fakeMDM) fail(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// authenticate finds who sent r: the Mdm-Signature signer or the TLS
// client certificate, which must chain to the CA with clientAuth.
func (f *fakeMDM) authenticate(r *http.Request, body []byte) (*x509.Certificate, bool, bool) {
	var cert *x509.Certificate
	sig := r.Header.Get("Mdm-Signature")
	if sig != "" {
		info, err := certs.VerifyMdmSignature(sig, body)
		if err != nil {
			f.fail("%s %s: bad Mdm-Signature: %v", r.Method, r.URL.Path, err)
			return nil, true, false
		}
		cert = info.Signer
	} else if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cert = r.TLS.PeerCertificates[0]
	}
	if cert == nil {
		return nil, false, true // unauthenticated: the test decides
	}
	roots := x509.NewCertPool()
	roots.AddCert(f.pki.ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		f.fail("%s: identity does not chain to the CA: %v", r.URL.Path, err)
		return nil, sig != "", false
	}
	return cert, sig != "", true
}

func (f *fakeMDM) serveCheckin(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	signer, signed, ok := f.authenticate(r, body)
	if !ok {
		http.Error(w, "bad identity", http.StatusBadRequest)
		return
	}
	msg, err := mdm.DecodeCheckin(body)
	if err != nil {
		f.fail("check-in does not decode: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	f.checkins = append(f.checkins, checkin{msg: msg, signer: signer, signed: signed, contentType: ct})
	if s := f.status[msg.Type()]; s != 0 {
		http.Error(w, "refused by the test", s)
		return
	}
	if m, ok := msg.(*mdm.DeclarativeManagement); ok && f.dm != nil {
		status, answer := f.dm(m.Endpoint)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}
}

func (f *fakeMDM) serveConnect(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	signer, signed, ok := f.authenticate(r, body)
	if !ok {
		http.Error(w, "bad identity", http.StatusBadRequest)
		return
	}
	res, err := mdm.DecodeCommandResults(body)
	if err != nil {
		f.fail("result does not decode: %v\n%s", err, body)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	f.reports = append(f.reports, report{res: res, signer: signer, signed: signed, contentType: ct})
	if s := f.status["connect"]; s != 0 {
		http.Error(w, `{"code":"com.apple.unrecognized.device"}`, s)
		return
	}
	switch res.Status {
	case mdm.StatusIdle:
		clear(f.skip)
	case mdm.StatusNotNow:
		if !f.resendNotNow {
			f.skip[res.CommandUUID] = true
		}
	default:
		f.queue = slices.DeleteFunc(f.queue, func(c *mdm.Command) bool { return c.CommandUUID == res.CommandUUID })
	}
	for _, c := range f.queue {
		if !f.skip[c.CommandUUID] {
			w.Header().Set("Content-Type", "application/xml")
			w.Write(c.Raw)
			return
		}
	}
}

// checkinsSnapshot and reportsSnapshot copy what was received.
func (f *fakeMDM) checkinsSnapshot() []checkin {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.checkins)
}

func (f *fakeMDM) reportsSnapshot() []report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports)
}

// enrolled returns a device enrolled in f with profile options o.
func (f *fakeMDM) enrolled(o profiles.EnrollmentOptions, opts ...Option) *Device {
	f.t.Helper()
	d := f.newDevice(opts...)
	if _, err := d.EnrollFromURL(ctx(f.t), f.serve(f.signedProfile(o))); err != nil {
		f.t.Fatalf("enroll: %v", err)
	}
	return d
}

// resultDict decodes a result body into a dictionary.
func resultDict(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := plist.Unmarshal(raw, &m); err != nil {
		t.Fatalf("result is not a plist dict: %v\n%s", err, raw)
	}
	return m
}

// ctx is a test context with a deadline, so that nothing can hang.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}
