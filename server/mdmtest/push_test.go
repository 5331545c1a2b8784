package mdmtest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
)

// TestPushWakesDevice is the whole push path with no "connect" from the
// test: the API queues and pushes, the mock APNs delivers to the device's
// stream, the device connects and answers, the API shows the result.
func TestPushWakesDevice(t *testing.T) {
	for name, opts := range map[string][]Option{"in-process": nil, "tls": {WithTLS()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := NewServer(t, opts...)
			dev := srv.NewDevice()
			id := srv.Enroll(dev)
			var mu sync.Mutex
			var events []device.PushEvent
			srv.ListenForPushes(dev, device.OnPush(func(ev device.PushEvent) {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			}))

			ctx := context.Background()
			resp, err := srv.Client().Enqueue(ctx, api.EnqueueRequest{
				EnrollmentIDs: []string{id},
				Command:       []byte(`{"RequestType":"DeviceInformation","Queries":["DeviceName","SerialNumber"]}`),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Push) != 1 || !resp.Push[0].Pushed || resp.Push[0].APNsID == "" {
				t.Fatalf("enqueue did not push: %+v", resp.Push)
			}
			st := srv.WaitResult(resp.CommandUUID, 10*time.Second)
			if r := st.Results[0]; r.Status != "Acknowledged" || r.EnrollmentID != id {
				t.Fatalf("result %+v", r)
			}
			waitUntil(t, "the push event", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) > 0 })
			mu.Lock()
			defer mu.Unlock()
			if len(events) == 0 || events[0].Push.ID != resp.Push[0].APNsID || events[0].Connect == nil || len(events[0].Connect.Commands) != 1 {
				t.Fatalf("device push events %+v", events)
			}
			stats := srv.Server().MockAPNs().Stats()
			if stats.Acknowledged < 1 || stats.Connected != 1 {
				t.Fatalf("mock APNs stats %+v", stats)
			}
		})
	}
}

// TestPushToOfflineDeviceArrivesWhenBack: nothing lost while a device is
// off the network — the mock keeps the push, the device gets it on return.
func TestPushToOfflineDeviceArrivesWhenBack(t *testing.T) {
	srv := NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	srv.ListenForPushes(dev)
	mock := srv.Server().MockAPNs()
	token := dev.Hardware().PushToken

	dev.SetOffline(true)
	waitUntil(t, "the device to drop its stream", func() bool { return !mock.Connected(token) })
	resp, err := srv.Client().Enqueue(context.Background(), api.EnqueueRequest{EnrollmentIDs: []string{id}, Command: []byte(`{"RequestType":"ProfileList"}`)})
	if err != nil {
		t.Fatal(err)
	}
	uuid := resp.CommandUUID
	if _, ok := mock.Pending(token); !ok || !resp.Push[0].Pushed {
		t.Fatalf("the push to the offline device is not held by the mock APNs: %+v", resp.Push)
	}
	time.Sleep(100 * time.Millisecond)
	if st := srv.WaitResultNow(uuid); st.Done {
		t.Fatal("an offline device answered")
	}
	dev.SetOffline(false)
	st := srv.WaitResult(uuid, 10*time.Second)
	if st.Results[0].Status != "Acknowledged" {
		t.Fatalf("%+v", st.Results[0])
	}
	waitUntil(t, "the pending push to clear", func() bool { _, ok := mock.Pending(token); return !ok })
}

// TestPushFollowsTokenRotation: a new token resubscribes the stream, and
// the server pushes to the token of the latest TokenUpdate.
func TestPushFollowsTokenRotation(t *testing.T) {
	srv := NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	srv.ListenForPushes(dev)
	old := dev.Hardware().PushToken
	if err := dev.RotatePushToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new token to subscribe", func() bool { return srv.Server().MockAPNs().Connected(dev.Hardware().PushToken) })
	uuid := srv.Enqueue(&mdm.SecurityInfo{}, id)
	if st := srv.WaitResult(uuid, 10*time.Second); st.Results[0].Status != "Acknowledged" {
		t.Fatalf("%+v", st.Results[0])
	}
	if srv.Server().MockAPNs().Connected(old) {
		t.Fatal("the old token still holds a stream")
	}
}

// WaitResultNow reads a command's state without waiting.
func (s *Server) WaitResultNow(uuid string) *api.CommandStatus {
	s.t.Helper()
	st, err := s.client.GetCommand(context.Background(), uuid, 0)
	if err != nil {
		s.t.Fatalf("mdmtest: command %s: %v", uuid, err)
	}
	return st
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestPushHeldUntilTheDeviceListens: APNs knows a token from the device's
// TokenUpdate on, so a push to an enrolled device that is not listening
// yet is held and reaches it when it subscribes; after CheckOut the token
// is unregistered and a push answers 410 Unregistered.
func TestPushHeldUntilTheDeviceListens(t *testing.T) {
	srv := NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()
	resp, err := srv.Client().Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: []string{id}, Command: []byte(`{"RequestType":"ProfileList"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Push[0].Pushed {
		t.Fatalf("push to an enrolled device that is not listening: %+v", resp.Push[0])
	}
	srv.ListenForPushes(dev)
	if st := srv.WaitResult(resp.CommandUUID, 10*time.Second); st.Results[0].Status != "Acknowledged" {
		t.Fatalf("%+v", st.Results[0])
	}

	other := srv.NewDevice()
	oid := srv.Enroll(other)
	if err := other.Unenroll(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Push(ctx, oid)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Pushed || !strings.Contains(res[0].Error, "checked out") {
		t.Fatalf("push to a checked-out enrollment: %+v", res[0])
	}
	// The mock itself says Unregistered for that token, with a timestamp.
	if err := srv.Server().MockAPNs().Unregister(other.Hardware().PushToken); err != nil {
		t.Fatalf("the checked-out token is not known to the mock: %v", err)
	}
}
