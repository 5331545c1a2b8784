package ddm

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/store/memory"
)

const (
	testConfig     = `{"Type":"com.apple.configuration.management.test","Identifier":"com.example.test","Payload":{"Echo":"hello"}}`
	testActivation = `{"Type":"com.apple.activation.simple","Identifier":"com.example.act","Payload":{"StandardConfigurations":["com.example.test"]}}`
)

func newService(t *testing.T) (*Service, *time.Time) {
	t.Helper()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	return New(memory.New(), WithClock(func() time.Time { return now })), &now
}

func mustPut(t *testing.T, s *Service, body string) *Declaration {
	t.Helper()
	d, err := ParseDeclaration([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

// checkProtocol validates a server answer against Apple's schema for it
// (declarative/protocol), the oracle we did not write.
func checkProtocol(t *testing.T, name string, body []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, body)
	}
	s, ok := schema.Lookup(schema.KindDDMProtocol, name)
	if !ok {
		t.Fatalf("no schema %s", name)
	}
	if probs := schema.ValidateDict(s.PayloadKeys, doc, ""); len(probs) > 0 {
		t.Errorf("%s breaks Apple's schema: %v\n%s", name, probs, body)
	}
	return doc
}

// TestSync: what a device syncs through the check-in endpoints follows the
// enrollment's declarations; the answers pass Apple's protocol schemas;
// the tokens change exactly when the set or a declaration does.
func TestSync(t *testing.T) {
	ctx := context.Background()
	s, now := newService(t)
	const enr = "UDID-1"
	serve := func(endpoint string) []byte {
		t.Helper()
		b, err := s.Serve(ctx, enr, endpoint, nil)
		if err != nil {
			t.Fatalf("%s: %v", endpoint, err)
		}
		return b
	}
	token := func() string {
		t.Helper()
		doc := checkProtocol(t, "TokensResponse", serve("tokens"))
		return doc["SyncTokens"].(map[string]any)["DeclarationsToken"].(string)
	}
	empty := token()
	items := checkProtocol(t, "DeclarationItemsResponse", serve("declaration-items"))
	for _, k := range []string{"Activations", "Configurations", "Assets", "Management"} {
		if l, ok := items["Declarations"].(map[string]any)[k].([]any); !ok || len(l) != 0 {
			t.Errorf("no declarations yet, but %s is %v", k, items["Declarations"])
		}
	}

	conf := mustPut(t, s, testConfig)
	mustPut(t, s, testActivation)
	*now = now.Add(time.Minute)
	if err := s.Assign(ctx, enr, []string{"com.example.act", "com.example.test", "com.example.test"}); err != nil {
		t.Fatal(err)
	}
	assigned := token()
	if assigned == empty {
		t.Error("the DeclarationsToken did not change when declarations were assigned")
	}
	items = checkProtocol(t, "DeclarationItemsResponse", serve("declaration-items"))
	if items["DeclarationsToken"] != assigned {
		t.Errorf("declaration-items token %v, tokens said %s", items["DeclarationsToken"], assigned)
	}
	confs := items["Declarations"].(map[string]any)["Configurations"].([]any)
	if len(confs) != 1 || confs[0].(map[string]any)["ServerToken"] != conf.ServerToken {
		t.Errorf("Configurations: %v", confs)
	}
	var got Declaration
	if err := json.Unmarshal(serve("declaration/configuration/com.example.test"), &got); err != nil || got.Payload["Echo"] != "hello" || got.ServerToken != conf.ServerToken {
		t.Errorf("declaration: %+v %v", got, err)
	}
	for endpoint, want := range map[string]int{
		"declaration/activation/com.example.test": 404, // wrong kind
		"declaration/configuration/com.nope":      404,
		"declaration/configuration":               400,
		"declaration//x":                          400,
		"nonsense":                                400,
		"status":                                  400, // no Data
	} {
		if _, err := s.Serve(ctx, enr, endpoint, nil); httperr.StatusOf(err) != want {
			t.Errorf("%s: %v, want %d", endpoint, err, want)
		}
	}

	// Changing the content changes its ServerToken and the set's token;
	// putting the same content again changes neither.
	same := mustPut(t, s, testConfig)
	if same.ServerToken != conf.ServerToken || token() != assigned {
		t.Error("the same content got a new token")
	}
	changed := mustPut(t, s, strings.Replace(testConfig, "hello", "bye", 1))
	if changed.ServerToken == conf.ServerToken || token() == assigned {
		t.Error("changed content kept its token")
	}
	// A deleted declaration leaves the set.
	if err := s.Delete(ctx, "com.example.act"); err != nil {
		t.Fatal(err)
	}
	if ds, _, _ := s.Assigned(ctx, enr); len(ds) != 1 || ds[0].Identifier != "com.example.test" {
		t.Errorf("after delete: %+v", ds)
	}
	if err := s.Assign(ctx, enr, []string{"com.example.missing"}); httperr.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("assigning an undefined declaration: %v", err)
	}
}

// TestStatus: status reports are checked against Apple's StatusReport
// schema and merged, dictionaries key by key.
func TestStatus(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	report := func(body string) error {
		_, err := s.Serve(ctx, "E", "status", []byte(body))
		return err
	}
	if err := report(`{"StatusItems":{"device":{"operating-system":{"version":"18.1"}}},"Errors":[],"FullReport":true}`); err != nil {
		t.Fatal(err)
	}
	if err := report(`{"StatusItems":{"device":{"model":{"family":"iPad"}}},"Errors":[]}`); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, "E")
	if err != nil {
		t.Fatal(err)
	}
	dev := st.StatusItems["device"].(map[string]any)
	if dev["operating-system"] == nil || dev["model"] == nil {
		t.Errorf("merged status items: %v", st.StatusItems)
	}
	for name, body := range map[string]string{
		"not JSON":          `{`,
		"no StatusItems":    `{"Errors":[]}`,
		"no Errors":         `{"StatusItems":{}}`,
		"Errors not array":  `{"StatusItems":{},"Errors":{}}`,
		"FullReport string": `{"StatusItems":{},"Errors":[],"FullReport":"yes"}`,
		"array":             `[]`,
		"trailing data":     `{"StatusItems":{},"Errors":[]}0`,
	} {
		if err := report(body); httperr.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	if err := report(`{"StatusItems":{},"Errors":[],"pad":"` + strings.Repeat("x", MaxDeclarationSize) + `"}`); httperr.StatusOf(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("huge report: %v", err)
	}
	if _, err := s.Status(ctx, "nobody"); httperr.StatusOf(err) != http.StatusNotFound {
		t.Errorf("status of an enrollment that never reported: %v", err)
	}
}

// TestParseDeclarationHostile: each bad declaration is a 4xx that says what
// is wrong.
func TestParseDeclarationHostile(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{`, "not the JSON object"},
		{"unknown field", `{"Type":"com.apple.configuration.management.test","Identifier":"a","Payload":{"Echo":"x"},"Extra":1}`, "unknown field"},
		{"no identifier", `{"Type":"com.apple.configuration.management.test","Payload":{"Echo":"x"}}`, "Identifier is missing"},
		{"slash", `{"Type":"com.apple.configuration.management.test","Identifier":"a/b","Payload":{"Echo":"x"}}`, "path segment"},
		{"long identifier", `{"Type":"com.apple.configuration.management.test","Identifier":"` + strings.Repeat("a", 257) + `","Payload":{"Echo":"x"}}`, "at most 256"},
		{"not a declaration", `{"Type":"com.apple.wifi.managed","Identifier":"a","Payload":{}}`, "not a declaration type"},
		{"unknown type", `{"Type":"com.apple.configuration.nothing","Identifier":"a","Payload":{}}`, "not a declaration type in Apple's schemas"},
		{"missing required key", `{"Type":"com.apple.configuration.management.test","Identifier":"a","Payload":{}}`, "Echo"},
		{"wrong type", `{"Type":"com.apple.configuration.management.test","Identifier":"a","Payload":{"Echo":5}}`, "Echo"},
		{"trailing JSON", testConfig + `{}`, "followed by more"},
		{"trailing bracket", testConfig + `]`, "followed by more"},
		{"payload not object", `{"Type":"com.apple.configuration.management.test","Identifier":"a","Payload":[]}`, "not the JSON object"},
	} {
		_, err := ParseDeclaration([]byte(tc.body))
		if err == nil || httperr.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 400 mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := ParseDeclaration(make([]byte, MaxDeclarationSize+1)); httperr.StatusOf(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("huge declaration: %v", err)
	}
}

// FuzzParseDeclaration: declarations never panic; a refusal is a 4xx; an
// accepted one has a kind and a server token, and parses the same again.
func FuzzParseDeclaration(f *testing.F) {
	for _, s := range []string{testConfig, testActivation, `{}`, `{"Type":"com.apple.asset.data","Identifier":"x","Payload":{"Reference":{"DataURL":"https://example.com/a","ContentType":"text/plain"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := ParseDeclaration(body)
		if err != nil {
			if st := httperr.StatusOf(err); st < 400 || st >= 500 {
				t.Fatalf("refusal with status %d: %v", st, err)
			}
			return
		}
		if KindOf(d.Type) == "" || d.ServerToken == "" {
			t.Fatalf("accepted without kind or token: %+v", d)
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseDeclaration(again)
		if err != nil || d2.ServerToken != d.ServerToken {
			t.Fatalf("does not round-trip: %v (%s vs %s)", err, d2, d.ServerToken)
		}
	})
}

// FuzzServeStatus: any status report a device sends is stored or refused
// with a 4xx, never a panic or a 5xx.
func FuzzServeStatus(f *testing.F) {
	f.Add([]byte(`{"StatusItems":{"management":{"declarations":{"activations":[],"configurations":[],"assets":[],"management":[]}}},"Errors":[],"FullReport":true}`))
	f.Add([]byte(`{"StatusItems":{},"Errors":[{"StatusItem":"x","Reasons":[{"Code":"c"}]}]}`))
	f.Add([]byte(`{"StatusItems":{"a":{"b":1}},"Errors":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := New(memory.New())
		for i := 0; i < 2; i++ { // the second merges into the first
			if _, err := s.Serve(context.Background(), "E", "status", body); err != nil {
				if st := httperr.StatusOf(err); st < 400 || st >= 500 {
					t.Fatalf("refusal with status %d: %v", st, err)
				}
				return
			}
		}
	})
}
