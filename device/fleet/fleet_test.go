package fleet_test

import (
	"context"
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
