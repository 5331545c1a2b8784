package ade

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/micromdm/nanodep/albc"
)

// getLock reads GET /v1/ade/devices/{serial}/activation-lock (or DELETE).
func getLock(t *testing.T, h *harness, method, serial string) (int, ActivationLock, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+"/v1/ade/devices/"+serial+"/activation-lock", nil)
	code, b := roundTrip(t, req)
	var l ActivationLock
	var e map[string]string
	if code == 200 {
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	} else {
		json.Unmarshal(b, &e)
	}
	return code, l, e
}

// roundTrip sends req and returns the status and the whole body.
func roundTrip(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	code, b, _ := roundTripHeader(t, req)
	return code, b
}

// roundTripHeader is roundTrip with the response headers.
func roundTripHeader(t *testing.T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// TestActivationLockWithNanoDEP: NanoDEP's godep client — written from
// Apple's schema, not by us — locks devices through POST
// /device/activationlock with an escrow key NanoDEP's albc package derives
// from a bypass code; each of Apple's outcomes comes back as a
// response_status, and the lock is what the tester reads back and turns off.
func TestActivationLockWithNanoDEP(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.svc.BuyDevices(ctx,
		Device{SerialNumber: "LOCKME01", OS: "iPadOS"},
		Device{SerialNumber: "LOCKME02", OS: "iOS"},
		Device{SerialNumber: "TV000001", OS: "tvOS"},
		Device{SerialNumber: "GONE0001"},
	); err != nil {
		t.Fatal(err)
	}
	dep := nanoDEPClient(t, h)
	const name = "mockmdm"
	if dis, err := dep.DisownDevices(ctx, name, "GONE0001"); err != nil || dis.Devices["GONE0001"] != "SUCCESS" {
		t.Fatalf("disown: %+v %v", dis, err)
	}

	code, err := albc.New()
	if err != nil {
		t.Fatal(err)
	}
	escrow, err := code.Hash()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		serial, escrow, lost, want string
	}{
		{"LOCKME01", escrow, "Return to IT, room 4", LockSuccess},
		{"LOCKME01", escrow, "", LockAlreadyLocked},
		{"LOCKME02", "", "", LockSuccess}, // no escrow key: locked to the organisation
		{"TV000001", "", "", LockDeviceNotSupported},
		{"GONE0001", "", "", LockNotAccessible},
		{"NEVERSEEN", "", "", LockNotAccessible},
		{"not a serial!", "", "", LockNotAccessible},
	} {
		resp, err := dep.ActivationLock(ctx, name, c.serial, c.escrow, c.lost)
		if err != nil {
			t.Errorf("%s: %v", c.serial, err)
			continue
		}
		if resp.ResponseStatus != c.want || resp.SerialNumber != c.serial {
			t.Errorf("%s: %+v, want %s", c.serial, resp, c.want)
		}
	}

	st, l, _ := getLock(t, h, "GET", "LOCKME01")
	if st != 200 || !l.Locked || l.EscrowKey != escrow || l.EscrowKeyForm != "hash" || l.LostMessage != "Return to IT, room 4" || l.LockedAt.IsZero() {
		t.Errorf("LOCKME01 lock read back: %d %+v", st, l)
	}
	if st, l, _ := getLock(t, h, "GET", "LOCKME02"); st != 200 || !l.Locked || l.EscrowKeyForm != "none" {
		t.Errorf("LOCKME02: %d %+v", st, l)
	}
	if st, l, _ := getLock(t, h, "GET", "TV000001"); st != 200 || l.Locked {
		t.Errorf("Apple TV must stay unlocked: %d %+v", st, l)
	}
	for _, serial := range []string{"GONE0001", "NEVERSEEN"} {
		if st, _, e := getLock(t, h, "GET", serial); st != 404 || e["error"] != "NOT_FOUND" || e["reason"] == "" {
			t.Errorf("%s: %d %v", serial, st, e)
		}
	}

	// The lock is the record's own: Apple's device answers never carry it,
	// and buying the device again (a modification) keeps it.
	det, err := dep.DeviceDetails(ctx, name, "LOCKME01")
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(det); strings.Contains(string(js), "escrow") || strings.Contains(string(js), "activation_lock") {
		t.Errorf("device details leak the lock: %s", js)
	}
	if _, err := h.svc.BuyDevices(ctx, Device{SerialNumber: "LOCKME01", OS: "iPadOS", Color: "blue"}); err != nil {
		t.Fatal(err)
	}
	if _, l, _ := getLock(t, h, "GET", "LOCKME01"); !l.Locked {
		t.Error("buying an owned device again dropped its lock")
	}

	// Turning it off, as an ABM administrator does, lets it be locked again.
	if st, l, _ := getLock(t, h, "DELETE", "LOCKME01"); st != 200 || l.Locked || l.EscrowKey != "" {
		t.Errorf("turn off: %d %+v", st, l)
	}
	if resp, err := dep.ActivationLock(ctx, name, "LOCKME01", "", ""); err != nil || resp.ResponseStatus != LockSuccess {
		t.Errorf("lock after turning off: %+v %v", resp, err)
	}

	// The quirk forces each failure Apple lists, and locks nothing.
	for _, want := range lockFailures {
		if err := h.svc.SetQuirks(ctx, Quirks{ActivationLockStatus: want}); err != nil {
			t.Fatal(err)
		}
		if resp, err := dep.ActivationLock(ctx, name, "LOCKME02", "", ""); err != nil || resp.ResponseStatus != want {
			t.Errorf("quirk %s: %+v %v", want, resp, err)
		}
	}
	getLock(t, h, "DELETE", "LOCKME02")
	if resp, _ := dep.ActivationLock(ctx, name, "LOCKME02", "", ""); resp.ResponseStatus != LockFailed {
		t.Errorf("quirk FAILED still locked: %+v", resp)
	}
	if _, l, _ := getLock(t, h, "GET", "LOCKME02"); l.Locked {
		t.Error("a forced failure locked the device")
	}
	if err := h.svc.SetQuirks(ctx, Quirks{ActivationLockStatus: "SUCCESS"}); err == nil || !strings.Contains(err.Error(), "QUIRK_INVALID") {
		t.Errorf("quirk SUCCESS accepted: %v", err)
	}

	// The transcript has each call under its name.
	entries, err := h.trans.Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Kind == "ade" && e.MessageType == "activation-lock" {
			n++
		}
	}
	if n != 7+1+len(lockFailures)+1 {
		t.Errorf("%d activation-lock exchanges in the transcript", n)
	}
}

func TestEscrowKeyForm(t *testing.T) {
	for k, want := range map[string]string{
		"":                                "none",
		strings.Repeat("ab", 32):          "hash",
		strings.Repeat("zz", 32):          "other",
		"ABCDE-FGHJK-LMNP-QRTU-VWXY-Z012": "other", // the bypass code itself, not its hash
	} {
		if got := escrowKeyForm(k); got != want {
			t.Errorf("%q: %s, want %s", k, got, want)
		}
	}
}

// FuzzParseActivationLockRequest: lock bodies never panic; refusals are 400s.
func FuzzParseActivationLockRequest(f *testing.F) {
	for _, s := range []string{`{"device":"C02X1"}`, `{"device":"C02X1","escrow_key":"ab","lost_message":"hi"}`, `{"device":""}`, `{"device":1}`, `{}`, `[]`, ``, `{"device":"a"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseActivationLockRequest(b)
		if err != nil {
			requireRefusal(t, err)
			return
		}
		if strings.TrimSpace(req.Device) == "" {
			t.Fatal("accepted without a device")
		}
	})
}

// TestActivationLockQuirkOverHTTP: PUT /v1/ade/quirks refuses a status
// Apple does not list, with the list in the reason.
func TestActivationLockQuirkOverHTTP(t *testing.T) {
	h := newHarness(t)
	put := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("PUT", h.srv.URL+"/v1/ade/quirks", strings.NewReader(body))
		code, b := roundTrip(t, req)
		var m map[string]any
		json.Unmarshal(b, &m)
		return code, m
	}
	if st, m := put(`{"activation_lock_status":"LOCKED"}`); st != 400 || m["error"] != "QUIRK_INVALID" || !strings.Contains(m["reason"].(string), "DEVICE_ALREADY_LOCKED") {
		t.Errorf("bad quirk: %d %v", st, m)
	}
	if st, m := put(`{"activation_lock_status":"ORG_NOT_SUPPORTED"}`); st != 200 || m["activation_lock_status"] != "ORG_NOT_SUPPORTED" {
		t.Errorf("good quirk: %d %v", st, m)
	}
}

// requireRefusal fails unless err is a 400 apiError with a reason: what
// every parser of a request body answers bad input with.
func requireRefusal(t *testing.T, err error) {
	t.Helper()
	if ae, ok := err.(*apiError); !ok || ae.Status != 400 || ae.Reason == "" {
		t.Fatalf("not a 400 with a reason: %v", err)
	}
}
