// Package mdmtest runs a mockmdm inside a Go test, the way net/http/httptest
// runs an HTTP server: NewServer starts one on the memory store with a test
// PKI — in-process, with no port, unless WithTLS asks for a real TLS
// listener — and cleans it up when the test ends. Virtual devices made
// with NewDevice reach it through the same transport.
//
//	func TestDeviceInformation(t *testing.T) {
//		srv := mdmtest.NewServer(t)
//		dev := srv.NewDevice()
//		id := srv.Enroll(dev)
//		res := srv.Run(dev, &mdm.DeviceInformation{Queries: []string{"SerialNumber"}})
//		if res.Status != "Acknowledged" { t.Fatal(res.Status) }
//		_ = id
//	}
package mdmtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/push/mockapns"
	"github.com/mockmdm/mockmdm/server"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

// TB is the part of testing.TB that mdmtest uses, so a *testing.T, a
// *testing.B or an example's own helper can drive it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server is a mockmdm running for one test.
type Server struct {
	t      TB
	srv    *server.Server
	url    string
	http   *http.Client
	doer   device.Doer
	trust  *x509.CertPool
	client *api.Client
	seeds  atomic.Int64
}

type config struct {
	tls     bool
	store   store.Store
	log     *slog.Logger
	srvOpts []server.Option
}

// Option configures NewServer.
type Option func(*config)

// WithTLS serves over real TLS on a 127.0.0.1 port instead of in-process.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithStore uses st instead of a fresh memory store (it is not closed).
func WithStore(st store.Store) Option { return func(c *config) { c.store = st } }

// WithLogger sets the server's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithServerOptions passes options to server.New (clock, identity
// lifetime, UserAuthenticate policy…).
func WithServerOptions(opts ...server.Option) Option {
	return func(c *config) { c.srvOpts = append(c.srvOpts, opts...) }
}

// InProcessURL is the base URL of an in-process server: requests never
// leave the process, so the name resolves nowhere.
const InProcessURL = "https://mockmdm.test"

// inProcessURL is InProcessURL, as this package calls it.
const inProcessURL = InProcessURL

var (
	pkiOnce sync.Once
	pki     *server.PKI
	pkiErr  error
)

// SharedPKI returns a copy of the test PKI made once per process, for other
// in-process harnesses (scenarios): RSA key generation is the slow part of
// a start, and tests don't need a CA each.
func SharedPKI() (*server.PKI, error) { return testPKI() }

// testPKI is made once per process: RSA key generation is the slow part of
// a start, and tests don't need a CA each.
func testPKI() (*server.PKI, error) {
	pkiOnce.Do(func() { pki, pkiErr = server.NewPKI([]string{"mockmdm.test", "localhost", "127.0.0.1"}) })
	if pkiErr != nil {
		return nil, pkiErr
	}
	p := *pki
	return &p, nil
}

// NewServer starts a mockmdm for the test t; it stops when the test ends.
func NewServer(t TB, opts ...Option) *Server {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	p, err := testPKI()
	if err != nil {
		t.Fatalf("mdmtest: test PKI: %v", err)
	}
	st := c.store
	if st == nil {
		mem := memory.New()
		t.Cleanup(func() { mem.Close() })
		st = mem
	}
	s := &Server{t: t, trust: x509.NewCertPool()}
	s.trust.AddCert(p.CA.Cert)
	srvOpts := append([]server.Option{server.WithLogger(c.log)}, c.srvOpts...)

	if !c.tls {
		s.url = inProcessURL
		if s.srv, err = server.New(st, p, s.url, srvOpts...); err != nil {
			t.Fatalf("mdmtest: %v", err)
		}
		rt := InProcess(s.srv.Handler())
		s.http = &http.Client{Transport: rt, Timeout: time.Minute}
		s.doer = s.http
	} else {
		ts := httptest.NewUnstartedServer(nil)
		s.url = "https://" + ts.Listener.Addr().String()
		if s.srv, err = server.New(st, p, s.url, srvOpts...); err != nil {
			ts.Close()
			t.Fatalf("mdmtest: %v", err)
		}
		ts.Config.Handler = s.srv.Handler()
		ts.TLS = s.srv.TLSConfig()
		ts.StartTLS()
		t.Cleanup(ts.Close)
		tr := ts.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.RootCAs = s.trust
		s.http = &http.Client{Transport: tr, Timeout: time.Minute}
		t.Cleanup(tr.CloseIdleConnections)
		s.doer = s.http
	}
	t.Cleanup(s.srv.Close)
	s.client = api.NewClient(s.url, p.APIKey, api.WithHTTPClient(s.http))
	return s
}

// APNsURL is the base URL of the server's mock APNs.
func (s *Server) APNsURL() string { return s.srv.URL(server.PathAPNs) }

// APNsDialOptions is how a device reaches the mock APNs: through a pipe
// in-process, or over TLS trusting the test CA.
func (s *Server) APNsDialOptions() mockapns.DialOptions {
	if s.url == inProcessURL {
		return mockapns.DialOptions{Conn: s.srv.MockAPNs().DialInProcess}
	}
	return mockapns.DialOptions{TLS: &tls.Config{RootCAs: s.trust, MinVersion: tls.VersionTLS12}}
}

// ListenForPushes keeps dev subscribed at the mock APNs, so that a command
// queued through the API (which pushes) wakes it and it connects on its
// own, as a real device does. It returns once dev is subscribed; the
// listener stops when the test ends.
func (s *Server) ListenForPushes(dev *device.Device, opts ...device.ListenOption) {
	s.t.Helper()
	s.listen(dev, "", dev.ListenForPushes, append([]device.ListenOption{device.WithRetry(50 * time.Millisecond)}, opts...))
}

// ListenForUserPushes is ListenForPushes for the channel of the user
// logged in on dev (a Shared iPad's or a Mac's): a command queued for that
// user's enrollment wakes the device, which answers on the user's channel.
// The listener follows logins: after a LogOut it waits, and subscribes
// with the next logged-in user's token. It returns once subscribed; the
// listener stops when the test ends.
func (s *Server) ListenForUserPushes(dev *device.Device, opts ...device.ListenOption) {
	s.t.Helper()
	s.listen(dev, " user channel", dev.ListenForUserPushes, append([]device.ListenOption{device.WithRetry(50 * time.Millisecond)}, opts...))
}

// listen runs one of the device's push listeners until the test ends and
// returns once it has subscribed, failing the test if it cannot.
func (s *Server) listen(dev *device.Device, what string, run func(context.Context, string, mockapns.DialOptions, ...device.ListenOption) error, opts []device.ListenOption) {
	s.t.Helper()
	url := s.APNsURL()
	if s.url == inProcessURL {
		url = "http://mockmdm.test" + server.PathAPNs // the pipe carries no TLS
	}
	ready := make(chan struct{}, 1)
	failed := make(chan error, 1)
	opts = append([]device.ListenOption{device.OnSubscribed(func() {
		select {
		case ready <- struct{}{}:
		default:
		}
	})}, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx, url, s.APNsDialOptions(), opts...); err != nil && ctx.Err() == nil {
			failed <- err
		}
	}()
	s.t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-failed:
		s.t.Fatalf("mdmtest: device %s%s could not listen for pushes: %v", dev.SerialNumber(), what, err)
	case <-time.After(10 * time.Second):
		s.t.Fatalf("mdmtest: device %s%s did not subscribe to the mock APNs within 10s (is it enrolled?)", dev.SerialNumber(), what)
	}
}

// URL is the base URL of the server.
func (s *Server) URL() string { return s.url }

// EnrollURL is where the enrollment profile is served.
func (s *Server) EnrollURL() string { return s.srv.URL(server.PathEnroll) }

// Client is a REST API client with the server's key.
func (s *Server) Client() *api.Client { return s.client }

// HTTPClient reaches the server (in-process, or over TLS trusting its CA).
func (s *Server) HTTPClient() *http.Client { return s.http }

// Doer is the transport virtual devices use to reach the server.
func (s *Server) Doer() device.Doer { return s.doer }

// Trust holds the server's test CA.
func (s *Server) Trust() *x509.CertPool { return s.trust }

// Server is the mockmdm server itself (its store, PKI, handler).
func (s *Server) Server() *server.Server { return s.srv }

// NewDevice makes a virtual device wired to this server. Seeds are 1, 2, 3…
// in order of creation unless an option sets one, so runs are repeatable.
// It asks this server's mock of Apple-hosted service discovery when a
// domain serves no discovery document.
func (s *Server) NewDevice(opts ...device.Option) *device.Device {
	base := []device.Option{device.WithSeed(s.seeds.Add(1)), device.WithTrust(s.trust),
		device.WithAppleServiceDiscovery(s.srv.URL(server.PathADEDiscovery))}
	return device.New(s.doer, append(base, opts...)...)
}

func (s *Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// Enroll installs the server's enrollment profile on dev (SCEP,
// Authenticate, TokenUpdate) and returns the enrollment ID; it fails the
// test when enrollment fails.
func (s *Server) Enroll(dev *device.Device) string {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	res, err := dev.EnrollFromURL(ctx, s.EnrollURL())
	if err != nil {
		s.t.Fatalf("mdmtest: enroll device %s: %v", dev.SerialNumber(), err)
	}
	if !res.Enrolled {
		s.t.Fatalf("mdmtest: device %s installed the profile but did not enroll", dev.SerialNumber())
	}
	return enrollmentID(dev)
}

// Enqueue queues a command for the enrollments and returns its UUID. The
// command is a typed mdm request (e.g. &mdm.DeviceInformation{…}), a map
// of the Command dictionary with Apple's keys including RequestType (any
// command), or a whole command plist ([]byte or string).
func (s *Server) Enqueue(command any, ids ...string) string {
	s.t.Helper()
	req := api.EnqueueRequest{EnrollmentIDs: ids}
	switch c := command.(type) {
	case []byte:
		req.RawPlist = string(c)
	case string:
		req.RawPlist = c
	case map[string]any:
		// Any RequestType: sent as a raw plist, so <data> and every key pass as given.
		raw, err := plist.Marshal(map[string]any{"Command": c})
		if err != nil {
			s.t.Fatalf("mdmtest: command %v does not encode as a plist: %v", c, err)
		}
		req.RawPlist = string(raw)
	default:
		b, err := json.Marshal(c)
		if err != nil {
			s.t.Fatalf("mdmtest: command %T does not encode as JSON: %v", command, err)
		}
		req.Command = withRequestType(b, command)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.client.Enqueue(ctx, req)
	if err != nil {
		s.t.Fatalf("mdmtest: enqueue %T: %v", command, err)
	}
	return resp.CommandUUID
}

// withRequestType fills RequestType from the Go type name of a typed mdm
// request when the caller left it empty (&mdm.DeviceInformation{} → "DeviceInformation").
func withRequestType(b []byte, command any) []byte {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	if rt, _ := m["RequestType"].(string); rt != "" {
		return b
	}
	if req, ok := command.(mdm.CommandRequest); ok {
		m["RequestType"] = mdm.RequestTypeOf(req)
		out, _ := json.Marshal(m)
		return out
	}
	name := fmt.Sprintf("%T", command)
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			name = name[i+1:]
			break
		}
	}
	m["RequestType"] = name
	out, _ := json.Marshal(m)
	return out
}

// WaitResult long-polls until every target answered the command for good,
// failing the test after timeout.
func (s *Server) WaitResult(uuid string, timeout time.Duration) *api.CommandStatus {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), left+5*time.Second)
		st, err := s.client.GetCommand(ctx, uuid, min(left, 2*time.Minute))
		cancel()
		if err != nil {
			s.t.Fatalf("mdmtest: command %s: %v", uuid, err)
		}
		if st.Done {
			return st
		}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	st, _ := s.client.GetCommand(ctx, uuid, 0)
	s.t.Fatalf("mdmtest: command %s has no final answer after %s (state: %s)", uuid, timeout, describe(st))
	return nil
}

func describe(st *api.CommandStatus) string {
	if st == nil {
		return "unknown"
	}
	out := ""
	for _, r := range st.Results {
		out += r.EnrollmentID + "=" + r.Status + " "
	}
	return out
}

// Run queues command for dev's enrollment, lets dev connect and answer,
// and returns dev's result: the one-line common case.
func (s *Server) Run(dev *device.Device, command any) *api.CommandResult {
	s.t.Helper()
	uuid := s.Enqueue(command, enrollmentID(dev))
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := dev.Connect(ctx); err != nil {
		s.t.Fatalf("mdmtest: device %s connect: %v", dev.SerialNumber(), err)
	}
	st := s.WaitResult(uuid, 10*time.Second)
	return &st.Results[0]
}

// RunUser is Run on the channel of the user logged in on a Shared iPad or
// a Mac (dev.LogIn): the command is queued for that user's enrollment
// (UDID:account on a Shared iPad, UDID:GUID on a Mac) and answered in
// dev.ConnectUser.
func (s *Server) RunUser(dev *device.Device, command any) *api.CommandResult {
	s.t.Helper()
	var user, id string
	for _, u := range dev.Users() {
		if u.LoggedIn {
			user, id = u.ShortName, u.EnrollmentID
		}
	}
	if id == "" {
		s.t.Fatalf("mdmtest: RunUser: no user with a channel is logged in on device %s", dev.SerialNumber())
	}
	uuid := s.Enqueue(command, id)
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := dev.ConnectUser(ctx); err != nil {
		s.t.Fatalf("mdmtest: device %s user %s connect: %v", dev.SerialNumber(), user, err)
	}
	st := s.WaitResult(uuid, 10*time.Second)
	return &st.Results[0]
}

// enrollmentID is how the server knows dev: its EnrollmentID for a User
// Enrollment, else its UDID.
func enrollmentID(dev *device.Device) string {
	if e := dev.Enrollment(); e != nil && e.UserEnrollment {
		return dev.EnrollmentID()
	}
	return dev.UDID()
}

// InProcess is a RoundTripper that serves each request by calling h in
// this process — no socket, no TLS — for the clients (virtual devices,
// the API client) of a server running in the same test or scenario.
func InProcess(h http.Handler) http.RoundTripper { return inProcess{h} }

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
