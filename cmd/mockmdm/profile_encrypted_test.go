package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/profiles"
)

// TestProfileInspectEncrypted: without a key, inspect says the payloads are
// encrypted and to whom; with the identity's -key and -cert it shows them;
// with another identity it fails saying whom the profile is for.
func TestProfileInspectEncrypted(t *testing.T) {
	dir, unsigned, _, _, _ := profileFixture(t)
	identity := func(name string, serial int64) (certPath, keyPath string, cert *x509.Certificate) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ = x509.ParseCertificate(der)
		certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		_ = os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		_ = os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
		return certPath, keyPath, cert
	}
	devCert, devKey, cert := identity("device-identity", 4242)
	otherCert, otherKey, _ := identity("other-identity", 7)
	plain, _ := os.ReadFile(unsigned)
	enc, err := profiles.Encrypt(plain, cert)
	if err != nil {
		t.Fatal(err)
	}
	encPath := filepath.Join(dir, "encrypted.mobileconfig")
	_ = os.WriteFile(encPath, enc, 0o600)

	out, err := runProfile("inspect", encPath)
	if err != nil || !strings.Contains(out, "encrypted: yes, to issuer \"CN=device-identity\", serial 1092") ||
		!strings.Contains(out, "give -key and -cert") || !strings.Contains(out, "payloads: 0") {
		t.Fatalf("inspect without a key: %v\n%s", err, out)
	}
	out, err = runProfile("inspect", "-key", devKey, "-cert", devCert, encPath)
	if err != nil || !strings.Contains(out, "decrypted: yes") || !strings.Contains(out, "com.apple.mdm") || strings.Contains(out, "payloads: 0") {
		t.Fatalf("inspect with the identity: %v\n%s", err, out)
	}
	if _, err := runProfile("inspect", "-key", otherKey, "-cert", otherCert, encPath); err == nil || !strings.Contains(err.Error(), "encrypted to [issuer \"CN=device-identity\"") {
		t.Fatalf("inspect with another identity: %v", err)
	}
	if _, err := runProfile("inspect", "-key", devKey, encPath); err == nil || exitCode(err) != 2 {
		t.Fatalf("-key without -cert: %v", err)
	}
}
