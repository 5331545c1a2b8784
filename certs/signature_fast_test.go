package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"go.mozilla.org/pkcs7"
	"golang.org/x/crypto/cryptobyte"
)

// signDER makes a detached SignedData over body as a device does, with the
// digest and attributes asked for.
func signDER(t testing.TB, body []byte, digestOID []int, attrs bool) ([]byte, *pkcs7Signer) {
	t.Helper()
	ca := testCA(t)
	key := deviceKey(t, 1)
	cert := identity(t, ca, key, "fast-path signer", time.Now(), time.Hour)
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(digestOID)
	if attrs {
		err = sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{})
	} else {
		err = sd.SignWithoutAttr(cert, key, pkcs7.SignerInfoConfig{})
	}
	if err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return der, &pkcs7Signer{cert: cert.Raw}
}

type pkcs7Signer struct{ cert []byte }

// TestFastVerifyTakesTheDeviceShape: what devices send goes through the
// fast path, agrees with the general path, and nothing altered does.
func TestFastVerifyTakesTheDeviceShape(t *testing.T) {
	for _, tc := range []struct {
		name   string
		digest []int
		attrs  bool
	}{
		{"SHA-256 with signed attributes", pkcs7.OIDDigestAlgorithmSHA256, true},
		{"SHA-256 without attributes", pkcs7.OIDDigestAlgorithmSHA256, false},
		{"SHA-1 with signed attributes", pkcs7.OIDDigestAlgorithmSHA1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, s := signDER(t, checkinBody, tc.digest, tc.attrs)
			fast, ok := fastVerify(der, checkinBody)
			if !ok {
				t.Fatal("a device-shaped signature missed the fast path")
			}
			slow, err := verifyGeneral(der, checkinBody)
			if err != nil {
				t.Fatalf("the general path refuses what the fast path took: %v", err)
			}
			if !bytes.Equal(fast.Signer.Raw, s.cert) || !fast.Signer.Equal(slow.Signer) || !fast.SigningTime.Equal(slow.SigningTime) {
				t.Fatalf("fast %+v, general %+v", fast, slow)
			}
			if tc.attrs && fast.SigningTime.IsZero() {
				t.Fatal("signing time not read")
			}
			if _, ok := fastVerify(der, append([]byte("x"), checkinBody...)); ok {
				t.Fatal("fast path accepted another body")
			}
			// Every byte altered two ways: whatever the fast path still takes,
			// the general path must take too.
			for i := range der {
				for _, mask := range []byte{0x01, 0x80} {
					bad := bytes.Clone(der)
					bad[i] ^= mask
					if fast, ok := fastVerify(bad, checkinBody); ok {
						checkAgreement(t, fast, bad, checkinBody)
					}
				}
			}
		})
	}
	// The whole verifier still gives its reasons (from the general path).
	der, _ := signDER(t, checkinBody, pkcs7.OIDDigestAlgorithmSHA256, true)
	if _, err := VerifyMdmSignature(base64.StdEncoding.EncodeToString(der), []byte("other body")); err == nil {
		t.Fatal("a signature over another body verified")
	}
}

// FuzzFastVerifyNeverAcceptsMore is the fast path's oracle: whatever it
// accepts, pkcs7 (the general path) accepts too, with the same signer and
// signing time.
func FuzzFastVerifyNeverAcceptsMore(f *testing.F) {
	for _, attrs := range []bool{true, false} {
		der, _ := signDER(f, checkinBody, pkcs7.OIDDigestAlgorithmSHA256, attrs)
		f.Add(der, checkinBody)
	}
	der, _ := signDER(f, checkinBody, pkcs7.OIDDigestAlgorithmSHA1, true)
	f.Add(der, checkinBody)
	f.Fuzz(func(t *testing.T, der, body []byte) {
		fast, ok := fastVerify(der, body)
		if !ok {
			return
		}
		checkAgreement(t, fast, der, body)
	})
}

// checkAgreement holds what the fast path accepted to the general path:
// it accepts too, with the same signer and signing time — or its BER
// reader cannot read the container at all (ErrSignatureNotCMS: pkcs7's
// converter refuses some encodings x509 reads, such as a certificate whose
// signature BIT STRING leaves a byte over). Such a certificate is then
// judged by the Verifier, which checks its issuer's signature over what
// x509 parsed; a refusal for any other reason — digest, signature,
// signing time, signer — is a fast-path bug.
func checkAgreement(t *testing.T, fast *SignedInfo, der, body []byte) {
	t.Helper()
	var slow *SignedInfo
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = newError(ErrSignatureNotCMS, nil, "pkcs7 panicked: %v", p)
			}
		}()
		slow, err = verifyGeneral(der, body)
	}()
	switch {
	case errors.Is(err, ErrSignatureNotCMS):
		return
	case err != nil:
		t.Fatalf("fast path accepted what the general path refuses: %v", err)
	case !bytes.Equal(fast.Signer.RawTBSCertificate, slow.Signer.RawTBSCertificate) ||
		!bytes.Equal(fast.Signer.Signature, slow.Signer.Signature) || !fast.SigningTime.Equal(slow.SigningTime):
		// (Raw may differ: pkcs7 hands x509 its DER re-encoding of what it read.)
		t.Fatalf("fast %v/%v, general %v/%v", fast.Signer.Subject, fast.SigningTime, slow.Signer.Subject, slow.SigningTime)
	}
}

// TestPooledDERNeverReachesTheCache: the header is decoded into a reused
// buffer; a signer certificate cached from one request must keep its bytes
// after other requests' signatures are decoded into the same buffer, and
// its SHA-256 must be the certificate's.
func TestPooledDERNeverReachesTheCache(t *testing.T) {
	ca := testCA(t)
	var headers []string
	var raws [][]byte
	for i := range 3 {
		key := deviceKey(t, i)
		cert := identity(t, ca, key, "pooled", time.Now(), time.Hour)
		h, err := SignMdmSignature(checkinBody, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		headers, raws = append(headers, h), append(raws, bytes.Clone(cert.Raw))
	}
	for round := range 3 {
		for i, h := range headers {
			info, err := VerifyMdmSignature(h, checkinBody)
			if err != nil {
				t.Fatalf("round %d, signer %d: %v", round, i, err)
			}
			if !bytes.Equal(info.Signer.Raw, raws[i]) {
				t.Fatalf("round %d: signer %d's cached certificate changed under a reused buffer", round, i)
			}
			if info.SignerSHA256() != sha256.Sum256(raws[i]) {
				t.Fatalf("round %d: signer %d's SHA-256 is not its certificate's", round, i)
			}
		}
	}
}

// TestVerifySignerHonoursRevocation: the chain check keyed on the sum the
// signature check carried refuses a revoked signer, as Verify does.
func TestVerifySignerHonoursRevocation(t *testing.T) {
	ca := testCA(t)
	key := deviceKey(t, 2)
	cert := identity(t, ca, key, "revoked signer", time.Now(), time.Hour)
	h, err := SignMdmSignature(checkinBody, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	info, err := VerifyMdmSignature(h, checkinBody)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier([]*x509.Certificate{ca.Cert})
	if err := v.VerifySigner(info, time.Now()); err != nil {
		t.Fatal(err)
	}
	v.Revoke(Hash(cert))
	wantKind(t, v.VerifySigner(info, time.Now()), ErrRevoked)
	wantKind(t, v.VerifySigner(&SignedInfo{}, time.Now()), ErrNoCertificate)
	wantKind(t, v.VerifySigner(nil, time.Now()), ErrNoCertificate)
}

// utcTimeElement is a DER UTCTime of the given contents.
func utcTimeElement(contents string) []byte {
	return append([]byte{0x17, byte(len(contents))}, contents...)
}

// TestReadUTCTimeMatchesCryptobyte: the direct reading of YYMMDDHHMMSSZ
// answers as cryptobyte's ReadASN1UTCTime, on good times and bad ones.
func TestReadUTCTimeMatchesCryptobyte(t *testing.T) {
	for _, c := range []string{
		"261202034700Z", "491231235959Z", "500101000000Z", "690101000000Z", "991231235959Z", "000229120000Z",
		"010229120000Z", "261302000000Z", "260001000000Z", "260100000000Z", "260431000000Z", "261202240000Z",
		"261202236000Z", "261202235960Z", "2612020347Z", "261202034700+0100", "26120203470AZ", "261202034700z",
		"2612020347000Z", "-61202034700Z", "", "Z", "52022912000" + "0Z",
	} {
		assertUTCTimeMatches(t, utcTimeElement(c))
	}
	assertUTCTimeMatches(t, []byte{0x17, 0x0d})                             // shorter than it says
	assertUTCTimeMatches(t, append(utcTimeElement("261202034700Z"), 0x30))  // something after it
	assertUTCTimeMatches(t, append([]byte{0x18, 0x0d}, "261202034700Z"...)) // another tag
}

func FuzzReadUTCTimeMatchesCryptobyte(f *testing.F) {
	for _, c := range []string{"261202034700Z", "500101000000Z", "260431000000Z", "2612020347Z"} {
		f.Add(utcTimeElement(c))
	}
	f.Fuzz(func(t *testing.T, der []byte) { assertUTCTimeMatches(t, der) })
}

func assertUTCTimeMatches(t *testing.T, der []byte) {
	t.Helper()
	mine, theirs := cryptobyte.String(der), cryptobyte.String(der)
	var got, want time.Time
	okGot, okWant := readUTCTime(&mine, &got), theirs.ReadASN1UTCTime(&want)
	if okGot != okWant || got != want || len(mine) != len(theirs) {
		t.Fatalf("%q: read %v %v (%d bytes left), cryptobyte reads %v %v (%d left)", der, okGot, got, len(mine), okWant, want, len(theirs))
	}
}
