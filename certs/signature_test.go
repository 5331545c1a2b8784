package certs

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"go.mozilla.org/pkcs7"
)

// A check-in body as a device sends it.
var checkinBody = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string>
<key>Topic</key><string>com.apple.mgmt.External.1b0f6f8b-2b4a-4c4e-9d1e-0a6c1a0f3e11</string>
<key>UDID</key><string>0000FE00-5C1A2B3C4D5E6F70</string></dict></plist>
`)

func TestMdmSignatureRoundTrip(t *testing.T) {
	ca := testCA(t)
	key := deviceKey(t, 0)
	cert := identity(t, ca, key, "signer", time.Now(), time.Hour)

	header, err := SignMdmSignature(checkinBody, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base64.StdEncoding.DecodeString(header); err != nil {
		t.Fatalf("header is not std base64: %v", err)
	}
	info, err := VerifyMdmSignature(header, checkinBody)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Signer.Equal(cert) {
		t.Fatal("signer is not the signing certificate")
	}
	if d := time.Since(info.SigningTime); d < -time.Minute || d > time.Minute {
		t.Fatalf("signing time %s is not now", info.SigningTime)
	}

	// Detached for real: the DER holds no copy of the body.
	der, _ := base64.StdEncoding.DecodeString(header)
	if strings.Contains(string(der), "Authenticate") {
		t.Fatal("signature embeds the body")
	}

	// Without signed attributes: verifies, and has no signing time.
	bare, err := SignMdmSignatureWithoutAttributes(checkinBody, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	info, err = VerifyMdmSignature(bare, checkinBody)
	if err != nil {
		t.Fatal(err)
	}
	if !info.SigningTime.IsZero() || !info.Signer.Equal(cert) {
		t.Fatalf("bare signature: signing time %v, signer %v", info.SigningTime, info.Signer.Subject)
	}

	// An empty body is a body too.
	empty, err := SignMdmSignature(nil, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyMdmSignature(empty, []byte{}); err != nil {
		t.Fatalf("empty body: %v", err)
	}
	if _, err := VerifyMdmSignature(empty, []byte{0}); err == nil {
		t.Fatal("signature over the empty body verified a one-byte body")
	}

	// Padding stripped by a proxy is tolerated.
	if _, err := VerifyMdmSignature(strings.TrimRight(header, "="), checkinBody); err != nil {
		t.Fatalf("unpadded base64: %v", err)
	}
	if _, err := SignMdmSignature(checkinBody, nil, key); err == nil {
		t.Fatal("signing without a certificate succeeded")
	}
}

func TestMdmSignatureTamperedBody(t *testing.T) {
	key := deviceKey(t, 0)
	cert := identity(t, testCA(t), key, "signer", time.Now(), time.Hour)
	header, err := SignMdmSignature(checkinBody, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"one byte changed": append(append([]byte{}, checkinBody[:40]...), append([]byte{'X'}, checkinBody[41:]...)...),
		"truncated":        checkinBody[:len(checkinBody)-1],
		"extended":         append(append([]byte{}, checkinBody...), '\n'),
		"empty":            nil,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := VerifyMdmSignature(header, body)
			wantKind(t, err, ErrSignatureMismatch)
		})
	}
}

func TestMdmSignatureHostile(t *testing.T) {
	ca := testCA(t)
	key, key2 := deviceKey(t, 0), deviceKey(t, 1)
	cert := identity(t, ca, key, "signer", time.Now(), time.Hour)
	cert2 := identity(t, ca, key2, "second signer", time.Now(), time.Hour)
	good, err := SignMdmSignature(checkinBody, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	goodDER, _ := base64.StdEncoding.DecodeString(good)
	b64 := base64.StdEncoding.EncodeToString

	random := make([]byte, 600)
	rand.Read(random)

	attached := func() string {
		sd, _ := pkcs7.NewSignedData(checkinBody)
		if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		der, _ := sd.Finish()
		return b64(der)
	}()
	twoSigners := func() string {
		sd, _ := pkcs7.NewSignedData(checkinBody)
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		if err := sd.AddSigner(cert2, key2, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		sd.Detach()
		der, _ := sd.Finish()
		return b64(der)
	}()
	// The signature made with one key, claiming another certificate.
	wrongCert := func() string {
		sd, _ := pkcs7.NewSignedData(checkinBody)
		if err := sd.AddSigner(cert2, key, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		sd.Detach()
		der, _ := sd.Finish()
		return b64(der)
	}()
	degenerate, err := pkcs7.DegenerateCertificate(cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	enveloped, err := pkcs7.Encrypt(checkinBody, []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	expired := identity(t, ca, key, "expired", time.Now().Add(-48*time.Hour), 24*time.Hour)
	expiredSig, err := SignMdmSignature(checkinBody, expired, key)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte{}, goodDER...)
	flipped[len(flipped)-5] ^= 0xff // inside the signature value, the last field

	for _, tc := range []struct {
		name   string
		header string
		kind   error
	}{
		{"empty", "", ErrSignatureMissing},
		{"blank", "   ", ErrSignatureMissing},
		{"not base64", "!!not*base64!!", ErrSignatureNotBase64},
		{"base64 with a hole", good[:40] + " " + good[41:], ErrSignatureNotBase64},
		{"URL alphabet junk", "-_-_-_-_", ErrSignatureNotBase64},
		{"too large", strings.Repeat("A", maxMdmSignature+4), ErrSignatureTooLarge},
		{"random bytes", b64(random), ErrSignatureNotCMS},
		{"text", b64([]byte("hello, MDM")), ErrSignatureNotCMS},
		{"truncated DER", b64(goodDER[:len(goodDER)/2]), ErrSignatureNotCMS},
		{"trailing zero bytes", b64(append(append([]byte{}, goodDER...), 0, 0)), ErrSignatureNotCMS},
		{"trailing garbage", b64(append(append([]byte{}, goodDER...), "junk"...)), ErrSignatureNotCMS},
		{"a certificate", b64(cert.Raw), ErrSignatureNotCMS},
		{"degenerate (certificates only)", b64(degenerate), ErrSignatureSigners},
		{"enveloped data", b64(enveloped), ErrSignatureSigners},
		{"attached instead of detached", attached, ErrSignatureAttached},
		{"two signers", twoSigners, ErrSignatureSigners},
		{"no signer certificate", b64(stripCMSCertificates(t, goodDER)), ErrSignatureNoSignerCert},
		{"signer claims another certificate", wrongCert, ErrSignatureMismatch},
		{"signature bytes flipped", b64(flipped), ErrSignatureMismatch},
		{"signed by an expired identity", expiredSig, ErrSignatureSigningTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := VerifyMdmSignature(tc.header, checkinBody)
			if info != nil {
				t.Fatal("got a SignedInfo with an error")
			}
			wantKind(t, err, tc.kind)
		})
	}
}

// stripCMSCertificates removes the [0] certificates field from a CMS
// SignedData, to build a signature that does not include its signer.
func stripCMSCertificates(t *testing.T, der []byte) []byte {
	t.Helper()
	var outer struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	var sd asn1.RawValue
	if _, err := asn1.Unmarshal(outer.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	var kept []byte
	for rest := sd.Bytes; len(rest) > 0; {
		var field asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &field); err != nil {
			t.Fatal(err)
		}
		if field.Class == asn1.ClassContextSpecific && field.Tag == 0 {
			continue
		}
		kept = append(kept, field.FullBytes...)
	}
	inner, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: kept})
	if err != nil {
		t.Fatal(err)
	}
	outer.Content = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
	out, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{outer.Type, outer.Content})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzVerifyMdmSignature(f *testing.F) {
	loadFixtures(f)
	key := deviceKey(f, 0)
	cert := identity(f, testCA(f), key, "fuzz", time.Now(), 24*time.Hour)
	good, err := SignMdmSignature(checkinBody, cert, key)
	if err != nil {
		f.Fatal(err)
	}
	bare, _ := SignMdmSignatureWithoutAttributes([]byte("x"), cert, key)
	f.Add(good, checkinBody)
	f.Add(good, []byte("other body"))
	f.Add(bare, []byte("x"))
	f.Add("", []byte(nil))
	f.Add("MIIB", []byte("x"))
	f.Add(base64.StdEncoding.EncodeToString(cert.Raw), []byte{})
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		info, err := VerifyMdmSignature(header, body)
		if err != nil {
			if info != nil {
				t.Fatal("SignedInfo returned with an error")
			}
			var e *Error
			if !asError(err, &e) || e.HTTPStatus() != 400 {
				t.Fatalf("error %v is not a 400 *Error", err)
			}
			return
		}
		if info == nil || info.Signer == nil {
			t.Fatal("no signer on success")
		}
	})
}
