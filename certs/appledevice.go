package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mozilla.org/pkcs7"
)

// AppleDeviceCAName is the common name of the mock "Apple iPhone Device CA".
// Real devices sign their MachineInfo with an identity Apple's CA issued at
// activation; no test can get one (PROTOCOL.md §7.2), so mockmdm keeps a
// test root of the same name that the server trusts for MachineInfo and the
// virtual devices get their identities from.
const AppleDeviceCAName = "Apple iPhone Device CA (mockmdm test root)"

// appleDeviceKeyBits is the size of a device identity key: Apple's device
// identities are RSA 1024, and a small key keeps a fleet's activation fast.
const appleDeviceKeyBits = 1024

// AppleDeviceCA is the mock Apple device CA: it issues the per-device
// identities that sign MachineInfo.
type AppleDeviceCA struct{ ca *CA }

// NewAppleDeviceCA creates a mock Apple device CA valid for validity.
func NewAppleDeviceCA(validity time.Duration) (*AppleDeviceCA, error) {
	ca, err := NewCA(AppleDeviceCAName, 2048, validity)
	if err != nil {
		return nil, err
	}
	return &AppleDeviceCA{ca: ca}, nil
}

// LoadAppleDeviceCA wraps an existing certificate and key (as the server
// keeps it in its data directory).
func LoadAppleDeviceCA(cert *x509.Certificate, key *rsa.PrivateKey) (*AppleDeviceCA, error) {
	if cert == nil || key == nil {
		return nil, errors.New("certs: Apple device CA needs a certificate and a key")
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certs: %q is not a CA certificate", cert.Subject.CommonName)
	}
	return &AppleDeviceCA{ca: &CA{Cert: cert, Key: key}}, nil
}

// Certificate is the CA's certificate: what a server trusts for MachineInfo.
func (a *AppleDeviceCA) Certificate() *x509.Certificate { return a.ca.Cert }

// Key is the CA's private key, for saving it.
func (a *AppleDeviceCA) Key() *rsa.PrivateKey { return a.ca.Key }

// IssueDevice issues a device identity for serial and udid, as Apple does
// at activation: subject CN is the UDID, the serial in serialNumber.
func (a *AppleDeviceCA) IssueDevice(serial, udid string, validity time.Duration) (*x509.Certificate, *rsa.PrivateKey, error) {
	if strings.TrimSpace(udid) == "" {
		return nil, nil, errors.New("certs: a device identity needs the device's UDID")
	}
	key, err := rsa.GenerateKey(rand.Reader, appleDeviceKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate device key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: udid, SerialNumber: serial, Organization: []string{"mockmdm device"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert, err := a.ca.issue(tmpl, &key.PublicKey, time.Now(), validity)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// SignMachineInfo wraps a MachineInfo plist in a CMS SignedData with the
// content attached, signed by a device identity (with its certificate and a
// signing time), as a device does before posting it.
func SignMachineInfo(plist []byte, cert *x509.Certificate, key crypto.PrivateKey) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(plist)
	if err != nil {
		return nil, fmt.Errorf("certs: MachineInfo SignedData: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("certs: sign MachineInfo: %w", err)
	}
	return sd.Finish()
}

// MachineInfoVerify is how strictly a server checks the signature on a
// device's MachineInfo.
type MachineInfoVerify string

const (
	// VerifyOff accepts any MachineInfo, signed or not.
	VerifyOff MachineInfoVerify = "off"
	// VerifySignature requires a CMS SignedData whose one signer's
	// signature is valid over the content, and ignores who issued the
	// signer — what MicroMDM does, because Apple's device CA certificate
	// expired in 2014 and a chain check would refuse every real device.
	VerifySignature MachineInfoVerify = "signature"
	// VerifyStrict also requires the signer to chain to the Apple device CA
	// (the mock one) and the signing time to fall in the signer's validity.
	VerifyStrict MachineInfoVerify = "strict"
)

// ParseMachineInfoVerify reads a mode name (a flag value).
func ParseMachineInfoVerify(s string) (MachineInfoVerify, error) {
	switch m := MachineInfoVerify(strings.ToLower(strings.TrimSpace(s))); m {
	case VerifyOff, VerifySignature, VerifyStrict:
		return m, nil
	}
	return "", fmt.Errorf("MachineInfo verification %q: use %q, %q or %q", s, VerifyOff, VerifySignature, VerifyStrict)
}

// Kinds of MachineInfo refusal (wrapped by *Error, status 400).
var (
	ErrMachineInfoNotCMS      = errors.New("MachineInfo is not a CMS SignedData")
	ErrMachineInfoSigners     = errors.New("MachineInfo does not have exactly one signer with its certificate")
	ErrMachineInfoSignature   = errors.New("MachineInfo signature does not verify")
	ErrMachineInfoUntrusted   = errors.New("MachineInfo signer is not issued by the Apple device CA")
	ErrMachineInfoSigningTime = errors.New("MachineInfo signing time outside the signer's validity")
)

// AppleDeviceVerifier checks MachineInfo signatures in one of the modes.
type AppleDeviceVerifier struct {
	mode  MachineInfoVerify
	roots *x509.CertPool
	now   func() time.Time
	skew  time.Duration
}

// NewAppleDeviceVerifier returns a verifier in mode that trusts roots (the
// mock Apple device CA) in strict mode. Strict mode with no root panics:
// it would refuse every device.
func NewAppleDeviceVerifier(mode MachineInfoVerify, roots []*x509.Certificate, now func() time.Time) *AppleDeviceVerifier {
	if _, err := ParseMachineInfoVerify(string(mode)); err != nil {
		panic("certs.NewAppleDeviceVerifier: " + err.Error())
	}
	if mode == VerifyStrict && len(roots) == 0 {
		panic("certs.NewAppleDeviceVerifier: strict mode needs the Apple device CA")
	}
	if now == nil {
		now = time.Now
	}
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	return &AppleDeviceVerifier{mode: mode, roots: pool, now: now, skew: clockSkew}
}

// Mode is the verifier's mode.
func (v *AppleDeviceVerifier) Mode() MachineInfoVerify { return v.mode }

// Verify checks der (the CMS SignedData a device sent) per the mode and
// returns the signer's certificate (nil in off mode or when unsigned).
func (v *AppleDeviceVerifier) Verify(der []byte) (*x509.Certificate, error) {
	if v.mode == VerifyOff {
		return nil, nil
	}
	p7, err := safeParsePKCS7(der)
	if err != nil {
		return nil, newError(ErrMachineInfoNotCMS, err, "MachineInfo must be a DER CMS SignedData signed by the device (verification mode %q)", v.mode)
	}
	if len(p7.Signers) != 1 {
		return nil, newError(ErrMachineInfoSigners, nil, "MachineInfo has %d signers; a device signs it once", len(p7.Signers))
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, newError(ErrMachineInfoSigners, nil, "MachineInfo does not include its signer's certificate")
	}
	if err := safeVerify(p7); err != nil {
		return nil, newError(ErrMachineInfoSignature, err, "MachineInfo signature by %q does not verify over its content", signer.Subject.CommonName)
	}
	if v.mode != VerifyStrict {
		return signer, nil
	}
	now := v.now()
	at := now
	var st time.Time
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeSigningTime, &st); err == nil && !st.IsZero() {
		at = st
		if st.Before(signer.NotBefore.Add(-v.skew)) || st.After(signer.NotAfter.Add(v.skew)) {
			return nil, newError(ErrMachineInfoSigningTime, nil, "MachineInfo was signed at %s, outside its signer's validity %s – %s",
				st.UTC().Format(time.RFC3339), signer.NotBefore.UTC().Format(time.RFC3339), signer.NotAfter.UTC().Format(time.RFC3339))
		}
		if st.After(now.Add(v.skew)) {
			return nil, newError(ErrMachineInfoSigningTime, nil, "MachineInfo signing time %s is in the future (server time %s)", st.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		if c != signer {
			inter.AddCert(c)
		}
	}
	if _, err := signer.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, newError(ErrMachineInfoUntrusted, err, "MachineInfo signer %q (issuer %q) does not chain to the Apple device CA this server trusts (strict mode)",
			signer.Subject.CommonName, signer.Issuer.CommonName)
	}
	return signer, nil
}

func safeParsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, errors.New("malformed ASN.1")
		}
	}()
	if len(der) == 0 {
		return nil, errors.New("empty")
	}
	return pkcs7.Parse(der)
}

func safeVerify(p7 *pkcs7.PKCS7) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("malformed signer info")
		}
	}()
	return p7.Verify()
}
