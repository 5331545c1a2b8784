package plistguard

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	ok := []string{
		`<?xml version="1.0"?><plist version="1.0"><dict><key>a</key><string>b</string></dict></plist>`,
		`<plist version="1.0"><array><array><true/></array></array></plist>`,
	}
	for _, s := range ok {
		if err := Check([]byte(s)); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := map[string]string{
		"deep XML":     `<plist version="1.0">` + strings.Repeat("<array>", 200) + `</plist>`,
		"many XML":     `<plist version="1.0"><array>` + strings.Repeat("<true/>", 100_001) + `</array></plist>`,
		"binary short": "bplist00\x00",
	}
	for name, s := range bad {
		if err := Check([]byte(s)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// shapeOf runs a shape check and reports the counts it refused at, by
// telling the two refusals apart.
func refusal(err error) string {
	switch {
	case err == nil:
		return ""
	case err == errPlistTooDeep:
		return "depth"
	default:
		return "elements"
	}
}

// TestScanXMLShape: the byte scanner refuses what the tokenizer refuses on
// nesting and element count, and takes a real profile.
func TestScanXMLShape(t *testing.T) {
	deep := strings.Repeat("<array>", MaxDepth+2) + strings.Repeat("</array>", MaxDepth+2)
	many := "<plist><array>" + strings.Repeat("<true/>", MaxElements+1) + "</array></plist>"
	for name, tc := range map[string]struct {
		doc  string
		want string
	}{
		"deep":                            {deep, "depth"},
		"deep with prefixes":              {strings.Repeat("<x:array>", MaxDepth+2), "depth"},
		"deep self-closing at the bottom": {strings.Repeat("<dict>", MaxDepth+1) + "<true/>", "depth"},
		"many":                            {many, "elements"},
		"comment hides tags":              {"<plist><!--" + strings.Repeat("<array>", MaxDepth+2) + "--><true/></plist>", ""},
		"CDATA hides tags":                {"<plist><string><![CDATA[" + strings.Repeat("<array>", MaxDepth+2) + "]]></string></plist>", ""},
		"quoted > in an attribute":        {`<plist version="1>0"><dict></dict></plist>`, ""},
		"a profile":                       {`<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"><plist version="1.0"><dict><key>a</key><array><string>x</string><true/></array></dict></plist>`, ""},
	} {
		if got := refusal(scanXMLShape([]byte(tc.doc))); got != tc.want {
			t.Errorf("%s: scan refused %q, want %q", name, got, tc.want)
		}
		if tc.want != "" && refusal(checkXMLShape([]byte(tc.doc))) == "" && name != "deep with prefixes" {
			t.Errorf("%s: the tokenizer takes it (the table is wrong)", name)
		}
	}
}

// FuzzScanNeverCountsLess holds the byte scanner to the tokenizer: whatever
// the tokenizer refuses for nesting or size, the scanner refuses too.
func FuzzScanNeverCountsLess(f *testing.F) {
	f.Add([]byte(`<plist version="1.0"><dict><key>a</key><array><true/></array></dict></plist>`))
	f.Add([]byte(strings.Repeat("<a>", 30) + "<!-- <b> -->" + "<![CDATA[<c>]]>" + `<d e="/>">`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		// Scale the input up so the limits matter: repeat it to pass MaxDepth.
		doc := bytes.Repeat(data, MaxDepth/4+2)
		if refusal(checkXMLShape(doc)) != "" && refusal(scanXMLShape(doc)) == "" {
			t.Fatalf("the tokenizer refuses %q but the scanner takes it", doc)
		}
	})
}

func BenchmarkXMLShape(b *testing.B) {
	doc := []byte(`<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"><plist version="1.0"><dict><key>CommandUUID</key><string>0001</string><key>QueryResponses</key><dict>` +
		strings.Repeat(`<key>BatteryLevel</key><real>0.5</real><key>DeviceName</key><string>QA iPad</string>`, 12) + `</dict><key>Status</key><string>Acknowledged</string><key>UDID</key><string>x</string></dict></plist>`)
	b.Run("tokenizer", func(b *testing.B) {
		for b.Loop() {
			_ = checkXMLShape(doc)
		}
	})
	b.Run("scanner", func(b *testing.B) {
		for b.Loop() {
			_ = scanXMLShape(doc)
		}
	})
}

// checkXMLShape is the tokenizer count scanXMLShape replaced, kept as the
// oracle it must never count less than.
// It stops quietly at the first syntax error: the decoder, which is
// stricter, fails there or earlier, so it never gets past what was checked.
func checkXMLShape(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth, elements := 0, 0
	for {
		tok, err := d.RawToken()
		if err != nil {
			return nil
		}
		switch tok.(type) {
		case xml.StartElement:
			// <plist> and the value inside it count as one level each.
			if depth++; depth > MaxDepth+1 {
				return errPlistTooDeep
			}
			if elements++; elements > MaxElements {
				return fmt.Errorf("the XML property list has more than %d elements", MaxElements)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// TestDeclarationQuotesHideNoTags: a quote inside a declaration once made
// the scanner read the tags after it as an attribute value, so nesting the
// tokenizer refuses went through (found by FuzzScanNeverCountsLess).
func TestDeclarationQuotesHideNoTags(t *testing.T) {
	deep := strings.Repeat(`<!0"'<">x`+strings.Repeat("<a>", 25), 8)
	if err := Check([]byte(deep)); err == nil {
		t.Fatal("200-deep nesting behind quoted declarations passed the guard")
	}
	for _, ok := range []string{
		`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"><plist version="1.0"><dict/></plist>`,
		`<!DOCTYPE x [ <!ENTITY a "<b>"> <!-- c > --> ]><x/>`,
		`<?xml version="1.0"?><?pi "<a ?><x/>`,
	} {
		if err := Check([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
