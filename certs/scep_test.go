package certs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"
	"go.mozilla.org/pkcs7"
)

// oneTimeStore is a ChallengeConsumer over a map.
type oneTimeStore struct {
	mu    sync.Mutex
	left  map[string]bool
	err   error
	calls int
}

func (s *oneTimeStore) ConsumeChallenge(_ context.Context, challenge string, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return false, s.err
	}
	ok := s.left[challenge]
	delete(s.left, challenge)
	return ok, nil
}

// issued records what WithOnIssue saw.
type issued struct {
	mu    sync.Mutex
	certs []*x509.Certificate
}

func (i *issued) hook(_ context.Context, c *x509.Certificate) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.certs = append(i.certs, c)
}

func (i *issued) list() []*x509.Certificate {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]*x509.Certificate(nil), i.certs...)
}

func newSCEPServer(t *testing.T, opts ...SCEPOption) *httptest.Server {
	t.Helper()
	h, err := NewSCEPHandler(testCA(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func enroll(t *testing.T, srv *httptest.Server, challenge string, key *rsa.PrivateKey, cn string) (*x509.Certificate, error) {
	t.Helper()
	return SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{
		URL:       srv.URL + "/scep",
		Challenge: challenge,
		Subject:   pkix.Name{CommonName: cn, Organization: []string{"mockmdm tests"}},
		Key:       key,
	})
}

func wantSCEPFailure(t *testing.T, err error) {
	t.Helper()
	var se *SCEPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v (%T), want a *SCEPError", err, err)
	}
	if se.Status != "FAILURE" || se.FailInfo != "badRequest" {
		t.Fatalf("got status %s failInfo %s, want FAILURE badRequest", se.Status, se.FailInfo)
	}
	if !strings.Contains(se.Error(), "badRequest") {
		t.Fatalf("error %q does not name the failInfo", se.Error())
	}
}

func TestSCEPEnrollStaticChallenge(t *testing.T) {
	ca := testCA(t)
	clock := time.Now().Truncate(time.Second).Add(3 * time.Hour) // a fake clock ahead of the wall
	var rec issued
	srv := newSCEPServer(t,
		WithStaticChallenge("s3cret"),
		WithIdentityValidity(90*time.Minute),
		WithSCEPClock(func() time.Time { return clock }),
		WithOnIssue(rec.hook))

	key := deviceKey(t, 0)
	cert, err := enroll(t, srv, "s3cret", key, "iPad static")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), CurrentTime: clock, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued identity does not chain to the CA for clientAuth: %v", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("issued identity does not certify the requested key")
	}
	if cert.Subject.CommonName != "iPad static" || len(cert.Subject.Organization) != 1 {
		t.Fatalf("subject %q, want the CSR's", cert.Subject)
	}
	if !hasClientAuth(cert) {
		t.Fatal("no clientAuth EKU")
	}
	if !cert.NotAfter.Equal(clock.Add(90 * time.Minute)) {
		t.Fatalf("NotAfter %s, want clock + 90m = %s", cert.NotAfter, clock.Add(90*time.Minute))
	}
	if !cert.NotBefore.Equal(clock.Add(-clockSkew)) {
		t.Fatalf("NotBefore %s, want clock - skew", cert.NotBefore)
	}
	if got := rec.list(); len(got) != 1 || !got[0].Equal(cert) {
		t.Fatalf("OnIssue saw %d certificates, want the issued one", len(got))
	}
	// The Verifier at the same fake clock accepts it.
	if err := NewVerifier([]*x509.Certificate{ca.Cert}).Verify(cert, clock); err != nil {
		t.Fatal(err)
	}
}

func TestSCEPEnrollWrongChallenge(t *testing.T) {
	var rec issued
	srv := newSCEPServer(t, WithStaticChallenge("s3cret"), WithOnIssue(rec.hook))
	for _, challenge := range []string{"wrong", "", "s3cret ", "S3CRET"} {
		_, err := enroll(t, srv, challenge, deviceKey(t, 1), "iPad wrong")
		wantSCEPFailure(t, err)
	}
	if n := len(rec.list()); n != 0 {
		t.Fatalf("OnIssue called %d times for refused requests", n)
	}
}

func TestSCEPEnrollOneTimeChallenge(t *testing.T) {
	store := &oneTimeStore{left: map[string]bool{"otp-1": true, "otp-2": true}}
	srv := newSCEPServer(t, WithStaticChallenge("static"), WithChallengeStore(store))

	if _, err := enroll(t, srv, "otp-1", deviceKey(t, 0), "first"); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := enroll(t, srv, "otp-1", deviceKey(t, 1), "replay")
	wantSCEPFailure(t, err)
	if _, err := enroll(t, srv, "otp-2", deviceKey(t, 1), "second"); err != nil {
		t.Fatalf("another one-time challenge: %v", err)
	}
	if _, err := enroll(t, srv, "static", deviceKey(t, 2), "static too"); err != nil {
		t.Fatalf("static challenge alongside a store: %v", err)
	}
	calls := store.calls
	_, err = enroll(t, srv, "", deviceKey(t, 3), "empty")
	wantSCEPFailure(t, err)
	if store.calls != calls {
		t.Fatal("an empty challenge was offered to the store")
	}

	// Only one-time challenges (no static one).
	only := &oneTimeStore{left: map[string]bool{"x": true}}
	srv2 := newSCEPServer(t, WithChallengeStore(only))
	if _, err := enroll(t, srv2, "x", deviceKey(t, 4), "only"); err != nil {
		t.Fatal(err)
	}
	_, err = enroll(t, srv2, "x", deviceKey(t, 4), "only")
	wantSCEPFailure(t, err)

	// A failing store refuses (and does not 500).
	broken := &oneTimeStore{err: errors.New("database is locked")}
	srv3 := newSCEPServer(t, WithChallengeStore(broken))
	_, err = enroll(t, srv3, "anything", deviceKey(t, 5), "broken")
	wantSCEPFailure(t, err)
}

func TestSCEPOpenEnrollment(t *testing.T) {
	srv := newSCEPServer(t)
	if _, err := enroll(t, srv, "whatever", deviceKey(t, 0), "open"); err != nil {
		t.Fatal(err)
	}
	if _, err := enroll(t, srv, "", deviceKey(t, 1), "open"); err != nil {
		t.Fatal(err)
	}
}

func TestSCEPRenewal(t *testing.T) {
	srv := newSCEPServer(t, WithStaticChallenge("s3cret"))
	oldKey, newKey := deviceKey(t, 0), deviceKey(t, 1)
	old, err := enroll(t, srv, "s3cret", oldKey, "renewing iPad")
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{
		URL: srv.URL, Subject: pkix.Name{CommonName: "renewing iPad"}, Key: newKey,
		RenewCert: old, RenewKey: oldKey,
	})
	if err != nil {
		t.Fatalf("renewal signed by a valid identity: %v", err)
	}
	if !newKey.PublicKey.Equal(renewed.PublicKey) || renewed.Equal(old) {
		t.Fatal("renewal did not certify the new key")
	}

	// A renewal signed by an identity of another CA needs a challenge.
	foreign := identity(t, otherCA(t), deviceKey(t, 2), "foreign", time.Now(), time.Hour)
	_, err = SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{
		URL: srv.URL, Subject: pkix.Name{CommonName: "foreign"}, Key: newKey,
		RenewCert: foreign, RenewKey: deviceKey(t, 2),
	})
	wantSCEPFailure(t, err)
	if _, err := SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{URL: srv.URL, Key: newKey, RenewCert: old}); err == nil {
		t.Fatal("renewal without its key was attempted")
	}
}

func TestSCEPCAFingerprint(t *testing.T) {
	ca := testCA(t)
	srv := newSCEPServer(t)
	s256 := sha256.Sum256(ca.Cert.Raw)
	s1 := sha1.Sum(ca.Cert.Raw)
	for name, fp := range map[string][]byte{"sha256": s256[:], "sha1": s1[:]} {
		_, err := SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{URL: srv.URL, Key: deviceKey(t, 0), Subject: pkix.Name{CommonName: name}, CAFingerprint: fp})
		if err != nil {
			t.Fatalf("%s fingerprint: %v", name, err)
		}
	}
	other := sha256.Sum256(otherCA(t).Cert.Raw)
	if _, err := SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{URL: srv.URL, Key: deviceKey(t, 0), CAFingerprint: other[:]}); err == nil || !strings.Contains(err.Error(), "CAFingerprint") {
		t.Fatalf("wrong fingerprint: %v", err)
	}
	if _, err := SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{URL: srv.URL, Key: deviceKey(t, 0), CAFingerprint: []byte{1, 2, 3}}); err == nil {
		t.Fatal("a 3-byte fingerprint was accepted")
	}
}

// TestSCEPEnrollByGET serves caps without POSTPKIOperation, so the client
// must send the PKIMessage base64 in the GET query.
func TestSCEPEnrollByGET(t *testing.T) {
	h, err := NewSCEPHandler(testCA(t))
	if err != nil {
		t.Fatal(err)
	}
	var sawGET bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("operation") {
		case "GetCACaps":
			io.WriteString(w, "SHA-256\nAES\nSCEPStandard\n")
			return
		case "PKIOperation":
			if r.Method != http.MethodGet {
				http.Error(w, "expected GET", http.StatusMethodNotAllowed)
				return
			}
			sawGET = true
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	if _, err := SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{URL: srv.URL, Key: deviceKey(t, 0), Subject: pkix.Name{CommonName: "by GET"}}); err != nil {
		t.Fatal(err)
	}
	if !sawGET {
		t.Fatal("PKIOperation was not sent by GET")
	}
}

func TestSCEPGetOperations(t *testing.T) {
	ca := testCA(t)
	srv := newSCEPServer(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, srv.URL+"/scep?operation=GetCACaps", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("%s GetCACaps: %d %s", method, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		caps := parseCaps(body)
		for _, c := range []string{"POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal"} {
			if !caps[strings.ToLower(c)] {
				t.Errorf("caps %q lack %s", body, c)
			}
		}
	}
	resp, err := srv.Client().Get(srv.URL + "/scep?operation=GetCACert")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-x509-ca-cert" {
		t.Fatalf("GetCACert: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, ca.Cert.Raw) {
		t.Fatal("GetCACert is not the CA's DER")
	}
}

func TestNewSCEPHandlerMisuse(t *testing.T) {
	if _, err := NewSCEPHandler(nil); err == nil {
		t.Error("nil CA accepted")
	}
	if _, err := NewSCEPHandler(&CA{Cert: testCA(t).Cert}); err == nil {
		t.Error("CA without key accepted")
	}
	for _, d := range []time.Duration{0, 30 * time.Second, 101 * 365 * 24 * time.Hour} {
		if _, err := NewSCEPHandler(testCA(t), WithIdentityValidity(d)); err == nil {
			t.Errorf("identity validity %s accepted", d)
		}
	}
	if _, err := NewSCEPHandler(testCA(t), WithIdentityValidity(time.Minute), WithSCEPLogger(nil), WithSCEPClock(nil)); err != nil {
		t.Errorf("nil logger and clock should fall back to defaults: %v", err)
	}
}

// pkiMessage builds a PKCSReq (or another type) the way a client would.
func pkiMessage(t testing.TB, recipient *x509.Certificate, key *rsa.PrivateKey, challenge string, typ scep.MessageType) []byte {
	t.Helper()
	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: "hand-made"}},
		ChallengePassword:  challenge,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	self, err := selfSignedRequester(pkix.Name{CommonName: "hand-made"}, key)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{MessageType: typ, Recipients: []*x509.Certificate{recipient}, SignerCert: self, SignerKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return msg.Raw
}

// TestSCEPMessageParam sends a hand-built PKIMessage by GET in the URL-safe
// alphabet without padding, and with '+' turned to ' ' by a sloppy client.
func TestSCEPMessageParam(t *testing.T) {
	srv := newSCEPServer(t)
	raw := pkiMessage(t, testCA(t).Cert, deviceKey(t, 0), "", scep.PKCSReq)
	for name, param := range map[string]string{
		"url alphabet, no padding": url.QueryEscape(base64.RawURLEncoding.EncodeToString(raw)),
		"std alphabet, escaped":    url.QueryEscape(base64.StdEncoding.EncodeToString(raw)),
		"std alphabet, raw plus":   strings.ReplaceAll(base64.StdEncoding.EncodeToString(raw), "=", "%3D"),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + "?operation=PKIOperation&message=" + param)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-pki-message" {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			rep, err := scep.ParsePKIMessage(body, scep.WithCACerts([]*x509.Certificate{testCA(t).Cert}))
			if err != nil || rep.MessageType != scep.CertRep || rep.PKIStatus != scep.SUCCESS {
				t.Fatalf("CertRep: %v %+v", err, rep)
			}
		})
	}
}

// TestSCEPFailureIsHTTP200 checks the wire form of a refusal: a CertRep
// with pkiStatus FAILURE and failInfo badRequest, HTTP 200.
func TestSCEPFailureIsHTTP200(t *testing.T) {
	srv := newSCEPServer(t, WithStaticChallenge("right"))
	raw := pkiMessage(t, testCA(t).Cert, deviceKey(t, 0), "wrong", scep.PKCSReq)
	resp, err := srv.Client().Post(srv.URL+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d, SCEP refusals are 200", resp.StatusCode)
	}
	rep, err := scep.ParsePKIMessage(body, scep.WithCACerts([]*x509.Certificate{testCA(t).Cert}))
	if err != nil {
		t.Fatal(err)
	}
	if rep.PKIStatus != scep.FAILURE || rep.FailInfo != scep.BadRequest {
		t.Fatalf("pkiStatus %s failInfo %s", rep.PKIStatus, rep.FailInfo)
	}
}

func TestSCEPHostileInput(t *testing.T) {
	ca := testCA(t)
	srv := newSCEPServer(t, WithStaticChallenge("s3cret"))
	good := pkiMessage(t, ca.Cert, deviceKey(t, 0), "s3cret", scep.PKCSReq)
	toOtherCA := pkiMessage(t, otherCA(t).Cert, deviceKey(t, 0), "s3cret", scep.PKCSReq)
	getCert := pkiMessage(t, ca.Cert, deviceKey(t, 0), "s3cret", scep.GetCert)
	random := make([]byte, 2048)
	rand.Read(random)
	degenerate, _ := pkcs7.DegenerateCertificate(ca.Cert.Raw)
	mdmSig, _ := SignMdmSignature([]byte("body"), identity(t, ca, deviceKey(t, 1), "x", time.Now(), time.Hour), deviceKey(t, 1))
	mdmSigDER, _ := base64.StdEncoding.DecodeString(mdmSig)
	attached := func() []byte {
		sd, _ := pkcs7.NewSignedData([]byte("not an envelope"))
		sd.AddSigner(ca.Cert, ca.Key, pkcs7.SignerInfoConfig{})
		der, _ := sd.Finish()
		return der
	}()
	// A CertRep sent back to the server (messageType 3).
	certRep := func() []byte {
		resp, err := srv.Client().Post(srv.URL+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(good))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}()
	flipped := append([]byte{}, good...)
	flipped[len(flipped)-10] ^= 0x55

	type req struct {
		method, query string
		body          []byte
	}
	post := func(body []byte) req { return req{http.MethodPost, "operation=PKIOperation", body} }
	for _, tc := range []struct {
		name   string
		req    req
		status int
		reason string
	}{
		{"PUT", req{http.MethodPut, "operation=GetCACaps", nil}, 405, "GET or POST"},
		{"DELETE", req{http.MethodDelete, "operation=GetCACert", nil}, 405, "GET or POST"},
		{"HEAD", req{http.MethodHead, "operation=GetCACaps", nil}, 405, ""},
		{"no operation", req{http.MethodGet, "", nil}, 400, "missing the operation"},
		{"empty operation", req{http.MethodGet, "operation=", nil}, 400, "missing the operation"},
		{"unknown operation", req{http.MethodGet, "operation=GetCRL", nil}, 400, "unknown SCEP operation"},
		{"operation in the wrong case", req{http.MethodGet, "operation=getcacaps", nil}, 400, "unknown SCEP operation"},
		{"GetNextCACert", req{http.MethodGet, "operation=GetNextCACert", nil}, 400, "not supported"},
		{"malformed query", req{http.MethodGet, "operation=%zz", nil}, 400, "malformed query"},
		{"empty body", post(nil), 400, "empty"},
		{"oversized body", post(bytes.Repeat([]byte{0x30}, maxSCEPBody+1)), 413, "larger than"},
		{"random bytes", post(random), 400, "not a SCEP PKIMessage"},
		{"text", post([]byte("hello")), 400, "not a SCEP PKIMessage"},
		// Makes smallstep/pkcs7's BER decoder index out of range (found by
		// fuzzing); the recover in inspect turns it into a 400.
		{"BER length past the end", post([]byte("0\x8200")), 400, "not a SCEP PKIMessage"},
		{"truncated PKIMessage", post(good[:len(good)/2]), 400, "not a SCEP PKIMessage"},
		{"tampered PKIMessage", post(flipped), 400, "not a SCEP PKIMessage"},
		{"bare certificate", post(ca.Cert.Raw), 400, "not a SCEP PKIMessage"},
		{"degenerate PKCS#7", post(degenerate), 400, "not a SCEP PKIMessage"},
		{"Mdm-Signature instead", post(mdmSigDER), 400, "not a SCEP PKIMessage"},
		{"signed data without SCEP attributes", post(attached), 400, "not a SCEP PKIMessage"},
		{"encrypted to another CA", post(toOtherCA), 400, "cannot open the PKIMessage envelope"},
		{"GetCert message type", post(getCert), 400, "not a SCEP PKIMessage"},
		{"CertRep sent to the server", post(certRep), 400, "not supported"},
		{"GET without message", req{http.MethodGet, "operation=PKIOperation", nil}, 400, "message query parameter"},
		{"GET message not base64", req{http.MethodGet, "operation=PKIOperation&message=%21%21%21", nil}, 400, "not base64"},
		{"GET message too long", req{http.MethodGet, "operation=PKIOperation&message=" + strings.Repeat("A", base64.StdEncoding.EncodedLen(maxSCEPBody)+4), nil}, 414, "longer than"},
		{"GET message random", req{http.MethodGet, "operation=PKIOperation&message=" + base64.RawURLEncoding.EncodeToString(random[:300]), nil}, 400, "not a SCEP PKIMessage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.req.method, srv.URL+"/scep?"+tc.req.query, bytes.NewReader(tc.req.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET, POST" {
				t.Fatalf("Allow %q", resp.Header.Get("Allow"))
			}
			if tc.req.method == http.MethodHead {
				return
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("Content-Type %q, want a plain-text reason", resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(string(body), tc.reason) {
				t.Fatalf("reason %q does not contain %q", body, tc.reason)
			}
		})
	}
}

func TestSCEPClientAgainstBadServers(t *testing.T) {
	ca := testCA(t)
	real, err := NewSCEPHandler(ca)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"500 on caps", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, "HTTP 500"},
		{"garbage CA cert", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("operation") == "GetCACert" {
				w.Write([]byte("not a certificate"))
				return
			}
			real.ServeHTTP(w, r)
		}, "GetCACert"},
		{"garbage CertRep", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("operation") == "PKIOperation" {
				w.Write([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
				return
			}
			real.ServeHTTP(w, r)
		}, "not a CertRep"},
		{"GetCACert names another CA", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("operation") == "GetCACert" {
				w.Header().Set("Content-Type", "application/x-x509-ca-cert")
				w.Write(otherCA(t).Cert.Raw) // client encrypts to the other CA; the real one cannot open it
				return
			}
			real.ServeHTTP(w, r)
		}, "HTTP 400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := SCEPEnroll(t.Context(), srv.Client(), SCEPRequest{URL: srv.URL, Key: deviceKey(t, 0)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	for _, bad := range []SCEPRequest{{URL: "", Key: deviceKey(t, 0)}, {URL: "ftp://x", Key: deviceKey(t, 0)}, {URL: "http://x"}} {
		if _, err := SCEPEnroll(t.Context(), http.DefaultClient, bad); err == nil {
			t.Errorf("request %+v accepted", bad)
		}
	}
}

func FuzzSCEPPKIOperation(f *testing.F) {
	ca, err := NewCA("fuzz SCEP CA", 1024, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	loadFixtures(f)
	f.Add(pkiMessage(f, ca.Cert, deviceKey(f, 0), "c", scep.PKCSReq))
	f.Add(pkiMessage(f, ca.Cert, deviceKey(f, 0), "", scep.RenewalReq))
	f.Add(pkiMessage(f, otherCA(f).Cert, deviceKey(f, 0), "c", scep.PKCSReq))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add(ca.Cert.Raw)
	h, err := NewSCEPHandler(ca, WithStaticChallenge("c"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/scep?operation=PKIOperation", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == 200:
			if w.Header().Get("Content-Type") != "application/x-pki-message" {
				t.Fatalf("200 with Content-Type %q", w.Header().Get("Content-Type"))
			}
		case w.Code >= 400 && w.Code < 500:
			if w.Body.Len() == 0 {
				t.Fatal("4xx without a reason")
			}
		default:
			t.Fatalf("HTTP %d for client input: %s", w.Code, w.Body)
		}
	})
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestSCEPLogs(t *testing.T) {
	var out lockedBuffer
	srv := newSCEPServer(t, WithStaticChallenge("s3cret"), WithSCEPLogger(slog.New(slog.NewJSONHandler(&out, nil))))
	cert, err := enroll(t, srv, "s3cret", deviceKey(t, 0), "logged iPad")
	if err != nil {
		t.Fatal(err)
	}
	_, err = enroll(t, srv, "nope", deviceKey(t, 1), "refused iPad")
	wantSCEPFailure(t, err)
	logs := out.String()
	for _, want := range []string{`"msg":"SCEP identity issued"`, `"cert_hash":"` + Hash(cert) + `"`, `"authorized_by":"static challenge"`,
		`"msg":"SCEP request refused"`, `CN=refused iPad`, `"transaction_id":"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "s3cret") {
		t.Error("the challenge was logged")
	}
}
