package apps

import (
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/store"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		rule    string
		want    Filter
		ok      bool
		wantErr string
	}{
		{``, Filter{}, false, ""},
		{`device.deviceOwnership -eq "Corporate"`, Filter{Ownership: store.OwnershipCorporate}, true, ""},
		{`(device.deviceOwnership -eq "Personal")`, Filter{Ownership: store.OwnershipPersonal}, true, ""},
		// As pasted from seed 002's comment: double parentheses, typographic quotes.
		{`((device.deviceOwnership -eq “Corporate”))`, Filter{Ownership: store.OwnershipCorporate}, true, ""},
		{`  Device.DeviceOwnership -EQ "personal" `, Filter{Ownership: store.OwnershipPersonal}, true, ""},
		{`device.deviceOwnership -ne "Corporate"`, Filter{Negate: true, Ownership: store.OwnershipCorporate}, true, ""},
		{`device.deviceOwnership -eq Corporate`, Filter{}, false, "double quotes"},
		{`device.deviceOwnership -eq "Company"`, Filter{}, false, "not one of"},
		{`device.enrollmentProfileName -eq "COPE"`, Filter{}, false, "only device.deviceOwnership"},
		{`device.deviceOwnership -contains "Corp"`, Filter{}, false, "use -eq or -ne"},
		{`(device.deviceOwnership -eq "Corporate") -or (device.deviceOwnership -eq "Personal")`, Filter{}, false, "parentheses"},
		{`device.deviceOwnership -eq "Corporate" -and device.osVersion -eq "17"`, Filter{}, false, "-and is not supported"},
		{`(device.deviceOwnership -eq "Corporate"`, Filter{}, false, "unbalanced"},
		{`device.deviceOwnership -eq "Corp"orate"`, Filter{}, false, "double quotes"},
		{`device.deviceOwnership`, Filter{}, false, "want property, operator and quoted value"},
		{strings.Repeat("(", 300), Filter{}, false, "bytes long"},
	}
	for _, tc := range tests {
		f, ok, err := ParseFilter(tc.rule)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseFilter(%q) error %v, want one saying %q", tc.rule, err, tc.wantErr)
			}
			continue
		}
		if err != nil || ok != tc.ok || f != tc.want {
			t.Errorf("ParseFilter(%q) = %+v, %v, %v; want %+v, %v", tc.rule, f, ok, err, tc.want, tc.ok)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	corp := Filter{Ownership: store.OwnershipCorporate}
	notCorp := Filter{Negate: true, Ownership: store.OwnershipCorporate}
	for _, tc := range []struct {
		f         Filter
		ownership string
		want      bool
	}{
		{corp, store.OwnershipCorporate, true}, {corp, store.OwnershipPersonal, false}, {corp, "", false},
		{notCorp, store.OwnershipCorporate, false}, {notCorp, store.OwnershipPersonal, true}, {notCorp, "", true},
	} {
		if got := tc.f.Match(tc.ownership); got != tc.want {
			t.Errorf("%s on %q = %v", tc.f, tc.ownership, got)
		}
	}
}

// FuzzParseFilter: any rule text gives a filter or an error, never a
// panic, and an accepted rule survives its canonical spelling.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`device.deviceOwnership -eq "Corporate"`, `((device.deviceOwnership -ne “Personal”))`, `(`, `"`, `“”`, `a b c`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rule string) {
		flt, ok, err := ParseFilter(rule)
		if err != nil || !ok {
			return
		}
		again, ok2, err := ParseFilter(flt.String())
		if err != nil || !ok2 || again != flt {
			t.Fatalf("%q → %+v, whose spelling %q parses to %+v, %v", rule, flt, flt.String(), again, err)
		}
	})
}

func TestAppCheckRefusesBadEntries(t *testing.T) {
	ok := App{ID: "teams", Name: "Teams", Kind: KindVPP, ITunesStoreID: 1113153706, Licensing: LicenseUser}
	if err := ok.Check(); err != nil {
		t.Fatalf("a good VPP app refused: %v", err)
	}
	for _, tc := range []struct {
		name    string
		mod     func(a *App)
		wantErr string
	}{
		{"bad licensing", func(a *App) { a.Licensing = "site" }, `licensing "site" is not "device" or "user"`},
		{"no licensing", func(a *App) { a.Licensing = "" }, "needs licensing"},
		{"no store ID", func(a *App) { a.ITunesStoreID = 0 }, "itunes_store_id"},
		{"unknown kind", func(a *App) { a.Kind = "enterprise" }, `kind "enterprise"`},
		{"LOB over http", func(a *App) { *a = App{ID: "lob", Name: "LOB", Kind: KindLOB, ManifestURL: "http://x.test/m.plist"} }, "https"},
		{"web link without URL", func(a *App) { *a = App{ID: "w", Name: "W", Kind: KindWebLink} }, "url"},
		{"bad id", func(a *App) { a.ID = "../etc" }, "app id"},
		{"reserved id", func(a *App) { a.ID = "sync" }, "taken"},
		{"bad intent", func(a *App) { a.Assignments = []Assignment{{Group: "g", Intent: "forced"}} }, "intent"},
		{"bad filter", func(a *App) {
			a.Assignments = []Assignment{{Group: "g", Intent: IntentRequired, Filter: `device.model -eq "iPad"`}}
		}, "only device.deviceOwnership"},
		{"no group", func(a *App) { a.Assignments = []Assignment{{Intent: IntentRequired}} }, "group is required"},
	} {
		a := ok
		tc.mod(&a)
		err := a.Check()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestCommandsPassTheSchema builds each kind's install command and checks
// it with the existing decoders: the plist is a command a device accepts.
func TestCommandsPassTheSchema(t *testing.T) {
	for _, a := range []App{
		{ID: "vpp", Name: "VPP", Kind: KindVPP, ITunesStoreID: 42, Licensing: LicenseDevice},
		{ID: "lob", Name: "LOB", Kind: KindLOB, ManifestURL: "https://apps.contoso.com/lob/manifest.plist"},
		{ID: "web", Name: "Intranet", Kind: KindWebLink, URL: "https://intranet.contoso.com"},
	} {
		cmd, err := a.command("UUID-1")
		if err != nil {
			t.Fatalf("%s: %v", a.Kind, err)
		}
		want := map[string]string{KindVPP: "InstallApplication", KindLOB: "InstallApplication", KindWebLink: "InstallProfile"}[a.Kind]
		if cmd.RequestType != want || cmd.CommandUUID != "UUID-1" {
			t.Errorf("%s: %s %s", a.Kind, cmd.RequestType, cmd.CommandUUID)
		}
		for _, s := range map[string][]string{KindVPP: {"<key>iTunesStoreID</key>", "<integer>42</integer>", "PurchaseMethod"},
			KindLOB: {"https://apps.contoso.com/lob/manifest.plist"}, KindWebLink: {"<key>Payload</key>"}}[a.Kind] {
			if !strings.Contains(string(cmd.Raw), s) {
				t.Errorf("%s command lacks %s:\n%s", a.Kind, s, cmd.Raw)
			}
		}
	}
}
