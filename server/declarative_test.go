package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestDeclarativeManagementEndToEnd: a tester defines declarations and
// gives them to an enrollment; the DeclarativeManagement command makes the
// virtual device sync them through the check-in endpoint and report its
// status, which the API shows and Apple's status schema accepts; a changed
// declaration is fetched again, an unchanged one is not, a removed one is
// dropped; a Shared iPad user's channel has declarations of its own.
func TestDeclarativeManagementEndToEnd(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithSharedIPad(true))
	srv.Enroll(dev)

	config := api.Declaration{Type: "com.apple.configuration.management.test", Identifier: "com.example.test", Payload: map[string]any{"Echo": "hello"}}
	act := api.Declaration{Type: "com.apple.activation.simple", Identifier: "com.example.act", Payload: map[string]any{"StandardConfigurations": []any{"com.example.test"}}}
	for _, d := range []api.Declaration{config, act} {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "com.example.act", "com.example.test"); err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
			t.Fatalf("DeclarativeManagement: %+v", r)
		}
		if _, _, lastErr := dev.Declarations(""); lastErr != "" {
			t.Fatalf("the device's sync failed: %s", lastErr)
		}
	}
	sync()
	held, syncs, _ := dev.Declarations("")
	if syncs != 1 || len(held) != 2 {
		t.Fatalf("after the first sync: %d syncs, %+v", syncs, held)
	}
	for _, h := range held {
		if !h.Active || h.Valid != "valid" {
			t.Errorf("%s: active %v valid %s (%s)", h.Identifier, h.Active, h.Valid, h.Reason)
		}
	}
	got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil {
		t.Fatal(err)
	}
	checkStatusReport(t, got)
	decls := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)
	confs := decls["configurations"].([]any)
	if len(confs) != 1 || confs[0].(map[string]any)["identifier"] != "com.example.test" || confs[0].(map[string]any)["active"] != true {
		t.Errorf("reported configurations: %v", confs)
	}
	mgmt := got.Status.StatusItems["management"].(map[string]any)
	for name, item := range map[string]any{"management.declarations": decls, "management.client-capabilities": mgmt["client-capabilities"]} {
		si, ok := schema.StatusItem(name)
		if !ok {
			t.Fatalf("no status item schema %s", name)
		}
		if probs := schema.ValidateDict(si.PayloadKeys, map[string]any{name: item}, ""); len(probs) > 0 {
			t.Errorf("%s breaks Apple's schema: %v", name, probs)
		}
	}
	caps, _ := mgmt["client-capabilities"].(map[string]any)
	payloads, _ := caps["supported-payloads"].(map[string]any)
	confTypes, _ := payloads["declarations"].(map[string]any)["configurations"].([]any)
	hasTest := false
	for _, c := range confTypes {
		hasTest = hasTest || c == "com.apple.configuration.management.test"
	}
	if !hasTest {
		t.Errorf("client capabilities do not list the test configuration: %v", confTypes)
	}

	// An unchanged set: the device asks for the tokens and nothing more.
	before := len(dev.Transcript())
	sync()
	steps := map[string]int{}
	for _, x := range dev.Transcript()[before:] {
		steps[x.Step]++
	}
	if steps["declarative tokens"] != 1 || steps["declarative declaration-items"] != 0 || steps["declarative declaration/configuration/com.example.test"] != 0 {
		t.Errorf("an unchanged set should cost one tokens check-in and nothing more: %v", steps)
	}
	if _, syncs, _ := dev.Declarations(""); syncs != 2 {
		t.Errorf("%d syncs, want 2", syncs)
	}

	// A changed configuration is fetched again; removing the activation
	// leaves the configuration held but inactive.
	config.Payload["Echo"] = "changed"
	if _, err := c.PutDeclaration(ctx, config); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "com.example.test"); err != nil {
		t.Fatal(err)
	}
	sync()
	held, _, _ = dev.Declarations("")
	if len(held) != 1 || held[0].Identifier != "com.example.test" || held[0].Active {
		t.Errorf("after the change: %+v", held)
	}

	// Save/Load keep what the device holds.
	path := t.TempDir() + "/d.json"
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := back.Declarations(""); len(h) != 1 {
		t.Errorf("loaded device holds %+v", h)
	}

	// A Shared iPad user's channel syncs its own set.
	if err := dev.LogIn(ctx, "ann@example.org", "Ann"); err != nil {
		t.Fatal(err)
	}
	userID := dev.UDID() + ":ann@example.org"
	if _, err := c.SetDeclarations(ctx, userID, "com.example.act", "com.example.test"); err != nil {
		t.Fatal(err)
	}
	if r := srv.RunUser(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement on the user channel: %+v", r)
	}
	userHeld, _, lastErr := dev.Declarations("ann@example.org")
	if lastErr != "" || len(userHeld) != 2 {
		t.Errorf("the user's channel holds %+v (%s)", userHeld, lastErr)
	}
	if devHeld, _, _ := dev.Declarations(""); len(devHeld) != 1 {
		t.Errorf("the device channel's set changed with the user's: %+v", devHeld)
	}

	// API refusals.
	var ae *api.Error
	if _, err := c.SetDeclarations(ctx, "no-such-enrollment", "com.example.test"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("SetDeclarations of an unknown enrollment: %v", err)
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "com.example.undefined"); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("SetDeclarations of an undefined declaration: %v", err)
	}
	if _, err := c.PutDeclaration(ctx, api.Declaration{Type: "com.apple.configuration.management.test", Identifier: "bad", Payload: map[string]any{}}); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("a declaration without its required Echo: %v", err)
	}
	if err := c.DeleteDeclaration(ctx, "com.example.nothing"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("deleting an undefined declaration: %v", err)
	}
	if err := c.DeleteDeclaration(ctx, "com.example.act"); err != nil {
		t.Errorf("deleting a declaration: %v", err)
	}
}

// TestDeclarationAssignments: one call gives many enrollments the same
// declarations, or none when an enrollment is unknown or a declaration
// undefined.
func TestDeclarationAssignments(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	var ids []string
	for i := 0; i < 3; i++ {
		d := srv.NewDevice()
		srv.Enroll(d)
		ids = append(ids, d.UDID())
	}
	if _, err := c.PutDeclaration(ctx, api.Declaration{Type: "com.apple.configuration.management.test", Identifier: "com.example.t", Payload: map[string]any{"Echo": "x"}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.AssignDeclarations(ctx, ids, "com.example.t")
	if err != nil || res.Assigned != 3 || res.DeclarationsToken == "" {
		t.Fatalf("assign: %+v %v", res, err)
	}
	for _, id := range ids {
		got, err := c.EnrollmentDeclarations(ctx, id)
		if err != nil || len(got.Identifiers) != 1 || got.DeclarationsToken != res.DeclarationsToken {
			t.Errorf("%s: %+v %v", id, got, err)
		}
	}
	var ae *api.Error
	if _, err := c.AssignDeclarations(ctx, append(ids, "ghost"), "com.example.t"); !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(ae.Message, "ghost") {
		t.Errorf("an unknown enrollment: %v", err)
	}
	if _, err := c.AssignDeclarations(ctx, ids, "com.example.undefined"); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("an undefined declaration: %v", err)
	}
	if _, err := c.AssignDeclarations(ctx, nil, "com.example.t"); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("no enrollments: %v", err)
	}
	if got, _ := c.EnrollmentDeclarations(ctx, ids[0]); len(got.Identifiers) != 1 {
		t.Errorf("a refused call changed an assignment: %+v", got)
	}
}

// TestDeclarativePredicates: an activation's Predicate over the device's
// status items and the management properties decides, on a virtual device, whether its configurations
// apply. The status report the server keeps says so with Apple's reason
// codes (Info.Predicate for a false one, Error.UnableToParsePredicate for
// one that does not parse) and still passes Apple's StatusReport schema.
func TestDeclarativePredicates(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPad))
	srv.Enroll(dev)
	for _, d := range []api.Declaration{
		{Type: "com.apple.configuration.management.test", Identifier: "conf.ipad", Payload: map[string]any{"Echo": "iPad"}},
		{Type: "com.apple.configuration.management.test", Identifier: "conf.mac", Payload: map[string]any{"Echo": "Mac"}},
		{Type: "com.apple.activation.simple", Identifier: "act.ipad", Payload: map[string]any{"StandardConfigurations": []any{"conf.ipad"},
			"Predicate": `@status(device.model.family) == "iPad" AND @status(device.operating-system.family) IN {"iOS", "iPadOS"}`}},
		{Type: "com.apple.activation.simple", Identifier: "act.mac", Payload: map[string]any{"StandardConfigurations": []any{"conf.mac"},
			"Predicate": `@status(device.model.family) == "Mac"`}},
		{Type: "com.apple.activation.simple", Identifier: "act.broken", Payload: map[string]any{"StandardConfigurations": []any{"conf.mac"},
			"Predicate": `@status(device.model.family == "Mac"`}},
		{Type: "com.apple.management.properties", Identifier: "props", Payload: map[string]any{"site": "Berlin", "groups": []any{"staff", "ipads"}}},
		{Type: "com.apple.configuration.management.test", Identifier: "conf.berlin", Payload: map[string]any{"Echo": "Berlin"}},
		{Type: "com.apple.activation.simple", Identifier: "act.berlin", Payload: map[string]any{"StandardConfigurations": []any{"conf.berlin"},
			"Predicate": `@property(site) ==[c] "berlin" AND ANY @property(groups) IN {"ipads"}`}},
	} {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "conf.ipad", "conf.mac", "act.ipad", "act.mac", "act.broken", "props", "conf.berlin", "act.berlin"); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil {
		t.Fatal(err)
	}
	checkStatusReport(t, got)
	decls := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)
	si, _ := schema.StatusItem("management.declarations")
	if probs := schema.ValidateDict(si.PayloadKeys, map[string]any{"management.declarations": decls}, ""); len(probs) > 0 {
		t.Errorf("management.declarations breaks Apple's schema: %v", probs)
	}
	byID := map[string]map[string]any{}
	for _, list := range decls {
		for _, item := range list.([]any) {
			m := item.(map[string]any)
			byID[m["identifier"].(string)] = m
		}
	}
	code := func(id string) string {
		reasons, _ := byID[id]["reasons"].([]any)
		if len(reasons) == 0 {
			return ""
		}
		return reasons[0].(map[string]any)["code"].(string)
	}
	for id, want := range map[string]struct {
		active      bool
		valid, code string
	}{
		"act.ipad":   {true, "valid", ""},
		"conf.ipad":  {true, "valid", ""},
		"act.mac":    {false, "valid", "Info.Predicate"},
		"conf.mac":   {false, "valid", ""},
		"act.broken": {false, "invalid", "Error.UnableToParsePredicate"},
		// A predicate over the properties a management declaration set.
		"act.berlin":  {true, "valid", ""},
		"conf.berlin": {true, "valid", ""},
	} {
		if g := byID[id]; g == nil || g["active"] != want.active || g["valid"] != want.valid || code(id) != want.code {
			t.Errorf("%s reported as %v; want active %v, valid %s, reason %q", id, g, want.active, want.valid, want.code)
		}
	}
}

// checkStatusReport fails the test unless a status report reached the
// server and it passes Apple's StatusReport schema.
func checkStatusReport(t *testing.T, got *api.EnrollmentDeclarations) {
	t.Helper()
	if got.Status == nil {
		t.Fatal("no status report reached the server")
	}
	var report map[string]any
	if err := json.Unmarshal(got.Status.Report, &report); err != nil {
		t.Fatal(err)
	}
	s, _ := schema.Lookup(schema.KindDDMProtocol, "StatusReport")
	if probs := schema.ValidateDict(s.PayloadKeys, report, ""); len(probs) > 0 {
		t.Errorf("the device's status report breaks Apple's schema: %v", probs)
	}
}

// TestDeclarativeLegacyProfile: a com.apple.configuration.legacy
// configuration names a profile the server hosts; a virtual device that
// syncs it while an activation makes it active downloads and installs the
// profile (managed, marked as the configuration's), removes it when the
// configuration is no longer active, and reports one it cannot download
// with Apple's Error.ConfigurationCannotBeApplied, in a report that passes
// Apple's schema.
func TestDeclarativeLegacyProfile(t *testing.T) {
	ctx, srv, c, dev := supervisedIPad(t)
	profile := noCameraProfile(t, "com.example.camera", "6E1C2B7A-3D4F-4A5B-9C8D-1E2F3A4B5C6D", "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D")
	hosted, err := c.HostProfile(ctx, "camera", profile)
	if err != nil || hosted.PayloadIdentifier != "com.example.camera" || hosted.URL != srv.URL()+server.PathHostedProfiles+"/camera" {
		t.Fatalf("hosting the profile: %+v %v", hosted, err)
	}
	put := func(d api.Declaration) {
		t.Helper()
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	sync := func() {
		t.Helper()
		if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
			t.Fatalf("DeclarativeManagement: %+v", r)
		}
	}
	legacyProfile := func() *device.ProfileInfo {
		for _, p := range dev.InstalledProfiles() {
			if p.Identifier == "com.example.camera" {
				return &p
			}
		}
		return nil
	}
	put(api.Declaration{Type: "com.apple.configuration.legacy", Identifier: "conf.camera", Payload: map[string]any{"ProfileURL": hosted.URL}})
	put(api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.camera", Payload: map[string]any{"StandardConfigurations": []any{"conf.camera"}}})
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "conf.camera", "act.camera"); err != nil {
		t.Fatal(err)
	}
	sync()
	p := legacyProfile()
	if p == nil || !p.Managed || p.Declaration != "conf.camera" {
		t.Fatalf("after the sync the device holds %+v, want the hosted profile installed for conf.camera", p)
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "Restrictions"}); !strings.Contains(r.ResultPlist, "allowCamera") {
		t.Errorf("the legacy profile's restriction is not in force: %s", r.ResultPlist)
	}

	// No longer active: the profile goes.
	put(api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.camera", Payload: map[string]any{"StandardConfigurations": []any{"conf.camera"}, "Predicate": `@status(device.model.family) == "Mac"`}})
	sync()
	if p := legacyProfile(); p != nil {
		t.Fatalf("the configuration is inactive, yet the device holds %+v", p)
	}

	// A ProfileURL the server does not host: reported, not installed.
	put(api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.camera", Payload: map[string]any{"StandardConfigurations": []any{"conf.missing"}}})
	put(api.Declaration{Type: "com.apple.configuration.legacy", Identifier: "conf.missing", Payload: map[string]any{"ProfileURL": srv.URL() + server.PathHostedProfiles + "/missing"}})
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "conf.missing", "act.camera"); err != nil {
		t.Fatal(err)
	}
	sync()
	got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil {
		t.Fatal(err)
	}
	checkStatusReport(t, got)
	confs := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["configurations"].([]any)
	var missing map[string]any
	for _, item := range confs {
		if m := item.(map[string]any); m["identifier"] == "conf.missing" {
			missing = m
		}
	}
	reasons, _ := missing["reasons"].([]any)
	if missing == nil || missing["active"] != false || len(reasons) != 1 || reasons[0].(map[string]any)["code"] != "Error.ConfigurationCannotBeApplied" ||
		!strings.Contains(reasons[0].(map[string]any)["description"].(string), "404") {
		t.Fatalf("the undownloadable configuration is reported as %v", missing)
	}
	// Hosted afterwards, it is installed at the next sync though the set
	// did not change, and reported active.
	late, err := c.HostProfile(ctx, "missing", noCameraProfile(t, "com.example.late", "7A1C2B7A-3D4F-4A5B-9C8D-1E2F3A4B5C6D", "7B1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"))
	if err != nil {
		t.Fatal(err)
	}
	sync()
	if item := declarationItem(t, c, dev.UDID(), "configurations", "conf.missing"); item["active"] != true {
		t.Errorf("conf.missing once %s is hosted: %v", late.URL, item)
	}
	if r := srv.Run(dev, &mdm.RemoveProfile{Identifier: "com.example.late"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeProfileOfDeclaration {
		t.Errorf("the late profile is not installed as the configuration's: %+v", r)
	}
	if err := c.DeleteHostedProfile(ctx, "missing"); err != nil {
		t.Fatal(err)
	}

	// A legacy configuration does not take over a profile that InstallProfile
	// put there, nor another configuration's; each such one is reported.
	if r := srv.Run(dev, &mdm.InstallProfile{Payload: profile}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallProfile: %+v", r)
	}
	put(api.Declaration{Type: "com.apple.configuration.legacy", Identifier: "conf.camera", Payload: map[string]any{"ProfileURL": hosted.URL}})
	put(api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.camera", Payload: map[string]any{"StandardConfigurations": []any{"conf.camera"}}})
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "conf.camera", "act.camera"); err != nil {
		t.Fatal(err)
	}
	sync()
	if p := legacyProfile(); p == nil || p.Declaration != "" {
		t.Fatalf("the InstallProfile profile was taken over: %+v", p)
	}
	if reason := configurationReason(t, c, dev.UDID(), "conf.camera"); !strings.Contains(reason, "not by a legacy configuration") {
		t.Errorf("conf.camera over an InstallProfile profile: %q", reason)
	}
	if r := srv.Run(dev, &mdm.RemoveProfile{Identifier: "com.example.camera"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("RemoveProfile: %+v", r)
	}
	put(api.Declaration{Type: "com.apple.configuration.legacy", Identifier: "conf.camera2", Payload: map[string]any{"ProfileURL": hosted.URL}})
	put(api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.camera", Payload: map[string]any{"StandardConfigurations": []any{"conf.camera", "conf.camera2"}}})
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "conf.camera", "conf.camera2", "act.camera"); err != nil {
		t.Fatal(err)
	}
	sync()
	if p := legacyProfile(); p == nil || p.Declaration != "conf.camera" {
		t.Fatalf("two configurations naming one profile: %+v", p)
	}
	if reason := configurationReason(t, c, dev.UDID(), "conf.camera2"); !strings.Contains(reason, "already installed by the legacy configuration conf.camera") {
		t.Errorf("the second configuration: %q", reason)
	}

	// Unenrolled and enrolled again, the device syncs afresh and installs
	// the profile again (the declarations went with the enrollment).
	dev.UnenrollSilently()
	if held, _, _ := dev.Declarations(""); len(held) != 0 {
		t.Errorf("an unenrolled device still holds %d declarations", len(held))
	}
	srv.Enroll(dev)
	put(api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.camera", Payload: map[string]any{"StandardConfigurations": []any{"conf.camera"}}})
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "conf.camera", "act.camera"); err != nil {
		t.Fatal(err)
	}
	sync()
	if p := legacyProfile(); p == nil || p.Declaration != "conf.camera" {
		t.Fatalf("after enrolling again: %+v", p)
	}

	// The configuration owns its profile: RemoveProfile and InstallProfile
	// are refused, and the profile stays the configuration's.
	for _, cmd := range []any{&mdm.RemoveProfile{Identifier: "com.example.camera"}, &mdm.InstallProfile{Payload: profile}} {
		r := srv.Run(dev, cmd)
		if r.Status != mdm.StatusError || len(r.ErrorChain) < 2 || r.ErrorChain[0].ErrorCode != device.ErrCodeProfileOfDeclaration ||
			!strings.Contains(r.ErrorChain[1].USEnglishDescription, "conf.camera") {
			t.Errorf("%T of the configuration's profile: %+v", cmd, r)
		}
		if p := legacyProfile(); p == nil || p.Declaration != "conf.camera" {
			t.Fatalf("after %T: %+v", cmd, p)
		}
	}

	// Hosting: refusals and removal.
	var ae *api.Error
	if _, err := c.HostProfile(ctx, "bad", []byte("not a profile")); !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "not a profile a device can install") {
		t.Errorf("hosting garbage: %v", err)
	}
	if _, err := c.HostProfile(ctx, "../etc", profile); !errors.As(err, &ae) || ae.Status != 400 && ae.Status != 404 {
		t.Errorf("hosting under a path-like name: %v", err)
	}
	if err := c.DeleteHostedProfile(ctx, "camera"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteHostedProfile(ctx, "camera"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("deleting it twice: %v", err)
	}
}

// TestDeclarativeAssets: an active asset's Reference.DataURL, hosted by
// the server, is downloaded by a virtual device and checked against
// Reference.Size and Hash-SHA-256; a wrong hash is Apple's
// Error.AssetCannotBeVerified, an unreachable URL
// Error.AssetCannotBeDownloaded; Authentication Type MDM is fetched with
// the device's identity; data already held is not fetched again.
func TestDeclarativeAssets(t *testing.T) {
	ctx, srv, c, dev := supervisedIPad(t)
	hosted, err := c.HostData(ctx, "note.txt", "text/plain", []byte("hello"))
	if err != nil || hosted.Size != 5 || hosted.ContentType != "text/plain" || hosted.URL != srv.URL()+server.PathHostedData+"/note.txt" {
		t.Fatalf("hosting the data: %+v %v", hosted, err)
	}
	asset := func(id string, ref map[string]any, auth string) api.Declaration {
		p := map[string]any{"Reference": ref}
		if auth != "" {
			p["Authentication"] = map[string]any{"Type": auth}
		}
		return api.Declaration{Type: "com.apple.asset.data", Identifier: id, Payload: p}
	}
	ids := []string{"act"}
	var confs []any
	for _, d := range []api.Declaration{
		asset("asset.good", map[string]any{"DataURL": hosted.URL, "ContentType": "text/plain", "Size": 5, "Hash-SHA-256": hosted.SHA256}, ""),
		asset("asset.mdm", map[string]any{"DataURL": hosted.URL}, "MDM"),
		asset("asset.badhash", map[string]any{"DataURL": hosted.URL, "Hash-SHA-256": strings.Repeat("0", 64)}, ""),
		asset("asset.badsize", map[string]any{"DataURL": hosted.URL, "Size": 6}, ""),
		asset("asset.missing", map[string]any{"DataURL": srv.URL() + server.PathHostedData + "/none"}, ""),
	} {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
		conf := "conf." + strings.TrimPrefix(d.Identifier, "asset.")
		if _, err := c.PutDeclaration(ctx, api.Declaration{Type: "com.apple.configuration.management.test", Identifier: conf,
			Payload: map[string]any{"Echo": conf, "EchoDataAssetReference": d.Identifier}}); err != nil {
			t.Fatal(err)
		}
		ids, confs = append(ids, d.Identifier, conf), append(confs, conf)
	}
	if _, err := c.PutDeclaration(ctx, api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": confs}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), ids...); err != nil {
		t.Fatal(err)
	}
	fetches := func() int {
		n := 0
		for _, ex := range dev.Transcript() {
			if ex.Step == "declarative asset data" {
				n++
			}
		}
		return n
	}
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if n := fetches(); n != 5 {
		t.Errorf("%d asset downloads, want 5", n)
	}
	// Exactly one of them, asset.mdm's, carried the device's identity.
	signed := 0
	for _, ex := range dev.Transcript() {
		if ex.Step == "declarative asset data" && ex.RequestHeader.Get("Mdm-Signature") != "" {
			signed++
		}
	}
	if signed != 1 {
		t.Errorf("%d asset downloads carried Mdm-Signature, want 1 (Authentication Type MDM)", signed)
	}
	got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil {
		t.Fatal(err)
	}
	checkStatusReport(t, got)
	byID := map[string]map[string]any{}
	for _, item := range got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["assets"].([]any) {
		m := item.(map[string]any)
		byID[m["identifier"].(string)] = m
	}
	for id, want := range map[string]string{"asset.good": "", "asset.mdm": "", "asset.badhash": "Error.AssetCannotBeVerified",
		"asset.badsize": "Error.AssetCannotBeVerified", "asset.missing": "Error.AssetCannotBeDownloaded"} {
		m := byID[id]
		reasons, _ := m["reasons"].([]any)
		code := ""
		if len(reasons) > 0 {
			code = reasons[0].(map[string]any)["code"].(string)
		}
		if m == nil || m["active"] != (want == "") || code != want {
			t.Errorf("%s reported as %v; want reason %q", id, m, want)
		}
	}

	// A change elsewhere in the set: the data held is not fetched again,
	// the failed ones are tried again.
	if _, err := c.PutDeclaration(ctx, api.Declaration{Type: "com.apple.configuration.management.test", Identifier: "conf.extra", Payload: map[string]any{"Echo": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), append(ids, "conf.extra")...); err != nil {
		t.Fatal(err)
	}
	before := fetches()
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if n := fetches() - before; n != 3 {
		t.Errorf("%d downloads at the second sync, want 3 (the failed ones again, not the two held)", n)
	}

	// Nothing changed in the set, but the missing data is hosted now: the
	// next sync tries the failed downloads again and reports the asset
	// active.
	if _, err := c.HostData(ctx, "none", "text/plain", []byte("late")); err != nil {
		t.Fatal(err)
	}
	before = fetches()
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if n := fetches() - before; n != 3 {
		t.Errorf("%d downloads at a sync that changed nothing, want 3 (the failed ones)", n)
	}
	if item := declarationItem(t, c, dev.UDID(), "assets", "asset.missing"); item["active"] != true {
		t.Errorf("asset.missing once its data is hosted: %v", item)
	}

	// Assets a configuration references by the keys Apple's schema marks
	// with assettypes, nested ones too: one the device does not hold makes
	// the configuration inactive (Error.MissingAssets, naming them), and the
	// asset it does hold inactive (Error.ConfigurationFailed).
	for _, d := range []api.Declaration{
		{Type: "com.apple.asset.useridentity", Identifier: "asset.user", Payload: map[string]any{"FullName": "Ann Example", "EmailAddress": "ann@example.com"}},
		{Type: "com.apple.configuration.account.exchange", Identifier: "conf.exchange", Payload: map[string]any{
			"EnabledProtocolTypes": []any{"EAS"}, "UserIdentityAssetReference": "asset.user",
			"AuthenticationCredentialsAssetReference": "asset.absent",
			"SMIME": map[string]any{"Signing": map[string]any{"Enabled": true, "IdentityAssetReference": "asset.nested"}},
		}},
		{Type: "com.apple.activation.simple", Identifier: "act.exchange", Payload: map[string]any{"StandardConfigurations": []any{"conf.exchange"}}},
	} {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), append(ids, "conf.extra", "asset.user", "conf.exchange", "act.exchange")...); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	got, err = c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil {
		t.Fatal(err)
	}
	checkStatusReport(t, got)
	conf := declarationItem(t, c, dev.UDID(), "configurations", "conf.exchange")
	reasons, _ := conf["reasons"].([]any)
	if conf["active"] != false || len(reasons) != 1 {
		t.Fatalf("conf.exchange: %v", conf)
	}
	reason := reasons[0].(map[string]any)
	details, _ := reason["details"].(map[string]any)
	if reason["code"] != "Error.MissingAssets" || details["Identifier"] != "conf.exchange" ||
		!reflect.DeepEqual(details["AssetIdentifiers"], []any{"asset.absent", "asset.nested"}) {
		t.Errorf("conf.exchange's reason: %v", reason)
	}
	user := declarationItem(t, c, dev.UDID(), "assets", "asset.user")
	if reasons, _ := user["reasons"].([]any); user["active"] != false || len(reasons) != 1 ||
		reasons[0].(map[string]any)["code"] != "Error.ConfigurationFailed" {
		t.Errorf("asset.user, referenced only by the failed conf.exchange: %v", user)
	}

	var ae *api.Error
	if _, err := c.HostData(ctx, "x", "not a type", []byte("a")); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("hosting with a broken Content-Type: %v", err)
	}
	// Downloads share the dashboard's origin, so they never run there.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hosted.URL, nil)
	resp, err := srv.Doer().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("the download's headers: %v", resp.Header)
	}
}

// noCameraProfile is a small profile (a restriction on the camera) a test
// hosts for a legacy configuration.
func noCameraProfile(t *testing.T, identifier, uuid, payloadUUID string) []byte {
	t.Helper()
	b, err := plist.MarshalIndent(map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": identifier,
		"PayloadUUID": uuid,
		"PayloadContent": []any{map[string]any{
			"PayloadType": "com.apple.applicationaccess", "PayloadVersion": 1,
			"PayloadIdentifier": identifier + ".restrictions", "PayloadUUID": payloadUUID,
			"allowCamera": false,
		}},
	}, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// declarationItem is what the device last reported about one declaration
// of kind ("configurations", "assets", …), as the server keeps it.
func declarationItem(t *testing.T, c *api.Client, id, kind, identifier string) map[string]any {
	t.Helper()
	got, err := c.EnrollmentDeclarations(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	items, _ := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)[kind].([]any)
	for _, item := range items {
		if m := item.(map[string]any); m["identifier"] == identifier {
			return m
		}
	}
	t.Fatalf("the device reported no %s %s", kind, identifier)
	return nil
}

// supervisedIPad is a server and a supervised iPad enrolled in it.
func supervisedIPad(t *testing.T) (context.Context, *mdmtest.Server, *api.Client, *device.Device) {
	t.Helper()
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	srv.Enroll(dev)
	return context.Background(), srv, srv.Client(), dev
}

// configurationReason is the description of the first reason the device
// reported for a configuration ("" when none).
func configurationReason(t *testing.T, c *api.Client, id, identifier string) string {
	t.Helper()
	got, err := c.EnrollmentDeclarations(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	checkStatusReport(t, got)
	for _, item := range got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["configurations"].([]any) {
		m := item.(map[string]any)
		if m["identifier"] != identifier {
			continue
		}
		if reasons, _ := m["reasons"].([]any); len(reasons) > 0 {
			d, _ := reasons[0].(map[string]any)["description"].(string)
			return d
		}
	}
	return ""
}

// TestSavedDeviceClipsLargeBodies: a device that downloaded large data
// saves a file that keeps the first part of each transcript body, marked,
// so the file stays small enough for Load.
func TestSavedDeviceClipsLargeBodies(t *testing.T) {
	ctx, srv, c, dev := supervisedIPad(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	hosted, err := c.HostData(ctx, "big.bin", "", big)
	if err != nil {
		t.Fatal(err)
	}
	assignAndSync(t, srv, dev,
		api.Declaration{Type: "com.apple.asset.data", Identifier: "asset.big", Payload: map[string]any{"Reference": map[string]any{"DataURL": hosted.URL, "Hash-SHA-256": hosted.SHA256}}},
		api.Declaration{Type: "com.apple.configuration.management.test", Identifier: "conf.big", Payload: map[string]any{"Echo": "x", "EchoDataAssetReference": "asset.big"}},
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.big", Payload: map[string]any{"StandardConfigurations": []any{"conf.big"}}},
	)
	path := filepath.Join(t.TempDir(), "device.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > 1<<20 {
		t.Fatalf("the saved file: %v, %v bytes (the 1 MiB download was kept whole?)", err, fi.Size())
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	clipped := false
	for _, ex := range back.Transcript() {
		clipped = clipped || (ex.Step == "declarative asset data" && bytes.HasPrefix(ex.Response, big[:1024]) && bytes.Contains(ex.Response, []byte("(1048576 bytes in all")))
	}
	if !clipped {
		t.Error("the loaded transcript does not keep the clipped, marked download")
	}
}

// TestDeclarativeAsDevicesReport: two answers a Mac is on record giving
// (KMFDDM's getting-started guide), through the real server and checked
// against Apple's StatusReport schema: a configuration no activation
// references is reported with validity unknown and
// Info.NotReferencedByActivation, and Apple's test configuration with
// ReturnStatus Failed stays active, invalid, with
// Error.ConfigurationCannotBeApplied.
func TestDeclarativeAsDevicesReport(t *testing.T) {
	ctx, srv, c, dev := supervisedIPad(t)
	assignAndSync(t, srv, dev,
		api.Declaration{Type: "com.apple.configuration.management.test", Identifier: "conf.alone", Payload: map[string]any{"Echo": "alone"}},
		api.Declaration{Type: "com.apple.configuration.management.test", Identifier: "conf.fail", Payload: map[string]any{"Echo": "fail", "ReturnStatus": "Failed"}},
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.fail", Payload: map[string]any{"StandardConfigurations": []any{"conf.fail"}}},
	)
	got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil {
		t.Fatal(err)
	}
	checkStatusReport(t, got)
	alone := declarationItem(t, c, dev.UDID(), "configurations", "conf.alone")
	reasons, _ := alone["reasons"].([]any)
	if alone["active"] != false || alone["valid"] != "unknown" || len(reasons) != 1 {
		t.Fatalf("conf.alone: %v", alone)
	}
	token := alone["server-token"].(string)
	if r := reasons[0].(map[string]any); r["code"] != "Info.NotReferencedByActivation" ||
		r["description"] != "Configuration \u201cconf.alone:"+token+"\u201d is not referenced by an activation." ||
		!reflect.DeepEqual(r["details"], map[string]any{"Identifier": "conf.alone", "ServerToken": token}) {
		t.Errorf("conf.alone's reason: %v", r)
	}
	fail := declarationItem(t, c, dev.UDID(), "configurations", "conf.fail")
	reasons, _ = fail["reasons"].([]any)
	if fail["active"] != true || fail["valid"] != "invalid" || len(reasons) != 1 {
		t.Fatalf("conf.fail: %v", fail)
	}
	if r := reasons[0].(map[string]any); r["code"] != "Error.ConfigurationCannotBeApplied" || r["description"] != "Configuration cannot be applied" ||
		!reflect.DeepEqual(r["details"], map[string]any{"Error": "An internal error has occurred."}) {
		t.Errorf("conf.fail's reason: %v", r)
	}
}

// assignAndSync puts decls, makes them all of dev's set and has dev sync.
func assignAndSync(t *testing.T, srv *mdmtest.Server, dev *device.Device, decls ...api.Declaration) {
	t.Helper()
	ctx, c := context.Background(), srv.Client()
	var ids []string
	for _, d := range decls {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.Identifier)
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), ids...); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
}
