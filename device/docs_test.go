package device

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEveryCommandInTheDocs: docs/virtual-devices.md's table of commands
// names every RequestType a new device answers, and nothing it does not,
// so the page a tester reads stays what the device does.
func TestEveryCommandInTheDocs(t *testing.T) {
	raw, err := os.ReadFile("../docs/virtual-devices.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "## The commands")
	if !ok {
		t.Fatal(`docs/virtual-devices.md has no "## The commands" section`)
	}
	table, _, _ = strings.Cut(table, "\n### ")
	name := regexp.MustCompile("`([A-Za-z]+)`")
	documented := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	var registered []string
	for rt := range builtinHandlers() {
		registered = append(registered, rt)
		if !documented[rt] {
			t.Errorf("%s is answered by the virtual device but not in docs/virtual-devices.md's table", rt)
		}
	}
	for rt := range documented {
		if !slices.Contains(registered, rt) {
			t.Errorf("docs/virtual-devices.md lists %s, which the virtual device does not answer", rt)
		}
	}
}
