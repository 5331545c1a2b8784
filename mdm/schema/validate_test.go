package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func keysOf(t testing.TB, kind, name string, response bool) []Key {
	t.Helper()
	s, ok := Lookup(kind, name)
	if !ok {
		t.Fatalf("%s %s not found", kind, name)
	}
	if response {
		return s.ResponseKeys
	}
	return s.PayloadKeys
}

// validMDM is a com.apple.mdm payload as mockmdm would build it.
func validMDM() map[string]any {
	return map[string]any{
		"PayloadType":             "com.apple.mdm",
		"PayloadVersion":          int64(1),
		"PayloadIdentifier":       "com.example.mdm",
		"PayloadUUID":             "2F1A5B4E-9C1D-4A53-9B8E-1C2D3E4F5A6B",
		"PayloadDisplayName":      "MDM",
		"IdentityCertificateUUID": "7A9E5C1B-2D3F-4E5A-8B6C-9D0E1F2A3B4C",
		"Topic":                   "com.apple.mgmt.External.5b1e5d1f",
		"ServerURL":               "https://mdm.example.com/mdm",
		"CheckInURL":              "https://mdm.example.com/checkin",
		"SignMessage":             true,
		"AccessRights":            uint64(8191), // the XML plist decoder's unsigned integer
		"ServerCapabilities":      []any{"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"},
		"CheckOutWhenRemoved":     true,
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

type want struct{ path, rule string }

func check(t *testing.T, got []Problem, wants []want) {
	t.Helper()
	var g []want
	for _, p := range got {
		g = append(g, want{p.Path, p.Rule})
		if p.Message == "" {
			t.Errorf("problem %s/%s without a message", p.Path, p.Rule)
		}
	}
	if !reflect.DeepEqual(g, wants) && !(len(g) == 0 && len(wants) == 0) {
		t.Errorf("problems:\n got  %v\n want %v\n (%v)", g, wants, got)
	}
}

func TestValidateDict(t *testing.T) {
	mdmKeys := append(append([]Key(nil), CommonPayloadKeys()...), keysOf(t, KindProfile, "com.apple.mdm", false)...)
	wifi := keysOf(t, KindProfile, "com.apple.wifi.managed", false)
	vpn := keysOf(t, KindProfile, "com.apple.vpn.managed", false)
	scep := keysOf(t, KindProfile, "com.apple.security.scep", false)
	ua := keysOf(t, KindProfile, "com.apple.universalaccess", false)
	sysext := keysOf(t, KindProfile, "com.apple.system-extension-policy", false)
	devinfo := keysOf(t, KindCommand, "DeviceInformation", false)
	settings := keysOf(t, KindCommand, "Settings", false)
	rule := keysOf(t, KindProfile, "com.apple.systempolicy.rule", false)
	top := keysOf(t, KindProfile, "Configuration", false)

	for _, c := range []struct {
		name string
		keys []Key
		dict map[string]any
		path string
		want []want
	}{
		{"valid mdm payload", mdmKeys, validMDM(), "", nil},
		{"int64 and plain int accepted as <integer>", mdmKeys, with(validMDM(), "AccessRights", 8191, "PayloadVersion", int64(1)), "", nil},
		{"unknown key, with case hint", mdmKeys, with(validMDM(), "topic", "x"), "", []want{{"topic", RuleUnknownKey}}},
		{"wrong type", mdmKeys, with(validMDM(), "AccessRights", "8191"), "", []want{{"AccessRights", RuleWrongType}}},
		{"bool where string", mdmKeys, with(validMDM(), "Topic", true), "", []want{{"Topic", RuleWrongType}}},
		{"nil value", mdmKeys, with(validMDM(), "CheckInURL", []any(nil)), "", []want{{"CheckInURL", RuleWrongType}}},
		{"missing required", mdmKeys, with(validMDM(), "ServerURL", nil, "Topic", nil), "",
			[]want{{"Topic", RuleMissingRequired}, {"ServerURL", RuleMissingRequired}}},
		{"not in rangelist", mdmKeys, with(validMDM(), "EnrollmentMode", "BYOX"), "", []want{{"EnrollmentMode", RuleNotInRangeList}}},
		{"array element not in rangelist", mdmKeys,
			with(validMDM(), "ServerCapabilities", []any{"com.apple.mdm.token", "com.apple.mdm.teleport"}), "",
			[]want{{"ServerCapabilities[1]", RuleNotInRangeList}}},
		{"array element wrong type", mdmKeys, with(validMDM(), "ServerCapabilities", []any{int64(1)}), "",
			[]want{{"ServerCapabilities[0]", RuleWrongType}}},
		{"nested path prefix", mdmKeys, with(validMDM(), "Topic", int64(3)), "PayloadContent[2]",
			[]want{{"PayloadContent[2].Topic", RuleWrongType}}},
		{"out of range", wifi, map[string]any{"SSID_STR": "x", "ProxyServerPort": int64(70000)}, "",
			[]want{{"ProxyServerPort", RuleOutOfRange}}},
		{"out of range, huge unsigned", wifi, map[string]any{"SSID_STR": "x", "ProxyServerPort": uint64(1 << 63)}, "",
			[]want{{"ProxyServerPort", RuleOutOfRange}}},
		{"in range", wifi, map[string]any{"SSID_STR": "x", "ProxyServerPort": int64(8080), "EncryptionType": "WPA"}, "", nil},
		{"format", wifi, map[string]any{"SSID_STR": "x", "MCCAndMNCs": []any{"310410", "31041"}}, "",
			[]want{{"MCCAndMNCs[1]", RuleFormat}}},
		{"repetition", vpn, map[string]any{"UserDefinedName": "v", "VPNType": "L2TP", "PPP": map[string]any{"AuthProtocol": []any{"EAP", "EAP"}}}, "",
			[]want{{"PPP.AuthProtocol", RuleRepetition}}},
		{"nested dictionary rangelist", vpn, map[string]any{"UserDefinedName": "v", "VPNType": "L2TP", "PPP": map[string]any{"TokenCard": int64(2)}}, "",
			[]want{{"PPP.TokenCard", RuleNotInRangeList}}},
		{"key with a space is quoted", scep, map[string]any{"PayloadContent": map[string]any{"URL": "https://ca", "Key Type": int64(5)}}, "",
			[]want{{`PayloadContent["Key Type"]`, RuleWrongType}}},
		{"nested missing required", scep, map[string]any{"PayloadContent": map[string]any{"Key Type": "RSA"}}, "",
			[]want{{"PayloadContent.URL", RuleMissingRequired}}},
		{"integer accepted as <real>", ua, map[string]any{"contrast": int64(1)}, "", nil},
		{"float32 accepted as <real>", ua, map[string]any{"contrast": float32(0.5)}, "", nil},
		{"real out of range", ua, map[string]any{"contrast": 1.5}, "", []want{{"contrast", RuleOutOfRange}}},
		{"real where integer", wifi, map[string]any{"SSID_STR": "x", "ProxyServerPort": 80.0}, "", []want{{"ProxyServerPort", RuleWrongType}}},
		{"ANY keys", sysext, map[string]any{"AllowedSystemExtensionTypes": map[string]any{"TEAMID1234": []any{"DriverExtension"}, "OTHER": []any{}}}, "", nil},
		{"ANY value checked", sysext, map[string]any{"AllowedSystemExtensionTypes": map[string]any{"TEAMID1234": "DriverExtension"}}, "",
			[]want{{"AllowedSystemExtensionTypes.TEAMID1234", RuleWrongType}}},
		{"query names", devinfo, map[string]any{"Queries": []any{"UDID", "SerialNumber", "WarpDriveStatus"}}, "",
			[]want{{"Queries[2]", RuleNotInRangeList}}},
		{"queries wrong container", devinfo, map[string]any{"Queries": "UDID"}, "", []want{{"Queries", RuleWrongType}}},
		{"settings alternatives", settings, map[string]any{"Settings": []any{
			map[string]any{"Item": "DeviceName", "DeviceName": "iPad"},
			map[string]any{"Item": "Wallpaper", "Image": []byte{0x89, 'P', 'N', 'G'}, "Where": int64(4)},
			map[string]any{"Item": "DataRoaming", "Enabled": true},
		}}, "", []want{{"Settings[1].Where", RuleNotInRangeList}}},
		{"date", rule, map[string]any{"Expiration": time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, "", nil},
		{"date as string", rule, map[string]any{"Expiration": "2030-01-01T00:00:00Z"}, "", []want{{"Expiration", RuleWrongType}}},
		{"data", mdmKeys, with(validMDM(), "IdentityCertificateUUID", []byte("x")), "", []want{{"IdentityCertificateUUID", RuleWrongType}}},
		{"top-level PayloadContent items are open dictionaries", top, map[string]any{
			"PayloadType": "Configuration", "PayloadVersion": int64(1), "PayloadIdentifier": "p", "PayloadUUID": "u",
			"PayloadContent": []any{map[string]any{"Anything": true}, "not a dict"},
		}, "", []want{{"PayloadContent[1]", RuleWrongType}}},
		{"hand-built Go types", mdmKeys, with(validMDM(), "ServerCapabilities", []string{"com.apple.mdm.token"}), "", nil},
		{"hand-built Go types, bad element", mdmKeys, with(validMDM(), "ServerCapabilities", []string{"nope"}), "",
			[]want{{"ServerCapabilities[0]", RuleNotInRangeList}}},
		{"not a plist type", mdmKeys, with(validMDM(), "Topic", struct{}{}), "", []want{{"Topic", RuleWrongType}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			check(t, ValidateDict(c.keys, c.dict, c.path), c.want)
		})
	}
}

func TestValidateMessages(t *testing.T) {
	mdmKeys := keysOf(t, KindProfile, "com.apple.mdm", false)
	ps := ValidateDict(mdmKeys, map[string]any{"topic": "x", "AccessRights": "all", "EnrollmentMode": strings.Repeat("B", 10000)}, "")
	var msgs []string
	for _, p := range ps {
		msgs = append(msgs, p.String())
		if len(p.Message) > 1000 {
			t.Errorf("message of %d bytes: hostile values must be cut short", len(p.Message))
		}
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		`did you mean "Topic"?`,
		`AccessRights: expected <integer>, got <string> "all" (wrong-type)`,
		`required key "ServerURL" is missing`,
		`is not one of ["BYOD", "ADDE"]`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("messages lack %q:\n%s", want, all)
		}
	}
	// Stable order.
	again := ValidateDict(mdmKeys, map[string]any{"topic": "x", "AccessRights": "all", "EnrollmentMode": strings.Repeat("B", 10000)}, "")
	if !reflect.DeepEqual(ps, again) {
		t.Error("problem order is not stable")
	}
}

func TestValidateTooDeep(t *testing.T) {
	keys := keysOf(t, KindProfile, "com.apple.homescreenlayout", false)
	// Folders inside pages inside folders: the schema recurses, so only the
	// depth bound stops a hostile value.
	folder := map[string]any{"Type": "App", "BundleID": "com.example.app"}
	for i := 0; i < 60; i++ {
		folder = map[string]any{"Type": "Folder", "DisplayName": fmt.Sprint(i), "Pages": []any{[]any{folder}}}
	}
	ps := ValidateDict(keys, map[string]any{"Pages": []any{[]any{folder}}}, "")
	if len(ps) != 1 || ps[0].Rule != RuleTooDeep {
		t.Fatalf("got %v, want one too-deep problem", ps)
	}
	if !strings.HasPrefix(ps[0].Path, "Pages[0][0].Pages[0][0].Pages[0][0]") {
		t.Errorf("path %q", ps[0].Path)
	}

	// Modest nesting is checked all the way down.
	folder = map[string]any{"Type": "Applet"}
	for i := 0; i < 3; i++ {
		folder = map[string]any{"Type": "Folder", "Pages": []any{[]any{folder}}}
	}
	ps = ValidateDict(keys, map[string]any{"Pages": []any{[]any{folder}}}, "")
	check(t, ps, []want{{"Pages[0][0].Pages[0][0].Pages[0][0].Pages[0][0].Type", RuleNotInRangeList}})
}

func TestValidateValue(t *testing.T) {
	s, _ := Command("DeviceInformation")
	q := mustKey(t, s.PayloadKeys, "Queries")
	check(t, ValidateValue(q, []any{"UDID", 7}, "Command.Queries"), []want{{"Command.Queries[1]", RuleWrongType}})
	var anyKey = Key{Name: "x", Type: "<any>"}
	check(t, ValidateValue(&anyKey, map[string]any{"a": []any{nil}}, ""), nil)
}

func TestDefaultsTyped(t *testing.T) {
	// Defaults and rangelists come back as the types a plist decoder yields,
	// so they compare with decoded values directly.
	mc, _ := Profile("com.apple.mcxMenuExtras")
	var f *Key
	for i := range mc.PayloadKeys {
		if mc.PayloadKeys[i].Name == "maxWaitSeconds" {
			f = &mc.PayloadKeys[i]
		}
	}
	if f == nil {
		t.Skip("maxWaitSeconds not in this release")
	}
	if _, ok := f.Default.(float64); !ok {
		t.Errorf("<real> default is %T", f.Default)
	}
	wifi, _ := Profile("com.apple.wifi.managed")
	k := mustKey(t, wifi.PayloadKeys, "ProxyServerPort")
	if k.Range == nil || k.Range.Min == nil || *k.Range.Min != 0 || *k.Range.Max != 65535 {
		t.Errorf("ProxyServerPort range %+v", k.Range)
	}
}

// FuzzValidateDict feeds arbitrary JSON-shaped values (the shapes a decoded
// plist takes) through the validator: it must never panic, and every problem
// must name a rule and a message.
func FuzzValidateDict(f *testing.F) {
	f.Add(`{"Topic":"x","AccessRights":8191,"ServerCapabilities":["com.apple.mdm.token"]}`)
	f.Add(`{"PayloadContent":{"Key Type":5,"Subject":[[["CN","x"]]]}}`)
	f.Add(`{"Settings":[{"Item":"Wallpaper","Where":9},{"Item":7}]}`)
	f.Add(`{"Pages":[[{"Type":"Folder","Pages":[[{"Type":"App"}]]}]]}`)
	f.Add(`{"Queries":["UDID",null,{"a":1}]}`)
	schemas := []*Schema{}
	for _, n := range []struct{ kind, name string }{
		{KindProfile, "com.apple.mdm"}, {KindProfile, "com.apple.security.scep"}, {KindCommand, "Settings"},
		{KindProfile, "com.apple.homescreenlayout"}, {KindCommand, "DeviceInformation"}, {KindProfile, "com.apple.vpn.managed"},
	} {
		s, ok := Lookup(n.kind, n.name)
		if !ok {
			f.Fatalf("%s not found", n.name)
		}
		schemas = append(schemas, s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var v map[string]any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		for _, s := range schemas {
			for _, p := range ValidateDict(s.PayloadKeys, v, "") {
				if p.Rule == "" || p.Message == "" {
					t.Fatalf("empty problem %+v", p)
				}
			}
		}
	})
}

func TestValidateFor(t *testing.T) {
	au, _ := Checkin("Authenticate")
	msg := map[string]any{
		"MessageType":  "Authenticate",
		"Topic":        "com.apple.mgmt.External.x",
		"UDID":         "00008120-001A2B3C4D5E6F70",
		"BuildVersion": "22B83",
		"OSVersion":    "18.1",
		"ProductName":  "iPhone15,2",
		"SerialNumber": "F2LXK1ABCD12",
	}
	macOnly := []want{{"DeviceName", RuleMissingRequired}, {"ModelName", RuleMissingRequired}, {"Model", RuleMissingRequired}}
	check(t, ValidateDict(au.PayloadKeys, msg, ""), macOnly)
	check(t, au.ValidateFor("iOS", "18.1", au.PayloadKeys, msg, ""), nil)
	check(t, au.ValidateFor("iOS", "", au.PayloadKeys, msg, ""), nil)
	check(t, au.ValidateFor("macOS", "15.1", au.PayloadKeys, msg, ""), macOnly)
	// Other rules still apply.
	check(t, au.ValidateFor("iOS", "18.1", au.PayloadKeys, with(msg, "MessageType", "TokenUpdate"), ""),
		[]want{{"MessageType", RuleNotInRangeList}})

	// Nested keys inherit from their parents: RequireBetaProgram (and so
	// its required Description and Token) exists from iOS 17.5.
	e, _ := Error("com.apple.softwareupdate.required")
	doc := map[string]any{"code": "com.apple.softwareupdate.required", "details": map[string]any{
		"OSVersion": "17.5", "RequireBetaProgram": map[string]any{},
	}}
	check(t, e.ValidateFor("iOS", "17.0", e.PayloadKeys, doc, ""), nil)
	check(t, e.ValidateFor("iOS", "17.5", e.PayloadKeys, doc, ""), []want{
		{"details.RequireBetaProgram.Description", RuleMissingRequired},
		{"details.RequireBetaProgram.Token", RuleMissingRequired},
	})
	// Starting from a subkey list inside the schema finds its parents.
	details := mustKey(t, e.PayloadKeys, "details")
	check(t, e.ValidateFor("iOS", "17.0", details.Subkeys, doc["details"].(map[string]any), "details"), nil)
}

// TestFromJSON: JSON numbers become the plist types Apple's schemas name,
// all the way down, without touching the input.
func TestFromJSON(t *testing.T) {
	in := map[string]any{"i": json.Number("42"), "f": json.Number("1.5"), "w": 7.0, "r": 2.25, "big": json.Number("99999999999999999999"),
		"a": []any{json.Number("1"), map[string]any{"n": 3.0}}, "s": "x", "b": true, "nil": nil}
	got := FromJSON(in).(map[string]any)
	if got["i"] != int64(42) || got["f"] != 1.5 || got["w"] != int64(7) || got["r"] != 2.25 || got["big"] != 1e20 || got["s"] != "x" || got["b"] != true || got["nil"] != nil {
		t.Errorf("FromJSON: %#v", got)
	}
	if a := got["a"].([]any); a[0] != int64(1) || a[1].(map[string]any)["n"] != int64(3) {
		t.Errorf("nested: %#v", a)
	}
	if in["w"] != 7.0 {
		t.Error("the input was changed")
	}
	if probs := ValidateValue(&Key{Name: "n", Type: "<integer>"}, FromJSON(3.0), "n"); len(probs) > 0 {
		t.Errorf("a whole JSON number is not an integer to the validator: %v", probs)
	}
}
