package push_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/push"
)

// RSA keys are the slow part of these tests, so the package makes its PKI
// once: a CA for the stand-in APNs server's TLS certificate, and a mock
// "Apple" push CA with one MDM push certificate.
var fixtures struct {
	once       sync.Once
	serverCA   *certs.CA
	serverCert tls.Certificate // for 127.0.0.1, issued by serverCA
	pushCA     *certs.CA
	pushCert   tls.Certificate
	topic      string
	err        error
}

func loadFixtures(tb testing.TB) {
	tb.Helper()
	f := &fixtures
	f.once.Do(func() {
		if f.serverCA, f.err = certs.NewCA("push test server CA", 2048, 24*time.Hour); f.err != nil {
			return
		}
		if f.serverCert, f.err = f.serverCA.IssueServerCert([]string{"127.0.0.1"}, time.Hour); f.err != nil {
			return
		}
		if f.pushCA, f.err = certs.NewCA("push test Apple push CA", 2048, 24*time.Hour); f.err != nil {
			return
		}
		f.topic = certs.NewTopic()
		cert, key, err := certs.NewMockPushCert(f.pushCA, f.topic, time.Hour)
		if err != nil {
			f.err = err
			return
		}
		f.pushCert = tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	})
	if f.err != nil {
		tb.Fatalf("fixtures: %v", f.err)
	}
}

func serverRoots(tb testing.TB) *x509.CertPool {
	loadFixtures(tb)
	pool := x509.NewCertPool()
	pool.AddCert(fixtures.serverCA.Cert)
	return pool
}

// newAPNsServer starts a TLS server standing in for Apple: it requires a
// client certificate, as APNs does, and speaks HTTP/2 when h2 is set.
func newAPNsServer(tb testing.TB, h2 bool, h http.Handler) *httptest.Server {
	tb.Helper()
	loadFixtures(tb)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{fixtures.serverCert},
		ClientAuth:   tls.RequireAnyClientCert,
	}
	// Handshakes these tests make fail on purpose would otherwise print.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return srv
}

// newProvider is a provider for the push fixture certificate, pointed at srv
// and trusting its CA.
func newProvider(tb testing.TB, srv *httptest.Server, opts ...push.ProviderOption) *push.Provider {
	tb.Helper()
	loadFixtures(tb)
	all := append([]push.ProviderOption{push.WithBaseURL(srv.URL), push.WithRootCAs(serverRoots(tb))}, opts...)
	p, err := push.NewProvider(fixtures.pushCert, all...)
	if err != nil {
		tb.Fatalf("NewProvider: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

func newTarget(tb testing.TB, id string) push.Target {
	tb.Helper()
	tok := make([]byte, push.TokenLen)
	rand.Read(tok)
	return push.Target{EnrollmentID: id, Token: tok, PushMagic: "magic-" + push.TokenHex(tok[:8])}
}

// seenPush is what the stand-in APNs saw of one request.
type seenPush struct {
	protoMajor int
	method     string
	path       string
	header     http.Header
	body       []byte
	certTopic  string
}

func record(r *http.Request) (seenPush, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, push.MaxPayload))
	if err != nil {
		return seenPush{}, err
	}
	s := seenPush{protoMajor: r.ProtoMajor, method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if s.certTopic, err = certs.TopicFromCert(r.TLS.PeerCertificates[0]); err != nil {
			return seenPush{}, err
		}
	}
	return s, nil
}

// recordingHandler answers 200 with an apns-id and passes what it saw to
// the test, one push at a time.
func recordingHandler(tb testing.TB, seen chan<- seenPush) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := record(r)
		if err != nil {
			tb.Errorf("stand-in APNs: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		seen <- s
		w.Header().Set(push.HeaderID, "apns-id-"+strings.TrimPrefix(r.URL.Path, "/3/device/")[:8])
		w.WriteHeader(http.StatusOK)
	}
}

// checkMDMPush asserts what every MDM push must look like on the wire.
func checkMDMPush(t *testing.T, s seenPush, pathPrefix string, target push.Target) {
	t.Helper()
	if s.protoMajor != 2 {
		t.Errorf("request over HTTP/%d, want HTTP/2", s.protoMajor)
	}
	if s.method != http.MethodPost {
		t.Errorf("method %s, want POST", s.method)
	}
	if want := pathPrefix + "/3/device/" + push.TokenHex(target.Token); s.path != want {
		t.Errorf("path %q, want %q", s.path, want)
	}
	if got := s.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	if want := `{"mdm":"` + target.PushMagic + `"}`; string(s.body) != want {
		t.Errorf("body %q, want exactly %q", s.body, want)
	}
	if got := s.header.Get(push.HeaderPriority); got != "10" {
		t.Errorf("apns-priority %q, want 10", got)
	}
	if s.certTopic != fixtures.topic {
		t.Errorf("client certificate topic %q, want %q", s.certTopic, fixtures.topic)
	}
}

func TestPushOverHTTP2(t *testing.T) {
	seen := make(chan seenPush, 1)
	srv := newAPNsServer(t, true, recordingHandler(t, seen))
	loadFixtures(t)
	// A tls.Certificate without Leaf (as hand-built ones are): the
	// provider parses the leaf itself.
	cert := fixtures.pushCert
	cert.Leaf = nil
	p, err := push.NewProvider(cert, push.WithBaseURL(srv.URL), push.WithRootCAs(serverRoots(t)))
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	defer p.Close()
	if p.Topic() != fixtures.topic {
		t.Errorf("Topic() = %q, want %q", p.Topic(), fixtures.topic)
	}
	if p.BaseURL() != srv.URL {
		t.Errorf("BaseURL() = %q, want %q", p.BaseURL(), srv.URL)
	}

	target := newTarget(t, "enr-1")
	results := p.Push(context.Background(), target)
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	res := results[0]
	if res.Err != nil || res.Status != http.StatusOK {
		t.Fatalf("result %+v, want status 200 and no error", res)
	}
	if res.EnrollmentID != "enr-1" || res.Token != push.TokenHex(target.Token) {
		t.Errorf("result names %q/%q, want enr-1/%s", res.EnrollmentID, res.Token, push.TokenHex(target.Token))
	}
	if want := "apns-id-" + res.Token[:8]; res.APNsID != want {
		t.Errorf("APNsID %q, want %q", res.APNsID, want)
	}
	s := <-seen
	checkMDMPush(t, s, "", target)
	if got := s.header.Get(push.HeaderTopic); got != fixtures.topic {
		t.Errorf("apns-topic %q, want the certificate's topic %q", got, fixtures.topic)
	}
	if got := s.header.Get(push.HeaderPushType); got != push.PushTypeMDM {
		t.Errorf("apns-push-type %q, want mdm", got)
	}
	if got, ok := s.header[http.CanonicalHeaderKey(push.HeaderExpiration)]; ok {
		t.Errorf("apns-expiration %q sent by default; NanoMDM omits it", got)
	}
}

func TestPushHeaderOptions(t *testing.T) {
	seen := make(chan seenPush, 1)
	srv := newAPNsServer(t, true, recordingHandler(t, seen))
	// A fixed clock inside the certificate's validity.
	clock := time.Now().Truncate(time.Second)
	fixedClock := push.WithClock(func() time.Time { return clock })

	absent := "(absent)"
	for _, tc := range []struct {
		name                                string
		opts                                []push.ProviderOption
		wantExpiration, wantType, wantTopic string
	}{
		{"defaults", nil, absent, "mdm", "topic"},
		{"expiration zero: deliver once", []push.ProviderOption{push.WithExpiration(0)}, "0", "mdm", "topic"},
		{"expiration one hour", []push.ProviderOption{push.WithExpiration(time.Hour)}, strconv.FormatInt(clock.Add(time.Hour).Unix(), 10), "mdm", "topic"},
		{"no push type", []push.ProviderOption{push.WithPushType(false)}, absent, absent, "topic"},
		{"no topic header", []push.ProviderOption{push.WithTopicHeader(false)}, absent, "mdm", absent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, srv, append([]push.ProviderOption{fixedClock}, tc.opts...)...)
			target := newTarget(t, "enr")
			if res := p.Push(context.Background(), target)[0]; res.Err != nil {
				t.Fatalf("push: %v", res.Err)
			}
			s := <-seen
			checkMDMPush(t, s, "", target)
			header := func(name string) string {
				if v, ok := s.header[http.CanonicalHeaderKey(name)]; ok {
					return strings.Join(v, ",")
				}
				return absent
			}
			wantTopic := tc.wantTopic
			if wantTopic == "topic" {
				wantTopic = fixtures.topic
			}
			for _, h := range []struct{ name, want string }{
				{push.HeaderExpiration, tc.wantExpiration},
				{push.HeaderPushType, tc.wantType},
				{push.HeaderTopic, wantTopic},
			} {
				if got := header(h.name); got != h.want {
					t.Errorf("%s = %q, want %q", h.name, got, h.want)
				}
			}
		})
	}
}

func TestPushKeepsBaseURLPath(t *testing.T) {
	seen := make(chan seenPush, 1)
	srv := newAPNsServer(t, true, recordingHandler(t, seen))
	p := newProvider(t, srv, push.WithBaseURL(srv.URL+"/apns/"))
	if want := srv.URL + "/apns"; p.BaseURL() != want {
		t.Errorf("BaseURL() = %q, want %q (without the trailing slash)", p.BaseURL(), want)
	}
	target := newTarget(t, "enr")
	if res := p.Push(context.Background(), target)[0]; res.Err != nil {
		t.Fatalf("push: %v", res.Err)
	}
	checkMDMPush(t, <-seen, "/apns", target)
}

// TestPushAPNsErrors answers each target with a different APNs refusal (the
// token picks the answer) and checks that each result carries the status,
// the reason, the timestamp and advice a person can act on.
func TestPushAPNsErrors(t *testing.T) {
	unregisteredAt := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	huge := `{"reason":"BadDeviceToken","padding":"` + strings.Repeat("x", 1<<20) + `"}`
	type answer struct {
		status int
		body   string
	}
	type want struct {
		reason    string
		timestamp int64
		advice    []string // substrings of the message
	}
	cases := []struct {
		name   string
		answer answer
		want   want
	}{
		{"BadDeviceToken", answer{400, `{"reason":"BadDeviceToken"}`},
			want{"BadDeviceToken", 0, []string{"says BadDeviceToken", "development token sent to production"}}},
		{"DeviceTokenNotForTopic", answer{400, `{"reason":"DeviceTokenNotForTopic"}`},
			want{"DeviceTokenNotForTopic", 0, []string{"re-enroll with a profile whose Topic is com.apple.mgmt.External."}}},
		{"TopicDisallowed", answer{400, `{"reason":"TopicDisallowed"}`},
			want{"TopicDisallowed", 0, []string{"does not allow pushes to topic com.apple.mgmt.External.", "renew"}}},
		{"Unregistered", answer{410, fmt.Sprintf(`{"reason":"Unregistered","timestamp":%d}`, unregisteredAt.UnixMilli())},
			want{"Unregistered", unregisteredAt.UnixMilli(), []string{"no longer registered", "since 2025-03-04T05:06:07Z"}}},
		{"BadCertificate", answer{403, `{"reason":"BadCertificate"}`},
			want{"BadCertificate", 0, []string{"refused the client certificate"}}},
		{"TooManyRequests", answer{429, `{"reason":"TooManyRequests"}`},
			want{"TooManyRequests", 0, []string{"slow down"}}},
		{"ServiceUnavailable", answer{503, `{"reason":"ServiceUnavailable"}`},
			want{"ServiceUnavailable", 0, []string{"retry later"}}},
		{"Shutdown", answer{503, `{"reason":"Shutdown"}`},
			want{"Shutdown", 0, []string{"retry later"}}},
		{"unknown reason", answer{400, `{"reason":"SomethingNew"}`},
			want{"SomethingNew", 0, []string{"says SomethingNew", "has no advice for"}}},
		{"not JSON", answer{502, `<html><body>Bad Gateway</body></html>`},
			want{"", 0, []string{"without an APNs error document", "<html>", "is the base URL an APNs endpoint"}}},
		{"empty body", answer{500, ``},
			want{"", 0, []string{"without an APNs error document (body empty)"}}},
		{"huge body", answer{400, huge},
			want{"", 0, []string{"without an APNs error document", `xxx"…`}}},
	}

	answers := map[string]answer{}
	var targets []push.Target
	for _, tc := range cases {
		target := newTarget(t, tc.name)
		answers[push.TokenHex(target.Token)] = tc.answer
		targets = append(targets, target)
	}
	srv := newAPNsServer(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[strings.TrimPrefix(r.URL.Path, "/3/device/")]
		if !ok {
			t.Errorf("push to unexpected path %s", r.URL.Path)
			return
		}
		w.Header().Set(push.HeaderID, "id-"+r.URL.Path[len("/3/device/"):][:8])
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	p := newProvider(t, srv)

	results := p.Push(context.Background(), targets...)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := results[i]
			if res.EnrollmentID != tc.name {
				t.Fatalf("result %d is for %q, want %q (results out of order)", i, res.EnrollmentID, tc.name)
			}
			if res.Status != tc.answer.status || res.Reason != tc.want.reason || res.Timestamp != tc.want.timestamp {
				t.Errorf("result status/reason/timestamp = %d/%q/%d, want %d/%q/%d",
					res.Status, res.Reason, res.Timestamp, tc.answer.status, tc.want.reason, tc.want.timestamp)
			}
			if want := "id-" + res.Token[:8]; res.APNsID != want {
				t.Errorf("APNsID %q, want %q", res.APNsID, want)
			}
			var perr *push.Error
			if !errors.As(res.Err, &perr) {
				t.Fatalf("Err = %v (%T), want a *push.Error", res.Err, res.Err)
			}
			if perr.Status != res.Status || perr.Reason != res.Reason || perr.Timestamp != res.Timestamp {
				t.Errorf("*Error %+v disagrees with the result %+v", perr, res)
			}
			if perr.HTTPStatus() != http.StatusBadGateway {
				t.Errorf("HTTPStatus() = %d, want 502: APNs refused, not the API caller", perr.HTTPStatus())
			}
			msg := res.Err.Error()
			for _, s := range append(tc.want.advice, srv.URL, tc.name) {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
			if len(msg) > 1000 {
				t.Errorf("message is %d bytes; a body must not flow into it whole", len(msg))
			}
		})
	}
}

// TestEveryReasonHasAdvice holds that no reason APNs documents falls back to
// the "unknown reason" message.
func TestEveryReasonHasAdvice(t *testing.T) {
	reasons := push.Reasons()
	answers := map[string]string{}
	var targets []push.Target
	for _, r := range reasons {
		target := newTarget(t, r)
		answers[push.TokenHex(target.Token)] = r
		targets = append(targets, target)
	}
	srv := newAPNsServer(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := answers[strings.TrimPrefix(r.URL.Path, "/3/device/")]
		status, _ := push.Status(reason)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(push.ErrorBody{Reason: reason})
	}))
	p := newProvider(t, srv)
	for _, res := range p.Push(context.Background(), targets...) {
		if res.Reason != res.EnrollmentID {
			t.Errorf("reason %q, want %q", res.Reason, res.EnrollmentID)
		}
		if res.Err == nil || strings.Contains(res.Err.Error(), "has no advice for") {
			t.Errorf("%s: message %v: want advice specific to the reason", res.EnrollmentID, res.Err)
			continue
		}
		for _, placeholder := range []string{"{base}", "{topic}", "{since}"} {
			if strings.Contains(res.Err.Error(), placeholder) {
				t.Errorf("%s: message %q still holds %s", res.EnrollmentID, res.Err, placeholder)
			}
		}
	}
}

// TestPushRefusesHTTP1 points the provider at servers that do not speak
// HTTP/2: one that offers only http/1.1 in ALPN (the handshake fails) and
// one that does no ALPN at all (the handshake succeeds, and a default
// transport would quietly speak HTTP/1.1).
func TestPushRefusesHTTP1(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nextProtos []string
	}{
		{"offers http/1.1 only", nil}, // httptest sets {"http/1.1"}
		{"no ALPN", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
			}))
			loadFixtures(t)
			srv.EnableHTTP2 = false
			srv.TLS = &tls.Config{
				Certificates: []tls.Certificate{fixtures.serverCert},
				ClientAuth:   tls.RequireAnyClientCert,
				NextProtos:   tc.nextProtos,
			}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			defer srv.Close()
			p := newProvider(t, srv)

			results := p.Push(context.Background(), newTarget(t, "a"), newTarget(t, "b"), newTarget(t, "c"))
			t.Logf("error: %v", results[0].Err)
			for _, res := range results {
				if res.Err == nil {
					t.Fatalf("%s: pushed over HTTP/1.1 (status %d); want an error", res.EnrollmentID, res.Status)
				}
				if !errors.Is(res.Err, push.ErrNotHTTP2) || !strings.Contains(res.Err.Error(), "HTTP/2") {
					t.Errorf("%s: error %q does not say that APNs needs HTTP/2", res.EnrollmentID, res.Err)
				}
				if res.Status != 0 {
					t.Errorf("%s: status %d, want 0 (no answer)", res.EnrollmentID, res.Status)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("the HTTP/1.1 server served %d requests, want 0", n)
			}
		})
	}
}

func TestPushUntrustedServer(t *testing.T) {
	srv := newAPNsServer(t, true, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	loadFixtures(t)
	p, err := push.NewProvider(fixtures.pushCert, push.WithBaseURL(srv.URL)) // system roots
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res := p.Push(context.Background(), newTarget(t, "enr"))[0]
	if res.Err == nil || !strings.Contains(res.Err.Error(), "WithRootCAs") {
		t.Errorf("error %v, want advice to pass the mock's CA with WithRootCAs", res.Err)
	}
}

// TestPushBoundedConcurrency pushes 200 targets with concurrency 4: the
// stand-in APNs must see exactly 4 pushes in flight at some point and never
// more, every result must come back in order, and Push must leave no
// goroutine behind.
func TestPushBoundedConcurrency(t *testing.T) {
	const n, limit = 200, 4
	warmUp := newTarget(t, "warm-up")
	var inFlight, maxInFlight atomic.Int32
	gate := make(chan struct{})
	var openGate sync.Once
	srv := newAPNsServer(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenHex := strings.TrimPrefix(r.URL.Path, "/3/device/")
		w.Header().Set(push.HeaderID, "id-"+tokenHex)
		if tokenHex == push.TokenHex(warmUp.Token) {
			return
		}
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		// Hold the first pushes until the provider has `limit` in flight,
		// which proves it uses its workers rather than pushing one by one.
		if cur == limit {
			openGate.Do(func() { close(gate) })
		}
		select {
		case <-gate:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Errorf("the provider never had %d pushes in flight", limit)
		}
	}))
	p := newProvider(t, srv, push.WithConcurrency(limit))

	// The connection and its goroutines belong to the transport and live
	// on; warm it up first so the baseline includes them.
	if res := p.Push(context.Background(), warmUp)[0]; res.Err != nil {
		t.Fatalf("warm-up push: %v", res.Err)
	}
	baseline := runtime.NumGoroutine()

	targets := make([]push.Target, n)
	for i := range targets {
		targets[i] = newTarget(t, fmt.Sprintf("enr-%03d", i))
	}
	results := p.Push(context.Background(), targets...)

	if len(results) != n {
		t.Fatalf("%d results, want %d", len(results), n)
	}
	for i, res := range results {
		if res.EnrollmentID != targets[i].EnrollmentID || res.APNsID != "id-"+push.TokenHex(targets[i].Token) {
			t.Fatalf("result %d is %s/%s, want %s: results out of order", i, res.EnrollmentID, res.APNsID, targets[i].EnrollmentID)
		}
		if res.Err != nil {
			t.Errorf("%s: %v", res.EnrollmentID, res.Err)
		}
	}
	if m := maxInFlight.Load(); m != limit {
		t.Errorf("at most %d pushes were in flight, want exactly %d", m, limit)
	}

	// Server handlers finish just after their answers reach the client,
	// so give them a moment; the provider's own workers are gone already.
	got := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); got > baseline && time.Now().Before(deadline); got = runtime.NumGoroutine() {
		time.Sleep(5 * time.Millisecond)
	}
	if got > baseline {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Push, %d before:\n%s", got, baseline, buf[:runtime.Stack(buf, true)])
	}
}

// hangingHandler never answers; it returns when the client gives up (or
// the server closes).
func hangingHandler(arrived func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if arrived != nil {
			arrived()
		}
		<-r.Context().Done()
	}
}

func TestPushContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var requests atomic.Int32
	// The second push to arrive cancels the context: both in flight must
	// fail, and the eight not yet sent must not be sent.
	srv := newAPNsServer(t, true, hangingHandler(func() {
		if requests.Add(1) == 2 {
			cancel()
		}
	}))
	p := newProvider(t, srv, push.WithConcurrency(2), push.WithRequestTimeout(time.Minute))
	targets := make([]push.Target, 10)
	for i := range targets {
		targets[i] = newTarget(t, fmt.Sprintf("enr-%d", i))
	}

	start := time.Now()
	results := p.Push(ctx, targets...)
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("Push took %s after cancellation; it waited for the request timeout", elapsed)
	}
	for _, res := range results {
		if !errors.Is(res.Err, context.Canceled) {
			t.Errorf("%s: error %v, want context.Canceled", res.EnrollmentID, res.Err)
		}
		var perr *push.Error
		if !errors.As(res.Err, &perr) || perr.Status != 0 {
			t.Errorf("%s: error %#v, want a *push.Error with status 0", res.EnrollmentID, res.Err)
		}
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("the server saw %d pushes, want 2 (none after cancellation)", n)
	}
}

func TestPushRequestTimeout(t *testing.T) {
	srv := newAPNsServer(t, true, hangingHandler(nil))
	p := newProvider(t, srv, push.WithRequestTimeout(50*time.Millisecond))
	start := time.Now()
	results := p.Push(context.Background(), newTarget(t, "a"), newTarget(t, "b"), newTarget(t, "c"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Push took %s with a 50ms request timeout", elapsed)
	}
	for _, res := range results {
		if !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Errorf("%s: error %v, want context.DeadlineExceeded", res.EnrollmentID, res.Err)
			continue
		}
		if msg := res.Err.Error(); !strings.Contains(msg, "no answer within 50ms") {
			t.Errorf("%s: message %q does not name the timeout", res.EnrollmentID, msg)
		}
		if got := res.Err.(*push.Error).HTTPStatus(); got != http.StatusBadGateway {
			t.Errorf("HTTPStatus() = %d, want 502", got)
		}
	}
}

// TestPushUnpushableTargets holds that a target without a usable token or
// PushMagic gets an error a person can act on, a 409, and no request.
func TestPushUnpushableTargets(t *testing.T) {
	var requests atomic.Int32
	srv := newAPNsServer(t, true, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	p := newProvider(t, srv)
	good := newTarget(t, "good")
	cases := []struct {
		target push.Target
		want   string
	}{
		{push.Target{EnrollmentID: "no-token", PushMagic: "m"}, "enrollment no-token has no push token yet (no TokenUpdate)"},
		{push.Target{EnrollmentID: "short", Token: good.Token[:31], PushMagic: "m"}, "enrollment short has a push token of 31 bytes, not 32"},
		{push.Target{EnrollmentID: "no-magic", Token: good.Token}, "enrollment no-magic has no PushMagic yet (no TokenUpdate)"},
		{push.Target{Token: good.Token}, "the enrollment has no PushMagic yet"},
	}
	targets := []push.Target{good}
	for _, c := range cases {
		targets = append(targets, c.target)
	}
	results := p.Push(context.Background(), targets...)
	if results[0].Err != nil {
		t.Errorf("good target: %v", results[0].Err)
	}
	for i, c := range cases {
		res := results[i+1]
		if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.target.EnrollmentID, res.Err, c.want)
			continue
		}
		if !errors.Is(res.Err, push.ErrNotPushable) {
			t.Errorf("%s: error does not wrap ErrNotPushable", c.target.EnrollmentID)
		}
		if got := res.Err.(*push.Error).HTTPStatus(); got != http.StatusConflict {
			t.Errorf("%s: HTTPStatus() = %d, want 409", c.target.EnrollmentID, got)
		}
		if res.Status != 0 {
			t.Errorf("%s: status %d, want 0", c.target.EnrollmentID, res.Status)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the server saw %d pushes, want 1 (only the good target)", n)
	}
}

// TestPushCertificateExpiresWhileRunning: a provider outliving its
// certificate says so instead of letting APNs refuse the handshake.
func TestPushCertificateExpiresWhileRunning(t *testing.T) {
	var requests atomic.Int32
	srv := newAPNsServer(t, true, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	p := newProvider(t, srv, push.WithClock(func() time.Time { return *now.Load() }))
	later := fixtures.pushCert.Leaf.NotAfter.Add(time.Minute)
	now.Store(&later)

	res := p.Push(context.Background(), newTarget(t, "enr"))[0]
	if !errors.Is(res.Err, push.ErrCertificateExpired) || !strings.Contains(res.Err.Error(), "expired on") {
		t.Errorf("error %v, want ErrCertificateExpired with the date", res.Err)
	}
	if requests.Load() != 0 {
		t.Error("pushed with an expired certificate")
	}
}

func TestPushLogsEnrollmentID(t *testing.T) {
	srv := newAPNsServer(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
		io.WriteString(w, `{"reason":"Unregistered","timestamp":1}`)
	}))
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := newProvider(t, srv, push.WithLogger(logger))
	p.Push(context.Background(), newTarget(t, "enr-gone"), push.Target{EnrollmentID: "enr-new"})

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), buf.String())
	}
	for _, want := range []struct{ id, reason string }{{"enr-gone", "Unregistered"}, {"enr-new", ""}} {
		found := false
		for _, line := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if rec["enrollment_id"] == want.id {
				found = true
				if rec["level"] != "WARN" || rec["reason"] != want.reason {
					t.Errorf("log line %s: want level WARN and reason %q", line, want.reason)
				}
			}
		}
		if !found {
			t.Errorf("no log line with enrollment_id %s:\n%s", want.id, buf.String())
		}
	}
}

// roundTripFunc lets a plain function serve as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPushWithTransportInProcess drives a handler directly, with no socket:
// how a test or mdmtest can wire the provider to an in-process mock APNs.
func TestPushWithTransportInProcess(t *testing.T) {
	loadFixtures(t)
	seen := make(chan seenPush, 2)
	unregistered := newTarget(t, "gone")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := record(r)
		if err != nil {
			t.Error(err)
		}
		seen <- s
		if r.URL.Path == "/3/device/"+push.TokenHex(unregistered.Token) {
			w.WriteHeader(http.StatusGone)
			io.WriteString(w, `{"reason":"Unregistered","timestamp":1700000000000}`)
			return
		}
		w.Header().Set(push.HeaderID, "in-process")
	})
	inProcess := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, r)
		return rec.Result(), nil
	})
	p, err := push.NewProvider(fixtures.pushCert, push.WithBaseURL("http://mockapns.invalid"), push.WithTransport(inProcess))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	target := newTarget(t, "enr")
	results := p.Push(context.Background(), target, unregistered)
	if res := results[0]; res.Err != nil || res.APNsID != "in-process" {
		t.Errorf("result %+v, want 200 with apns-id in-process", res)
	}
	if res := results[1]; res.Reason != push.ReasonUnregistered || res.Status != http.StatusGone || res.Timestamp != 1700000000000 {
		t.Errorf("result %+v, want 410 Unregistered", res)
	}
	// The two pushes ran concurrently: take the one for target.
	s := <-seen
	if s.path != "/3/device/"+push.TokenHex(target.Token) {
		s = <-seen
	}
	if s.path != "/3/device/"+push.TokenHex(target.Token) || string(s.body) != `{"mdm":"`+target.PushMagic+`"}` {
		t.Errorf("the in-process APNs saw %s %q", s.path, s.body)
	}
	if s.header.Get(push.HeaderTopic) != fixtures.topic || s.header.Get(push.HeaderPushType) != "mdm" {
		t.Errorf("headers %v lack the topic and push type", s.header)
	}
}

// expiredPushCert is a push certificate (UID = a topic) that expired
// yesterday, signed by the fixture push CA.
func expiredPushCert(t *testing.T) tls.Certificate {
	t.Helper()
	loadFixtures(t)
	oidUID := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	topic := certs.NewTopic()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject: pkix.Name{
			Country:    []string{"US"},
			CommonName: "APSP:expired",
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: topic}},
		},
		NotBefore:   time.Now().Add(-48 * time.Hour),
		NotAfter:    time.Now().Add(-24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	key := fixtures.pushCert.PrivateKey.(crypto.Signer)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, fixtures.pushCA.Cert, key.Public(), fixtures.pushCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: fixtures.pushCert.PrivateKey}
}

func TestNewProviderRefuses(t *testing.T) {
	loadFixtures(t)
	noKey := fixtures.pushCert
	noKey.PrivateKey = nil
	cases := []struct {
		name string
		cert tls.Certificate
		opts []push.ProviderOption
		want []string
	}{
		{"TLS server certificate", fixtures.serverCert, nil, []string{"cannot send MDM pushes", "push topic", "is this an APNs MDM push certificate"}},
		{"no certificate", tls.Certificate{}, nil, []string{"no push certificate given"}},
		{"no private key", noKey, nil, []string{"has no private key"}},
		{"expired", expiredPushCert(t), nil, []string{"expired on " + time.Now().Add(-24*time.Hour).UTC().Format("2006-01-02"), "Renew"}},
		{"clock past expiry", fixtures.pushCert, []push.ProviderOption{push.WithClock(func() time.Time { return fixtures.pushCert.Leaf.NotAfter.Add(time.Second) })},
			[]string{"expired on " + fixtures.pushCert.Leaf.NotAfter.UTC().Format(time.RFC3339)}},
		{"empty base URL", fixtures.pushCert, []push.ProviderOption{push.WithBaseURL("")}, []string{"not an absolute https URL"}},
		{"no scheme", fixtures.pushCert, []push.ProviderOption{push.WithBaseURL("api.push.apple.com")}, []string{"not an absolute https URL"}},
		{"ftp", fixtures.pushCert, []push.ProviderOption{push.WithBaseURL("ftp://apns.example")}, []string{"not an absolute https URL"}},
		{"no host", fixtures.pushCert, []push.ProviderOption{push.WithBaseURL("https:///3/device")}, []string{"has no host"}},
		{"query", fixtures.pushCert, []push.ProviderOption{push.WithBaseURL("https://apns.example?x=1")}, []string{"no user, query or fragment"}},
		{"unparsable", fixtures.pushCert, []push.ProviderOption{push.WithBaseURL("https://[::1")}, []string{"base URL"}},
		{"http without WithTransport", fixtures.pushCert, []push.ProviderOption{push.WithBaseURL("http://127.0.0.1:2197")}, []string{"is http", "WithTransport"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := push.NewProvider(tc.cert, tc.opts...)
			if err == nil {
				p.Close()
				t.Fatal("NewProvider succeeded")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
	t.Run("TLS server certificate wraps the certs error", func(t *testing.T) {
		_, err := push.NewProvider(fixtures.serverCert)
		if !errors.Is(err, certs.ErrNoTopic) {
			t.Errorf("error %v does not wrap certs.ErrNoTopic", err)
		}
	})
	t.Run("expired wraps ErrCertificateExpired", func(t *testing.T) {
		_, err := push.NewProvider(expiredPushCert(t))
		if !errors.Is(err, push.ErrCertificateExpired) {
			t.Errorf("error %v does not wrap ErrCertificateExpired", err)
		}
	})
}

func TestProviderOptionMisusePanics(t *testing.T) {
	loadFixtures(t)
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("unused") })
	for name, build := range map[string]func(){
		"WithConcurrency(0)":    func() { push.WithConcurrency(0) },
		"WithConcurrency(-1)":   func() { push.WithConcurrency(-1) },
		"WithRequestTimeout(0)": func() { push.WithRequestTimeout(0) },
		"WithTransport(nil)":    func() { push.WithTransport(nil) },
		"WithClock(nil)":        func() { push.WithClock(nil) },
		"WithRootCAs + WithTransport": func() {
			push.NewProvider(fixtures.pushCert, push.WithTransport(rt), push.WithRootCAs(x509.NewCertPool()))
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			build()
		})
	}
}

func BenchmarkProviderPush(b *testing.B) {
	srv := newAPNsServer(b, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set(push.HeaderID, "bench")
	}))
	p := newProvider(b, srv)
	target := newTarget(b, "bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := p.Push(ctx, target)[0]; res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}
