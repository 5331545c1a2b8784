package device_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestDeclaredApps: app.managed configurations install the apps they
// require and offer the optional ones; app.managed.list (passing Apple's
// schema) reports each with its state, and the App Store apps with no
// license or a bad ID as failed with Apple's reason codes. A configuration
// naming two sources is invalid, one naming an app already managed fails.
// The installed apps show in InstalledApplicationList but not in mdm.app,
// RemoveApplication cannot take them, Save/Load keep them, and they go
// when their configuration does.
func TestDeclaredApps(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithOS("18.1", "22B83"))
	srv.Enroll(dev)
	if r := srv.Run(dev, map[string]any{"RequestType": "InstallApplication", "Identifier": "com.example.mdmapp"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallApplication: %+v", r)
	}
	license := map[string]any{"Assignment": "Device"}
	app := func(id string, payload map[string]any) api.Declaration {
		return api.Declaration{Type: "com.apple.configuration.app.managed", Identifier: id, Payload: payload}
	}
	required := func(license map[string]any) map[string]any {
		b := map[string]any{"Install": "Required"}
		if license != nil {
			b["License"] = license
		}
		return b
	}
	apps := []api.Declaration{
		app("app.notes", map[string]any{"BundleID": "com.example.notes", "InstallBehavior": required(license)}),
		app("app.optional", map[string]any{"AppStoreID": "361309726", "InstallBehavior": map[string]any{"License": license}}),
		app("app.nolicense", map[string]any{"AppStoreID": "12345", "InstallBehavior": required(nil)}),
		app("app.badid", map[string]any{"AppStoreID": "not-a-number", "InstallBehavior": required(license)}),
		app("app.enterprise", map[string]any{"ManifestURL": "https://apps.example.com/manifest.plist", "InstallBehavior": required(nil)}),
		app("app.two", map[string]any{"BundleID": "com.example.two", "ManifestURL": "https://apps.example.com/two.plist"}),
		app("app.plainhttp", map[string]any{"ManifestURL": "http://apps.example.com/manifest.plist"}),
		app("z.notes-again", map[string]any{"BundleID": "com.example.notes", "InstallBehavior": required(license)}),
		app("z.mdmapp", map[string]any{"BundleID": "com.example.mdmapp", "InstallBehavior": required(license)}),
	}
	var confs []any
	for _, a := range apps {
		confs = append(confs, a.Identifier)
	}
	decls := append(apps,
		api.Declaration{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status", Payload: map[string]any{"StatusItems": []any{
			map[string]any{"Name": "app.managed.list"}, map[string]any{"Name": "mdm.app"}}}},
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": append(confs, "conf.status")}})
	got := assignAndReport(t, srv, dev, decls...)

	list, _ := got.Status.StatusItems["app"].(map[string]any)["managed"].(map[string]any)["list"].([]any)
	s, _ := schema.StatusItem("app.managed.list")
	if probs := s.ValidateFor("iOS", "18.1", s.PayloadKeys, map[string]any{"app.managed.list": schema.FromJSON(list)}, ""); len(probs) > 0 {
		t.Errorf("app.managed.list breaks Apple's schema: %v\n%v", probs, list)
	}
	byDecl := map[string]map[string]any{}
	for _, e := range list {
		e := e.(map[string]any)
		byDecl[e["declaration-identifier"].(string)] = e
	}
	reasonCode := func(e map[string]any) string {
		r, _ := e["reasons"].([]any)
		if len(r) != 1 {
			return ""
		}
		return r[0].(map[string]any)["code"].(string)
	}
	for decl, want := range map[string]struct{ id, state, code string }{
		"app.notes":      {"com.example.notes", "managed", ""},
		"app.optional":   {"com.example.app361309726", "optional", ""},
		"app.nolicense":  {"", "failed", "Error.LicenseNotFound"},
		"app.badid":      {"", "failed", "Error.InvalidAppID"},
		"app.enterprise": {"", "managed", ""},
	} {
		e := byDecl[decl]
		if e == nil || e["state"] != want.state || reasonCode(e) != want.code || (want.id != "" && e["identifier"] != want.id) {
			t.Errorf("%s in app.managed.list: %v, want state %s, reason %q, identifier %q", decl, e, want.state, want.code, want.id)
		}
	}
	if e := byDecl["app.optional"]; e != nil && e["external-version-id"] != nil {
		t.Errorf("the App Store app's external-version-id: %v (a virtual device knows no store version)", e)
	}
	for _, decl := range []string{"app.two", "app.plainhttp", "z.notes-again", "z.mdmapp"} {
		if byDecl[decl] != nil {
			t.Errorf("%s failed but is listed: %v", decl, byDecl[decl])
		}
	}

	status := map[string]map[string]any{}
	for _, c := range got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["configurations"].([]any) {
		c := c.(map[string]any)
		status[c["identifier"].(string)] = c
	}
	for decl, want := range map[string]struct {
		valid, code, mentions string
	}{
		"app.notes":      {"valid", "", ""},
		"app.two":        {"invalid", "Error.ConfigurationIsInvalid", "exactly one"},
		"app.plainhttp":  {"invalid", "Error.ConfigurationIsInvalid", "https"},
		"z.notes-again":  {"valid", "Error.ConfigurationCannotBeApplied", "Error.DuplicateConfiguredApp"},
		"z.mdmapp":       {"valid", "Error.ConfigurationCannotBeApplied", "InstallApplication"},
		"app.nolicense":  {"valid", "", ""},
		"app.enterprise": {"valid", "", ""},
	} {
		c := status[decl]
		if c == nil || c["valid"] != want.valid || reasonCode(c) != want.code || (want.code == "") != (c["active"] == true) ||
			(want.mentions != "" && !strings.Contains(c["reasons"].([]any)[0].(map[string]any)["description"].(string), want.mentions)) {
			t.Errorf("%s's status: %v, want valid %s, reason %s mentioning %q", decl, c, want.valid, want.code, want.mentions)
		}
	}
	mdmApps, _ := got.Status.StatusItems["mdm"].(map[string]any)["app"].([]any)
	if len(mdmApps) != 1 || mdmApps[0].(map[string]any)["identifier"] != "com.example.mdmapp" {
		t.Errorf("mdm.app: %v, want only the app InstallApplication installed", mdmApps)
	}

	installed := func(d *device.Device) []string {
		t.Helper()
		r := srv.Run(d, &mdm.InstalledApplicationList{ManagedAppsOnly: true})
		var res struct{ InstalledApplicationList []struct{ Identifier string } }
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatalf("InstalledApplicationList: %+v %v", r, err)
		}
		var ids []string
		for _, a := range res.InstalledApplicationList {
			ids = append(ids, a.Identifier)
		}
		return ids
	}
	ids := strings.Join(installed(dev), " ")
	if !strings.Contains(ids, "com.example.notes") || !strings.Contains(ids, "com.example.enterprise.") || strings.Contains(ids, "361309726") || strings.Contains(ids, "12345") {
		t.Errorf("InstalledApplicationList: %s, want the required apps installed and neither the optional nor the failed ones", ids)
	}
	r := srv.Run(dev, map[string]any{"RequestType": "RemoveApplication", "Identifier": "com.example.notes"})
	if r.Status != mdm.StatusError || len(r.ErrorChain) == 0 || r.ErrorChain[0].ErrorCode != device.ErrCodeAppOfDeclaration {
		t.Errorf("RemoveApplication of a declared app: %+v, want error %d", r, device.ErrCodeAppOfDeclaration)
	}

	path := filepath.Join(t.TempDir(), "ipad.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(back, map[string]any{"RequestType": "RemoveApplication", "Identifier": "com.example.notes"}); r.Status != mdm.StatusError ||
		len(r.ErrorChain) == 0 || r.ErrorChain[0].ErrorCode != device.ErrCodeAppOfDeclaration {
		t.Errorf("after Save/Load, RemoveApplication of a declared app: %+v", r)
	}

	// Its configuration gone, the app goes; the MDM command's app stays.
	ctx := t.Context()
	if _, err := srv.Client().SetDeclarations(ctx, back.UDID(), "app.optional", "act"); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(back, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if ids := strings.Join(installed(back), " "); strings.Contains(ids, "com.example.notes") || strings.Contains(ids, "enterprise") || !strings.Contains(ids, "com.example.mdmapp") {
		t.Errorf("after the configurations went: %s, want only com.example.mdmapp", ids)
	}

	// The original (saved above, still holding its declared apps) leaves
	// its enrollment: the declared apps go with the declarations; the MDM
	// command's app is not theirs to take.
	if !dev.IsAppManaged("com.example.notes") {
		t.Fatal("the original lost its declared app before unenrolling")
	}
	if err := dev.Unenroll(ctx); err != nil {
		t.Fatal(err)
	}
	if dev.IsAppManaged("com.example.notes") || !dev.IsAppManaged("com.example.mdmapp") {
		t.Errorf("after unenrolling: declared app managed %v (want false), MDM app managed %v (want true)",
			dev.IsAppManaged("com.example.notes"), dev.IsAppManaged("com.example.mdmapp"))
	}
}

// TestDeclaredAppsFollowPredicates: with no new declarations, a sync still
// looks at what the device acts on: an activation whose predicate turns
// false takes its required app away, and turning true again installs it.
// An app's configuration keeps it when a newcomer, first by identifier,
// names the same app: the newcomer fails.
func TestDeclaredAppsFollowPredicates(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithOS("18.1", "22B83"))
	srv.Enroll(dev)
	if err := dev.SetStatusItem("test.boolean-value", true); err != nil {
		t.Fatal(err)
	}
	notes := func(id string) api.Declaration {
		return api.Declaration{Type: "com.apple.configuration.app.managed", Identifier: id, Payload: map[string]any{"BundleID": "com.example.notes",
			"InstallBehavior": map[string]any{"Install": "Required", "License": map[string]any{"Assignment": "Device"}}}}
	}
	assignAndReport(t, srv, dev, notes("m.notes"),
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"m.notes"},
			"Predicate": "@status(test.boolean-value) == TRUE"}})
	if !dev.IsAppManaged("com.example.notes") {
		t.Fatal("the required app was not installed")
	}
	sync := func() {
		t.Helper()
		if err := dev.SyncDeclarations(t.Context(), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.SetStatusItem("test.boolean-value", false); err != nil {
		t.Fatal(err)
	}
	sync()
	if dev.IsAppManaged("com.example.notes") {
		t.Error("the predicate turned false, yet the app stayed")
	}
	if err := dev.SetStatusItem("test.boolean-value", true); err != nil {
		t.Fatal(err)
	}
	sync()
	if !dev.IsAppManaged("com.example.notes") {
		t.Error("the predicate turned true again, yet the app was not installed")
	}

	// A newcomer first by identifier names the same app: it fails, and
	// m.notes keeps the app.
	got := assignAndReport(t, srv, dev, notes("a.notes"), notes("m.notes"),
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"a.notes", "m.notes"}}})
	for _, c := range got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["configurations"].([]any) {
		c := c.(map[string]any)
		if active := c["active"] == true; active != (c["identifier"] == "m.notes") {
			t.Errorf("%s: %v, want m.notes (which installed the app) active and a.notes failed", c["identifier"], c)
		}
	}
	list, _ := got.Status.StatusItems["app"].(map[string]any)
	if list != nil {
		t.Errorf("app.managed.list reported without a subscription: %v", list)
	}
}
