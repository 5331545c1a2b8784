package plistguard

import (
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
