package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
	"github.com/mockmdm/mockmdm/webhook"
)

const udid = "00008030-001A2B3C4D5E6F70"

func authenticatePlist(udid string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>MessageType</key><string>Authenticate</string>
<key>Topic</key><string>com.apple.mgmt.External.test</string>
<key>UDID</key><string>` + udid + `</string>
</dict></plist>`)
}

func resultPlist(udid, commandUUID, status string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>` + commandUUID + `</string>
<key>Status</key><string>` + status + `</string>
<key>UDID</key><string>` + udid + `</string>
</dict></plist>`)
}

func checkinEntry(udid string) *store.TranscriptEntry {
	return &store.TranscriptEntry{Kind: "checkin", MessageType: "Authenticate", EnrollmentID: udid,
		Status: 200, Request: authenticatePlist(udid), Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func commandEntry(udid, cmd string) *store.TranscriptEntry {
	return &store.TranscriptEntry{Kind: "command", MessageType: "Acknowledged", EnrollmentID: udid,
		CommandUUID: cmd, Status: 200, Request: resultPlist(udid, cmd, "Acknowledged")}
}

// receiver is a webhook endpoint that records what it got and answers
// with fail(n) for the n-th request (1-based), 200 when fail returns 0.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []received
	hits atomic.Int64
}

type received struct {
	body   []byte
	header http.Header
}

func newReceiver(t *testing.T, fail func(n int64) int) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rc.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if fail != nil {
			if code := fail(n); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{body: body, header: r.Header.Clone()})
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func fast(extra ...webhook.Option) []webhook.Option {
	return append([]webhook.Option{webhook.WithBackoff(time.Millisecond, 4*time.Millisecond),
		webhook.WithAttemptTimeout(5 * time.Second)}, extra...)
}

func started(t *testing.T, urls []string, opts ...webhook.Option) *webhook.Webhook {
	t.Helper()
	w, err := webhook.New(urls, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func flush(t *testing.T, w *webhook.Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSignatureMatchesIndependentHMAC(t *testing.T) {
	const secret = "s3cret-key"
	rc := newReceiver(t, nil)
	w := started(t, []string{rc.srv.URL}, fast(webhook.WithSecret(secret))...)
	w.Observe(context.Background(), checkinEntry(udid))
	flush(t, w)
	got := rc.received()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	body, sig := got[0].body, got[0].header.Get("X-Hmac-Signature")
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if want := base64.StdEncoding.EncodeToString(m.Sum(nil)); sig != want {
		t.Fatalf("X-Hmac-Signature = %q, independent HMAC-SHA256 = %q", sig, want)
	}
	if ct := got[0].header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if !webhook.Verify([]byte(secret), body, sig) || webhook.Verify([]byte("other"), body, sig) ||
		webhook.Verify([]byte(secret), append(body, ' '), sig) || webhook.Verify([]byte(secret), body, "%%%") {
		t.Error("Verify disagrees with the signature it should accept or reject")
	}

	// openssl is an oracle we did not write.
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not on PATH: skipping the openssl HMAC cross-check")
		return
	}
	cmd := exec.Command(openssl, "dgst", "-sha256", "-hmac", secret, "-binary")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl dgst: %v", err)
	}
	if want := base64.StdEncoding.EncodeToString(out); sig != want {
		t.Fatalf("X-Hmac-Signature = %q, openssl says %q", sig, want)
	}
}

func TestNoSecretNoSignatureHeader(t *testing.T) {
	rc := newReceiver(t, nil)
	w := started(t, []string{rc.srv.URL}, fast()...)
	w.Observe(context.Background(), checkinEntry(udid))
	flush(t, w)
	if got := rc.received(); len(got) != 1 || got[0].header.Get("X-Hmac-Signature") != "" {
		t.Fatalf("want one unsigned request, got %d (%v)", len(got), got)
	}
}

func TestRetriesUntilTheReceiverRecovers(t *testing.T) {
	const failFirst = 3
	rc := newReceiver(t, func(n int64) int {
		if n <= failFirst {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	w := started(t, []string{rc.srv.URL}, fast(webhook.WithMaxAttempts(5))...)
	w.Observe(context.Background(), checkinEntry(udid))
	flush(t, w)
	if n := rc.hits.Load(); n != failFirst+1 {
		t.Errorf("receiver hit %d times, want %d", n, failFirst+1)
	}
	ds := w.Deliveries()
	if len(ds) != 1 || ds[0].Status != webhook.StatusDelivered || ds[0].Attempts != failFirst+1 || ds[0].HTTPStatus != 200 {
		t.Fatalf("delivery log: %+v", ds)
	}
	if s := w.Stats(); s.Delivered != 1 || s.Retries != failFirst || s.Failed != 0 || s.Pending != 0 {
		t.Errorf("stats: %+v", s)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	rc := newReceiver(t, func(int64) int { return http.StatusInternalServerError })
	var outcomes []string
	var mu sync.Mutex
	w := started(t, []string{rc.srv.URL}, fast(webhook.WithMaxAttempts(3),
		webhook.WithOnOutcome(func(o string) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock() }))...)
	w.Observe(context.Background(), checkinEntry(udid))
	flush(t, w)
	if n := rc.hits.Load(); n != 3 {
		t.Errorf("receiver hit %d times, want 3", n)
	}
	ds := w.Deliveries()
	if len(ds) != 1 || ds[0].Status != webhook.StatusFailed || ds[0].Attempts != 3 || ds[0].HTTPStatus != 500 ||
		!strings.Contains(ds[0].Error, "gave up after 3 attempts") {
		t.Fatalf("delivery log: %+v", ds)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 1 || outcomes[0] != webhook.StatusFailed {
		t.Errorf("outcomes observed: %v", outcomes)
	}
	// The event still settles, so a test awaiting it is not left hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.Wait(ctx, func(e webhook.Event) bool { return e.Topic == "mdm.Authenticate" }); err != nil {
		t.Fatal(err)
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 404, 410, 302} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			rc := newReceiver(t, func(int64) int { return code })
			w := started(t, []string{rc.srv.URL}, fast()...)
			w.Observe(context.Background(), checkinEntry(udid))
			flush(t, w)
			if n := rc.hits.Load(); n != 1 {
				t.Errorf("receiver hit %d times, want 1", n)
			}
			if ds := w.Deliveries(); ds[0].Status != webhook.StatusFailed || !strings.Contains(ds[0].Error, "not retried") {
				t.Errorf("delivery: %+v", ds[0])
			}
		})
	}
	// 429 and 408 are retried.
	rc := newReceiver(t, func(n int64) int {
		if n == 1 {
			return http.StatusTooManyRequests
		}
		return 0
	})
	w := started(t, []string{rc.srv.URL}, fast()...)
	w.Observe(context.Background(), checkinEntry(udid))
	flush(t, w)
	if ds := w.Deliveries(); ds[0].Status != webhook.StatusDelivered || ds[0].Attempts != 2 {
		t.Errorf("429 then 200: %+v", ds[0])
	}
}

func TestReceiverThatNeverAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a closed connection only once the body is read
		<-r.Context().Done()      // hold the request until the client gives up
	}))
	defer srv.Close()
	w := started(t, []string{srv.URL}, webhook.WithAttemptTimeout(20*time.Millisecond),
		webhook.WithBackoff(time.Millisecond, time.Millisecond), webhook.WithMaxAttempts(2))
	w.Observe(context.Background(), checkinEntry(udid))
	flush(t, w)
	ds := w.Deliveries()
	if len(ds) != 1 || ds[0].Status != webhook.StatusFailed || ds[0].Attempts != 2 || !strings.Contains(ds[0].Error, "no answer within") {
		t.Fatalf("delivery log: %+v", ds)
	}
}

func TestCloseCancelsAHungDelivery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		<-r.Context().Done()
	}))
	defer srv.Close()
	w, err := webhook.New([]string{srv.URL}, webhook.WithAttemptTimeout(time.Hour), webhook.WithDrainTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Observe(context.Background(), checkinEntry(udid))
	if err := w.Close(); err != nil { // returns: the drain timeout cancels the hour-long attempt
		t.Fatal(err)
	}
	ds := w.Deliveries()
	if len(ds) != 1 || ds[0].Status != webhook.StatusFailed || !strings.Contains(ds[0].Error, "stopped") {
		t.Fatalf("delivery log after Close: %+v", ds)
	}
	if s := w.Stats(); s.Pending != 0 || s.Failed != 1 {
		t.Errorf("stats: %+v", s)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	rc := newReceiver(t, nil)
	w, err := webhook.New([]string{rc.srv.URL}, webhook.WithQueueSize(2), webhook.WithShards(1))
	if err != nil {
		t.Fatal(err)
	}
	// Not started: the queue fills and the third event has nowhere to go.
	for i := range 3 {
		w.Observe(context.Background(), commandEntry(udid, fmt.Sprintf("cmd-%d", i)))
	}
	s := w.Stats()
	if s.Events != 3 || s.Dropped != 1 || s.Pending != 2 {
		t.Fatalf("stats with a full queue: %+v", s)
	}
	ds := w.Deliveries()
	if ds[2].Status != webhook.StatusDropped || !strings.Contains(ds[2].Error, "queue full") {
		t.Errorf("third delivery: %+v", ds[2])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Dropped != 3 || s.Pending != 0 {
		t.Errorf("after Close without Start every queued event is dropped and counted: %+v", s)
	}
	w.Observe(context.Background(), checkinEntry(udid))
	if s := w.Stats(); s.Dropped != 4 {
		t.Errorf("an event after Close is dropped and counted: %+v", s)
	}
	if rc.hits.Load() != 0 {
		t.Error("a webhook never started posted something")
	}
}

func TestOrderPerEnrollment(t *testing.T) {
	// The receiver fails every third request, so retries interleave with
	// new events; each enrollment's events must still arrive in order.
	rc := newReceiver(t, func(n int64) int {
		if n%3 == 0 {
			return http.StatusBadGateway
		}
		return 0
	})
	w := started(t, []string{rc.srv.URL}, fast(webhook.WithShards(3), webhook.WithMaxAttempts(10))...)
	devices := []string{"AAAA", "BBBB", "CCCC", "DDDD"}
	const per = 15
	for i := range per {
		for _, d := range devices {
			w.Observe(context.Background(), commandEntry(d, fmt.Sprintf("%s-%02d", d, i)))
		}
	}
	flush(t, w)
	seen := map[string][]string{}
	for _, r := range rc.received() {
		var ev webhook.Event
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatal(err)
		}
		a := ev.AcknowledgeEvent
		seen[a.UDID] = append(seen[a.UDID], a.CommandUUID)
	}
	for _, d := range devices {
		if len(seen[d]) != per {
			t.Fatalf("%s: %d events arrived, want %d", d, len(seen[d]), per)
		}
		for i, c := range seen[d] {
			if want := fmt.Sprintf("%s-%02d", d, i); c != want {
				t.Fatalf("%s: event %d is %s, want %s (order: %v)", d, i, c, want, seen[d])
			}
		}
	}
}

func TestManyURLsEachGetEveryEvent(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, func(int64) int { return 500 })
	w := started(t, []string{a.srv.URL, b.srv.URL}, fast(webhook.WithMaxAttempts(2))...)
	w.Observe(context.Background(), checkinEntry(udid))
	flush(t, w)
	if len(a.received()) != 1 || b.hits.Load() != 2 {
		t.Fatalf("a got %d, b was hit %d times", len(a.received()), b.hits.Load())
	}
	s := w.Stats()
	if s.Events != 1 || s.Delivered != 1 || s.Failed != 1 {
		t.Errorf("stats: %+v", s)
	}
}

func TestEventFormat(t *testing.T) {
	rc := newReceiver(t, nil)
	w := started(t, []string{rc.srv.URL}, fast()...)
	ctx := context.Background()
	w.Observe(ctx, checkinEntry(udid))
	w.Observe(ctx, commandEntry(udid, "5f0c1a1e-0000-4000-8000-000000000001"))
	flush(t, w)
	got := rc.received()
	if len(got) != 2 {
		t.Fatalf("got %d", len(got))
	}
	var first map[string]any
	if err := json.Unmarshal(got[0].body, &first); err != nil {
		t.Fatal(err)
	}
	if first["topic"] != "mdm.Authenticate" || first["created_at"] != "2025-01-02T03:04:05Z" || first["acknowledge_event"] != nil {
		t.Errorf("check-in event: %v", first)
	}
	ce := first["checkin_event"].(map[string]any)
	if ce["udid"] != udid || ce["url_params"] != nil || ce["raw_payload"] != base64.StdEncoding.EncodeToString(authenticatePlist(udid)) {
		t.Errorf("checkin_event: %v", ce)
	}
	if _, present := ce["url_params"]; !present {
		t.Error("checkin_event must carry url_params (null) as MicroMDM does")
	}
	if _, present := ce["enrollment_id"]; present {
		t.Error("enrollment_id is only for User Enrollments")
	}
	var second webhook.Event
	if err := json.Unmarshal(got[1].body, &second); err != nil {
		t.Fatal(err)
	}
	ack := second.AcknowledgeEvent
	if second.Topic != "mdm.Connect" || second.CheckinEvent != nil || ack == nil || ack.Status != "Acknowledged" ||
		ack.CommandUUID != "5f0c1a1e-0000-4000-8000-000000000001" || ack.UDID != udid ||
		!bytes.Equal(ack.RawPayload, resultPlist(udid, "5f0c1a1e-0000-4000-8000-000000000001", "Acknowledged")) {
		t.Errorf("acknowledge event: %+v", second)
	}
	if second.EventID == "" || second.EventID == first["event_id"] {
		t.Errorf("event IDs %v and %v", first["event_id"], second.EventID)
	}
}

func TestOnlySuccessfulDeviceExchangesAreEvents(t *testing.T) {
	w, err := webhook.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ok := checkinEntry(udid)
	cases := []*store.TranscriptEntry{
		nil,
		{Kind: "checkin", Status: 400, Request: ok.Request},
		{Kind: "checkin", Status: 500, Request: ok.Request},
		{Kind: "checkin", Status: 304, Request: ok.Request},
		{Kind: "scep", Status: 200, Request: []byte("x")},
		{Kind: "push", Status: 200, Request: ok.Request},
		{Kind: "checkin", Status: 200},
	}
	for _, e := range cases {
		w.Observe(context.Background(), e)
	}
	if s := w.Stats(); s.Events != 0 || s.DecodeErrors != 0 {
		t.Fatalf("non-events made events: %+v", s)
	}
	// A recorded-as-successful body that does not decode is counted, not
	// dropped silently: with no receivers, when the event is first asked for.
	w.Observe(context.Background(), &store.TranscriptEntry{Kind: "checkin", Status: 200, Request: []byte("<plist>")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Wait(ctx, nil); err == nil {
		t.Fatal("Wait found an event in a body that does not decode")
	}
	if s := w.Stats(); s.DecodeErrors != 1 || s.Events != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestTranscriptsDecorator(t *testing.T) {
	st := memory.New()
	defer st.Close()
	w, err := webhook.New(nil) // no URLs: events are made and awaitable
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tr := w.Transcripts(st)
	ctx := context.Background()
	if err := tr.AppendTranscript(ctx, checkinEntry(udid), commandEntry(udid, "c1")); err != nil {
		t.Fatal(err)
	}
	entries, err := st.Transcript(ctx, "", 0, 0)
	if err != nil || len(entries) != 2 {
		t.Fatalf("the store got %d entries (%v)", len(entries), err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev, err := w.Wait(wctx, func(e webhook.Event) bool { return e.Topic == "mdm.Connect" })
	if err != nil || ev.AcknowledgeEvent.CommandUUID != "c1" || ev.Enrollment() != udid {
		t.Fatalf("Wait: %+v, %v", ev, err)
	}
	short, cancel2 := context.WithCancel(ctx)
	cancel2()
	if _, err := w.Wait(short, func(e webhook.Event) bool { return e.Topic == "mdm.CheckOut" }); err == nil {
		t.Fatal("Wait for an event that never comes returned no error")
	}
}

func TestWaitSeesEventsThatSettleLater(t *testing.T) {
	rc := newReceiver(t, nil)
	w := started(t, []string{rc.srv.URL}, fast()...)
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		_, err := w.Wait(ctx, func(e webhook.Event) bool { return e.Topic == "mdm.Connect" })
		done <- err
	}()
	w.Observe(ctx, checkinEntry(udid))
	w.Observe(ctx, commandEntry(udid, "later"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	w, err := webhook.New(nil, webhook.WithHistory(2), webhook.WithLogSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 5 {
		w.Observe(context.Background(), commandEntry(udid, fmt.Sprint(i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Wait(ctx, func(e webhook.Event) bool { return e.AcknowledgeEvent.CommandUUID == "0" }); err == nil {
		t.Error("an event past the history bound is still found")
	}
	if ev, err := w.Wait(ctx, func(e webhook.Event) bool { return e.AcknowledgeEvent.CommandUUID == "4" }); err != nil || ev.Topic != "mdm.Connect" {
		t.Errorf("the newest event: %+v %v", ev, err)
	}
}

func TestConfigErrors(t *testing.T) {
	bad := []struct {
		urls []string
		opts []webhook.Option
		want string
	}{
		{[]string{"ftp://example.com/x"}, nil, "http:// or https://"},
		{[]string{"example.com/hook"}, nil, "http:// or https://"},
		{[]string{"http://"}, nil, "no host"},
		{[]string{"http://:8080/x"}, nil, "no host"},
		{[]string{"http://exa mple.com"}, nil, "not a URL"},
		{[]string{"http://example.com/x#frag"}, nil, "fragment"},
		{[]string{"javascript:alert(1)"}, nil, "http:// or https://"},
		{[]string{"http://ok.example"}, []webhook.Option{webhook.WithMaxAttempts(0)}, "max attempts"},
		{[]string{"http://ok.example"}, []webhook.Option{webhook.WithAttemptTimeout(0)}, "attempt timeout"},
		{[]string{"http://ok.example"}, []webhook.Option{webhook.WithBackoff(time.Second, time.Millisecond)}, "backoff"},
		{[]string{"http://ok.example"}, []webhook.Option{webhook.WithQueueSize(0)}, "queue size"},
	}
	for _, c := range bad {
		_, err := webhook.New(c.urls, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q): %v, want an error containing %q", c.urls, err, c.want)
		}
	}
	w, err := webhook.New([]string{" https://user:pw@hooks.example/in ", "", "http://127.0.0.1:5001/webhook"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.URLs(); len(got) != 2 || strings.Contains(got[0], "pw") {
		t.Errorf("URLs: %v (the password must be redacted)", got)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
}

func TestGoroutinesBackToBaselineAfterClose(t *testing.T) {
	rc := newReceiver(t, nil)
	before := runtime.NumGoroutine()
	w, err := webhook.New([]string{rc.srv.URL, rc.srv.URL + "/second"}, fast(webhook.WithShards(4))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		w.Observe(context.Background(), commandEntry(fmt.Sprint("dev", i), "c"))
	}
	flush(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rc.srv.Close() // the receiver's connection goroutines are not ours
	// Goroutines end asynchronously after their connections close; wait for
	// that (not a timed assertion: the bound is only against a hang).
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
