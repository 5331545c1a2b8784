package certs

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

func TestVerifier(t *testing.T) {
	ca := testCA(t)
	now := time.Now()
	good := identity(t, ca, deviceKey(t, 0), "good", now, time.Hour)
	foreign := identity(t, otherCA(t), deviceKey(t, 1), "foreign", now, time.Hour)
	expired := identity(t, ca, deviceKey(t, 2), "expired", now.Add(-3*time.Hour), time.Hour)
	future := identity(t, ca, deviceKey(t, 3), "future", now.Add(2*time.Hour), time.Hour)
	signer, _, err := ca.IssueSigner("profile signer", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noEKU, err := ca.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "no EKU"}}, &deviceKey(t, 4).PublicKey, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned, err := selfSignedRequester(pkix.Name{CommonName: "self-signed"}, deviceKey(t, 5))
	if err != nil {
		t.Fatal(err)
	}

	v := NewVerifier([]*x509.Certificate{ca.Cert})
	for _, tc := range []struct {
		name    string
		cert    *x509.Certificate
		kind    error
		mention string
	}{
		{"good", good, nil, ""},
		{"nil", nil, ErrNoCertificate, ""},
		{"issued by another CA", foreign, ErrUnknownAuthority, "some other CA"},
		{"self-signed", selfSigned, ErrUnknownAuthority, "not by the test CA"},
		{"expired", expired, ErrExpired, expired.NotAfter.UTC().Format(time.RFC3339)},
		{"not yet valid", future, ErrNotYetValid, future.NotBefore.UTC().Format(time.RFC3339)},
		{"profile signer (no clientAuth)", signer, ErrNoClientAuth, "clientAuth"},
		{"no EKU extension", noEKU, ErrNoClientAuth, "clientAuth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 2 { // the second round may be served from the cache
				err := v.Verify(tc.cert, now)
				if tc.kind == nil {
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					continue
				}
				wantKind(t, err, tc.kind)
				if httperr.StatusOf(err) == 401 {
					t.Fatal("a 401 would unenroll a real device")
				}
				if !strings.Contains(err.Error(), tc.mention) {
					t.Fatalf("error %q does not mention %q", err, tc.mention)
				}
			}
		})
	}
}

func TestVerifierCacheStillChecksTime(t *testing.T) {
	ca := testCA(t)
	now := time.Now()
	c := identity(t, ca, deviceKey(t, 0), "ticking", now, time.Hour)
	v := NewVerifier([]*x509.Certificate{ca.Cert})
	if err := v.Verify(c, now); err != nil {
		t.Fatal(err)
	}
	if n := len(v.cur); n != 1 {
		t.Fatalf("cache holds %d entries after one verify", n)
	}
	wantKind(t, v.Verify(c, c.NotAfter.Add(time.Second)), ErrExpired)
	wantKind(t, v.Verify(c, c.NotBefore.Add(-time.Second)), ErrNotYetValid)
	if err := v.Verify(c, now.Add(30*time.Minute)); err != nil {
		t.Fatalf("back inside the window: %v", err)
	}
}

// A leaf that outlives its CA (made by hand — our CA caps leaves at its own
// expiry) must stop verifying when the CA expires, even from the cache.
func TestVerifierCacheHonoursCAExpiry(t *testing.T) {
	short, err := NewCA("short CA", 1024, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	serial, _ := newSerial()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "outlives its CA"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, short.Cert, &deviceKey(t, 0).PublicKey, short.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	v := NewVerifier([]*x509.Certificate{short.Cert})
	if err := v.Verify(leaf, now); err != nil {
		t.Fatal(err)
	}
	err = v.Verify(leaf, now.Add(2*time.Hour))
	wantKind(t, err, ErrExpired)
	if !strings.Contains(err.Error(), "short CA") {
		t.Fatalf("error %q should name the expired CA", err)
	}
}

func TestVerifierRevokeAfterCache(t *testing.T) {
	ca := testCA(t)
	now := time.Now()
	a := identity(t, ca, deviceKey(t, 0), "to revoke", now, time.Hour)
	b := identity(t, ca, deviceKey(t, 1), "stays", now, time.Hour)
	v := NewVerifier([]*x509.Certificate{ca.Cert})
	for _, c := range []*x509.Certificate{a, b} {
		if err := v.Verify(c, now); err != nil {
			t.Fatal(err)
		}
	}
	v.Revoke(Hash(a))
	wantKind(t, v.Verify(a, now), ErrRevoked)
	wantKind(t, v.Verify(a, now), ErrRevoked) // not re-cached by the refusal
	if err := v.Verify(b, now); err != nil {
		t.Fatalf("revoking one identity affected another: %v", err)
	}
	// Upper-case hex names the same certificate; junk names none.
	v.Revoke(strings.ToUpper(Hash(b)))
	wantKind(t, v.Verify(b, now), ErrRevoked)
	for _, junk := range []string{"", "zz", strings.Repeat("g", 64), Hash(a)[:63]} {
		v.Revoke(junk)
	}
}

func TestVerifierBoundedCache(t *testing.T) {
	ca := testCA(t)
	now := time.Now()
	v := NewVerifier([]*x509.Certificate{ca.Cert}, WithVerifierCacheSize(2))
	var certs []*x509.Certificate
	for i := range 6 {
		certs = append(certs, identity(t, ca, deviceKey(t, i), "bounded", now, time.Hour))
	}
	for round := range 3 {
		for _, c := range certs {
			if err := v.Verify(c, now); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if n := len(v.cur) + len(v.prev); n > 4 {
				t.Fatalf("cache holds %d entries, bound is 2 per generation", n)
			}
		}
	}
	// An entry of the older generation is promoted on use.
	v2 := NewVerifier([]*x509.Certificate{ca.Cert}, WithVerifierCacheSize(2))
	for _, c := range certs[:3] { // the third verify rotates certs[0:2] into prev
		v2.Verify(c, now)
	}
	if _, ok := v2.prev[sha256Key(certs[0])]; !ok {
		t.Fatal("expected certs[0] in the older generation")
	}
	v2.Verify(certs[0], now)
	if _, ok := v2.cur[sha256Key(certs[0])]; !ok {
		t.Fatal("a hit in the older generation was not promoted")
	}
}

func TestVerifierWithIntermediates(t *testing.T) {
	// A two-level hierarchy: root → intermediate → leaf. NewCA limits its
	// path length to 0, so the root here is made by mustCA.
	root := mustCA(t, "root without path limit")
	now := time.Now()
	serial, _ := newSerial()
	interKey := deviceKey(t, 5)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "intermediate"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, root.Cert, &interKey.PublicKey, root.Key)
	if err != nil {
		t.Fatal(err)
	}
	interCert, _ := x509.ParseCertificate(der)
	inter := &CA{Cert: interCert, Key: interKey}
	leaf := identity(t, inter, deviceKey(t, 0), "deep", now, 30*time.Minute)

	if err := NewVerifier([]*x509.Certificate{root.Cert}).Verify(leaf, now); err == nil {
		t.Fatal("verified without the intermediate")
	}
	if err := NewVerifier([]*x509.Certificate{root.Cert}, WithIntermediates(inter.Cert)).Verify(leaf, now); err != nil {
		t.Fatal(err)
	}
}

// mustCA makes a CA without the path-length limit of NewCA.
func mustCA(t *testing.T, cn string) *CA {
	t.Helper()
	key := deviceKey(t, 4)
	serial, _ := newSerial()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &CA{Cert: c, Key: key}
}

func TestVerifierMisuse(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("no roots", func() { NewVerifier(nil) })
	mustPanic("nil root", func() { NewVerifier([]*x509.Certificate{nil}) })
	mustPanic("zero cache", func() { NewVerifier([]*x509.Certificate{testCA(t).Cert}, WithVerifierCacheSize(0)) })
}

func TestVerifierConcurrent(t *testing.T) {
	ca := testCA(t)
	now := time.Now()
	v := NewVerifier([]*x509.Certificate{ca.Cert}, WithVerifierCacheSize(3))
	var certs []*x509.Certificate
	for i := range 6 {
		certs = append(certs, identity(t, ca, deviceKey(t, i), "concurrent", now, time.Hour))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				c := certs[(g+i)%len(certs)]
				if err := v.Verify(c, now); err != nil && c != certs[5] {
					t.Errorf("verify: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() { v.Revoke(Hash(certs[5])) })
	wg.Wait()
	wantKind(t, v.Verify(certs[5], now), ErrRevoked)
}
