package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const readme = `# Device Management Client Schema

## OS Versions

This release corresponds to the following OS versions

| OS       | Version |
|----------|---------|
| iOS      | 18.1    |
| macOS    | 15.1    |
| visionOS |  2.1    |

## Something else

| OS | Version |
|----|---------|
| notme | 1 |
`

// A profile with Apple's recursive anchor pattern (home-screen folders), an
// unquoted version that YAML would read as a float, typed defaults and
// prose to drop.
const profileYAML = `title: Layout
description: Prose that must not reach the JSON.
payload:
  payloadtype: com.example.layout
  supportedOS:
    iOS:
      introduced: '4.0'
      supervised: false
      sharedipad:
        mode: allowed
        devicechannel: true
      userenrollment:
        mode: forbidden
    macOS:
      introduced: 10.10
  content: More prose.
payloadkeys:
- key: Dock
  type: <array>
  presence: optional
  content: Prose.
  subkeytype: IconItem
  subkeys: &id001
  - key: IconItem
    type: <dictionary>
    subkeys:
    - key: Type
      type: <string>
      presence: required
      rangelist:
      - App
      - Folder
    - key: Pages
      type: <array>
      presence: optional
      subkeys: &id002
      - key: PagesItem
        type: <array>
        subkeys: *id001
- key: Pages
  type: <array>
  presence: required
  subkeys: *id002
- key: Ratio
  supportedOS:
    iOS:
      introduced: '9.3.2'
  type: <real>
  presence: optional
  default: 2.0
  range:
    min: 0
    max: 2.5
- key: Count
  type: <integer>
  default: 3
  rangelist: [1, 3, 18446744073709551615]
- key: Flag
  type: <boolean>
  default: false
- key: Code
  type: <string>
  format: ^[0-9]{6}$
  subtype: digits
`

const commandYAML = `title: Cmd
payload:
  requesttype: DoThing
  supportedOS:
    iOS:
      introduced: '4.0'
      accessrights: AllowInspection
payloadkeys:
- key: A
  type: <string>
  presence: required
responsekeys:
- key: B
  type: <dictionary>
  subkeys:
  - key: ANY
    type: <any>
`

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func baseTree() map[string]string {
	simple := func(field, name string) string {
		return "title: x\npayload:\n  " + field + ": " + name + "\n  supportedOS:\n    iOS:\n      introduced: '1.0'\npayloadkeys:\n- key: k\n  type: <string>\n"
	}
	return map[string]string{
		"README.md":                            readme,
		"mdm/profiles/com.example.layout.yaml": profileYAML,
		"mdm/commands/do.thing.yaml":           commandYAML,
		"mdm/checkin/hello.yaml":               simple("requesttype", "Hello"),
		"mdm/errors/oops.yaml":                 simple("requesttype", "Oops"),
		"other/thing.yaml":                     simple("payloadtype", "Thing"),
		"mdm/profiles/notes.txt":               "not yaml, ignored",
	}
}

func generate(t *testing.T, src string) (jsonOut, goOut []byte) {
	t.Helper()
	out := t.TempDir()
	err := run(config{src: src, out: filepath.Join(out, "schema.json"), goOut: filepath.Join(out, "zz_generated.go"), pkg: "schema"})
	if err != nil {
		t.Fatal(err)
	}
	j, err := os.ReadFile(filepath.Join(out, "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(filepath.Join(out, "zz_generated.go"))
	if err != nil {
		t.Fatal(err)
	}
	return j, g
}

func TestGenerate(t *testing.T) {
	src := writeTree(t, baseTree())
	j, g := generate(t, src)

	var doc document
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if len(doc.Schemas) != 5 {
		t.Fatalf("%d schemas, want 5", len(doc.Schemas))
	}
	for i := 1; i < len(doc.Schemas); i++ {
		if doc.Schemas[i-1].File >= doc.Schemas[i].File {
			t.Errorf("schemas not sorted: %s before %s", doc.Schemas[i-1].File, doc.Schemas[i].File)
		}
	}
	if got := doc.Source.OSVersions; len(got) != 3 || got["iOS"] != "18.1" || got["visionOS"] != "2.1" {
		t.Errorf("OS versions %v", got)
	}
	if doc.Source.Files["profile"] != 1 || doc.Source.Files["command"] != 1 {
		t.Errorf("file counts %v", doc.Source.Files)
	}
	for _, prose := range []string{"Prose", "prose", "subkeytype", `"title"`, `"content"`} {
		if bytes.Contains(j, []byte(prose)) {
			t.Errorf("output contains %q", prose)
		}
	}
	if bytes.Contains(j, []byte(`\u003c`)) {
		t.Error("type names are HTML-escaped")
	}

	var prof *sch
	for i := range doc.Schemas {
		if doc.Schemas[i].Kind == "profile" {
			prof = &doc.Schemas[i]
		}
	}
	if prof == nil || prof.PayloadType != "com.example.layout" {
		t.Fatalf("profile: %+v", prof)
	}
	if got := prof.SupportedOS["macOS"].Introduced; got != "10.10" {
		t.Errorf("unquoted version became %q, want 10.10", got)
	}
	ios := prof.SupportedOS["iOS"]
	if ios.Supervised == nil || *ios.Supervised || ios.SharedIPad.Mode != "allowed" || ios.UserEnrollment.Mode != "forbidden" {
		t.Errorf("iOS support %+v", ios)
	}

	// Recursion through anchors: Dock -> list A; A's IconItem.Pages -> list
	// B; B's PagesItem -> list A again.
	dock := prof.PayloadKeys[0]
	if dock.SubkeysRef == nil || dock.Subkeys != nil {
		t.Fatalf("Dock subkeys not a reference: %+v", dock)
	}
	a := doc.KeyLists[*dock.SubkeysRef]
	pagesRef := a[0].Subkeys[1].SubkeysRef
	if pagesRef == nil {
		t.Fatal("IconItem.Pages not a reference")
	}
	b := doc.KeyLists[*pagesRef]
	if b[0].SubkeysRef == nil || *b[0].SubkeysRef != *dock.SubkeysRef {
		t.Errorf("PagesItem does not point back at the icon list")
	}
	if top := prof.PayloadKeys[1]; top.SubkeysRef == nil || *top.SubkeysRef != *pagesRef {
		t.Errorf("top-level Pages does not share the pages list")
	}

	ratio, count, flag, code := prof.PayloadKeys[2], prof.PayloadKeys[3], prof.PayloadKeys[4], prof.PayloadKeys[5]
	if ratio.Default != 2.0 || ratio.Range == nil || ratio.Range.Max != 2.5 || ratio.SupportedOS["iOS"].Introduced != "9.3.2" {
		t.Errorf("Ratio %+v", ratio)
	}
	if count.Default != 3.0 || len(count.RangeList) != 3 || !bytes.Contains(j, []byte("18446744073709551615")) {
		t.Errorf("Count %+v (big rangelist value must be written exactly)", count)
	}
	if flag.Default != false {
		t.Errorf("Flag default %v", flag.Default)
	}
	if code.Format != "^[0-9]{6}$" || code.ValueType != "digits" {
		t.Errorf("Code %+v", code)
	}

	// Provenance in Go, matching the JSON.
	for _, want := range []string{"DO NOT EDIT", "package schema", doc.Source.SHA256, "iOS 18.1", "macOS 15.1", "source:  " + filepath.ToSlash(src)} {
		if !bytes.Contains(g, []byte(want)) {
			t.Errorf("zz_generated.go lacks %q:\n%s", want, g)
		}
	}

	// Deterministic: a second run gives the same bytes.
	j2, g2 := generate(t, src)
	if !bytes.Equal(j, j2) || !bytes.Equal(g, g2) {
		t.Error("two runs over the same input differ")
	}

	// Any input change changes the digest; the README too.
	for _, rel := range []string{"mdm/commands/do.thing.yaml", "README.md"} {
		tree := baseTree()
		tree[rel] += "\n# edited\n"
		j3, _ := generate(t, writeTree(t, tree))
		var d3 document
		if err := json.Unmarshal(j3, &d3); err != nil {
			t.Fatal(err)
		}
		if d3.Source.SHA256 == doc.Source.SHA256 {
			t.Errorf("editing %s did not change the digest", rel)
		}
	}
}

func TestDigest(t *testing.T) {
	files := []inputFile{{rel: "a.yaml", data: []byte("xy")}, {rel: "b/c.yaml", data: nil}}
	h := sha256.New()
	h.Write([]byte("a.yaml\x002\x00xy"))
	h.Write([]byte("b/c.yaml\x000\x00"))
	if got, want := digest(files), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
	// Moving bytes between a name and content changes the digest.
	if digest([]inputFile{{rel: "ab", data: []byte("c")}}) == digest([]inputFile{{rel: "a", data: []byte("bc")}}) {
		t.Error("digest is ambiguous")
	}
}

func TestParseOSVersions(t *testing.T) {
	if _, err := parseOSVersions([]byte("# Title\nno table\n")); err == nil {
		t.Error("no table accepted")
	}
	got, err := parseOSVersions([]byte(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["notme"] != "" {
		t.Errorf("parsed %v; only the OS Versions table counts", got)
	}
}

func TestGenerateRejects(t *testing.T) {
	key := func(extra string) string {
		return "title: x\npayload:\n  payloadtype: p\npayloadkeys:\n- key: k\n  type: <string>\n" + extra
	}
	for name, c := range map[string]struct {
		yaml, wantErr string
	}{
		"malformed yaml":     {"title: [unclosed\n", "com.example.layout.yaml"},
		"unknown key field":  {key("  newrule: 3\n"), `unknown field "newrule"`},
		"unknown top field":  {"title: x\npayload:\n  payloadtype: p\nextra: 1\n", `unknown field "extra"`},
		"unknown os":         {"payload:\n  payloadtype: p\n  supportedOS:\n    beOS:\n      introduced: '1'\n", `unknown field "beOS"`},
		"unknown os field":   {"payload:\n  payloadtype: p\n  supportedOS:\n    iOS:\n      teleport: true\n", `unknown field "teleport"`},
		"bad boolean":        {"payload:\n  payloadtype: p\n  supportedOS:\n    iOS:\n      supervised: maybe\n", "expected a boolean"},
		"bad mode":           {"payload:\n  payloadtype: p\n  supportedOS:\n    iOS:\n      userenrollment:\n        mode: sometimes\n", `unknown mode "sometimes"`},
		"bad type":           {strings.Replace(key(""), "<string>", "<float>", 1), `unknown key type "<float>"`},
		"bad presence":       {key("  presence: sometimes\n"), `unknown presence`},
		"bad range":          {key("  range:\n    min: abc\n"), "not a number"},
		"non-finite default": {key("  default: .inf\n"), "non-finite"},
		"key without name":   {"payload:\n  payloadtype: p\npayloadkeys:\n- type: <string>\n", `without a "key" name`},
		"keys not a list":    {"payload:\n  payloadtype: p\npayloadkeys: 3\n", "expected a list of keys"},
		"no payload":         {"title: x\n", "no payload object"},
		"duplicate field":    {"payload:\n  payloadtype: p\n  payloadtype: q\n", "duplicate"},
		"two documents":      {"payload:\n  payloadtype: p\n---\npayload:\n  payloadtype: q\n", ""},
		"empty file":         {"", "expected one YAML document"},
		"rangelist not list": {key("  rangelist: 3\n"), "rangelist is not a list"},
	} {
		t.Run(name, func(t *testing.T) {
			tree := baseTree()
			tree["mdm/profiles/com.example.layout.yaml"] = c.yaml
			err := run(config{src: writeTree(t, tree), out: filepath.Join(t.TempDir(), "s.json"), goOut: "-", pkg: "schema"})
			if c.wantErr == "" {
				// Either outcome is fine as long as it is not a panic.
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, c.wantErr)
			}
		})
	}

	// Missing pieces of the tree.
	tree := baseTree()
	delete(tree, "README.md")
	if err := run(config{src: writeTree(t, tree), out: filepath.Join(t.TempDir(), "s.json"), goOut: "-"}); err == nil || !strings.Contains(err.Error(), "README") {
		t.Errorf("missing README: %v", err)
	}
	tree = baseTree()
	delete(tree, "mdm/errors/oops.yaml")
	if err := run(config{src: writeTree(t, tree), out: filepath.Join(t.TempDir(), "s.json"), goOut: "-"}); err == nil {
		t.Error("an empty schema directory was accepted")
	}
	if err := run(config{src: filepath.Join(t.TempDir(), "nope"), out: "x", goOut: "-"}); err == nil {
		t.Error("a missing source directory was accepted")
	}
	// -declarative needs the declarative tree.
	if err := run(config{src: writeTree(t, baseTree()), out: filepath.Join(t.TempDir(), "s.json"), goOut: "-", declarative: true}); err == nil {
		t.Error("missing declarative directories were accepted")
	}
}

// FuzzConvertFile: whatever bytes sit in a schema file, the converter
// returns a result or an error, never panics or loops.
func FuzzConvertFile(f *testing.F) {
	f.Add([]byte(profileYAML))
	f.Add([]byte(commandYAML))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("payload:\n  payloadtype: p\npayloadkeys: &l\n- key: k\n  subkeys: *l\n"))
	f.Add([]byte("payload: &p\n  supportedOS: *p\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &converter{doc: &document{}, lists: map[*yaml.Node]int{}}
		_, _ = c.convertFile(inputFile{rel: "f.yaml", kind: kindProfile, data: data})
	})
}

func TestAliasExpansionBounded(t *testing.T) {
	// Each level repeats the previous one ten times: 10^7 keys if expanded.
	var b strings.Builder
	b.WriteString("payload:\n  payloadtype: p\nresponsekeys:\n- &k0\n  key: k\n  type: <string>\n")
	for i := 1; i <= 7; i++ {
		b.WriteString("- &k" + string(rune('0'+i)) + "\n  key: k\n  type: <dictionary>\n  subkeys: [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*k" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	c := &converter{doc: &document{}, lists: map[*yaml.Node]int{}}
	_, err := c.convertFile(inputFile{rel: "laughs.yaml", kind: kindProfile, data: []byte(b.String())})
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("err = %v, want the key bound", err)
	}
}
