package device_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestPasscodeSettings: an active passcode settings configuration that asks
// for a passcode puts the passcode-less virtual device out of compliance —
// passcode.is-compliant false (passing Apple's schema for the item) and
// SecurityInfo's PasscodeCompliant false, its PasscodeCompliantWithProfiles
// still true — while the configuration itself stays active and valid. Any
// key but RequirePasscode asks for one, as Apple's schema says; an empty
// configuration, RequirePasscode false alone, or one not activated leaves
// it compliant.
func TestPasscodeSettings(t *testing.T) {
	subscribe := api.Declaration{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status",
		Payload: map[string]any{"StatusItems": []any{map[string]any{"Name": "passcode.is-compliant"}}}}
	for _, tc := range []struct {
		name      string
		payload   map[string]any
		activated bool
		compliant bool
	}{
		{"RequirePasscode", map[string]any{"RequirePasscode": true}, true, false},
		{"MinimumLength", map[string]any{"MinimumLength": 6}, true, false},
		{"MinimumComplexCharacters", map[string]any{"MinimumComplexCharacters": 1}, true, false},
		{"RequireAlphanumericPasscode", map[string]any{"RequireAlphanumericPasscode": true}, true, false},
		{"RequireComplexPasscode", map[string]any{"RequireComplexPasscode": true}, true, false},
		{"any other key (Apple: implies a passcode, overriding RequirePasscode)", map[string]any{"RequirePasscode": false, "MaximumFailedAttempts": 5}, true, false},
		{"MaximumInactivityInMinutes alone", map[string]any{"MaximumInactivityInMinutes": 5}, true, false},
		{"RequirePasscode false alone", map[string]any{"RequirePasscode": false}, true, true},
		{"empty", map[string]any{}, true, true},
		{"not activated", map[string]any{"RequirePasscode": true}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mdmtest.NewServer(t)
			dev := srv.NewDevice(device.WithModel(device.IPad))
			srv.Enroll(dev)
			confs := []any{"conf.status"}
			if tc.activated {
				confs = append(confs, "conf.passcode")
			}
			got := assignAndReport(t, srv, dev, subscribe,
				api.Declaration{Type: "com.apple.configuration.passcode.settings", Identifier: "conf.passcode", Payload: tc.payload},
				api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": confs}})

			passcode, _ := got.Status.StatusItems["passcode"].(map[string]any)
			if passcode["is-compliant"] != tc.compliant {
				t.Errorf("passcode.is-compliant = %v, want %v (report %v)", passcode["is-compliant"], tc.compliant, got.Status.StatusItems)
			}
			version, _ := dev.OS()
			s, _ := schema.StatusItem("passcode.is-compliant")
			if probs := s.ValidateFor("iOS", version, s.PayloadKeys, map[string]any{"passcode.is-compliant": passcode["is-compliant"]}, ""); len(probs) > 0 {
				t.Errorf("passcode.is-compliant breaks Apple's schema: %v", probs)
			}
			for _, c := range got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["configurations"].([]any) {
				if c := c.(map[string]any); c["identifier"] == "conf.passcode" && tc.activated && (c["active"] != true || c["valid"] != "valid") {
					t.Errorf("the passcode configuration: %v, want active and valid (applied; the user would be asked to set a passcode)", c)
				}
			}

			r := srv.Run(dev, &mdm.SecurityInfo{})
			var res struct{ SecurityInfo map[string]any }
			if err := json.Unmarshal(r.Result, &res); err != nil || r.Status != mdm.StatusAcknowledged {
				t.Fatalf("SecurityInfo: %+v %v", r, err)
			}
			if res.SecurityInfo["PasscodeCompliant"] != tc.compliant || res.SecurityInfo["PasscodeCompliantWithProfiles"] != true {
				t.Errorf("SecurityInfo: PasscodeCompliant %v (want %v), PasscodeCompliantWithProfiles %v (want true: no profile asks)",
					res.SecurityInfo["PasscodeCompliant"], tc.compliant, res.SecurityInfo["PasscodeCompliantWithProfiles"])
			}
		})
	}
}

// TestConfigurationNotSupported: an activated configuration Apple's schema
// does not give the device — not on its OS, not yet at its version, not
// for its enrollment — is not applied and is reported inactive with
// Error.ConfigurationNotSupported and the configuration's identity as
// details; the same configuration where the schema allows it is active.
func TestConfigurationNotSupported(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []device.Option
		user      string // a user channel's: logged in, and given the declarations
		decl      api.Declaration
		supported bool
	}{
		{"a Mac's type on an iPad", []device.Option{device.WithModel(device.IPad)}, "",
			api.Declaration{Type: "com.apple.configuration.screensharing.host.settings", Payload: map[string]any{"PortBase": 5900}}, false},
		{"the same on a Mac", []device.Option{device.WithModel(device.Mac)}, "",
			api.Declaration{Type: "com.apple.configuration.screensharing.host.settings", Payload: map[string]any{"PortBase": 5900}}, true},
		{"iOS 18's type on iOS 17", []device.Option{device.WithModel(device.IPhone), device.WithSupervised(true), device.WithOS("17.5", "21F79")}, "",
			api.Declaration{Type: "com.apple.configuration.math.settings", Payload: map[string]any{}}, false},
		{"the same on iOS 18", []device.Option{device.WithModel(device.IPhone), device.WithSupervised(true), device.WithOS("18.1", "22B83")}, "",
			api.Declaration{Type: "com.apple.configuration.math.settings", Payload: map[string]any{}}, true},
		{"a supervised-only type unsupervised", []device.Option{device.WithModel(device.IPhone), device.WithOS("18.1", "22B83")}, "",
			api.Declaration{Type: "com.apple.configuration.math.settings", Payload: map[string]any{}}, false},
		{"passcode settings on a Shared iPad (Apple: no scope there)", []device.Option{device.WithModel(device.IPad), device.WithSupervised(true), device.WithSharedIPad(true)}, "",
			api.Declaration{Type: "com.apple.configuration.passcode.settings", Payload: map[string]any{"MinimumLength": 8}}, false},
		{"a system-scope type on a Mac user's channel", []device.Option{device.WithModel(device.Mac)}, "ann",
			api.Declaration{Type: "com.apple.configuration.screensharing.host.settings", Payload: map[string]any{"PortBase": 5900}}, false},
		{"passcode settings on a Mac user's channel (user scope allowed)", []device.Option{device.WithModel(device.Mac)}, "ann",
			api.Declaration{Type: "com.apple.configuration.passcode.settings", Payload: map[string]any{"MinimumLength": 8}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mdmtest.NewServer(t)
			dev := srv.NewDevice(tc.opts...)
			srv.Enroll(dev)
			tc.decl.Identifier = "conf.x"
			decls := []api.Declaration{tc.decl,
				api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"conf.x"}}}}
			var got *api.EnrollmentDeclarations
			if tc.user == "" {
				got = assignAndReport(t, srv, dev, decls...)
			} else {
				got = assignAndReportUser(t, srv, dev, tc.user, decls...)
			}
			confs := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["configurations"].([]any)
			conf := confs[0].(map[string]any)
			reasons, _ := conf["reasons"].([]any)
			if tc.supported {
				if conf["active"] != true || len(reasons) != 0 {
					t.Errorf("%s where Apple's schema gives it: %v, want active with no reason", tc.decl.Type, conf)
				}
				return
			}
			if conf["active"] != false || len(reasons) != 1 {
				t.Fatalf("%s: %v, want inactive with one reason", tc.decl.Type, conf)
			}
			reason := reasons[0].(map[string]any)
			details, _ := reason["details"].(map[string]any)
			if reason["code"] != "Error.ConfigurationNotSupported" || details["Identifier"] != "conf.x" || details["ServerToken"] != conf["server-token"] {
				t.Errorf("%s: reason %v, want Error.ConfigurationNotSupported with the configuration's Identifier and ServerToken", tc.decl.Type, reason)
			}
			if tc.decl.Type == "com.apple.configuration.passcode.settings" {
				r := srv.Run(dev, &mdm.SecurityInfo{})
				if tc.user != "" {
					r = srv.RunUser(dev, &mdm.SecurityInfo{})
				}
				var res struct{ SecurityInfo map[string]any }
				if err := json.Unmarshal(r.Result, &res); err != nil {
					t.Fatal(err)
				}
				if c, ok := res.SecurityInfo["PasscodeCompliant"]; ok && c != true {
					t.Errorf("an unsupported passcode configuration was applied: %v", res.SecurityInfo)
				}
			}
		})
	}
}

// assignAndReportUser logs user in on dev, makes decls the set of the
// user's channel, has that channel sync and returns what it reported.
func assignAndReportUser(t *testing.T, srv *mdmtest.Server, dev *device.Device, user string, decls ...api.Declaration) *api.EnrollmentDeclarations {
	t.Helper()
	ctx, c := context.Background(), srv.Client()
	if err := dev.LogIn(ctx, user, user); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, u := range dev.Users() {
		if u.LoggedIn {
			id = u.EnrollmentID
		}
	}
	var ids []string
	for _, d := range decls {
		if _, err := c.PutDeclaration(ctx, d); err != nil {
			t.Fatalf("%s: %v", d.Identifier, err)
		}
		ids = append(ids, d.Identifier)
	}
	if _, err := c.SetDeclarations(ctx, id, ids...); err != nil {
		t.Fatal(err)
	}
	if r := srv.RunUser(dev, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement on %s's channel: %+v", user, r)
	}
	got, err := c.EnrollmentDeclarations(ctx, id)
	if err != nil || got.Status == nil {
		t.Fatalf("the status report of %s's channel: %+v %v", user, got, err)
	}
	return got
}
