package ade

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mockmdm/mockmdm/store/sqlite"
)

// TestStateSurvivesRestartOnSQLite: what the simulated ABM acknowledged —
// an Activation Lock, the service discovery URL, the beta programs, the
// quirks — is still there after the SQLite store is closed and reopened.
func TestStateSurvivesRestartOnSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ade.db")
	kp, err := sharedKP()
	if err != nil {
		t.Fatal(err)
	}
	open := func() (*Service, func()) {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := New(st, WithTokenKeyPair(kp), WithTranscript(st))
		if err != nil {
			t.Fatal(err)
		}
		return svc, func() { st.Close() }
	}
	svc, closeStore := open()
	if _, err := svc.BuyDevices(ctx, Device{SerialNumber: "KEEP0001"}); err != nil {
		t.Fatal(err)
	}
	escrow := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	if st, err := svc.LockDevice(ctx, &ActivationLockRequest{Device: "KEEP0001", EscrowKey: &escrow}); err != nil || st.ResponseStatus != LockSuccess {
		t.Fatalf("lock: %+v %v", st, err)
	}
	if _, err := svc.handleAssignDiscovery(ctx, nil, []byte(`{"mdm_service_discovery_url":"https://contoso.example/d"}`)); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetBetaTokens(ctx, []BetaToken{{Title: "iOS 27 Beta", OS: "iOS", Token: "t1"}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetQuirks(ctx, Quirks{ThrottleAssignSeconds: 5}); err != nil {
		t.Fatal(err)
	}
	closeStore()

	svc, closeStore = open()
	defer closeStore()
	lock, err := svc.DeviceActivationLock(ctx, "KEEP0001")
	if err != nil || !lock.Locked || lock.EscrowKey != escrow {
		t.Errorf("lock after reopen: %+v %v", lock, err)
	}
	d, err := svc.handleFetchDiscovery(ctx, nil, nil)
	if dp, ok := d.(*DiscoveryProfile); err != nil || !ok || dp.URL != "https://contoso.example/d" || dp.LastUpdated.IsZero() {
		t.Errorf("discovery after reopen: %+v %v", d, err)
	}
	b, err := svc.handleBetaTokens(ctx, nil, nil)
	if bt, ok := b.(BetaTokensResponse); err != nil || !ok || len(bt.BetaEnrollmentTokens) != 1 || bt.BetaEnrollmentTokens[0].Token != "t1" {
		t.Errorf("beta programs after reopen: %+v %v", b, err)
	}
	if q, err := svc.Quirks(ctx); err != nil || q.ThrottleAssignSeconds != 5 {
		t.Errorf("quirks after reopen: %+v %v", q, err)
	}
}
