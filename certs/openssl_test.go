package certs

import (
	"crypto/x509"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests ask OpenSSL — an implementation no one here wrote — whether
// what this package produces is what it claims to be.

func openssl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed: ", err)
	}
	return path
}

func runOpenSSL(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func writePEMFile(t *testing.T, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := WriteCertPEM(p, certs...); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenSSLVerifiesIdentityAndServerCert(t *testing.T) {
	bin := openssl(t)
	dir := t.TempDir()
	ca := testCA(t)
	caPath := writePEMFile(t, dir, "ca.pem", ca.Cert)

	id := identity(t, ca, deviceKey(t, 0), "openssl identity", time.Now(), time.Hour)
	idPath := writePEMFile(t, dir, "id.pem", id)
	if out, err := runOpenSSL(t, bin, "verify", "-x509_strict", "-CAfile", caPath, "-purpose", "sslclient", idPath); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("openssl verify identity: %v\n%s", err, out)
	}
	// And refuses it for another CA.
	otherPath := writePEMFile(t, dir, "other.pem", otherCA(t).Cert)
	if out, err := runOpenSSL(t, bin, "verify", "-CAfile", otherPath, idPath); err == nil {
		t.Fatalf("openssl verified the identity against another CA:\n%s", out)
	}

	pair, err := ca.IssueServerCert([]string{"mdm.example.test", "127.0.0.1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvPath := writePEMFile(t, dir, "server.pem", pair.Leaf)
	for _, check := range [][]string{{"-verify_hostname", "mdm.example.test"}, {"-verify_ip", "127.0.0.1"}} {
		args := append([]string{"verify", "-x509_strict", "-CAfile", caPath, "-purpose", "sslserver"}, check...)
		if out, err := runOpenSSL(t, bin, append(args, srvPath)...); err != nil || !strings.Contains(out, "OK") {
			t.Fatalf("openssl verify server cert %v: %v\n%s", check, err, out)
		}
	}
	if out, err := runOpenSSL(t, bin, "verify", "-CAfile", caPath, "-verify_hostname", "evil.example", srvPath); err == nil {
		t.Fatalf("openssl accepted the server cert for a foreign host:\n%s", out)
	}

	signer, _, err := ca.IssueSigner("openssl signer", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	signerPath := writePEMFile(t, dir, "signer.pem", signer)
	if out, err := runOpenSSL(t, bin, "verify", "-CAfile", caPath, "-purpose", "smimesign", signerPath); err != nil {
		t.Fatalf("openssl verify profile signer: %v\n%s", err, out)
	}
}

func TestOpenSSLVerifiesMdmSignature(t *testing.T) {
	bin := openssl(t)
	dir := t.TempDir()
	ca := testCA(t)
	key := deviceKey(t, 0)
	cert := identity(t, ca, key, "openssl signer", time.Now(), time.Hour)
	caPath := writePEMFile(t, dir, "ca.pem", ca.Cert)

	header, err := SignMdmSignature(checkinBody, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(header)
	sigPath, bodyPath, otherPath := filepath.Join(dir, "sig.der"), filepath.Join(dir, "body"), filepath.Join(dir, "other")
	os.WriteFile(sigPath, der, 0o600)
	os.WriteFile(bodyPath, checkinBody, 0o600)
	os.WriteFile(otherPath, append([]byte("x"), checkinBody...), 0o600)

	verify := func(content string) (string, error) {
		return runOpenSSL(t, bin, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
			"-content", content, "-CAfile", caPath, "-purpose", "any", "-out", os.DevNull)
	}
	if out, err := verify(bodyPath); err != nil {
		t.Fatalf("openssl cms -verify of our Mdm-Signature: %v\n%s", err, out)
	}
	if out, err := verify(otherPath); err == nil {
		t.Fatalf("openssl verified our signature over another body:\n%s", out)
	}
}

// TestOpenSSLSignatureVerifiesHere goes the other way: a detached CMS made
// by OpenSSL (as a stand-in for a device's) passes VerifyMdmSignature.
func TestOpenSSLSignatureVerifiesHere(t *testing.T) {
	bin := openssl(t)
	dir := t.TempDir()
	key := deviceKey(t, 0)
	cert := identity(t, testCA(t), key, "openssl device", time.Now(), time.Hour)
	certPath := writePEMFile(t, dir, "id.pem", cert)
	keyPath := filepath.Join(dir, "id.key")
	if err := WriteKeyPEM(keyPath, key); err != nil {
		t.Fatal(err)
	}
	bodyPath, sigPath := filepath.Join(dir, "body"), filepath.Join(dir, "sig.der")
	os.WriteFile(bodyPath, checkinBody, 0o600)
	for _, md := range []string{"sha256", "sha1"} {
		if out, err := runOpenSSL(t, bin, "cms", "-sign", "-binary", "-md", md, "-in", bodyPath, "-signer", certPath,
			"-inkey", keyPath, "-outform", "DER", "-out", sigPath); err != nil {
			t.Fatalf("openssl cms -sign: %v\n%s", err, out)
		}
		der, err := os.ReadFile(sigPath)
		if err != nil {
			t.Fatal(err)
		}
		info, err := VerifyMdmSignature(base64.StdEncoding.EncodeToString(der), checkinBody)
		if err != nil {
			t.Fatalf("%s: OpenSSL's detached signature: %v", md, err)
		}
		if Hash(info.Signer) != Hash(cert) || info.SigningTime.IsZero() {
			t.Fatalf("%s: signer %s, signing time %v", md, info.Signer.Subject, info.SigningTime)
		}
		_, err = VerifyMdmSignature(base64.StdEncoding.EncodeToString(der), append(checkinBody, ' '))
		wantKind(t, err, ErrSignatureMismatch)
	}
}

func TestOpenSSLPushCertSubject(t *testing.T) {
	bin := openssl(t)
	dir := t.TempDir()
	topic := NewTopic()
	cert, _, err := NewMockPushCert(otherCA(t), topic, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := writePEMFile(t, dir, "push.pem", cert)
	out, err := runOpenSSL(t, bin, "x509", "-in", p, "-noout", "-subject", "-nameopt", "RFC2253")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := "subject=UID=" + topic + ",CN=APSP:" + strings.TrimPrefix(topic, "com.apple.mgmt.External.") + ",C=US"
	if strings.TrimSpace(out) != want {
		t.Fatalf("openssl reads subject\n  %s\nwant\n  %s", strings.TrimSpace(out), want)
	}
}

func TestOpenSSLKeyFormats(t *testing.T) {
	bin := openssl(t)
	dir := t.TempDir()
	// Ours → OpenSSL: the PKCS#8 file parses and matches the certificate.
	keyPath := filepath.Join(dir, "ours.key")
	if err := WriteKeyPEM(keyPath, deviceKey(t, 0)); err != nil {
		t.Fatal(err)
	}
	if out, err := runOpenSSL(t, bin, "pkey", "-in", keyPath, "-noout", "-check"); err != nil {
		t.Fatalf("openssl cannot read our key: %v\n%s", err, out)
	}
	// OpenSSL → ours, in both encodings.
	for _, tc := range []struct {
		name       string
		args, tail []string
		head       string
	}{
		{"pkcs8", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"}, nil, "-----BEGIN PRIVATE KEY-----"},
		{"pkcs1", []string{"genrsa", "-traditional"}, []string{"1024"}, "-----BEGIN RSA PRIVATE KEY-----"},
	} {
		p := filepath.Join(dir, tc.name+".key")
		args := append(append(tc.args, "-out", p), tc.tail...)
		if out, err := runOpenSSL(t, bin, args...); err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, out)
		}
		data, _ := os.ReadFile(p)
		if !strings.HasPrefix(string(data), tc.head) {
			t.Fatalf("%s: openssl wrote %.40q", tc.name, data)
		}
		key, err := ReadKeyPEM(p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if key.N.BitLen() != 1024 {
			t.Fatalf("%s: %d bits", tc.name, key.N.BitLen())
		}
	}
	// An OpenSSL self-signed CA certificate reads back.
	caKey := filepath.Join(dir, "ours.key")
	caPath := filepath.Join(dir, "ossl-ca.pem")
	if out, err := runOpenSSL(t, bin, "req", "-x509", "-new", "-key", caKey, "-subj", "/CN=openssl CA", "-days", "1", "-out", caPath); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cs, err := ReadCertPEM(caPath)
	if err != nil || len(cs) != 1 || cs[0].Subject.CommonName != "openssl CA" {
		t.Fatalf("reading OpenSSL's certificate: %v", err)
	}
}
