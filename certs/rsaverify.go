package certs

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"

	"filippo.io/bigmod"
)

// Verifying a device's RSA signature on every request: crypto/rsa rebuilds
// the public key's Montgomery modulus (R² mod N) on each call, about a
// third of a 2048-bit verification, because a *rsa.PublicKey has nowhere to
// keep it. The signer cache keeps one per certificate instead, built with
// filippo.io/bigmod — the standard library's own bigmod, exported by its
// author — and verification is then RFC 8017's encode-and-compare
// (§8.2.2): s^e mod N must equal the PKCS#1 v1.5 encoding of the digest,
// byte for byte, so there is nothing to parse. Keys it does not take
// (another exponent or size) go to crypto/rsa. TestRSAVerifierMatchesCryptoRSA
// and FuzzRSAVerifierMatchesCryptoRSA hold it to crypto/rsa as the oracle.

// rsaVerifier verifies PKCS#1 v1.5 signatures for one public key.
type rsaVerifier struct {
	pub *rsa.PublicKey
	n   *bigmod.Modulus // nil: use crypto/rsa
}

// newRSAVerifier prepares pub's modulus when it has the shape devices use:
// exponent 65537, 2048 to 4096 bits.
func newRSAVerifier(pub *rsa.PublicKey) rsaVerifier {
	v := rsaVerifier{pub: pub}
	if pub.E != 65537 || pub.N == nil || pub.N.Bit(0) != 1 {
		return v // bigmod exponentiates only modulo an odd N
	}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 4096 {
		return v
	}
	if n, err := bigmod.NewModulus(pub.N.Bytes()); err == nil {
		v.n = n
	}
	return v
}

// digestInfoPrefix is the DER of DigestInfo up to the digest (RFC 8017
// §9.2, note 1) for the hashes Mdm-Signature uses.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
}

// verify reports whether sig is a PKCS#1 v1.5 signature of digest (made
// with hash) under the key.
func (v rsaVerifier) verify(hash crypto.Hash, digest, sig []byte) bool {
	prefix, known := digestInfoPrefix[hash]
	if v.n == nil || !known || len(digest) != hash.Size() {
		return rsa.VerifyPKCS1v15(v.pub, hash, digest, sig) == nil
	}
	k := v.n.Size()
	if len(sig) != k {
		return false
	}
	s, err := bigmod.NewNat().SetBytes(sig, v.n) // refuses s ≥ N
	if err != nil {
		return false
	}
	em := bigmod.NewNat().ExpShortVarTime(s, uint(v.pub.E), v.n).Bytes(v.n)
	// EM = 0x00 0x01 0xff… 0x00 DigestInfo, k bytes.
	tLen := len(prefix) + len(digest)
	if k < tLen+11 {
		return false
	}
	want := make([]byte, k)
	want[1] = 0x01
	for i := 2; i < k-tLen-1; i++ {
		want[i] = 0xff
	}
	copy(want[k-tLen:], prefix)
	copy(want[k-len(digest):], digest)
	return subtle.ConstantTimeCompare(em, want) == 1
}
