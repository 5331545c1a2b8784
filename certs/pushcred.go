package certs

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Refusals of uploaded push credentials (ParsePushCredentials,
// CheckPushCredentials). Each *Error wraps exactly one, as in errors.go; the
// topic itself is checked by TopicFromCert (ErrNoTopic, ErrBadTopic).
var (
	ErrPushNoCert          = errors.New("no push certificate")
	ErrPushNoKey           = errors.New("no private key for the push certificate")
	ErrPushKeyEncrypted    = errors.New("push certificate key is encrypted")
	ErrPushBadPassword     = errors.New("wrong password for the push certificate key")
	ErrPushKeyMismatch     = errors.New("private key does not belong to the push certificate")
	ErrPushKeyType         = errors.New("push certificate key is not RSA")
	ErrPushExpired         = errors.New("push certificate expired")
	ErrPushNotYetValid     = errors.New("push certificate not yet valid")
	ErrPushUntrustedIssuer = errors.New("push certificate not issued by the configured APNs issuer")
)

const (
	// maxPushCredentialFile bounds each uploaded file. A push certificate
	// with its chain and key, as PEM or PKCS#12, is a few KiB.
	maxPushCredentialFile = 64 << 10
	// maxPushPassword bounds the password: it is fed to key derivation.
	maxPushPassword = 1024
	// maxPKCS12Iterations bounds the key-derivation iterations a PKCS#12
	// file may ask for. go-pkcs12 runs whatever count the file says, so a
	// few hostile bytes could otherwise hold a CPU for hours. OpenSSL
	// writes 2048, Java 10000, Keychain Access a few thousand.
	maxPKCS12Iterations = 200_000
)

// PushCredentials are what a person uploads to send real pushes: the APNs
// MDM push certificate Apple's portal issued, the private key made with its
// CSR, the rest of the chain if given, and the topic read from the
// certificate.
type PushCredentials struct {
	Cert  *x509.Certificate
	Key   *rsa.PrivateKey
	Chain []*x509.Certificate
	Topic string
}

// ParsePushCredentials reads an uploaded push certificate and its key in
// the forms people have them:
//
//   - certData as PEM (one or more CERTIFICATE blocks, possibly with the
//     private key in the same file, and then keyData may be empty), as one
//     DER certificate, or as PKCS#12 (.p12, as Keychain Access exports),
//     which password opens;
//   - keyData, when given, as PEM: PKCS#1 "RSA PRIVATE KEY", PKCS#8
//     "PRIVATE KEY", or either encrypted the legacy way ("Proc-Type:
//     4,ENCRYPTED"), which password decrypts. A PKCS#8 "ENCRYPTED PRIVATE
//     KEY" is refused with the openssl command that decrypts it, since
//     neither the standard library nor go-pkcs12 exposes its decryption.
//
// The key given in keyData wins over one inside certData. The certificate
// is the one the key belongs to (the others become Chain), so the order of
// a PEM bundle does not matter. Then the topic must be an MDM push topic.
// Each refusal is an *Error (HTTP 400) of its own kind — ErrPushNoCert,
// ErrPushNoKey, ErrPushKeyEncrypted, ErrPushBadPassword, ErrPushKeyMismatch,
// ErrPushKeyType, ErrNoTopic, ErrBadTopic — saying what to do. Validity
// dates and issuer are CheckPushCredentials' business.
func ParsePushCredentials(certData, keyData []byte, password string) (*PushCredentials, error) {
	if len(certData) > maxPushCredentialFile {
		return nil, newError(ErrPushNoCert, nil, "the certificate file is %d bytes, more than the %d KiB limit (a push certificate with its chain and key is a few KiB): is this the right file?", len(certData), maxPushCredentialFile>>10)
	}
	if len(keyData) > maxPushCredentialFile {
		return nil, newError(ErrPushNoKey, nil, "the key file is %d bytes, more than the %d KiB limit (a private key is a few KiB): is this the right file?", len(keyData), maxPushCredentialFile>>10)
	}
	if len(password) > maxPushPassword {
		return nil, newError(ErrPushBadPassword, nil, "the password is %d bytes long, more than %d", len(password), maxPushPassword)
	}
	keyGiven := len(bytes.TrimSpace(keyData)) > 0
	certs, key, err := readCertData(certData, password, !keyGiven)
	if err != nil {
		return nil, err
	}
	if keyGiven {
		if key, err = readKeyPEM(keyData, password, "the key file"); err != nil {
			return nil, err
		}
		if key == nil {
			return nil, newError(ErrPushNoKey, nil, "the key file holds no PEM private key (RSA PRIVATE KEY or PRIVATE KEY): give the key that was made with the push certificate's CSR")
		}
	}
	if key == nil {
		return nil, newError(ErrPushNoKey, nil, "no private key given: upload the key that was made with the push certificate's CSR (a PEM key file, or a .p12 that holds certificate and key)")
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, newError(ErrPushKeyType, nil, "the private key is %s; APNs MDM push certificates have RSA keys", keyTypeName(key))
	}
	for i, c := range certs {
		// The chain is verified later (CheckPushCredentials); bound its cost.
		if err := checkRSASize(c.PublicKey); err != nil {
			return nil, newError(ErrPushNoCert, err, "certificate %d (%q)", i+1, nameString(c.Subject))
		}
	}
	leaf, chain, err := certForKey(certs, rsaKey)
	if err != nil {
		return nil, err
	}
	topic, err := TopicFromCert(leaf)
	if err != nil {
		return nil, err
	}
	return &PushCredentials{Cert: leaf, Key: rsaKey, Chain: chain, Topic: topic}, nil
}

// readCertData returns the certificates of certData and the private key
// bundled with them (nil when there is none). withPEMKey says whether to
// look for a key in a PEM certData: not when a key file was given, so that
// a key in the certificate file that would not decrypt cannot get in the
// way of the one given.
func readCertData(certData []byte, password string, withPEMKey bool) ([]*x509.Certificate, crypto.PrivateKey, error) {
	if len(bytes.TrimSpace(certData)) == 0 {
		return nil, nil, newError(ErrPushNoCert, nil, "no certificate given: upload the push certificate Apple's Push Certificates Portal issued (.pem), or a .p12 holding it and its key")
	}
	if bytes.Contains(certData, []byte("-----BEGIN")) {
		certs, err := certsFromPEM(certData)
		if err != nil || !withPEMKey {
			return certs, nil, err
		}
		key, err := readKeyPEM(certData, password, "the certificate file")
		if err != nil {
			return nil, nil, err
		}
		return certs, key, nil
	}
	if c, err := x509.ParseCertificate(certData); err == nil {
		return []*x509.Certificate{c}, nil, nil
	}
	return readPKCS12(certData, password)
}

// certsFromPEM parses every CERTIFICATE block of data, in order.
func certsFromPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	sawKey := false
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			sawKey = true
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, newError(ErrPushNoCert, err, "PEM block %d of the certificate file is labelled CERTIFICATE but is not a valid certificate", n)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		if sawKey {
			return nil, newError(ErrPushNoCert, nil, "the certificate file holds a private key but no CERTIFICATE: were the certificate and key files swapped?")
		}
		return nil, newError(ErrPushNoCert, nil, "the certificate file holds no PEM CERTIFICATE block: upload the push certificate Apple's Push Certificates Portal issued")
	}
	return certs, nil
}

// readKeyPEM returns the first private key of data (nil when data holds
// none), decrypting a legacy-encrypted block with password. source names
// the file in messages.
func readKeyPEM(data []byte, password, source string) (crypto.PrivateKey, error) {
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, nil
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		return parseKeyBlock(block, n, password, source)
	}
}

// decryptPKCS8Hint is how to turn an "ENCRYPTED PRIVATE KEY" into one
// mockmdm reads.
const decryptPKCS8Hint = "decrypt it with: openssl pkey -in key.pem -out key-decrypted.pem (it asks for the password), then upload key-decrypted.pem"

func parseKeyBlock(block *pem.Block, n int, password, source string) (crypto.PrivateKey, error) {
	where := fmt.Sprintf("%s, PEM block %d (%s)", source, n, block.Type)
	switch block.Type {
	case "RSA PRIVATE KEY", "PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		if password == "" {
			return nil, newError(ErrPushKeyEncrypted, nil, "%s: the key is encrypted (PKCS#8) and mockmdm cannot decrypt that form; %s", where, decryptPKCS8Hint)
		}
		return nil, newError(ErrPushKeyEncrypted, nil, "%s: the key is encrypted as PKCS#8, which mockmdm cannot decrypt even with the password; %s", where, decryptPKCS8Hint)
	default:
		return nil, newError(ErrPushKeyType, nil, "%s: not an RSA key; APNs MDM push certificates have RSA keys, as PKCS#1 (RSA PRIVATE KEY) or PKCS#8 (PRIVATE KEY)", where)
	}
	der := block.Bytes
	encrypted := strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED")
	if encrypted {
		if password == "" {
			return nil, newError(ErrPushKeyEncrypted, nil, "%s: the key is encrypted (Proc-Type: 4,ENCRYPTED); give its password", where)
		}
		// Legacy PEM encryption is weak (hence the deprecation), but older
		// tools and guides produce it, and reading it does no harm.
		plain, err := x509.DecryptPEMBlock(block, []byte(password)) //nolint:staticcheck // reading legacy files people still have
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, newError(ErrPushBadPassword, nil, "%s: the password does not decrypt the key", where)
		}
		if err != nil {
			return nil, newError(ErrPushKeyEncrypted, err, "%s: cannot decrypt the key; decrypt it with: openssl rsa -in key.pem -out key-decrypted.pem", where)
		}
		der = plain
	}
	key, err := parsePrivateKeyDER(block.Type, der)
	if err != nil {
		if encrypted {
			// Legacy decryption notices a wrong password only by its
			// padding, which a wrong password passes about once in 256
			// tries; what comes out then is not a key.
			return nil, newError(ErrPushBadPassword, err, "%s: the password does not decrypt the key", where)
		}
		return nil, newError(ErrPushNoKey, err, "%s: not a valid private key", where)
	}
	return key, nil
}

// parsePrivateKeyDER parses a key as its PEM label says, then as the other
// form: some tools label a PKCS#8 key "RSA PRIVATE KEY" or the reverse.
func parsePrivateKeyDER(blockType string, der []byte) (crypto.PrivateKey, error) {
	pkcs1 := func() (crypto.PrivateKey, error) { return x509.ParsePKCS1PrivateKey(der) }
	pkcs8 := func() (crypto.PrivateKey, error) { return x509.ParsePKCS8PrivateKey(der) }
	first, second := pkcs8, pkcs1
	if blockType == "RSA PRIVATE KEY" {
		first, second = pkcs1, pkcs8
	}
	key, err := first()
	if err == nil {
		return key, nil
	}
	if key, err2 := second(); err2 == nil {
		return key, nil
	}
	return nil, err
}

// certForKey picks the certificate key belongs to; the others, in order,
// are the chain.
func certForKey(certs []*x509.Certificate, key *rsa.PrivateKey) (*x509.Certificate, []*x509.Certificate, error) {
	for i, c := range certs {
		if key.PublicKey.Equal(c.PublicKey) {
			chain := append(append([]*x509.Certificate{}, certs[:i]...), certs[i+1:]...)
			return c, chain, nil
		}
	}
	if len(certs) == 1 {
		return nil, nil, newError(ErrPushKeyMismatch, nil, "the private key does not belong to the certificate %q: give the key that was made with the CSR Apple's portal issued this certificate for", nameString(certs[0].Subject))
	}
	return nil, nil, newError(ErrPushKeyMismatch, nil, "the private key belongs to none of the %d certificates given (%s): give the key that was made with the CSR Apple's portal issued the push certificate for", len(certs), subjects(certs))
}

// DecodePKCS12 decodes a PKCS#12 file with go-pkcs12 — the certificate
// that goes with the key first, then the others, and the key — after
// checking that it will not cost an unbounded amount of key derivation
// and that the password can be a PKCS#12 password. Those refusals are
// *Error; go-pkcs12's own errors come back as it gives them.
func DecodePKCS12(data []byte, password string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	if err := checkPKCS12Iterations(data); err != nil {
		return nil, nil, err
	}
	for _, r := range password {
		if r > 0xFFFF {
			return nil, nil, newError(ErrPushBadPassword, nil, "the password holds %q, which a PKCS#12 password cannot (UCS-2 only); this cannot be the file's password", r)
		}
	}
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, nil, err
	}
	return append([]*x509.Certificate{leaf}, cas...), key, nil
}

// readPKCS12 is DecodePKCS12 with go-pkcs12's errors turned into refusals
// worded for push credentials.
func readPKCS12(data []byte, password string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	chain, key, err := DecodePKCS12(data, password)
	var own *Error
	if err != nil && !errors.As(err, &own) {
		return nil, nil, pkcs12Refusal(err, password)
	}
	return chain, key, err
}

// pkcs12Refusal turns go-pkcs12's error into a refusal a person can act on.
// Some of its errors are values; the missing-part ones exist only as text.
func pkcs12Refusal(err error, password string) error {
	msg := err.Error()
	var notImpl pkcs12.NotImplementedError
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) || strings.Contains(msg, "decryption"):
		if password == "" {
			return newError(ErrPushKeyEncrypted, nil, "the PKCS#12 file is password-protected; give its password")
		}
		return newError(ErrPushBadPassword, nil, "the password does not open the PKCS#12 file")
	case strings.Contains(msg, "private key missing"):
		return newError(ErrPushNoKey, nil, "the PKCS#12 file holds a certificate but no private key: export the push certificate together with its key (in Keychain Access, export the identity under \"My Certificates\")")
	case strings.Contains(msg, "certificate missing"):
		return newError(ErrPushNoCert, nil, "the PKCS#12 file holds no certificate")
	case errors.As(err, &notImpl):
		return newError(ErrPushNoCert, err, "the PKCS#12 file uses a form mockmdm cannot read; re-export it with: openssl pkcs12 -export -in push.pem -inkey push.key -out push.p12")
	default:
		return newError(ErrPushNoCert, err, "the certificate file is neither PEM, a DER certificate nor a readable PKCS#12 file")
	}
}

// The shapes go-pkcs12 decodes (RFC 7292, RFC 8018), mirrored here only to
// read the iteration counts before it runs them. Each is the same as or
// more lenient than go-pkcs12's, so whatever it would decode, this reads.
type (
	p12PFX struct {
		Version  int
		AuthSafe p12ContentInfo
		MacData  p12MacData `asn1:"optional"`
	}
	p12ContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	p12MacData struct {
		Mac struct {
			Algorithm pkix.AlgorithmIdentifier
			Digest    []byte
		}
		MacSalt    []byte
		Iterations int `asn1:"optional,default:1"`
	}
	p12EncryptedData struct {
		Version              int
		EncryptedContentInfo struct {
			ContentType                asn1.ObjectIdentifier
			ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
			EncryptedContent           []byte `asn1:"tag:0,optional"`
		}
	}
	p12SafeBag struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue `asn1:"tag:0,explicit"`
		// Attributes follow; encoding/asn1 allows trailing elements.
	}
	p12EncryptedPrivateKeyInfo struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}
	p12PBEParams struct {
		Salt       []byte
		Iterations int
	}
	// p12KDFAndScheme is PBES2-params and PBMAC1-params alike: a key
	// derivation function, then what uses the key.
	p12KDFAndScheme struct {
		KDF    pkix.AlgorithmIdentifier
		Scheme pkix.AlgorithmIdentifier
	}
	p12PBKDF2Params struct {
		Salt       asn1.RawValue
		Iterations int
	}
)

var (
	oidPKCS7Data          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPKCS7EncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKeyBag     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidPKCS12PBE          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1} // arc of pbeWithSHAAnd…
	oidPBES2              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBMAC1             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBKDF2             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// checkPKCS12Iterations refuses a PKCS#12 file whose MAC, encrypted safes
// or shrouded key bags ask for more than maxPKCS12Iterations rounds of key
// derivation. What does not parse is left to go-pkcs12, which fails on it
// before deriving anything. A key bag inside an encrypted safe is not seen
// until decrypted; reaching it needs the file's password, which only its
// owner has.
func checkPKCS12Iterations(der []byte) error {
	var pfx p12PFX
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		return nil
	}
	if err := checkKDFIterations("its MAC", pfx.MacData.Mac.Algorithm, pfx.MacData.Iterations); err != nil {
		return err
	}
	var content []byte
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &content); err != nil {
		return nil
	}
	var safes []p12ContentInfo
	if _, err := asn1.Unmarshal(content, &safes); err != nil {
		return nil
	}
	for _, safe := range safes {
		switch {
		case safe.ContentType.Equal(oidPKCS7EncryptedData):
			var ed p12EncryptedData
			if _, err := asn1.Unmarshal(safe.Content.Bytes, &ed); err != nil {
				continue
			}
			if err := checkKDFIterations("an encrypted safe", ed.EncryptedContentInfo.ContentEncryptionAlgorithm, 0); err != nil {
				return err
			}
		case safe.ContentType.Equal(oidPKCS7Data):
			var plain []byte
			if _, err := asn1.Unmarshal(safe.Content.Bytes, &plain); err != nil {
				continue
			}
			var bags []p12SafeBag
			if _, err := asn1.Unmarshal(plain, &bags); err != nil {
				continue
			}
			for _, bag := range bags {
				if !bag.ID.Equal(oidShroudedKeyBag) {
					continue
				}
				var info p12EncryptedPrivateKeyInfo
				if _, err := asn1.Unmarshal(bag.Value.Bytes, &info); err != nil {
					continue
				}
				if err := checkKDFIterations("its private key", info.Algorithm, 0); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkKDFIterations checks the iteration count of one password-based
// algorithm: a PKCS#12 PBE, PBES2 or PBMAC1 (their count is in the
// parameters), or a classic PKCS#12 MAC (its count, macIterations, is
// beside it).
func checkKDFIterations(what string, alg pkix.AlgorithmIdentifier, macIterations int) error {
	n := macIterations
	switch oid := alg.Algorithm; {
	case len(oid) == len(oidPKCS12PBE)+1 && oid[:len(oidPKCS12PBE)].Equal(oidPKCS12PBE):
		var p p12PBEParams
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
			return nil
		}
		n = p.Iterations
	case oid.Equal(oidPBES2) || oid.Equal(oidPBMAC1):
		var p p12KDFAndScheme
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || !p.KDF.Algorithm.Equal(oidPBKDF2) {
			return nil
		}
		var kdf p12PBKDF2Params
		if _, err := asn1.Unmarshal(p.KDF.Parameters.FullBytes, &kdf); err != nil {
			return nil
		}
		n = kdf.Iterations
	}
	if n > maxPKCS12Iterations {
		return newError(ErrPushNoCert, nil, "the PKCS#12 file asks for %d key-derivation iterations for %s, more than the %d mockmdm allows; re-export it with: openssl pkcs12 -export -iter 2048 …", n, what, maxPKCS12Iterations)
	}
	return nil
}

// CheckPushCredentials checks what APNs would: that the push certificate
// is valid at now and, when issuers is not empty, that it chains (through
// c.Chain) to one of them — Apple's "Apple Application Integration 2
// Certification Authority" for real APNs, mockmdm's push CA for the mock.
// An empty issuers skips the issuer check. The refusal (*Error) is
// ErrPushExpired, ErrPushNotYetValid or ErrPushUntrustedIssuer, saying when
// and what to do.
func CheckPushCredentials(c *PushCredentials, issuers []*x509.Certificate, now time.Time) error {
	if c == nil || c.Cert == nil {
		return newError(ErrPushNoCert, nil, "no push certificate given")
	}
	cert := c.Cert
	name := nameString(cert.Subject)
	topic := c.Topic
	if topic == "" {
		topic, _ = TopicFromCert(cert)
	}
	if now.Before(cert.NotBefore) {
		return newError(ErrPushNotYetValid, nil, "push certificate %q is not valid until %s (now is %s): check this machine's clock", name, formatTime(cert.NotBefore), formatTime(now))
	}
	if now.After(cert.NotAfter) {
		return newError(ErrPushExpired, nil, "push certificate %q (topic %s) expired on %s, %s, and APNs refuses it: renew it in Apple's Push Certificates Portal with \"Renew\", which keeps the topic %s, and upload the renewed certificate (a new certificate instead of a renewal changes the topic and every enrolled device must enroll again)",
			name, topic, formatTime(cert.NotAfter), daysAgo(now.Sub(cert.NotAfter)), topic)
	}
	if len(issuers) == 0 {
		return nil
	}
	if p := verifyChain(cert, c.Chain, issuers, now); p != nil {
		return newError(ErrPushUntrustedIssuer, p.cause, "push certificate %q is not from the configured APNs issuer: %s; upload the certificate Apple's Push Certificates Portal issued (with the mock APNs, one from mockmdm's push CA)", name, p.why)
	}
	return nil
}

// daysAgo says how long ago something was, in whole days.
func daysAgo(d time.Duration) string {
	switch days := int(d / (24 * time.Hour)); days {
	case 0:
		return "less than a day ago"
	case 1:
		return "1 day ago"
	default:
		return fmt.Sprintf("%d days ago", days)
	}
}

// States of a push certificate, for the dashboard and the API.
const (
	PushStateValid        = "valid"
	PushStateExpiringSoon = "expiring_soon"
	PushStateExpired      = "expired"
)

// PushCertStatus is what a person needs to see about the push certificate
// in use: which topic, from whom, until when, and whether to renew now.
type PushCertStatus struct {
	Topic     string    `json:"topic"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// DaysLeft is the whole days until NotAfter, rounded down: 0 on the
	// last day, negative once expired.
	DaysLeft int `json:"days_left"`
	// State is PushStateValid, PushStateExpiringSoon (at most soon left)
	// or PushStateExpired (past NotAfter).
	State string `json:"state"`
}

// StatusOfPushCert describes cert at now. A certificate with soon or less
// left is expiring soon — Apple's push certificates last a year and a
// missed renewal silences every device, so the warning should come early.
// A not-yet-valid certificate is reported by its expiry like any other
// (CheckPushCredentials refuses it). A nil cert gives the zero status.
func StatusOfPushCert(cert *x509.Certificate, now time.Time, soon time.Duration) PushCertStatus {
	if cert == nil {
		return PushCertStatus{}
	}
	topic, _ := TopicFromCert(cert)
	left := cert.NotAfter.Sub(now)
	state := PushStateValid
	switch {
	case now.After(cert.NotAfter):
		state = PushStateExpired
	case left <= soon:
		state = PushStateExpiringSoon
	}
	return PushCertStatus{
		Topic:     topic,
		Subject:   nameString(cert.Subject),
		Issuer:    nameString(cert.Issuer),
		NotBefore: cert.NotBefore.UTC(),
		NotAfter:  cert.NotAfter.UTC(),
		DaysLeft:  int(math.Floor(left.Hours() / 24)),
		State:     state,
	}
}
