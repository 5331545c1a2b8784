package scenario

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/push/mockapns"
)

// Target is a mockmdm the runner drives: its REST API and what a virtual
// device needs to reach its device endpoints and mock APNs.
type Target struct {
	// BaseURL is the server's base URL, e.g. https://127.0.0.1:8443.
	BaseURL string
	// APIKey is the REST API's bearer key.
	APIKey string
	// HTTP reaches the server, for the API client and the devices.
	HTTP *http.Client
	// Client is the REST API client (made from the above when nil).
	Client *api.Client
	// Trust holds the server's CA: devices trust it for TLS and to call
	// its profiles verified.
	Trust *x509.CertPool
	// APNsURL and APNs are how a listening device reaches the mock APNs
	// (default: the server's /v1/info apns_url over TLS with Trust).
	APNsURL string
	APNs    mockapns.DialOptions
	// Now is the clock devices use (nil: the machine's).
	Now func() time.Time
	// DeviceOptions are added to every device the scenario creates.
	DeviceOptions []device.Option
	// AppleDeviceCA is the server's mock Apple device CA, when the runner
	// holds it (in-process): ADE devices get their identities from it.
	// Nil against a running server: they ask POST /v1/ade/device-identities.
	AppleDeviceCA *certs.AppleDeviceCA
}

// Connect returns a Target for a running server at baseURL reached with
// hc (whose TLS roots must include the server's CA); trust is the CA that
// devices trust to call the server's profiles verified (nil: none).
func Connect(baseURL, apiKey string, hc *http.Client, trust *x509.CertPool) *Target {
	if hc == nil {
		hc = &http.Client{Timeout: 3 * time.Minute}
	}
	var tlsConfig *tls.Config
	if tr, ok := hc.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		tlsConfig = tr.TLSClientConfig.Clone()
	}
	base := strings.TrimSuffix(strings.TrimRight(baseURL, "/"), "/v1")
	return &Target{
		BaseURL: base, APIKey: apiKey, HTTP: hc, Trust: trust,
		APNs: mockapns.DialOptions{TLS: tlsConfig},
	}
}

// Runner runs scenarios. Its zero value is not usable: call NewRunner.
type Runner struct {
	target   *Target
	progress io.Writer
	log      *slog.Logger
	reset    bool
	timeout  time.Duration
}

// Option configures NewRunner.
type Option func(*Runner)

// WithTarget runs every scenario against t (a running server) instead of
// a fresh in-process server per scenario.
func WithTarget(t *Target) Option { return func(r *Runner) { r.target = t } }

// WithReset makes the runner POST /v1/reset before each scenario run
// against a Target, so scenarios start from the same empty server. It
// deletes everything the server holds except its PKI.
func WithReset(reset bool) Option { return func(r *Runner) { r.reset = reset } }

// WithProgress prints a line per step to w as the run goes.
func WithProgress(w io.Writer) Option { return func(r *Runner) { r.progress = w } }

// WithLogger sets the logger of the runner, devices and in-process server
// (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// WithStepTimeout bounds each step that has no within of its own (default
// 2 minutes), so a server that never answers fails the step instead of
// hanging the run.
func WithStepTimeout(d time.Duration) Option { return func(r *Runner) { r.timeout = d } }

// NewRunner returns a runner; with no WithTarget it starts an in-process
// server for each scenario.
func NewRunner(opts ...Option) *Runner {
	r := &Runner{timeout: 2 * time.Minute}
	for _, o := range opts {
		o(r)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.timeout <= 0 {
		panic("scenario: WithStepTimeout needs a positive duration")
	}
	return r
}

// RunFiles parses and runs every scenario of every file, in order.
func (r *Runner) RunFiles(ctx context.Context, files ...string) *Report {
	rep := &Report{}
	for _, f := range files {
		rep.Files = append(rep.Files, r.RunFile(ctx, f))
	}
	return rep
}

// RunFile parses and runs the scenarios of one file. A file that does not
// parse is reported with its *Error and runs nothing.
func (r *Runner) RunFile(ctx context.Context, file string) FileReport {
	fr := FileReport{File: file}
	data, err := readBounded(file)
	if err != nil {
		fr.Error = &Error{File: file, Msg: err.Error()}
		r.printf("FAIL %s: %v\n", file, err)
		return fr
	}
	scs, err := Parse(file, data)
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			pe = &Error{File: file, Msg: err.Error()}
		}
		fr.Error = pe
		r.printf("FAIL %v\n", pe)
		return fr
	}
	for _, sc := range scs {
		fr.Scenarios = append(fr.Scenarios, r.Run(ctx, sc))
	}
	return fr
}

func readBounded(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("larger than the %d bytes a scenario file may hold", MaxFileSize)
	}
	return data, nil
}

// devState is a device of a running scenario.
type devState struct {
	dev          *device.Device
	enrollmentID string
}

// run is one scenario in progress.
type run struct {
	sc       *Scenario
	target   *Target
	log      *slog.Logger
	now      func() time.Time
	info     *api.ServerInfo
	devices  map[string]*devState
	commands map[string]string
	faults   map[string]string
	// responses are the answers of api steps, by their as: names.
	responses map[string]*apiResponse
	notes     []string
	// ctx lives as long as the scenario: listeners run under it.
	ctx       context.Context
	listeners sync.WaitGroup
}

func (r *run) notef(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// Run runs one scenario and reports each step. It stops at the first
// failed step; the steps after it are reported as skipped.
func (r *Runner) Run(ctx context.Context, sc *Scenario) ScenarioReport {
	start := time.Now()
	rep := ScenarioReport{Name: sc.Name, File: sc.File, Line: sc.Line}
	r.printf("RUN  %s (%s:%d)\n", sc.Name, sc.File, sc.Line)
	finish := func() ScenarioReport {
		rep.Duration = time.Since(start)
		rep.Passed = rep.Failure == nil
		if rep.Passed {
			r.printf("PASS %s\n", sc.Name)
		} else {
			r.printf("FAIL %s: %s\n", sc.Name, rep.Failure.Message)
		}
		return rep
	}

	target, stopTarget, err := r.targetFor(ctx, sc)
	if err != nil {
		rep.Failure = &Failure{Message: "starting: " + err.Error()}
		return finish()
	}
	defer stopTarget()
	lctx, stop := context.WithCancel(ctx)
	ru := &run{
		sc: sc, target: target, log: r.log, now: target.Now, ctx: lctx,
		devices: map[string]*devState{}, commands: map[string]string{}, faults: map[string]string{},
		responses: map[string]*apiResponse{},
	}
	// Listeners end with the scenario, before its server stops.
	defer func() { stop(); ru.listeners.Wait() }()

	failed := false
	for _, st := range sc.Steps {
		sr := StepReport{Index: st.Index, Kind: st.Kind, Line: st.Line, Summary: st.Summary()}
		if failed {
			sr.Skipped = true
			rep.Steps = append(rep.Steps, sr)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, r.timeout)
		stepStart := time.Now()
		ru.notes = nil
		err := st.action.run(sctx, ru)
		cancel()
		sr.Duration = time.Since(stepStart)
		sr.Notes = ru.notes
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			sr.Error = err.Error()
			var m *Mismatch
			if errors.As(err, &m) {
				sr.Expected, sr.Seen = m.Expected, m.Seen
			}
			failed = true
			rep.Failure = &Failure{Step: st.Index, Kind: st.Kind, Line: st.Line,
				Message: fmt.Sprintf("%s %s:%d: %s", st, sc.File, st.Line, sr.Error), Expected: sr.Expected, Seen: sr.Seen}
			r.printf("  FAIL %s %s: %s\n", st, sr.Summary, sr.Error)
		} else {
			r.printf("  ok   %s %s\n", st, sr.Summary)
			for _, n := range sr.Notes {
				r.printf("         %s\n", n)
			}
		}
		rep.Steps = append(rep.Steps, sr)
	}
	return finish()
}

func (r *Runner) printf(format string, args ...any) {
	if r.progress != nil {
		fmt.Fprintf(r.progress, format, args...)
	}
}

// targetFor is the server a scenario runs against: the configured Target
// (reset first when asked), or a fresh in-process server.
func (r *Runner) targetFor(ctx context.Context, sc *Scenario) (*Target, func(), error) {
	if r.target == nil {
		return InProcess(sc, r.log)
	}
	if !sc.Clock.IsZero() || sc.ClockOffset != 0 {
		// A running server keeps its own clock, and devices keep to the
		// server's: certificates are checked against it.
		r.printf("  note: %s:%d: clock is ignored: the server at %s keeps its own\n", sc.File, sc.Line, r.target.BaseURL)
	}
	t := *r.target
	if t.Client == nil {
		t.Client = api.NewClient(t.BaseURL, t.APIKey, api.WithHTTPClient(t.HTTP))
	}
	if r.reset {
		if err := t.Client.Reset(ctx); err != nil {
			return nil, nil, fmt.Errorf("resetting %s: %w", t.BaseURL, err)
		}
	}
	return &t, func() {}, nil
}

func (r *run) serverInfo(ctx context.Context) (*api.ServerInfo, error) {
	if r.info != nil {
		return r.info, nil
	}
	info, err := r.target.Client.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the server's description (GET /v1/info): %w", err)
	}
	r.info = info
	return info, nil
}

// enrollmentID is how the server knows a device: what its enroll step's
// path returned.
func (r *run) enrollmentID(name string) (string, error) {
	ds := r.devices[name]
	if ds.enrollmentID == "" {
		return "", fmt.Errorf("device %s is not enrolled: an enroll step must come first", name)
	}
	return ds.enrollmentID, nil
}

// listen subscribes a device at the mock APNs for the rest of the
// scenario; it returns once the device is subscribed.
func (r *run) listen(ctx context.Context, name string) error {
	ds := r.devices[name]
	if !ds.dev.IsEnrolled() {
		return fmt.Errorf("device %s is not enrolled: it has no push token to listen with", name)
	}
	url := r.target.APNsURL
	if url == "" {
		info, err := r.serverInfo(ctx)
		if err != nil {
			return err
		}
		if url = info.APNsURL; url == "" {
			return errors.New("the server has no mock APNs (GET /v1/info gives no apns_url)")
		}
	}
	sctx := r.ctx
	ready := make(chan struct{}, 1)
	r.listeners.Add(1)
	go func() {
		defer r.listeners.Done()
		_ = ds.dev.ListenForPushes(sctx, url, r.target.APNs,
			device.WithRetry(50*time.Millisecond),
			device.OnSubscribed(func() {
				select {
				case ready <- struct{}{}:
				default:
				}
			}),
			device.OnPush(func(ev device.PushEvent) {
				r.log.Info("scenario: push woke device", "device", name, "ignored", ev.Ignored, "err", ev.Err)
			}))
	}()
	select {
	case <-ready:
		r.notef("%s subscribed at %s", name, url)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("device %s did not subscribe at the mock APNs %s: %w", name, url, ctx.Err())
	}
}

// maxFaultAnswer bounds what the runner reads of a /v1/faults answer.
const maxFaultAnswer = 1 << 20

// faultCall calls /v1/faults. api.Client has no methods for it yet, so the
// runner speaks its JSON with the same HTTP client and key.
func (r *run) faultCall(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.target.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+r.target.APIKey)
	resp, err := r.target.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxFaultAnswer))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb api.ErrorBody
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		return fmt.Errorf("%s %s: the server refused the rule: %d %s", method, path, resp.StatusCode, msg)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// messageTypes lists the message types in an enrollment's transcript,
// reading it page by page (bounded).
func (r *run) messageTypes(ctx context.Context, id string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var after int64
	for page := 0; page < 100; page++ {
		entries, err := r.target.Client.Transcript(ctx, id, after, 500)
		if err != nil {
			return nil, fmt.Errorf("reading the transcript of %s: %w", id, err)
		}
		for _, e := range entries {
			if e.MessageType != "" && !seen[e.MessageType] {
				seen[e.MessageType] = true
				out = append(out, e.MessageType)
			}
			after = e.Seq
		}
		if len(entries) < 500 {
			break
		}
	}
	return out, nil
}
