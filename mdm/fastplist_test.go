package mdm

import (
	"reflect"
	"strings"
	"testing"

	"github.com/micromdm/plist"
)

const appleIdle = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Status</key>
	<string>Idle</string>
	<key>UDID</key>
	<string>0000FE00-5FADE0B8A5AB0C2E</string>
</dict>
</plist>
`

// TestFastCommandResultsTakesDeviceBodies: the bodies devices send most
// take the fast path — Apple's own layout and what our plist encoder
// writes — and give what the full decoder gives.
func TestFastCommandResultsTakesDeviceBodies(t *testing.T) {
	encoded, err := plist.MarshalIndent(&CommandResults{
		Enrollment: Enrollment{EnrollmentID: "E1", EnrollmentUserID: "U1"},
		Status:     StatusAcknowledged, CommandUUID: "2f0c-11", RequestType: "DeviceLock",
	}, "\t")
	if err != nil {
		t.Fatal(err)
	}
	withData, err := plist.MarshalIndent(map[string]any{
		"Status": StatusAcknowledged, "CommandUUID": "c1", "UDID": "u1",
		"SecurityInfo": map[string]any{
			"HardwareEncryptionCaps": 3, "PasscodePresent": false, "PasscodeCompliant": true,
			"ManagementStatus": map[string]any{"EnrolledViaDEP": false, "UserApprovedEnrollment": true},
			"Empty":            map[string]any{}, "None": []any{},
		},
		"QueryResponses": map[string]any{"BatteryLevel": 0.85, "DeviceCapacity": 64.0, "Offset": -3, "Names": []any{"a", "b", []any{"c"}}},
	}, "\t")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"Apple Idle":          appleIdle,
		"encoder output":      string(encoded),
		"with response data":  string(withData),
		"unknown string key":  strings.Replace(appleIdle, "<key>UDID</key>", "<key>udid</key>", 1),
		"empty element forms": `<plist version="1.0"><dict><key>Status</key><string>Idle</string><key>X</key><dict/><key>Y</key><array/><key>Z</key><true/></dict></plist>`,
		"no prolog, spaces":   `<plist version="1.0"> <dict> <key>Status</key> <string>NotNow</string> <key>CommandUUID</key><string>x y</string> </dict> </plist>`,
	} {
		fast, ok := fastCommandResults([]byte(body))
		if !ok {
			t.Errorf("%s: fast path refused\n%s", name, body)
			continue
		}
		var slow CommandResults
		if err := plist.Unmarshal([]byte(body), &slow); err != nil {
			t.Fatalf("%s: full decoder: %v", name, err)
		}
		if !reflect.DeepEqual(*fast, slow) {
			t.Errorf("%s: fast %+v, full %+v", name, *fast, slow)
		}
	}
}

// TestFastCommandResultsFallsBack lists shapes the fast path must leave to
// the full decoder.
func TestFastCommandResultsFallsBack(t *testing.T) {
	swap := func(old, new string) string { return strings.Replace(appleIdle, old, new, 1) }
	for name, body := range map[string]string{
		"entity":            swap("Idle</string>", "Id&amp;le</string>"),
		"CDATA":             swap("<string>Idle</string>", "<string><![CDATA[Idle]]></string>"),
		"comment":           swap("<dict>", "<dict><!-- c -->"),
		"ErrorChain":        swap("<key>UDID</key>", "<key>ErrorChain</key><array/><key>UDID</key>"),
		"data value":        swap("<key>UDID</key>", "<key>D</key><data>AAAA</data><key>UDID</key>"),
		"date value":        swap("<key>UDID</key>", "<key>D</key><date>2026-01-01T00:00:00Z</date><key>UDID</key>"),
		"exponent real":     swap("<key>UDID</key>", "<key>R</key><real>1e3</real><key>UDID</key>"),
		"hex integer":       swap("<key>UDID</key>", "<key>I</key><integer>0x10</integer><key>UDID</key>"),
		"spaced integer":    swap("<key>UDID</key>", "<key>I</key><integer> 1</integer><key>UDID</key>"),
		"huge integer":      swap("<key>UDID</key>", "<key>I</key><integer>1234567890123456789012</integer><key>UDID</key>"),
		"deep nesting":      swap("<key>UDID</key>", "<key>N</key>"+strings.Repeat("<array>", 20)+strings.Repeat("</array>", 20)+"<key>UDID</key>"),
		"key without value": swap("<key>UDID</key>", "<key>K</key><key>UDID</key>"),
		"unknown element":   swap("<key>UDID</key>", "<key>K</key><thing/><key>UDID</key>"),
		"unclosed array":    swap("<key>UDID</key>", "<key>K</key><array><true/><key>UDID</key>"),
		"repeated key":      swap("<key>UDID</key>", "<key>Status</key>"),
		"array value":       swap("<string>Idle</string>", "<array/>"),
		"empty string tag":  swap("<string>Idle</string>", "<string/>"),
		"carriage return":   swap("\n<dict>", "\r\n<dict>"),
		"non-ASCII":         swap("Idle", "Idlé"),
		"other encoding":    swap("UTF-8", "ISO-8859-1"),
		"trailing garbage":  appleIdle + "x",
		"binary":            "bplist00",
		"nested dict":       swap("<string>Idle</string>", "<dict></dict>"),
		"mismatched close":  swap("Idle</string>", "Idle</strong>"),
		"missing dict end":  swap("</dict>", ""),
		"attribute on dict": swap("<dict>", `<dict a="b">`),
	} {
		if r, ok := fastCommandResults([]byte(body)); ok {
			t.Errorf("%s: fast path accepted %+v", name, r)
		}
	}
}

// FuzzFastCommandResults holds the fast path to the full decoder: whatever
// it accepts, the full decoder accepts and decodes to the same value.
func FuzzFastCommandResults(f *testing.F) {
	f.Add([]byte(appleIdle))
	f.Add([]byte(`<plist version="1.0"><dict><key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>u</string></dict></plist>`))
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict></dict></plist>`))
	f.Add([]byte(`<plist version="1.0"><dict><key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>u</string><key>SecurityInfo</key><dict><key>A</key><integer>-3</integer><key>B</key><real>0.5</real><key>C</key><array><true/><false/><dict/><array/><string>s</string></array></dict></dict></plist>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := fastCommandResults(body)
		if !ok {
			return
		}
		var slow CommandResults
		if err := plist.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path accepted what the full decoder refuses (%v):\n%q", err, body)
		}
		if !reflect.DeepEqual(*fast, slow) {
			t.Fatalf("fast %+v != full %+v for\n%q", *fast, slow, body)
		}
	})
}

func BenchmarkDecodeCommandResults(b *testing.B) {
	body := []byte(appleIdle)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeCommandResults(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r CommandResults
			if err := unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
