package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Hash is the lowercase hex SHA-256 of c.Raw — the identity of a certificate
// everywhere in mockmdm (the same digest NanoMDM binds enrollments to). A nil
// certificate hashes to "".
func Hash(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

const (
	// clockSkew is how far before "now" a new certificate becomes valid, so a
	// device whose clock runs a little behind the server's still accepts it.
	clockSkew = 5 * time.Minute

	// maxServerCertValidity is Apple's limit for TLS server certificates
	// issued after 1 September 2020 (iOS 13 / macOS 10.15 trust rules): a
	// longer-lived certificate is refused by Safari and by the MDM client.
	maxServerCertValidity = 825 * 24 * time.Hour

	// leafKeyBits is the RSA size of every key this package generates for a
	// leaf: the minimum Apple accepts for TLS and profile signing.
	leafKeyBits = 2048

	minKeyBits = 1024
	maxKeyBits = 8192
)

// CA is a certificate authority: the test CA of a mockmdm instance. Every
// certificate it issues is RSA/SHA-256 with a random 128-bit serial and
// expires no later than the CA itself.
type CA struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// NewCA creates a self-signed CA valid from a few minutes ago for validity.
// keyBits is the RSA size (1024–8192; 1024 only makes sense for throwaway
// test CAs). The CA may sign end-entity certificates only (path length 0).
func NewCA(commonName string, keyBits int, validity time.Duration) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, errors.New("certs: CA common name is empty")
	}
	if keyBits < minKeyBits || keyBits > maxKeyBits {
		return nil, fmt.Errorf("certs: CA key size %d bits is outside %d–%d", keyBits, minKeyBits, maxKeyBits)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("certs: CA validity %s is not positive", validity)
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("certs: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"mockmdm"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// newSerial returns a random positive serial of up to 128 bits, as the CA/B
// Forum asks (at least 64 bits of entropy) so that serials never repeat.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("certs: random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// issue signs tmpl for pub with the CA, filling serial, signature algorithm
// and validity. The validity window is [now-clockSkew, now+validity], cut at
// the CA's own NotAfter: a certificate that outlives its issuer would fail
// chain building on that day anyway, and saying so at issue time is clearer.
func (ca *CA) issue(tmpl *x509.Certificate, pub crypto.PublicKey, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("certs: CA has no certificate or key")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("certs: validity %s is not positive", validity)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.SignatureAlgorithm = x509.SHA256WithRSA
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-clockSkew)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(validity)
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	if !tmpl.NotAfter.After(tmpl.NotBefore) {
		return nil, fmt.Errorf("certs: CA %q expired on %s; it cannot issue a certificate valid from %s",
			ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339), tmpl.NotBefore.UTC().Format(time.RFC3339))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse issued certificate: %w", err)
	}
	return cert, nil
}

// IssueServerCert issues a TLS server certificate for hosts (DNS names or IP
// literals, IPv6 with or without brackets) with a fresh 2048-bit RSA key. It
// follows Apple's rules for TLS server certificates — names in the SAN,
// extended key usage serverAuth, SHA-256, RSA ≥ 2048 and a validity of at
// most 825 days (a longer validity is cut to 825 days) — so that a real iPad
// that trusts the CA also trusts the server. The returned chain is [leaf, CA].
func (ca *CA) IssueServerCert(hosts []string, validity time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("certs: a server certificate needs at least one host name or IP address")
	}
	var dnsNames []string
	var ips []net.IP
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if err := checkDNSName(h); err != nil {
			return tls.Certificate{}, err
		}
		dnsNames = append(dnsNames, strings.ToLower(strings.TrimSuffix(h, ".")))
	}
	key, err := rsa.GenerateKey(rand.Reader, leafKeyBits)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: generate server key: %w", err)
	}
	now := time.Now()
	notBefore := now.Add(-clockSkew)
	notAfter := now.Add(validity)
	if notAfter.Sub(notBefore) > maxServerCertValidity {
		notAfter = notBefore.Add(maxServerCertValidity)
	}
	cn := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(hosts[0]), "["), "]")
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"mockmdm"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	leaf, err := ca.issue(tmpl, &key.PublicKey, now, validity)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{
		Certificate: [][]byte{leaf.Raw, ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// checkDNSName refuses names that cannot be a dNSName SAN (empty, with a
// port, a scheme or spaces), which would otherwise produce a certificate that
// silently matches nothing.
func checkDNSName(h string) error {
	if h == "" {
		return errors.New("certs: empty host name")
	}
	if len(h) > 253 {
		return fmt.Errorf("certs: host name %.40q… is longer than 253 characters", h)
	}
	for _, r := range h {
		ok := r == '-' || r == '.' || r == '*' || r == '_' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("certs: host %q is not a DNS name or IP address (character %q; give names without scheme or port)", h, r)
		}
	}
	return nil
}

// IssueSigner issues a profile-signing certificate with a fresh 2048-bit RSA
// key: KeyUsage digitalSignature, EKU emailProtection and codeSigning (what
// macOS shows as a valid signer of a configuration profile).
func (ca *CA) IssueSigner(commonName string, validity time.Duration) (*x509.Certificate, *rsa.PrivateKey, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, nil, errors.New("certs: signer common name is empty")
	}
	key, err := rsa.GenerateKey(rand.Reader, leafKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate signer key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"mockmdm"}},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	cert, err := ca.issue(tmpl, &key.PublicKey, time.Now(), validity)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// IssueIdentity issues a device identity certificate for csr, valid from now
// for validity. See IssueIdentityAt.
func (ca *CA) IssueIdentity(csr *x509.CertificateRequest, validity time.Duration) (*x509.Certificate, error) {
	return ca.IssueIdentityAt(csr, time.Now(), validity)
}

// IssueIdentityAt issues a device identity certificate for csr as if the
// time were now (so a server running on a fake clock issues certificates its
// Verifier accepts at that clock). It checks the CSR's signature (proof that
// the requester holds the key), keeps the CSR's subject, public key and
// subject alternative names, and sets KeyUsage digitalSignature|keyEncipherment
// and EKU clientAuth — what NanoMDM requires of an MDM identity. A CSR that
// fails these checks yields an *Error with ErrBadCSR (HTTP 400).
func (ca *CA) IssueIdentityAt(csr *x509.CertificateRequest, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	if csr == nil {
		return nil, newError(ErrBadCSR, nil, "no certificate request")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, newError(ErrBadCSR, err, "the certificate request's signature does not verify with its own public key")
	}
	switch pub := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minKeyBits {
			return nil, newError(ErrBadCSR, nil, "RSA key of %d bits is too small (at least %d)", pub.N.BitLen(), minKeyBits)
		}
	case nil:
		return nil, newError(ErrBadCSR, nil, "certificate request has no usable public key")
	}
	tmpl := &x509.Certificate{
		// RawSubject keeps every attribute of the CSR's subject, in its
		// order and string types (pkix.Name would drop the ones it has no
		// field for).
		RawSubject:            csr.RawSubject,
		Subject:               csr.Subject,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              csr.DNSNames,
		EmailAddresses:        csr.EmailAddresses,
		IPAddresses:           csr.IPAddresses,
		URIs:                  csr.URIs,
	}
	return ca.issue(tmpl, csr.PublicKey, now, validity)
}
