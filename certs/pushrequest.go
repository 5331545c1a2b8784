package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // registers crypto.SHA1: Apple's legacy CSR-signing doc signs with SHA1WithRSA
	_ "crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/internal/plistguard"
)

// Refusals of a push certificate request (ParsePushCertRequest,
// VerifyVendor). They live beside the code that returns them; each *Error
// wraps exactly one, as in errors.go.
var (
	// ErrBadPushRequest: the request is not shaped as Apple's Push
	// Certificates Portal expects (encoding, plist keys, CSR, chain).
	ErrBadPushRequest = errors.New("push certificate request rejected")
	// ErrPushRequestSignature: PushCertSignature does not verify over the
	// CSR with the vendor certificate's key.
	ErrPushRequestSignature = errors.New("push certificate request signature does not verify")
	// ErrUntrustedVendor: the vendor certificate does not chain to a
	// trusted root at the given time.
	ErrUntrustedVendor = errors.New("MDM vendor certificate not trusted")
)

// The keys of the push certificate request plist (PROTOCOL.md 9.3). All three
// values are strings.
const (
	keyPushCertRequestCSR   = "PushCertRequestCSR"
	keyPushCertChain        = "PushCertCertificateChain"
	keyPushCertSignature    = "PushCertSignature"
	pushRequestKeysSentence = keyPushCertRequestCSR + ", " + keyPushCertChain + " and " + keyPushCertSignature
)

// maxPushCertRequest bounds what ParsePushCertRequest reads. A real request
// — a CSR, three certificates and a signature, base64 of a plist — is about
// 10 KiB; anything past 64 KiB is the wrong file or an attack.
const maxPushCertRequest = 64 << 10

// minPushKeyBits is the smallest RSA key Apple's portal issues a push
// certificate for (and what mdmctl and Apple's docs tell customers to make).
const minPushKeyBits = 2048

// pushCertRequestPlist is the dictionary an MDM vendor's CSR signing
// produces, field for field (PROTOCOL.md 9.3): every value a <string>.
type pushCertRequestPlist struct {
	PushCertRequestCSR       string `plist:"PushCertRequestCSR"`
	PushCertCertificateChain string `plist:"PushCertCertificateChain"`
	PushCertSignature        string `plist:"PushCertSignature"`
}

// NewPushCertRequest does what an MDM vendor's CSR signing does with a
// customer's CSR, so that tests (and a mock "mdmcert.download") can make the
// file a customer uploads to Apple's Push Certificates Portal: it signs the
// CSR's DER bytes with the vendor key (RSA PKCS#1 v1.5 over hash, which must
// be crypto.SHA256 as MicroMDM signs, or crypto.SHA1 as Apple's legacy
// documentation says), puts the base64 CSR, the PEM chain (vendorCert, then
// chain — usually Apple's WWDR intermediate and root) and the base64
// signature in an XML plist, and returns that plist base64-encoded.
//
// A CSR that does not parse, whose self-signature fails or whose key is not
// RSA of at least 2048 bits yields an *Error with ErrBadCSR: Apple would not
// issue for it, so signing it only delays the bad news. Other errors (a
// missing vendor key, an unsupported hash) are the caller's mistakes.
func NewPushCertRequest(csrDER []byte, vendorCert *x509.Certificate, vendorKey *rsa.PrivateKey, chain []*x509.Certificate, hash crypto.Hash) ([]byte, error) {
	if vendorCert == nil || len(vendorCert.Raw) == 0 || vendorKey == nil {
		return nil, errors.New("certs: a push certificate request needs the vendor certificate and its private key")
	}
	if !vendorKey.PublicKey.Equal(vendorCert.PublicKey) {
		return nil, fmt.Errorf("certs: the vendor key does not belong to the vendor certificate %q", nameString(vendorCert.Subject))
	}
	if hash != crypto.SHA256 && hash != crypto.SHA1 {
		return nil, fmt.Errorf("certs: push certificate request hash %v: use crypto.SHA256 or crypto.SHA1", hash)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, newError(ErrBadCSR, err, "the CSR is not a DER-encoded certificate request")
	}
	if err := checkPushCSR(csr, ErrBadCSR, "the CSR"); err != nil {
		return nil, err
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, vendorKey, hash, digest(hash, csrDER))
	if err != nil {
		return nil, fmt.Errorf("certs: sign the CSR with the vendor key: %w", err)
	}
	var chainPEM bytes.Buffer
	for i, c := range append([]*x509.Certificate{vendorCert}, chain...) {
		if c == nil || len(c.Raw) == 0 {
			return nil, fmt.Errorf("certs: certificate %d of the vendor chain is empty", i)
		}
		// pem.Encode wraps at 64 characters, as the portal requires.
		if err := pem.Encode(&chainPEM, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return nil, err
		}
	}
	doc, err := plist.MarshalIndent(pushCertRequestPlist{
		PushCertRequestCSR:       base64.StdEncoding.EncodeToString(csrDER),
		PushCertCertificateChain: chainPEM.String(),
		PushCertSignature:        base64.StdEncoding.EncodeToString(sig),
	}, "\t")
	if err != nil {
		return nil, fmt.Errorf("certs: encode the push certificate request plist: %w", err)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(doc)))
	base64.StdEncoding.Encode(out, doc)
	return out, nil
}

func digest(hash crypto.Hash, data []byte) []byte {
	h := hash.New()
	h.Write(data)
	return h.Sum(nil)
}

// PushCertRequest is a vendor-signed push certificate request as the Apple
// Push Certificates Portal receives it, decoded and checked: the CSR's
// self-signature holds, and the vendor signature verifies over the CSR's
// DER bytes with VendorCert's key. Whether VendorCert is trusted is a
// separate question (VerifyVendor), since it depends on configured roots.
type PushCertRequest struct {
	// CSR is the customer's certificate request: the key the push
	// certificate will be issued for.
	CSR *x509.CertificateRequest
	// VendorCert is the first certificate of PushCertCertificateChain: the
	// MDM vendor's CSR-signing certificate.
	VendorCert *x509.Certificate
	// Chain is the rest of PushCertCertificateChain, in order (usually
	// Apple's WWDR intermediate and root).
	Chain []*x509.Certificate
	// Signature is the decoded PushCertSignature.
	Signature []byte
	// Hash is the digest the signature verified with: crypto.SHA256 or
	// crypto.SHA1 (Apple's portal is documented with both).
	Hash crypto.Hash
	// Raw is the input as given to ParsePushCertRequest.
	Raw []byte
}

// ParsePushCertRequest decodes and checks a push certificate request: the
// base64 text a vendor's CSR signing produces (line breaks and spaces are
// tolerated) or the property list itself, XML or binary. It checks what
// Apple's portal would before issuing: the three string keys, a DER CSR
// whose self-signature holds and whose key is RSA of at least 2048 bits, a
// PEM chain of certificates, and a signature over the CSR's DER bytes that
// verifies with the first certificate's key (SHA-256 tried before SHA-1).
//
// Every refusal is an *Error (HTTP 400) of kind ErrBadPushRequest or, for a
// signature that does not verify, ErrPushRequestSignature, saying which part
// is wrong. Input over 64 KiB is refused unread, and the plist passes
// plistguard before the decoder sees it.
func ParsePushCertRequest(b []byte) (*PushCertRequest, error) {
	doc, err := pushRequestPlistBytes(b)
	if err != nil {
		return nil, err
	}
	fields, err := decodePushRequestPlist(doc)
	if err != nil {
		return nil, err
	}
	csr, err := parsePushRequestCSR(fields.PushCertRequestCSR)
	if err != nil {
		return nil, err
	}
	vendor, chain, err := parsePushRequestChain(fields.PushCertCertificateChain)
	if err != nil {
		return nil, err
	}
	sig, err := decodeBase64Field(keyPushCertSignature, fields.PushCertSignature, "the vendor's RSA signature of the CSR")
	if err != nil {
		return nil, err
	}
	hash, err := verifyPushRequestSignature(csr, vendor, sig)
	if err != nil {
		return nil, err
	}
	return &PushCertRequest{
		CSR:        csr,
		VendorCert: vendor,
		Chain:      chain,
		Signature:  sig,
		Hash:       hash,
		Raw:        bytes.Clone(b),
	}, nil
}

// utf8BOM is what some editors put before the XML declaration.
var utf8BOM = []byte("\xef\xbb\xbf")

// pushRequestPlistBytes returns the plist inside b: b itself when it already
// is one, else what its base64 decodes to.
func pushRequestPlistBytes(b []byte) ([]byte, error) {
	if len(b) > maxPushCertRequest {
		return nil, newError(ErrBadPushRequest, nil, "the push certificate request is %d bytes, more than the %d KiB limit (a real one is about 10 KiB): is this the right file?", len(b), maxPushCertRequest>>10)
	}
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(b, utf8BOM))
	if len(trimmed) == 0 {
		return nil, newError(ErrBadPushRequest, nil, "the push certificate request is empty: give the base64 file the MDM vendor's CSR signing produced")
	}
	if isPlist(trimmed) {
		return trimmed, nil
	}
	doc, err := base64.StdEncoding.DecodeString(string(withoutSpace(trimmed)))
	if err != nil {
		return nil, newError(ErrBadPushRequest, err, "the push certificate request is neither base64 nor a property list (truncated or altered?): give the file the MDM vendor's CSR signing produced, unchanged")
	}
	doc = bytes.TrimSpace(bytes.TrimPrefix(doc, utf8BOM))
	if !isPlist(doc) {
		return nil, newError(ErrBadPushRequest, nil, "the push certificate request is base64, but what it decodes to is not a property list: it must be the base64 of a plist with %s", pushRequestKeysSentence)
	}
	return doc, nil
}

// isPlist says whether b starts like an XML or binary property list.
func isPlist(b []byte) bool {
	return bytes.HasPrefix(b, []byte("<")) || bytes.HasPrefix(b, []byte("bplist0"))
}

// withoutSpace drops ASCII white space, which wraps base64 in files and
// mail but is no part of it.
func withoutSpace(b []byte) []byte {
	return bytes.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			return -1
		}
		return r
	}, b)
}

// decodePushRequestPlist decodes doc as a dictionary and reads the three
// string keys, saying which one is missing or of the wrong type.
func decodePushRequestPlist(doc []byte) (*pushCertRequestPlist, error) {
	if err := plistguard.Check(doc); err != nil {
		return nil, newError(ErrBadPushRequest, err, "refused the push certificate request's property list")
	}
	var root any
	if err := plist.Unmarshal(doc, &root); err != nil {
		return nil, newError(ErrBadPushRequest, err, "the push certificate request is not a valid property list")
	}
	dict, ok := root.(map[string]any)
	if !ok {
		return nil, newError(ErrBadPushRequest, nil, "the push certificate request's property list is %s; it must be a <dict> with %s", plistTypeName(root), pushRequestKeysSentence)
	}
	var out pushCertRequestPlist
	for _, f := range []struct {
		key  string
		dst  *string
		what string
	}{
		{keyPushCertRequestCSR, &out.PushCertRequestCSR, "base64 of the CSR's DER bytes"},
		{keyPushCertChain, &out.PushCertCertificateChain, "the PEM of the vendor certificate and its chain"},
		{keyPushCertSignature, &out.PushCertSignature, "base64 of the vendor's signature of the CSR"},
	} {
		v, present := dict[f.key]
		if !present {
			return nil, newError(ErrBadPushRequest, nil, "the push certificate request has no %s key; it needs %s", f.key, pushRequestKeysSentence)
		}
		s, isString := v.(string)
		if !isString {
			return nil, newError(ErrBadPushRequest, nil, "%s is %s; it must be a <string> holding %s", f.key, plistTypeName(v), f.what)
		}
		*f.dst = s
	}
	return &out, nil
}

// plistTypeName names a decoded plist value as its XML element, the way a
// person reading the file sees it.
func plistTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a <string>"
	case []byte:
		return "a <data>"
	case bool:
		return "a boolean"
	case int64, uint64:
		return "an <integer>"
	case float32, float64:
		return "a <real>"
	case time.Time:
		return "a <date>"
	case []any:
		return "an <array>"
	case map[string]any:
		return "a <dict>"
	default:
		return fmt.Sprintf("a value of type %T", v)
	}
}

// decodeBase64Field decodes the base64 string value of key, tolerating
// white space (line-wrapped base64 is common).
func decodeBase64Field(key, value, what string) ([]byte, error) {
	compact := withoutSpace([]byte(value))
	if len(compact) == 0 {
		return nil, newError(ErrBadPushRequest, nil, "%s is empty; it must hold %s, base64-encoded", key, what)
	}
	if bytes.HasPrefix(compact, []byte("-----BEGIN")) {
		return nil, newError(ErrBadPushRequest, nil, "%s holds PEM; it must be the plain base64 of %s, without BEGIN/END lines", key, what)
	}
	out, err := base64.StdEncoding.DecodeString(string(compact))
	if err != nil {
		return nil, newError(ErrBadPushRequest, err, "%s is not base64; it must hold %s, base64-encoded", key, what)
	}
	return out, nil
}

func parsePushRequestCSR(value string) (*x509.CertificateRequest, error) {
	der, err := decodeBase64Field(keyPushCertRequestCSR, value, "the CSR's DER bytes")
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, newError(ErrBadPushRequest, err, "%s is base64 but not a DER certificate request", keyPushCertRequestCSR)
	}
	if err := checkPushCSR(csr, ErrBadPushRequest, keyPushCertRequestCSR); err != nil {
		return nil, err
	}
	return csr, nil
}

// checkPushCSR holds a CSR to what Apple's portal issues push certificates
// for: a self-signature that verifies (the requester holds the key) and an
// RSA key of at least 2048 bits. kind is the sentinel of the refusal and
// name says where the CSR came from, for the message.
func checkPushCSR(csr *x509.CertificateRequest, kind error, name string) error {
	if csr == nil {
		return newError(kind, nil, "no certificate request given")
	}
	// Key first: its size bounds the cost of checking the signature.
	pub, ok := csr.PublicKey.(*rsa.PublicKey)
	if !ok {
		return newError(kind, nil, "%s's key is %s, not RSA; Apple issues push certificates for RSA keys only (make one with: openssl genrsa -out push.key 2048)", name, keyTypeName(csr.PublicKey))
	}
	if bits := pub.N.BitLen(); bits < minPushKeyBits {
		return newError(kind, nil, "%s has an RSA key of %d bits; a push certificate needs at least %d", name, bits, minPushKeyBits)
	}
	if err := checkRSASize(pub); err != nil {
		return newError(kind, err, "%s's key is too large", name)
	}
	if err := csr.CheckSignature(); err != nil {
		return newError(kind, err, "%s's self-signature does not verify with its own public key: the CSR was altered after it was made; make a new one", name)
	}
	return nil
}

// keyTypeName names a public or private key's algorithm for messages.
func keyTypeName(k any) string {
	switch k.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PublicKey, *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	case nil:
		return "missing"
	default:
		return fmt.Sprintf("of type %T", k)
	}
}

// checkRSASize refuses an RSA key larger than maxKeyBits. Verifying with a
// key is a modular exponentiation whose cost grows with the cube of the
// key's size, so a 300,000-bit key in a 64 KiB input would hold a CPU for
// seconds; no real certificate has one over 8192 bits.
func checkRSASize(pub any) error {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() > maxKeyBits {
		return fmt.Errorf("RSA key of %d bits is larger than the %d this server accepts", k.N.BitLen(), maxKeyBits)
	}
	return nil
}

// parsePushRequestChain reads the PEM chain: the vendor certificate first,
// then the rest. Text between blocks (openssl's "subject=" lines) is
// ignored; a block that is not a certificate is refused, since the portal
// would not know what to do with it.
func parsePushRequestChain(value string) (*x509.Certificate, []*x509.Certificate, error) {
	rest := []byte(value)
	if len(bytes.TrimSpace(rest)) == 0 {
		return nil, nil, newError(ErrBadPushRequest, nil, "%s is empty; it must hold the PEM of the vendor certificate, then Apple's WWDR intermediate and root", keyPushCertChain)
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, nil, newError(ErrBadPushRequest, nil, "%s: PEM block %d is %q, not a CERTIFICATE; the chain holds certificates only", keyPushCertChain, n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, newError(ErrBadPushRequest, err, "%s: PEM block %d is not a valid certificate", keyPushCertChain, n)
		}
		if err := checkRSASize(c.PublicKey); err != nil {
			return nil, nil, newError(ErrBadPushRequest, err, "%s: certificate %d (%q)", keyPushCertChain, n, nameString(c.Subject))
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, newError(ErrBadPushRequest, nil, "%s holds no PEM block; it must hold the vendor certificate as PEM (-----BEGIN CERTIFICATE-----)", keyPushCertChain)
	}
	return certs[0], certs[1:], nil
}

// verifyPushRequestSignature checks sig over the CSR's DER bytes with the
// vendor certificate's key, SHA-256 first (MicroMDM), then SHA-1 (Apple's
// legacy documentation), and returns the hash that verified.
func verifyPushRequestSignature(csr *x509.CertificateRequest, vendor *x509.Certificate, sig []byte) (crypto.Hash, error) {
	pub, ok := vendor.PublicKey.(*rsa.PublicKey)
	if !ok {
		return 0, newError(ErrBadPushRequest, nil, "the vendor certificate %q has a key that is %s, not RSA; MDM vendor CSR-signing certificates have RSA keys", nameString(vendor.Subject), keyTypeName(vendor.PublicKey))
	}
	for _, hash := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		if rsa.VerifyPKCS1v15(pub, hash, digest(hash, csr.Raw), sig) == nil {
			return hash, nil
		}
	}
	return 0, newError(ErrPushRequestSignature, nil, "%s does not verify over the CSR's DER bytes with the key of the vendor certificate %q (tried SHA-256 and SHA-1 with RSA PKCS#1 v1.5): the CSR was changed after signing, or another key signed it",
		keyPushCertSignature, nameString(vendor.Subject))
}

// VerifyVendor checks that the vendor certificate chains, through r.Chain
// as intermediates, to one of roots and is valid at now — what Apple's
// portal checks before it trusts a vendor's signature. Any extended key
// usage is accepted. The refusal (*Error, ErrUntrustedVendor) names the
// vendor and says why: an unknown authority, or which certificate expired
// and when.
func (r *PushCertRequest) VerifyVendor(roots []*x509.Certificate, now time.Time) error {
	if r == nil || r.VendorCert == nil {
		return newError(ErrUntrustedVendor, nil, "the push certificate request has no vendor certificate")
	}
	subject := nameString(r.VendorCert.Subject)
	if len(roots) == 0 {
		return newError(ErrUntrustedVendor, nil, "no trusted vendor root is configured, so vendor certificate %q cannot be trusted", subject)
	}
	if p := verifyChain(r.VendorCert, r.Chain, roots, now); p != nil {
		return newError(ErrUntrustedVendor, p.cause, "vendor certificate %q is not trusted: %s", subject, p.why)
	}
	return nil
}

// chainProblem says why a certificate chain did not verify. cause is the
// x509 error when why does not already say all of it.
type chainProblem struct {
	why   string
	cause error
}

// verifyChain verifies leaf through intermediates to one of roots at now,
// for any key usage, and on failure says why in words: which certificate
// expired (or is not yet valid) and when, or that no root signed the chain.
func verifyChain(leaf *x509.Certificate, intermediates, roots []*x509.Certificate, now time.Time) *chainProblem {
	rootPool, interPool := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range roots {
		if c != nil {
			rootPool.AddCert(c)
		}
	}
	for _, c := range intermediates {
		if c != nil {
			interPool.AddCert(c)
		}
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: interPool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err == nil {
		return nil
	}
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var insecure x509.InsecureAlgorithmError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil:
		c, which := invalid.Cert, "it"
		if !c.Equal(leaf) {
			which = fmt.Sprintf("%q in its chain", nameString(c.Subject))
		}
		if now.Before(c.NotBefore) {
			return &chainProblem{why: fmt.Sprintf("%s is not valid until %s (now is %s)", which, formatTime(c.NotBefore), formatTime(now))}
		}
		return &chainProblem{why: fmt.Sprintf("%s expired on %s (now is %s)", which, formatTime(c.NotAfter), formatTime(now))}
	case errors.As(err, &unknown):
		return &chainProblem{why: fmt.Sprintf("it was issued by %q, which does not chain to any of %s (unknown authority)", nameString(leaf.Issuer), subjects(roots))}
	case errors.As(err, &insecure):
		return &chainProblem{why: fmt.Sprintf("its chain is signed with an insecure algorithm (%v)", x509.SignatureAlgorithm(insecure))}
	default:
		return &chainProblem{why: "its chain does not verify", cause: err}
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// subjects lists certificate subjects for a message.
func subjects(certs []*x509.Certificate) string {
	names := make([]string, 0, len(certs))
	for _, c := range certs {
		if c != nil {
			names = append(names, fmt.Sprintf("%q", nameString(c.Subject)))
		}
	}
	return strings.Join(names, ", ")
}

// NewMockVendorCert issues a stand-in for an "MDM Vendor" CSR-signing
// certificate — the one Apple gives an MDM vendor so that its signature on
// a customer's CSR vouches for the customer — with a fresh 2048-bit RSA
// key. issuer plays Apple (mockmdm's mock push CA), so VerifyVendor with
// issuer's certificate as root accepts it. Its subject is
// CN="MDM Vendor: <name>", O=<name>, C=US, like Apple's; key usage
// digitalSignature, since all it does is sign.
func NewMockVendorCert(issuer *CA, name string, validity time.Duration) (*x509.Certificate, *rsa.PrivateKey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, nil, errors.New("certs: the MDM vendor name is empty")
	}
	key, err := rsa.GenerateKey(rand.Reader, leafKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate vendor key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   "MDM Vendor: " + name,
			Organization: []string{name},
			Country:      []string{"US"},
		},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	cert, err := issuer.issue(tmpl, &key.PublicKey, time.Now(), validity)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// IssuePushCert is the Push Certificates Portal's answer to a request: an
// APNs MDM push certificate for the CSR's public key, with the subject
// NewMockPushCert gives (UID=topic, CN=APSP:<uuid>, C=US) and EKU
// clientAuth, signed by issuer (mockmdm's mock Apple push CA). The CSR's
// own subject is not copied — Apple's is not either. A CSR that fails
// checkPushCSR yields an *Error with ErrBadCSR; a topic without the
// com.apple.mgmt. prefix one with ErrBadTopic. To renew, issue again with
// the same topic: that keeps every enrolled device reachable.
func IssuePushCert(issuer *CA, csr *x509.CertificateRequest, topic string, validity time.Duration) (*x509.Certificate, error) {
	if err := checkPushCSR(csr, ErrBadCSR, "the CSR"); err != nil {
		return nil, err
	}
	return issuePushCert(issuer, topic, csr.PublicKey, validity)
}
