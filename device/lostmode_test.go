package device_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestLostMode: a supervised iPhone goes into MDM Lost Mode, reports it in
// DeviceInformation, answers DeviceLocation (the same place each time, an
// RFC 3339 timestamp) and plays the sound; outside Lost Mode both are
// refused with an error chain; Save/Load keep it; an erase ends it.
func TestLostMode(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPhone), device.WithSupervised(true))
	srv.Enroll(dev)
	run := func(c map[string]any) map[string]any {
		t.Helper()
		_, dict := runDict(t, srv, dev, c)
		return dict
	}
	lostEnabled := func() bool {
		t.Helper()
		qr, _ := run(map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"IsMDMLostModeEnabled"}})["QueryResponses"].(map[string]any)
		on, _ := qr["IsMDMLostModeEnabled"].(bool)
		return on
	}
	for _, rt := range []string{"DeviceLocation", "PlayLostModeSound"} {
		r := srv.Run(dev, map[string]any{"RequestType": rt})
		if r.Status != mdm.StatusError || len(r.ErrorChain) == 0 || r.ErrorChain[0].ErrorCode != device.ErrCodeNotInLostMode {
			t.Errorf("%s outside Lost Mode: %+v", rt, r)
		}
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "EnableLostMode", "Footnote": "only a footnote"}); r.Status != mdm.StatusCommandFormatError {
		t.Errorf("EnableLostMode without Message or PhoneNumber: %+v", r)
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "EnableLostMode", "Message": 42}); r.Status != mdm.StatusCommandFormatError {
		t.Errorf("EnableLostMode with a number for Message: %+v", r)
	}
	if lostEnabled() {
		t.Fatal("in Lost Mode before EnableLostMode")
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "EnableLostMode", "Message": "Return to IT"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("EnableLostMode: %+v", r)
	}
	if on, msg, _, _, _ := dev.LostMode(); !on || msg != "Return to IT" || !lostEnabled() || !dev.Locked() {
		t.Errorf("after EnableLostMode: on=%v message=%q reported=%v locked=%v", on, msg, lostEnabled(), dev.Locked())
	}
	first := run(map[string]any{"RequestType": "DeviceLocation"})
	again := run(map[string]any{"RequestType": "DeviceLocation"})
	if first["Latitude"] != again["Latitude"] || first["Longitude"] != again["Longitude"] {
		t.Errorf("the device moved: %v then %v", first, again)
	}
	if ts, _ := first["Timestamp"].(string); ts == "" {
		t.Errorf("no Timestamp: %v", first)
	} else if _, err := time.Parse(time.RFC3339, ts); err != nil {
		t.Errorf("Timestamp %q is not RFC 3339: %v", ts, err)
	}
	run(map[string]any{"RequestType": "PlayLostModeSound"})
	if _, _, _, _, plays := dev.LostMode(); plays != 1 {
		t.Errorf("sound played %d times", plays)
	}

	back := saveAndLoad(t, srv, dev)
	if on, msg, _, _, _ := back.LostMode(); !on || msg != "Return to IT" {
		t.Errorf("loaded device: on=%v message=%q", on, msg)
	}
	if r := srv.Run(back, map[string]any{"RequestType": "DisableLostMode"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DisableLostMode: %+v", r)
	}
	if on, _, _, _, _ := back.LostMode(); on {
		t.Error("still in Lost Mode after DisableLostMode")
	}

	// An erase ends Lost Mode with everything else.
	run(map[string]any{"RequestType": "EnableLostMode", "PhoneNumber": "+1 555 0100"})
	if r := srv.Run(dev, map[string]any{"RequestType": "EraseDevice"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("EraseDevice: %+v", r)
	}
	if on, _, _, _, _ := dev.LostMode(); on {
		t.Error("an erased device is still in Lost Mode")
	}

	// Unsupervised: refused by the schema's rule.
	plain := srv.NewDevice(device.WithModel(device.IPhone))
	srv.Enroll(plain)
	if r := srv.Run(plain, map[string]any{"RequestType": "EnableLostMode", "Message": "x"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("EnableLostMode unsupervised: %+v", r)
	}
}

// saveAndLoad saves dev to a file and loads it back, as a QA script that
// comes back to a device later does.
func saveAndLoad(t *testing.T, srv *mdmtest.Server, dev *device.Device) *device.Device {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	return back
}
