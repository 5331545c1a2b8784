package certs

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The Mdm-Signature hot path. Every device request carries one; parsing it
// with pkcs7.Parse (a BER-to-DER pass, reflection-driven asn1, a fresh parse
// of the signer certificate) cost more than the RSA verification itself.
// fastVerify reads the one shape Apple devices send — strict DER, one
// certificate, one SignerInfo naming it by issuer and serial, RSA PKCS#1
// v1.5 over SHA-256 or SHA-1, with or without signed attributes — straight
// from the bytes, and takes the certificate from a cache. It decides only
// acceptance: anything else, and every failure, goes to the general path
// (pkcs7), which gives the reasons. A differential fuzz target holds it to
// never accept what the general path refuses.

var (
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSA           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
)

// The same OIDs as DER contents, compared as bytes on the hot path (reading
// an asn1.ObjectIdentifier allocates).
var (
	rawSignedData    = oidContents(oidSignedData)
	rawData          = oidContents(oidData)
	rawSHA1          = oidContents(oidSHA1)
	rawSHA256        = oidContents(oidSHA256)
	rawRSA           = oidContents(oidRSA)
	rawSHA1WithRSA   = oidContents(oidSHA1WithRSA)
	rawSHA256WithRSA = oidContents(oidSHA256WithRSA)
	rawMessageDigest = oidContents(oidMessageDigest)
	rawSigningTime   = oidContents(oidSigningTime)
	rawContentType   = oidContents(oidContentType)
	knownOIDs        = [][]byte{rawSignedData, rawData, rawSHA1, rawSHA256, rawRSA, rawSHA1WithRSA, rawSHA256WithRSA, rawMessageDigest, rawSigningTime, rawContentType}
)

// oidContents is the DER contents octets of oid (its encoding without tag
// and length).
func oidContents(oid asn1.ObjectIdentifier) []byte {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	s := cryptobyte.String(der)
	var c cryptobyte.String
	if !s.ReadASN1(&c, cbasn1.OBJECT_IDENTIFIER) {
		panic("certs: OID does not re-read")
	}
	return c
}

// readOID reads an OBJECT IDENTIFIER and returns its contents octets. One
// that is none of the known OIDs must still be well formed, as
// ReadASN1ObjectIdentifier (and pkcs7 after it) demands.
func readOID(s *cryptobyte.String) ([]byte, bool) {
	start := *s
	var raw cryptobyte.String
	if !s.ReadASN1(&raw, cbasn1.OBJECT_IDENTIFIER) {
		return nil, false
	}
	for _, k := range knownOIDs {
		if bytes.Equal(raw, k) {
			return raw, true
		}
	}
	var oid asn1.ObjectIdentifier
	if !start.ReadASN1ObjectIdentifier(&oid) {
		return nil, false
	}
	return raw, true
}

// signerCerts caches parsed signer certificates by their DER: a device
// sends the same certificate on every request.
var signerCerts = certCache{m: map[string]cachedSigner{}}

const signerCertCacheSize = 20_000

type certCache struct {
	mu sync.RWMutex
	m  map[string]cachedSigner
}

// cachedSigner is a parsed signer certificate and the SHA-256 of its DER,
// which the chain check and the enrollment binding key on: computed once,
// not on every request.
type cachedSigner struct {
	cert *x509.Certificate
	sum  [32]byte
	// rsa verifies with the key's modulus prepared once (rsaverify.go).
	rsa rsaVerifier
}

// get returns the parsed certificate for der. der may be a reused buffer:
// what the cache keeps is a copy.
func (c *certCache) get(der []byte) (cachedSigner, error) {
	c.mu.RLock()
	e, ok := c.m[string(der)]
	c.mu.RUnlock()
	if ok {
		return e, nil
	}
	own := bytes.Clone(der)
	cert, err := x509.ParseCertificate(own)
	if err != nil {
		return cachedSigner{}, err
	}
	e = cachedSigner{cert: cert, sum: sha256.Sum256(own)}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok {
		e.rsa = newRSAVerifier(pub)
	}
	c.mu.Lock()
	if len(c.m) >= signerCertCacheSize {
		c.m = map[string]cachedSigner{} // crude but bounded: refill from traffic
	}
	c.m[string(own)] = e
	c.mu.Unlock()
	return e, nil
}

// fastVerify returns the signer of a detached Mdm-Signature over body when
// der has the common shape and verifies; ok is false otherwise.
func fastVerify(der, body []byte) (info *SignedInfo, ok bool) {
	in := cryptobyte.String(der)
	var ci, sd cryptobyte.String
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, false
	}
	if ctype, ok := readOID(&ci); !ok || !bytes.Equal(ctype, rawSignedData) ||
		!ci.ReadASN1(&sd, cbasn1.Tag(0).ContextSpecific().Constructed()) || !ci.Empty() {
		return nil, false
	}
	var signed, digestAlgs, encap, certSet, signerSet cryptobyte.String
	var version int
	if !sd.ReadASN1(&signed, cbasn1.SEQUENCE) || !sd.Empty() ||
		!signed.ReadASN1Integer(&version) ||
		!signed.ReadASN1(&digestAlgs, cbasn1.SET) ||
		!signed.ReadASN1(&encap, cbasn1.SEQUENCE) {
		return nil, false
	}
	if etype, ok := readOID(&encap); !ok || !bytes.Equal(etype, rawData) || !encap.Empty() {
		return nil, false // content present (attached) or another type: general path
	}
	if !signed.ReadASN1(&certSet, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, false
	}
	var certDER cryptobyte.String
	if !certSet.ReadASN1Element(&certDER, cbasn1.SEQUENCE) || !certSet.Empty() {
		return nil, false // exactly one certificate
	}
	if !signed.ReadASN1(&signerSet, cbasn1.SET) || !signed.Empty() {
		return nil, false // CRLs, or anything after the signers
	}
	var si cryptobyte.String
	if !signerSet.ReadASN1(&si, cbasn1.SEQUENCE) || !signerSet.Empty() {
		return nil, false // exactly one signer
	}
	var siVersion int
	var sid, issuer cryptobyte.String
	serial := new(big.Int)
	if !si.ReadASN1Integer(&siVersion) ||
		!si.ReadASN1(&sid, cbasn1.SEQUENCE) ||
		!sid.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!sid.ReadASN1Integer(serial) || !sid.Empty() {
		return nil, false
	}
	digestOID, ok := readAlgorithm(&si)
	if !ok {
		return nil, false
	}
	// The SignedData's digest algorithms: exactly the signer's.
	setOID, ok := readAlgorithm(&digestAlgs)
	if !ok || !digestAlgs.Empty() || !bytes.Equal(setOID, digestOID) {
		return nil, false
	}
	var hash crypto.Hash
	switch {
	case bytes.Equal(digestOID, rawSHA256):
		hash = crypto.SHA256
	case bytes.Equal(digestOID, rawSHA1):
		hash = crypto.SHA1
	default:
		return nil, false
	}
	var attrs cryptobyte.String
	var hasAttrs bool
	if !si.ReadOptionalASN1(&attrs, &hasAttrs, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, false
	}
	sigOID, ok := readAlgorithm(&si)
	if !ok || !(bytes.Equal(sigOID, rawRSA) || hash == crypto.SHA256 && bytes.Equal(sigOID, rawSHA256WithRSA) || hash == crypto.SHA1 && bytes.Equal(sigOID, rawSHA1WithRSA)) {
		return nil, false
	}
	var sig cryptobyte.String
	if !si.ReadASN1(&sig, cbasn1.OCTET_STRING) || !si.Empty() {
		return nil, false // unsigned attributes: general path
	}

	signer, err := signerCerts.get(certDER)
	if err != nil {
		return nil, false
	}
	cert := signer.cert
	// The SignerInfo must name this certificate.
	if !bytes.Equal(issuer, cert.RawIssuer) || serial.Cmp(cert.SerialNumber) != 0 {
		return nil, false
	}
	if _, isRSA := cert.PublicKey.(*rsa.PublicKey); !isRSA {
		return nil, false
	}
	bodyDigest := digest(hash, body)
	info = &SignedInfo{Signer: cert, signerSum: signer.sum, hasSum: true}
	signedBytes := bodyDigest
	if hasAttrs {
		md, st, ok := readAttributes(attrs)
		if !ok || !bytes.Equal(md, bodyDigest) {
			return nil, false
		}
		if !st.IsZero() {
			if st.After(cert.NotAfter) || st.Before(cert.NotBefore) {
				return nil, false
			}
			info.SigningTime = st
		}
		// The signature covers the attributes re-tagged as a SET (RFC 5652
		// §5.4): hashed as the SET's header, then the attributes as sent.
		h := hash.New()
		h.Write(derHeader(0x31, len(attrs)))
		h.Write(attrs)
		signedBytes = h.Sum(nil)
	}
	if !signer.rsa.verify(hash, signedBytes, sig) {
		return nil, false
	}
	return info, true
}

// derHeader is the DER identifier and length octets of an element with
// tag and n content bytes.
func derHeader(tag byte, n int) []byte {
	if n < 0x80 {
		return []byte{tag, byte(n)}
	}
	var l []byte
	for v := n; v > 0; v >>= 8 {
		l = append([]byte{byte(v)}, l...)
	}
	return append([]byte{tag, 0x80 | byte(len(l))}, l...)
}

// readAlgorithm reads an AlgorithmIdentifier whose parameters are absent
// or NULL.
func readAlgorithm(s *cryptobyte.String) ([]byte, bool) {
	var alg cryptobyte.String
	if !s.ReadASN1(&alg, cbasn1.SEQUENCE) {
		return nil, false
	}
	oid, ok := readOID(&alg)
	if !ok {
		return nil, false
	}
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || len(null) != 0 || !alg.Empty() {
			return nil, false
		}
	}
	return oid, true
}

// readAttributes returns the messageDigest (required) and signingTime
// (optional) of signed attributes, each allowed once with one value; other
// attributes are allowed except a contentType that is not id-data.
func readAttributes(attrs cryptobyte.String) (md []byte, st time.Time, ok bool) {
	seenMD, seenST := false, false
	for !attrs.Empty() {
		var attr, values cryptobyte.String
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) {
			return nil, time.Time{}, false
		}
		oid, ok := readOID(&attr)
		if !ok || !attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return nil, time.Time{}, false
		}
		switch {
		case bytes.Equal(oid, rawMessageDigest):
			var v cryptobyte.String
			if seenMD || !values.ReadASN1(&v, cbasn1.OCTET_STRING) || !values.Empty() {
				return nil, time.Time{}, false
			}
			md, seenMD = v, true
		case bytes.Equal(oid, rawSigningTime):
			if seenST {
				return nil, time.Time{}, false
			}
			seenST = true
			var err error
			switch {
			case values.PeekASN1Tag(cbasn1.UTCTime):
				if !readUTCTime(&values, &st) {
					err = asn1.SyntaxError{Msg: "UTCTime"}
				}
			case values.PeekASN1Tag(cbasn1.GeneralizedTime):
				if !values.ReadASN1GeneralizedTime(&st) {
					err = asn1.SyntaxError{Msg: "GeneralizedTime"}
				}
			default:
				err = asn1.SyntaxError{Msg: "signingTime"}
			}
			if err != nil || !values.Empty() {
				return nil, time.Time{}, false
			}
		case bytes.Equal(oid, rawContentType):
			if ct, ok := readOID(&values); !ok || !bytes.Equal(ct, rawData) || !values.Empty() {
				return nil, time.Time{}, false
			}
		}
	}
	return md, st, seenMD
}

// readUTCTime reads a UTCTime as cryptobyte's ReadASN1UTCTime does, with
// the form every device signs with — YYMMDDHHMMSSZ — read directly: the
// general reading goes through time.Parse and time.Format, a tenth of a
// request's own work. Anything else goes to ReadASN1UTCTime.
// TestReadUTCTimeMatchesCryptobyte and FuzzReadUTCTimeMatchesCryptobyte
// hold it to cryptobyte.
func readUTCTime(s *cryptobyte.String, out *time.Time) bool {
	var v cryptobyte.String
	if peek := *s; !peek.ReadASN1(&v, cbasn1.UTCTime) || len(v) != 13 || v[12] != 'Z' {
		return s.ReadASN1UTCTime(out)
	}
	var n [6]int
	for i := range n {
		hi, lo := v[2*i]-'0', v[2*i+1]-'0'
		if hi > 9 || lo > 9 {
			return s.ReadASN1UTCTime(out)
		}
		n[i] = int(hi)*10 + int(lo)
	}
	year := 2000 + n[0] // RFC 5280 §4.1.2.5.1: 50–99 are 1950–1999
	if n[0] >= 50 {
		year -= 100
	}
	t := time.Date(year, time.Month(n[1]), n[2], n[3], n[4], n[5], 0, time.UTC)
	// time.Date normalises (31 April is 1 May); time.Parse refuses.
	s.ReadASN1(&v, cbasn1.UTCTime) // consumed either way, as cryptobyte does
	if t.Month() != time.Month(n[1]) || t.Day() != n[2] || t.Hour() != n[3] || t.Minute() != n[4] || t.Second() != n[5] {
		return false
	}
	*out = t
	return true
}
