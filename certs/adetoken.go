package certs

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"mime"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"go.mozilla.org/pkcs7"
)

// ADE server tokens. An MDM server that uses Automated Device Enrollment
// gives Apple Business Manager the certificate of its "token key pair"; ABM
// answers with a server token (a .p7m file): the OAuth 1.0a credentials of
// the ADE API, encrypted to that certificate. mockmdm plays both sides: it has
// a token key pair of its own, and it issues tokens the way ABM does for any
// certificate a tester gives, so a third-party DEP client can decrypt one.
//
// The file format (learned from NanoDEP's tokenpki package and PROTOCOL.md
// §8.4): S/MIME headers, a blank line, base64 of a CMS EnvelopedData; its
// plaintext is again MIME-like headers, a blank line, and the token JSON
// between "-----BEGIN MESSAGE-----" and "-----END MESSAGE-----" lines.

// Kinds of ADE token refusal; each *ADETokenError wraps one.
var (
	ErrTokenWrongRecipient = errors.New("server token is encrypted to another certificate")
	ErrTokenCorrupt        = errors.New("server token is corrupt")
	ErrTokenMissingFields  = errors.New("server token lacks required fields")
	ErrTokenExpired        = errors.New("server token expired")
	ErrTokenConsumerKey    = errors.New("server token is for another MDM server (consumer key differs)")
	ErrTokenCertificate    = errors.New("certificate cannot receive a server token")
)

// ADETokenError is a server token mockmdm will not accept, with the HTTP
// status a handler should answer and a reason a person can act on.
type ADETokenError struct {
	Kind   error
	Status int
	Reason string
	Err    error
}

func (e *ADETokenError) Error() string {
	msg := e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes the kind (for errors.Is) and the cause.
func (e *ADETokenError) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// HTTPStatus is 400, or 409 for a consumer key that differs from the configured one.
func (e *ADETokenError) HTTPStatus() int { return e.Status }

func tokenError(kind error, status int, cause error, format string, args ...any) *ADETokenError {
	return &ADETokenError{Kind: kind, Status: status, Reason: fmt.Sprintf(format, args...), Err: cause}
}

// TokenKeyPair is the MDM server's token key pair: the self-signed
// certificate an admin uploads to ABM (its "public key") and the RSA key that
// decrypts the server tokens ABM returns.
type TokenKeyPair struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// NewTokenKeyPair makes a 2048-bit RSA key and a self-signed certificate for
// it with key usage keyEncipherment|digitalSignature (what ABM accepts and
// what NanoDEP generates). commonName defaults to "mockmdm-depserver".
func NewTokenKeyPair(commonName string, validity time.Duration) (*TokenKeyPair, error) {
	if commonName == "" {
		commonName = "mockmdm-depserver"
	}
	if validity <= 0 {
		validity = 2 * 365 * 24 * time.Hour
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-10 * time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &TokenKeyPair{Cert: cert, Key: key}, nil
}

// LoadOrCreateTokenKeyPair reads the token key pair from certPath and
// keyPath, or creates and writes one when neither file exists, so that the
// certificate uploaded to ABM stays valid across restarts.
func LoadOrCreateTokenKeyPair(certPath, keyPath, commonName string, validity time.Duration) (kp *TokenKeyPair, created bool, err error) {
	certs, cerr := ReadCertPEM(certPath)
	key, kerr := ReadKeyPEM(keyPath)
	if cerr == nil && kerr == nil {
		if !key.PublicKey.Equal(certs[0].PublicKey) {
			return nil, false, fmt.Errorf("certs: token key %s does not match certificate %s", keyPath, certPath)
		}
		return &TokenKeyPair{Cert: certs[0], Key: key}, false, nil
	}
	if !errors.Is(cerr, fs.ErrNotExist) || !errors.Is(kerr, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("certs: loading token key pair: %w", errors.Join(cerr, kerr))
	}
	kp, err = NewTokenKeyPair(commonName, validity)
	if err != nil {
		return nil, false, err
	}
	if err := WriteKeyPEM(keyPath, kp.Key); err != nil {
		return nil, false, err
	}
	if err := WriteCertPEM(certPath, kp.Cert); err != nil {
		return nil, false, err
	}
	return kp, true, nil
}

// CertPEM is the certificate as PEM: the file an admin uploads to ABM.
func (kp *TokenKeyPair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Cert.Raw})
}

// ADEToken is the content of a server token: Apple's OAuth 1.0a credentials
// for the ADE API, under Apple's JSON names.
type ADEToken struct {
	ConsumerKey       string    `json:"consumer_key"`
	ConsumerSecret    string    `json:"consumer_secret"`
	AccessToken       string    `json:"access_token"`
	AccessSecret      string    `json:"access_secret"`
	AccessTokenExpiry time.Time `json:"access_token_expiry"`
}

// NewADEToken makes fresh random credentials (with Apple's CK_, CS_, AT_,
// AS_ prefixes) valid until expiry.
func NewADEToken(expiry time.Time) (ADEToken, error) {
	var parts [4]string
	for i, prefix := range []string{"CK_", "CS_", "AT_", "AS_"} {
		b := make([]byte, 40)
		if _, err := rand.Read(b); err != nil {
			return ADEToken{}, err
		}
		parts[i] = prefix + hex.EncodeToString(b)
	}
	return ADEToken{parts[0], parts[1], parts[2], parts[3], expiry.UTC().Truncate(time.Second)}, nil
}

// Missing names the JSON fields of t that are empty.
func (t ADEToken) Missing() []string {
	var m []string
	for _, f := range []struct {
		name  string
		empty bool
	}{
		{"consumer_key", t.ConsumerKey == ""},
		{"consumer_secret", t.ConsumerSecret == ""},
		{"access_token", t.AccessToken == ""},
		{"access_secret", t.AccessSecret == ""},
		{"access_token_expiry", t.AccessTokenExpiry.IsZero()},
	} {
		if f.empty {
			m = append(m, f.name)
		}
	}
	return m
}

// Token states reported by ADEToken.Status.
const (
	TokenActive       = "active"
	TokenExpiringSoon = "expiring-soon"
	TokenExpired      = "expired"
)

// ExpiringSoon is how close to its expiry a token is reported as expiring
// soon (ABM warns admins about a month ahead).
const ExpiringSoon = 30 * 24 * time.Hour

// ADETokenStatus says whether a token is usable and for how long.
type ADETokenStatus struct {
	State    string    `json:"state"`
	DaysLeft int       `json:"days_left"`
	Expiry   time.Time `json:"access_token_expiry"`
}

// Status is the token's state at now: expired, expiring soon (< 30 days
// left) or active, with whole days left (negative once expired).
func (t ADEToken) Status(now time.Time) ADETokenStatus {
	left := t.AccessTokenExpiry.Sub(now)
	days := int(left / (24 * time.Hour))
	st := ADETokenStatus{State: TokenActive, DaysLeft: days, Expiry: t.AccessTokenExpiry}
	switch {
	case left <= 0:
		st.State = TokenExpired
		if left > -24*time.Hour {
			st.DaysLeft = 0
		} else {
			st.DaysLeft = days
		}
	case left < ExpiringSoon:
		st.State = TokenExpiringSoon
	}
	return st
}

// TokenVariant selects a deliberately broken token from GenerateADEToken.
type TokenVariant string

// Token variants: a good one, and the three broken ones a tester may ask for.
const (
	VariantValid          TokenVariant = ""
	VariantExpired        TokenVariant = "expired"
	VariantWrongRecipient TokenVariant = "wrong-recipient"
	VariantCorrupt        TokenVariant = "corrupt"
)

// ParseTokenVariant accepts "", "valid", "expired", "wrong-recipient" or "corrupt".
func ParseTokenVariant(s string) (TokenVariant, error) {
	switch v := TokenVariant(strings.ToLower(strings.TrimSpace(s))); v {
	case "valid", VariantValid:
		return VariantValid, nil
	case VariantExpired, VariantWrongRecipient, VariantCorrupt:
		return v, nil
	}
	return "", fmt.Errorf("unknown token variant %q: use expired, wrong-recipient or corrupt (or none for a valid token)", s)
}

// encryptMu serializes the use of pkcs7's package-level content-encryption
// setting: it must be AES for the token (openssl 3 and ABM's clients refuse
// the library's DES default) but is global state of the library.
var encryptMu sync.Mutex

// maxADEToken bounds a .p7m: a real one is about 3 KB.
const maxADEToken = 64 << 10

// EncryptADEToken returns tok as a .p7m server token encrypted to recipient,
// in ABM's S/MIME format.
func EncryptADEToken(tok ADEToken, recipient *x509.Certificate) ([]byte, error) {
	if recipient == nil {
		return nil, errors.New("certs: no recipient certificate for the server token")
	}
	if _, ok := recipient.PublicKey.(*rsa.PublicKey); !ok {
		return nil, tokenError(ErrTokenCertificate, http.StatusBadRequest, nil, "the certificate's key is %T: ABM encrypts server tokens to RSA keys only", recipient.PublicKey)
	}
	js, err := json.Marshal(tok)
	if err != nil {
		return nil, err
	}
	var inner bytes.Buffer
	inner.WriteString("Content-Type: text/plain;charset=UTF-8\r\n")
	inner.WriteString("Content-Transfer-Encoding: 7bit\r\n\r\n")
	inner.WriteString("-----BEGIN MESSAGE-----\r\n")
	inner.Write(js)
	inner.WriteString("\r\n-----END MESSAGE-----\r\n")

	return encryptRaw(inner.Bytes(), recipient)
}

// encryptRaw envelopes plain to recipient with AES-256-CBC and wraps it in
// S/MIME headers.
func encryptRaw(plain []byte, recipient *x509.Certificate) ([]byte, error) {
	encryptMu.Lock()
	saved := pkcs7.ContentEncryptionAlgorithm
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC
	der, err := pkcs7.Encrypt(plain, []*x509.Certificate{recipient})
	pkcs7.ContentEncryptionAlgorithm = saved
	encryptMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("certs: enveloping the server token: %w", err)
	}
	return smimeWrap(der), nil
}

func smimeWrap(der []byte) []byte {
	var out bytes.Buffer
	out.WriteString("Content-Type: application/pkcs7-mime; name=\"smime.p7m\"; smime-type=enveloped-data\r\n")
	out.WriteString("Content-Transfer-Encoding: base64\r\n")
	out.WriteString("Content-Disposition: attachment; filename=\"smime.p7m\"\r\n")
	out.WriteString("Content-Description: S/MIME Encrypted Message\r\n\r\n")
	b64 := base64.StdEncoding.EncodeToString(der)
	for len(b64) > 76 {
		out.WriteString(b64[:76])
		out.WriteString("\r\n")
		b64 = b64[76:]
	}
	out.WriteString(b64)
	out.WriteString("\r\n")
	return out.Bytes()
}

// GenerateADEToken issues fresh credentials as ABM does and returns the
// .p7m encrypted to recipient, with the token inside it. The variant breaks
// it on purpose: expired (expiry a day before now), wrong-recipient
// (encrypted to a throwaway certificate instead), corrupt (the CMS cut in
// half under intact S/MIME headers). A valid token expires a year after now.
func GenerateADEToken(recipient *x509.Certificate, variant TokenVariant, now time.Time) ([]byte, ADEToken, error) {
	switch variant {
	case VariantValid, VariantExpired, VariantWrongRecipient, VariantCorrupt:
	default:
		return nil, ADEToken{}, fmt.Errorf("unknown token variant %q", variant)
	}
	expiry := now.Add(365 * 24 * time.Hour)
	if variant == VariantExpired {
		expiry = now.Add(-24 * time.Hour)
	}
	tok, err := NewADEToken(expiry)
	if err != nil {
		return nil, ADEToken{}, err
	}
	to := recipient
	if variant == VariantWrongRecipient {
		other, err := NewTokenKeyPair("another-mdm-server", 24*time.Hour)
		if err != nil {
			return nil, ADEToken{}, err
		}
		to = other.Cert
	}
	p7m, err := EncryptADEToken(tok, to)
	if err != nil {
		return nil, ADEToken{}, err
	}
	if variant == VariantCorrupt {
		der, _ := smimeBody(p7m)
		p7m = smimeWrap(der[:len(der)/2])
	}
	return p7m, tok, nil
}

// smimeBody splits the S/MIME headers off and base64-decodes the body.
func smimeBody(p7m []byte) ([]byte, *ADETokenError) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(p7m)))
	hdr, err := r.ReadMIMEHeader()
	if err != nil && !(errors.Is(err, io.EOF) && len(hdr) > 0) {
		return nil, tokenError(ErrTokenCorrupt, http.StatusBadRequest, err,
			"not S/MIME: a server token starts with MIME headers (Content-Type: application/pkcs7-mime …), a blank line and base64; upload the *_smime.p7m file as ABM gave it")
	}
	ct := hdr.Get("Content-Type")
	mt, params, perr := mime.ParseMediaType(ct)
	if perr != nil || (mt != "application/pkcs7-mime" && mt != "application/x-pkcs7-mime") {
		return nil, tokenError(ErrTokenCorrupt, http.StatusBadRequest, nil,
			"not S/MIME: Content-Type is %q, want application/pkcs7-mime", ct)
	}
	if st := params["smime-type"]; st != "" && st != "enveloped-data" {
		return nil, tokenError(ErrTokenCorrupt, http.StatusBadRequest, nil,
			"not S/MIME enveloped data: smime-type is %q, want enveloped-data", st)
	}
	if cte := hdr.Get("Content-Transfer-Encoding"); cte != "" && !strings.EqualFold(cte, "base64") {
		return nil, tokenError(ErrTokenCorrupt, http.StatusBadRequest, nil,
			"not S/MIME: Content-Transfer-Encoding is %q, want base64", cte)
	}
	rest, _ := io.ReadAll(r.R)
	clean := strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' || c == ' ' || c == '\t' {
			return -1
		}
		return c
	}, string(rest))
	der, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, tokenError(ErrTokenCorrupt, http.StatusBadRequest, err, "not S/MIME: the body after the headers is not base64")
	}
	if len(der) == 0 {
		return nil, tokenError(ErrTokenCorrupt, http.StatusBadRequest, nil, "not S/MIME: the body after the headers is empty")
	}
	return der, nil
}

// DecryptADEToken opens a .p7m with our token key pair and returns the token
// it carries, checking that every field is present. It does not check the
// expiry (see CheckADEToken), so that an expired token can still be shown.
func (kp *TokenKeyPair) DecryptADEToken(p7m []byte) (ADEToken, error) {
	if len(p7m) > maxADEToken {
		return ADEToken{}, tokenError(ErrTokenCorrupt, http.StatusBadRequest, nil,
			"the server token is %d bytes; a real one is a few KB (limit %d)", len(p7m), maxADEToken)
	}
	der, terr := smimeBody(p7m)
	if terr != nil {
		return ADEToken{}, terr
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return ADEToken{}, tokenError(ErrTokenCorrupt, http.StatusBadRequest, err, "not CMS: the base64 body is not a PKCS#7/CMS structure")
	}
	if !recipientMatches(der, kp.Cert) {
		found := recipientsOf(der)
		return ADEToken{}, tokenError(ErrTokenWrongRecipient, http.StatusBadRequest, nil,
			"the server token is encrypted to %s, but this server's token certificate is issuer %q serial %s: download this server's public key, upload it to ABM for this MDM server and download a new token",
			found, kp.Cert.Issuer.String(), kp.Cert.SerialNumber.Text(16))
	}
	plain, err := p7.Decrypt(kp.Cert, kp.Key)
	if err != nil {
		if errors.Is(err, pkcs7.ErrNotEncryptedContent) {
			return ADEToken{}, tokenError(ErrTokenCorrupt, http.StatusBadRequest, err, "not CMS enveloped data: the CMS is not encrypted content")
		}
		return ADEToken{}, tokenError(ErrTokenCorrupt, http.StatusBadRequest, err, "not decryptable: the CMS is addressed to this server but does not decrypt with its key")
	}
	js, terr := tokenJSON(plain)
	if terr != nil {
		return ADEToken{}, terr
	}
	var tok ADEToken
	if err := json.Unmarshal(js, &tok); err != nil {
		return ADEToken{}, tokenError(ErrTokenCorrupt, http.StatusBadRequest, err, "not JSON: the decrypted message is not the token JSON object")
	}
	if m := tok.Missing(); len(m) > 0 {
		return tok, tokenError(ErrTokenMissingFields, http.StatusBadRequest, nil,
			"the server token lacks %s", strings.Join(m, ", "))
	}
	return tok, nil
}

// tokenJSON strips the inner MIME headers and the BEGIN/END MESSAGE lines.
func tokenJSON(plain []byte) ([]byte, *ADETokenError) {
	body := plain
	if i := bytes.Index(plain, []byte("\r\n\r\n")); i >= 0 {
		body = plain[i+4:]
	} else if i := bytes.Index(plain, []byte("\n\n")); i >= 0 {
		body = plain[i+2:]
	}
	const begin, end = "-----BEGIN MESSAGE-----", "-----END MESSAGE-----"
	b := bytes.Index(body, []byte(begin))
	e := bytes.LastIndex(body, []byte(end))
	if b < 0 || e < b+len(begin) {
		return nil, tokenError(ErrTokenCorrupt, http.StatusBadRequest, nil,
			"not an ABM message: the decrypted text has no %s … %s block", begin, end)
	}
	return bytes.TrimSpace(body[b+len(begin) : e]), nil
}

// CheckADEToken refuses a token that expired before now, or whose consumer
// key differs from configured (the key of the token already in use; empty
// when none) unless force is set: a different consumer key means the token
// belongs to another MDM server in ABM.
func CheckADEToken(tok ADEToken, now time.Time, configured string, force bool) error {
	if m := tok.Missing(); len(m) > 0 {
		return tokenError(ErrTokenMissingFields, http.StatusBadRequest, nil, "the server token lacks %s", strings.Join(m, ", "))
	}
	if !tok.AccessTokenExpiry.After(now) {
		return tokenError(ErrTokenExpired, http.StatusBadRequest, nil,
			"the server token expired at %s; download a renewed token from ABM", tok.AccessTokenExpiry.UTC().Format(time.RFC3339))
	}
	if configured != "" && tok.ConsumerKey != configured && !force {
		return tokenError(ErrTokenConsumerKey, http.StatusConflict, nil,
			"the server token's consumer key %s… differs from the configured %s…: it belongs to another MDM server in ABM; upload with force to replace it",
			prefix(tok.ConsumerKey, 8), prefix(configured, 8))
	}
	return nil
}

func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// CMS structures, read only to name the recipients of a token that is not
// ours (pkcs7 does not export them).
type cmsContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type cmsEnvelopedData struct {
	Version        int
	RecipientInfos []asn1.RawValue `asn1:"set"`
	Rest           asn1.RawValue
}

type cmsKeyTransRecipient struct {
	Version int
	Issuer  struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}
	Rest asn1.RawValue
}

// recipientIDs reads issuer and serial of each key-transport recipient;
// ok is false when the CMS cannot be read that way (BER, other recipient kinds).
func recipientIDs(der []byte) (ids []cmsKeyTransRecipient, ok bool) {
	var ci cmsContentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, false
	}
	var ed cmsEnvelopedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		return nil, false
	}
	for _, raw := range ed.RecipientInfos {
		var ri cmsKeyTransRecipient
		if _, err := asn1.Unmarshal(raw.FullBytes, &ri); err != nil || ri.Issuer.Serial == nil {
			return ids, false
		}
		ids = append(ids, ri)
	}
	return ids, true
}

// recipientMatches reports whether cert is a recipient; when the recipients
// cannot be read it says yes and lets the decryption decide.
func recipientMatches(der []byte, cert *x509.Certificate) bool {
	ids, ok := recipientIDs(der)
	if !ok {
		return true
	}
	for _, id := range ids {
		if bytes.Equal(id.Issuer.Issuer.FullBytes, cert.RawIssuer) && id.Issuer.Serial.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// recipientsOf describes the recipients for an error message.
func recipientsOf(der []byte) string {
	ids, _ := recipientIDs(der)
	if len(ids) == 0 {
		return "no recipient this server can read"
	}
	var parts []string
	for _, id := range ids {
		var rdn pkix.RDNSequence
		name := "an unreadable issuer"
		if _, err := asn1.Unmarshal(id.Issuer.Issuer.FullBytes, &rdn); err == nil {
			var n pkix.Name
			n.FillFromRDNSequence(&rdn)
			name = fmt.Sprintf("%q", n.String())
		}
		parts = append(parts, fmt.Sprintf("issuer %s serial %s", name, id.Issuer.Serial.Text(16)))
	}
	return strings.Join(parts, "; ")
}

// ParseTokenCertificate reads the certificate a tester wants a server token
// for: PEM (the file an MDM server offers for upload to ABM) or DER.
func ParseTokenCertificate(b []byte) (*x509.Certificate, error) {
	if len(b) > maxADEToken {
		return nil, tokenError(ErrTokenCertificate, http.StatusBadRequest, nil, "the certificate is %d bytes; limit %d", len(b), maxADEToken)
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, tokenError(ErrTokenCertificate, http.StatusBadRequest, nil, "the PEM block is %q, want CERTIFICATE (the MDM server's public key certificate)", blk.Type)
		}
		der = blk.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, tokenError(ErrTokenCertificate, http.StatusBadRequest, err, "not a certificate: send the MDM server's public key certificate as PEM")
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, tokenError(ErrTokenCertificate, http.StatusBadRequest, nil, "the certificate's key is %T: ABM encrypts server tokens to RSA keys only", cert.PublicKey)
	}
	return cert, nil
}
