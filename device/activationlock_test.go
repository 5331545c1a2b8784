package device_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/nanodep/albc"
	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/ade"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// bypassCode runs ActivationLockBypassCode on dev and returns the code.
func bypassCode(t *testing.T, srv *mdmtest.Server, dev *device.Device) string {
	t.Helper()
	st, dict := runDict(t, srv, dev, map[string]any{"RequestType": "ActivationLockBypassCode"})
	if st != mdm.StatusAcknowledged {
		t.Fatalf("ActivationLockBypassCode: %s %v", st, dict)
	}
	code, ok := dict["ActivationLockBypassCode"].(string)
	if !ok {
		t.Fatalf("no ActivationLockBypassCode string in %v", dict)
	}
	return code
}

// runDict runs command on dev through srv and returns the result's status
// and its dictionary as decoded.
func runDict(t *testing.T, srv *mdmtest.Server, dev *device.Device, command any) (string, map[string]any) {
	t.Helper()
	res := srv.Run(dev, command)
	var dict map[string]any
	if err := plist.Unmarshal([]byte(res.ResultPlist), &dict); err != nil {
		t.Fatal(err)
	}
	return res.Status, dict
}

// TestActivationLockEndToEnd is the whole Activation Lock path an MDM
// server takes, against mockmdm: it asks a supervised device for its
// bypass code, hashes it into an escrow key with NanoDEP's albc (code we
// did not write, which must also parse the device's code), and locks the
// device through the simulated ABM, which keeps that escrow key. Then the
// device forgets its code when told to, makes a new one when erased, and
// keeps what it has across Save and Load.
func TestActivationLockEndToEnd(t *testing.T) {
	srv := mdmtest.NewServer(t)
	ctx := context.Background()
	dev := srv.NewDevice(device.WithSupervised(true))
	srv.Enroll(dev)

	code := bypassCode(t, srv, dev)
	if code == "" || code != dev.ActivationLockBypassCode() {
		t.Fatalf("bypass code %q, device says %q", code, dev.ActivationLockBypassCode())
	}
	bc, err := albc.NewFromCode(code)
	if err != nil {
		t.Fatalf("NanoDEP's albc cannot read the device's code %q: %v", code, err)
	}
	if again, err := bc.Code(); err != nil || again != code {
		t.Errorf("albc writes the code back as %q (%v), the device sent %q", again, err, code)
	}
	escrow, err := bc.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if again := bypassCode(t, srv, dev); again != code {
		t.Errorf("the code changed without an erase: %q then %q", code, again)
	}

	abm := srv.Server().ABM()
	if _, err := abm.BuyDevices(ctx, ade.Device{SerialNumber: dev.SerialNumber(), OS: "iPadOS"}); err != nil {
		t.Fatal(err)
	}
	st, err := abm.LockDevice(ctx, &ade.ActivationLockRequest{Device: dev.SerialNumber(), EscrowKey: &escrow})
	if err != nil || st.ResponseStatus != ade.LockSuccess {
		t.Fatalf("lock: %+v %v", st, err)
	}
	lock, err := abm.DeviceActivationLock(ctx, dev.SerialNumber())
	if err != nil || !lock.Locked || lock.EscrowKey != escrow || lock.EscrowKeyForm != "hash" {
		t.Fatalf("the simulated ABM kept %+v (%v)", lock, err)
	}

	// Saved and loaded, the device has the same code.
	back := saveAndLoad(t, srv, dev)
	if back.ActivationLockBypassCode() != code {
		t.Errorf("loaded device's code %q, want %q", back.ActivationLockBypassCode(), code)
	}

	// Cleared, the device answers an empty code, and still does after Save and Load.
	if r := srv.Run(back, map[string]any{"RequestType": "ClearActivationLockBypassCode"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("ClearActivationLockBypassCode: %+v", r)
	}
	if c := bypassCode(t, srv, back); c != "" {
		t.Errorf("after Clear: %q", c)
	}
	again := saveAndLoad(t, srv, back)
	if c := again.ActivationLockBypassCode(); c != "" {
		t.Errorf("loaded after Clear: %q", c)
	}

	// Erased (and not restored), the device makes a new code.
	if r := srv.Run(again, map[string]any{"RequestType": "EraseDevice"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("EraseDevice: %+v", r)
	}
	srv.Enroll(again)
	fresh := bypassCode(t, srv, again)
	if fresh == "" || fresh == code {
		t.Errorf("after an erase: %q (first code %q)", fresh, code)
	}
	if _, err := albc.NewFromCode(fresh); err != nil {
		t.Errorf("albc cannot read the new code: %v", err)
	}

	// Unsupervised, the device has no code, and the command is refused.
	plain := srv.NewDevice()
	srv.Enroll(plain)
	if plain.ActivationLockBypassCode() != "" {
		t.Error("an unsupervised device has a bypass code")
	}
	for _, rt := range []string{"ActivationLockBypassCode", "ClearActivationLockBypassCode"} {
		if r := srv.Run(plain, map[string]any{"RequestType": rt}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
			t.Errorf("%s on an unsupervised device: %+v", rt, r)
		}
	}
}

// TestBypassCodeAvailableFifteenDays: the schema says the device hands out
// its code for 15 days after supervision; after that it answers empty.
func TestBypassCodeAvailableFifteenDays(t *testing.T) {
	srv := mdmtest.NewServer(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dev := srv.NewDevice(device.WithSupervised(true), device.WithClock(clock))
	srv.Enroll(dev)
	mu.Lock()
	now = now.Add(14 * 24 * time.Hour)
	mu.Unlock()
	if c := bypassCode(t, srv, dev); c == "" {
		t.Error("no code on day 14")
	}
	mu.Lock()
	now = now.Add(2 * 24 * time.Hour)
	mu.Unlock()
	if c := bypassCode(t, srv, dev); c != "" {
		t.Errorf("code %q on day 16", c)
	}
}
