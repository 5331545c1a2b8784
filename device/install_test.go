package device

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/profiles"
)

// editProfile builds an enrollment profile and lets edit change its
// decoded top-level dictionary before it is encoded again (unsigned).
func editProfile(t *testing.T, o profiles.EnrollmentOptions, edit func(top map[string]any, content []any) []any) []byte {
	t.Helper()
	raw, err := profiles.BuildEnrollment(o)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := plist.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	top["PayloadContent"] = edit(top, top["PayloadContent"].([]any))
	out, err := plist.MarshalIndent(top, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// payloadOfType returns the first payload dictionary of type typ.
func payloadOfType(content []any, typ string) map[string]any {
	for _, p := range content {
		if m := p.(map[string]any); m["PayloadType"] == typ {
			return m
		}
	}
	return nil
}

// assertPristine checks that a failed install left nothing behind.
func assertPristine(t *testing.T, d *Device) {
	t.Helper()
	if d.IsEnrolled() || len(d.InstalledProfiles()) != 0 || len(d.Identities()) != 0 || len(d.TrustedRoots()) != 0 {
		t.Errorf("a failed install left state: enrolled=%v profiles=%d identities=%d roots=%d",
			d.IsEnrolled(), len(d.InstalledProfiles()), len(d.Identities()), len(d.TrustedRoots()))
	}
	if _, ok := d.IdentityTLSCertificate(); ok {
		t.Error("a failed install left an identity for TLS")
	}
}

func TestHostileProfiles(t *testing.T) {
	f := newFakeMDM(t, false)
	o := f.options()
	signed := f.signedProfile(o)
	tampered := bytes.Replace(signed, []byte("Example MDM"), []byte("Evil_xx MDM"), 1)
	if bytes.Equal(tampered, signed) {
		t.Fatal("tampering found nothing to change")
	}
	noSCEP := editProfile(t, o, func(_ map[string]any, c []any) []any {
		var out []any
		for _, p := range c {
			if p.(map[string]any)["PayloadType"] != profiles.PayloadTypeSCEP {
				out = append(out, p)
			}
		}
		return out
	})
	pkcs12Identity := editProfile(t, o, func(_ map[string]any, c []any) []any {
		s := payloadOfType(c, profiles.PayloadTypeSCEP)
		s["PayloadType"] = "com.apple.security.pkcs12"
		s["PayloadContent"] = []byte("not really a PKCS#12")
		return c
	})
	twoMDM := editProfile(t, o, func(_ map[string]any, c []any) []any {
		m := payloadOfType(c, profiles.PayloadTypeMDM)
		dup := map[string]any{}
		for k, v := range m {
			dup[k] = v
		}
		dup["PayloadUUID"] = "11111111-2222-4333-8444-555555555555"
		return append(c, dup)
	})
	httpServer := editProfile(t, o, func(_ map[string]any, c []any) []any {
		payloadOfType(c, profiles.PayloadTypeMDM)["ServerURL"] = "http://insecure.example/mdm"
		return c
	})
	noUUID := editProfile(t, o, func(_ map[string]any, c []any) []any {
		delete(payloadOfType(c, profiles.PayloadTypeMDM), "PayloadUUID")
		return c
	})
	dupUUID := editProfile(t, o, func(_ map[string]any, c []any) []any {
		payloadOfType(c, profiles.PayloadTypeRoot)["PayloadUUID"] = payloadOfType(c, profiles.PayloadTypeMDM)["PayloadUUID"]
		return c
	})
	badRoot := editProfile(t, o, func(_ map[string]any, c []any) []any {
		payloadOfType(c, profiles.PayloadTypeRoot)["PayloadContent"] = []byte("not DER")
		return c
	})
	rootAsString := editProfile(t, o, func(_ map[string]any, c []any) []any {
		payloadOfType(c, profiles.PayloadTypeRoot)["PayloadContent"] = "MIIB..."
		return c
	})
	ecKey := editProfile(t, o, func(_ map[string]any, c []any) []any {
		payloadOfType(c, profiles.PayloadTypeSCEP)["PayloadContent"].(map[string]any)["Key Type"] = "ECSECPrimeRandom"
		return c
	})
	topologyWrong := editProfile(t, o, func(top map[string]any, c []any) []any {
		top["PayloadType"] = "com.apple.mdm"
		return c
	})
	encrypted := editProfile(t, o, func(top map[string]any, c []any) []any {
		top["IsEncrypted"] = true
		return c
	})
	topArray, _ := plist.Marshal([]any{"a", "b"})
	contentString, _ := plist.Marshal(map[string]any{"PayloadType": "Configuration", "PayloadIdentifier": "x", "PayloadUUID": "y", "PayloadContent": "oops"})

	for _, tt := range []struct {
		name    string
		profile []byte
		status  int
		want    string // in the error message
	}{
		{"empty", nil, 400, "empty"},
		{"garbage", []byte("hello, I am not a profile"), 400, "not a property list"},
		{"oversized", bytes.Repeat([]byte("<"), profiles.MaxProfileSize+1), 413, "4 MiB"},
		{"truncated signature", signed[:len(signed)/2], 400, "CMS"},
		{"tampered content", tampered, 400, "does not match"},
		{"PEM-armored", pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: signed}), 400, "PEM"},
		{"top-level array", topArray, 400, "dictionary"},
		{"PayloadContent a string", contentString, 400, "PayloadContent"},
		{"top-level PayloadType", topologyWrong, 400, "top-level PayloadType"},
		{"IsEncrypted with nothing encrypted", encrypted, 400, "no EncryptedPayloadContent"},
		{"missing SCEP payload", noSCEP, 400, "IdentityCertificateUUID"},
		{"PKCS#12 identity", pkcs12Identity, 400, "com.apple.security.pkcs12"},
		{"two MDM payloads", twoMDM, 400, "2 MDM payloads"},
		{"http ServerURL", httpServer, 400, "ServerURL"},
		{"payload without UUID", noUUID, 400, "PayloadUUID"},
		{"duplicate UUID", dupUUID, 400, "repeats PayloadUUID"},
		{"root not DER", badRoot, 400, "not a DER certificate"},
		{"root as string", rootAsString, 400, "<data>"},
		{"EC SCEP key", ecKey, 400, "Key Type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := f.newDevice()
			res, err := d.Install(ctx(t), tt.profile)
			var pe *ProfileError
			if !errors.As(err, &pe) || res != nil {
				t.Fatalf("got %v, %v; want a *ProfileError", res, err)
			}
			if pe.HTTPStatus() != tt.status {
				t.Errorf("HTTPStatus %d, want %d (%v)", pe.HTTPStatus(), tt.status, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			assertPristine(t, d)
			if n := len(d.Transcript()); n != 0 {
				t.Errorf("a refused profile still made %d exchanges", n)
			}
		})
	}
}

func TestProfileTrust(t *testing.T) {
	f := newFakeMDM(t, false)
	p := getPKI(t)
	raw, err := profiles.BuildEnrollment(f.options())
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := profiles.Sign(raw, p.otherSigner, p.otherSignKey, p.otherCA.Cert)
	if err != nil {
		t.Fatal(err)
	}

	// Default: installed, like a user accepting "Not Verified".
	d := f.newDevice()
	res, err := d.Install(ctx(t), untrusted)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Signed || res.Verified || res.VerifyError == nil || !res.Signer.Equal(p.otherSigner) || !res.Enrolled {
		t.Fatalf("untrusted signer: signed=%v verified=%v err=%v", res.Signed, res.Verified, res.VerifyError)
	}
	if ps := d.InstalledProfiles(); len(ps) != 1 || ps[0].Verified {
		t.Fatalf("profile record %+v", ps)
	}

	// WithRequireVerified: refused, before any exchange.
	for name, profile := range map[string][]byte{"untrusted signer": untrusted, "unsigned": raw} {
		t.Run(name, func(t *testing.T) {
			d := f.newDevice(WithRequireVerified(true))
			_, err := d.Install(ctx(t), profile)
			var pe *ProfileError
			if !errors.As(err, &pe) || !errors.Is(err, ErrUntrustedProfile) || pe.HTTPStatus() != 400 {
				t.Fatalf("got %v", err)
			}
			assertPristine(t, d)
			if len(d.Transcript()) != 0 {
				t.Error("exchanges were made for a refused profile")
			}
		})
	}

	// No trust configured: the signature is checked, nothing is verified.
	d = New(f.srv.Client(), WithSeed(5), WithKeySize(1024))
	res, err = d.Install(ctx(t), f.signedProfile(f.options()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified || res.VerifyError == nil || !strings.Contains(res.VerifyError.Error(), "WithTrust") {
		t.Fatalf("without trust: verified=%v err=%v", res.Verified, res.VerifyError)
	}
}

func TestEnrollmentRefusedByServer(t *testing.T) {
	for _, step := range []string{"Authenticate", "TokenUpdate"} {
		t.Run(step, func(t *testing.T) {
			f := newFakeMDM(t, false)
			f.status[step] = http.StatusForbidden
			d := f.newDevice()
			_, err := d.EnrollFromURL(ctx(t), f.serve(f.signedProfile(f.options())))
			var se *ServerError
			if !errors.As(err, &se) || se.Step != step || se.StatusCode != 403 || !bytes.Contains(se.Body, []byte("refused by the test")) {
				t.Fatalf("got %v", err)
			}
			if errors.Is(err, ErrUnenrolled) {
				t.Error("a refused enrollment matches ErrUnenrolled")
			}
			assertPristine(t, d)
			// The device can try again once the server accepts.
			f.mu.Lock()
			delete(f.status, step)
			f.mu.Unlock()
			if _, err := d.EnrollFromURL(ctx(t), f.serve(f.signedProfile(f.options()))); err != nil || !d.IsEnrolled() {
				t.Fatalf("retry: %v", err)
			}
		})
	}
}

func TestEnrollFromURLServerErrors(t *testing.T) {
	f := newFakeMDM(t, false)
	mux := http.NewServeMux()
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(f.signedProfile(f.options()))
	})
	mux.HandleFunc("/missing", http.NotFound)
	other := httptest.NewTLSServer(mux)
	t.Cleanup(other.Close)
	for path, want := range map[string]string{"/html": "Content-Type", "/missing": "404"} {
		d := New(other.Client(), WithSeed(1))
		_, err := d.EnrollFromURL(ctx(t), other.URL+path)
		var se *ServerError
		if !errors.As(err, &se) || se.Step != "profile download" || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", path, err)
		}
	}
	d := New(f.srv.Client())
	if _, err := d.EnrollFromURL(ctx(t), "::not a url"); !errors.As(err, new(*ExchangeError)) {
		t.Errorf("bad URL: %v", err)
	}
}

func TestSCEPRefused(t *testing.T) {
	f := newFakeMDM(t, false)
	o := f.options()
	o.SCEPChallenge = "wrong"
	d := f.newDevice()
	_, err := d.EnrollFromURL(ctx(t), f.serve(f.signedProfile(o)))
	var ee *ExchangeError
	var se *certs.SCEPError
	if !errors.As(err, &ee) || ee.Step != "SCEP" || !errors.As(err, &se) || se.FailInfo != "badRequest" {
		t.Fatalf("got %v", err)
	}
	assertPristine(t, d)
	if len(f.checkinsSnapshot()) != 0 {
		t.Error("the device checked in without an identity")
	}
}

// TestUnreachableServer: a ServerURL nobody answers fails the install, in
// bounded time, instead of hanging.
func TestUnreachableServer(t *testing.T) {
	f := newFakeMDM(t, false)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	// A listener that never accepts: the TCP handshake completes in the
	// kernel, the TLS handshake never does.
	blackhole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blackhole.Close() })

	for _, tt := range []struct {
		name     string
		addr     string
		opts     []Option
		deadline time.Duration // 0: the caller's context has none
		timeout  bool
	}{
		{"connection refused", closed, nil, 5 * time.Second, false},
		{"silent server, context deadline", blackhole.Addr().String(), nil, 300 * time.Millisecond, true},
		{"silent server, request timeout", blackhole.Addr().String(), []Option{WithRequestTimeout(300 * time.Millisecond)}, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			o.ServerURL, o.CheckInURL = "https://"+tt.addr+"/mdm", ""
			profile := f.signedProfile(o)
			d := f.newDevice(tt.opts...)
			c := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				c, cancel = context.WithTimeout(c, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := d.Install(c, profile)
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Fatalf("took %s", elapsed)
			}
			var ee *ExchangeError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v, want an *ExchangeError", err)
			}
			if tt.timeout != errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("deadline exceeded = %v: %v", errors.Is(err, context.DeadlineExceeded), err)
			}
			if tt.timeout && ee.HTTPStatus() != http.StatusGatewayTimeout {
				t.Errorf("HTTPStatus %d", ee.HTTPStatus())
			}
			if ee.Step != "Authenticate" && !tt.timeout {
				t.Errorf("step %q", ee.Step)
			}
			assertPristine(t, d)
		})
	}
}

func TestInstallReplaceAndCertificates(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.newDevice()
	inert := inertProfile(t, "com.example.inert")
	res, err := d.Install(ctx(t), inert)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced || res.Enrolled || res.Signed || len(res.Roots) != 1 {
		t.Fatalf("first install %+v", res)
	}
	if p := res.Profile.Payloads; len(p) != 2 || p[0].Type != profiles.PayloadTypeRoot || !p[1].Inert {
		t.Fatalf("payloads %+v (certificates first, Wi-Fi inert)", p)
	}
	res, err = d.Install(ctx(t), inert)
	if err != nil || !res.Replaced {
		t.Fatalf("second install: %+v %v", res, err)
	}
	if len(d.InstalledProfiles()) != 1 || len(d.TrustedRoots()) != 1 {
		t.Fatalf("after replacing: %d profiles, %d roots", len(d.InstalledProfiles()), len(d.TrustedRoots()))
	}

	// A PEM payload may carry several certificates.
	p := getPKI(t)
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.otherCA.Cert.Raw})...)
	pemProfile, _ := plist.Marshal(map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "com.example.pem", "PayloadUUID": "A0000000-0000-4000-8000-000000000001",
		"PayloadContent": []any{map[string]any{
			"PayloadType": "com.apple.security.pem", "PayloadVersion": 1, "PayloadIdentifier": "com.example.pem.certs",
			"PayloadUUID": "A0000000-0000-4000-8000-000000000002", "PayloadContent": pemData,
		}},
	})
	res, err = d.Install(ctx(t), pemProfile)
	if err != nil || len(res.Roots) != 2 || len(d.TrustedRoots()) != 3 {
		t.Fatalf("PEM payload: %+v %v", res, err)
	}

	// A second MDM profile is refused while enrolled.
	if _, err := d.EnrollFromURL(ctx(t), f.serve(f.signedProfile(f.options()))); err != nil {
		t.Fatal(err)
	}
	o := f.options()
	o.Identifier = "com.example.other"
	_, err = d.Install(ctx(t), f.signedProfile(o))
	var pe *ProfileError
	if !errors.As(err, &pe) || !errors.Is(err, ErrAlreadyEnrolled) || pe.HTTPStatus() != http.StatusConflict {
		t.Fatalf("second MDM profile: %v", err)
	}
}
