package profiles

import (
	"github.com/mockmdm/mockmdm/internal/plistguard"

	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/micromdm/plist"
	"go.mozilla.org/pkcs7"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

// Parsed is a decoded .mobileconfig, signed or not.
type Parsed struct {
	Raw     []byte // as given
	Content []byte // the plist bytes (the eContent when signed)
	Signed  bool
	// Signer is the certificate of the (first) signer; nil when unsigned.
	Signer *x509.Certificate
	// Certificates is every certificate the CMS carried, signer included.
	Certificates []*x509.Certificate
	// Top is the top-level dictionary, PayloadContent included as decoded.
	Top map[string]any
	// Payloads is PayloadContent, in order; empty for an encrypted profile.
	Payloads []Payload
}

var (
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// Parse decodes a profile: DER CMS SignedData (detected by its leading
// SEQUENCE byte) or an XML or binary property list. For a signed profile it
// checks the CMS signature over the content, which proves the content is
// what the signer signed; whether the signer is trusted is VerifyChain's
// question. Inputs over MaxProfileSize are refused with 413; every other
// malformed input gets a 400 that says what is wrong.
func Parse(data []byte) (*Parsed, error) {
	if len(data) == 0 {
		return nil, badRequest("the profile is empty: expected a .mobileconfig (an XML or binary property list, or DER CMS SignedData wrapping one)")
	}
	if len(data) > MaxProfileSize {
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "the profile is %d bytes; profiles larger than %d bytes (4 MiB) are refused", len(data), MaxProfileSize)
	}
	p := &Parsed{Raw: data, Content: data}
	switch {
	case data[0] == 0x30: // ASN.1 SEQUENCE: a CMS ContentInfo
		if err := p.parseSigned(); err != nil {
			return nil, err
		}
	case bytes.HasPrefix(data, []byte("-----BEGIN")):
		return nil, badRequest("the profile is PEM-armored; send the DER bytes of the CMS SignedData (openssl cms -outform DER) or the plain property list")
	}
	where := "the profile"
	if p.Signed {
		where = "the signed content of the profile"
	}
	top, payloads, err := decodeProfile(p.Content, where)
	if err != nil {
		return nil, err
	}
	p.Top, p.Payloads = top, payloads
	return p, nil
}

// parseSigned decodes and checks the CMS SignedData in p.Raw and sets
// Content, Signed, Signer and Certificates.
func (p *Parsed) parseSigned() (err error) {
	// The CMS decoder indexes into attacker-chosen structures; a bug there
	// must cost the request, not the process.
	defer func() {
		if r := recover(); r != nil {
			err = badRequest("the profile is malformed CMS: the decoder failed on it (%v)", r)
		}
	}()
	end, err := checkBER(p.Raw)
	if err != nil {
		return badRequest("the profile starts like DER (0x30) but is not a well-formed CMS encoding: %v", err)
	}
	if end != len(p.Raw) {
		return badRequest("the profile has %d bytes after the end of its CMS structure", len(p.Raw)-end)
	}
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Rest        asn1.RawValue `asn1:"optional,explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(p.Raw, &ci); err == nil {
		switch {
		case ci.ContentType.Equal(oidEnvelopedData):
			return badRequest("the profile is CMS EnvelopedData (encrypted to a recipient), not SignedData; decrypt it first")
		case !ci.ContentType.Equal(oidSignedData):
			return badRequest("the profile is CMS of content type %s, not SignedData (1.2.840.113549.1.7.2)", ci.ContentType)
		}
	}
	p7, err := pkcs7.Parse(p.Raw)
	if err != nil {
		if errors.Is(err, pkcs7.ErrUnsupportedContentType) {
			return badRequest("the profile is CMS but not SignedData")
		}
		return badRequest("the profile starts like DER but is not valid CMS SignedData: %v", err)
	}
	if len(p7.Signers) == 0 {
		return badRequest("the profile is CMS SignedData without a signer")
	}
	if len(p7.Content) == 0 {
		return badRequest("the profile's CMS SignedData has no attached content (a detached signature?); a signed profile carries the property list inside")
	}
	if err := p7.Verify(); err != nil {
		var mismatch *pkcs7.MessageDigestMismatchError
		if errors.As(err, &mismatch) {
			return badRequest("the profile's signature does not match its content: the content was changed after it was signed")
		}
		return badRequest("the profile's CMS signature does not verify: %v", err)
	}
	for i, si := range p7.Signers {
		var found *x509.Certificate
		for _, c := range p7.Certificates {
			if si.IssuerAndSerialNumber.SerialNumber != nil && c.SerialNumber.Cmp(si.IssuerAndSerialNumber.SerialNumber) == 0 &&
				bytes.Equal(c.RawIssuer, si.IssuerAndSerialNumber.IssuerName.FullBytes) {
				found = c
				break
			}
		}
		if found == nil {
			return badRequest("the profile's CMS does not carry the certificate of signer %d", i+1)
		}
		if i == 0 {
			p.Signer = found
		}
	}
	p.Content, p.Signed, p.Certificates = p7.Content, true, p7.Certificates
	return nil
}

// decodeProfile decodes content as a property list whose top level is a
// dictionary with a PayloadContent array of dictionaries.
func decodeProfile(content []byte, where string) (top map[string]any, payloads []Payload, err error) {
	// A UTF-8 byte-order mark is legal XML that the decoder trips over.
	content = bytes.TrimPrefix(content, []byte("\xef\xbb\xbf"))
	if !bytes.HasPrefix(content, []byte("bplist")) && !bytes.HasPrefix(bytes.TrimLeft(content, " \t\r\n"), []byte("<")) {
		return nil, nil, badRequest("%s is not a property list: it is neither XML (<?xml …, <plist …) nor binary (bplist00), nor DER CMS SignedData", where)
	}
	if err := plistguard.Check(content); err != nil {
		return nil, nil, badRequest("%s is refused: %v", where, err)
	}
	defer func() {
		if r := recover(); r != nil {
			top, payloads, err = nil, nil, badRequest("%s is a malformed property list: the decoder failed on it (%v)", where, r)
		}
	}()
	var v any
	if err := plist.Unmarshal(content, &v); err != nil {
		if !bytes.HasPrefix(content, []byte("bplist")) {
			if at := xmlWhere(content); at != "" {
				return nil, nil, badRequest("%s is not a valid property list: %s (%v)", where, at, err)
			}
		}
		return nil, nil, badRequest("%s is not a valid property list: %v", where, err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, nil, badRequest("%s is a property list whose top level is %s; a configuration profile is a dictionary", where, withArticle(typeName(v)))
	}
	pc, present := top["PayloadContent"]
	if !present {
		// Encrypted: the payloads are in EncryptedPayloadContent. Apple's
		// schema pairs it with IsEncrypted; either one marks it.
		if b, _ := top["IsEncrypted"].(bool); b || top["EncryptedPayloadContent"] != nil {
			return top, nil, nil
		}
		return nil, nil, badRequest("%s has no PayloadContent: a configuration profile lists its payloads in a PayloadContent array", where)
	}
	items, ok := pc.([]any)
	if !ok {
		return nil, nil, badRequest("%s has a PayloadContent that is %s; it must be an array of payload dictionaries", where, withArticle(typeName(pc)))
	}
	payloads = make([]Payload, 0, len(items))
	for i, item := range items {
		d, ok := item.(map[string]any)
		if !ok {
			return nil, nil, badRequest("%s: PayloadContent[%d] is %s; each payload must be a dictionary", where, i, withArticle(typeName(item)))
		}
		payloads = append(payloads, Payload(d))
	}
	return top, payloads, nil
}

// VerifyChain checks that the signer chains to one of roots at time at (now
// when zero), using the certificates the CMS carried as intermediates. Parse
// has already checked the signature itself. Any extended key usage is
// accepted: Apple does not define one for profile signing.
func (p *Parsed) VerifyChain(roots *x509.CertPool, at time.Time) error {
	if !p.Signed || p.Signer == nil {
		return badRequest("the profile is not signed, so it has no signer to trust")
	}
	if roots == nil {
		return errors.New("profiles: VerifyChain needs a pool of trusted roots")
	}
	if at.IsZero() {
		at = time.Now()
	}
	inter := x509.NewCertPool()
	for _, c := range p.Certificates {
		if !c.Equal(p.Signer) {
			inter.AddCert(c)
		}
	}
	_, err := p.Signer.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return httperr.Wrap(http.StatusBadRequest, err, "the profile's signer %q does not chain to a trusted root", p.Signer.Subject.String())
	}
	return nil
}

// PayloadsOfType returns the payloads whose PayloadType is t, in order.
func (p *Parsed) PayloadsOfType(t string) []Payload {
	var out []Payload
	for _, pl := range p.Payloads {
		if pl.Type() == t {
			out = append(out, pl)
		}
	}
	return out
}

// typeName names a decoded plist value's type as the plist format does.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "string"
	case int64, uint64, int, int32, uint32:
		return "integer"
	case float64, float32:
		return "real"
	case bool:
		return "boolean"
	case []byte:
		return "data"
	case time.Time:
		return "date"
	case []any:
		return "array"
	case map[string]any:
		return "dictionary"
	}
	return fmt.Sprintf("%T", v)
}

func withArticle(name string) string {
	switch name {
	case "integer", "array":
		return "an " + name
	case "nothing", "data":
		return name
	}
	return "a " + name
}
