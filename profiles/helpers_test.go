package profiles

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testPKI is a throwaway CA hierarchy made with crypto/x509 alone:
// root → intermediate → profile signer (RSA), plus an unrelated root.
type testPKI struct {
	root, inter, signer, otherRoot *x509.Certificate
	rootKey, interKey              *ecdsa.PrivateKey
	signerKey                      *rsa.PrivateKey
	ecSigner                       *x509.Certificate // signed by root directly
	ecSignerKey                    *ecdsa.PrivateKey
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  error
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() { pki, pkiErr = newTestPKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return &pki
}

func newTestPKI() (testPKI, error) {
	var p testPKI
	var err error
	serial := int64(1)
	issue := func(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		if tmpl.NotAfter.IsZero() {
			tmpl.NotAfter = time.Now().Add(24 * time.Hour)
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"mockmdm tests"}},
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
	}
	if p.rootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return p, err
	}
	if p.root, err = issue(caTmpl("profiles test root"), p.rootKey.Public(), nil, p.rootKey); err != nil {
		return p, err
	}
	if p.interKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return p, err
	}
	if p.inter, err = issue(caTmpl("profiles test intermediate"), p.interKey.Public(), p.root, p.rootKey); err != nil {
		return p, err
	}
	if p.signerKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return p, err
	}
	// No extended key usage: openssl cms -verify (purpose smimesign) then
	// accepts it, as a device does.
	signerTmpl := &x509.Certificate{
		Subject:  pkix.Name{CommonName: "profiles test signer", Organization: []string{"mockmdm tests"}},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if p.signer, err = issue(signerTmpl, p.signerKey.Public(), p.inter, p.interKey); err != nil {
		return p, err
	}
	if p.ecSignerKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return p, err
	}
	ecTmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "profiles test EC signer"}, KeyUsage: x509.KeyUsageDigitalSignature}
	if p.ecSigner, err = issue(ecTmpl, p.ecSignerKey.Public(), p.root, p.rootKey); err != nil {
		return p, err
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	if p.otherRoot, err = issue(caTmpl("profiles unrelated root"), otherKey.Public(), nil, otherKey); err != nil {
		return p, err
	}
	return p, nil
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// testOptions is a complete device-enrollment option set.
func testOptions(root *x509.Certificate) EnrollmentOptions {
	return EnrollmentOptions{
		Identifier:          "com.example.mockmdm.enroll",
		DisplayName:         "mockmdm enrollment",
		Organization:        "Example Org",
		Description:         "Enrolls this device in mockmdm.",
		ServerURL:           "https://mdm.example.com/mdm",
		CheckInURL:          "https://mdm.example.com/checkin",
		Topic:               "com.apple.mgmt.External.6b6e5f6c-9d3a-4c1e-8f00-2a1b3c4d5e6f",
		SignMessage:         true,
		AccessRights:        AccessAll,
		CheckOutWhenRemoved: true,
		ServerCapabilities:  []string{CapabilityPerUserConnections, CapabilityBootstrapToken},
		RootCA:              root,
		SCEPURL:             "https://mdm.example.com/scep",
		SCEPChallenge:       "s3cret",
		SCEPName:            "mockmdm-ca",
		SCEPSubject:         [][][]string{{{"O", "Example Org"}}, {{"CN", "mockmdm device"}}},
		SCEPKeysize:         2048,
		SCEPKeyUsage:        5,
	}
}

func mustBuild(t testing.TB, o EnrollmentOptions) []byte {
	t.Helper()
	b, err := BuildEnrollment(o)
	if err != nil {
		t.Fatalf("BuildEnrollment: %v", err)
	}
	return b
}

func mustSign(t testing.TB, profile []byte) []byte {
	t.Helper()
	p := getPKI(t)
	der, err := Sign(profile, p.signer, p.signerKey, p.inter)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return der
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// statusOf is the status an error carries, 0 when it carries none.
func statusOf(err error) int {
	var s interface{ HTTPStatus() int }
	if errors.As(err, &s) {
		return s.HTTPStatus()
	}
	return 0
}
