package mockapns

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/push"
)

type fixture struct {
	pushCA    *certs.CA
	topic     string
	cert      tls.Certificate // the provider's push certificate
	otherCert tls.Certificate // same topic shape, issued by a CA the mock does not trust
	otherTop  tls.Certificate // trusted issuer, another topic
	serverCA  *certs.CA
	serverTLS tls.Certificate
}

var (
	fixOnce sync.Once
	fix     fixture
)

func testFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		fix.pushCA, err = certs.NewCA("mock Apple push CA", 2048, 24*time.Hour)
		must(err)
		fix.topic = certs.NewTopic()
		fix.cert = pushPair(fix.pushCA, fix.topic)
		fix.otherTop = pushPair(fix.pushCA, certs.NewTopic())
		rogue, err := certs.NewCA("rogue push CA", 2048, 24*time.Hour)
		must(err)
		fix.otherCert = pushPair(rogue, fix.topic)
		fix.serverCA, err = certs.NewCA("mock APNs server CA", 2048, 24*time.Hour)
		must(err)
		fix.serverTLS, err = fix.serverCA.IssueServerCert([]string{"127.0.0.1", "localhost"}, time.Hour)
		must(err)
	})
	return &fix
}

func pushPair(ca *certs.CA, topic string) tls.Certificate {
	c, k, err := certs.NewMockPushCert(ca, topic, time.Hour)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}
}

// listen serves m on a real TLS listener offering h2 and http/1.1, asking
// for (not requiring) client certificates, as mockmdm serves it.
func listen(t testing.TB, m *Server) *httptest.Server {
	t.Helper()
	f := testFixture(t)
	ts := httptest.NewUnstartedServer(m.Handler())
	ts.EnableHTTP2 = true
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{f.serverTLS}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(func() { m.Close(); ts.Close() })
	return ts
}

func roots(t testing.TB) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(testFixture(t).serverCA.Cert)
	return p
}

// providerClient talks HTTP/2 only, with the given client certificate.
func providerClient(t testing.TB, cert *tls.Certificate) *http.Client {
	var ps http.Protocols
	ps.SetHTTP2(true)
	cfg := &tls.Config{RootCAs: roots(t), MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, Protocols: &ps}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func newToken() []byte {
	b := make([]byte, push.TokenLen)
	_, _ = rand.Read(b)
	return b
}

type answer struct {
	status int
	id     string
	body   push.ErrorBody
	detail string
}

func doPush(t testing.TB, c *http.Client, base string, tokenHex string, hdr map[string]string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+push.PathPrefix+tokenHex, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(push.HeaderPushType, push.PushTypeMDM)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("push went over HTTP/%d, want HTTP/2", resp.ProtoMajor)
	}
	a := answer{status: resp.StatusCode, id: resp.Header.Get(push.HeaderID), detail: resp.Header.Get(DetailHeader)}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("error body %q is not Apple's JSON: %v", raw, err)
		}
	}
	return a
}

func dial(t testing.TB, base string, tok []byte, topic string) *Stream {
	t.Helper()
	s, err := Dial(context.Background(), base, tok, topic, DialOptions{TLS: &tls.Config{RootCAs: roots(t)}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func next(t testing.TB, s *Stream) Push {
	t.Helper()
	type res struct {
		p   Push
		err error
	}
	ch := make(chan res, 1)
	go func() { p, err := s.Next(); ch <- res{p, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("next: %v", r.err)
		}
		return r.p
	case <-time.After(5 * time.Second):
		s.Close()
		t.Fatal("no push arrived within 5s")
	}
	return Push{}
}

// waitFor polls cond for up to 5s: the mock's counters move in other goroutines.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestPushReachesConnectedDeviceOverHTTP2(t *testing.T) {
	f := testFixture(t)
	m := New([]*x509.Certificate{f.pushCA.Cert})
	ts := listen(t, m)
	tok := newToken()
	s := dial(t, ts.URL, tok, f.topic)
	waitFor(t, "subscription", func() bool { return m.Connected(tok) })

	a := doPush(t, providerClient(t, &f.cert), ts.URL, push.TokenHex(tok),
		map[string]string{push.HeaderTopic: f.topic, push.HeaderExpiration: "0", push.HeaderPriority: "10"},
		push.EncodeMDMPayload("MAGIC-1"))
	if a.status != http.StatusOK || len(a.id) != 36 {
		t.Fatalf("push answered %d (apns-id %q), want 200 and a UUID; %+v", a.status, a.id, a)
	}
	p := next(t, s)
	if p.ID != a.id || p.Topic != f.topic || p.PushMagic() != "MAGIC-1" || string(p.Payload) != `{"mdm":"MAGIC-1"}` {
		t.Fatalf("device got %+v (payload %s)", p, p.Payload)
	}
	if err := s.Ack(p.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ack", func() bool { return m.Stats().Acknowledged == 1 })
	if _, ok := m.Pending(tok); ok {
		t.Fatal("an acknowledged push is still pending")
	}
	// The provider's own apns-id is echoed.
	id := "8e3b6f2a-4c1d-4e5f-9a0b-1c2d3e4f5a6b"
	a = doPush(t, providerClient(t, &f.cert), ts.URL, push.TokenHex(tok), map[string]string{push.HeaderID: id}, push.EncodeMDMPayload("MAGIC-2"))
	if a.id != id || next(t, s).ID != id {
		t.Fatalf("apns-id not echoed: %+v", a)
	}
}

func TestOfflineDeviceGetsLatestPushWhenBack(t *testing.T) {
	f := testFixture(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := New([]*x509.Certificate{f.pushCA.Cert}, WithClock(clock))
	ts := listen(t, m)
	c := providerClient(t, &f.cert)
	tok := newToken()
	m.Register(tok, f.topic) // enrolled, never listening yet

	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	for _, magic := range []string{"OLD", "NEW"} {
		if a := doPush(t, c, ts.URL, push.TokenHex(tok), map[string]string{push.HeaderExpiration: exp}, push.EncodeMDMPayload(magic)); a.status != 200 {
			t.Fatalf("push %s: %+v", magic, a)
		}
	}
	if n, ok := m.Pending(tok); !ok || !bytes.Contains(n.Payload, []byte("NEW")) {
		t.Fatalf("pending = %+v, %v; want the newer push", n, ok)
	}
	if st := m.Stats(); st.Coalesced != 1 || st.Pending != 1 {
		t.Fatalf("stats %+v: want 1 coalesced, 1 pending", st)
	}
	s := dial(t, ts.URL, tok, f.topic)
	p := next(t, s)
	if p.PushMagic() != "NEW" {
		t.Fatalf("device got %s, want the coalesced NEW", p.Payload)
	}
	// Not acknowledged, connection lost: still pending, delivered again.
	s.Close()
	waitFor(t, "disconnect", func() bool { return !m.Connected(tok) })
	if _, ok := m.Pending(tok); !ok {
		t.Fatal("a delivered but unacknowledged push was lost with the connection")
	}
	s2 := dial(t, ts.URL, tok, f.topic)
	p2 := next(t, s2)
	if p2.ID != p.ID {
		t.Fatalf("redelivered %q, want %q", p2.ID, p.ID)
	}
	_ = s2.Ack(p2.ID)
	waitFor(t, "ack", func() bool { _, ok := m.Pending(tok); return !ok })
}

func TestExpirationPolicy(t *testing.T) {
	f := testFixture(t)
	base := time.Now()
	cases := []struct {
		name        string
		policy      *ExpiryPolicy
		expiration  string // "" = no header
		advance     time.Duration
		wantPending bool
	}{
		{"expiration 0 is not stored", nil, "0", 0, false},
		{"future expiration is stored", nil, strconv.FormatInt(base.Add(time.Hour).Unix(), 10), 0, true},
		{"stored until it expires", nil, strconv.FormatInt(base.Add(time.Hour).Unix(), 10), 2 * time.Hour, false},
		{"past expiration is never delivered", nil, strconv.FormatInt(base.Add(-time.Minute).Unix(), 10), 0, false},
		{"no header, default policy stores 30 days", nil, "", 29 * 24 * time.Hour, true},
		{"no header, default policy drops after 30 days", nil, "", 31 * 24 * time.Hour, false},
		{"no header, policy says deliver once", &ExpiryPolicy{Store: false}, "", 0, false},
		{"no header, policy stores an hour", &ExpiryPolicy{Store: true, StoreFor: time.Hour}, "", 30 * time.Minute, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			now := base
			opts := []Option{WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })}
			if tc.policy != nil {
				opts = append(opts, WithExpiryPolicy(*tc.policy))
			}
			m := New([]*x509.Certificate{f.pushCA.Cert}, opts...)
			tok := newToken()
			m.Register(tok, f.topic)
			c := &http.Client{Transport: m.InProcessTransport(f.cert.Leaf)}
			hdr := map[string]string{push.HeaderExpiration: tc.expiration}
			if a := doPushInProcess(t, c, push.TokenHex(tok), hdr); a.status != 200 {
				t.Fatalf("push: %+v", a)
			}
			mu.Lock()
			now = now.Add(tc.advance)
			mu.Unlock()
			if _, ok := m.Pending(tok); ok != tc.wantPending {
				t.Fatalf("pending = %v, want %v (stats %+v)", ok, tc.wantPending, m.Stats())
			}
		})
	}
}

func doPushInProcess(t testing.TB, c *http.Client, tokenHex string, hdr map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://apns.invalid"+push.PathPrefix+tokenHex, bytes.NewReader(push.EncodeMDMPayload("M")))
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, id: resp.Header.Get(push.HeaderID), detail: resp.Header.Get(DetailHeader)}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// TestRefusals is the hostile table of the provider side: each bad push gets
// Apple's status and reason, and a detail a person can act on.
func TestRefusals(t *testing.T) {
	f := testFixture(t)
	m := New([]*x509.Certificate{f.pushCA.Cert}, WithSeed(7))
	ts := listen(t, m)
	good := providerClient(t, &f.cert)
	tok := newToken()
	m.Register(tok, f.topic)
	other := newToken()
	m.Register(other, f.otherTop.Leaf.Subject.Names[0].Value.(string))
	gone := newToken()
	m.Register(gone, f.topic)
	if err := m.Unregister(gone); err != nil {
		t.Fatal(err)
	}
	th := push.TokenHex(tok)
	payload := push.EncodeMDMPayload("M")
	cases := []struct {
		name   string
		client *http.Client
		method string
		path   string
		hdr    map[string]string
		body   []byte
		status int
		reason string
		detail string
	}{
		{"no client certificate", providerClient(t, nil), "", "", nil, payload, 403, push.ReasonMissingProviderToken, "no client certificate"},
		{"certificate from an untrusted issuer", providerClient(t, &f.otherCert), "", "", nil, payload, 403, push.ReasonBadCertificate, "refused"},
		{"apns-topic not the certificate's", good, "", "", map[string]string{push.HeaderTopic: "com.apple.mgmt.External.other"}, payload, 400, push.ReasonTopicDisallowed, "not the topic of the client certificate"},
		{"token registered for another topic", good, "", push.PathPrefix + push.TokenHex(other), nil, payload, 400, push.ReasonDeviceTokenNotForTopic, "registered for topic"},
		{"unknown token", good, "", push.PathPrefix + push.TokenHex(newToken()), nil, payload, 400, push.ReasonBadDeviceToken, "not registered"},
		{"token not hex", good, "", push.PathPrefix + strings.Repeat("zz", 32), nil, payload, 400, push.ReasonBadDeviceToken, "not hex"},
		{"token too short", good, "", push.PathPrefix + "abcd", nil, payload, 400, push.ReasonBadDeviceToken, "64 hex digits"},
		{"no token", good, "", push.PathPrefix, nil, payload, 400, push.ReasonMissingDeviceToken, "names no device token"},
		{"unregistered token", good, "", push.PathPrefix + push.TokenHex(gone), nil, payload, 410, push.ReasonUnregistered, "no longer registered"},
		{"bad expiration", good, "", "", map[string]string{push.HeaderExpiration: "tomorrow"}, payload, 400, push.ReasonBadExpirationDate, "UNIX time"},
		{"negative expiration", good, "", "", map[string]string{push.HeaderExpiration: "-5"}, payload, 400, push.ReasonBadExpirationDate, "UNIX time"},
		{"bad priority", good, "", "", map[string]string{push.HeaderPriority: "7"}, payload, 400, push.ReasonBadPriority, "10, 5 or 1"},
		{"bad push type", good, "", "", map[string]string{push.HeaderPushType: "wake"}, payload, 400, push.ReasonInvalidPushType, "MDM pushes use"},
		{"bad apns-id", good, "", "", map[string]string{push.HeaderID: "not-a-uuid"}, payload, 400, push.ReasonBadMessageID, "canonical UUID"},
		{"collapse id too long", good, "", "", map[string]string{push.HeaderCollapseID: strings.Repeat("c", 65)}, payload, 400, push.ReasonBadCollapseID, "64 bytes"},
		{"empty body", good, "", "", nil, nil, 400, push.ReasonPayloadEmpty, "body is empty"},
		{"body not JSON", good, "", "", nil, []byte("mdm=M"), 400, push.ReasonPayloadEmpty, "not a JSON object"},
		{"body too large", good, "", "", nil, append(append([]byte(`{"mdm":"`), bytes.Repeat([]byte("x"), 5000)...), '"', '}'), 413, push.ReasonPayloadTooLarge, "over 4096"},
		{"GET instead of POST", good, http.MethodGet, "", nil, nil, 405, push.ReasonMethodNotAllowed, "POST"},
		{"unknown path", good, "", "/4/device/" + th, nil, payload, 404, push.ReasonBadPath, "no such path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			path := tc.path
			if path == "" {
				path = push.PathPrefix + th
			}
			req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(tc.body))
			req.Header.Set(push.HeaderPushType, push.PushTypeMDM)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body push.ErrorBody
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not Apple's error JSON", raw)
			}
			if resp.StatusCode != tc.status || body.Reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q (detail %q)", resp.StatusCode, body.Reason, tc.status, tc.reason, resp.Header.Get(DetailHeader))
			}
			if d := resp.Header.Get(DetailHeader); !strings.Contains(d, tc.detail) {
				t.Fatalf("detail %q does not say %q", d, tc.detail)
			}
			if tc.reason == push.ReasonUnregistered && body.Timestamp == 0 {
				t.Fatal("Unregistered without a timestamp")
			}
		})
	}
	if st := m.Stats(); st.Accepted != 0 || st.Refused[push.ReasonBadDeviceToken] != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInjectedErrors(t *testing.T) {
	f := testFixture(t)
	m := New([]*x509.Certificate{f.pushCA.Cert}, WithSeed(42))
	c := &http.Client{Transport: m.InProcessTransport(f.cert.Leaf)}
	tok := newToken()
	m.Register(tok, f.topic)
	th := push.TokenHex(tok)

	if err := m.InjectError(th, push.ReasonTooManyRequests, 2); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{429, 429, 200} {
		if a := doPushInProcess(t, c, th, nil); a.status != want {
			t.Fatalf("push %d: %d, want %d (%+v)", i, a.status, want, a)
		}
	}
	if err := m.InjectError(th, push.ReasonUnregistered, 0); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if a := doPushInProcess(t, c, th, nil); a.status != 410 || a.body.Reason != push.ReasonUnregistered || a.body.Timestamp == 0 {
			t.Fatalf("sticky fault: %+v", a)
		}
	}
	m.ClearErrors()
	if a := doPushInProcess(t, c, th, nil); a.status != 200 {
		t.Fatalf("after clear: %+v", a)
	}

	if err := m.SetErrorRatio(0.5, push.ReasonServiceUnavailable); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 400 {
		switch a := doPushInProcess(t, c, th, nil); a.status {
		case 503:
			failed++
		case 200:
		default:
			t.Fatalf("ratio fault answered %+v", a)
		}
	}
	if failed < 150 || failed > 250 {
		t.Fatalf("ratio 0.5 failed %d of 400", failed)
	}

	for _, bad := range []func() error{
		func() error { return m.InjectError(th, "NoSuchReason", 0) },
		func() error { return m.InjectError("xyz", push.ReasonTooManyRequests, 0) },
		func() error { return m.InjectError(th, push.ReasonTooManyRequests, -1) },
		func() error { return m.SetErrorRatio(1.5, push.ReasonTooManyRequests) },
		func() error { return m.SetErrorRatio(0.5, "Nope") },
	} {
		if err := bad(); err == nil {
			t.Fatal("a bad fault was accepted")
		}
	}
}

// TestStreamRefusals: bad subscriptions get a 4xx with a reason, never a hang.
func TestStreamRefusals(t *testing.T) {
	f := testFixture(t)
	m := New([]*x509.Certificate{f.pushCA.Cert})
	ts := listen(t, m)
	tok := push.TokenHex(newToken())
	h1 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots(t), NextProtos: []string{"http/1.1"}}}}
	cases := []struct {
		name, method, query string
		upgrade             bool
		client              *http.Client
		status              int
		says                string
	}{
		{"no upgrade", "GET", "token=" + tok + "&topic=" + f.topic, false, h1, 400, "Upgrade: " + StreamProtocol},
		{"POST", "POST", "token=" + tok + "&topic=" + f.topic, true, h1, 400, "GET"},
		{"bad token", "GET", "token=12&topic=" + f.topic, true, h1, 400, "64 hex digits"},
		{"bad topic", "GET", "token=" + tok + "&topic=com.example.x", true, h1, 400, "starts with com.apple.mgmt."},
		{"over HTTP/2", "GET", "token=" + tok + "&topic=" + f.topic, false, providerClient(t, nil), 400, "HTTP/1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+StreamPath+"?"+tc.query, nil)
			if tc.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", StreamProtocol)
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
				t.Fatalf("got %d %q, want %d saying %q", resp.StatusCode, b, tc.status, tc.says)
			}
		})
	}
	// Dial reports the refusal in words.
	_, err := Dial(context.Background(), ts.URL, make([]byte, 32), "com.example.bad", DialOptions{TLS: &tls.Config{RootCAs: roots(t)}})
	if err == nil || !strings.Contains(err.Error(), "refused the subscription") {
		t.Fatalf("Dial with a bad topic: %v", err)
	}
	// A device that sends garbage instead of acks is disconnected.
	tb := newToken()
	s := dial(t, ts.URL, tb, f.topic)
	waitFor(t, "subscription", func() bool { return m.Connected(tb) })
	_, _ = s.conn.Write([]byte(strings.Repeat("x", 400) + "\n"))
	waitFor(t, "disconnect after garbage", func() bool { return !m.Connected(tb) })
}

func TestReconnectReplacesStreamAndUnregisterCloses(t *testing.T) {
	f := testFixture(t)
	m := New([]*x509.Certificate{f.pushCA.Cert})
	ts := listen(t, m)
	tok := newToken()
	s1 := dial(t, ts.URL, tok, f.topic)
	waitFor(t, "first", func() bool { return m.Connected(tok) })
	s2 := dial(t, ts.URL, tok, f.topic)
	if _, err := s1.Next(); err == nil {
		t.Fatal("the old stream still works after the device reconnected")
	}
	a := doPush(t, providerClient(t, &f.cert), ts.URL, push.TokenHex(tok), nil, push.EncodeMDMPayload("X"))
	if a.status != 200 || next(t, s2).ID != a.id {
		t.Fatalf("push to the new stream: %+v", a)
	}
	if err := m.Unregister(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Next(); err == nil {
		t.Fatal("stream survives Unregister")
	}
	if err := m.Unregister(newToken()); err == nil {
		t.Fatal("Unregister of an unknown token succeeded")
	}
}

func TestInProcessDialAndCloseLeavesNoGoroutines(t *testing.T) {
	f := testFixture(t)
	before := runtime.NumGoroutine()
	m := New([]*x509.Certificate{f.pushCA.Cert})
	c := &http.Client{Transport: m.InProcessTransport(f.cert.Leaf)}
	var streams []*Stream
	for range 20 {
		tok := newToken()
		s, err := Dial(context.Background(), "http://apns.in-process", tok, f.topic, DialOptions{Conn: m.DialInProcess})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
		a := doPushInProcess(t, c, push.TokenHex(tok), nil)
		if a.status != 200 {
			t.Fatalf("%+v", a)
		}
		if p := next(t, s); p.ID != a.id {
			t.Fatalf("got %q want %q", p.ID, a.id)
		}
	}
	if st := m.Stats(); st.Connected != 20 || st.Delivered != 20 {
		t.Fatalf("stats %+v", st)
	}
	m.Close()
	for _, s := range streams {
		if _, err := s.Next(); err == nil {
			t.Fatal("stream open after Close")
		}
	}
	if _, err := m.DialInProcess(context.Background()); err == nil {
		t.Fatal("DialInProcess after Close succeeded")
	}
	waitFor(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= before })
}

func TestResetForgetsEverything(t *testing.T) {
	f := testFixture(t)
	m := New([]*x509.Certificate{f.pushCA.Cert})
	tok := newToken()
	m.Register(tok, f.topic)
	_ = m.InjectError(push.TokenHex(tok), push.ReasonTooManyRequests, 0)
	m.Reset()
	c := &http.Client{Transport: m.InProcessTransport(f.cert.Leaf)}
	if a := doPushInProcess(t, c, push.TokenHex(tok), nil); a.body.Reason != push.ReasonBadDeviceToken {
		t.Fatalf("after reset: %+v", a)
	}
}

// BenchmarkStreamMemory measures what the mock holds per connected device:
// it opens conns subscriptions over loopback and reports heap+stack growth
// per connection. The device ends here are bare net.Conns (no reader), so
// the figure is the mock's cost plus one client socket object.
func BenchmarkStreamMemory(b *testing.B) {
	f := testFixture(b)
	const conns = 2000
	for range b.N {
		m := New([]*x509.Certificate{f.pushCA.Cert})
		ts := httptest.NewServer(m.Handler())
		addr := strings.TrimPrefix(ts.URL, "http://")
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var held []net.Conn
		for range conns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			tok := push.TokenHex(newToken())
			io.WriteString(c, "GET "+StreamPath+"?token="+tok+"&topic="+f.topic+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: "+StreamProtocol+"\r\n\r\n")
			buf := make([]byte, len(switchingProtocols))
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
			held = append(held, c)
		}
		for m.Stats().Connected < conns {
			time.Sleep(time.Millisecond)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		grown := float64((after.HeapAlloc + after.StackInuse) - (before.HeapAlloc + before.StackInuse))
		b.ReportMetric(grown/conns, "bytes/conn")
		for _, c := range held {
			c.Close()
		}
		m.Close()
		ts.Close()
	}
}

// TestHeartbeatFindsVanishedDevices: with no goroutine per stream, the
// heartbeat is what notices a device that went away without a word; a
// device skips the heartbeat lines, and its acks are read in passing.
func TestHeartbeatFindsVanishedDevices(t *testing.T) {
	f := testFixture(t)
	m := New([]*x509.Certificate{f.pushCA.Cert}, WithHeartbeat(20*time.Millisecond))
	ts := listen(t, m)
	c := providerClient(t, &f.cert)
	live, gone := newToken(), newToken()
	s := dial(t, ts.URL, live, f.topic)
	g := dial(t, ts.URL, gone, f.topic)
	waitFor(t, "both subscribed", func() bool { return m.Stats().Connected == 2 })
	time.Sleep(100 * time.Millisecond) // a few heartbeats go out
	a := doPush(t, c, ts.URL, push.TokenHex(live), nil, push.EncodeMDMPayload("after-heartbeats"))
	if p := next(t, s); p.ID != a.id || p.PushMagic() != "after-heartbeats" {
		t.Fatalf("got %+v", p)
	}
	_ = s.Ack(a.id)
	g.conn.Close()
	// Only the heartbeat (not Stats, not Connected) may notice: read the map.
	waitFor(t, "the heartbeat to drop the vanished device", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.tokens[push.TokenHex(gone)].sub == nil
	})
	waitFor(t, "the ack to be read", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.tokens[push.TokenHex(live)].pending == nil
	})
}
