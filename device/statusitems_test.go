package device_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestStatusSubscriptions: an active status-subscriptions configuration
// makes a virtual device report the items it names, with values from its
// state and what the tester set; every value passes Apple's schema for its
// item, and an item the device has no value for is in the report's Errors
// (the whole report passing Apple's StatusReport schema). A Predicate reads
// the same values.
func TestStatusSubscriptions(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	srv.Enroll(dev)

	if err := dev.SetStatusItem("test.string-value", "hello"); err != nil {
		t.Fatal(err)
	}
	if err := dev.SetStatusItem("test.integer-value", 7); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name  string
		value any
		want  string
	}{
		{"test.integer-value", "seven", "integer"},
		{"device.power.battery-health", "splendid", "splendid"},
		{"no.such-item", true, "not a status item"},
	} {
		if err := dev.SetStatusItem(bad.name, bad.value); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("SetStatusItem(%s, %v): %v, want an error mentioning %q", bad.name, bad.value, err, bad.want)
		}
	}
	// A passcode policy the device (which has no passcode) does not meet.
	policy := restrictionsProfile(t, "com.example.passcode", map[string]any{"PayloadType": "com.apple.mobiledevice.passwordpolicy", "minLength": 6})
	if r := srv.Run(dev, &mdm.InstallProfile{Payload: policy}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallProfile: %+v", r)
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": 361309726}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallApplication: %+v", r)
	}

	subscribed := []string{"passcode.is-present", "passcode.is-compliant", "device.power.battery-health", "device.model.number",
		"security.certificate.list", "softwareupdate.install-state", "mdm.app", "app.managed.list", "test.string-value",
		"test.integer-value", "test.boolean-value", "management.declarations"}
	var items []any
	for _, name := range subscribed {
		items = append(items, map[string]any{"Name": name})
	}
	decls := []api.Declaration{
		{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status", Payload: map[string]any{"StatusItems": items}},
		{Type: "com.apple.activation.simple", Identifier: "act.status", Payload: map[string]any{"StandardConfigurations": []any{"conf.status"}}},
		// Active only while the device reports the passcode out of compliance.
		{Type: "com.apple.configuration.management.test", Identifier: "conf.noncompliant", Payload: map[string]any{"Echo": "x"}},
		{Type: "com.apple.activation.simple", Identifier: "act.noncompliant", Payload: map[string]any{"StandardConfigurations": []any{"conf.noncompliant"},
			"Predicate": `@status(passcode.is-compliant) == FALSE AND @status(test.string-value) == "hello"`}},
	}
	got := assignAndReport(t, srv, dev, decls...)
	report, _ := schema.Lookup(schema.KindDDMProtocol, "StatusReport")
	var whole map[string]any
	if err := json.Unmarshal(got.Status.Report, &whole); err != nil {
		t.Fatal(err)
	}
	if probs := schema.ValidateDict(report.PayloadKeys, whole, ""); len(probs) > 0 {
		t.Errorf("the report breaks Apple's StatusReport schema: %v", probs)
	}

	version, _ := dev.OS()
	value := func(name string) any {
		t.Helper()
		var v any = got.Status.StatusItems
		for _, part := range strings.Split(name, ".") {
			m, _ := v.(map[string]any)
			v = m[part]
		}
		return v
	}
	for _, name := range subscribed {
		if name == "test.boolean-value" || name == "management.declarations" {
			continue
		}
		v := value(name)
		if v == nil {
			t.Errorf("%s is not in the report", name)
			continue
		}
		if name == "security.certificate.list" {
			for _, e := range v.([]any) {
				cert := e.(map[string]any)
				der, err := base64.StdEncoding.DecodeString(cert["data"].(string))
				if err != nil {
					t.Fatal(err)
				}
				cert["data"] = der
			}
		}
		s, _ := schema.StatusItem(name)
		if probs := s.ValidateFor("iOS", version, s.PayloadKeys, map[string]any{name: schema.FromJSON(v)}, ""); len(probs) > 0 {
			t.Errorf("%s = %v breaks Apple's schema: %v", name, v, probs)
		}
	}
	for name, want := range map[string]any{
		"passcode.is-present": false, "passcode.is-compliant": false, "device.power.battery-health": "unsupported",
		"softwareupdate.install-state": "none", "test.string-value": "hello", "test.integer-value": 7.0,
	} {
		if got := value(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if certs, _ := value("security.certificate.list").([]any); len(certs) == 0 {
		t.Error("security.certificate.list lists none of the keychain (the MDM identity at least)")
	}
	if apps, _ := value("mdm.app").([]any); len(apps) != 1 || apps[0].(map[string]any)["state"] != "managed" {
		t.Errorf("mdm.app: %v", apps)
	}
	errs, _ := whole["Errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["StatusItem"] != "test.boolean-value" {
		t.Errorf("Errors: %v, want one for test.boolean-value (no value set)", errs)
	}
	// Unsubscribed items stay out.
	if value("diskmanagement.filevault.enabled") != nil || value("softwareupdate.failure-reason") != nil {
		t.Error("the report carries items nobody subscribed to")
	}
	held, _, _ := dev.Declarations("")
	for _, h := range held {
		if h.Identifier == "conf.noncompliant" && !h.Active {
			t.Errorf("the predicate on status items did not hold: %+v", h)
		}
	}
}

// TestSetStatusItemRules: SetStatusItem keeps its own JSON copy (a caller's
// later change does not reach the report, and a number set as any Go type
// is one a predicate compares), and refuses what the report could not
// carry: NaN, the device's own management items, an item its OS lacks.
func TestSetStatusItemRules(t *testing.T) {
	srv := mdmtest.NewServer(t)
	mac := srv.NewDevice(device.WithModel(device.Mac), device.WithSupervised(true))
	ipad := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	srv.Enroll(ipad)
	for _, bad := range []struct {
		dev   *device.Device
		name  string
		value any
		want  string
	}{
		{ipad, "test.real-value", math.NaN(), "not a number JSON can carry"},
		{ipad, "test.real-value", math.Inf(1), "not a number JSON can carry"},
		{ipad, "management.declarations", map[string]any{}, "not a value to set"},
		{mac, "passcode.is-present", true, "not a status item macOS"},
	} {
		if err := bad.dev.SetStatusItem(bad.name, bad.value); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("SetStatusItem(%s, %v): %v, want an error mentioning %q", bad.name, bad.value, err, bad.want)
		}
	}
	dict := map[string]any{"key1": "set"}
	if err := ipad.SetStatusItem("test.dictionary-value", dict); err != nil {
		t.Fatal(err)
	}
	dict["key1"] = 5 // after the fact: not the device's copy
	if err := ipad.SetStatusItem("test.integer-value", int64(7)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := srv.Client()
	for _, d := range []api.Declaration{
		{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status", Payload: map[string]any{"StatusItems": []any{
			map[string]any{"Name": "test.dictionary-value"}, map[string]any{"Name": "softwareupdate.pending-version"}}}},
		{Type: "com.apple.activation.simple", Identifier: "act.status", Payload: map[string]any{"StandardConfigurations": []any{"conf.status"},
			"Predicate": `@status(test.integer-value) == 7`}},
	} {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetDeclarations(ctx, ipad.UDID(), "conf.status", "act.status"); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(ipad, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	got, err := c.EnrollmentDeclarations(ctx, ipad.UDID())
	if err != nil || got.Status == nil {
		t.Fatalf("%+v %v", got, err)
	}
	test, _ := got.Status.StatusItems["test"].(map[string]any)
	if v, _ := test["dictionary-value"].(map[string]any); v["key1"] != "set" {
		t.Errorf("test.dictionary-value = %v, want the value as set (the predicate on the integer set as int64 activating the subscription)", test)
	}
	su, _ := got.Status.StatusItems["softwareupdate"].(map[string]any)
	if v, _ := su["pending-version"].(map[string]any); v["os-version"] != "" || v["build-version"] != "" {
		t.Errorf("softwareupdate.pending-version with nothing pending = %v, want both empty (Apple's schema)", su)
	}
}

// TestUpdateEnforcement: a softwareupdate.enforcement.specific
// configuration whose deadline has passed makes the device install its
// TargetOSVersion at the sync (DeviceInformation reports it, install-reason
// names the declaration); one whose deadline is ahead is pending
// (pending-version, install-state prepared) and installed at the first sync
// after the deadline, though nothing new came from the server; a
// TargetLocalDateTime not in Apple's form fails the configuration.
func TestUpdateEnforcement(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithClock(clock))
	srv.Enroll(dev)
	enforce := func(id, version, when string) api.Declaration {
		return api.Declaration{Type: "com.apple.configuration.softwareupdate.enforcement.specific", Identifier: id,
			Payload: map[string]any{"TargetOSVersion": version, "TargetLocalDateTime": when}}
	}
	status := api.Declaration{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status", Payload: map[string]any{"StatusItems": []any{
		map[string]any{"Name": "softwareupdate.pending-version"}, map[string]any{"Name": "softwareupdate.install-state"}, map[string]any{"Name": "softwareupdate.install-reason"}}}}
	assign := func(decls ...api.Declaration) *api.EnrollmentDeclarations {
		t.Helper()
		var ids, confs []string
		for _, d := range append(decls, status) {
			if _, err := c.PutDeclaration(ctx, d); err != nil {
				t.Fatal(err)
			}
			ids, confs = append(ids, d.Identifier), append(confs, d.Identifier)
		}
		act := api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": toAny(confs)}}
		if _, err := c.PutDeclaration(ctx, act); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SetDeclarations(ctx, dev.UDID(), append(ids, "act")...); err != nil {
			t.Fatal(err)
		}
		if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
			t.Fatalf("DeclarativeManagement: %+v", r)
		}
		got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
		if err != nil || got.Status == nil {
			t.Fatalf("%+v %v", got, err)
		}
		return got
	}
	su := func(got *api.EnrollmentDeclarations) map[string]any {
		m, _ := got.Status.StatusItems["softwareupdate"].(map[string]any)
		return m
	}
	osVersion := func() string { v, _ := dev.OS(); return v }

	// Due already: installed at the sync.
	got := assign(enforce("conf.182", "18.2", "2026-12-01T09:00:00"))
	if v := osVersion(); v != "18.2" {
		t.Fatalf("after an overdue enforcement the device runs %s, want 18.2", v)
	}
	if r := su(got)["install-reason"].(map[string]any); len(r["reason"].([]any)) != 0 || su(got)["install-state"] != "none" {
		t.Errorf("installed, nothing pending: %v", su(got))
	}
	if _, dict := runDict(t, srv, dev, &mdm.DeviceInformation{Queries: []string{"OSVersion"}}); dict["QueryResponses"].(map[string]any)["OSVersion"] != "18.2" {
		t.Errorf("DeviceInformation: %v", dict)
	}

	// Ahead: pending until its time, then installed at a sync that brings
	// nothing new.
	got = assign(enforce("conf.183", "18.3", "2026-12-02T14:00:00"))
	if v := osVersion(); v != "18.2" {
		t.Fatalf("an enforcement due in two hours installed at once: %s", v)
	}
	if s := su(got); s["install-state"] != "prepared" || s["pending-version"].(map[string]any)["os-version"] != "18.3" ||
		s["install-reason"].(map[string]any)["declaration-id"] != "conf.183" || s["install-reason"].(map[string]any)["reason"].([]any)[0] != "declaration" {
		t.Errorf("pending (Apple: install-reason is why the pending update is pending): %v", s)
	}
	mu.Lock()
	now = now.Add(3 * time.Hour)
	mu.Unlock()
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if v := osVersion(); v != "18.3" {
		t.Fatalf("past the deadline the device runs %s, want 18.3", v)
	}
	got, _ = c.EnrollmentDeclarations(ctx, dev.UDID())
	if s := su(got); s["install-state"] != "none" || len(s["install-reason"].(map[string]any)["reason"].([]any)) != 0 {
		t.Errorf("after the enforced install: %v", s)
	}

	// Not Apple's form: the configuration fails, the OS stays.
	assign(enforce("conf.bad", "18.4", "tomorrow"), enforce("conf.badversion", "eighteen", "2020-01-01T00:00:00"))
	if v := osVersion(); v != "18.3" {
		t.Errorf("a broken enforcement changed the OS to %s", v)
	}
	held, _, _ := dev.Declarations("")
	for _, h := range held {
		if h.Identifier == "conf.bad" && (h.Active || !strings.Contains(h.Reason, "TargetLocalDateTime")) ||
			h.Identifier == "conf.badversion" && (h.Active || !strings.Contains(h.Reason, "TargetOSVersion")) {
			t.Errorf("%s: %+v", h.Identifier, h)
		}
	}

	// Saved and loaded with an update pending: the next sync past its
	// deadline installs it all the same.
	assign(enforce("conf.190", "19.0", "2026-12-02T20:00:00"))
	path := filepath.Join(t.TempDir(), "device.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()), device.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(6 * time.Hour)
	mu.Unlock()
	if r := srv.Run(back, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if v, _ := back.OS(); v != "19.0" {
		t.Errorf("after Save/Load and the deadline the device runs %s, want 19.0", v)
	}
}

// TestUpdateEnforcementNotSupported: on an OS older than Apple's schema
// gives the type (iOS 17), the configuration fails with
// Error.ConfigurationNotSupported and nothing is installed.
func TestUpdateEnforcementNotSupported(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPhone), device.WithOS("16.5", "20F66"))
	srv.Enroll(dev)
	for _, d := range []api.Declaration{
		{Type: "com.apple.configuration.softwareupdate.enforcement.specific", Identifier: "conf.update", Payload: map[string]any{"TargetOSVersion": "16.6", "TargetLocalDateTime": "2020-01-01T00:00:00"}},
		{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"conf.update"}}},
	} {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), "conf.update", "act"); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if v, _ := dev.OS(); v != "16.5" {
		t.Errorf("iOS 16.5 installed %s from a declaration iOS 17 introduced", v)
	}
	got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil || got.Status == nil {
		t.Fatalf("%+v %v", got, err)
	}
	confs := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["configurations"].([]any)
	conf := confs[0].(map[string]any)
	reasons, _ := conf["reasons"].([]any)
	if conf["active"] != false || len(reasons) != 1 || reasons[0].(map[string]any)["code"] != "Error.ConfigurationNotSupported" ||
		reasons[0].(map[string]any)["details"].(map[string]any)["Identifier"] != "conf.update" {
		t.Errorf("conf.update on iOS 16.5: %v", conf)
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// TestAccountStatus: the account.list.* items list the accounts the
// channel's active account configurations set up, each entry passing
// Apple's schema for its list; an inactive configuration is not listed, and
// a subscribed list with no account is empty.
func TestAccountStatus(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	srv.Enroll(dev)
	lists := []string{"account.list.caldav", "account.list.carddav", "account.list.exchange", "account.list.google", "account.list.ldap",
		"account.list.mail.incoming", "account.list.mail.outgoing", "account.list.subscribed-calendar"}
	var items []any
	for _, name := range lists {
		items = append(items, map[string]any{"Name": name})
	}
	decls := []api.Declaration{
		{Type: "com.apple.configuration.account.caldav", Identifier: "conf.caldav", Payload: map[string]any{"VisibleName": "Team calendar", "HostName": "cal.example.com", "Port": 8443}},
		{Type: "com.apple.configuration.account.caldav", Identifier: "conf.idle", Payload: map[string]any{"HostName": "idle.example.com"}},
		{Type: "com.apple.configuration.account.mail", Identifier: "conf.mail", Payload: map[string]any{
			"IncomingServer": map[string]any{"ServerType": "IMAP", "HostName": "imap.example.com", "Port": 993, "AuthenticationMethod": "Password"},
			"OutgoingServer": map[string]any{"HostName": "smtp.example.com", "Port": 587, "AuthenticationMethod": "Password"}}},
		{Type: "com.apple.configuration.account.exchange", Identifier: "conf.exchange", Payload: map[string]any{"EnabledProtocolTypes": []any{"EAS"},
			"HostName": "mail.example.com", "MailServiceActive": false}},
		{Type: "com.apple.asset.useridentity", Identifier: "asset.ann", Payload: map[string]any{"FullName": "Ann Example", "EmailAddress": "ann@example.com"}},
		{Type: "com.apple.configuration.account.google", Identifier: "conf.google", Payload: map[string]any{"UserIdentityAssetReference": "asset.ann"}},
		{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status", Payload: map[string]any{"StatusItems": items}},
		{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"conf.caldav", "conf.mail", "conf.exchange", "conf.google", "conf.status"}}},
	}
	got := assignAndReport(t, srv, dev, decls...)
	version, _ := dev.OS()
	value := func(name string) []any {
		t.Helper()
		var v any = got.Status.StatusItems
		for _, part := range strings.Split(name, ".") {
			m, _ := v.(map[string]any)
			v = m[part]
		}
		list, ok := v.([]any)
		if !ok {
			t.Fatalf("%s: %v is not a list", name, v)
		}
		s, _ := schema.StatusItem(name)
		if probs := s.ValidateFor("iOS", version, s.PayloadKeys, map[string]any{name: schema.FromJSON(list)}, ""); len(probs) > 0 {
			t.Errorf("%s = %v breaks Apple's schema: %v", name, list, probs)
		}
		return list
	}
	caldav := value("account.list.caldav")
	if len(caldav) != 1 {
		t.Fatalf("account.list.caldav: %v (conf.idle, not activated, is not set up)", caldav)
	}
	if e := caldav[0].(map[string]any); e["declaration-identifier"] != "conf.caldav" || e["visible-name"] != "Team calendar" || e["hostname"] != "cal.example.com" || e["port"] != 8443.0 {
		t.Errorf("the CalDAV account: %v", e)
	}
	if in := value("account.list.mail.incoming"); len(in) != 1 || in[0].(map[string]any)["hostname"] != "imap.example.com" || in[0].(map[string]any)["port"] != 993.0 {
		t.Errorf("incoming mail: %v", in)
	}
	if out := value("account.list.mail.outgoing"); len(out) != 1 || out[0].(map[string]any)["hostname"] != "smtp.example.com" {
		t.Errorf("outgoing mail: %v", out)
	}
	if in := value("account.list.mail.incoming"); len(in) == 1 && in[0].(map[string]any)["are-notes-enabled"] != true {
		t.Errorf("notes on an IMAP server: %v", in)
	}
	if ex := value("account.list.exchange"); len(ex) != 1 || ex[0].(map[string]any)["is-mail-enabled"] != false || ex[0].(map[string]any)["are-calendars-enabled"] != true {
		t.Errorf("Exchange with MailServiceActive false (the rest default true): %v", ex)
	}
	if google := value("account.list.google"); len(google) != 1 || google[0].(map[string]any)["username"] != "ann@example.com" {
		t.Errorf("Google, with its user identity asset: %v", google)
	}
	for _, empty := range []string{"account.list.carddav", "account.list.ldap", "account.list.subscribed-calendar"} {
		if list := value(empty); len(list) != 0 {
			t.Errorf("%s with no such account: %v", empty, list)
		}
	}
}

// assignAndReport puts decls, makes them all of dev's set, has dev sync and
// returns what it reported, as the server keeps it.
func assignAndReport(t *testing.T, srv *mdmtest.Server, dev *device.Device, decls ...api.Declaration) *api.EnrollmentDeclarations {
	t.Helper()
	ctx, c := context.Background(), srv.Client()
	var ids []string
	for _, d := range decls {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatalf("%s: %v", d.Identifier, err)
		}
		ids = append(ids, d.Identifier)
	}
	if _, err := c.SetDeclarations(ctx, dev.UDID(), ids...); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	got, err := c.EnrollmentDeclarations(ctx, dev.UDID())
	if err != nil || got.Status == nil {
		t.Fatalf("the status report: %+v %v", got, err)
	}
	return got
}
