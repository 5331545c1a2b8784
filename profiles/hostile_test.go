package profiles

import (
	"github.com/mockmdm/mockmdm/internal/plistguard"

	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/micromdm/plist"
	"go.mozilla.org/pkcs7"
)

// bplistFile assembles a binary property list from raw object encodings
// (markers and all), with 1-byte offsets and object references.
func bplistFile(root uint64, objs ...[]byte) []byte {
	b := []byte("bplist00")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = len(b)
		b = append(b, o...)
	}
	table := len(b)
	for _, o := range offs {
		b = append(b, byte(o))
	}
	tr := make([]byte, 32)
	tr[6], tr[7] = 1, 1
	binary.BigEndian.PutUint64(tr[8:], uint64(len(objs)))
	binary.BigEndian.PutUint64(tr[16:], root)
	binary.BigEndian.PutUint64(tr[24:], uint64(table))
	return append(b, tr...)
}

func ascii(s string) []byte { return append([]byte{0x50 | byte(len(s))}, s...) }

// minimalBinaryProfile is {PayloadContent: [], PayloadType: Configuration}.
func minimalBinaryProfile() []byte {
	return bplistFile(0,
		[]byte{0xD2, 1, 2, 3, 4},
		ascii("PayloadContent"), ascii("PayloadType"),
		[]byte{0xA0}, ascii("Configuration"),
	)
}

// laughs is a binary plist of few bytes whose decoded tree is huge: each
// level is an array of 14 references to the next.
func laughs(levels int) []byte {
	var objs [][]byte
	for i := range levels {
		o := []byte{0xAE}
		for range 14 {
			o = append(o, byte(i+1))
		}
		objs = append(objs, o)
	}
	objs = append(objs, append([]byte{0x4F, 0x11, 0x03, 0xE8}, make([]byte, 1000)...))
	return bplistFile(0, objs...)
}

// nestedBinary is n arrays each holding the next.
func nestedBinary(n int) []byte {
	var objs [][]byte
	for i := range n - 1 {
		objs = append(objs, []byte{0xA1, byte(i + 1)})
	}
	objs = append(objs, []byte{0xA0})
	// Offsets and refs must fit one byte: keep n small enough.
	return bplistFile(0, objs...)
}

func xmlPlist(body string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0">` + body + `</plist>`)
}

func hostileInputs(t testing.TB) []struct {
	name   string
	data   []byte
	status int
	want   string
} {
	pk := getPKI(t)
	profile := mustBuild(t, testOptions(nil))
	signed := mustSign(t, profile)
	tampered := bytes.Clone(signed)
	i := bytes.Index(tampered, []byte("Example Org"))
	tampered[i] ^= 0x20

	notPlist, err := Sign([]byte("hello, this is not a property list"), pk.signer, pk.signerKey)
	if err != nil {
		t.Fatal(err)
	}
	enveloped, err := pkcs7.Encrypt(profile, []*x509.Certificate{pk.signer})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := pkcs7.NewSignedData(profile)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(pk.signer, pk.signerKey, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	detached, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	octets, _ := asn1.Marshal(profile)
	dataCMS, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, asn1.RawValue{FullBytes: octets}})
	if err != nil {
		t.Fatal(err)
	}

	return []struct {
		name   string
		data   []byte
		status int
		want   string
	}{
		{"empty", nil, 400, "the profile is empty"},
		{"not a plist", []byte("hello world"), 400, "is not a property list"},
		{"JSON", []byte(`{"PayloadContent": []}`), 400, "is not a property list"},
		{"HTML", []byte("<html><body>login</body></html>"), 400, "not a valid property list"},
		{"truncated XML", profile[:len(profile)/2], 400, "not a valid property list"},
		{"truncated DER", signed[:len(signed)/2], 400, "not a well-formed CMS encoding: an element claims"},
		{"DER garbage", []byte{0x30, 0x03, 0x02, 0x01, 0x01}, 400, "CMS"},
		{"DER with trailing bytes", append(bytes.Clone(signed), 0), 400, "1 bytes after the end of its CMS structure"},
		{"BER nested 2M deep", bytes.Repeat([]byte{0x30, 0x80}, MaxProfileSize/2), 400, "nested more than 64 deep"},
		{"BER empty indefinite chain", bytes.Repeat([]byte{0x30, 0x80, 0, 0}, 1000), 400, "indefinite-length element is empty"},
		{"BER child overruns parent", []byte{0x30, 0x03, 0x30, 0x80, 0x04, 0x01, 0x01, 0x00, 0x00}, 400, "runs past the end"},
		{"BER quadratic end-of-contents scan", append(append([]byte{0x30, 0x80}, bytes.Repeat([]byte{0x04, 0x01, 0x01}, MaxProfileSize/3-2)...), 0, 0), 400, "too many small parts"},
		{"BER unterminated", []byte{0x30, 0x80, 0x04, 0x01, 0x01}, 400, "not terminated"},
		{"DER length with leading zero", []byte{0x30, 0x81, 0x00}, 400, "length is malformed"},
		{"CMS with tampered content", tampered, 400, "changed after it was signed"},
		{"CMS whose content is not a plist", notPlist, 400, "the signed content of the profile is not a property list"},
		{"CMS detached signature", detached, 400, "no attached content"},
		{"CMS EnvelopedData", enveloped, 400, "EnvelopedData"},
		{"CMS Data, not SignedData", dataCMS, 400, "not SignedData"},
		{"PEM armored", []byte("-----BEGIN CMS-----\nMIIB\n-----END CMS-----\n"), 400, "PEM-armored"},
		{"plist array, not dict", xmlPlist("<array><dict/></array>"), 400, "top level is an array; a configuration profile is a dictionary"},
		{"plist string", xmlPlist("<string>x</string>"), 400, "top level is a string"},
		{"no PayloadContent", xmlPlist("<dict><key>PayloadType</key><string>Configuration</string></dict>"), 400, "has no PayloadContent"},
		{"PayloadContent string", xmlPlist("<dict><key>PayloadContent</key><string>x</string></dict>"), 400, "PayloadContent that is a string; it must be an array"},
		{"PayloadContent dict", xmlPlist("<dict><key>PayloadContent</key><dict/></dict>"), 400, "PayloadContent that is a dictionary"},
		{"PayloadContent item integer", xmlPlist("<dict><key>PayloadContent</key><array><dict/><integer>1</integer></array></dict>"), 400, "PayloadContent[1] is an integer"},
		{"bad integer", xmlPlist("<dict><key>PayloadContent</key><array><dict><key>A</key><integer>x</integer></dict></array></dict>"), 400, "not a valid property list"},
		{"bad base64", xmlPlist("<dict><key>PayloadContent</key><array><dict><key>A</key><data>!!</data></dict></array></dict>"), 400, "not a valid property list"},
		{"unknown element", xmlPlist("<dict><key>PayloadContent</key><set/></dict>"), 400, "not a valid property list"},
		{"over 4 MiB", append(xmlPlist("<dict><key>PayloadContent</key><array/></dict>"), make([]byte, MaxProfileSize)...), 413, "4 MiB"},
		{"XML nested 1000 deep", xmlPlist(strings.Repeat("<array>", 1000) + strings.Repeat("</array>", 1000)), 400, "nested more than 100 deep"},
		{"XML nested 500k deep", xmlPlist(strings.Repeat("<array>", 500000)), 400, "nested more than 100 deep"},
		{"binary truncated", minimalBinaryProfile()[:30], 400, "shorter than its header and trailer"},
		{"binary array contains itself", bplistFile(0, []byte{0xA1, 0x00}), 400, "contains itself"},
		{"binary reference past the end", bplistFile(0, []byte{0xA1, 0x01}), 400, "refers to object 1, but there are 1"},
		{"binary data of 2^40 bytes", bplistFile(0, []byte{0x4F, 0x13, 0, 0, 1, 0, 0, 0, 0, 0}), 400, "more than the file holds"},
		{"binary dict of 2^62 entries", bplistFile(0, []byte{0xDF, 0x13, 0x40, 0, 0, 0, 0, 0, 0, 0}), 400, "more than the file holds"},
		{"binary exponential expansion", laughs(7), 400, "would cost more than 32 MiB to decode"},
		{"XML with 100001 elements", xmlPlist("<array>" + strings.Repeat("<true/>", 100000) + "</array>"), 400, "more than 100000 elements"},
		{"binary nested 200 deep", nestedBinary(200), 400, "nested more than 100 deep"},
		{"binary root missing", func() []byte { b := minimalBinaryProfile(); b[len(b)-9] = 9; return b }(), 400, "root object 9 does not exist"},
		{"binary offset table outside", func() []byte { b := minimalBinaryProfile(); b[len(b)-1] = 0xff; return b }(), 400, "offset table lies outside"},
		{"binary ref size 9", func() []byte { b := minimalBinaryProfile(); b[len(b)-25] = 9; return b }(), 400, "object reference size 9"},
		{"binary unknown object type", bplistFile(0, []byte{0x70}), 400, "unknown object type 0x7"},
		{"binary array of UID root", bplistFile(0, []byte{0x80, 0x01}), 400, "not a valid property list"},
		{"binary dict with integer key", bplistFile(0, []byte{0xD1, 1, 1}, []byte{0x10, 0x05}), 400, "not a valid property list"},
	}
}

func TestParseHostileInputs(t *testing.T) {
	for _, c := range hostileInputs(t) {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p.Top)
			}
			if p != nil {
				t.Error("Parse returned a result with its error")
			}
			if got := statusOf(err); got != c.status {
				t.Errorf("status %d, want %d (%v)", got, c.status, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestParseAcceptsEdgeCases(t *testing.T) {
	p, err := Parse(minimalBinaryProfile())
	if err != nil {
		t.Fatalf("minimal binary plist: %v", err)
	}
	if p.Top["PayloadType"] != "Configuration" || len(p.Payloads) != 0 {
		t.Errorf("minimal binary plist decoded as %v", p.Top)
	}
	// An encrypted profile has no PayloadContent; it still decodes.
	enc := xmlPlist("<dict><key>IsEncrypted</key><true/><key>EncryptedPayloadContent</key><data>AAEC</data><key>PayloadType</key><string>Configuration</string></dict>")
	if p, err := Parse(enc); err != nil || len(p.Payloads) != 0 || !bytes.Equal(Payload(p.Top).Data("EncryptedPayloadContent"), []byte{0, 1, 2}) {
		t.Errorf("encrypted profile: %v", err)
	}
	// Leading byte-order mark and white space before the XML.
	bom := append([]byte("\xef\xbb\xbf\n  "), xmlPlist("<dict><key>PayloadContent</key><array/></dict>")...)
	if _, err := Parse(bom); err != nil {
		t.Errorf("XML with BOM: %v", err)
	}
	// Nesting right at the limit is fine.
	if _, err := Parse(nestedBinary(100)); err == nil || !strings.Contains(err.Error(), "top level is an array") {
		t.Errorf("binary nested 100 deep: %v, want it decoded (and refused only for being an array)", err)
	}
	deep := xmlPlist("<dict><key>PayloadContent</key><array><dict><key>x</key>" + strings.Repeat("<array>", 97) + strings.Repeat("</array>", 97) + "</dict></array></dict>")
	if _, err := Parse(deep); err != nil {
		t.Errorf("XML nested 100 deep: %v", err)
	}
	// Shared references below the expansion limit are fine.
	if _, err := Parse(laughs(3)); err == nil || !strings.Contains(err.Error(), "top level is an array") {
		t.Errorf("small shared-reference plist: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	pk := getPKI(f)
	profile := mustBuild(f, testOptions(pk.root))
	f.Add(profile)
	f.Add(mustSign(f, profile))
	f.Add(minimalBinaryProfile())
	f.Add(laughs(2))
	f.Add(nestedBinary(5))
	f.Add(xmlPlist("<dict><key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.mdm</string></dict></array></dict>"))
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x00, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if s := statusOf(err); s < 400 || s > 499 {
				t.Fatalf("Parse error has status %d, want 4xx: %v", s, err)
			}
			if p != nil {
				t.Fatal("Parse returned a result with its error")
			}
			return
		}
		if !p.Signed && !bytes.Equal(p.Content, data) {
			t.Fatal("unsigned Content is not the input")
		}
		for _, pl := range p.Payloads {
			_ = pl.Type() + pl.UUID() + pl.Identifier()
			if m, err := pl.MDM(); err == nil {
				_ = m.Validate()
			} else if statusOf(err) != 400 {
				t.Fatalf("MDM() error status %d: %v", statusOf(err), err)
			}
			if s, err := pl.SCEP(); err == nil {
				_ = s.Validate()
			} else if statusOf(err) != 400 {
				t.Fatalf("SCEP() error status %d: %v", statusOf(err), err)
			}
		}
	})
}

// FuzzCheckPlist holds the guard to its promise: whatever it lets through,
// the plist decoder decodes or rejects without panicking (a panic here is
// not recovered, unlike in Parse).
func FuzzCheckPlist(f *testing.F) {
	f.Add(minimalBinaryProfile())
	f.Add(laughs(3))
	f.Add(nestedBinary(8))
	f.Add(bplistFile(0, []byte{0xA1, 0x00}))
	f.Add(xmlPlist("<dict><key>a</key><array><integer>1</integer></array></dict>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > MaxProfileSize || plistguard.Check(data) != nil {
			return
		}
		var v any
		_ = plist.Unmarshal(data, &v)
	})
}

// FuzzCheckBER checks the BER walk never panics and reports an end inside
// its input.
func FuzzCheckBER(f *testing.F) {
	f.Add(mustSign(f, []byte("<plist/>")))
	f.Add([]byte{0x30, 0x80, 0x04, 0x01, 0x01, 0x00, 0x00})
	f.Add([]byte{0x30, 0x03, 0x30, 0x80, 0x04, 0x01, 0x01, 0x00, 0x00})
	f.Add([]byte{0x3f, 0x81, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		end, err := checkBER(data)
		if err == nil && (end < 2 || end > len(data)) {
			t.Fatalf("checkBER accepted %d bytes ending at %d", len(data), end)
		}
	})
}
