package scenario

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/push/mockapns"
	"github.com/mockmdm/mockmdm/server"
	"github.com/mockmdm/mockmdm/server/mdmtest"
	"github.com/mockmdm/mockmdm/store/memory"
)

// inProcessURL is the base URL of an in-process server.
const inProcessURL = mdmtest.InProcessURL

// testPKI is the test PKI server/mdmtest makes once per process.
func testPKI() (*server.PKI, error) { return mdmtest.SharedPKI() }

// InProcess starts a fresh mockmdm for sc the way server/mdmtest does: a
// memory store, a test PKI, no port (requests are served by calling the
// handler), and the scenario's clock. The returned function stops it.
func InProcess(sc *Scenario, log *slog.Logger) (*Target, func(), error) {
	p, err := testPKI()
	if err != nil {
		return nil, nil, fmt.Errorf("test PKI: %w", err)
	}
	now, err := scenarioClock(sc, p)
	if err != nil {
		return nil, nil, err
	}
	st := memory.New()
	opts := []server.Option{server.WithLogger(log)}
	if now != nil {
		opts = append(opts, server.WithClock(now))
	}
	srv, err := server.New(st, p, inProcessURL, opts...)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	hc := &http.Client{Transport: mdmtest.InProcess(srv.Handler()), Timeout: 3 * time.Minute}
	trust := x509.NewCertPool()
	trust.AddCert(p.CA.Cert)
	t := &Target{
		BaseURL: inProcessURL,
		APIKey:  p.APIKey,
		HTTP:    hc,
		Client:  api.NewClient(inProcessURL, p.APIKey, api.WithHTTPClient(hc)),
		Trust:   trust,
		// The in-process pipe carries no TLS, hence http.
		APNsURL: "http://mockmdm.test" + server.PathAPNs,
		APNs:    mockapns.DialOptions{Conn: srv.MockAPNs().DialInProcess},
		Now:     now,
		// The runner shares the process with the server, so ADE devices
		// sign with identities from its own mock Apple device CA.
		AppleDeviceCA: p.AppleDeviceCA,
	}
	return t, func() { srv.Close(); st.Close() }, nil
}

// scenarioClock is the scenario's clock: its start (absolute, or offset
// from now) advancing with the run's monotonic time, or nil for the
// machine's clock. A start outside the test PKI's validity would make
// every certificate check fail, so it is refused with the window to use.
func scenarioClock(sc *Scenario, p *server.PKI) (func() time.Time, error) {
	if sc.Clock.IsZero() && sc.ClockOffset == 0 {
		return nil, nil
	}
	base := time.Now()
	start := sc.Clock
	if start.IsZero() {
		start = base.Add(sc.ClockOffset)
	}
	from, until := p.CA.Cert.NotBefore, p.CA.Cert.NotAfter
	for _, c := range []*x509.Certificate{p.SignerCert, p.PushCert} {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	if start.Before(from) || !start.Before(until) {
		return nil, fmt.Errorf("%s:%d: clock %s is outside the in-process test PKI's validity (%s to %s): its certificates would be refused; choose a time in that window, or an offset such as +720h",
			sc.File, sc.Line, start.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	}
	return func() time.Time { return start.Add(time.Since(base)) }, nil
}
