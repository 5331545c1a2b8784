package device_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// mobileprovision is a CMS-signed provisioning profile, as Xcode makes
// one (signed here by a throwaway certificate, not Apple's).
func mobileprovision(t *testing.T, name, uuid string, expires time.Time) []byte {
	t.Helper()
	signer, err := certs.NewCA("Test Provisioning Signer", 1024, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	content, err := plist.MarshalIndent(map[string]any{"Name": name, "UUID": uuid, "ExpirationDate": expires, "AppIDName": "Example", "TeamIdentifier": []string{"ABCDE12345"}}, "\t")
	if err != nil {
		t.Fatal(err)
	}
	out, err := profiles.Sign(content, signer.Cert, signer.Key) // any CMS SignedData signer
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProvisioningProfiles: a .mobileprovision is installed, listed with
// its name, UUID and expiry (as Apple's schema says), replaced by one with
// the same UUID, removed; expired, unsigned, tampered and garbage ones are
// refused with a reason; Save/Load keep them.
func TestProvisioningProfiles(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPhone))
	srv.Enroll(dev)
	expires := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	install := func(raw []byte) *device.Device {
		t.Helper()
		if r := srv.Run(dev, map[string]any{"RequestType": "InstallProvisioningProfile", "ProvisioningProfile": raw}); r.Status != mdm.StatusAcknowledged {
			t.Fatalf("InstallProvisioningProfile: %+v", r)
		}
		return dev
	}
	list := func(d *device.Device) []any {
		t.Helper()
		status, dict := runDict(t, srv, d, map[string]any{"RequestType": "ProvisioningProfileList"})
		l, _ := dict["ProvisioningProfileList"].([]any)
		s, _ := schema.Command("ProvisioningProfileList")
		if probs := s.ValidateFor("iOS", "18.1", s.ResponseKeys, map[string]any{"ProvisioningProfileList": l}, ""); status != mdm.StatusAcknowledged || len(probs) > 0 {
			t.Fatalf("ProvisioningProfileList: %s %v", status, probs)
		}
		return l
	}
	install(mobileprovision(t, "Example App", "11111111-2222-3333-4444-555555555555", expires))
	install(mobileprovision(t, "Example App, renewed", "11111111-2222-3333-4444-555555555555", expires))
	install(mobileprovision(t, "Other", "66666666-7777-8888-9999-000000000000", expires))
	l := list(dev)
	if len(l) != 2 {
		t.Fatalf("list: %v", l)
	}
	first := l[0].(map[string]any)
	if first["Name"] != "Example App, renewed" || first["UUID"] != "11111111-2222-3333-4444-555555555555" || !first["ExpiryDate"].(time.Time).Equal(expires) {
		t.Errorf("first profile: %v", first)
	}

	tampered := bytes.Replace(mobileprovision(t, "Example", "AAAAAAAA-0000-0000-0000-000000000000", expires), []byte("Example"), []byte("Exampl3"), 1)
	for name, raw := range map[string][]byte{
		"expired":  mobileprovision(t, "Old", "BBBBBBBB-0000-0000-0000-000000000000", time.Now().Add(-time.Hour)),
		"garbage":  []byte("not a profile"),
		"tampered": tampered,
		"no UUID":  mobileprovision(t, "No UUID", "", expires),
	} {
		r := srv.Run(dev, map[string]any{"RequestType": "InstallProvisioningProfile", "ProvisioningProfile": raw})
		if r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeProvisioningInvalid || len(r.ErrorChain) < 2 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "InstallProvisioningProfile"}); r.Status != mdm.StatusCommandFormatError {
		t.Errorf("no ProvisioningProfile: %+v", r)
	}
	back := saveAndLoad(t, srv, dev)
	if got := back.ProvisioningProfiles(); len(got) != 2 {
		t.Errorf("after Save/Load: %v", got)
	}
	if r := srv.Run(back, map[string]any{"RequestType": "RemoveProvisioningProfile", "UUID": "66666666-7777-8888-9999-000000000000"}); r.Status != mdm.StatusAcknowledged {
		t.Errorf("RemoveProvisioningProfile: %+v", r)
	}
	if r := srv.Run(back, map[string]any{"RequestType": "RemoveProvisioningProfile", "UUID": "66666666-7777-8888-9999-000000000000"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeProvisioningNotFound {
		t.Errorf("removing it again: %+v", r)
	}
	if l := list(back); len(l) != 1 {
		t.Errorf("after removal: %v", l)
	}
}
