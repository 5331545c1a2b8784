package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/certs"
)

// PKI is everything cryptographic a mockmdm instance keeps in its data
// directory, created on first start and reused after.
type PKI struct {
	// CA is the test CA: it issues the TLS server certificate, the
	// profile-signing certificate and every device identity.
	CA *certs.CA
	// TLS is the HTTPS server certificate for the configured hosts.
	TLS tls.Certificate
	// Signer signs enrollment profiles.
	SignerCert *x509.Certificate
	SignerKey  *rsa.PrivateKey
	// PushCA stands in for Apple's push certificate issuer.
	PushCA *certs.CA
	// PushCert is the APNs push certificate (the mock one, or one uploaded);
	// its topic goes in the profile. PushChain holds the certificates that
	// came with an uploaded one (its issuers), for the TLS handshake.
	PushCert  *x509.Certificate
	PushKey   *rsa.PrivateKey
	PushChain []*x509.Certificate
	Topic     string
	// ADETokenKeys is the MDM server's key pair for ADE server tokens: the
	// certificate an admin uploads to Apple Business Manager, the key that
	// decrypts the .p7m token it gives back.
	ADETokenKeys *certs.TokenKeyPair
	// AppleDeviceCA stands in for Apple's device CA: virtual devices sign
	// their MachineInfo with certificates it issues, and the ADE enrollment
	// endpoint trusts it (in strict mode).
	AppleDeviceCA *certs.AppleDeviceCA
	// Dir is the data directory ("" for a PKI made in memory).
	Dir string
	// APIKey protects the REST API.
	APIKey string
	// SCEPChallenge is the static SCEP challenge put in the enrollment profile.
	SCEPChallenge string
	// Created lists what this start created (empty on a reuse).
	Created []string
}

// Key sizes and lifetimes of what the bootstrap creates.
const (
	caKeyBits     = 2048
	caValidity    = 10 * 365 * 24 * time.Hour
	leafValidity  = 800 * 24 * time.Hour // TLS: under Apple's 825-day limit
	renewBefore   = 30 * 24 * time.Hour
	secretEntropy = 24
)

// LoadOrCreatePKI opens (creating what is missing) the PKI in dir. hosts are
// the DNS names and IP addresses the TLS certificate must cover; when they
// change, or the certificate nears expiry, it is issued again.
func LoadOrCreatePKI(dir string, hosts []string, opts ...PKIOption) (*PKI, error) {
	cfg := pkiConfig{caKeyBits: caKeyBits}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory %s: %w", dir, err)
	}
	p := &PKI{}
	path := func(name string) string { return filepath.Join(dir, name) }

	ca, created, err := certs.LoadOrCreateCA(path("ca.pem"), path("ca.key"), "mockmdm test CA", cfg.caKeyBits, caValidity)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	p.CA = ca
	if created {
		p.Created = append(p.Created, "test CA")
	}

	if p.TLS, err = loadOrIssueTLS(dir, ca, hosts, &p.Created); err != nil {
		return nil, err
	}

	p.SignerCert, p.SignerKey, err = loadOrCreateLeaf(path("signer.pem"), path("signer.key"), func() (*x509.Certificate, *rsa.PrivateKey, error) {
		p.Created = append(p.Created, "profile-signing certificate")
		return ca.IssueSigner("mockmdm profile signing", leafValidity)
	})
	if err != nil {
		return nil, fmt.Errorf("profile-signing certificate: %w", err)
	}

	pushCA, created, err := certs.LoadOrCreateCA(path("push-ca.pem"), path("push-ca.key"), "mockmdm mock Apple push CA", caKeyBits, caValidity)
	if err != nil {
		return nil, fmt.Errorf("mock push CA: %w", err)
	}
	if created {
		p.Created = append(p.Created, "mock push CA")
	}
	p.PushCA = pushCA
	p.Dir = dir
	if uploaded, chain, key, ok := loadUploadedPush(path("push.pem"), path("push.key"), pushCA); ok {
		// An uploaded certificate (Apple's, or another issuer's) is the
		// operator's: never replace it, even near expiry — status warns.
		p.PushCert, p.PushChain, p.PushKey = uploaded, chain, key
	} else {
		p.PushCert, p.PushKey, err = loadOrCreateLeaf(path("push.pem"), path("push.key"), func() (*x509.Certificate, *rsa.PrivateKey, error) {
			// Renewal keeps the topic, as Apple's portal does on "Renew": a new
			// topic would strand every device enrolled under the old one.
			topic := certs.NewTopic()
			if old, err := certs.ReadCertPEM(path("push.pem")); err == nil && len(old) > 0 {
				if t, err := certs.TopicFromCert(old[0]); err == nil {
					topic = t
				}
				p.Created = append(p.Created, "renewed mock push certificate (same topic)")
			} else {
				p.Created = append(p.Created, "mock push certificate")
			}
			return certs.NewMockPushCert(pushCA, topic, 365*24*time.Hour)
		})
		if err != nil {
			return nil, fmt.Errorf("mock push certificate: %w", err)
		}
	}
	if p.Topic, err = certs.TopicFromCert(p.PushCert); err != nil {
		return nil, fmt.Errorf("mock push certificate %s: %w", path("push.pem"), err)
	}

	kp, created, err := certs.LoadOrCreateTokenKeyPair(path("ade-token.pem"), path("ade-token.key"), "mockmdm-depserver", caValidity)
	if err != nil {
		return nil, fmt.Errorf("ADE server-token key pair: %w", err)
	}
	p.ADETokenKeys = kp
	if created {
		p.Created = append(p.Created, "ADE server-token key pair")
	}

	appleCA, created, err := certs.LoadOrCreateCA(path("apple-device-ca.pem"), path("apple-device-ca.key"), certs.AppleDeviceCAName, caKeyBits, caValidity)
	if err != nil {
		return nil, fmt.Errorf("mock Apple device CA: %w", err)
	}
	if p.AppleDeviceCA, err = certs.LoadAppleDeviceCA(appleCA.Cert, appleCA.Key); err != nil {
		return nil, fmt.Errorf("mock Apple device CA: %w", err)
	}
	if created {
		p.Created = append(p.Created, "mock Apple device CA")
	}

	if p.APIKey, err = loadOrCreateSecret(path("api-key"), &p.Created, "API key"); err != nil {
		return nil, err
	}
	if p.SCEPChallenge, err = loadOrCreateSecret(path("scep-challenge"), &p.Created, "SCEP challenge"); err != nil {
		return nil, err
	}
	return p, nil
}

// loadUploadedPush returns the push certificate in certPath when it was
// not issued by the mock push CA (so it was uploaded), with its chain and key.
func loadUploadedPush(certPath, keyPath string, mockCA *certs.CA) (*x509.Certificate, []*x509.Certificate, *rsa.PrivateKey, bool) {
	cs, err := certs.ReadCertPEM(certPath)
	if err != nil || len(cs) == 0 || cs[0].CheckSignatureFrom(mockCA.Cert) == nil {
		return nil, nil, nil, false
	}
	key, err := certs.ReadKeyPEM(keyPath)
	if err != nil {
		return nil, nil, nil, false
	}
	return cs[0], cs[1:], key, true
}

// PKIOption configures LoadOrCreatePKI.
type PKIOption func(*pkiConfig)

type pkiConfig struct{ caKeyBits int }

// WithCAKeyBits sets the RSA size of a test CA created now (2048 by
// default; an existing CA keeps its own). Device identities chain to it,
// so it is what a server verifies on every request without a cache — the
// figure a benchmark varies.
func WithCAKeyBits(bits int) PKIOption { return func(c *pkiConfig) { c.caKeyBits = bits } }

func loadOrCreateLeaf(certPath, keyPath string, create func() (*x509.Certificate, *rsa.PrivateKey, error)) (*x509.Certificate, *rsa.PrivateKey, error) {
	cs, cerr := certs.ReadCertPEM(certPath)
	key, kerr := certs.ReadKeyPEM(keyPath)
	if cerr == nil && kerr == nil && len(cs) > 0 && time.Until(cs[0].NotAfter) > renewBefore {
		return cs[0], key, nil
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
		return nil, nil, cerr
	}
	cert, key, err := create()
	if err != nil {
		return nil, nil, err
	}
	if err := certs.WriteCertPEM(certPath, cert); err != nil {
		return nil, nil, err
	}
	if err := certs.WriteKeyPEM(keyPath, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func loadOrIssueTLS(dir string, ca *certs.CA, hosts []string, created *[]string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && pair.Leaf != nil {
		if coversHosts(pair.Leaf, hosts) && time.Until(pair.Leaf.NotAfter) > renewBefore {
			return pair, nil
		}
	}
	pair, err := ca.IssueServerCert(hosts, leafValidity)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS server certificate for %s: %w", strings.Join(hosts, ", "), err)
	}
	*created = append(*created, "TLS certificate for "+strings.Join(hosts, ", "))
	var chain []*x509.Certificate
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return tls.Certificate{}, err
		}
		chain = append(chain, c)
	}
	if err := certs.WriteCertPEM(certPath, chain...); err != nil {
		return tls.Certificate{}, err
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return tls.Certificate{}, fmt.Errorf("TLS key is %T, want RSA", pair.PrivateKey)
	}
	if err := certs.WriteKeyPEM(keyPath, key); err != nil {
		return tls.Certificate{}, err
	}
	return pair, nil
}

// coversHosts reports whether leaf names exactly the given hosts.
func coversHosts(leaf *x509.Certificate, hosts []string) bool {
	var have []string
	have = append(have, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	var want []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			want = append(want, ip.String())
		} else {
			want = append(want, h)
		}
	}
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(slices.Compact(have), slices.Compact(want))
}

func loadOrCreateSecret(path string, created *[]string, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	buf := make([]byte, secretEntropy)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	*created = append(*created, what)
	return s, nil
}

// NewPKI creates a PKI in memory, for harnesses that need no data
// directory: same certificates as LoadOrCreatePKI, nothing written.
func NewPKI(hosts []string) (*PKI, error) {
	ca, err := certs.NewCA("mockmdm test CA", caKeyBits, caValidity)
	if err != nil {
		return nil, err
	}
	p := &PKI{CA: ca, APIKey: newSecret(), SCEPChallenge: newSecret()}
	if p.TLS, err = ca.IssueServerCert(hosts, leafValidity); err != nil {
		return nil, err
	}
	if p.SignerCert, p.SignerKey, err = ca.IssueSigner("mockmdm profile signing", leafValidity); err != nil {
		return nil, err
	}
	if p.PushCA, err = certs.NewCA("mockmdm mock Apple push CA", caKeyBits, caValidity); err != nil {
		return nil, err
	}
	if p.PushCert, p.PushKey, err = certs.NewMockPushCert(p.PushCA, certs.NewTopic(), 365*24*time.Hour); err != nil {
		return nil, err
	}
	if p.Topic, err = certs.TopicFromCert(p.PushCert); err != nil {
		return nil, err
	}
	if p.ADETokenKeys, err = certs.NewTokenKeyPair("mockmdm-depserver", caValidity); err != nil {
		return nil, err
	}
	p.AppleDeviceCA, err = certs.NewAppleDeviceCA(caValidity)
	return p, err
}
