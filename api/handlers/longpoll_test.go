package handlers

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
)

// TestLongPollWakesOnPublish holds a GetCommand with a long wait while a
// "device" answers in another goroutine: the request must come back done
// on the hub's signal, not at the end of the wait. The store re-read timer
// is set to an hour so only the signal can wake it.
func TestLongPollWakesOnPublish(t *testing.T) {
	e := newEnv(t)
	e.api.pollEvery = time.Hour
	e.seed()
	e.enqueue("WAIT-1", idEnrolled)

	type answer struct {
		rec     *httptest.ResponseRecorder
		elapsed time.Duration
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		rec := e.do(req{method: "GET", path: "/v1/commands/WAIT-1?wait=100s"})
		done <- answer{rec, time.Since(start)}
	}()

	// The device answers a moment later, and the service announces it.
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(50 * time.Millisecond)
		if err := e.st.SaveResult(context.Background(), idEnrolled, "WAIT-1", "Acknowledged",
			[]byte(resultPlist(idEnrolled, "WAIT-1")), testNow); err != nil {
			t.Error(err)
		}
		e.hub.Publish("WAIT-1")
	})
	defer wg.Wait()

	select {
	case a := <-done:
		st := decode[api.CommandStatus](t, a.rec, 200)
		if !st.Done || st.Results[0].Status != "Acknowledged" {
			t.Fatalf("long-poll answer %+v", st)
		}
		if a.elapsed > 50*time.Second {
			t.Fatalf("long-poll ran to its wait (%s) instead of waking", a.elapsed)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("long-poll did not wake on the published result")
	}
}

// TestLongPollPollsStore covers an answer saved by another process sharing
// the store: no hub signal, so the periodic re-read must find it.
func TestLongPollPollsStore(t *testing.T) {
	e := newEnv(t)
	e.api.pollEvery = 10 * time.Millisecond
	e.seed()
	e.enqueue("WAIT-2", idEnrolled)
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(30 * time.Millisecond)
		if err := e.st.SaveResult(context.Background(), idEnrolled, "WAIT-2", "Acknowledged", []byte(resultPlist(idEnrolled, "WAIT-2")), testNow); err != nil {
			t.Error(err)
		}
	})
	rec := e.do(req{method: "GET", path: "/v1/commands/WAIT-2?wait=100"})
	wg.Wait()
	if st := decode[api.CommandStatus](t, rec, 200); !st.Done {
		t.Fatalf("not done: %+v", st)
	}
}

// TestLongPollTimesOut: nobody answers, so the request returns done=false
// once the wait has passed.
func TestLongPollTimesOut(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.enqueue("WAIT-3", idEnrolled)
	start := time.Now()
	rec := e.do(req{method: "GET", path: "/v1/commands/WAIT-3?wait=150ms"})
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("returned after %s, before the wait of 150ms", elapsed)
	}
	st := decode[api.CommandStatus](t, rec, 200)
	if st.Done || st.Results[0].Status != "Pending" {
		t.Fatalf("%+v", st)
	}
	// A NotNow is not final either.
	if err := e.st.SaveResult(context.Background(), idEnrolled, "WAIT-3", "NotNow", []byte("<plist><dict/></plist>"), testNow); err != nil {
		t.Fatal(err)
	}
	e.hub.Publish("WAIT-3")
	st = decode[api.CommandStatus](t, e.do(req{method: "GET", path: "/v1/commands/WAIT-3?wait=0.05"}), 200)
	if st.Done || st.Results[0].Status != "NotNow" {
		t.Fatalf("after NotNow: %+v", st)
	}
}

// TestLongPollClientGone: a client that hangs up ends the wait at once.
func TestLongPollClientGone(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.enqueue("WAIT-4", idEnrolled)
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		e.do(req{method: "GET", path: "/v1/commands/WAIT-4?wait=100s", ctx: ctx})
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("handler kept waiting after the client went away")
	}
}

func TestParseWait(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "30s": 30 * time.Second, "30": 30 * time.Second, "2.5": 2500 * time.Millisecond,
		"2m": 2 * time.Minute, "120": 2 * time.Minute, "1e1": 10 * time.Second,
	} {
		got, err := parseWait(in)
		if err != nil || got != want {
			t.Errorf("parseWait(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "-1", "-1s", "121", "2m1s", "NaN", "Inf", "+Inf", "0x10", "1h", "30 s"} {
		if _, err := parseWait(in); err == nil {
			t.Errorf("parseWait(%q) accepted", in)
		}
	}
}
