package device_test

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"testing"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// restrictionsProfile is an unsigned profile holding one restrictions
// payload per element of payloads.
func restrictionsProfile(t *testing.T, identifier string, payloads ...map[string]any) []byte {
	t.Helper()
	var content []any
	for i, pl := range payloads {
		p := map[string]any{
			"PayloadType": "com.apple.applicationaccess", "PayloadVersion": 1,
			"PayloadIdentifier": fmt.Sprintf("%s.restrictions.%d", identifier, i),
			"PayloadUUID":       fmt.Sprintf("5D0C3A1E-7B2F-4C8D-%04X-%012X", i, sha256.Sum256([]byte(identifier)))[:36],
		}
		for k, v := range pl {
			p[k] = v
		}
		content = append(content, p)
	}
	b, err := plist.MarshalIndent(map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": 1,
		"PayloadIdentifier": identifier,
		"PayloadUUID":       fmt.Sprintf("9A7E2C4B-1D3F-4E5A-8B6C-%X", sha256.Sum256([]byte(identifier)))[:36],
		"PayloadContent":    content,
	}, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// restrictionsOf runs Restrictions and returns the response, checked
// against Apple's schema for the command.
func restrictionsOf(t *testing.T, srv *mdmtest.Server, dev *device.Device, perProfile bool) map[string]any {
	t.Helper()
	c := map[string]any{"RequestType": "Restrictions"}
	if perProfile {
		c["ProfileRestrictions"] = true
	}
	status, dict := runDict(t, srv, dev, c)
	if status != mdm.StatusAcknowledged {
		t.Fatalf("Restrictions: %s %v", status, dict)
	}
	keys := map[string]any{"GlobalRestrictions": dict["GlobalRestrictions"]}
	if v, ok := dict["ProfileRestrictions"]; ok {
		keys["ProfileRestrictions"] = v
	}
	s, _ := schema.Command("Restrictions")
	// The schema marks ProfileRestrictions required and says it is only
	// there when asked for; Apple's own example answer leaves it out.
	if !perProfile {
		keys["ProfileRestrictions"] = map[string]any{}
	}
	if probs := s.ValidateFor("iOS", "18.1", s.ResponseKeys, keys, ""); len(probs) > 0 {
		t.Errorf("Restrictions response breaks Apple's schema: %v", probs)
	}
	return dict
}

// restrictionsView flattens a RestrictionsDictionary for comparison:
// restrictedBool and restrictedValue to their values, intersection and
// union to their lists.
func restrictionsView(t *testing.T, v any) map[string]map[string]any {
	t.Helper()
	d, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not a RestrictionsDictionary: %#v", v)
	}
	out := map[string]map[string]any{}
	for _, part := range []string{"restrictedBool", "restrictedValue", "intersection", "union"} {
		out[part] = map[string]any{}
		if d[part] == nil {
			continue // the global set lists only the parts that have entries
		}
		m, ok := d[part].(map[string]any)
		if !ok {
			t.Fatalf("%s is not a dictionary: %#v", part, d[part])
		}
		field := "value"
		if part == "intersection" || part == "union" {
			field = "values"
		}
		for k, e := range m {
			out[part][k] = e.(map[string]any)[field]
		}
	}
	return out
}

// TestRestrictions: the Restrictions command reports what the installed
// restrictions and passcode payloads enforce, combined most-restrictive-
// wins across profiles (false for allow…, true for force…, the lower
// rating, the longer minimum and update delay, block lists joined, allow
// lists intersected; a Boolean at its unrestricted value left out), each
// profile's own as set on request, every profile listed, and drops what
// the device does not enforce: unknown keys, wrong types, ratingRegion,
// supervised-only restrictions on an unsupervised device. Removing a
// profile takes its restrictions away.
func TestRestrictions(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPhone), device.WithSupervised(true))
	srv.Enroll(dev)

	if g, _ := restrictionsOf(t, srv, dev, false)["GlobalRestrictions"].(map[string]any); len(g) != 0 {
		t.Errorf("nothing installed, yet GlobalRestrictions holds %v", g)
	}

	a := restrictionsProfile(t, "com.example.restrictions.a", map[string]any{
		"allowCamera": false, "allowAirDrop": false, "forceEncryptedBackup": false,
		"ratingApps": 300, "enforcedSoftwareUpdateDelay": 10,
		"blockedAppBundleIDs":     []any{"com.example.a", "com.example.b"},
		"allowListedAppBundleIDs": []any{"com.example.x", "com.example.y", "com.example.z"},
		"ratingRegion":            "us", "safariAcceptCookies": 1.5,
		"allowNoSuchThing": false, "allowSafari": "no",
	}, map[string]any{"PayloadType": "com.apple.mobiledevice.passwordpolicy", "minLength": 9, "changeAtNextAuth": true})
	b := restrictionsProfile(t, "com.example.restrictions.b",
		map[string]any{"allowCamera": true, "forceEncryptedBackup": true, "ratingApps": 200},
		map[string]any{"enforcedSoftwareUpdateDelay": 45,
			"blockedAppBundleIDs":     []any{"com.example.b", "com.example.c"},
			"allowListedAppBundleIDs": []any{"com.example.y", "com.example.z", "com.example.w"}},
		map[string]any{"PayloadType": "com.apple.mobiledevice.passwordpolicy", "forcePIN": true, "allowSimple": true, "minLength": 6},
	)
	for _, p := range [][]byte{a, b} {
		if r := srv.Run(dev, &mdm.InstallProfile{Payload: p}); r.Status != mdm.StatusAcknowledged {
			t.Fatalf("InstallProfile: %+v", r)
		}
	}

	want := map[string]map[string]any{
		"restrictedBool":  {"allowCamera": false, "allowAirDrop": false, "forceEncryptedBackup": true, "forcePIN": true},
		"restrictedValue": {"ratingApps": uint64(200), "enforcedSoftwareUpdateDelay": uint64(45), "minLength": uint64(9)},
		"intersection":    {"allowListedAppBundleIDs": []any{"com.example.y", "com.example.z"}},
		"union":           {"blockedAppBundleIDs": []any{"com.example.a", "com.example.b", "com.example.c"}},
	}
	got := restrictionsOf(t, srv, dev, true)
	if g := restrictionsView(t, got["GlobalRestrictions"]); !reflect.DeepEqual(g, want) {
		t.Errorf("GlobalRestrictions\n got %v\nwant %v", g, want)
	}
	per, _ := got["ProfileRestrictions"].(map[string]any)
	installed := dev.InstalledProfiles()
	if len(per) != len(installed) {
		t.Errorf("ProfileRestrictions lists %d profiles, the device has %d: %v", len(per), len(installed), per)
	}
	for _, p := range installed {
		v := restrictionsView(t, per[p.Identifier])
		if p.Enrollment && (len(v["restrictedBool"])+len(v["restrictedValue"]) != 0 || per[p.Identifier].(map[string]any)["restrictedBool"] == nil) {
			t.Errorf("the enrollment profile restricts nothing, and says so with empty dictionaries: %v", per[p.Identifier])
		}
	}
	wantA := map[string]map[string]any{
		"restrictedBool":  {"allowCamera": false, "allowAirDrop": false, "forceEncryptedBackup": false},
		"restrictedValue": {"ratingApps": uint64(300), "enforcedSoftwareUpdateDelay": uint64(10), "minLength": uint64(9)},
		"intersection":    {"allowListedAppBundleIDs": []any{"com.example.x", "com.example.y", "com.example.z"}},
		"union":           {"blockedAppBundleIDs": []any{"com.example.a", "com.example.b"}},
	}
	if g := restrictionsView(t, per["com.example.restrictions.a"]); !reflect.DeepEqual(g, wantA) {
		t.Errorf("profile a's restrictions\n got %v\nwant %v", g, wantA)
	}
	if g := restrictionsView(t, per["com.example.restrictions.b"]); g["restrictedBool"]["allowCamera"] != true || g["restrictedBool"]["allowSimple"] != true || g["restrictedValue"]["ratingApps"] != uint64(200) {
		t.Errorf("profile b's restrictions, as it set them: %v", g)
	}
	// The global set keeps a Boolean only at its restrictive value.
	wantAGlobal := map[string]map[string]any{
		"restrictedBool":  {"allowCamera": false, "allowAirDrop": false},
		"restrictedValue": wantA["restrictedValue"],
		"intersection":    wantA["intersection"],
		"union":           wantA["union"],
	}
	if _, asked := restrictionsOf(t, srv, dev, false)["ProfileRestrictions"]; asked {
		t.Error("ProfileRestrictions reported without being asked for")
	}

	// Removing b leaves a's restrictions alone.
	if r := srv.Run(dev, &mdm.RemoveProfile{Identifier: "com.example.restrictions.b"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("RemoveProfile: %+v", r)
	}
	if g := restrictionsView(t, restrictionsOf(t, srv, dev, false)["GlobalRestrictions"]); !reflect.DeepEqual(g, wantAGlobal) {
		t.Errorf("after removing b\n got %v\nwant %v", g, wantAGlobal)
	}

	if r := srv.Run(dev, map[string]any{"RequestType": "Restrictions", "ProfileRestrictions": "yes"}); r.Status != mdm.StatusCommandFormatError {
		t.Errorf("ProfileRestrictions as a string: %+v", r)
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "ClearRestrictionsPassword"}); r.Status != mdm.StatusAcknowledged {
		t.Errorf("ClearRestrictionsPassword, supervised: %+v", r)
	}

	// Unsupervised: the supervised-only restrictions are not enforced, and
	// ClearRestrictionsPassword is refused by the schema's rule.
	plain := srv.NewDevice(device.WithModel(device.IPhone))
	srv.Enroll(plain)
	if r := srv.Run(plain, &mdm.InstallProfile{Payload: a}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallProfile, unsupervised: %+v", r)
	}
	wantPlain := map[string]map[string]any{
		"restrictedBool":  {"allowCamera": false},
		"restrictedValue": {"ratingApps": uint64(300), "minLength": uint64(9)},
		"intersection":    {},
		"union":           {},
	}
	if g := restrictionsView(t, restrictionsOf(t, srv, plain, false)["GlobalRestrictions"]); !reflect.DeepEqual(g, wantPlain) {
		t.Errorf("unsupervised\n got %v\nwant %v", g, wantPlain)
	}
	if r := srv.Run(plain, map[string]any{"RequestType": "ClearRestrictionsPassword"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("ClearRestrictionsPassword, unsupervised: %+v", r)
	}

	// Save and Load keep the installed profiles, so their restrictions.
	if g := restrictionsView(t, restrictionsOf(t, srv, saveAndLoad(t, srv, dev), false)["GlobalRestrictions"]); !reflect.DeepEqual(g, wantAGlobal) {
		t.Errorf("after Save/Load\n got %v\nwant %v", g, wantAGlobal)
	}
}
