package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/nanodep/tokenpki"
)

var tokenKP struct {
	once       sync.Once
	ours, them *TokenKeyPair
	err        error
}

// tokenKeyPairs are two token key pairs shared by the tests (RSA 2048 is slow).
func tokenKeyPairs(tb testing.TB) (ours, them *TokenKeyPair) {
	tb.Helper()
	tokenKP.once.Do(func() {
		if tokenKP.ours, tokenKP.err = NewTokenKeyPair("", 0); tokenKP.err != nil {
			return
		}
		tokenKP.them, tokenKP.err = NewTokenKeyPair("tester's depserver", time.Hour)
	})
	if tokenKP.err != nil {
		tb.Fatal(tokenKP.err)
	}
	return tokenKP.ours, tokenKP.them
}

func TestADETokenRoundTrip(t *testing.T) {
	ours, _ := tokenKeyPairs(t)
	now := time.Now()
	p7m, tok, err := GenerateADEToken(ours.Cert, VariantValid, now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(p7m, []byte("Content-Type: application/pkcs7-mime; name=\"smime.p7m\"; smime-type=enveloped-data\r\n")) {
		t.Errorf("p7m does not start with ABM's S/MIME header:\n%.200s", p7m)
	}
	for _, f := range []struct{ name, v, prefix string }{
		{"consumer_key", tok.ConsumerKey, "CK_"}, {"consumer_secret", tok.ConsumerSecret, "CS_"},
		{"access_token", tok.AccessToken, "AT_"}, {"access_secret", tok.AccessSecret, "AS_"},
	} {
		if !strings.HasPrefix(f.v, f.prefix) || len(f.v) < 40 {
			t.Errorf("%s = %q, want %s and random hex", f.name, f.v, f.prefix)
		}
	}
	got, err := ours.DecryptADEToken(p7m)
	if err != nil {
		t.Fatal(err)
	}
	if got != tok {
		t.Errorf("decrypted %+v, want %+v", got, tok)
	}
	if err := CheckADEToken(got, now, "", false); err != nil {
		t.Errorf("fresh token refused: %v", err)
	}
	if err := CheckADEToken(got, now, tok.ConsumerKey, false); err != nil {
		t.Errorf("same consumer key refused: %v", err)
	}
	if st := got.Status(now); st.State != TokenActive || st.DaysLeft < 364 {
		t.Errorf("status %+v, want active with ~365 days", st)
	}
}

// TestADETokenNanoDEPDecrypts: NanoDEP's tokenpki — the code a real DEP
// server uses to open ABM's .p7m — opens ours for a certificate it made.
func TestADETokenNanoDEPDecrypts(t *testing.T) {
	key, cert, err := tokenpki.SelfSignedRSAKeypair("nanodep", 1)
	if err != nil {
		t.Fatal(err)
	}
	p7m, tok, err := GenerateADEToken(cert, VariantValid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	js, err := tokenpki.DecryptTokenJSON(p7m, cert, key)
	if err != nil {
		t.Fatalf("tokenpki cannot decrypt our token: %v", err)
	}
	var got struct {
		ConsumerKey       string    `json:"consumer_key"`
		ConsumerSecret    string    `json:"consumer_secret"`
		AccessToken       string    `json:"access_token"`
		AccessSecret      string    `json:"access_secret"`
		AccessTokenExpiry time.Time `json:"access_token_expiry"`
	}
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatalf("tokenpki's JSON %q: %v", js, err)
	}
	if got.ConsumerKey != tok.ConsumerKey || got.ConsumerSecret != tok.ConsumerSecret || got.AccessToken != tok.AccessToken ||
		got.AccessSecret != tok.AccessSecret || !got.AccessTokenExpiry.Equal(tok.AccessTokenExpiry) {
		t.Errorf("tokenpki read %+v, want %+v", got, tok)
	}
}

// TestADETokenOpenSSLDecrypts: openssl's S/MIME reader opens our .p7m with
// the key, and the plaintext is ABM's BEGIN/END MESSAGE framing.
func TestADETokenOpenSSLDecrypts(t *testing.T) {
	bin := openssl(t)
	ours, _ := tokenKeyPairs(t)
	p7m, tok, err := GenerateADEToken(ours.Cert, VariantValid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, keyPath := filepath.Join(dir, "token_smime.p7m"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(in, p7m, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPEM(keyPath, ours.Key); err != nil {
		t.Fatal(err)
	}
	certPath := writePEMFile(t, dir, "cert.pem", ours.Cert)
	out, err := exec.Command(bin, "smime", "-decrypt", "-in", in, "-inkey", keyPath, "-recip", certPath).Output()
	if err != nil {
		t.Fatalf("openssl smime -decrypt: %v", err)
	}
	s := string(out)
	if !strings.Contains(s, "-----BEGIN MESSAGE-----") || !strings.Contains(s, "-----END MESSAGE-----") ||
		!strings.Contains(s, `"consumer_key":"`+tok.ConsumerKey+`"`) {
		t.Errorf("openssl plaintext lacks the framing or the consumer key:\n%s", s)
	}
}

func TestADETokenRefusals(t *testing.T) {
	ours, them := tokenKeyPairs(t)
	now := time.Now()
	gen := func(v TokenVariant) []byte {
		p7m, _, err := GenerateADEToken(ours.Cert, v, now)
		if err != nil {
			t.Fatal(err)
		}
		return p7m
	}
	good := gen(VariantValid)
	toThem, _, err := GenerateADEToken(them.Cert, VariantValid, now)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := smimeBody(good)
	noFields := sealRaw(t, ours.Cert, "Content-Type: text/plain\r\n\r\n-----BEGIN MESSAGE-----\r\n{\"consumer_key\":\"CK_1\",\"access_token\":\"AT_1\"}\r\n-----END MESSAGE-----\r\n")
	notJSON := sealRaw(t, ours.Cert, "Content-Type: text/plain\r\n\r\n-----BEGIN MESSAGE-----\r\n{consumer_key\r\n-----END MESSAGE-----\r\n")
	noFrame := sealRaw(t, ours.Cert, "Content-Type: text/plain\r\n\r\n{\"consumer_key\":\"CK_1\"}\r\n")

	for _, tc := range []struct {
		name  string
		in    []byte
		kind  error
		words []string
	}{
		{"wrong recipient", gen(VariantWrongRecipient), ErrTokenWrongRecipient, []string{"another-mdm-server", "mockmdm-depserver", "serial"}},
		{"encrypted to the tester's cert", toThem, ErrTokenWrongRecipient, []string{"tester's depserver", "mockmdm-depserver"}},
		{"corrupt variant", gen(VariantCorrupt), ErrTokenCorrupt, []string{"not CMS"}},
		{"empty", nil, ErrTokenCorrupt, []string{"not S/MIME"}},
		{"raw DER, no headers", der, ErrTokenCorrupt, []string{"not S/MIME"}},
		{"text/plain", []byte("Content-Type: text/plain\r\n\r\naGVsbG8=\r\n"), ErrTokenCorrupt, []string{"application/pkcs7-mime"}},
		{"signed-data smime-type", []byte("Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\naGVsbG8=\r\n"), ErrTokenCorrupt, []string{"enveloped-data"}},
		{"body not base64", []byte("Content-Type: application/pkcs7-mime\r\n\r\n!!!not base64!!!\r\n"), ErrTokenCorrupt, []string{"not base64"}},
		{"body empty", []byte("Content-Type: application/pkcs7-mime\r\n\r\n"), ErrTokenCorrupt, []string{"empty"}},
		{"base64 of junk", []byte("Content-Type: application/pkcs7-mime\r\n\r\naGVsbG8gd29ybGQ=\r\n"), ErrTokenCorrupt, []string{"not CMS"}},
		{"huge", append(bytes.Repeat([]byte("A"), maxADEToken), good...), ErrTokenCorrupt, []string{"limit"}},
		{"missing fields", noFields, ErrTokenMissingFields, []string{"consumer_secret", "access_secret", "access_token_expiry"}},
		{"not JSON", notJSON, ErrTokenCorrupt, []string{"not JSON"}},
		{"no message framing", noFrame, ErrTokenCorrupt, []string{"BEGIN MESSAGE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ours.DecryptADEToken(tc.in)
			wantTokenErr(t, err, tc.kind, http.StatusBadRequest, tc.words...)
		})
	}
}

// sealRaw envelopes arbitrary plaintext the way EncryptADEToken does.
func sealRaw(t *testing.T, to *x509.Certificate, plain string) []byte {
	t.Helper()
	p7m, err := encryptRaw([]byte(plain), to)
	if err != nil {
		t.Fatal(err)
	}
	return p7m
}

func wantTokenErr(t *testing.T, err, kind error, status int, words ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want kind %v", err, kind)
	}
	var te *ADETokenError
	if !errors.As(err, &te) || te.HTTPStatus() != status {
		t.Fatalf("err = %#v, want an *ADETokenError with status %d", err, status)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not mention %q", err, w)
		}
	}
}

func TestCheckADEToken(t *testing.T) {
	ours, _ := tokenKeyPairs(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p7m, tok, err := GenerateADEToken(ours.Cert, VariantExpired, now)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ours.DecryptADEToken(p7m)
	if err != nil {
		t.Fatalf("an expired token must still decrypt (to show its status): %v", err)
	}
	wantTokenErr(t, CheckADEToken(expired, now, "", false), ErrTokenExpired, http.StatusBadRequest, "2026-02-28T12:00:00Z")
	if st := expired.Status(now); st.State != TokenExpired || st.DaysLeft != -1 {
		t.Errorf("status %+v, want expired a day ago (-1)", st)
	}

	fresh := tok
	fresh.AccessTokenExpiry = now.Add(90 * 24 * time.Hour)
	err = CheckADEToken(fresh, now, "CK_different", false)
	wantTokenErr(t, err, ErrTokenConsumerKey, http.StatusConflict, prefix(fresh.ConsumerKey, 8), "CK_diffe", "force")
	if err := CheckADEToken(fresh, now, "CK_different", true); err != nil {
		t.Errorf("forced: %v", err)
	}
	wantTokenErr(t, CheckADEToken(ADEToken{ConsumerKey: "CK_x"}, now, "", false), ErrTokenMissingFields, 400, "consumer_secret")

	for _, tc := range []struct {
		left  time.Duration
		state string
		days  int
	}{
		{400 * 24 * time.Hour, TokenActive, 400},
		{30*24*time.Hour + time.Minute, TokenActive, 30},
		{29*24*time.Hour + time.Hour, TokenExpiringSoon, 29},
		{time.Hour, TokenExpiringSoon, 0},
		{0, TokenExpired, 0},
		{-3*24*time.Hour - time.Hour, TokenExpired, -3},
	} {
		st := ADEToken{AccessTokenExpiry: now.Add(tc.left)}.Status(now)
		if st.State != tc.state || st.DaysLeft != tc.days {
			t.Errorf("%v left: %+v, want %s %d", tc.left, st, tc.state, tc.days)
		}
	}
}

func TestParseTokenVariantAndCertificate(t *testing.T) {
	for in, want := range map[string]TokenVariant{"": VariantValid, "valid": VariantValid, "Expired": VariantExpired, "wrong-recipient": VariantWrongRecipient, "corrupt": VariantCorrupt} {
		if got, err := ParseTokenVariant(in); err != nil || got != want {
			t.Errorf("ParseTokenVariant(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseTokenVariant("broken"); err == nil || !strings.Contains(err.Error(), "wrong-recipient") {
		t.Errorf("unknown variant: %v", err)
	}
	ours, _ := tokenKeyPairs(t)
	if c, err := ParseTokenCertificate(ours.CertPEM()); err != nil || !c.Equal(ours.Cert) {
		t.Errorf("PEM: %v", err)
	}
	if c, err := ParseTokenCertificate(ours.Cert.Raw); err != nil || !c.Equal(ours.Cert) {
		t.Errorf("DER: %v", err)
	}
	_, err := ParseTokenCertificate([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	wantTokenErr(t, err, ErrTokenCertificate, 400, "CERTIFICATE")
	_, err = ParseTokenCertificate([]byte("hello"))
	wantTokenErr(t, err, ErrTokenCertificate, 400, "not a certificate")
}

func TestLoadOrCreateTokenKeyPair(t *testing.T) {
	dir := t.TempDir()
	cp, kp := filepath.Join(dir, "token.pem"), filepath.Join(dir, "token.key")
	a, created, err := LoadOrCreateTokenKeyPair(cp, kp, "", 0)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	b, created, err := LoadOrCreateTokenKeyPair(cp, kp, "", 0)
	if err != nil || created || !b.Cert.Equal(a.Cert) {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	if a.Cert.KeyUsage != x509.KeyUsageKeyEncipherment|x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v", a.Cert.KeyUsage)
	}
	if err := os.Remove(kp); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateTokenKeyPair(cp, kp, "", 0); err == nil {
		t.Error("a certificate without its key must not be silently replaced")
	}
}

// FuzzDecryptADEToken feeds the .p7m reader arbitrary bytes: it must return
// a token or an *ADETokenError with a 4xx, never panic.
func FuzzDecryptADEToken(f *testing.F) {
	ours, _ := tokenKeyPairs(f)
	now := time.Now()
	for _, v := range []TokenVariant{VariantValid, VariantExpired, VariantWrongRecipient, VariantCorrupt} {
		p7m, _, err := GenerateADEToken(ours.Cert, v, now)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p7m)
	}
	f.Add([]byte("Content-Type: application/pkcs7-mime\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n"))
	f.Add([]byte("Content-Type: application/pkcs7-mime\n\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p7m []byte) {
		tok, err := ours.DecryptADEToken(p7m)
		if err != nil {
			var te *ADETokenError
			if !errors.As(err, &te) || te.HTTPStatus() < 400 || te.HTTPStatus() > 499 {
				t.Fatalf("error %v is not a 4xx *ADETokenError", err)
			}
			return
		}
		if m := tok.Missing(); len(m) > 0 {
			t.Fatalf("accepted a token missing %v", m)
		}
	})
}
