package scenario

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParsePathsHostile: mistakes in api and register steps and in the
// parameters of every program path are *Errors with the file, the line
// and the field, before anything runs.
func TestParsePathsHostile(t *testing.T) {
	const head = "name: n\nsteps:\n  - device: a\n"
	for _, tc := range []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		// api
		{"api without method", head + "  - api: /v1/info\n", 4, "steps[2].api", "want METHOD /path"},
		{"api bad method", head + "  - api: FETCH /v1/info\n", 4, "steps[2].api", "want METHOD /path"},
		{"api relative path", head + "  - api: GET v1/info\n", 4, "steps[2].api", "want METHOD /path"},
		{"api other host", head + "  - api: GET //evil.example/x\n", 4, "steps[2].api", "on the server under test"},
		{"api not text", head + "  - api: {GET: /v1/info}\n", 4, "steps[2].api", "want text"},
		{"api two bodies", head + "  - api: PUT /v1/x\n    body: {a: 1}\n    raw: x\n", 6, "steps[2].raw", "give one of body"},
		{"api raw without type", head + "  - api: PUT /v1/x\n    raw: hello\n", 5, "steps[2].content_type", "missing"},
		{"api bad content type", head + "  - api: PUT /v1/x\n    raw: hello\n    content_type: 'a b'\n", 6, "steps[2].content_type", "not a media type"},
		{"api type without body", head + "  - api: PUT /v1/x\n    content_type: text/plain\n", 5, "steps[2].content_type", "no body"},
		{"api bad yaml", head + "  - api: PUT /v1/directory\n    yaml: 'a: [b'\n", 5, "steps[2].yaml", "not valid YAML"},
		{"api yaml not text", head + "  - api: PUT /v1/directory\n    yaml: {a: b}\n", 5, "steps[2].yaml", "want text"},
		{"api absolute file", head + "  - api: PUT /v1/directory\n    file: /etc/passwd\n", 5, "steps[2].file", "relative to the scenario file"},
		{"api file of unknown type", head + "  - api: PUT /v1/directory\n    file: dir.txt\n", 5, "steps[2].content_type", "give content_type"},
		{"api status out of range", head + "  - api: GET /v1/info\n    status: 42\n", 5, "steps[2].status", "out of range"},
		{"api status not a number", head + "  - api: GET /v1/info\n    status: ok\n", 5, "steps[2].status", "want a whole number"},
		{"api unknown field", head + "  - api: GET /v1/info\n    header: x\n", 5, "steps[2].header", "unknown field for a api step"},
		{"api as twice", head + "  - api: GET /v1/info\n    as: i\n  - api: GET /v1/info\n    as: i\n", 7, "steps[3].as", "already names"},
		{"api as names a device", head + "  - api: GET /v1/info\n    as: a\n", 5, "steps[2].as", "already names"},
		{"reference to nothing", head + "  - api: GET /v1/enrollments/${b.udid}\n", 4, "steps[2].api", `${b.udid}: no device or api answer`},
		{"reference to a device field", head + "  - api: GET /v1/enrollments/${a.colour}\n", 4, "steps[2].api", "a device gives serial, udid, enrollment_id"},
		{"reference to an answer field", head + "  - api: GET /v1/info\n    as: i\n  - api: GET /v1/x/${i.headers}\n", 6, "steps[3].api", "status, body or body.PATH"},
		{"reference in a body", head + "  - api: PUT /v1/x\n    body: {serials: ['${z.serial}']}\n", 5, "steps[2].body.serials[0]", "no device or api answer"},
		{"unclosed reference", head + "  - api: GET /v1/x/${a.udid\n", 4, "steps[2].api", "unclosed"},
		{"reference in expect", head + "  - expect: {device: a, enrollment.serial_number: '${q.serial}'}\n", 4, "steps[2].expect.enrollment.serial_number", "no device or api answer"},
		// expect response
		{"expect unknown response", head + "  - expect: {response: r, body.x: 1}\n", 4, "steps[2].expect.response", `no api step kept an answer as "r"`},
		{"expect body without response", head + "  - expect: {device: a, body.x: 1}\n", 4, "steps[2].expect.body.x", "add response: NAME"},
		{"expect response asserts nothing", head + "  - api: GET /v1/info\n    as: i\n  - expect: {response: i}\n", 6, "steps[3].expect", "asserts nothing"},
		// register
		{"register unknown device", head + "  - register: b\n    with: {user: u, password: p}\n", 4, "steps[2].register", `no device "b"`},
		{"register missing password", head + "  - register: a\n    with: {user: u}\n", 5, "steps[2].with.password", "missing"},
		{"register without with", head + "  - register: a\n", 4, "steps[2].with.user", "missing"},
		{"register unknown param", head + "  - register: a\n    with: {user: u, password: p, ownership: personal}\n", 5, "steps[2].with.ownership", "unknown parameter for the register step"},
		{"register unknown field", head + "  - register: a\n    path: ade\n", 5, "steps[2].path", "unknown field for a register step"},
		// path parameters
		{"ade unknown param", head + "  - enroll: a\n    path: ade\n    with: {profil: corp}\n", 6, "steps[2].with.profil", "unknown parameter for enrollment path ade (known: profile, user, password, mfa_code, new_password)"},
		{"configurator missing profile", head + "  - enroll: a\n    path: configurator\n", 4, "steps[2].with.profile", "missing: enrollment path configurator needs profile"},
		{"configurator missing profile with params", head + "  - enroll: a\n    path: configurator\n    with: {user: u}\n", 6, "steps[2].with.profile", "missing"},
		{"configurator bad supervised", head + "  - enroll: a\n    path: configurator\n    with: {profile: p, supervised: maybe}\n", 6, "steps[2].with.supervised", "supervised takes true, false"},
		{"company-portal missing user", head + "  - enroll: a\n    path: company-portal\n    with: {password: p}\n", 6, "steps[2].with.user", "missing"},
		{"company-portal bad ownership", head + "  - enroll: a\n    path: company-portal\n    with: {user: u, password: p, ownership: mine}\n", 6, "steps[2].with.ownership", "ownership takes corporate, personal"},
		{"company-portal bad scope", head + "  - enroll: a\n    path: company-portal\n    with: {user: u, password: p, scope: all}\n", 6, "steps[2].with.scope", "scope takes device, work"},
		{"company-portal unknown param", head + "  - enroll: a\n    path: company-portal\n    with: {user: u, password: p, profile: x}\n", 6, "steps[2].with.profile", "unknown parameter for enrollment path company-portal"},
		{"web missing password", head + "  - enroll: a\n    path: web\n    with: {user: u}\n", 6, "steps[2].with.password", "missing"},
		{"web unknown param", head + "  - enroll: a\n    path: web\n    with: {user: u, password: p, scope: work}\n", 6, "steps[2].with.scope", "unknown parameter for enrollment path web"},
		{"account-driven missing user", head + "  - enroll: a\n    path: account-driven\n    with: {password: p}\n", 6, "steps[2].with.user", "missing"},
		{"account-driven unknown param", head + "  - enroll: a\n    path: account-driven\n    with: {user: u, password: p, ownership: personal}\n", 6, "steps[2].with.ownership", "unknown parameter for enrollment path account-driven"},
		{"param not text", head + "  - enroll: a\n    path: web\n    with: {user: [u], password: p}\n", 6, "steps[2].with.user", "want text"},
		{"unknown path lists programs", head + "  - enroll: a\n    path: dep\n", 5, "steps[2].path", "(known: account-driven, ade, company-portal, configurator, profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tc.src))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if pe.File != "s.yaml" || pe.Line != tc.line || pe.Field != tc.field || !strings.Contains(pe.Msg, tc.msg) {
				t.Fatalf("got %s:%d field %q: %s\nwant line %d field %q containing %q", pe.File, pe.Line, pe.Field, pe.Msg, tc.line, tc.field, tc.msg)
			}
		})
	}
}

// TestParseAPIForms: the api step's body forms and references parse into
// what they say.
func TestParseAPIForms(t *testing.T) {
	src := `name: api
steps:
  - device: d.1
  - api: PUT /v1/ade/profiles/p
    body: {serials: ["${d.1.serial}"], n: 3}
    status: 200
    as: p
  - api: PUT /v1/directory
    yaml: |
      users: []
  - api: POST /v1/ade/tokens
    raw: "-----BEGIN CERTIFICATE-----"
    content_type: application/x-pem-file
  - api: PUT /v1/directory
    file: ../directory/contoso.yaml
  - api: GET /v1/x/${p.body.dep_profile_uuid}
  - expect: {response: p, body.serials.0: "${d.1.serial}"}
  - register: d.1
    with: {user: u, password: p}
    error: wrong_password
`
	scs, err := Parse("testdata/x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	st := scs[0].Steps
	if a := st[1].action.(*apiAction); a.method != "PUT" || a.status != 200 || a.as != "p" || a.contentType != "application/json" || !a.hasJSON {
		t.Fatalf("body form %+v", a)
	}
	if a := st[2].action.(*apiAction); a.contentType != "application/yaml" || a.text != "users: []\n" {
		t.Fatalf("yaml form %+v", a)
	}
	if a := st[3].action.(*apiAction); a.contentType != "application/x-pem-file" || !strings.HasPrefix(a.text, "-----BEGIN") {
		t.Fatalf("raw form %+v", a)
	}
	if a := st[4].action.(*apiAction); a.file != filepath.Join("testdata", "..", "directory", "contoso.yaml") && a.file != filepath.FromSlash("directory/contoso.yaml") || a.contentType != "application/yaml" {
		t.Fatalf("file form %+v", a)
	}
	if r := st[7].action.(*registerAction); r.params["user"] != "u" || r.want == nil || r.want.text != "wrong_password" {
		t.Fatalf("register %+v", r)
	}
	if p, ok := PathParams("company-portal"); !ok || len(p) != 6 || !p[0].Required {
		t.Fatalf("company-portal params %+v", p)
	}
	if _, ok := PathParams("profile"); ok {
		t.Fatal("profile declares no parameters and takes any")
	}
}

// TestReferences: references expand to device identifiers and earlier
// answers; a whole-text reference keeps the value's type.
func TestReferences(t *testing.T) {
	r := &run{devices: map[string]*devState{}, responses: map[string]*apiResponse{
		"p": {Status: 201, Body: map[string]any{"id": "X/1", "n": 3.0, "list": []any{"a", map[string]any{"k": true}}}},
	}}
	for _, tc := range []struct {
		in, want string
		esc      func(string) string
	}{
		{"/v1/x/${p.body.id}", "/v1/x/X%2F1", pathEscape},
		{"n=${p.body.n} s=${p.status}", "n=3 s=201", nil},
		{"${p.body.list.1.k}", "true", nil},
	} {
		got, err := r.expand(tc.in, tc.esc)
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	v, err := r.expandTree(map[string]any{"n": "${p.body.n}", "l": []any{"${p.body.list.0}-x"}})
	if err != nil {
		t.Fatal(err)
	}
	if m := v.(map[string]any); m["n"] != 3.0 || m["l"].([]any)[0] != "a-x" {
		t.Fatalf("expandTree = %v", v)
	}
	for _, bad := range []string{"${p.body.missing}", "${p.body.list.9}", "${p.body.id.deeper}", "${q.status}"} {
		if _, err := r.expand(bad, nil); err == nil {
			t.Errorf("expand(%q) did not fail", bad)
		}
	}
}

// TestADEAgainstARunningServer runs ade.yaml the way -server does: the
// runner does not hold the server's mock Apple device CA, so devices take
// identities from POST /v1/ade/device-identities.
func TestADEAgainstARunningServer(t *testing.T) {
	scs, err := Parse("../testdata/scenarios/ade.yaml", mustRead(t, "../testdata/scenarios/ade.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs[:2] {
		target, stop, err := InProcess(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		target.AppleDeviceCA = nil
		rep := NewRunner(WithTarget(target)).Run(context.Background(), sc)
		stop()
		if !rep.Passed {
			t.Fatalf("%s: %s", sc.Name, rep.Failure.Message)
		}
		if !hasNote(rep, "HTTP") {
			t.Fatalf("%s: no api notes in %+v", sc.Name, rep.Steps)
		}
	}
}

func hasNote(rep ScenarioReport, s string) bool {
	for _, st := range rep.Steps {
		for _, n := range st.Notes {
			if strings.Contains(n, s) {
				return true
			}
		}
	}
	return false
}

var pathEscape = url.PathEscape

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
