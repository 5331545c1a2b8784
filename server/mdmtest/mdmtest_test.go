package mdmtest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/mdm"
)

func TestInProcessAndTLS(t *testing.T) {
	for name, opts := range map[string][]Option{"in-process": nil, "tls": {WithTLS()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := NewServer(t, opts...)
			if name == "tls" && !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
				t.Fatalf("TLS server URL %s", srv.URL())
			}
			dev := srv.NewDevice()
			id := srv.Enroll(dev)
			res := srv.Run(dev, &mdm.DeviceInformation{Queries: []string{"DeviceName"}})
			if res.Status != "Acknowledged" || res.EnrollmentID != id {
				t.Fatalf("%+v", res)
			}
			res = srv.Run(dev, map[string]any{"RequestType": "SecurityInfo"})
			if res.Status != "Acknowledged" {
				t.Fatalf("SecurityInfo: %+v", res)
			}
			raw := `<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>`
			if res := srv.Run(dev, raw); res.Status != "Acknowledged" {
				t.Fatalf("raw ProfileList: %+v", res)
			}
		})
	}
}

func TestServersAreIndependent(t *testing.T) {
	a, b := NewServer(t), NewServer(t)
	a.Enroll(a.NewDevice())
	ctx := context.Background()
	la, _ := a.Client().ListEnrollments(ctx)
	lb, _ := b.Client().ListEnrollments(ctx)
	if len(la) != 1 || len(lb) != 0 {
		t.Fatalf("state shared between servers: %d and %d enrollments", len(la), len(lb))
	}
	if d1, d2 := a.NewDevice(), a.NewDevice(); d1.UDID() == d2.UDID() {
		t.Error("two devices of one server share a UDID")
	}
}

func TestNotNowStaysPending(t *testing.T) {
	srv := NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	dev.SetNotNow("ProfileList", 1)
	uuid := srv.Enqueue(&mdm.ProfileList{}, id)
	ctx := context.Background()
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := srv.Client().GetCommand(ctx, uuid, 0)
	if err != nil || st.Done || st.Results[0].Status != "NotNow" {
		t.Fatalf("after NotNow: %+v %v", st, err)
	}
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if st := srv.WaitResult(uuid, 5*time.Second); st.Results[0].Status != "Acknowledged" {
		t.Fatalf("after the next connect: %+v", st)
	}
}

// recordingTB records a failure instead of stopping the test.
type recordingTB struct {
	testing.TB
	failed string
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitResultTimeoutFailsClearly(t *testing.T) {
	srv := NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	uuid := srv.Enqueue(&mdm.SecurityInfo{}, id)
	rec := &recordingTB{TB: t}
	srv.t = rec
	done := make(chan struct{})
	go func() { // Fatalf ends this goroutine, as t.Fatalf ends a test's
		defer close(done)
		srv.WaitResult(uuid, 300*time.Millisecond)
	}()
	<-done
	if !strings.Contains(rec.failed, "no final answer after 300ms") || !strings.Contains(rec.failed, id+"=Pending") {
		t.Fatalf("failure message: %q", rec.failed)
	}
}

func TestTLSCleanupLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("server", func(t *testing.T) {
		srv := NewServer(t, WithTLS())
		srv.Enroll(srv.NewDevice())
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after cleanup, %d before", n, before)
	}
}
