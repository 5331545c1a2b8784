package certs

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"math/big"
	"sync"
	"testing"
)

// rsaKeys are made once per size: generating them is the slow part.
var rsaKeys = struct {
	sync.Mutex
	m map[int]*rsa.PrivateKey
}{m: map[int]*rsa.PrivateKey{}}

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	rsaKeys.Lock()
	defer rsaKeys.Unlock()
	if k, ok := rsaKeys.m[bits]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeys.m[bits] = k
	return k
}

// agree checks our verification against crypto/rsa's for one input.
func agree(t *testing.T, v rsaVerifier, hash crypto.Hash, digest, sig []byte) bool {
	t.Helper()
	ours := v.verify(hash, digest, sig)
	oracle := rsa.VerifyPKCS1v15(v.pub, hash, digest, sig) == nil
	if ours != oracle {
		t.Fatalf("%d-bit key, %v: ours %v, crypto/rsa %v\ndigest %x\nsig %x", v.pub.N.BitLen(), hash, ours, oracle, digest, sig)
	}
	return ours
}

// TestRSAVerifierMatchesCryptoRSA: for the sizes devices use, valid
// signatures verify, and every alteration — of each byte of the signature,
// of the digest, of the hash named — is refused exactly when crypto/rsa
// refuses it. Keys the prepared path does not take go to crypto/rsa.
func TestRSAVerifierMatchesCryptoRSA(t *testing.T) {
	for _, bits := range []int{2048, 3072, 4096} {
		k := rsaKey(t, bits)
		v := newRSAVerifier(&k.PublicKey)
		if v.n == nil {
			t.Fatalf("%d-bit key with e=65537 not prepared", bits)
		}
		for _, hash := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
			h := hash.New()
			h.Write([]byte("an Idle"))
			digest := h.Sum(nil)
			sig, err := rsa.SignPKCS1v15(rand.Reader, k, hash, digest)
			if err != nil {
				t.Fatal(err)
			}
			if !agree(t, v, hash, digest, sig) {
				t.Fatalf("%d-bit %v: a valid signature was refused", bits, hash)
			}
			for i := range sig {
				bad := bytes.Clone(sig)
				bad[i] ^= 0x01
				agree(t, v, hash, digest, bad)
			}
			badDigest := bytes.Clone(digest)
			badDigest[0] ^= 0x80
			agree(t, v, hash, badDigest, sig)
			agree(t, v, hash, digest[:len(digest)-1], sig)
			agree(t, v, hash, digest, sig[1:])
			agree(t, v, hash, digest, append(bytes.Clone(sig), 0))
			agree(t, v, hash, digest, k.N.Bytes()) // s = N: out of range
			agree(t, v, hash, digest, make([]byte, len(sig)))
		}
		// A SHA-256 signature presented as SHA-1 (and the other way) fails.
		d := sha256.Sum256([]byte("x"))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		d1 := sha1.Sum([]byte("x"))
		agree(t, v, crypto.SHA1, d1[:], sig)
	}
	// Keys the prepared path leaves to crypto/rsa: another exponent, a
	// smaller size, an even modulus.
	k := rsaKey(t, 2048)
	for _, pub := range []*rsa.PublicKey{
		{N: k.N, E: 3},
		{N: new(big.Int).Add(k.N, big.NewInt(1)), E: 65537},
		&rsaKey(t, 1024).PublicKey,
	} {
		if v := newRSAVerifier(pub); v.n != nil {
			t.Errorf("key (%d bits, e=%d, odd %v) was prepared", pub.N.BitLen(), pub.E, pub.N.Bit(0) == 1)
		}
	}
}

// FuzzRSAVerifierMatchesCryptoRSA: for any signature bytes and digest, the
// prepared verification and crypto/rsa agree.
func FuzzRSAVerifierMatchesCryptoRSA(f *testing.F) {
	k := rsaKey(f, 2048)
	digest := sha256.Sum256([]byte("an Idle"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sig, digest[:], true)
	f.Add(sig[:10], digest[:], false)
	f.Add(k.N.Bytes(), digest[:5], true)
	v := newRSAVerifier(&k.PublicKey)
	f.Fuzz(func(t *testing.T, sig, digest []byte, sha256Hash bool) {
		hash := crypto.SHA1
		if sha256Hash {
			hash = crypto.SHA256
		}
		agree(t, v, hash, digest, sig)
	})
}

func BenchmarkRSAVerify(b *testing.B) {
	k := rsaKey(b, 2048)
	digest := sha256.Sum256([]byte("an Idle"))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	v := newRSAVerifier(&k.PublicKey)
	b.Run("prepared", func(b *testing.B) {
		for b.Loop() {
			if !v.verify(crypto.SHA256, digest[:], sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("crypto/rsa", func(b *testing.B) {
		for b.Loop() {
			if rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], sig) != nil {
				b.Fatal("refused")
			}
		}
	})
}
