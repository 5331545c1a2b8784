package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPEMRoundTrip(t *testing.T) {
	ca := testCA(t)
	leaf := identity(t, ca, deviceKey(t, 0), "pem", time.Now(), time.Hour)
	dir := filepath.Join(t.TempDir(), "nested", "data")
	certPath, keyPath := filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem")

	if err := WriteCertPEM(certPath, leaf, ca.Cert); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPEM(keyPath, deviceKey(t, 0)); err != nil {
		t.Fatal(err)
	}
	assertMode(t, certPath, 0o644)
	assertMode(t, keyPath, 0o600)

	got, err := ReadCertPEM(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(leaf) || !got[1].Equal(ca.Cert) {
		t.Fatal("certificates did not round-trip in order")
	}
	key, err := ReadKeyPEM(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(deviceKey(t, 0)) {
		t.Fatal("key did not round-trip")
	}
	raw, _ := os.ReadFile(keyPath)
	if block, _ := pem.Decode(raw); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("key is not written as PKCS#8 PRIVATE KEY")
	}

	// Overwrite keeps the mode and replaces the content.
	if err := WriteCertPEM(certPath, ca.Cert); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadCertPEM(certPath); len(got) != 1 {
		t.Fatalf("after overwrite: %d certificates", len(got))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %o, want %o", filepath.Base(path), got, want)
	}
}

func TestReadKeyPEMFormats(t *testing.T) {
	dir := t.TempDir()
	key := deviceKey(t, 2)
	write := func(name string, blocks ...*pem.Block) string {
		t.Helper()
		var data []byte
		for _, b := range blocks {
			data = append(data, pem.EncodeToMemory(b)...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkcs1 := write("pkcs1.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if got, err := ReadKeyPEM(pkcs1); err != nil || !got.Equal(key) {
		t.Fatalf("PKCS#1: %v", err)
	}
	// A certificate before the key, as in a combined file.
	combined := write("combined.pem", &pem.Block{Type: "CERTIFICATE", Bytes: testCA(t).Cert.Raw}, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if got, err := ReadKeyPEM(combined); err != nil || !got.Equal(key) {
		t.Fatalf("combined: %v", err)
	}
	if cs, err := ReadCertPEM(combined); err != nil || len(cs) != 1 {
		t.Fatalf("certificates of combined file: %d, %v", len(cs), err)
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "nope.pem")},
		{"empty", write("empty.pem")},
		{"not PEM", writeRaw(t, dir, "garbage.pem", "this is not PEM\n")},
		{"EC key", write("ec.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
		{"corrupt PKCS#8", write("bad8.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}})},
		{"corrupt PKCS#1", write("bad1.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("nope")})},
		{"encrypted PKCS#8", write("enc8.pem", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")})},
		{"encrypted PKCS#1", write("enc1.pem", &pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte("x")})},
		{"only a certificate", write("cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: testCA(t).Cert.Raw})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadKeyPEM(tc.path); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if _, err := ReadKeyPEM(filepath.Join(dir, "nope.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key file: %v does not match fs.ErrNotExist", err)
	}
}

func writeRaw(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadCertPEMErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	if _, err := ReadCertPEM(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v does not match fs.ErrNotExist", err)
	}
	cases := map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("hello, world\n"),
		"key only":  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(deviceKey(t, 0))}),
		"bad DER":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x82, 0xff}}),
		"truncated": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testCA(t).Cert.Raw[:100]}),
		"oversized": append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testCA(t).Cert.Raw}), make([]byte, maxPEMFile)...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadCertPEM(p); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if err := WriteCertPEM(filepath.Join(dir, "none.pem")); err == nil {
		t.Fatal("writing no certificate should fail")
	}
	if err := WriteKeyPEM(filepath.Join(dir, "none.key"), nil); err == nil {
		t.Fatal("writing a nil key should fail")
	}
}

func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")

	ca, created, err := LoadOrCreateCA(certPath, keyPath, "load test CA", 1024, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !created || ca.Cert.Subject.CommonName != "load test CA" {
		t.Fatalf("created=%v CN=%q", created, ca.Cert.Subject.CommonName)
	}
	assertMode(t, certPath, 0o644)
	assertMode(t, keyPath, 0o600)

	again, created, err := LoadOrCreateCA(certPath, keyPath, "ignored name", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Fatal("an existing CA was re-created")
	}
	if !again.Cert.Equal(ca.Cert) || !again.Key.Equal(ca.Key) {
		t.Fatal("reloaded CA differs")
	}
	// The reloaded CA still issues certificates that chain to the original.
	leaf := identity(t, again, deviceKey(t, 0), "after reload", time.Now(), time.Hour)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}

	t.Run("key missing", func(t *testing.T) {
		d := t.TempDir()
		if err := WriteCertPEM(filepath.Join(d, "ca.pem"), ca.Cert); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateCA(filepath.Join(d, "ca.pem"), filepath.Join(d, "ca.key"), "x", 1024, time.Hour); err == nil || !strings.Contains(err.Error(), "ca.key") {
			t.Fatalf("want an error naming the missing key, got %v", err)
		}
	})
	t.Run("cert missing", func(t *testing.T) {
		d := t.TempDir()
		if err := WriteKeyPEM(filepath.Join(d, "ca.key"), ca.Key); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateCA(filepath.Join(d, "ca.pem"), filepath.Join(d, "ca.key"), "x", 1024, time.Hour); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("key of another certificate", func(t *testing.T) {
		d := t.TempDir()
		WriteCertPEM(filepath.Join(d, "ca.pem"), ca.Cert)
		WriteKeyPEM(filepath.Join(d, "ca.key"), otherCA(t).Key)
		if _, _, err := LoadOrCreateCA(filepath.Join(d, "ca.pem"), filepath.Join(d, "ca.key"), "x", 1024, time.Hour); err == nil || !strings.Contains(err.Error(), "does not belong") {
			t.Fatalf("want a key mismatch error, got %v", err)
		}
	})
	t.Run("not a CA", func(t *testing.T) {
		d := t.TempDir()
		WriteCertPEM(filepath.Join(d, "ca.pem"), leaf)
		WriteKeyPEM(filepath.Join(d, "ca.key"), deviceKey(t, 0))
		if _, _, err := LoadOrCreateCA(filepath.Join(d, "ca.pem"), filepath.Join(d, "ca.key"), "x", 1024, time.Hour); err == nil || !strings.Contains(err.Error(), "not a CA") {
			t.Fatalf("want a not-a-CA error, got %v", err)
		}
	})
}
