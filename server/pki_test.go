package server

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
)

// TestPKIReuseAndRenewal: a second start reuses everything; a push
// certificate near expiry is renewed with the same topic; a new -hosts list
// re-issues only the TLS certificate, from the same CA.
func TestPKIReuseAndRenewal(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreatePKI(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created) == 0 {
		t.Fatal("first start created nothing")
	}
	again, err := LoadOrCreatePKI(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Created) != 0 || again.APIKey != first.APIKey || again.Topic != first.Topic || !again.CA.Cert.Equal(first.CA.Cert) {
		t.Fatalf("second start did not reuse the PKI: created %v", again.Created)
	}

	// Replace the push certificate by one about to expire, same topic.
	pushCA, _, err := certs.LoadOrCreateCA(filepath.Join(dir, "push-ca.pem"), filepath.Join(dir, "push-ca.key"), "", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), RawSubject: first.PushCert.RawSubject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pushCA.Cert, &first.PushKey.PublicKey, pushCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	expiring, _ := x509.ParseCertificate(der)
	if err := certs.WriteCertPEM(filepath.Join(dir, "push.pem"), expiring); err != nil {
		t.Fatal(err)
	}
	renewed, err := LoadOrCreatePKI(dir, []string{"localhost", "127.0.0.1", "mdm.example"})
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Topic != first.Topic {
		t.Errorf("renewal changed the push topic: %s → %s", first.Topic, renewed.Topic)
	}
	if renewed.PushCert.NotAfter.Before(time.Now().Add(300 * 24 * time.Hour)) {
		t.Error("the expiring push certificate was not renewed")
	}
	if !slices.Contains(renewed.TLS.Leaf.DNSNames, "mdm.example") {
		t.Errorf("new host not in the TLS certificate: %v", renewed.TLS.Leaf.DNSNames)
	}
	if !renewed.CA.Cert.Equal(first.CA.Cert) || renewed.APIKey != first.APIKey {
		t.Error("renewal replaced the CA or the API key")
	}
}
