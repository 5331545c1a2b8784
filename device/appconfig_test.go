package device_test

import (
	"testing"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestManagedAppConfigurationAndFeedback: the configuration an app gets at
// install or through Settings is what ManagedApplicationConfiguration
// reports (an omitted Configuration removes it); the feedback a test sets
// is what ManagedApplicationFeedback reports, once more unless deleted;
// ManagedApplicationList's flags follow; Save/Load keep both, types and all.
func TestManagedAppConfigurationAndFeedback(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	srv.Enroll(dev)
	result := func(c map[string]any) (string, map[string]any) {
		t.Helper()
		return runDict(t, srv, dev, c)
	}
	const app = "com.contoso.mail"
	if st, _ := result(map[string]any{"RequestType": "InstallApplication", "Identifier": app, "Configuration": map[string]any{"Server": "mail.contoso.com", "Port": 993}}); st != mdm.StatusAcknowledged {
		t.Fatalf("install: %s", st)
	}
	configOf := func() map[string]any {
		t.Helper()
		st, d := result(map[string]any{"RequestType": "ManagedApplicationConfiguration", "Identifiers": []string{app, "com.not.managed"}})
		list, _ := d["ApplicationConfigurations"].([]any)
		if st != mdm.StatusAcknowledged || len(list) != 1 {
			t.Fatalf("configuration: %s %v", st, d)
		}
		c, _ := list[0].(map[string]any)["Configuration"].(map[string]any)
		return c
	}
	if c := configOf(); c["Server"] != "mail.contoso.com" || c["Port"] != uint64(993) && c["Port"] != int64(993) {
		t.Errorf("configuration from the install: %v", c)
	}
	flags := func() (bool, bool) {
		t.Helper()
		_, d := result(map[string]any{"RequestType": "ManagedApplicationList", "Identifiers": []string{app}})
		e := d["ManagedApplicationList"].(map[string]any)[app].(map[string]any)
		return e["HasConfiguration"] == true, e["HasFeedback"] == true
	}
	if hc, hf := flags(); !hc || hf {
		t.Errorf("HasConfiguration %v, HasFeedback %v", hc, hf)
	}

	// Settings replaces it; without Configuration, removes it.
	set := func(item map[string]any) string {
		st, _ := result(map[string]any{"RequestType": "Settings", "Settings": []map[string]any{item}})
		return st
	}
	if st := set(map[string]any{"Item": "ApplicationConfiguration", "Identifier": app, "Configuration": map[string]any{"Server": "mail2.contoso.com"}}); st != mdm.StatusAcknowledged {
		t.Fatalf("Settings: %s", st)
	}
	if c := configOf(); c["Server"] != "mail2.contoso.com" || c["Port"] != nil {
		t.Errorf("configuration after Settings: %v", c)
	}
	if st := set(map[string]any{"Item": "ApplicationConfiguration", "Identifier": "com.not.managed", "Configuration": map[string]any{}}); st != mdm.StatusError {
		t.Errorf("configuring an app the server did not install: %s", st)
	}
	if st := set(map[string]any{"Item": "ApplicationConfiguration", "Identifier": app, "Configuration": "not a dict"}); st != mdm.StatusCommandFormatError {
		t.Errorf("a Configuration that is not a dictionary: %s", st)
	}

	// Feedback, reported until deleted.
	if err := dev.SetAppFeedback("com.not.managed", map[string]any{"x": 1}); err == nil {
		t.Error("feedback for an app the server did not install")
	}
	if err := dev.SetAppFeedback(app, map[string]any{"LastSync": "2026-12-02T10:00:00Z", "Unread": 3}); err != nil {
		t.Fatal(err)
	}
	feedback := func(del bool) map[string]any {
		t.Helper()
		_, d := result(map[string]any{"RequestType": "ManagedApplicationFeedback", "Identifiers": []string{app}, "DeleteFeedback": del})
		list := d["ManagedApplicationFeedback"].([]any)
		f, _ := list[0].(map[string]any)["Feedback"].(map[string]any)
		return f
	}
	if f := feedback(false); f["LastSync"] != "2026-12-02T10:00:00Z" {
		t.Errorf("feedback: %v", f)
	}
	back := saveAndLoad(t, srv, dev)
	if c := back.AppConfiguration(app); c["Server"] != "mail2.contoso.com" {
		t.Errorf("loaded configuration: %v", c)
	}
	if f := feedback(true); f == nil {
		t.Error("feedback gone before DeleteFeedback")
	}
	if f := feedback(false); f != nil {
		t.Errorf("feedback after DeleteFeedback: %v", f)
	}
	if st := set(map[string]any{"Item": "ApplicationConfiguration", "Identifier": app}); st != mdm.StatusAcknowledged {
		t.Fatalf("removing the configuration: %s", st)
	}
	if c := configOf(); c != nil {
		t.Errorf("configuration after removal: %v", c)
	}
	if hc, hf := flags(); hc || hf {
		t.Errorf("after removal: HasConfiguration %v, HasFeedback %v", hc, hf)
	}
	for _, bad := range []map[string]any{
		{"RequestType": "ManagedApplicationConfiguration"},
		{"RequestType": "ManagedApplicationFeedback", "Identifiers": "x"},
		{"RequestType": "ManagedApplicationFeedback", "Identifiers": []string{app}, "DeleteFeedback": "yes"},
		{"RequestType": "InstallApplication", "Identifier": "com.other", "Configuration": []string{"x"}},
	} {
		if st, _ := result(bad); st != mdm.StatusCommandFormatError {
			t.Errorf("%v: %s", bad, st)
		}
	}
}

// TestManagedAppAttributes: attributes given at install or through
// Settings are what ManagedApplicationAttributes reports, checked against
// Apple's schema (a wrong type is a CommandFormatError), removed when the
// Settings item omits them, and kept by Save/Load.
func TestManagedAppAttributes(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	srv.Enroll(dev)
	const app = "com.contoso.crm"
	status := func(c map[string]any) string { return srv.Run(dev, c).Status }
	reportOf := func(on *device.Device) map[string]any {
		t.Helper()
		_, dict := runDict(t, srv, on, map[string]any{"RequestType": "ManagedApplicationAttributes", "Identifiers": []string{app}})
		list := dict["ApplicationAttributes"].([]any)
		a, _ := list[0].(map[string]any)["Attributes"].(map[string]any)
		return a
	}
	report := func() map[string]any { t.Helper(); return reportOf(dev) }
	for _, bad := range []map[string]any{{"Removable": "no"}, {"VPNUID": "typo"}} {
		if st := status(map[string]any{"RequestType": "InstallApplication", "Identifier": app, "Attributes": bad}); st != mdm.StatusCommandFormatError {
			t.Errorf("attributes %v at install: %s", bad, st)
		}
	}
	if st := status(map[string]any{"RequestType": "InstallApplication", "Identifier": app, "Attributes": map[string]any{"VPNUUID": "6B1C2C52-0F05-4A3E-9D1B-5C9A3A3F4B10", "Removable": false}}); st != mdm.StatusAcknowledged {
		t.Fatalf("install: %s", st)
	}
	if a := report(); a["VPNUUID"] != "6B1C2C52-0F05-4A3E-9D1B-5C9A3A3F4B10" || a["Removable"] != false {
		t.Errorf("attributes from the install: %v", a)
	}
	set := func(item map[string]any) string {
		return status(map[string]any{"RequestType": "Settings", "Settings": []map[string]any{item}})
	}
	if st := set(map[string]any{"Item": "ApplicationAttributes", "Identifier": app, "Attributes": map[string]any{"AssociatedDomains": []string{"applinks:contoso.com"}}}); st != mdm.StatusAcknowledged {
		t.Fatalf("Settings: %s", st)
	}
	if a := report(); a["VPNUUID"] != nil || len(a["AssociatedDomains"].([]any)) != 1 {
		t.Errorf("attributes after Settings: %v", a)
	}
	if st := set(map[string]any{"Item": "ApplicationAttributes", "Identifier": app, "Attributes": map[string]any{"AssociatedDomains": "applinks:contoso.com"}}); st != mdm.StatusCommandFormatError {
		t.Errorf("AssociatedDomains as a string: %s", st)
	}
	if a := reportOf(saveAndLoad(t, srv, dev)); len(a["AssociatedDomains"].([]any)) != 1 {
		t.Errorf("loaded device's attributes: %v", a)
	}
	if st := set(map[string]any{"Item": "ApplicationAttributes", "Identifier": app}); st != mdm.StatusAcknowledged {
		t.Fatalf("removing: %s", st)
	}
	if a := report(); a != nil {
		t.Errorf("attributes after removal: %v", a)
	}
	if st := set(map[string]any{"Item": "ApplicationAttributes", "Identifier": "com.not.managed", "Attributes": map[string]any{}}); st != mdm.StatusError {
		t.Errorf("attributes for an app the server did not install: %s", st)
	}
}

// TestInstalledApplicationListShowsManagedApps: an app the server installed
// is in InstalledApplicationList beside the built-in ones and the user's
// own, once; ManagedAppsOnly lists the server's alone; Identifiers filters
// all three; a removed app is gone.
func TestInstalledApplicationListShowsManagedApps(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPhone))
	dev.AddUserInstalledApps(device.UserApp{Identifier: "com.example.own", Name: "Own", Version: "2.0", ITunesStoreID: 77})
	srv.Enroll(dev)
	ids := func(c map[string]any) []string {
		t.Helper()
		c["RequestType"] = "InstalledApplicationList"
		status, dict := runDict(t, srv, dev, c)
		if status != mdm.StatusAcknowledged {
			t.Fatalf("InstalledApplicationList %v: %s", c, status)
		}
		var out []string
		list, _ := dict["InstalledApplicationList"].([]any)
		for _, e := range list {
			id, _ := e.(map[string]any)["Identifier"].(string)
			out = append(out, id)
		}
		return out
	}
	count := func(list []string, id string) (n int) {
		for _, s := range list {
			if s == id {
				n++
			}
		}
		return n
	}
	for _, id := range []string{"com.example.b", "com.example.a"} {
		if r := srv.Run(dev, map[string]any{"RequestType": "InstallApplication", "Identifier": id}); r.Status != mdm.StatusAcknowledged {
			t.Fatalf("InstallApplication %s: %+v", id, r)
		}
	}
	all := ids(map[string]any{})
	if count(all, "com.example.a") != 1 || count(all, "com.example.b") != 1 || count(all, "com.example.own") != 1 || count(all, "com.apple.Keynote") != 1 {
		t.Errorf("InstalledApplicationList: %v", all)
	}
	if got := ids(map[string]any{"ManagedAppsOnly": true}); len(got) != 2 || got[0] != "com.example.a" || got[1] != "com.example.b" {
		t.Errorf("ManagedAppsOnly: %v, want the two managed apps in order", got)
	}
	if got := ids(map[string]any{"Identifiers": []string{"com.example.b", "com.example.own"}}); len(got) != 2 {
		t.Errorf("Identifiers filter: %v", got)
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "RemoveApplication", "Identifier": "com.example.a"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("RemoveApplication: %+v", r)
	}
	if got := ids(map[string]any{"ManagedAppsOnly": true}); len(got) != 1 || got[0] != "com.example.b" {
		t.Errorf("after RemoveApplication: %v", got)
	}
}
