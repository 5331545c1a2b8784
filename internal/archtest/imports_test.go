package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mockmdm/mockmdm/"

// allowed lists, for each package of the module, the project packages it
// may import directly (a trailing "/" allows a whole subtree). Arrows point
// inward only; docs/architecture.md explains the layers.
var allowed = map[string][]string{
	"cmd/mockmdm":         {"server", "api", "device", "device/fleet", "push", "push/mockapns", "profiles", "certs", "checkin", "ddm", "store", "store/memory", "store/sqlite", "mdm", "webhook", "internal/", "scenario"},
	"scenario":            {"server", "server/mdmtest", "api", "device", "device/fleet", "push/mockapns", "certs", "mdm", "store", "store/", "internal/"},
	"server":              {"api", "api/handlers", "apps", "web", "checkin", "enroll", "ade", "ddm", "push", "push/", "profiles", "certs", "store", "store/", "mdm", "mdm/schema", "webhook", "metrics", "internal/"},
	"api":                 {"mdm"},
	"api/handlers":        {"api", "apps", "checkin", "certs", "profiles", "store", "mdm", "mdm/schema", "internal/"},
	"checkin":             {"mdm", "mdm/schema", "certs", "store", "internal/"},
	"device":              {"mdm", "mdm/schema", "profiles", "certs", "push/mockapns", "internal/plistguard", "internal/httperr"},
	"push":                {"mdm", "certs"},
	"push/mockapns":       {"push", "certs"},
	"store":               {"mdm", "internal/httperr"},
	"store/memory":        {"store", "mdm", "internal/httperr"},
	"store/sqlite":        {"store", "mdm", "internal/httperr"},
	"store/storetest":     {"store", "mdm", "internal/httperr"},
	"profiles":            {"mdm", "mdm/schema", "certs", "internal/"},
	"certs":               {"internal/httperr", "internal/plistguard"},
	"mdm":                 {"mdm/schema", "internal/plistguard"},
	"mdm/schema":          {},
	"internal/httperr":    {},
	"internal/httpx":      {"internal/httperr"},
	"internal/apiview":    {"api", "mdm", "store"},
	"internal/plistguard": {},
	"internal/schemagen":  {},
	"internal/flowtest":   {"api", "device", "push/mockapns", "mdm"},
	"enroll":              {"mdm", "mdm/schema", "profiles", "certs", "store", "internal/"},
	"server/mdmtest":      {"server", "api", "device", "push/mockapns", "store", "store/memory", "mdm"},
	"internal/archtest":   {},
	"device/fleet":        {"device", "push/mockapns"},
	"ade":                 {"certs", "store", "internal/"},
	"ddm":                 {"api", "mdm", "mdm/schema", "store", "internal/"},
	"web":                 {"api", "store", "mdm", "mdm/schema", "profiles", "certs", "internal/"},
	"apps":                {"mdm", "mdm/schema", "profiles", "store", "internal/"},
	"webhook":             {"store", "mdm", "internal/"},
	"metrics":             {"store", "internal/"},
}

// TestImportRules holds the dependency rule over the non-test imports of
// every package, read from go list, and fails for a package it does not know,
// so a new package must take its place in the rule.
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH: cannot list packages")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	seen := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(fields[0], module)
		rules, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in the dependency rule: add it to allowed in internal/archtest", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if !permits(rules, dep) {
				t.Errorf("%s imports %s, which the dependency rule does not allow (allowed: %v)", pkg, dep, rules)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("only %d packages checked; go list output:\n%s", seen, out)
	}
}

func permits(rules []string, dep string) bool {
	for _, r := range rules {
		if r == dep || (strings.HasSuffix(r, "/") && strings.HasPrefix(dep, r)) {
			return true
		}
	}
	return false
}

// TestMuxOnlyInRouteTable keeps gorilla/mux in the server's route table.
func TestMuxOnlyInRouteTable(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		for _, imp := range fields[1:] {
			if imp == "github.com/gorilla/mux" && fields[0] != module+"server" {
				t.Errorf("%s imports gorilla/mux; only the server's route table may", fields[0])
			}
		}
	}
}
