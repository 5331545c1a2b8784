package server

import (
	"context"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/internal/flowtest"
)

// TestEndToEndInProcess runs the whole enrollment and command flow through
// the server's handler with no socket: a virtual device fetches and verifies
// /enroll, enrolls over SCEP, and answers a DeviceInformation command queued
// through the REST API, whose result is then read back through the API.
func TestEndToEndInProcess(t *testing.T) {
	s := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, client := enrollInProcess(t, ctx, s)
	flowtest.DeviceInformationRoundTrip(t, ctx, client, e)
}

// TestIdentityLifetimeConfigurable enrolls through a server whose SCEP
// issues ten-minute identities and checks the device got one.
func TestIdentityLifetimeConfigurable(t *testing.T) {
	s := newTestServer(t, WithIdentityValidity(10*time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, _ := enrollInProcess(t, ctx, s)
	ids := e.Device.Identities()
	if len(ids) != 1 {
		t.Fatalf("%d identities", len(ids))
	}
	if left := time.Until(ids[0].NotAfter); left <= 9*time.Minute || left > 10*time.Minute+time.Second {
		t.Errorf("identity valid for another %s, want about 10m", left)
	}
	if _, err := New(s.Store(), sharedPKI(t), "https://x.test", WithIdentityValidity(time.Second)); err == nil {
		t.Error("a one-second identity lifetime was accepted")
	}
}
