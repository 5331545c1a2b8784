package certs

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.mozilla.org/pkcs7"
)

// maxMdmSignature bounds the Mdm-Signature header before decoding. A real
// one is one certificate plus one SignerInfo (2–4 KiB of base64); 64 KiB
// leaves room for a signer that includes its chain.
const maxMdmSignature = 64 << 10

// SignedInfo is what a verified Mdm-Signature says about its signer.
type SignedInfo struct {
	// Signer is the certificate whose key made the signature.
	Signer *x509.Certificate
	// SigningTime is the signed signingTime attribute; zero if the signed
	// attributes carry none.
	SigningTime time.Time

	// signerSum is SHA-256 of Signer.Raw when the fast path had it cached.
	signerSum [32]byte
	hasSum    bool
}

// SignerSHA256 is the SHA-256 of the signer certificate's DER — what Hash
// encodes and Verifier keys its cache on — without hashing it again when
// the signature check already knew it.
func (i *SignedInfo) SignerSHA256() [32]byte {
	if i.hasSum {
		return i.signerSum
	}
	return sha256.Sum256(i.Signer.Raw)
}

// SignMdmSignature computes the Mdm-Signature header value for body, as an
// Apple device does when its MDM profile sets SignMessage: a detached CMS
// SignedData over the exact body bytes (SHA-256, with signed attributes
// including signingTime = now), signer certificate included, base64 with
// the standard alphabet.
func SignMdmSignature(body []byte, cert *x509.Certificate, key crypto.PrivateKey) (string, error) {
	return signMdm(body, cert, key, true)
}

// SignMdmSignatureWithoutAttributes is SignMdmSignature without signed
// attributes, so without a signingTime. pkcs7 stamps the wall-clock time and
// VerifyMdmSignature (like NanoMDM) refuses a signing time outside the signer
// certificate's validity; a virtual device whose identity was issued on a
// fake clock far from the wall clock signs this way instead.
func SignMdmSignatureWithoutAttributes(body []byte, cert *x509.Certificate, key crypto.PrivateKey) (string, error) {
	return signMdm(body, cert, key, false)
}

func signMdm(body []byte, cert *x509.Certificate, key crypto.PrivateKey, attrs bool) (string, error) {
	if cert == nil || key == nil {
		return "", errors.New("certs: Mdm-Signature needs a certificate and its key")
	}
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		return "", fmt.Errorf("certs: Mdm-Signature: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if attrs {
		err = sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{})
	} else {
		err = sd.SignWithoutAttr(cert, key, pkcs7.SignerInfoConfig{})
	}
	if err != nil {
		return "", fmt.Errorf("certs: Mdm-Signature: sign: %w", err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return "", fmt.Errorf("certs: Mdm-Signature: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// VerifyMdmSignature checks an Mdm-Signature header against the raw request
// body: it must be base64 of a CMS SignedData with no content of its own
// (detached), exactly one signer, that signer's certificate included, and a
// signature that verifies over body. It checks the signature only — whether
// the signer is a device identity of the test CA is the Verifier's job.
// Every refusal is an *Error (HTTP 400) whose Kind names the reason.
func VerifyMdmSignature(header string, body []byte) (info *SignedInfo, err error) {
	// The PKCS#7 decoder underneath reads untrusted DER; if some corner of
	// it panics, that is a malformed signature (400), not a crashed request.
	defer func() {
		if p := recover(); p != nil {
			info, err = nil, newError(ErrSignatureNotCMS, nil, "the Mdm-Signature header is a malformed CMS structure (decoder panic: %v)", p)
		}
	}()
	return verifyMdmSignature(header, body)
}

// derBuffers hold decoded Mdm-Signature DER between requests.
var derBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func verifyMdmSignature(header string, body []byte) (*SignedInfo, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, newError(ErrSignatureMissing, nil, "the Mdm-Signature header is empty")
	}
	if len(header) > maxMdmSignature {
		return nil, newError(ErrSignatureTooLarge, nil, "the Mdm-Signature header is %d bytes; a detached signature with its certificate is a few KiB (limit %d)", len(header), maxMdmSignature)
	}
	// Decoded into a reused buffer: the fast path keeps nothing of it (the
	// certificate cache copies what it keeps), so the buffer goes back to
	// the pool when the fast path verifies; otherwise the general path may
	// keep references into it, and it is left to the collector.
	bp := derBuffers.Get().(*[]byte)
	der, err := base64.StdEncoding.AppendDecode((*bp)[:0], unsafe.Slice(unsafe.StringData(header), len(header)))
	if err != nil {
		// Some HTTP stacks strip the padding; accept that, but nothing else.
		if d, rawErr := base64.RawStdEncoding.DecodeString(header); rawErr == nil {
			der, err = d, nil
		}
	}
	if err != nil {
		return nil, newError(ErrSignatureNotBase64, err, "the Mdm-Signature header is not standard base64")
	}
	// The fast path takes only one DER object with nothing after it.
	if info, ok := fastVerify(der, body); ok {
		if cap(der) <= maxMdmSignature {
			*bp = der[:0]
			derBuffers.Put(bp)
		}
		return info, nil
	}
	// DER must be one object; BER (indefinite lengths) is left to pkcs7.
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &outer); err == nil && len(rest) > 0 {
		return nil, newError(ErrSignatureNotCMS, nil, "the Mdm-Signature header has %d bytes after the CMS structure", len(rest))
	}
	return verifyGeneral(der, body)
}

// verifyGeneral verifies any CMS shape pkcs7 reads, and says why it refuses.
func verifyGeneral(der, body []byte) (*SignedInfo, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, newError(ErrSignatureNotCMS, err, "the Mdm-Signature header does not decode to a CMS (PKCS#7) SignedData")
	}
	if len(p7.Signers) == 0 {
		return nil, newError(ErrSignatureSigners, nil, "the Mdm-Signature CMS has no SignerInfo (is it a SignedData?)")
	}
	if len(p7.Content) > 0 {
		return nil, newError(ErrSignatureAttached, nil, "the Mdm-Signature CMS carries %d bytes of content of its own; it must be detached, signing the request body", len(p7.Content))
	}
	if len(p7.Signers) > 1 {
		return nil, newError(ErrSignatureSigners, nil, "the Mdm-Signature CMS has %d signers; a device signs with exactly one identity", len(p7.Signers))
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, newError(ErrSignatureNoSignerCert, nil, "the Mdm-Signature CMS does not include the signer's certificate (%d certificates present, none matches the SignerInfo)", len(p7.Certificates))
	}
	p7.Content = body
	if err := p7.Verify(); err != nil {
		var mismatch *pkcs7.MessageDigestMismatchError
		switch {
		case errors.As(err, &mismatch):
			return nil, newError(ErrSignatureMismatch, nil, "the Mdm-Signature was made over different bytes than this %d-byte body (message digest mismatch); sign the exact body sent", len(body))
		case strings.Contains(err.Error(), "signing time"):
			return nil, newError(ErrSignatureSigningTime, nil, "the Mdm-Signature signing time is outside the validity of the signer certificate %q (%s to %s): the device identity has expired, is not yet valid, or the device clock is wrong",
				signer.Subject.CommonName, signer.NotBefore.UTC().Format(time.RFC3339), signer.NotAfter.UTC().Format(time.RFC3339))
		default:
			return nil, newError(ErrSignatureMismatch, err, "the Mdm-Signature does not verify with the public key of %q", signer.Subject.CommonName)
		}
	}
	info := &SignedInfo{Signer: signer}
	var st time.Time
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeSigningTime, &st); err == nil {
		info.SigningTime = st
	}
	return info, nil
}
