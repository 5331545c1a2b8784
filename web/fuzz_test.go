package web

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzShowBody: whatever a device sent, showing it never panics, stays
// bounded and gives valid UTF-8 for the template to escape.
func FuzzShowBody(f *testing.F) {
	for _, s := range []string{
		"",
		`<?xml version="1.0"?><plist version="1.0"><dict><key>A</key><data>AAEC</data><key>D</key><date>2025-01-01T00:00:00Z</date></dict></plist>`,
		`<plist><array><real>NaN</real><integer>-1</integer><true/></array></plist>`,
		"<plist>" + strings.Repeat("<dict><key>k</key>", 200),
		"bplist00\x00\x01",
		"\xff\xfe",
		"</pre><script>alert(1)</script>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := showBody(b)
		if len(b) > 0 && out.Kind == "" {
			t.Fatal("a non-empty body has no kind")
		}
		if !utf8.ValidString(out.Text) {
			t.Fatal("shown text is not UTF-8")
		}
		if out.Kind != "plist" && len(out.Text) > maxShownBody+64<<10 {
			t.Fatalf("shows %d bytes of %d", len(out.Text), len(b))
		}
	})
}

// FuzzExplainSignature: any Mdm-Signature header is explained without a
// panic, and one that is not a valid signature never "verifies".
func FuzzExplainSignature(f *testing.F) {
	f.Add("", []byte("<plist/>"))
	f.Add("%%%", []byte{})
	f.Add(base64.StdEncoding.EncodeToString([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}), []byte("x"))
	f.Add(base64.StdEncoding.EncodeToString([]byte{0x30, 0x03, 0x02, 0x01, 0x01}), []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		s := explainSignature(header, body)
		if s.Verified && (s.Problem != "" || !s.Present) {
			t.Fatalf("inconsistent: %+v", s)
		}
	})
}
