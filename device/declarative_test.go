package device

import (
	"slices"
	"strings"
	"sync"
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

// TestSyncRetriesAndReportsChanges: with the DeclarationsToken unchanged, a
// sync tries again the legacy profile that failed, and sends a status
// report only when it differs from the last one the server took — so a
// report the server refused goes out at the next sync, and an unchanged
// one does not go out at all.
func TestSyncRetriesAndReportsChanges(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options(), WithModel(IPad), WithSupervised(true))
	profileURL := f.srv.URL + "/enroll" // serves the enrollment profile for now: a legacy install fails
	var (
		mu         sync.Mutex
		reports    []string
		refuseNext bool
	)
	f.dm = func(endpoint string) (int, string) {
		switch endpoint {
		case "tokens":
			return 200, `{"SyncTokens":{"DeclarationsToken":"t1","Timestamp":"2026-12-02T00:00:00Z"}}`
		case "declaration-items":
			return 200, `{"Declarations":{"Activations":[{"Identifier":"a","ServerToken":"1"}],"Configurations":[{"Identifier":"c","ServerToken":"1"}],"Assets":[],"Management":[]},"DeclarationsToken":"t1"}`
		case "declaration/activation/a":
			return 200, `{"Type":"com.apple.activation.simple","Identifier":"a","ServerToken":"1","Payload":{"StandardConfigurations":["c"]}}`
		case "declaration/configuration/c":
			return 200, `{"Type":"com.apple.configuration.legacy","Identifier":"c","ServerToken":"1","Payload":{"ProfileURL":"` + profileURL + `"}}`
		}
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, endpoint)
		if refuseNext {
			refuseNext = false
			return 500, ""
		}
		return 200, ""
	}
	sent := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(reports)
	}
	active := func() bool {
		held, _, _ := d.Declarations("")
		for _, h := range held {
			if h.Identifier == "c" {
				return h.Active
			}
		}
		t.Fatal("c is not held")
		return false
	}
	syncNow := func() error { return d.SyncDeclarations(ctx(t), "") }

	if err := syncNow(); err != nil || sent() != 1 || active() {
		t.Fatalf("first sync: %v, %d reports, c active %v (want the legacy profile failed)", err, sent(), active())
	}
	if err := syncNow(); err != nil || sent() != 1 {
		t.Fatalf("a sync with nothing changed: %v, %d reports, want still 1", err, sent())
	}
	// Fixed on the server; the next report is refused.
	f.serve(inertProfile(t, "com.example.legacy"))
	mu.Lock()
	refuseNext = true
	mu.Unlock()
	if err := syncNow(); err == nil || sent() != 2 || !active() {
		t.Fatalf("the retry whose report is refused: %v, %d reports, c active %v", err, sent(), active())
	}
	if err := syncNow(); err != nil || sent() != 3 {
		t.Fatalf("after the refused report: %v, %d reports, want 3 (it goes out again)", err, sent())
	}
	if err := syncNow(); err != nil || sent() != 3 {
		t.Fatalf("once taken: %v, %d reports, want still 3", err, sent())
	}
	if p := d.st.findProfile("com.example.legacy", ""); p == nil || p.Declaration != "c" {
		t.Errorf("the legacy profile: %+v", p)
	}
}

// TestAssetReferences: references are the string values of the keys
// Apple's schema marks with assettypes — nested in dictionaries, in arrays
// of dictionaries, and in a list marked on the array key itself — and
// nothing else.
func TestAssetReferences(t *testing.T) {
	for _, c := range []struct {
		h    heldDeclaration
		want []string
	}{
		{heldDeclaration{Type: "com.apple.configuration.account.exchange", Payload: map[string]any{
			"EnabledProtocolTypes": []any{"EAS"}, "VisibleName": "asset.not", "UserIdentityAssetReference": "asset.user",
			"SMIME": map[string]any{"Signing": map[string]any{"IdentityAssetReference": "asset.sign"}, "Encryption": map[string]any{"IdentityAssetReference": "asset.user"}},
		}}, []string{"asset.user", "asset.sign"}},
		{heldDeclaration{Type: "com.apple.configuration.watch.enrollment", Payload: map[string]any{
			"EnrollmentProfileURL": "https://example.com/p", "AnchorCertificateAssetReferences": []any{"asset.a1", "asset.a2"},
		}}, []string{"asset.a1", "asset.a2"}},
		{heldDeclaration{Type: "com.apple.configuration.management.test", Payload: map[string]any{"Echo": "asset.user"}}, nil},
		{heldDeclaration{Type: "com.apple.configuration.unheard-of", Payload: map[string]any{"X": "asset.user"}}, nil},
	} {
		if got := assetReferences(&c.h); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.h.Type, got, c.want)
		}
	}
}

// TestRemoveProfileByChannel: removing a profile takes the roots and
// identities of its identifier on its own channel only; and a file saved
// before they recorded their channel gives them their profile's.
func TestRemoveProfileByChannel(t *testing.T) {
	c := getPKI(t).otherCA.Cert
	device := &ProfileInfo{Identifier: "p"}
	ann := &ProfileInfo{Identifier: "p", User: "ann"}
	st := &state{
		profiles:   []*ProfileInfo{device, ann},
		roots:      []trustedRoot{{cert: c, profileID: "p"}, {cert: c, profileID: "p", user: "ann"}},
		identities: []*identity{{profileID: "p", cert: c}, {profileID: "p", user: "ann", cert: c}},
	}
	st.removeProfile(ann)
	if len(st.roots) != 1 || st.roots[0].user != "" || len(st.identities) != 1 || st.identities[0].user != "" {
		t.Fatalf("after removing ann's copy: roots %+v, identities %+v", st.roots, st.identities)
	}

	old := &state{
		profiles: []*ProfileInfo{{Identifier: "only.ann", User: "ann"}, {Identifier: "both"}, {Identifier: "both", User: "ann"},
			{Identifier: "two.users", User: "ann"}, {Identifier: "two.users", User: "bob"}},
		roots:      []trustedRoot{{cert: c, profileID: "only.ann"}, {cert: c, profileID: "both"}, {cert: c, profileID: "two.users"}},
		identities: []*identity{{profileID: "only.ann", cert: c}, {profileID: "both", cert: c}},
	}
	old.channelsOfOldFiles()
	if got := []string{old.roots[0].user, old.roots[1].user, old.roots[2].user, old.identities[0].user, old.identities[1].user}; !slices.Equal(got, []string{"ann", "", "", "ann", ""}) {
		t.Errorf("channels given to an old file's roots and identities: %q", got)
	}
}

// TestStatusItemAllowed: a status item is the device's to report only as
// Apple's schema gives it — by OS and version, scope (system for the device
// channel, user for a user's, a Shared iPad's own rule) and enrollment.
func TestStatusItemAllowed(t *testing.T) {
	iPad := &Device{model: IPad, osVersion: IPad.OSVersion, supervised: true}
	shared := &Device{model: IPad, osVersion: IPad.OSVersion, supervised: true, sharedIPad: true}
	mac := &Device{model: Mac, osVersion: Mac.OSVersion}
	for _, c := range []struct {
		name     string
		d        *Device
		item     string
		user     string
		ue, want bool
	}{
		{"an iPad's UDID", iPad, "device.identifier.udid", "", false, true},
		{"under User Enrollment", iPad, "device.identifier.udid", "", true, false},
		{"a Shared iPad user's", shared, "device.identifier.udid", "ann", false, true},
		{"battery health on a Mac", mac, "device.power.battery-health", "", false, true},
		{"battery health on a Mac user's channel", mac, "device.power.battery-health", "ann", false, false},
		{"a passcode on a Mac", mac, "passcode.is-present", "", false, false},
		{"an unsupervised Mac's UDID", mac, "device.identifier.udid", "", false, true},
		{"no such item", iPad, "no.such-item", "", false, false},
	} {
		if got := c.d.statusItemAllowed(c.item, c.user, c.ue); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestInstallClearsReachedEnforcement: an update installed otherwise (a
// ScheduleOSUpdate) that reaches an enforced version leaves nothing pending;
// one that does not reach it leaves the enforcement pending.
func TestInstallClearsReachedEnforcement(t *testing.T) {
	d := &Device{model: IPad, osVersion: "18.1", build: "22B83"}
	d.st.enforced = &enforcedUpdate{declaration: "c", version: "18.3"}
	d.st.downloaded = []string{"iPadOSUpdate18.2"}
	d.installUpdateLocked(osUpdate{version: "18.2", build: "22C1"})
	if d.st.enforced == nil || d.st.downloaded != nil || d.osVersion != "18.2" {
		t.Fatalf("after 18.2: enforced %+v, downloaded %v, OS %s", d.st.enforced, d.st.downloaded, d.osVersion)
	}
	d.installUpdateLocked(osUpdate{version: "18.3", build: "22D1"})
	if d.st.enforced != nil {
		t.Errorf("after 18.3 the enforcement of 18.3 is still pending: %+v", d.st.enforced)
	}
}
