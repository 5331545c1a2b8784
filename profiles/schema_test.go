package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// This test holds every profile BuildEnrollment writes against Apple's own
// schema files (apple/device-management), read directly: key names, value
// types, required keys, rangelists, formats and repetition. The product never
// reads these files.

type schemaKey struct {
	Key        string      `yaml:"key"`
	Type       string      `yaml:"type"`
	Presence   string      `yaml:"presence"`
	RangeList  []any       `yaml:"rangelist"`
	Format     string      `yaml:"format"`
	SubKeys    []schemaKey `yaml:"subkeys"`
	Repetition *struct {
		Min int `yaml:"min"`
		Max int `yaml:"max"`
	} `yaml:"repetition"`
}

type schemaFile struct {
	Payload struct {
		PayloadType string `yaml:"payloadtype"`
	} `yaml:"payload"`
	PayloadKeys []schemaKey `yaml:"payloadkeys"`
}

func loadSchema(t *testing.T, dir, name string) schemaFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	var s schemaFile
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("decode schema %s: %v", name, err)
	}
	if len(s.PayloadKeys) == 0 {
		t.Fatalf("schema %s has no payloadkeys", name)
	}
	return s
}

// schemaDir is the Apple schema checkout, relative to this package.
func schemaDir(t *testing.T) string {
	dir := filepath.Join("..", "..", "shared", "apple-schema", "mdm", "profiles")
	if _, err := os.Stat(filepath.Join(dir, "TopLevel.yaml")); err != nil {
		t.Skipf("Apple's profile schemas are not at %s (%v); this test needs the apple/device-management checkout", dir, err)
	}
	return dir
}

// plistType maps a value decoded by Parse to the schema's type spelling.
func plistType(v any) string {
	switch v.(type) {
	case string:
		return "<string>"
	case int64, uint64:
		return "<integer>"
	case float64:
		return "<real>"
	case bool:
		return "<boolean>"
	case []byte:
		return "<data>"
	case time.Time:
		return "<date>"
	case []any:
		return "<array>"
	case map[string]any:
		return "<dictionary>"
	}
	return fmt.Sprintf("<unknown %T>", v)
}

// schemaErrs collects every way a value breaks the schema.
type schemaErrs []string

func (e *schemaErrs) add(format string, args ...any) { *e = append(*e, fmt.Sprintf(format, args...)) }

// checkValue checks v against the schema entry k at path.
func checkValue(t *schemaErrs, path string, v any, k schemaKey) {
	if got := plistType(v); k.Type != "<any>" && got != k.Type {
		t.add("%s: type %s, schema says %s", path, got, k.Type)
		return
	}
	if len(k.RangeList) > 0 {
		ok := slices.ContainsFunc(k.RangeList, func(r any) bool { return fmt.Sprint(r) == fmt.Sprint(v) })
		if !ok {
			t.add("%s: value %v is not in the schema's rangelist %v", path, v, k.RangeList)
		}
	}
	if k.Format != "" {
		s, _ := v.(string)
		if !regexp.MustCompile(k.Format).MatchString(s) {
			t.add("%s: value %q does not match the schema's format %s", path, s, k.Format)
		}
	}
	switch val := v.(type) {
	case map[string]any:
		if len(k.SubKeys) > 0 {
			checkDict(t, path, val, k.SubKeys)
		}
	case []any:
		if len(k.SubKeys) == 0 {
			return
		}
		item := k.SubKeys[0]
		if r := item.Repetition; r != nil && (len(val) < r.Min || len(val) > r.Max) {
			t.add("%s: %d items, schema wants %d to %d", path, len(val), r.Min, r.Max)
		}
		for i, e := range val {
			checkValue(t, fmt.Sprintf("%s[%d]", path, i), e, item)
		}
	}
}

// checkDict checks every key of d against keys, and that required keys are
// present. A schema key "ANY" accepts any key name.
func checkDict(t *schemaErrs, path string, d map[string]any, keys []schemaKey) {
	byName := map[string]schemaKey{}
	for _, k := range keys {
		byName[k.Key] = k
	}
	for name, v := range d {
		k, ok := byName[name]
		if !ok {
			k, ok = byName["ANY"]
		}
		if !ok {
			t.add("%s.%s: key is not in the schema", path, name)
			continue
		}
		checkValue(t, path+"."+name, v, k)
	}
	for _, k := range keys {
		if _, ok := d[k.Key]; !ok && k.Presence == "required" && k.Key != "ANY" {
			t.add("%s.%s: required by the schema but missing", path, k.Key)
		}
	}
}

// appleSchemas is the part of Apple's schema an enrollment profile uses.
type appleSchemas struct {
	top, common schemaFile
	payloads    map[string]schemaFile // by PayloadType
}

func loadAppleSchemas(t *testing.T) appleSchemas {
	dir := schemaDir(t)
	s := appleSchemas{
		top:      loadSchema(t, dir, "TopLevel.yaml"),
		common:   loadSchema(t, dir, "CommonPayloadKeys.yaml"),
		payloads: map[string]schemaFile{},
	}
	for _, name := range []string{"com.apple.mdm.yaml", "com.apple.security.scep.yaml", "com.apple.security.root.yaml"} {
		f := loadSchema(t, dir, name)
		s.payloads[f.Payload.PayloadType] = f
	}
	return s
}

// check returns every way parsed breaks the schemas, and the payload types seen.
func (s appleSchemas) check(parsed *Parsed) (schemaErrs, map[string]bool) {
	var errs schemaErrs
	checkDict(&errs, "TopLevel", parsed.Top, s.top.PayloadKeys)
	seen := map[string]bool{}
	for i, p := range parsed.Payloads {
		ps, ok := s.payloads[p.Type()]
		if !ok {
			errs.add("payload %d has type %q, which this test has no schema for", i, p.Type())
			continue
		}
		seen[p.Type()] = true
		// Payload-specific keys override the common ones (the SCEP and
		// root payloads redefine PayloadContent).
		keys := slices.Clone(ps.PayloadKeys)
		for _, c := range s.common.PayloadKeys {
			if !slices.ContainsFunc(keys, func(k schemaKey) bool { return k.Key == c.Key }) {
				keys = append(keys, c)
			}
		}
		checkDict(&errs, fmt.Sprintf("PayloadContent[%d](%s)", i, p.Type()), p, keys)
	}
	return errs, seen
}

func TestEnrollmentProfileMatchesAppleSchema(t *testing.T) {
	schemas := loadAppleSchemas(t)
	pk := getPKI(t)

	device := testOptions(pk.root)
	device.SCEPCAFingerprint = []byte{0xde, 0xad, 0xbe, 0xef}
	device.UseDevelopmentAPNS = true
	byod := testOptions(pk.root)
	byod.EnrollmentMode, byod.AssignedManagedAppleID, byod.AccessRights = EnrollmentModeBYOD, "user@example.com", 0
	legacyUE := testOptions(nil)
	legacyUE.ManagedAppleID, legacyUE.AccessRights = "user@example.com", 0
	adde := testOptions(pk.root)
	adde.EnrollmentMode, adde.AssignedManagedAppleID = EnrollmentModeADDE, "user@example.com"
	adde.ServerCapabilities = []string{CapabilityToken}
	minimal := EnrollmentOptions{
		Identifier: "m", ServerURL: "https://h/mdm", Topic: "com.apple.mgmt.x",
		AccessRights: 1, SCEPURL: "http://h/scep",
	}
	cases := map[string]EnrollmentOptions{
		"device": device, "byod": byod, "legacy-user-enrollment": legacyUE, "adde": adde, "minimal": minimal,
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			parsed, err := Parse(mustBuild(t, o))
			if err != nil {
				t.Fatal(err)
			}
			errs, seen := schemas.check(parsed)
			for _, e := range errs {
				t.Error(e)
			}
			wantRoot := o.RootCA != nil
			if seen[PayloadTypeRoot] != wantRoot || !seen[PayloadTypeSCEP] || !seen[PayloadTypeMDM] {
				t.Errorf("payload types present: %v; want scep, mdm and root=%v", seen, wantRoot)
			}
		})
	}
}

// TestSchemaCheckerHasTeeth feeds the checker a profile that breaks the
// schema in known ways, so that a checker which accepts anything fails.
func TestSchemaCheckerHasTeeth(t *testing.T) {
	schemas := loadAppleSchemas(t)
	parsed, err := Parse(mustBuild(t, testOptions(getPKI(t).root)))
	if err != nil {
		t.Fatal(err)
	}
	parsed.Top["PayloadVersion"] = uint64(2) // rangelist [1]
	parsed.Top["Unknown"] = "x"              // not in TopLevel
	mdm := parsed.PayloadsOfType(PayloadTypeMDM)[0]
	mdm["AccessRights"] = "8191"         // <integer>
	delete(mdm, "Topic")                 // required
	mdm["ServerURL"] = "http://insecure" // format ^https://
	scep := parsed.PayloadsOfType(PayloadTypeSCEP)[0]["PayloadContent"].(map[string]any)
	scep["Keysize"] = uint64(3000)                                       // rangelist
	scep["Subject"] = []any{[]any{[]any{"CN"}}}                          // pair of 2
	parsed.PayloadsOfType(PayloadTypeRoot)[0]["PayloadContent"] = "PEM?" // <data>
	errs, _ := schemas.check(parsed)
	for _, want := range []string{
		"TopLevel.PayloadVersion: value 2", "TopLevel.Unknown: key is not in the schema",
		"AccessRights: type <string>", "Topic: required", "ServerURL: value \"http://insecure\" does not match",
		"Keysize: value 3000", "Subject[0][0]: 1 items", "PayloadContent: type <string>, schema says <data>",
	} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("checker did not report %q; it reported:\n%s", want, strings.Join(errs, "\n"))
		}
	}
}
