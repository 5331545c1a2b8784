package certs

import (
	"crypto/x509"
	"testing"
	"time"
)

// BenchmarkVerifyMdmSignature is the per-request cost of a SignMessage
// device's check-in or connect: decode, parse, one RSA verification.
func BenchmarkVerifyMdmSignature(b *testing.B) {
	key := deviceKey(b, 0)
	cert := identity(b, testCA(b), key, "bench", time.Now(), 24*time.Hour)
	header, err := SignMdmSignature(checkinBody, cert, key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(checkinBody)))
	for b.Loop() {
		if _, err := VerifyMdmSignature(header, checkinBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierCached is the cost of identifying a device whose chain
// was already built: a hash of the DER and a map lookup.
func BenchmarkVerifierCached(b *testing.B) {
	ca := testCA(b)
	now := time.Now()
	cert := identity(b, ca, deviceKey(b, 0), "bench", now, 24*time.Hour)
	v := NewVerifier([]*x509.Certificate{ca.Cert})
	if err := v.Verify(cert, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(cert, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierUncached is what the cache saves: a full chain build.
func BenchmarkVerifierUncached(b *testing.B) {
	ca := testCA(b)
	now := time.Now()
	cert := identity(b, ca, deviceKey(b, 0), "bench", now, 24*time.Hour)
	v := NewVerifier([]*x509.Certificate{ca.Cert})
	key := sha256Key(cert)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.build(cert, key, now); err != nil {
			b.Fatal(err)
		}
	}
}
