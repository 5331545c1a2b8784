package fleet_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/device/fleet"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

func TestFleetEnrollsAndConnects(t *testing.T) {
	srv := mdmtest.NewServer(t)
	var progressed atomic.Int64
	f := fleet.New(srv.Doer(), 20, fleet.WithSeedBase(100),
		fleet.WithDeviceOptions(device.WithTrust(srv.Trust()), device.WithKeySize(1024)),
		fleet.WithProgress(func(string, int, int) { progressed.Add(1) }))
	ctx := context.Background()
	rep := f.Enroll(ctx, srv.EnrollURL(), 4)
	if rep.OK != 20 || rep.Failed != 0 || progressed.Load() != 20 {
		t.Fatalf("enroll report: %+v", rep)
	}
	for _, step := range []string{"SCEP", "Authenticate", "TokenUpdate", "enroll (total)"} {
		l, ok := rep.Steps[step]
		if !ok || l.Count != 20 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.Max || l.P50 <= 0 {
			t.Errorf("step %s: %+v", step, l)
		}
	}
	for _, d := range f.Devices()[:5] {
		srv.Enqueue(&mdm.SecurityInfo{}, d.UDID())
	}
	rep = f.Connect(ctx, 2, 4)
	if rep.OK != 40 || rep.Steps["connect"].Count != 40 {
		t.Fatalf("connect report: %+v", rep)
	}
	var sb strings.Builder
	rep.WriteText(&sb)
	if !strings.Contains(sb.String(), "connect: 40 ok, 0 failed") {
		t.Errorf("text report:\n%s", sb.String())
	}
	if _, err := rep.JSON(); err != nil {
		t.Error(err)
	}
}

func TestFleetGroupsErrorsAndStops(t *testing.T) {
	srv := mdmtest.NewServer(t)
	f := fleet.New(srv.Doer(), 10, fleet.WithDeviceOptions(device.WithTrust(srv.Trust())))
	rep := f.Enroll(context.Background(), srv.URL()+"/no-such-profile", 3)
	if rep.Failed != 10 || rep.Errors["HTTP 404 at profile download"] != 10 {
		t.Fatalf("report: %+v", rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	rep = f.Enroll(ctx, srv.EnrollURL(), 2)
	if time.Since(start) > 5*time.Second || rep.OK != 0 {
		t.Fatalf("cancelled run: %+v after %s", rep, time.Since(start))
	}
}

// TestFleetListensAndWakesOnPush: every device of a fleet holds a stream at
// the mock APNs; one push per device wakes each, with no direct connect.
func TestFleetListensAndWakesOnPush(t *testing.T) {
	srv := mdmtest.NewServer(t)
	f := fleet.New(srv.Doer(), 15, fleet.WithDeviceOptions(device.WithTrust(srv.Trust()), device.WithKeySize(1024)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rep := f.Enroll(ctx, srv.EnrollURL(), 4); rep.OK != 15 {
		t.Fatalf("enroll: %+v", rep)
	}
	baseline := runtime.NumGoroutine()
	l := f.Listen(ctx, "http://mockmdm.test/apns", srv.APNsDialOptions())
	defer l.Stop()
	if !l.WaitFor(ctx, func() bool { return l.Subscribed() == 15 }) {
		t.Fatalf("%d of 15 subscribed", l.Subscribed())
	}
	var ids []string
	for _, d := range f.Devices() {
		ids = append(ids, d.UDID())
	}
	uuid := srv.Enqueue(&mdm.SecurityInfo{}, ids...)
	st := srv.WaitResult(uuid, 20*time.Second)
	for _, r := range st.Results {
		if r.Status != "Acknowledged" {
			t.Fatalf("%s: %s", r.EnrollmentID, r.Status)
		}
	}
	if !l.WaitFor(ctx, func() bool { return l.Woken() == 15 }) {
		t.Fatalf("%d of 15 woke", l.Woken())
	}
	rep := l.Report(time.Second)
	if rep.OK != 15 || rep.Failed != 0 || rep.Steps["wake"].Count != 15 {
		t.Fatalf("push report %+v", rep)
	}
	if got := srv.Server().MockAPNs().Stats().Connected; got != 15 {
		t.Fatalf("mock APNs holds %d streams, want 15", got)
	}
	l.Stop()
	if !l.WaitFor(ctx, func() bool { return srv.Server().MockAPNs().Stats().Connected == 0 }) {
		t.Fatalf("after Stop the mock still holds %d streams", srv.Server().MockAPNs().Stats().Connected)
	}
	// No goroutine outlives the streams: the devices' listeners and the
	// mock's in-process pipes are gone; only the mock's heartbeat, started
	// with its first stream, stays until the server closes.
	if !l.WaitFor(ctx, func() bool { return runtime.NumGoroutine() <= baseline+1 }) {
		t.Fatalf("%d goroutines after Stop, %d before Listen", runtime.NumGoroutine(), baseline)
	}
}
