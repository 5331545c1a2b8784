package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

// Keys are the slow part of these tests, so the package makes them once:
// two CAs and a small pool of 1024-bit device keys (throwaway, for speed).
var fixtures struct {
	once    sync.Once
	ca      *CA
	otherCA *CA
	keys    []*rsa.PrivateKey
	err     error
}

func loadFixtures(tb testing.TB) {
	tb.Helper()
	fixtures.once.Do(func() {
		if fixtures.ca, fixtures.err = NewCA("certs test CA", 2048, 10*365*24*time.Hour); fixtures.err != nil {
			return
		}
		if fixtures.otherCA, fixtures.err = NewCA("some other CA", 1024, 10*365*24*time.Hour); fixtures.err != nil {
			return
		}
		for range 6 {
			k, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				fixtures.err = err
				return
			}
			fixtures.keys = append(fixtures.keys, k)
		}
	})
	if fixtures.err != nil {
		tb.Fatalf("fixtures: %v", fixtures.err)
	}
}

func testCA(tb testing.TB) *CA  { loadFixtures(tb); return fixtures.ca }
func otherCA(tb testing.TB) *CA { loadFixtures(tb); return fixtures.otherCA }
func deviceKey(tb testing.TB, i int) *rsa.PrivateKey {
	loadFixtures(tb)
	return fixtures.keys[i%len(fixtures.keys)]
}

func newCSR(tb testing.TB, key *rsa.PrivateKey, subject pkix.Name) *x509.CertificateRequest {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		tb.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		tb.Fatal(err)
	}
	return csr
}

// identity issues a device identity of ca for key, valid from at for validity.
func identity(tb testing.TB, ca *CA, key *rsa.PrivateKey, cn string, at time.Time, validity time.Duration) *x509.Certificate {
	tb.Helper()
	c, err := ca.IssueIdentityAt(newCSR(tb, key, pkix.Name{CommonName: cn}), at, validity)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// wantKind fails unless err is a 400 *Error of the given kind.
func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("got %v, want kind %v", err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is %T, want *certs.Error", err, err)
	}
	if got := httperr.StatusOf(err); got != 400 {
		t.Fatalf("HTTP status of %v = %d, want 400", err, got)
	}
	if e.Error() == "" {
		t.Fatal("empty error message")
	}
}

func asError(err error, target **Error) bool { return errors.As(err, target) }

func sha256Key(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }
