package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"
)

// pushFixtureSet is what the push tests share, made once because RSA keys
// are slow: the mock Apple push CA, an MDM vendor it certified, a vendor it
// did not, a customer's 2048-bit key and CSR (the portal refuses smaller
// keys, so the 1024-bit device keys of helpers_test.go won't do), and
// certificates for the credential tests.
type pushFixtureSet struct {
	ca          *CA
	vendor      *x509.Certificate
	vendorKey   *rsa.PrivateKey
	stray       *x509.Certificate // a vendor certified by otherCA
	strayKey    *rsa.PrivateKey
	customerKey *rsa.PrivateKey
	otherKey    *rsa.PrivateKey
	ecKey       *ecdsa.PrivateKey
	csrDER      []byte // the customer's CSR, as MicroMDM makes it
	csr         *x509.CertificateRequest
	topic       string
	pushCert    *x509.Certificate // IssuePushCert(ca, csr, topic)
	strayPush   *x509.Certificate // the same from otherCA
	tlsCert     *x509.Certificate // a TLS server certificate…
	tlsKey      *rsa.PrivateKey   // …and its key
	fooCert     *x509.Certificate // UID com.example.foo, for customerKey
}

var (
	pushFixturesOnce sync.Once
	pushFixtures     pushFixtureSet
	pushFixturesErr  error
)

const vendorValidity = 365 * 24 * time.Hour

func pushFix(tb testing.TB) *pushFixtureSet {
	tb.Helper()
	loadFixtures(tb)
	pushFixturesOnce.Do(func() { pushFixturesErr = makePushFixtures(&pushFixtures) })
	if pushFixturesErr != nil {
		tb.Fatalf("push fixtures: %v", pushFixturesErr)
	}
	return &pushFixtures
}

func makePushFixtures(f *pushFixtureSet) error {
	var err error
	if f.ca, err = NewCA("mock Apple push CA", 2048, 10*365*24*time.Hour); err != nil {
		return err
	}
	if f.vendor, f.vendorKey, err = NewMockVendorCert(f.ca, "Example MDM Inc.", vendorValidity); err != nil {
		return err
	}
	if f.stray, f.strayKey, err = NewMockVendorCert(fixtures.otherCA, "Stray Vendor", vendorValidity); err != nil {
		return err
	}
	for _, k := range []**rsa.PrivateKey{&f.customerKey, &f.otherKey} {
		if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return err
		}
	}
	if f.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return err
	}
	if f.csrDER, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: customerSubject()}, f.customerKey); err != nil {
		return err
	}
	if f.csr, err = x509.ParseCertificateRequest(f.csrDER); err != nil {
		return err
	}
	f.topic = NewTopic()
	if f.pushCert, err = IssuePushCert(f.ca, f.csr, f.topic, vendorValidity); err != nil {
		return err
	}
	if f.strayPush, err = IssuePushCert(fixtures.otherCA, f.csr, f.topic, vendorValidity); err != nil {
		return err
	}
	pair, err := fixtures.ca.IssueServerCert([]string{"mdm.example.test"}, 24*time.Hour)
	if err != nil {
		return err
	}
	f.tlsCert, f.tlsKey = pair.Leaf, pair.PrivateKey.(*rsa.PrivateKey)
	f.fooCert, err = f.ca.issue(&x509.Certificate{Subject: pkix.Name{
		CommonName: "APSP:foo",
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: "com.example.foo"}},
	}}, &f.customerKey.PublicKey, time.Now(), vendorValidity)
	return err
}

var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// customerSubject is what MicroMDM's "mdmctl mdmcert push" puts in the
// customer's CSR: C, CN and emailAddress.
func customerSubject() pkix.Name {
	return pkix.Name{
		Country:    []string{"US"},
		CommonName: "Example Customer",
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidEmailAddress, Value: "admin@example.com"}},
	}
}

func csrDER(tb testing.TB, key crypto.Signer, subject pkix.Name) []byte {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func signCSR(tb testing.TB, key *rsa.PrivateKey, hash crypto.Hash, der []byte) []byte {
	tb.Helper()
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, hash, digest(hash, der))
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

func certsPEM(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// requestFields are the three plist values of a good request, made here
// without NewPushCertRequest so that each can be broken on its own.
func requestFields(tb testing.TB) map[string]any {
	f := pushFix(tb)
	return map[string]any{
		keyPushCertRequestCSR: base64.StdEncoding.EncodeToString(f.csrDER),
		keyPushCertChain:      certsPEM(f.vendor, f.ca.Cert),
		keyPushCertSignature:  base64.StdEncoding.EncodeToString(signCSR(tb, f.vendorKey, crypto.SHA256, f.csrDER)),
	}
}

func with(fields map[string]any, key string, value any) map[string]any {
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		out[k] = v
	}
	if value == nil {
		delete(out, key)
	} else {
		out[key] = value
	}
	return out
}

func encodeRequest(tb testing.TB, v any) []byte {
	tb.Helper()
	doc, err := plist.MarshalIndent(v, "\t")
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(doc))
}

// bplist assembles a binary property list from raw objects (markers and
// all) with 2-byte offsets and 1-byte object references.
func bplist(root uint64, objs ...[]byte) []byte {
	b := []byte("bplist00")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = len(b)
		b = append(b, o...)
	}
	table := len(b)
	for _, o := range offs {
		b = binary.BigEndian.AppendUint16(b, uint16(o))
	}
	tr := make([]byte, 32)
	tr[6], tr[7] = 2, 1
	binary.BigEndian.PutUint64(tr[8:], uint64(len(objs)))
	binary.BigEndian.PutUint64(tr[16:], root)
	binary.BigEndian.PutUint64(tr[24:], uint64(table))
	return append(b, tr...)
}

// bplistString is an ASCII string object of any length below 64 KiB.
func bplistString(s string) []byte {
	if len(s) < 15 {
		return append([]byte{0x50 | byte(len(s))}, s...)
	}
	return append(binary.BigEndian.AppendUint16([]byte{0x5F, 0x11}, uint16(len(s))), s...)
}

// binaryRequest is the request's dictionary as a binary plist.
func binaryRequest(fields map[string]any) []byte {
	keys := []string{keyPushCertRequestCSR, keyPushCertChain, keyPushCertSignature}
	dict := []byte{0xD3, 1, 2, 3, 4, 5, 6}
	objs := [][]byte{dict}
	for _, k := range keys {
		objs = append(objs, bplistString(k))
	}
	for _, k := range keys {
		objs = append(objs, bplistString(fields[k].(string)))
	}
	return bplist(0, objs...)
}

// laughingPlist is a binary plist of a few hundred bytes whose decoded tree
// is enormous: each level is an array of 14 references to the next.
func laughingPlist(levels int) []byte {
	var objs [][]byte
	for i := range levels {
		o := []byte{0xAE}
		for range 14 {
			o = append(o, byte(i+1))
		}
		objs = append(objs, o)
	}
	objs = append(objs, bplistString(strings.Repeat("ha", 500)))
	return bplist(0, objs...)
}

func b64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

// wantRefusal fails unless err is a 400 *Error of kind whose message
// contains phrase: the reason a person reads, not only the kind.
func wantRefusal(t *testing.T, err, kind error, phrase string) {
	t.Helper()
	wantKind(t, err, kind)
	if !strings.Contains(err.Error(), phrase) {
		t.Fatalf("message %q lacks %q", err.Error(), phrase)
	}
}

func TestPushCertRequestRoundTrip(t *testing.T) {
	f := pushFix(t)
	for _, hash := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		t.Run(hash.String(), func(t *testing.T) {
			csr := csrDER(t, f.customerKey, customerSubject())
			req, err := NewPushCertRequest(csr, f.vendor, f.vendorKey, []*x509.Certificate{f.ca.Cert}, hash)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := base64.StdEncoding.DecodeString(string(req))
			if err != nil {
				t.Fatalf("request is not standard base64: %v", err)
			}
			if !bytes.HasPrefix(doc, []byte("<?xml")) {
				t.Fatalf("request does not decode to an XML plist: %.40q", doc)
			}
			var fields map[string]any
			if err := plist.Unmarshal(doc, &fields); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{keyPushCertRequestCSR, keyPushCertChain, keyPushCertSignature} {
				if _, ok := fields[k].(string); !ok {
					t.Fatalf("%s is %T, want a <string>", k, fields[k])
				}
			}
			for _, line := range strings.Split(fields[keyPushCertChain].(string), "\n") {
				if len(line) > 64 {
					t.Fatalf("PEM line of %d characters (the portal wants 64): %q", len(line), line)
				}
			}

			// The same request as given, wrapped at 76 columns, and as the
			// bare XML plist: all three parse alike.
			var wrapped []byte
			for rest := req; len(rest) > 0; {
				n := min(76, len(rest))
				wrapped = append(append(wrapped, rest[:n]...), "\r\n"...)
				rest = rest[n:]
			}
			for name, input := range map[string][]byte{"base64": req, "wrapped": wrapped, "xml": doc} {
				r, err := ParsePushCertRequest(input)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if r.Hash != hash {
					t.Errorf("%s: hash %v, want %v", name, r.Hash, hash)
				}
				if !bytes.Equal(r.CSR.Raw, csr) || !r.VendorCert.Equal(f.vendor) || len(r.Chain) != 1 || !r.Chain[0].Equal(f.ca.Cert) {
					t.Errorf("%s: CSR, vendor or chain differ from what was signed", name)
				}
				if !bytes.Equal(r.Raw, input) {
					t.Errorf("%s: Raw is not the input", name)
				}
				if rsa.VerifyPKCS1v15(&f.vendorKey.PublicKey, hash, digest(hash, csr), r.Signature) != nil {
					t.Errorf("%s: Signature is not the vendor's signature of the CSR", name)
				}
			}

			r, _ := ParsePushCertRequest(req)
			if err := r.VerifyVendor([]*x509.Certificate{f.ca.Cert}, time.Now()); err != nil {
				t.Fatal(err)
			}
			topic := NewTopic()
			cert, err := IssuePushCert(f.ca, r.CSR, topic, 365*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			got, err := TopicFromCert(cert)
			if err != nil || got != topic {
				t.Fatalf("TopicFromCert = %q, %v; want %q", got, err, topic)
			}
			if !f.customerKey.PublicKey.Equal(cert.PublicKey) {
				t.Fatal("the push certificate is not for the CSR's key")
			}
			if cert.Subject.CommonName != "APSP:"+strings.TrimPrefix(topic, "com.apple.mgmt.External.") || len(cert.Subject.Country) != 1 || cert.Subject.Country[0] != "US" {
				t.Fatalf("subject %q is not UID=<topic>, CN=APSP:<uuid>, C=US", cert.Subject)
			}
			if strings.Contains(cert.Subject.String(), "Example Customer") {
				t.Fatalf("subject %q copies the CSR's subject; Apple's does not", cert.Subject)
			}
			if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
				t.Fatalf("EKU %v, want clientAuth", cert.ExtKeyUsage)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(f.ca.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("push certificate does not chain to the push CA: %v", err)
			}
		})
	}
}

func TestParsePushCertRequestBinaryPlist(t *testing.T) {
	fields := requestFields(t)
	for name, input := range map[string][]byte{"binary": binaryRequest(fields), "base64 of binary": b64(binaryRequest(fields))} {
		r, err := ParsePushCertRequest(input)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Hash != crypto.SHA256 || !r.VendorCert.Equal(pushFix(t).vendor) {
			t.Fatalf("%s: hash %v, vendor %q", name, r.Hash, r.VendorCert.Subject)
		}
	}
}

// TestParsePushCertRequestSizeBoundary: white space counts toward the
// 64 KiB limit but is otherwise ignored.
func TestParsePushCertRequestSizeBoundary(t *testing.T) {
	good := encodeRequest(t, requestFields(t))
	padded := append(bytes.Clone(good), bytes.Repeat([]byte("\n"), maxPushCertRequest-len(good))...)
	if _, err := ParsePushCertRequest(padded); err != nil {
		t.Fatalf("a request of exactly %d bytes: %v", len(padded), err)
	}
	_, err := ParsePushCertRequest(append(padded, '\n'))
	wantRefusal(t, err, ErrBadPushRequest, "more than the 64 KiB limit")
}

func TestParsePushCertRequestRefusals(t *testing.T) {
	f := pushFix(t)
	good := requestFields(t)
	goodReq := encodeRequest(t, good)

	// A CSR altered after it was made: one letter of its subject changed.
	// The vendor signs the altered bytes, so only the self-signature fails.
	tampered := bytes.Replace(bytes.Clone(f.csrDER), []byte("Example Customer"), []byte("Examp1e Customer"), 1)
	if bytes.Equal(tampered, f.csrDER) {
		t.Fatal("tampering did not change the CSR")
	}
	withCSR := func(der []byte) map[string]any {
		fields := with(good, keyPushCertRequestCSR, base64.StdEncoding.EncodeToString(der))
		return with(fields, keyPushCertSignature, base64.StdEncoding.EncodeToString(signCSR(t, f.vendorKey, crypto.SHA256, der)))
	}
	ecCSR := csrDER(t, f.ecKey, customerSubject())
	smallCSR := csrDER(t, deviceKey(t, 0), customerSubject())
	anotherCSR := csrDER(t, f.otherKey, customerSubject())
	ecVendor, err := f.ca.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "MDM Vendor: EC"}}, &f.ecKey.PublicKey, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hugeKey := hugeRSAKey(t)
	hugeCSR := unsignedCSR(t, hugeKey.Public())
	hugeVendor, err := f.ca.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "MDM Vendor: Huge"}}, hugeKey.Public(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	deep := []byte(`<?xml version="1.0"?><plist version="1.0">` + strings.Repeat("<array>", 200) + strings.Repeat("</array>", 200) + `</plist>`)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, f.otherKey)})

	for _, tc := range []struct {
		name   string
		input  []byte
		kind   error
		phrase string
	}{
		{"empty", nil, ErrBadPushRequest, "is empty"},
		{"only white space", []byte(" \r\n\t"), ErrBadPushRequest, "is empty"},
		{"huge", bytes.Repeat([]byte("A"), maxPushCertRequest+1), ErrBadPushRequest, "KiB limit"},
		{"neither base64 nor plist", []byte("hello, portal!"), ErrBadPushRequest, "neither base64 nor a property list"},
		{"truncated base64", goodReq[:len(goodReq)-3], ErrBadPushRequest, "neither base64 nor a property list"},
		{"truncated on a base64 boundary", goodReq[:len(goodReq)/2&^3], ErrBadPushRequest, "not a valid property list"},
		{"base64 of text", b64([]byte("not a plist at all")), ErrBadPushRequest, "what it decodes to is not a property list"},
		{"XML nested 200 deep", b64(deep), ErrBadPushRequest, "refused the push certificate request's property list"},
		{"binary plist bomb", laughingPlist(12), ErrBadPushRequest, "refused the push certificate request's property list"},
		{"base64 of a binary plist bomb", b64(laughingPlist(12)), ErrBadPushRequest, "refused the push certificate request's property list"},
		{"broken XML", b64([]byte("<plist><dict><key>x</dict>")), ErrBadPushRequest, "not a valid property list"},
		{"array, not dict", encodeRequest(t, []string{"a"}), ErrBadPushRequest, "is an <array>; it must be a <dict>"},
		{"string, not dict", encodeRequest(t, "PushCertRequestCSR"), ErrBadPushRequest, "is a <string>; it must be a <dict>"},
		{"no CSR key", encodeRequest(t, with(good, keyPushCertRequestCSR, nil)), ErrBadPushRequest, "no PushCertRequestCSR key"},
		{"no chain key", encodeRequest(t, with(good, keyPushCertChain, nil)), ErrBadPushRequest, "no PushCertCertificateChain key"},
		{"no signature key", encodeRequest(t, with(good, keyPushCertSignature, nil)), ErrBadPushRequest, "no PushCertSignature key"},
		{"CSR as data", encodeRequest(t, with(good, keyPushCertRequestCSR, f.csrDER)), ErrBadPushRequest, "PushCertRequestCSR is a <data>; it must be a <string>"},
		{"chain as integer", encodeRequest(t, with(good, keyPushCertChain, 7)), ErrBadPushRequest, "PushCertCertificateChain is an <integer>"},
		{"signature as boolean", encodeRequest(t, with(good, keyPushCertSignature, true)), ErrBadPushRequest, "PushCertSignature is a boolean"},
		{"CSR empty", encodeRequest(t, with(good, keyPushCertRequestCSR, " ")), ErrBadPushRequest, "PushCertRequestCSR is empty"},
		{"CSR not base64", encodeRequest(t, with(good, keyPushCertRequestCSR, "MIIC*%$")), ErrBadPushRequest, "PushCertRequestCSR is not base64"},
		{"CSR as PEM", encodeRequest(t, with(good, keyPushCertRequestCSR, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: f.csrDER})))), ErrBadPushRequest, "PushCertRequestCSR holds PEM"},
		{"CSR not DER", encodeRequest(t, withCSR([]byte("not DER"))), ErrBadPushRequest, "not a DER certificate request"},
		{"CSR tampered", encodeRequest(t, withCSR(tampered)), ErrBadPushRequest, "self-signature does not verify"},
		{"CSR with an EC key", encodeRequest(t, withCSR(ecCSR)), ErrBadPushRequest, "key is ECDSA, not RSA"},
		{"CSR with a 1024-bit key", encodeRequest(t, withCSR(smallCSR)), ErrBadPushRequest, "RSA key of 1024 bits"},
		{"CSR with a huge key", encodeRequest(t, withCSR(hugeCSR)), ErrBadPushRequest, "RSA key of 9000 bits is larger than the 8192"},
		{"chain with a huge key", encodeRequest(t, with(good, keyPushCertChain, certsPEM(f.vendor, hugeVendor))), ErrBadPushRequest, "certificate 2 (\"CN=MDM Vendor: Huge\"): RSA key of 9000 bits"},
		{"chain empty", encodeRequest(t, with(good, keyPushCertChain, "\n")), ErrBadPushRequest, "PushCertCertificateChain is empty"},
		{"chain not PEM", encodeRequest(t, with(good, keyPushCertChain, "MIIFake")), ErrBadPushRequest, "holds no PEM block"},
		{"chain holds a key", encodeRequest(t, with(good, keyPushCertChain, string(keyPEM)+certsPEM(f.vendor))), ErrBadPushRequest, `PEM block 1 is "PRIVATE KEY", not a CERTIFICATE`},
		{"chain certificate corrupt", encodeRequest(t, with(good, keyPushCertChain, certsPEM(f.vendor)+string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 1, 2, 3}})))), ErrBadPushRequest, "PEM block 2 is not a valid certificate"},
		{"vendor key not RSA", encodeRequest(t, with(good, keyPushCertChain, certsPEM(ecVendor))), ErrBadPushRequest, "ECDSA, not RSA"},
		{"signature empty", encodeRequest(t, with(good, keyPushCertSignature, "")), ErrBadPushRequest, "PushCertSignature is empty"},
		{"signature not base64", encodeRequest(t, with(good, keyPushCertSignature, "sig!")), ErrBadPushRequest, "PushCertSignature is not base64"},
		{"signature by another key", encodeRequest(t, with(good, keyPushCertSignature, base64.StdEncoding.EncodeToString(signCSR(t, f.otherKey, crypto.SHA256, f.csrDER)))), ErrPushRequestSignature, "does not verify over the CSR's DER bytes"},
		{"signature by the right key over another CSR", encodeRequest(t, with(good, keyPushCertSignature, base64.StdEncoding.EncodeToString(signCSR(t, f.vendorKey, crypto.SHA256, anotherCSR)))), ErrPushRequestSignature, "the CSR was changed after signing"},
		{"signature with SHA-512", encodeRequest(t, with(good, keyPushCertSignature, base64.StdEncoding.EncodeToString(signCSR(t, f.vendorKey, crypto.SHA512, f.csrDER)))), ErrPushRequestSignature, "tried SHA-256 and SHA-1"},
		{"vendor of the signature is not first", encodeRequest(t, with(good, keyPushCertChain, certsPEM(f.ca.Cert, f.vendor))), ErrPushRequestSignature, `vendor certificate "CN=mock Apple push CA,O=mockmdm"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParsePushCertRequest(tc.input)
			if r != nil {
				t.Fatal("a request came back with the error")
			}
			wantRefusal(t, err, tc.kind, tc.phrase)
			t.Log(err)
		})
	}
}

// unsignedCSR is a CSR for pub with a junk signature: x509 will not sign
// one for a key it does not hold, and the size check comes before the
// signature check.
func unsignedCSR(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	subject, err := asn1.Marshal(customerSubject().ToRDNSequence())
	if err != nil {
		tb.Fatal(err)
	}
	info, err := asn1.Marshal(struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes []asn1.RawValue `asn1:"tag:0"`
	}{0, asn1.RawValue{FullBytes: subject}, asn1.RawValue{FullBytes: spki}, []asn1.RawValue{}})
	if err != nil {
		tb.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: info}, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue}, asn1.BitString{Bytes: make([]byte, 256), BitLength: 2048}})
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// hugeRSAKey is a signer whose public key is a 9000-bit RSA key — checked
// for size before any signature, so its signatures may be junk and no
// 9000-bit key need be generated.
func hugeRSAKey(tb testing.TB) crypto.Signer {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 9000))
	if err != nil {
		tb.Fatal(err)
	}
	n.SetBit(n, 8999, 1).SetBit(n, 0, 1)
	return junkSigner{&rsa.PublicKey{N: n, E: 65537}}
}

type junkSigner struct{ pub *rsa.PublicKey }

func (s junkSigner) Public() crypto.PublicKey { return s.pub }
func (s junkSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return make([]byte, (s.pub.N.BitLen()+7)/8), nil
}

func mustPKCS8(tb testing.TB, key any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func mustParseRequest(t *testing.T, vendor *x509.Certificate, vendorKey *rsa.PrivateKey, chain ...*x509.Certificate) *PushCertRequest {
	t.Helper()
	req, err := NewPushCertRequest(pushFix(t).csrDER, vendor, vendorKey, chain, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParsePushCertRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// intermediateCA makes root → intermediate, both able to sign below them,
// so that a vendor certificate needs the request's chain to be trusted.
func intermediateCA(t *testing.T) (root *x509.Certificate, inter *CA) {
	t.Helper()
	rootKey, interKey := deviceKey(t, 1), deviceKey(t, 2)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Apple Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * vendorValidity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Apple WWDR"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * vendorValidity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	interCert, _ := x509.ParseCertificate(interDER)
	return root, &CA{Cert: interCert, Key: interKey}
}

func TestVerifyVendor(t *testing.T) {
	f := pushFix(t)
	now := time.Now()
	roots := []*x509.Certificate{f.ca.Cert}
	good := mustParseRequest(t, f.vendor, f.vendorKey, f.ca.Cert)
	if err := good.VerifyVendor(roots, now); err != nil {
		t.Fatalf("vendor of the push CA: %v", err)
	}
	// Trusted among several roots, and without the root repeated in the chain.
	if err := mustParseRequest(t, f.vendor, f.vendorKey).VerifyVendor([]*x509.Certificate{otherCA(t).Cert, f.ca.Cert}, now); err != nil {
		t.Fatalf("vendor with no chain, root among two: %v", err)
	}

	root, inter := intermediateCA(t)
	viaInter, viaInterKey, err := NewMockVendorCert(inter, "Chained Vendor", vendorValidity)
	if err != nil {
		t.Fatal(err)
	}
	if err := mustParseRequest(t, viaInter, viaInterKey, inter.Cert, root).VerifyVendor([]*x509.Certificate{root}, now); err != nil {
		t.Fatalf("vendor under an intermediate given in the chain: %v", err)
	}

	for _, tc := range []struct {
		name   string
		req    *PushCertRequest
		roots  []*x509.Certificate
		now    time.Time
		phrase string
	}{
		{"unknown CA", mustParseRequest(t, f.stray, f.strayKey, otherCA(t).Cert), roots, now, `"CN=MDM Vendor: Stray Vendor,O=Stray Vendor,C=US" is not trusted: it was issued by "CN=some other CA,O=mockmdm"`},
		{"unknown CA says so", mustParseRequest(t, f.stray, f.strayKey), roots, now, "unknown authority"},
		{"intermediate missing from the chain", mustParseRequest(t, viaInter, viaInterKey), []*x509.Certificate{root}, now, "unknown authority"},
		{"expired", good, roots, now.Add(vendorValidity + 48*time.Hour), `"CN=MDM Vendor: Example MDM Inc.,O=Example MDM Inc.,C=US" is not trusted: it expired on ` + f.vendor.NotAfter.UTC().Format(time.RFC3339)},
		{"not yet valid", good, roots, now.Add(-24 * time.Hour), "is not valid until " + f.vendor.NotBefore.UTC().Format(time.RFC3339)},
		{"no roots", good, nil, now, "no trusted vendor root is configured"},
		{"no request", nil, roots, now, "has no vendor certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.VerifyVendor(tc.roots, tc.now)
			wantRefusal(t, err, ErrUntrustedVendor, tc.phrase)
			t.Log(err)
		})
	}
}

func TestNewMockVendorCert(t *testing.T) {
	f := pushFix(t)
	c := f.vendor
	if c.Subject.CommonName != "MDM Vendor: Example MDM Inc." {
		t.Fatalf("CN %q", c.Subject.CommonName)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature || c.IsCA {
		t.Fatalf("key usage %v, CA %v; want digitalSignature only", c.KeyUsage, c.IsCA)
	}
	if !f.vendorKey.PublicKey.Equal(c.PublicKey) || c.CheckSignatureFrom(f.ca.Cert) != nil {
		t.Fatal("vendor certificate not for its key or not signed by the push CA")
	}
	if _, _, err := NewMockVendorCert(f.ca, "  ", time.Hour); err == nil {
		t.Fatal("empty vendor name accepted")
	}
}

func TestNewPushCertRequestErrors(t *testing.T) {
	f := pushFix(t)
	chain := []*x509.Certificate{f.ca.Cert}
	csr := f.csrDER
	for _, tc := range []struct {
		name   string
		csr    []byte
		vendor *x509.Certificate
		key    *rsa.PrivateKey
		chain  []*x509.Certificate
		hash   crypto.Hash
		kind   error // nil: a plain error for the caller's mistake
		phrase string
	}{
		{"CSR not DER", []byte("nope"), f.vendor, f.vendorKey, chain, crypto.SHA256, ErrBadCSR, "not a DER-encoded certificate request"},
		{"CSR with a small key", csrDER(t, deviceKey(t, 0), customerSubject()), f.vendor, f.vendorKey, chain, crypto.SHA256, ErrBadCSR, "RSA key of 1024 bits"},
		{"unsupported hash", csr, f.vendor, f.vendorKey, chain, crypto.SHA512, nil, "use crypto.SHA256 or crypto.SHA1"},
		{"key of another vendor", csr, f.vendor, f.strayKey, chain, crypto.SHA256, nil, "does not belong to the vendor certificate"},
		{"no vendor", csr, nil, f.vendorKey, chain, crypto.SHA256, nil, "needs the vendor certificate and its private key"},
		{"nil in the chain", csr, f.vendor, f.vendorKey, []*x509.Certificate{nil}, crypto.SHA256, nil, "certificate 1 of the vendor chain is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := NewPushCertRequest(tc.csr, tc.vendor, tc.key, tc.chain, tc.hash)
			if out != nil || err == nil {
				t.Fatalf("got %d bytes, %v; want an error", len(out), err)
			}
			if tc.kind != nil {
				wantRefusal(t, err, tc.kind, tc.phrase)
			} else if !strings.Contains(err.Error(), tc.phrase) {
				t.Fatalf("error %q lacks %q", err, tc.phrase)
			}
		})
	}
}

func TestIssuePushCertErrors(t *testing.T) {
	f := pushFix(t)
	tamperedDER := bytes.Replace(bytes.Clone(f.csrDER), []byte("Example Customer"), []byte("Examp1e Customer"), 1)
	tampered, err := x509.ParseCertificateRequest(tamperedDER)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := x509.ParseCertificateRequest(csrDER(t, deviceKey(t, 0), customerSubject()))
	for _, tc := range []struct {
		name   string
		csr    *x509.CertificateRequest
		topic  string
		kind   error
		phrase string
	}{
		{"bad topic", f.csr, "com.example.foo", ErrBadTopic, `must start with "com.apple.mgmt."`},
		{"empty topic", f.csr, "", ErrBadTopic, "must start with"},
		{"no CSR", nil, f.topic, ErrBadCSR, "no certificate request given"},
		{"tampered CSR", tampered, f.topic, ErrBadCSR, "self-signature does not verify"},
		{"small key", small, f.topic, ErrBadCSR, "RSA key of 1024 bits; a push certificate needs at least 2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := IssuePushCert(f.ca, tc.csr, tc.topic, time.Hour)
			if c != nil {
				t.Fatal("certificate issued")
			}
			wantRefusal(t, err, tc.kind, tc.phrase)
		})
	}
}

// TestOpenSSLVerifiesPushCertRequestSignature asks OpenSSL whether the
// vendor signature in a request is RSA over the CSR's DER bytes with the
// stated digest — the check Apple's portal makes.
func TestOpenSSLVerifiesPushCertRequestSignature(t *testing.T) {
	bin := openssl(t)
	f := pushFix(t)
	dir := t.TempDir()
	pubDER, err := x509.MarshalPKIXPublicKey(&f.vendorKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "vendor.pub")
	csrPath := filepath.Join(dir, "csr.der")
	sigPath := filepath.Join(dir, "sig.bin")
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	for hash, flag := range map[crypto.Hash]string{crypto.SHA256: "-sha256", crypto.SHA1: "-sha1"} {
		req, err := NewPushCertRequest(f.csrDER, f.vendor, f.vendorKey, nil, hash)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParsePushCertRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(csrPath, r.CSR.Raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sigPath, r.Signature, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := runOpenSSL(t, bin, "dgst", flag, "-verify", pubPath, "-signature", sigPath, csrPath); err != nil || !strings.Contains(out, "Verified OK") {
			t.Fatalf("openssl dgst %s -verify: %v\n%s", flag, err, out)
		}
		if out, err := runOpenSSL(t, bin, "req", "-inform", "DER", "-in", csrPath, "-noout", "-verify"); err != nil {
			t.Fatalf("openssl req -verify of the CSR in the request: %v\n%s", err, out)
		}
	}
}

func FuzzParsePushCertRequest(f *testing.F) {
	fx := pushFix(f)
	fields := requestFields(f)
	sha256Req := encodeRequest(f, fields)
	sha1Req, err := NewPushCertRequest(fx.csrDER, fx.vendor, fx.vendorKey, []*x509.Certificate{fx.ca.Cert}, crypto.SHA1)
	if err != nil {
		f.Fatal(err)
	}
	xmlDoc, _ := base64.StdEncoding.DecodeString(string(sha256Req))
	f.Add(sha256Req)
	f.Add(sha1Req)
	f.Add(xmlDoc)
	f.Add(binaryRequest(fields))
	f.Add(sha256Req[:len(sha256Req)-3])
	f.Add([]byte(""))
	f.Add([]byte("hello"))
	f.Add(laughingPlist(4))
	f.Add(encodeRequest(f, []string{"a"}))
	f.Add(encodeRequest(f, with(fields, keyPushCertSignature, 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParsePushCertRequest(in)
		if err != nil {
			if r != nil {
				t.Fatal("request returned with an error")
			}
			var e *Error
			if !errors.As(err, &e) || e.HTTPStatus() != 400 || e.Kind == nil {
				t.Fatalf("error %v is not a 400 *Error with a kind", err)
			}
			return
		}
		if r.CSR == nil || r.VendorCert == nil {
			t.Fatal("accepted without a CSR or vendor")
		}
		if r.Hash != crypto.SHA256 && r.Hash != crypto.SHA1 {
			t.Fatalf("hash %v", r.Hash)
		}
		if err := rsa.VerifyPKCS1v15(r.VendorCert.PublicKey.(*rsa.PublicKey), r.Hash, digest(r.Hash, r.CSR.Raw), r.Signature); err != nil {
			t.Fatalf("accepted a signature that does not verify: %v", err)
		}
		if pub := r.CSR.PublicKey.(*rsa.PublicKey); pub.N.BitLen() < minPushKeyBits || r.CSR.CheckSignature() != nil {
			t.Fatal("accepted a CSR the portal would refuse")
		}
	})
}
