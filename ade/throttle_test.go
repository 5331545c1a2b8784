package ade

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/certs"
)

// TestAssignThrottling: under quirk throttle_assign_seconds, Assign a
// Profile answers THROTTLED per device to clients speaking protocol 9 or
// later, with retry_after_seconds from 10, and assigns nothing; older
// clients are never throttled, as Apple's page says.
func TestAssignThrottling(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	_, tok, err := h.svc.IssueToken(ctx, h.svc.KeyPair().Cert, certs.VariantValid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.BuyDevices(ctx, Device{SerialNumber: "THR00001"}, Device{SerialNumber: "THR00002"}); err != nil {
		t.Fatal(err)
	}
	def, err := h.svc.DefineProfile(ctx, &Profile{ProfileName: "p", URL: "https://mdm.example/enroll"})
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, signedSession(t, h, tok))
	if code != 200 {
		t.Fatalf("session: %d %s", code, body)
	}
	sess := body[strings.Index(body, `":"`)+3 : strings.Index(body, `"}`)]
	assign := func(version string) (int, DefineResponse) {
		t.Helper()
		req, _ := http.NewRequest("PUT", h.srv.URL+"/profile/devices", strings.NewReader(`{"profile_uuid":"`+def.ProfileUUID+`","devices":["THR00001","THR00002"]}`))
		req.Header.Set("User-Agent", "test")
		req.Header.Set("X-Server-Protocol-Version", version)
		req.Header.Set("X-ADM-Auth-Session", sess)
		code, b := roundTrip(t, req)
		var out DefineResponse
		if code == 200 {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		return code, out
	}
	if err := h.svc.SetQuirks(ctx, Quirks{ThrottleAssignSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		version   string
		status    string
		retryWait int
	}{
		{"9", "THROTTLED", 0},
		{"10", "THROTTLED", 30},
		{"7", "SUCCESS", 0}, // older clients are not throttled: this one assigns
	} {
		code, res := assign(c.version)
		if code != 200 || res.Devices["THR00001"] != c.status || res.Devices["THR00002"] != c.status || res.RetryAfterSeconds != c.retryWait {
			t.Errorf("version %s: %d %+v", c.version, code, res)
		}
		if c.status == "THROTTLED" {
			devs, err := h.svc.Devices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range devs {
				if d.ProfileUUID != "" {
					t.Errorf("a throttled call assigned %s", d.SerialNumber)
				}
			}
		}
	}
	for _, bad := range []int{-1, 86401} {
		if err := h.svc.SetQuirks(ctx, Quirks{ThrottleAssignSeconds: bad}); err == nil || !strings.Contains(err.Error(), "QUIRK_INVALID") {
			t.Errorf("throttle_assign_seconds %d: %v", bad, err)
		}
	}
}
