package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestHash(t *testing.T) {
	ca := testCA(t)
	sum := sha256.Sum256(ca.Cert.Raw)
	if got, want := Hash(ca.Cert), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
	if got := Hash(ca.Cert); got != strings.ToLower(got) || len(got) != 64 {
		t.Fatalf("Hash %q is not 64 lowercase hex digits", got)
	}
	if Hash(nil) != "" {
		t.Fatal("Hash(nil) should be empty")
	}
}

func TestNewCA(t *testing.T) {
	ca := testCA(t)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Fatal("CA certificate is not marked as a CA")
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; c.KeyUsage != want {
		t.Fatalf("KeyUsage = %b, want %b", c.KeyUsage, want)
	}
	if c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Fatal("CA should be limited to path length 0")
	}
	if c.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("signature algorithm %v", c.SignatureAlgorithm)
	}
	if c.Subject.CommonName != "certs test CA" {
		t.Fatalf("CN %q", c.Subject.CommonName)
	}
	if n := c.SerialNumber.BitLen(); n > 128 || n < 64 || c.SerialNumber.Sign() <= 0 {
		t.Fatalf("serial %x has %d bits; want a positive random 128-bit serial", c.SerialNumber, n)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(c)}); err != nil {
		t.Fatalf("self-signed CA does not verify against itself: %v", err)
	}
	if ca.Key.N.BitLen() != 2048 {
		t.Fatalf("key has %d bits", ca.Key.N.BitLen())
	}
	if d := c.NotAfter.Sub(time.Now()); d < 10*365*24*time.Hour-time.Minute || d > 10*365*24*time.Hour+time.Minute {
		t.Fatalf("CA valid for %s more, want ~10y", d)
	}
	if c.SerialNumber.Cmp(otherCA(t).Cert.SerialNumber) == 0 {
		t.Fatal("two CAs share a serial")
	}
}

func TestNewCABadArguments(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cn       string
		bits     int
		validity time.Duration
	}{
		{"empty name", " ", 1024, time.Hour},
		{"tiny key", "x", 512, time.Hour},
		{"huge key", "x", 16384, time.Hour},
		{"no validity", "x", 1024, 0},
		{"negative validity", "x", 1024, -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewCA(tc.cn, tc.bits, tc.validity); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestIssueServerCert(t *testing.T) {
	ca := testCA(t)
	pair, err := ca.IssueServerCert([]string{"localhost", "127.0.0.1", "::1", "[fd00::2]", "MDM.Example.COM."}, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 {
		t.Fatalf("chain has %d certificates, want leaf and CA", len(pair.Certificate))
	}
	if string(pair.Certificate[1]) != string(ca.Cert.Raw) {
		t.Fatal("second certificate of the chain is not the CA")
	}
	leaf := pair.Leaf
	if leaf == nil || string(leaf.Raw) != string(pair.Certificate[0]) {
		t.Fatal("Leaf does not match the first certificate")
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok || key.N.BitLen() != 2048 || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("private key is not the 2048-bit RSA key of the leaf")
	}
	if leaf.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("signature algorithm %v", leaf.SignatureAlgorithm)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("EKU %v, want serverAuth", leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Fatal("server certificate is a CA")
	}
	for _, host := range []string{"localhost", "mdm.example.com", "127.0.0.1", "::1", "fd00::2"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if err := leaf.VerifyHostname("other.example.com"); err == nil {
		t.Error("certificate matches a host it was not issued for")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(otherCA(t).Cert), DNSName: "localhost"}); err == nil {
		t.Error("server certificate verifies against another CA")
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 31*24*time.Hour || d < 30*24*time.Hour {
		t.Errorf("validity %s, want 30 days (+ clock skew)", d)
	}
}

func TestIssueServerCertCapped(t *testing.T) {
	pair, err := testCA(t).IssueServerCert([]string{"localhost"}, 5*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d := pair.Leaf.NotAfter.Sub(pair.Leaf.NotBefore); d > 825*24*time.Hour {
		t.Fatalf("validity %s exceeds Apple's 825 days", d)
	} else if d < 825*24*time.Hour-time.Second {
		t.Fatalf("validity %s, want exactly 825 days", d)
	}
}

func TestIssueServerCertBadHosts(t *testing.T) {
	ca := testCA(t)
	for _, hosts := range [][]string{nil, {""}, {"localhost:8443"}, {"https://example.com"}, {"a b"}, {strings.Repeat("a", 300)}} {
		if _, err := ca.IssueServerCert(hosts, time.Hour); err == nil {
			t.Errorf("hosts %q: want an error", hosts)
		}
	}
}

// TestIssueServerCertTLSHandshake runs a real TLS handshake: a client that
// trusts only the test CA reaches a server that presents the issued chain.
func TestIssueServerCertTLSHandshake(t *testing.T) {
	ca := testCA(t)
	pair, err := ca.IssueServerCert([]string{"localhost", "127.0.0.1", "::1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over TLS")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()

	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(ca.Cert)}}}
	defer trusting.CloseIdleConnections()
	resp, err := trusting.Get(srv.URL)
	if err != nil {
		t.Fatalf("client trusting the test CA: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello over TLS" {
		t.Fatalf("body %q", body)
	}
	if got := resp.TLS.PeerCertificates[0]; string(got.Raw) != string(pair.Leaf.Raw) {
		t.Fatal("server presented another certificate")
	}

	// By name: localhost must match too.
	u, _ := url.Parse(srv.URL)
	_, port, _ := net.SplitHostPort(u.Host)
	resp, err = trusting.Get("https://localhost:" + port)
	if err != nil {
		t.Fatalf("by name: %v", err)
	}
	resp.Body.Close()

	stranger := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(otherCA(t).Cert)}}}
	defer stranger.CloseIdleConnections()
	if _, err := stranger.Get(srv.URL); err == nil {
		t.Fatal("a client that does not trust the test CA completed the handshake")
	} else {
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("want an unknown-authority error, got %v", err)
		}
	}
}

func TestIssueSigner(t *testing.T) {
	ca := testCA(t)
	cert, key, err := ca.IssueSigner("mockmdm profile signer", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) || key.N.BitLen() != 2048 {
		t.Fatal("key does not belong to the certificate")
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Fatalf("KeyUsage %b", cert.KeyUsage)
	}
	want := map[x509.ExtKeyUsage]bool{x509.ExtKeyUsageEmailProtection: true, x509.ExtKeyUsageCodeSigning: true}
	if len(cert.ExtKeyUsage) != 2 || !want[cert.ExtKeyUsage[0]] || !want[cert.ExtKeyUsage[1]] {
		t.Fatalf("EKU %v", cert.ExtKeyUsage)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageEmailProtection} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("verify for %v: %v", usage, err)
		}
	}
	if _, _, err := ca.IssueSigner("", time.Hour); err == nil {
		t.Fatal("empty common name accepted")
	}
}

func TestIssueIdentity(t *testing.T) {
	ca := testCA(t)
	key := deviceKey(t, 0)
	uid := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	subject := pkix.Name{
		CommonName:         "iPad 7A1B",
		Organization:       []string{"Example School"},
		OrganizationalUnit: []string{"Devices"},
		ExtraNames:         []pkix.AttributeTypeAndValue{{Type: uid, Value: "device-42"}},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        subject,
		DNSNames:       []string{"ipad.example.com"},
		EmailAddresses: []string{"student@example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueIdentity(csr, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("identity does not chain for clientAuth: %v", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("identity does not certify the CSR's key")
	}
	if string(cert.RawSubject) != string(csr.RawSubject) {
		t.Fatalf("subject %q differs from the CSR's %q", cert.Subject, csr.Subject)
	}
	var gotUID string
	for _, n := range cert.Subject.Names {
		if n.Type.Equal(uid) {
			gotUID, _ = n.Value.(string)
		}
	}
	if gotUID != "device-42" {
		t.Fatalf("UID attribute of the CSR subject lost: %q", gotUID)
	}
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; cert.KeyUsage != want {
		t.Fatalf("KeyUsage %b, want %b", cert.KeyUsage, want)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("EKU %v", cert.ExtKeyUsage)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "ipad.example.com" || len(cert.EmailAddresses) != 1 {
		t.Fatalf("SANs not copied: %v %v", cert.DNSNames, cert.EmailAddresses)
	}
	if d := time.Until(cert.NotAfter); d > 2*time.Hour || d < 2*time.Hour-time.Minute {
		t.Fatalf("valid for %s more, want 2h", d)
	}
	if cert.SerialNumber.BitLen() > 128 {
		t.Fatal("serial longer than 128 bits")
	}
}

func TestIssueIdentityECDSA(t *testing.T) {
	ca := testCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Mac"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err := ca.IssueIdentity(csr, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("identity does not certify the ECDSA key")
	}
	if err := NewVerifier([]*x509.Certificate{ca.Cert}).Verify(cert, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestIssueIdentityAtHonoursClock(t *testing.T) {
	ca := testCA(t)
	at := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	cert := identity(t, ca, deviceKey(t, 1), "fake clock", at, 90*time.Minute)
	if !cert.NotAfter.Equal(at.Add(90 * time.Minute)) {
		t.Fatalf("NotAfter %s, want %s", cert.NotAfter, at.Add(90*time.Minute))
	}
	if !cert.NotBefore.Equal(at.Add(-clockSkew)) {
		t.Fatalf("NotBefore %s, want %s", cert.NotBefore, at.Add(-clockSkew))
	}
}

func TestIssueIdentityBadCSR(t *testing.T) {
	ca := testCA(t)
	csr := newCSR(t, deviceKey(t, 0), pkix.Name{CommonName: "x"})
	forged := *csr
	forged.PublicKey = &deviceKey(t, 1).PublicKey // signature no longer matches the key
	for name, c := range map[string]*x509.CertificateRequest{"nil": nil, "forged": &forged} {
		t.Run(name, func(t *testing.T) {
			_, err := ca.IssueIdentity(c, time.Hour)
			wantKind(t, err, ErrBadCSR)
		})
	}
}

func TestIssueCappedAtCAExpiry(t *testing.T) {
	short, err := NewCA("short-lived CA", 1024, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := identity(t, short, deviceKey(t, 0), "capped", time.Now(), 365*24*time.Hour)
	if !cert.NotAfter.Equal(short.Cert.NotAfter) {
		t.Fatalf("NotAfter %s, want the CA's %s", cert.NotAfter, short.Cert.NotAfter)
	}
	// After the CA expired, it cannot issue at all.
	if _, err := short.IssueIdentityAt(newCSR(t, deviceKey(t, 0), pkix.Name{CommonName: "late"}), time.Now().Add(2*time.Hour), time.Hour); err == nil {
		t.Fatal("an expired CA issued a certificate")
	}
}
