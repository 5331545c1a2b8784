package device

import "testing"

// TestEvaluateDeclarations: valid means Apple's schema knows the type and
// accepts the payload; an activation is active only when every
// configuration it lists is held and valid; a configuration only through
// an active activation; an asset only when an active configuration names
// it; a management declaration when valid.
func TestEvaluateDeclarations(t *testing.T) {
	ds := []*heldDeclaration{
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.ok", Payload: map[string]any{"StandardConfigurations": []any{"conf.ok"}}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.missing", Payload: map[string]any{"StandardConfigurations": []any{"conf.ok", "conf.nowhere"}}},
		{Kind: "activation", Type: "com.apple.activation.simple", Identifier: "act.bad", Payload: map[string]any{"StandardConfigurations": []any{"conf.bad"}}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.ok", Payload: map[string]any{"Echo": "hi", "ReturnStatus": "Installed"}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.bad", Payload: map[string]any{"Echo": 3.0}},
		{Kind: "configuration", Type: "com.apple.configuration.management.test", Identifier: "conf.idle", Payload: map[string]any{"Echo": "x"}},
		{Kind: "configuration", Type: "com.apple.configuration.unheard-of", Identifier: "conf.unknown", Payload: map[string]any{}},
		{Kind: "management", Type: "com.apple.management.organization-info", Identifier: "mgmt", Payload: map[string]any{"Name": "Example Org"}},
	}
	got := evaluate(ds)
	want := map[string]declStatus{
		"act.ok":       {active: true, valid: "valid"},
		"act.missing":  {active: false, valid: "valid"},
		"act.bad":      {active: false, valid: "valid"},
		"conf.ok":      {active: true, valid: "valid"},
		"conf.bad":     {active: false, valid: "invalid"},
		"conf.idle":    {active: false, valid: "valid"},
		"conf.unknown": {active: false, valid: "invalid"},
		"mgmt":         {active: true, valid: "valid"},
	}
	for id, w := range want {
		g := got[id]
		if g.active != w.active || g.valid != w.valid {
			t.Errorf("%s: active %v valid %s (%s), want active %v valid %s", id, g.active, g.valid, g.reason, w.active, w.valid)
		}
		if g.valid == "invalid" && g.reason == "" {
			t.Errorf("%s: invalid without a reason", id)
		}
	}
}
