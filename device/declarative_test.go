package device

import (
	"strings"
	"testing"
)

// TestEvaluateDeclarations: valid means Apple's schema knows the type and
// accepts the payload; an activation is active only when every
// configuration it lists is held and valid; a configuration only through
// an active activation; an asset only when an active configuration names
// it; a management declaration when valid. An activation's Predicate, over
// the device's status items, must be true too.
func TestEvaluateDeclarations(t *testing.T) {
	ds := []*heldDeclaration{
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.ok", Payload: map[string]any{"StandardConfigurations": []any{"conf.ok"}}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.missing", Payload: map[string]any{"StandardConfigurations": []any{"conf.ok", "conf.nowhere"}}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.bad", Payload: map[string]any{"StandardConfigurations": []any{"conf.bad"}}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.ok", Payload: map[string]any{"Echo": "hi", "ReturnStatus": "Installed"}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.bad", Payload: map[string]any{"Echo": 3.0}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.idle", ServerToken: "t9", Payload: map[string]any{"Echo": "x"}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.fail", Payload: map[string]any{"StandardConfigurations": []any{"conf.fail"}}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.fail", Payload: map[string]any{"Echo": "x", "ReturnStatus": "Failed"}},
		{Kind: "configuration", Type: "com.apple.configuration.unheard-of", Identifier: "conf.unknown", Payload: map[string]any{}},
		{Kind: "management", Type: "com.apple.management.organization-info", Identifier: "mgmt", Payload: map[string]any{"Name": "Example Org"}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.ipad", Payload: map[string]any{"StandardConfigurations": []any{"conf.ipad"}, "Predicate": `@status(device.model.family) == "iPad"`}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.ipad", Payload: map[string]any{"Echo": "iPad"}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.mac", Payload: map[string]any{"StandardConfigurations": []any{"conf.mac"}, "Predicate": `@status(device.model.family) == "Mac"`}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.mac", Payload: map[string]any{"Echo": "Mac"}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.unparsable", Payload: map[string]any{"StandardConfigurations": []any{"conf.mac"}, "Predicate": `model.family == "Mac"`}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.unparsable.missing", Payload: map[string]any{"StandardConfigurations": []any{"conf.nowhere"}, "Predicate": `((`}},
	}
	got := evaluate(ds, map[string]any{"device.model.family": "iPad"}, nil)
	want := map[string]declStatus{
		"act.ok":   {active: true, valid: "valid"},
		"act.bad":  {active: false, valid: "valid"},
		"conf.ok":  {active: true, valid: "valid"},
		"conf.bad": {active: false, valid: "invalid"},
		// What a Mac reports (KMFDDM's guide): unreferenced, validity
		// unknown; Apple's test configuration failing on request, still
		// active.
		"conf.idle":    {active: false, valid: "unknown", code: "Info.NotReferencedByActivation"},
		"conf.fail":    {active: true, valid: "invalid", code: "Error.ConfigurationCannotBeApplied"},
		"conf.unknown": {active: false, valid: "invalid"},
		"mgmt":         {active: true, valid: "valid"},
		// The Predicate decides: true on this iPad, false, and one the
		// device cannot parse (Apple's reason codes).
		"act.ipad":       {active: true, valid: "valid"},
		"conf.ipad":      {active: true, valid: "valid"},
		"act.mac":        {active: false, valid: "valid", code: "Info.Predicate"},
		"conf.mac":       {active: false, valid: "valid"},
		"act.unparsable": {active: false, valid: "invalid", code: "Error.UnableToParsePredicate"},
		// Invalid for its predicate, whatever it lists.
		"act.unparsable.missing": {active: false, valid: "invalid", code: "Error.UnableToParsePredicate"},
		"act.missing":            {active: false, valid: "valid", code: "Error.MissingConfigurations"},
	}
	if g := got["conf.idle"]; g.reason != "Configuration \u201cconf.idle:t9\u201d is not referenced by an activation." ||
		g.details["Identifier"] != "conf.idle" || g.details["ServerToken"] != "t9" {
		t.Errorf("conf.idle's reason: %q %v", g.reason, g.details)
	}
	if g := got["conf.fail"]; g.reason != "Configuration cannot be applied" || g.details["Error"] != "An internal error has occurred." {
		t.Errorf("conf.fail's reason: %q %v", g.reason, g.details)
	}
	for id, w := range want {
		g := got[id]
		if g.active != w.active || g.valid != w.valid || w.code != "" && g.code != w.code {
			t.Errorf("%s: active %v valid %s %s (%s), want active %v valid %s %s", id, g.active, g.valid, g.code, g.reason, w.active, w.valid, w.code)
		}
		if w.code == "Info.Predicate" || w.code == "Error.UnableToParsePredicate" {
			if g.details["Predicate"] == nil || g.details["Identifier"] != id {
				t.Errorf("%s: the reason's details %v do not name the activation and its predicate", id, g.details)
			}
		}
		if g.valid == "invalid" && g.reason == "" {
			t.Errorf("%s: invalid without a reason", id)
		}
	}
}

// TestSyncDeclarationsHostileServer: whatever a server answers to the
// declarative check-ins, a sync ends with an error that says what was
// wrong (kept as the channel's last error), never a panic or a runaway
// fetch, and what the device held before stays held.
func TestSyncDeclarationsHostileServer(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options(), WithModel(IPad))
	const items = `{"Declarations":{"Activations":[],"Configurations":[{"Identifier":"c","ServerToken":"1"}],"Assets":[],"Management":[]},"DeclarationsToken":"t1"}`
	good := func(endpoint string) (int, string) {
		switch endpoint {
		case "tokens":
			return 200, `{"SyncTokens":{"DeclarationsToken":"t1","Timestamp":"2026-12-02T00:00:00Z"}}`
		case "declaration-items":
			return 200, items
		case "declaration/configuration/c":
			return 200, `{"Type":"com.apple.configuration.management.test","Identifier":"c","ServerToken":"1","Payload":{"Echo":"x"}}`
		}
		return 200, ""
	}
	f.dm = good
	if err := d.SyncDeclarations(ctx(t), ""); err != nil {
		t.Fatalf("a good sync: %v", err)
	}
	if held, _, _ := d.Declarations(""); len(held) != 1 || held[0].Identifier != "c" || held[0].Valid != "unknown" {
		t.Fatalf("held: %+v", held)
	}
	many := `{"Declarations":{"Activations":[],"Configurations":[` + strings.Repeat(`{"Identifier":"x","ServerToken":"1"},`, maxDeclarations) + `{"Identifier":"y","ServerToken":"1"}],"Assets":[],"Management":[]},"DeclarationsToken":"t2"}`
	for name, tc := range map[string]struct {
		endpoint, body string
		status         int
		want           string
	}{
		"tokens not JSON":        {"tokens", "<plist/>", 200, "not the JSON"},
		"tokens without a token": {"tokens", `{"SyncTokens":{}}`, 200, "DeclarationsToken"},
		"tokens refused":         {"tokens", `{}`, 500, "refused"},
		"items missing a kind":   {"declaration-items", `{"Declarations":{"Activations":[]},"DeclarationsToken":"t2"}`, 200, "all four are required"},
		"too many items":         {"declaration-items", many, 200, "at most"},
		"declaration of another": {"declaration/configuration/c", `{"Type":"com.apple.configuration.management.test","Identifier":"z","ServerToken":"2","Payload":{}}`, 200, `got "z"`},
		"declaration not JSON":   {"declaration/configuration/c", "{", 200, "not the JSON"},
		"status refused":         {"status", "", 400, "refused"},
	} {
		t.Run(name, func(t *testing.T) {
			f.dm = func(endpoint string) (int, string) {
				if endpoint == "tokens" && tc.endpoint != "tokens" {
					return 200, `{"SyncTokens":{"DeclarationsToken":"t2","Timestamp":"2026-12-02T00:00:00Z"}}`
				}
				if endpoint == "declaration-items" && tc.endpoint != "declaration-items" {
					return 200, strings.Replace(strings.Replace(items, `"ServerToken":"1"`, `"ServerToken":"2"`, 1), "t1", "t2", 1)
				}
				if endpoint == tc.endpoint {
					return tc.status, tc.body
				}
				return good(endpoint)
			}
			err := d.SyncDeclarations(ctx(t), "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.want)
			}
			held, _, lastErr := d.Declarations("")
			if lastErr == "" || len(held) != 1 || held[0].ServerToken != "1" {
				t.Errorf("after a failed sync: held %+v, last error %q", held, lastErr)
			}
		})
	}
}
