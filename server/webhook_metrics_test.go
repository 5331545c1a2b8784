package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server"
	"github.com/mockmdm/mockmdm/server/mdmtest"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/webhook"
)

type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, b)
		rc.sigs = append(rc.sigs, r.Header.Get("X-Hmac-Signature"))
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func flushHooks(t *testing.T, srv *mdmtest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Server().Webhook().Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookEventsOfARealEnrollment enrolls a virtual device, runs a
// command, and checks the webhook events field by field against what the
// device sent (the transcript's raw requests).
func TestWebhookEventsOfARealEnrollment(t *testing.T) {
	const secret = "hook-secret"
	rc := newHookReceiver(t)
	srv := mdmtest.NewServer(t, mdmtest.WithServerOptions(
		server.WithWebhook([]string{rc.srv.URL}, webhook.WithSecret(secret))))
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()
	cmdUUID := srv.Enqueue(&mdm.DeviceInformation{Queries: []string{"SerialNumber"}}, id)
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	srv.WaitResult(cmdUUID, 10*time.Second)
	flushHooks(t, srv)

	entries, err := srv.Server().Store().Transcript(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []*store.TranscriptEntry // the device exchanges that should be events, in order
	for _, e := range entries {
		if (e.Kind == "checkin" || e.Kind == "command") && e.Status/100 == 2 {
			want = append(want, e)
		}
	}
	rc.mu.Lock()
	bodies, sigs := rc.bodies, rc.sigs
	rc.mu.Unlock()
	if len(bodies) != len(want) || len(want) < 3 {
		t.Fatalf("receiver got %d events for %d successful exchanges", len(bodies), len(want))
	}
	var topics []string
	for i, body := range bodies {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		if sigs[i] != base64.StdEncoding.EncodeToString(m.Sum(nil)) {
			t.Errorf("event %d: X-Hmac-Signature %q does not match an independent HMAC-SHA256", i, sigs[i])
		}
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("event %d is not JSON: %v\n%s", i, err, body)
		}
		var topic, eventID string
		var created time.Time
		_ = json.Unmarshal(ev["topic"], &topic)
		_ = json.Unmarshal(ev["event_id"], &eventID)
		if err := json.Unmarshal(ev["created_at"], &created); err != nil || created.IsZero() {
			t.Errorf("event %d created_at %s", i, ev["created_at"])
		}
		if _, err := uuid.Parse(eventID); err != nil {
			t.Errorf("event %d event_id %q is not a UUID", i, eventID)
		}
		topics = append(topics, topic)
		e := want[i]
		if e.Kind == "checkin" {
			if topic != "mdm."+e.MessageType {
				t.Errorf("event %d topic %q for a %s check-in", i, topic, e.MessageType)
			}
			if _, has := ev["acknowledge_event"]; has {
				t.Errorf("event %d: a check-in event with acknowledge_event", i)
			}
			var ce struct {
				UDID         string            `json:"udid"`
				EnrollmentID *string           `json:"enrollment_id"`
				Params       map[string]string `json:"url_params"`
				RawPayload   []byte            `json:"raw_payload"`
			}
			if err := json.Unmarshal(ev["checkin_event"], &ce); err != nil {
				t.Fatalf("event %d checkin_event: %v", i, err)
			}
			if ce.UDID != dev.UDID() || ce.EnrollmentID != nil || !bytes.Equal(ce.RawPayload, e.Request) {
				t.Errorf("event %d checkin_event: udid %q enrollment_id %v, raw payload equal to the request: %v",
					i, ce.UDID, ce.EnrollmentID, bytes.Equal(ce.RawPayload, e.Request))
			}
			if i == 0 {
				plistOracle(t, ce.RawPayload, "Authenticate", dev.UDID())
			}
		} else {
			var ack struct {
				UDID        string `json:"udid"`
				Status      string `json:"status"`
				CommandUUID string `json:"command_uuid"`
				RawPayload  []byte `json:"raw_payload"`
			}
			if err := json.Unmarshal(ev["acknowledge_event"], &ack); err != nil {
				t.Fatalf("event %d acknowledge_event: %v", i, err)
			}
			if topic != "mdm.Connect" || ack.UDID != dev.UDID() || ack.Status != e.MessageType ||
				ack.CommandUUID != e.CommandUUID || !bytes.Equal(ack.RawPayload, e.Request) {
				t.Errorf("event %d: topic %q acknowledge_event %+v, want the exchange %+v", i, topic, ack, e)
			}
		}
	}
	if topics[0] != "mdm.Authenticate" || topics[1] != "mdm.TokenUpdate" {
		t.Errorf("topics in order: %v", topics)
	}

	// The event is awaitable in-process, and the command's answer is among them.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev, err := srv.Server().Webhook().Wait(wctx, func(e webhook.Event) bool {
		return e.AcknowledgeEvent != nil && e.AcknowledgeEvent.CommandUUID == cmdUUID
	})
	if err != nil || ev.AcknowledgeEvent.Status != "Acknowledged" || ev.Enrollment() != id {
		t.Fatalf("Wait for the command's answer: %+v %v", ev, err)
	}

	// GET /v1/webhooks: the delivery log, every delivery delivered.
	var log struct {
		URLs       []string           `json:"urls"`
		Stats      webhook.Stats      `json:"stats"`
		Deliveries []webhook.Delivery `json:"deliveries"`
	}
	getJSON(t, srv, "/v1/webhooks", &log)
	if len(log.Deliveries) != len(want) || log.Stats.Delivered != int64(len(want)) || log.URLs[0] != rc.srv.URL {
		t.Fatalf("/v1/webhooks: %+v", log)
	}
	for _, d := range log.Deliveries {
		if d.Status != webhook.StatusDelivered || d.EnrollmentID != id || d.HTTPStatus != 200 {
			t.Errorf("delivery %+v", d)
		}
	}
	getJSON(t, srv, "/v1/webhooks?after_seq="+itoa(log.Deliveries[len(log.Deliveries)-2].Seq), &log)
	if len(log.Deliveries) != 1 {
		t.Errorf("after_seq: %d deliveries, want 1", len(log.Deliveries))
	}
	if code := get(t, srv, "/v1/webhooks?after_seq=-3", true).StatusCode; code != 400 {
		t.Errorf("after_seq=-3: %d, want 400", code)
	}

	// The webhook counter moved with the deliveries.
	fams := scrape(t, srv)
	if got := value(fams, "mockmdm_webhook_deliveries_total", map[string]string{"outcome": "delivered"}); got != float64(len(want)) {
		t.Errorf("mockmdm_webhook_deliveries_total{outcome=delivered} = %v, want %d", got, len(want))
	}
}

// plistOracle decodes raw with Python's plistlib, a decoder we did not write.
func plistOracle(t *testing.T, raw []byte, messageType, udid string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Log("python3 not on PATH: skipping the plistlib check of raw_payload")
		return
	}
	cmd := exec.Command(py, "-c", `import plistlib,sys; d=plistlib.loads(sys.stdin.buffer.read()); print(d["MessageType"]+" "+d["UDID"])`)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plistlib could not read raw_payload: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != messageType+" "+udid {
		t.Errorf("plistlib reads raw_payload as %q, want %q", got, messageType+" "+udid)
	}
}

// TestMetricsOfARealEnrollment scrapes /metrics, parsed with Prometheus's
// own text parser, and checks that a real enrollment moved the counters.
func TestMetricsOfARealEnrollment(t *testing.T) {
	srv := mdmtest.NewServer(t)
	before := scrape(t, srv)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	srv.Run(dev, &mdm.DeviceInformation{Queries: []string{"SerialNumber"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := srv.Client().Push(ctx, id, "no-such-enrollment"); err != nil {
		t.Fatal(err)
	}
	srv.Enqueue(&mdm.SecurityInfo{}, id) // left queued: the device does not connect

	// An unmatched path and a path with an ID must not become labels.
	get(t, srv, "/no/such/path", false)
	get(t, srv, "/v1/enrollments/"+id, true)

	fams := scrape(t, srv)
	checkin := func(f map[string]*dto.MetricFamily) float64 {
		return value(f, "mockmdm_http_requests_total", map[string]string{"endpoint": "/checkin", "method": "PUT", "code": "200"})
	}
	if d := checkin(fams) - checkin(before); d < 2 {
		t.Errorf("check-ins counted: %v more, want at least 2 (Authenticate, TokenUpdate)", d)
	}
	if v := value(fams, "mockmdm_http_requests_total", map[string]string{"endpoint": "/mdm", "method": "PUT", "code": "200"}); v < 2 {
		t.Errorf("command-endpoint requests counted: %v, want at least 2 (result, Idle)", v)
	}
	if v := value(fams, "mockmdm_http_requests_total", map[string]string{"endpoint": "unmatched", "method": "GET", "code": "404"}); v != 1 {
		t.Errorf("unmatched requests: %v, want 1", v)
	}
	if v := value(fams, "mockmdm_http_requests_total", map[string]string{"endpoint": "/v1/enrollments/{id}", "method": "GET", "code": "200"}); v != 1 {
		t.Errorf("GET /v1/enrollments/{id}: %v, want 1", v)
	}
	for _, m := range fams["mockmdm_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), id) || strings.Contains(l.GetValue(), "/no/such") {
				t.Errorf("a raw path became a label: %s=%q", l.GetName(), l.GetValue())
			}
		}
	}
	if h := fams["mockmdm_http_request_duration_seconds"]; h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		t.Error("no request duration histogram")
	} else {
		var n uint64
		for _, m := range h.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
		}
		if n < 5 {
			t.Errorf("duration histogram holds %d samples", n)
		}
	}
	if v := value(fams, "mockmdm_enrollments", map[string]string{"type": "Device", "state": "enrolled"}); v != 1 {
		t.Errorf("enrolled Device enrollments: %v, want 1", v)
	}
	if v := value(fams, "mockmdm_queue_depth", nil); v != 1 {
		t.Errorf("queue depth: %v, want 1 (the SecurityInfo left queued)", v)
	}
	if v := value(fams, "mockmdm_push_results_total", map[string]string{"outcome": "sent"}); v < 1 {
		t.Errorf("pushes sent: %v, want at least 1", v)
	}
	if v := value(fams, "mockmdm_push_results_total", map[string]string{"outcome": "skipped"}); v < 1 {
		t.Errorf("pushes skipped (no such enrollment): %v, want at least 1", v)
	}

	// The key is needed, as a bearer token or X-API-Key.
	if code := get(t, srv, server.PathMetrics, false).StatusCode; code != 401 {
		t.Errorf("/metrics without the API key: %d, want 401", code)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func get(t *testing.T, srv *mdmtest.Server, path string, withKey bool) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
	if withKey {
		req.Header.Set("Authorization", "Bearer "+srv.Server().PKI().APIKey)
	}
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func getJSON(t *testing.T, srv *mdmtest.Server, path string, v any) {
	t.Helper()
	resp := get(t, srv, path, true)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, srv *mdmtest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp := get(t, srv, server.PathMetrics, true)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is the value of the metric with exactly these labels (0 if absent).
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
