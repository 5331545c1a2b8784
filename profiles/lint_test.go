package profiles

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/micromdm/plist"
)

// lintProfile builds an unsigned profile around payloads and parses it.
func lintProfile(t *testing.T, top map[string]any, payloads ...map[string]any) *Parsed {
	t.Helper()
	d := map[string]any{
		"PayloadType":       "Configuration",
		"PayloadVersion":    1,
		"PayloadIdentifier": "com.example.lint",
		"PayloadUUID":       "11111111-1111-4111-8111-111111111111",
		"PayloadContent":    toAny(payloads),
	}
	for k, v := range top {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	b, err := plist.MarshalIndent(d, "\t")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func toAny(ps []map[string]any) []any {
	out := make([]any, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// payload is a minimal valid payload of type t with extra keys (nil deletes).
func lintPayload(t, uuid string, extra map[string]any) map[string]any {
	d := map[string]any{
		"PayloadType":       t,
		"PayloadVersion":    1,
		"PayloadIdentifier": "com.example.lint." + t,
		"PayloadUUID":       uuid,
	}
	for k, v := range extra {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	return d
}

const (
	uuidA = "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA"
	uuidB = "BBBBBBBB-BBBB-4BBB-8BBB-BBBBBBBBBBBB"
)

func lintMDM(extra map[string]any) map[string]any {
	base := map[string]any{
		"IdentityCertificateUUID": uuidB,
		"Topic":                   "com.apple.mgmt.External.x",
		"ServerURL":               "https://mdm.example.com/mdm",
	}
	for k, v := range extra {
		base[k] = v
	}
	return lintPayload("com.apple.mdm", uuidA, base)
}

func TestLintServedEnrollmentProfileIsClean(t *testing.T) {
	pk := getPKI(t)
	o := testOptions(pk.root)
	for _, signed := range []bool{false, true} {
		b := mustBuild(t, o)
		if signed {
			b = mustSign(t, b)
		}
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, opts := range []LintOptions{{}, {Platform: "iOS"}, {Platform: "macOS"}, {Platform: "ios", Supervised: true}} {
			if f := Lint(p, opts); len(f) != 0 {
				t.Errorf("signed=%v %+v: the enrollment profile has findings:\n%s", signed, opts, report(f))
			}
		}
	}
}

func report(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String())
		b.WriteString("\n")
	}
	return b.String()
}

func TestLintRules(t *testing.T) {
	tests := []struct {
		name     string
		top      map[string]any
		payloads []map[string]any
		opts     LintOptions
		severity string
		rule     string
		path     string
	}{
		{"unknown key", nil, []map[string]any{lintMDM(map[string]any{"ServerUrl": "https://x"})},
			LintOptions{}, SeverityWarning, RuleUnknownKey, "PayloadContent[0].ServerUrl"},
		{"wrong type", nil, []map[string]any{lintMDM(map[string]any{"AccessRights": "8191"})},
			LintOptions{}, SeverityError, RuleWrongType, "PayloadContent[0].AccessRights"},
		{"wrong type at top", map[string]any{"PayloadVersion": "1"}, []map[string]any{lintMDM(nil)},
			LintOptions{}, SeverityError, RuleWrongType, "PayloadVersion"},
		{"missing required", nil, []map[string]any{lintPayload("com.apple.mdm", uuidA, map[string]any{"ServerURL": "https://x/mdm", "IdentityCertificateUUID": uuidB})},
			LintOptions{}, SeverityError, RuleMissingRequired, "PayloadContent[0].Topic"},
		{"pattern", nil, []map[string]any{lintMDM(map[string]any{"ServerURL": "http://mdm.example.com/mdm"})},
			LintOptions{}, SeverityError, RulePattern, "PayloadContent[0].ServerURL"},
		{"range list", nil, []map[string]any{lintPayload("com.apple.security.scep", uuidB, map[string]any{"PayloadContent": map[string]any{"URL": "https://scep", "Keysize": 3}})},
			LintOptions{}, SeverityError, RuleNotInRangeList, "PayloadContent[0].PayloadContent.Keysize"},
		{"unknown payload type", nil, []map[string]any{lintPayload("com.example.nonsense", uuidA, map[string]any{"Whatever": true})},
			LintOptions{}, SeverityError, RuleUnknownPayloadType, "PayloadContent[0].PayloadType"},
		{"platform payload", nil, []map[string]any{lintPayload("com.apple.loginwindow", uuidA, nil)},
			LintOptions{Platform: "iOS"}, SeverityError, RulePlatform, "PayloadContent[0]"},
		{"user enrollment payload", nil, []map[string]any{lintPayload("com.apple.cellular", uuidA, nil)},
			LintOptions{Platform: "iOS", UserEnrollment: true}, SeverityError, RuleUserEnrollment, "PayloadContent[0]"},
		{"user enrollment key", map[string]any{"PayloadRemovalDisallowed": true}, []map[string]any{lintMDM(nil)},
			LintOptions{Platform: "iOS", UserEnrollment: true, Supervised: true}, SeverityWarning, RuleUserEnrollment, "PayloadRemovalDisallowed"},
		{"supervised-only payload", nil, []map[string]any{lintPayload("com.apple.app.lock", uuidA, map[string]any{"App": map[string]any{"Identifier": "com.example.app"}})},
			LintOptions{Platform: "iOS"}, SeverityError, RuleSupervisedOnly, "PayloadContent[0]"},
		{"supervised-only key", map[string]any{"PayloadRemovalDisallowed": true}, []map[string]any{lintMDM(nil)},
			LintOptions{Platform: "iOS"}, SeverityWarning, RuleSupervisedOnly, "PayloadRemovalDisallowed"},
		{"duplicate uuid", nil, []map[string]any{lintMDM(nil), lintPayload("com.apple.security.root", uuidA, map[string]any{"PayloadContent": []byte{1}})},
			LintOptions{}, SeverityError, RuleDuplicateUUID, "PayloadContent[1].PayloadUUID"},
		{"duplicate of the profile uuid", nil, []map[string]any{lintPayload("com.apple.security.root", "11111111-1111-4111-8111-111111111111", map[string]any{"PayloadContent": []byte{1}})},
			LintOptions{}, SeverityError, RuleDuplicateUUID, "PayloadContent[0].PayloadUUID"},
		{"unknown platform", nil, []map[string]any{lintMDM(nil)},
			LintOptions{Platform: "Android"}, SeverityError, RulePlatform, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := Lint(lintProfile(t, tc.top, tc.payloads...), tc.opts)
			for _, f := range fs {
				if f.Rule == tc.rule && f.Path == tc.path {
					if f.Severity != tc.severity {
						t.Errorf("severity %s, want %s: %s", f.Severity, tc.severity, f)
					}
					if f.Message == "" {
						t.Error("empty message")
					}
					return
				}
			}
			t.Errorf("no %s finding at %q; got:\n%s", tc.rule, tc.path, report(fs))
		})
	}
}

func TestLintPayloadFields(t *testing.T) {
	fs := Lint(lintProfile(t, nil, lintMDM(map[string]any{"Bogus": 1})), LintOptions{})
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1:\n%s", len(fs), report(fs))
	}
	f := fs[0]
	if f.PayloadType != "com.apple.mdm" || f.PayloadIdentifier != "com.example.lint.com.apple.mdm" {
		t.Errorf("finding names payload %q %q", f.PayloadType, f.PayloadIdentifier)
	}
	if HasErrors(fs) {
		t.Error("HasErrors with only a warning")
	}
}

func TestLintKeyInheritsPayloadRuleOnce(t *testing.T) {
	// com.apple.app.lock is supervised-only as a whole: its keys must not
	// each repeat that.
	fs := Lint(lintProfile(t, nil, lintPayload("com.apple.app.lock", uuidA, map[string]any{"App": map[string]any{"Identifier": "com.example.app"}})), LintOptions{Platform: "iOS"})
	n := 0
	for _, f := range fs {
		if f.Rule == RuleSupervisedOnly {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d supervised-only findings, want 1:\n%s", n, report(fs))
	}
	if fs := Lint(lintProfile(t, nil, lintPayload("com.apple.app.lock", uuidA, map[string]any{"App": map[string]any{"Identifier": "com.example.app"}})), LintOptions{Platform: "iOS", Supervised: true}); len(fs) != 0 {
		t.Errorf("supervised device: findings:\n%s", report(fs))
	}
}

func TestLintEncrypted(t *testing.T) {
	p := lintProfile(t, map[string]any{"PayloadContent": nil, "IsEncrypted": true, "EncryptedPayloadContent": []byte{0x30, 0x80}})
	fs := Lint(p, LintOptions{Platform: "iOS"})
	if len(fs) != 1 || fs[0].Rule != RuleEncrypted || fs[0].Severity != SeverityWarning {
		t.Fatalf("encrypted profile: got\n%s", report(fs))
	}
}

func TestLintHostile(t *testing.T) {
	if Lint(nil, LintOptions{}) != nil {
		t.Error("Lint(nil) has findings")
	}
	// Deep nesting inside a key the schema describes, a non-string
	// PayloadType and huge strings: findings, no panic.
	var deep any = map[string]any{"x": 1}
	for range 200 {
		deep = map[string]any{"x": []any{deep}}
	}
	p := &Parsed{Top: map[string]any{"PayloadType": 7}, Payloads: []Payload{
		{"PayloadType": 12, "PayloadUUID": strings.Repeat("A", 1<<16)},
		{"PayloadType": "com.apple.mdm", "ServerCapabilities": []any{deep}, "Topic": deep},
		{"PayloadType": strings.Repeat("x", 1<<16)},
	}}
	fs := Lint(p, LintOptions{Platform: "iOS", UserEnrollment: true})
	if !HasErrors(fs) {
		t.Fatal("no errors for a broken profile")
	}
	for _, f := range fs {
		if len(f.Message) > 1024 {
			t.Errorf("message of %d bytes: %.80s…", len(f.Message), f.Message)
		}
	}
}

func TestLintGolden(t *testing.T) {
	p := lintProfile(t, map[string]any{"PayloadRemovalDisallowed": true, "PayloadVersion": "1"},
		lintMDM(map[string]any{"ServerURL": "http://mdm.example.com/mdm", "AccessRights": "all", "ServerUrl": "x"}),
		lintPayload("com.apple.cellular", uuidA, nil),
		lintPayload("com.example.nonsense", uuidB, nil),
	)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Lint(p, LintOptions{Platform: "iOS", UserEnrollment: true})); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", "lint.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestLintGolden -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("lint report differs from %s (if intended, rerun with -update):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// FuzzLint lints whatever Parse accepts, for every device kind: findings
// name a known severity and rule, and nothing panics.
func FuzzLint(f *testing.F) {
	pk := getPKI(f)
	f.Add(mustBuild(f, testOptions(pk.root)))
	f.Add(xmlPlist("<dict><key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><string>1</string><key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.mdm</string><key>SignMessage</key><string>yes</string></dict></array></dict>"))
	f.Add(xmlPlist("<dict><key>EncryptedPayloadContent</key><data>AAAA</data></dict>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		for _, o := range []LintOptions{{}, {Platform: "iOS", UserEnrollment: true}, {Platform: "macOS", Supervised: true}} {
			for _, fd := range Lint(p, o) {
				if fd.Severity != SeverityError && fd.Severity != SeverityWarning || fd.Rule == "" || fd.Message == "" {
					t.Fatalf("finding %+v", fd)
				}
			}
		}
	})
}
