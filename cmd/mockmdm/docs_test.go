package main

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/mdm"
)

// TestEveryFlagInOperationsGuide holds docs/operations-guide.md to the
// serve flags: each has a heading of its own ("### -name") under which its
// environment variable and an example are given.
func TestEveryFlagInOperationsGuide(t *testing.T) {
	raw, err := os.ReadFile("../../docs/operations-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	guide := string(raw)
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs)
	fs.VisitAll(func(fl *flag.Flag) {
		heading := "\n### -" + fl.Name + "\n"
		i := strings.Index(guide, heading)
		if i < 0 {
			t.Errorf("docs/operations-guide.md has no heading %q", strings.TrimSpace(heading))
			return
		}
		section := guide[i+len(heading):]
		if j := strings.Index(section, "\n### "); j >= 0 {
			section = section[:j]
		}
		env := "MOCKMDM_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if !strings.Contains(section, env) || !strings.Contains(section, "```sh") {
			t.Errorf("the section of -%s should name %s and give an example", fl.Name, env)
		}
	})
}

// TestTypedCommandsInDocs: each place that lists the commands the API and
// scenarios take as typed JSON (the operations guide, the scenario format,
// the OpenAPI description) names every one of them.
func TestTypedCommandsInDocs(t *testing.T) {
	for _, doc := range []struct{ file, after string }{
		{"../../docs/operations-guide.md", "### POST /v1/commands"},
		{"../../docs/scenarios.md", "Typed commands ("},
		{"../../docs/openapi.yaml", "Typed\n            RequestTypes:"},
	} {
		raw, err := os.ReadFile(doc.file)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(raw), doc.after)
		if !ok {
			t.Errorf("%s: no %q", doc.file, doc.after)
			continue
		}
		list, _, _ := strings.Cut(rest, ") are given") // scenarios.md
		list, _, _ = strings.Cut(list, " — or")        // operations-guide.md
		list, _, _ = strings.Cut(list, "Unknown")      // openapi.yaml
		words := strings.FieldsFunc(list, func(r rune) bool {
			return r == ',' || r == '`' || r == ' ' || r == '\n' || r == '.' || r == '(' || r == ')'
		})
		for _, rt := range mdm.TypedRequestTypes() {
			if !slices.Contains(words, rt) {
				t.Errorf("%s does not list the typed command %s", doc.file, rt)
			}
		}
	}
}
