// Package fleet runs many virtual devices against an MDM server: it enrolls
// them and runs connect cycles with a bounded number of workers, and
// reports throughput, latency percentiles per protocol step (from each
// device's own exchange records) and errors grouped by cause.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mockmdm/mockmdm/device"
)

// Fleet is a set of virtual devices.
type Fleet struct {
	devices  []*device.Device
	progress func(phase string, done, total int)
}

// Option configures New.
type Option func(*config)

type config struct {
	seedBase int64
	devOpts  []device.Option
	progress func(phase string, done, total int)
}

// WithSeedBase numbers device seeds from base (base, base+1, …): a fleet is
// the same fleet every run.
func WithSeedBase(base int64) Option { return func(c *config) { c.seedBase = base } }

// WithDeviceOptions applies opts to every device (model, key size, trust…).
func WithDeviceOptions(opts ...device.Option) Option {
	return func(c *config) { c.devOpts = append(c.devOpts, opts...) }
}

// WithProgress calls fn as devices finish a phase (from worker goroutines:
// fn must be safe for concurrent use).
func WithProgress(fn func(phase string, done, total int)) Option {
	return func(c *config) { c.progress = fn }
}

// New creates n devices that reach the server through doer.
func New(doer device.Doer, n int, opts ...Option) *Fleet {
	if n < 1 {
		panic("fleet.New: n must be at least 1")
	}
	c := config{seedBase: 1}
	for _, o := range opts {
		o(&c)
	}
	f := &Fleet{progress: c.progress}
	// A fleet keeps only the last exchanges of each device: the report
	// needs the latest operation's, and 10,000 full transcripts would be
	// most of the fleet's memory.
	base := []device.Option{device.WithTranscriptLimit(16)}
	for i := 0; i < n; i++ {
		f.devices = append(f.devices, device.New(doer, append(append(base, device.WithSeed(c.seedBase+int64(i))), c.devOpts...)...))
	}
	return f
}

// Devices are the fleet's devices, in seed order.
func (f *Fleet) Devices() []*device.Device { return f.devices }

// Latency summarises the durations of one step.
type Latency struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P95   time.Duration `json:"p95_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Report is the outcome of one phase.
type Report struct {
	Phase       string             `json:"phase"`
	Operations  int                `json:"operations"`
	OK          int                `json:"ok"`
	Failed      int                `json:"failed"`
	Concurrency int                `json:"concurrency"`
	Elapsed     time.Duration      `json:"elapsed_ns"`
	PerSecond   float64            `json:"per_second"`
	Steps       map[string]Latency `json:"steps"`
	Errors      map[string]int     `json:"errors,omitempty"`
}

// Enroll enrolls every device from enrollURL with at most concurrency at a
// time. A device's failure is counted in the report, not fatal.
func (f *Fleet) Enroll(ctx context.Context, enrollURL string, concurrency int) *Report {
	return f.run(ctx, "enroll", concurrency, 1, func(ctx context.Context, d *device.Device) error {
		_, err := d.EnrollFromURL(ctx, enrollURL)
		return err
	})
}

// Connect runs cycles connect sessions on every enrolled device (each an
// Idle and the answers to whatever the server queued).
func (f *Fleet) Connect(ctx context.Context, cycles, concurrency int) *Report {
	return f.run(ctx, "connect", concurrency, cycles, func(ctx context.Context, d *device.Device) error {
		if !d.IsEnrolled() {
			return device.ErrNotEnrolled
		}
		_, err := d.Connect(ctx)
		return err
	})
}

// run does op on every device rounds times with a bounded pool of workers.
func (f *Fleet) run(ctx context.Context, phase string, concurrency, rounds int, op func(context.Context, *device.Device) error) *Report {
	return Run(ctx, phase, len(f.devices), rounds, concurrency, f.progress, func(ctx context.Context, i int) (map[string]time.Duration, error) {
		d := f.devices[i]
		began := time.Now()
		err := op(ctx, d)
		return stepDurations(d, began), err
	})
}

// Run does op for 0…n-1, rounds times over, with at most concurrency (and
// at most n) at a time, and reports the phase: op's duration under
// "<phase> (total)" when it succeeds, the step durations it returns, and
// its errors grouped by cause. progress, if not nil, is called as
// operations finish. A fleet's phases run on it, and so can a client that
// is not a fleet of devices (mockmdm bench's replay of presigned requests).
func Run(ctx context.Context, phase string, n, rounds, concurrency int, progress func(phase string, done, total int), op func(ctx context.Context, i int) (map[string]time.Duration, error)) *Report {
	concurrency = max(1, min(concurrency, n))
	total := n * max(1, rounds)
	jobs := make(chan int)
	var (
		mu      sync.Mutex
		steps   = map[string][]time.Duration{}
		errs    = map[string]int{}
		ok      int
		done    atomic.Int64
		workers sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range jobs {
				began := time.Now()
				per, err := op(ctx, i)
				took := time.Since(began)
				mu.Lock()
				if err != nil {
					errs[Cause(err)]++
				} else {
					ok++
					steps[phase+" (total)"] = append(steps[phase+" (total)"], took)
				}
				for s, dur := range per {
					steps[s] = append(steps[s], dur)
				}
				mu.Unlock()
				k := int(done.Add(1))
				if progress != nil {
					progress(phase, k, total)
				}
			}
		}()
	}
feed:
	for r := 0; r < max(1, rounds); r++ {
		for i := range n {
			select {
			case jobs <- i:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	workers.Wait()
	elapsed := time.Since(start)
	rep := &Report{Phase: phase, Operations: int(done.Load()), OK: ok, Concurrency: concurrency, Elapsed: elapsed, Steps: map[string]Latency{}, Errors: errs}
	rep.Failed = rep.Operations - ok
	if elapsed > 0 {
		rep.PerSecond = float64(ok) / elapsed.Seconds()
	}
	for s, ds := range steps {
		rep.Steps[s] = LatencyOf(ds)
	}
	if len(errs) == 0 {
		rep.Errors = nil
	}
	return rep
}

// stepDurations adds up, per protocol step, the exchanges d made since t.
func stepDurations(d *device.Device, since time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, ex := range d.Transcript() {
		if !ex.Time.Before(since) && ex.Err == "" {
			out[ex.Step] += ex.Duration
		}
	}
	return out
}

// LatencyOf summarises durations (it sorts ds); ds must not be empty.
func LatencyOf(ds []time.Duration) Latency {
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Latency{Count: len(ds), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ds[len(ds)-1]}
}

// Cause names what an error comes down to, to group failures.
func Cause(err error) string {
	var se *device.ServerError
	var ee *device.ExchangeError
	var pe *device.ProfileError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("HTTP %d at %s", se.StatusCode, se.Step)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &ee):
		return "network error at " + ee.Step
	case errors.As(err, &pe):
		return "profile refused: " + pe.Reason
	case errors.Is(err, device.ErrNotEnrolled):
		return "not enrolled"
	}
	return fmt.Sprintf("%T", err)
}

// WriteText renders the report for a person.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s: %d ok, %d failed of %d in %s (%.1f/s, concurrency %d)\n",
		r.Phase, r.OK, r.Failed, r.Operations, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.Concurrency)
	names := make([]string, 0, len(r.Steps))
	for s := range r.Steps {
		names = append(names, s)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "  %-22s %7s %10s %10s %10s %10s\n", "step", "count", "p50", "p95", "p99", "max")
	for _, s := range names {
		l := r.Steps[s]
		fmt.Fprintf(w, "  %-22s %7d %10s %10s %10s %10s\n", s, l.Count, ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "  errors by cause:")
		causes := make([]string, 0, len(r.Errors))
		for c := range r.Errors {
			causes = append(causes, c)
		}
		sort.Slice(causes, func(i, j int) bool { return r.Errors[causes[i]] > r.Errors[causes[j]] })
		for _, c := range causes {
			fmt.Fprintf(w, "    %6d  %s\n", r.Errors[c], c)
		}
	}
}

func ms(d time.Duration) string { return strings.TrimSuffix(fmt.Sprintf("%.2fms", float64(d)/1e6), "") }

// JSON is the report as JSON.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }
