package main

import (
	"flag"
	"os"
	"strings"
	"testing"
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
