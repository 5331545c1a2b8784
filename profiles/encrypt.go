package profiles

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/micromdm/plist"
	"go.mozilla.org/pkcs7"

	"github.com/mockmdm/mockmdm/internal/plistguard"
)

// An encrypted profile (Apple, "Over-the-Air Profile Delivery and
// Configuration", and the TopLevel schema's IsEncrypted and
// EncryptedPayloadContent keys) keeps its top-level keys in the clear but
// replaces PayloadContent: the PayloadContent array is serialized as a
// property list of its own (whose top level is the array), encrypted as CMS
// EnvelopedData to the device's identity certificate, and the DER stored as
// the data value EncryptedPayloadContent, with IsEncrypted true. Apple
// names no cipher; AES-256-CBC with RSA key transport is what devices and
// openssl both read.

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// The EnvelopedData shapes of RFC 5652 §6 this package writes and reads
// (KeyTransRecipientInfo with IssuerAndSerialNumber only).
type envelopedData struct {
	Version              int
	RecipientInfos       []keyTransRecipient `asn1:"set"`
	EncryptedContentInfo encryptedContentInfo
}

type keyTransRecipient struct {
	Version                int
	IssuerAndSerialNumber  issuerAndSerial
	KeyEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedKey           []byte
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type encryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           asn1.RawValue `asn1:"tag:0,optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

// Recipient is one certificate an encrypted profile is encrypted to.
type Recipient struct {
	Issuer pkix.Name
	Serial *big.Int
}

func (r Recipient) String() string {
	return fmt.Sprintf("issuer %q, serial %X", r.Issuer.String(), r.Serial)
}

// Encrypt returns profile (an unsigned XML or binary .mobileconfig) with
// its PayloadContent encrypted to recipient, as an XML property list. Sign
// the result afterwards if it is to be signed: a signature covers the
// encrypted form. recipient needs an RSA key.
func Encrypt(profile []byte, recipient *x509.Certificate) ([]byte, error) {
	if recipient == nil {
		return nil, errors.New("profiles: Encrypt needs the recipient's certificate")
	}
	pub, ok := recipient.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("profiles: the recipient certificate %q has a %T key; profile encryption needs RSA", recipient.Subject.CommonName, recipient.PublicKey)
	}
	p, err := Parse(profile)
	if err != nil {
		return nil, err
	}
	if p.Signed {
		return nil, badRequest("the profile is signed: encrypt the unsigned profile, then sign the result")
	}
	if _, enc := p.Top["EncryptedPayloadContent"]; enc {
		return nil, badRequest("the profile is already encrypted")
	}
	if b, _ := p.Top["IsEncrypted"].(bool); b {
		return nil, badRequest("the profile says IsEncrypted but has no EncryptedPayloadContent: give the unencrypted profile")
	}
	items := make([]any, len(p.Payloads))
	for i, pl := range p.Payloads {
		items[i] = map[string]any(pl)
	}
	content, err := plist.MarshalIndent(items, "\t")
	if err != nil {
		return nil, fmt.Errorf("profiles: serializing PayloadContent: %w", err)
	}
	env, err := envelop(content, recipient, pub)
	if err != nil {
		return nil, err
	}
	top := make(map[string]any, len(p.Top)+1)
	for k, v := range p.Top {
		if k != "PayloadContent" {
			top[k] = v
		}
	}
	top["IsEncrypted"] = true
	top["EncryptedPayloadContent"] = env
	return plist.MarshalIndent(top, "\t")
}

// envelop is CMS EnvelopedData of content to one RSA recipient:
// AES-256-CBC under a fresh key, the key wrapped with RSA PKCS #1 v1.5.
func envelop(content []byte, cert *x509.Certificate, pub *rsa.PublicKey) ([]byte, error) {
	key := make([]byte, 32)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(content)%aes.BlockSize
	plain := append(bytes.Clone(content), bytes.Repeat([]byte{byte(pad)}, pad)...)
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	wrapped, err := rsa.EncryptPKCS1v15(rand.Reader, pub, key)
	if err != nil {
		return nil, fmt.Errorf("profiles: wrapping the content key for %q: %w", cert.Subject.CommonName, err)
	}
	ivParam, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	ed := envelopedData{
		RecipientInfos: []keyTransRecipient{{
			IssuerAndSerialNumber:  issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber},
			KeyEncryptionAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1.NullRawValue},
			EncryptedKey:           wrapped,
		}},
		EncryptedContentInfo: encryptedContentInfo{
			ContentType:                oidData,
			ContentEncryptionAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivParam}},
			EncryptedContent:           asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: ct},
		},
	}
	inner, err := asn1.Marshal(ed)
	if err != nil {
		return nil, err
	}
	// A RawValue's own class and tag are written as they are (FullBytes
	// would skip the explicit [0] wrapping), so the [0] is spelled here.
	return asn1.Marshal(contentInfo{ContentType: oidEnvelopedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
}

// IsEncrypted reports whether the profile's payloads are in
// EncryptedPayloadContent.
func (p *Parsed) IsEncrypted() bool {
	_, ok := p.Top["EncryptedPayloadContent"]
	return ok
}

// Recipients lists whom the EncryptedPayloadContent is encrypted to, so a
// person without the key can be told which device identity opens it.
func (p *Parsed) Recipients() ([]Recipient, error) {
	env, err := p.encryptedContent()
	if err != nil {
		return nil, err
	}
	ed, err := parseEnveloped(env)
	if err != nil {
		return nil, err
	}
	out := make([]Recipient, 0, len(ed.RecipientInfos))
	for _, ri := range ed.RecipientInfos {
		var rdn pkix.RDNSequence
		var name pkix.Name
		if _, err := asn1.Unmarshal(ri.IssuerAndSerialNumber.Issuer.FullBytes, &rdn); err == nil {
			name.FillFromRDNSequence(&rdn)
		}
		out = append(out, Recipient{Issuer: name, Serial: ri.IssuerAndSerialNumber.Serial})
	}
	return out, nil
}

func (p *Parsed) encryptedContent() ([]byte, error) {
	v, ok := p.Top["EncryptedPayloadContent"]
	if !ok {
		return nil, badRequest("the profile is not encrypted: it has no EncryptedPayloadContent")
	}
	env, ok := v.([]byte)
	if !ok {
		return nil, badRequest("the profile's EncryptedPayloadContent is %s; it must be data (DER CMS EnvelopedData)", withArticle(typeName(v)))
	}
	if len(env) == 0 {
		return nil, badRequest("the profile's EncryptedPayloadContent is empty")
	}
	return env, nil
}

// EncryptedTo reports whether the profile's EncryptedPayloadContent names
// cert (by issuer and serial number) as a recipient, so a device can pick
// the identity that opens it from those it holds.
func (p *Parsed) EncryptedTo(cert *x509.Certificate) bool {
	env, err := p.encryptedContent()
	if err != nil || cert == nil {
		return false
	}
	ed, err := parseEnveloped(env)
	return err == nil && ed.encryptedTo(cert)
}

func (ed *envelopedData) encryptedTo(cert *x509.Certificate) bool {
	for _, ri := range ed.RecipientInfos {
		if bytes.Equal(ri.IssuerAndSerialNumber.Issuer.FullBytes, cert.RawIssuer) && ri.IssuerAndSerialNumber.Serial != nil &&
			ri.IssuerAndSerialNumber.Serial.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// parseEnveloped checks env is DER CMS EnvelopedData and decodes its
// recipients, guarding the third-party decoder as Parse does.
func parseEnveloped(env []byte) (*envelopedData, error) {
	end, err := checkBER(env)
	if err != nil {
		return nil, badRequest("EncryptedPayloadContent is not a well-formed CMS encoding: %v", err)
	}
	if end != len(env) {
		return nil, badRequest("EncryptedPayloadContent has %d bytes after the end of its CMS structure", len(env)-end)
	}
	var ci contentInfo
	if _, err := asn1.Unmarshal(env, &ci); err != nil {
		return nil, badRequest("EncryptedPayloadContent is not DER CMS ContentInfo: %v", err)
	}
	if !ci.ContentType.Equal(oidEnvelopedData) {
		return nil, badRequest("EncryptedPayloadContent is CMS of content type %s, not EnvelopedData (1.2.840.113549.1.7.3)", ci.ContentType)
	}
	var ed envelopedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		return nil, badRequest("EncryptedPayloadContent is not CMS EnvelopedData with key-transport recipients: %v", err)
	}
	if len(ed.RecipientInfos) == 0 {
		return nil, badRequest("EncryptedPayloadContent names no recipient")
	}
	return &ed, nil
}

// Decrypt returns profile (signed or not) with its EncryptedPayloadContent
// decrypted with the recipient's certificate and key and put back as
// PayloadContent, IsEncrypted removed: an unsigned XML property list that
// Parse and Lint read. A profile encrypted to someone else, a key that is
// not the certificate's, or content that is not a PayloadContent array is
// a 400 saying which.
func Decrypt(profile []byte, cert *x509.Certificate, key crypto.PrivateKey) (out []byte, err error) {
	if cert == nil || key == nil {
		return nil, errors.New("profiles: Decrypt needs the recipient's certificate and key")
	}
	if signer, ok := key.(crypto.Signer); !ok || !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return nil, badRequest("the private key does not belong to the certificate %q", cert.Subject.String())
	}
	p, err := Parse(profile)
	if err != nil {
		return nil, err
	}
	env, err := p.encryptedContent()
	if err != nil {
		return nil, err
	}
	ed, err := parseEnveloped(env)
	if err != nil {
		return nil, err
	}
	if !ed.encryptedTo(cert) {
		var to []string
		rs, _ := p.Recipients()
		for _, r := range rs {
			to = append(to, r.String())
		}
		return nil, badRequest("the profile is encrypted to %v, not to the certificate given (issuer %q, serial %X)", to, cert.Issuer.String(), cert.SerialNumber)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, badRequest("EncryptedPayloadContent is malformed CMS: the decoder failed on it (%v)", r)
		}
	}()
	p7, err := pkcs7.Parse(env)
	if err != nil {
		return nil, badRequest("EncryptedPayloadContent is not CMS EnvelopedData the decoder reads: %v", err)
	}
	content, err := p7.Decrypt(cert, key)
	if err != nil {
		return nil, badRequest("decrypting EncryptedPayloadContent failed: %v (is the key the one the profile was encrypted to?)", err)
	}
	items, err := decodePayloadArray(content)
	if err != nil {
		return nil, err
	}
	top := make(map[string]any, len(p.Top))
	for k, v := range p.Top {
		if k != "EncryptedPayloadContent" && k != "IsEncrypted" {
			top[k] = v
		}
	}
	top["PayloadContent"] = items
	return plist.MarshalIndent(top, "\t")
}

// decodePayloadArray decodes the decrypted content: a property list whose
// top level is the PayloadContent array of dictionaries.
func decodePayloadArray(content []byte) (items []any, err error) {
	const where = "the decrypted EncryptedPayloadContent"
	content = bytes.TrimPrefix(content, []byte("\xef\xbb\xbf"))
	if err := plistguard.Check(content); err != nil {
		return nil, badRequest("%s is refused: %v", where, err)
	}
	defer func() {
		if r := recover(); r != nil {
			items, err = nil, badRequest("%s is a malformed property list: the decoder failed on it (%v)", where, r)
		}
	}()
	var v any
	if err := plist.Unmarshal(content, &v); err != nil {
		return nil, badRequest("%s is not a property list: %v", where, err)
	}
	items, ok := v.([]any)
	if !ok {
		return nil, badRequest("%s is %s; it must be the PayloadContent array", where, withArticle(typeName(v)))
	}
	for i, it := range items {
		if _, ok := it.(map[string]any); !ok {
			return nil, badRequest("%s: item %d is %s; each payload must be a dictionary", where, i, withArticle(typeName(it)))
		}
	}
	return items, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}
