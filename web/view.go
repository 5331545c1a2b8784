package web

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/micromdm/plist"
	"go.mozilla.org/pkcs7"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/plistguard"
)

// maxShownBody bounds how much of one body a page shows: a long
// InstalledApplicationList is still readable, a hostile megabyte is not
// sent back whole.
const maxShownBody = 256 << 10

// body is a request or response body as a page shows it.
type body struct {
	// Text is what to show (escaped by the template).
	Text string
	// Kind says what Text is: "plist" (re-indented), "text", "binary" (hex
	// dump) or "" when there is no body.
	Kind string
	// Note says what was done to it: truncated, not a valid plist…
	Note string
}

// showBody decodes b defensively for display: an XML plist the guard
// accepts is decoded and printed again with indentation; other text is
// shown as is; anything else as a hex dump. It never fails.
func showBody(b []byte) body {
	if len(b) == 0 {
		return body{}
	}
	var notes []string
	truncated := false
	if len(b) > maxShownBody {
		truncated = true
	}
	switch {
	case bytes.HasPrefix(b, []byte("bplist0")):
		out := body{Kind: "binary", Note: "a binary property list (Apple devices send XML); shown as hex"}
		out.Text = hexDump(b)
		return out
	case utf8.Valid(b) && looksLikePlist(b):
		if !truncated {
			if pretty, err := prettyPlist(b); err == nil {
				return body{Text: pretty, Kind: "plist"}
			} else {
				notes = append(notes, "not a property list this page can decode ("+err.Error()+"); shown as sent")
			}
		} else {
			notes = append(notes, "too large to re-indent; shown as sent")
		}
	case !utf8.Valid(b):
		return body{Text: hexDump(b), Kind: "binary", Note: "not UTF-8 text; shown as hex"}
	}
	text := b
	if truncated {
		text = b[:maxShownBody]
		for !utf8.Valid(text) && len(text) > 0 { // do not cut a character in half
			text = text[:len(text)-1]
		}
		notes = append(notes, fmt.Sprintf("truncated: %d of %d bytes shown", len(text), len(b)))
	}
	return body{Text: string(text), Kind: "text", Note: strings.Join(notes, "; ")}
}

// looksLikePlist reports whether b is worth trying as an XML plist.
func looksLikePlist(b []byte) bool {
	t := bytes.TrimSpace(b)
	return bytes.HasPrefix(t, []byte("<?xml")) || bytes.HasPrefix(t, []byte("<!DOCTYPE plist")) || bytes.HasPrefix(t, []byte("<plist"))
}

// prettyPlist decodes a guarded XML plist and prints it again, indented.
func prettyPlist(b []byte) (s string, err error) {
	defer func() {
		if p := recover(); p != nil { // the decoder reads untrusted bytes
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	if err := plistguard.Check(b); err != nil {
		return "", err
	}
	var v any
	if err := plist.Unmarshal(b, &v); err != nil {
		return "", err
	}
	out, err := plist.MarshalIndent(v, "  ")
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// hexDump shows at most the first 4 KiB of b as a hex dump.
func hexDump(b []byte) string {
	const max = 4 << 10
	if len(b) <= max {
		return hex.Dump(b)
	}
	return hex.Dump(b[:max]) + fmt.Sprintf("… %d more bytes\n", len(b)-max)
}

// maxSignatureHeader bounds the Mdm-Signature value decoded for display
// (a detached signature with its certificate is a few KiB).
const maxSignatureHeader = 64 << 10

// signature is an Mdm-Signature header explained.
type signature struct {
	// Present is false when the transcript holds no header for the entry.
	Present bool
	// Verified: the CMS signature matches the body.
	Verified    bool
	Subject     string
	Issuer      string
	Serial      string
	NotAfter    time.Time
	SigningTime time.Time
	// Problem says why it did not verify, or could not be read.
	Problem string
}

// explainSignature reads an Mdm-Signature header over body: who signed
// (subject, issuer, serial of the signer certificate), when (the signed
// signingTime), and whether the signature matches the body. It decodes
// defensively and never fails: what it cannot read goes in Problem.
func explainSignature(header string, body []byte) (sig signature) {
	header = strings.TrimSpace(header)
	if header == "" {
		return sig
	}
	sig.Present = true
	defer func() {
		if p := recover(); p != nil { // the CMS decoder reads untrusted DER
			sig.Verified = false
			sig.Problem = fmt.Sprintf("the signature is a malformed CMS structure (decoder panic: %v)", p)
		}
	}()
	if len(header) > maxSignatureHeader {
		sig.Problem = fmt.Sprintf("the header is %d bytes, too large to be a detached signature (limit %d)", len(header), maxSignatureHeader)
		return sig
	}
	der, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		if d, rawErr := base64.RawStdEncoding.DecodeString(header); rawErr == nil {
			der, err = d, nil
		}
	}
	if err != nil {
		sig.Problem = "not standard base64: " + err.Error()
		return sig
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		sig.Problem = "not a CMS SignedData structure: " + err.Error()
		return sig
	}
	if signer := signerCert(p7); signer != nil {
		sig.Subject = signer.Subject.String()
		sig.Issuer = signer.Issuer.String()
		sig.Serial = serialHex(signer.SerialNumber)
		sig.NotAfter = signer.NotAfter
	}
	info, err := certs.VerifyMdmSignature(header, body)
	if err != nil {
		sig.Problem = err.Error()
		return sig
	}
	sig.Verified = true
	sig.SigningTime = info.SigningTime
	if sig.Subject == "" && info.Signer != nil {
		sig.Subject, sig.Issuer, sig.Serial = info.Signer.Subject.String(), info.Signer.Issuer.String(), serialHex(info.Signer.SerialNumber)
	}
	return sig
}

// signerCert is the certificate named by the first signer, else the
// first certificate carried.
func signerCert(p7 *pkcs7.PKCS7) *x509.Certificate {
	if len(p7.Signers) > 0 {
		want := p7.Signers[0].IssuerAndSerialNumber.SerialNumber
		for _, c := range p7.Certificates {
			if want != nil && c.SerialNumber != nil && c.SerialNumber.Cmp(want) == 0 {
				return c
			}
		}
	}
	if len(p7.Certificates) > 0 {
		return p7.Certificates[0]
	}
	return nil
}

// serialHex shows a serial number as colon-separated hex, as Keychain and
// openssl do.
func serialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	b := n.Bytes()
	if len(b) == 0 {
		return "00"
	}
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}
