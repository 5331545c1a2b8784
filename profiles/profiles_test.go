package profiles

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"crypto/x509"
	"encoding/pem"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata (enroll.golden.mobileconfig, lint.golden.json) from the current code")

func TestRoundTripBuildSignParse(t *testing.T) {
	pk := getPKI(t)
	profile := mustBuild(t, testOptions(pk.root))
	signed := mustSign(t, profile)

	p, err := Parse(signed)
	if err != nil {
		t.Fatalf("Parse(signed): %v", err)
	}
	if !p.Signed {
		t.Fatal("Signed = false for a CMS profile")
	}
	if !bytes.Equal(p.Raw, signed) {
		t.Error("Raw is not the input")
	}
	if !bytes.Equal(p.Content, profile) {
		t.Errorf("Content differs from the signed profile:\n%s", p.Content)
	}
	if p.Signer == nil || !p.Signer.Equal(pk.signer) {
		t.Fatalf("Signer = %v, want the test signer", p.Signer)
	}
	if len(p.Certificates) != 2 || !slices.ContainsFunc(p.Certificates, pk.inter.Equal) {
		t.Errorf("Certificates: got %d, want signer and intermediate", len(p.Certificates))
	}
	if got := p.Top["PayloadIdentifier"]; got != "com.example.mockmdm.enroll" {
		t.Errorf("Top PayloadIdentifier = %v", got)
	}
	if len(p.Payloads) != 3 {
		t.Fatalf("got %d payloads, want 3", len(p.Payloads))
	}

	now := time.Now()
	if err := p.VerifyChain(pool(pk.root), now); err != nil {
		t.Errorf("VerifyChain against the issuing root: %v", err)
	}
	err = p.VerifyChain(pool(pk.otherRoot), now)
	if err == nil {
		t.Error("VerifyChain against an unrelated root succeeded")
	} else if statusOf(err) != 400 || !strings.Contains(err.Error(), "does not chain to a trusted root") {
		t.Errorf("VerifyChain(other root) = %v (status %d)", err, statusOf(err))
	}
	if err := p.VerifyChain(pool(pk.root), pk.signer.NotAfter.Add(time.Hour)); err == nil {
		t.Error("VerifyChain after the signer expired succeeded")
	}
	if err := p.VerifyChain(pool(pk.root), time.Time{}); err != nil {
		t.Errorf("VerifyChain at zero time (now): %v", err)
	}
	// The intermediate must come from the CMS: without it there is no path.
	p.Certificates = []*x509.Certificate{p.Signer}
	if err := p.VerifyChain(pool(pk.root), now); err == nil {
		t.Error("VerifyChain without the intermediate succeeded")
	}

	// The same profile unsigned: same payloads, nothing to trust.
	u, err := Parse(profile)
	if err != nil {
		t.Fatalf("Parse(unsigned): %v", err)
	}
	if u.Signed || u.Signer != nil || u.Certificates != nil || !bytes.Equal(u.Content, profile) {
		t.Errorf("unsigned: Signed=%v Signer=%v certs=%d", u.Signed, u.Signer, len(u.Certificates))
	}
	if err := u.VerifyChain(pool(pk.root), now); err == nil || statusOf(err) != 400 {
		t.Errorf("VerifyChain on an unsigned profile = %v", err)
	}
}

func TestSignECDSAAndChainDedup(t *testing.T) {
	pk := getPKI(t)
	profile := mustBuild(t, testOptions(nil))
	// The signer passed again in the chain, and a nil, are skipped.
	signed, err := Sign(profile, pk.ecSigner, pk.ecSignerKey, pk.ecSigner, nil, pk.root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Signer.Equal(pk.ecSigner) || len(p.Certificates) != 2 {
		t.Errorf("signer %v, %d certificates; want the EC signer and the root", p.Signer.Subject, len(p.Certificates))
	}
	if err := p.VerifyChain(pool(pk.root), time.Now()); err != nil {
		t.Error(err)
	}
}

func TestSignErrors(t *testing.T) {
	pk := getPKI(t)
	profile := []byte("<plist/>")
	for name, f := range map[string]func() ([]byte, error){
		"empty profile": func() ([]byte, error) { return Sign(nil, pk.signer, pk.signerKey) },
		"nil cert":      func() ([]byte, error) { return Sign(profile, nil, pk.signerKey) },
		"nil key":       func() ([]byte, error) { return Sign(profile, pk.signer, nil) },
		"wrong key":     func() ([]byte, error) { return Sign(profile, pk.signer, pk.ecSignerKey) },
		"not a signer":  func() ([]byte, error) { return Sign(profile, pk.signer, "key") },
	} {
		if out, err := f(); err == nil || out != nil {
			t.Errorf("%s: Sign succeeded", name)
		}
	}
}

func TestTypedViews(t *testing.T) {
	pk := getPKI(t)
	o := testOptions(pk.root)
	o.SCEPCAFingerprint = []byte{1, 2, 3}
	p, err := Parse(mustBuild(t, o))
	if err != nil {
		t.Fatal(err)
	}
	roots := p.PayloadsOfType(PayloadTypeRoot)
	sceps := p.PayloadsOfType(PayloadTypeSCEP)
	mdms := p.PayloadsOfType(PayloadTypeMDM)
	if len(roots) != 1 || len(sceps) != 1 || len(mdms) != 1 {
		t.Fatalf("payload counts root=%d scep=%d mdm=%d", len(roots), len(sceps), len(mdms))
	}
	if got := []string{p.Payloads[0].Type(), p.Payloads[1].Type(), p.Payloads[2].Type()}; !slices.Equal(got, []string{PayloadTypeRoot, PayloadTypeSCEP, PayloadTypeMDM}) {
		t.Errorf("payload order %v: certificates must come before the MDM payload", got)
	}
	if !bytes.Equal(roots[0].Data("PayloadContent"), pk.root.Raw) {
		t.Error("root payload PayloadContent is not the CA's DER")
	}
	if v, ok := roots[0].Int("PayloadVersion"); !ok || v != 1 {
		t.Errorf("root PayloadVersion = %v, %v", v, ok)
	}
	if roots[0].Identifier() != o.Identifier+".root" || sceps[0].Identifier() != o.Identifier+".scep" || mdms[0].Identifier() != o.Identifier+".mdm" {
		t.Error("inner identifiers are not Identifier+.root/.scep/.mdm")
	}

	m, err := mdms[0].MDM()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sceps[0].SCEP()
	if err != nil {
		t.Fatal(err)
	}
	if m.IdentityCertificateUUID != s.UUID || s.UUID != sceps[0].UUID() || s.UUID == "" {
		t.Errorf("IdentityCertificateUUID %q does not name the SCEP payload %q", m.IdentityCertificateUUID, s.UUID)
	}
	wantM := MDMPayload{
		IdentityCertificateUUID: s.UUID, Topic: o.Topic, ServerURL: o.ServerURL, CheckInURL: o.CheckInURL,
		SignMessage: true, CheckOutWhenRemoved: true, AccessRights: AccessAll,
		ServerCapabilities: o.ServerCapabilities,
	}
	if !mdmEqual(*m, wantM) {
		t.Errorf("MDM() = %+v\nwant    %+v", *m, wantM)
	}
	if s.URL != o.SCEPURL || s.Challenge != o.SCEPChallenge || s.Name != o.SCEPName || s.Keysize != 2048 ||
		s.KeyType != "RSA" || s.KeyUsage != 5 || !bytes.Equal(s.CAFingerprint, []byte{1, 2, 3}) ||
		!slices.EqualFunc(s.Subject, o.SCEPSubject, func(a, b [][]string) bool { return slices.EqualFunc(a, b, slices.Equal) }) {
		t.Errorf("SCEP() = %+v", *s)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
	if _, err := sceps[0].MDM(); err == nil || statusOf(err) != 400 {
		t.Errorf("MDM() on a SCEP payload = %v", err)
	}
	if _, err := mdms[0].SCEP(); err == nil || statusOf(err) != 400 {
		t.Errorf("SCEP() on an MDM payload = %v", err)
	}
}

func mdmEqual(a, b MDMPayload) bool { return reflect.DeepEqual(a, b) }

func TestTypedViewErrors(t *testing.T) {
	good := func() Payload {
		return Payload{
			"PayloadType": PayloadTypeMDM, "PayloadIdentifier": "x.mdm", "PayloadUUID": "U",
			"IdentityCertificateUUID": "A", "Topic": "com.apple.mgmt.x", "ServerURL": "https://h",
		}
	}
	if m, err := good().MDM(); err != nil || m.AccessRights != 0 || m.SignMessage {
		t.Fatalf("minimal MDM payload: %+v, %v", m, err)
	}
	mdmCases := []struct {
		name string
		edit func(Payload)
		want string
	}{
		{"AccessRights string", func(p Payload) { p["AccessRights"] = "8191" }, "AccessRights is a string; it must be an integer"},
		{"AccessRights huge", func(p Payload) { p["AccessRights"] = uint64(1 << 63) }, "AccessRights is out of range"},
		{"Topic missing", func(p Payload) { delete(p, "Topic") }, "Topic is required"},
		{"ServerURL data", func(p Payload) { p["ServerURL"] = []byte("https://h") }, "ServerURL is data; it must be a string"},
		{"SignMessage string", func(p Payload) { p["SignMessage"] = "true" }, "SignMessage is a string; it must be a boolean"},
		{"capabilities not strings", func(p Payload) { p["ServerCapabilities"] = []any{"a", int64(1)} }, "ServerCapabilities[1] is an integer"},
		{"capabilities not array", func(p Payload) { p["ServerCapabilities"] = "a" }, "ServerCapabilities is a string; it must be an array"},
	}
	for _, c := range mdmCases {
		p := good()
		c.edit(p)
		_, err := p.MDM()
		if err == nil || statusOf(err) != 400 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: MDM() error = %v, want 400 containing %q", c.name, err, c.want)
		}
	}
	bad := MDMPayload{ServerURL: "http://h", Topic: "com.apple.x", AccessRights: 2, EnrollmentMode: "X", ServerCapabilities: []string{"y"}}
	err := bad.Validate()
	for _, want := range []string{"IdentityCertificateUUID is required", "ServerURL", "Topic", "AccessRights 2", "EnrollmentMode", "ServerCapabilities[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}

	scep := func(content any) Payload {
		p := Payload{"PayloadType": PayloadTypeSCEP, "PayloadUUID": "S"}
		if content != nil {
			p["PayloadContent"] = content
		}
		return p
	}
	s, err := scep(map[string]any{"URL": "http://h/scep"}).SCEP()
	if err != nil || s.Keysize != 1024 || s.KeyType != "RSA" || s.KeyUsage != 0 || s.UUID != "S" {
		t.Errorf("SCEP defaults: %+v, %v", s, err)
	}
	scepCases := []struct {
		name    string
		content any
		want    string
	}{
		{"no content", nil, "PayloadContent is required"},
		{"content is data", []byte("x"), "PayloadContent is data; it must be a dictionary"},
		{"no URL", map[string]any{}, "PayloadContent.URL is required"},
		{"Keysize string", map[string]any{"URL": "u", "Keysize": "2048"}, "PayloadContent.Keysize is a string"},
		{"Key Usage real", map[string]any{"URL": "u", "Key Usage": 5.0}, "PayloadContent.Key Usage is a real"},
		{"Subject flat", map[string]any{"URL": "u", "Subject": []any{"CN", "x"}}, "Subject[0] is a string"},
		{"Subject triple", map[string]any{"URL": "u", "Subject": []any{[]any{[]any{"CN", "x", "y"}}}}, "Subject[0][0] must be an array of exactly two strings"},
		{"CAFingerprint string", map[string]any{"URL": "u", "CAFingerprint": "ab"}, "CAFingerprint is a string; it must be data"},
	}
	for _, c := range scepCases {
		_, err := scep(c.content).SCEP()
		if err == nil || statusOf(err) != 400 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: SCEP() error = %v, want 400 containing %q", c.name, err, c.want)
		}
	}
	badS := SCEPPayload{URL: "ftp://h", Keysize: 512, KeyType: "EC", KeyUsage: 2, Subject: [][][]string{{{"Email", "a"}}}}
	err = badS.Validate()
	for _, want := range []string{"URL", "Keysize 512", "Key Type", "Key Usage 2", "Subject[0][0] name \"Email\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SCEPPayload.Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestPayloadAccessors(t *testing.T) {
	p := Payload{"s": "str", "b": true, "i": int64(-3), "u": uint64(7), "big": uint64(1 << 63), "d": []byte{9}, "n": 1.5}
	if p.String("s") != "str" || p.String("b") != "" || p.String("missing") != "" {
		t.Error("String")
	}
	if !p.Bool("b") || p.Bool("s") {
		t.Error("Bool")
	}
	for key, want := range map[string]int64{"i": -3, "u": 7} {
		if v, ok := p.Int(key); !ok || v != want {
			t.Errorf("Int(%q) = %d, %v", key, v, ok)
		}
	}
	for _, key := range []string{"big", "n", "s", "missing"} {
		if _, ok := p.Int(key); ok {
			t.Errorf("Int(%q) ok", key)
		}
	}
	if !bytes.Equal(p.Data("d"), []byte{9}) || p.Data("s") != nil {
		t.Error("Data")
	}
}

func TestBuildEnrollmentUserEnrollment(t *testing.T) {
	o := testOptions(nil)
	o.EnrollmentMode, o.AssignedManagedAppleID, o.AccessRights = EnrollmentModeBYOD, "ann@example.com", 0
	p, err := Parse(mustBuild(t, o))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.PayloadsOfType(PayloadTypeRoot)) != 0 {
		t.Error("root payload written without a RootCA")
	}
	mp := p.PayloadsOfType(PayloadTypeMDM)[0]
	if _, present := mp["AccessRights"]; present {
		t.Error("AccessRights written for a User Enrollment with AccessRights 0")
	}
	m, err := mp.MDM()
	if err != nil {
		t.Fatal(err)
	}
	if m.EnrollmentMode != "BYOD" || m.AssignedManagedAppleID != "ann@example.com" || m.ManagedAppleID != "" {
		t.Errorf("MDM() = %+v", m)
	}
	// Device enrollments omit the User Enrollment keys entirely.
	d, err := Parse(mustBuild(t, testOptions(nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"EnrollmentMode", "AssignedManagedAppleID", "ManagedAppleID"} {
		if _, present := d.PayloadsOfType(PayloadTypeMDM)[0][key]; present {
			t.Errorf("%s written for a device enrollment", key)
		}
	}
}

func TestBuildEnrollmentDefaults(t *testing.T) {
	o := testOptions(nil)
	o.SCEPKeysize, o.SCEPKeyUsage = 0, 0
	p, err := Parse(mustBuild(t, o))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.PayloadsOfType(PayloadTypeSCEP)[0].SCEP()
	if err != nil {
		t.Fatal(err)
	}
	if s.Keysize != 2048 || s.KeyUsage != 5 {
		t.Errorf("defaults Keysize=%d Key Usage=%d, want 2048 and 5", s.Keysize, s.KeyUsage)
	}
}

func TestBuildEnrollmentErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*EnrollmentOptions)
		want string
	}{
		{"http ServerURL", func(o *EnrollmentOptions) { o.ServerURL = "http://mdm.example.com/mdm" }, "ServerURL \"http://mdm.example.com/mdm\" must use https"},
		{"http CheckInURL", func(o *EnrollmentOptions) { o.CheckInURL = "http://mdm.example.com/checkin" }, "CheckInURL"},
		{"no ServerURL", func(o *EnrollmentOptions) { o.ServerURL = "" }, "ServerURL is required"},
		{"ServerURL without host", func(o *EnrollmentOptions) { o.ServerURL = "https:///mdm" }, "has no host"},
		{"bad topic prefix", func(o *EnrollmentOptions) { o.Topic = "com.apple.mdm.x" }, "Topic \"com.apple.mdm.x\" must begin with \"com.apple.mgmt.\""},
		{"bare topic prefix", func(o *EnrollmentOptions) { o.Topic = "com.apple.mgmt." }, "must begin with"},
		{"no topic", func(o *EnrollmentOptions) { o.Topic = "" }, "Topic is required"},
		{"AccessRights 0", func(o *EnrollmentOptions) { o.AccessRights = 0 }, "AccessRights must not be 0"},
		{"AccessRights 2 without 1", func(o *EnrollmentOptions) { o.AccessRights = 2 | 4 }, "AccessRights 6 has 2 (install/remove profiles) without 1"},
		{"AccessRights 128 without 64", func(o *EnrollmentOptions) { o.AccessRights = 1 | 128 }, "without 64"},
		{"AccessRights too big", func(o *EnrollmentOptions) { o.AccessRights = 8192 }, "AccessRights 8192 is out of range"},
		{"AccessRights negative", func(o *EnrollmentOptions) { o.AccessRights = -1 }, "out of range"},
		{"no identifier", func(o *EnrollmentOptions) { o.Identifier = "" }, "Identifier is required"},
		{"identifier with space", func(o *EnrollmentOptions) { o.Identifier = "com.example enroll" }, "white space"},
		{"no SCEP URL", func(o *EnrollmentOptions) { o.SCEPURL = "" }, "SCEPURL is required"},
		{"ftp SCEP URL", func(o *EnrollmentOptions) { o.SCEPURL = "ftp://h/scep" }, "SCEPURL"},
		{"Keysize 3000", func(o *EnrollmentOptions) { o.SCEPKeysize = 3000 }, "SCEPKeysize 3000"},
		{"Key Usage 2", func(o *EnrollmentOptions) { o.SCEPKeyUsage = 2 }, "SCEPKeyUsage 2"},
		{"subject pair of 3", func(o *EnrollmentOptions) { o.SCEPSubject = [][][]string{{{"CN", "a", "b"}}} }, "Subject[0][0] has 3 strings"},
		{"subject bad name", func(o *EnrollmentOptions) { o.SCEPSubject = [][][]string{{{"commonName", "a"}}} }, "neither one of C, L, ST, O, OU, CN nor a dotted OID"},
		{"subject empty RDN", func(o *EnrollmentOptions) { o.SCEPSubject = [][][]string{{}} }, "Subject[0] is empty"},
		{"bad EnrollmentMode", func(o *EnrollmentOptions) { o.EnrollmentMode = "byod" }, "EnrollmentMode \"byod\" must be BYOD or ADDE"},
		{"unknown capability", func(o *EnrollmentOptions) { o.ServerCapabilities = []string{"com.apple.mdm.unknown"} }, "is not one the schema defines"},
		{"duplicate capability", func(o *EnrollmentOptions) { o.ServerCapabilities = []string{CapabilityToken, CapabilityToken} }, "twice"},
		{"assigned ID without mode", func(o *EnrollmentOptions) { o.AssignedManagedAppleID = "a@b.c" }, "set EnrollmentMode"},
		{"control character", func(o *EnrollmentOptions) { o.DisplayName = "bell\x07" }, "DisplayName contains the control character U+0007"},
		{"invalid UTF-8", func(o *EnrollmentOptions) { o.Organization = "\xff" }, "Organization is not valid UTF-8"},
		{"root without DER", func(o *EnrollmentOptions) { o.RootCA = &x509.Certificate{} }, "RootCA has no DER bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions(nil)
			c.edit(&o)
			out, err := BuildEnrollment(o)
			if err == nil {
				t.Fatalf("BuildEnrollment succeeded:\n%s", out)
			}
			if statusOf(err) != 400 {
				t.Errorf("status %d, want 400 (%v)", statusOf(err), err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
	// Every problem is reported at once.
	o := testOptions(nil)
	o.ServerURL, o.Topic, o.AccessRights = "http://h", "x", 2
	err := func() error { _, err := BuildEnrollment(o); return err }()
	for _, want := range []string{"ServerURL", "Topic", "AccessRights"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("combined error %v does not mention %s", err, want)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

func payloadUUIDs(t *testing.T, profile []byte) []string {
	t.Helper()
	p, err := Parse(profile)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{p.Top["PayloadUUID"].(string)}
	for _, pl := range p.Payloads {
		ids = append(ids, pl.UUID())
	}
	return ids
}

func TestPayloadUUIDs(t *testing.T) {
	o := testOptions(getPKI(t).root)
	random1, random2 := payloadUUIDs(t, mustBuild(t, o)), payloadUUIDs(t, mustBuild(t, o))
	o.UUIDSeed = "device-42"
	seeded1, seeded2 := payloadUUIDs(t, mustBuild(t, o)), payloadUUIDs(t, mustBuild(t, o))
	o.UUIDSeed = "device-43"
	other := payloadUUIDs(t, mustBuild(t, o))

	if !slices.Equal(seeded1, seeded2) {
		t.Errorf("same seed gave different UUIDs: %v vs %v", seeded1, seeded2)
	}
	for i := range seeded1 {
		if seeded1[i] == other[i] || random1[i] == random2[i] {
			t.Errorf("UUID %d repeats across different seeds or random builds", i)
		}
	}
	for _, ids := range [][]string{random1, seeded1, other} {
		if len(ids) != 4 {
			t.Fatalf("got %d UUIDs, want 4", len(ids))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !uuidRE.MatchString(id) {
				t.Errorf("UUID %q is not an upper-case UUID", id)
			}
			if seen[id] {
				t.Errorf("UUID %q used twice in one profile", id)
			}
			seen[id] = true
		}
	}
	if seeded1[0][14] != '5' || random1[0][14] != '4' {
		t.Errorf("UUID versions: seeded %s (want v5), random %s (want v4)", seeded1[0], random1[0])
	}
}

func TestGoldenEnrollment(t *testing.T) {
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "golden-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("testdata/golden-root.pem holds no PEM block")
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(root)
	o.UUIDSeed = "golden"
	o.SCEPCAFingerprint = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	got := mustBuild(t, o)

	path := filepath.Join("testdata", "enroll.golden.mobileconfig")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenEnrollment -update to create it)", err)
	}
	if _, err := Parse(want); err != nil {
		t.Errorf("the golden profile does not parse: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("BuildEnrollment output differs from %s (if intended, rerun with -update):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines where a and b differ.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)) && len(out) < 20; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y))
		}
	}
	return strings.Join(out, "\n")
}
