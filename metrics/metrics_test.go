package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mockmdm/mockmdm/metrics"
	"github.com/mockmdm/mockmdm/store"
)

type fakeStore struct {
	enrollments []*store.Enrollment
	listErr     error
	queued      int
	reads       int
}

func (f *fakeStore) ListEnrollments(context.Context) ([]*store.Enrollment, error) {
	return f.enrollments, f.listErr
}

func (f *fakeStore) QueueItems(context.Context, string) ([]*store.QueueItem, error) {
	f.reads++
	return make([]*store.QueueItem, f.queued), nil
}

func scrapeText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestStoreGaugesAndScanLimit(t *testing.T) {
	st := &fakeStore{queued: 2, enrollments: []*store.Enrollment{
		{ID: "a", Type: "Device", Enrolled: true},
		{ID: "b", Type: "Device", CheckedOut: true},
		{ID: "c", Type: "User"},
		{ID: "d", Type: "Device", Enrolled: true},
	}}
	m := metrics.New(metrics.WithStore(st, st), metrics.WithScrapeLimits(metrics.DefaultScrapeTimeout, 3))
	out := scrapeText(t, m)
	for _, want := range []string{
		`mockmdm_enrollments{state="enrolled",type="Device"} 2`,
		`mockmdm_enrollments{state="checked_out",type="Device"} 1`,
		`mockmdm_enrollments{state="pending",type="User"} 1`,
		`mockmdm_queue_depth 4`, // a and c: b is checked out, d is past the scan limit
		`mockmdm_queue_scan_truncated 1`,
		`mockmdm_store_scrape_errors 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q:\n%s", want, out)
		}
	}
	if st.reads != 2 {
		t.Errorf("queues read: %d, want 2", st.reads)
	}
}

func TestStoreErrorDoesNotFailTheScrape(t *testing.T) {
	st := &fakeStore{listErr: errors.New("database is locked")}
	m := metrics.New(metrics.WithStore(st, st))
	m.ObservePush("sent")
	out := scrapeText(t, m)
	if !strings.Contains(out, "mockmdm_store_scrape_errors 1") || !strings.Contains(out, `mockmdm_push_results_total{outcome="sent"} 1`) {
		t.Errorf("scrape:\n%s", out)
	}
	if strings.Contains(out, "mockmdm_queue_depth") {
		t.Error("a queue depth was reported without reading the store")
	}
}

func TestInstrument(t *testing.T) {
	m := metrics.New()
	h := m.Instrument("/v1/things/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/things/teapot":
			w.WriteHeader(http.StatusTeapot)
		case "/v1/things/silent":
			// writes nothing: net/http answers 200
		default:
			_, _ = w.Write([]byte("ok"))
			if _, ok := w.(http.Flusher); !ok {
				t.Error("the instrumented writer hides http.Flusher")
			}
		}
	}))
	for _, p := range []string{"/v1/things/1", "/v1/things/2", "/v1/things/teapot", "/v1/things/silent"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/v1/things/1", nil))
	out := scrapeText(t, m)
	for _, want := range []string{
		`mockmdm_http_requests_total{code="200",endpoint="/v1/things/{id}",method="GET"} 3`,
		`mockmdm_http_requests_total{code="418",endpoint="/v1/things/{id}",method="GET"} 1`,
		`mockmdm_http_requests_total{code="200",endpoint="/v1/things/{id}",method="OTHER"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q:\n%s", want, out)
		}
	}
	if n := testutil.CollectAndCount(m.Registry(), "mockmdm_http_request_duration_seconds"); n != 2 {
		t.Errorf("duration series: %d, want 2 (GET and OTHER)", n)
	}
	if problems, err := testutil.GatherAndLint(m.Registry()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestInstrumentKeepsHijack: an upgraded stream (the mock APNs device
// stream hijacks its HTTP/1 connection) still works behind Instrument.
func TestInstrumentKeepsHijack(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(m.Instrument("/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijacker", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\n")
		_ = rw.Flush()
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101 from the hijacked connection", resp.StatusCode)
	}
	// The count is taken when the handler returns, which may come just
	// after the client has the 101 it wrote.
	want := `mockmdm_http_requests_total{code="101",endpoint="/stream",method="GET"} 1`
	out := scrapeText(t, m)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out, want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		out = scrapeText(t, m)
	}
	if !strings.Contains(out, want) {
		t.Errorf("scrape:\n%s", out)
	}
}
