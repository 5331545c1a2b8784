package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// CycleDevices is how many devices a Cycler runs: the bench's -n 64.
const CycleDevices = 64

// A Cycler runs the command cycles of `mockmdm bench` against a store,
// without HTTP, TLS or signature checks: CycleDevices devices, each given
// one command per round (the enqueue not counted, as the bench does not
// count it), then all running their cycle at once, as the check-in service
// calls the store once it knows the identity — an Idle (binding, last-seen
// time, next command, its transcript entry) and the acknowledgement (the
// same, with the result saved before the next command is looked up). The
// sizes are those of the bench's SecurityInfo cycle with 2048-bit
// identities.
type Cycler struct {
	// Concurrency is how many devices run their cycle at once (0: all of
	// them). Under `mockmdm bench` about three answers share a commit of
	// the SQLite store; all 64 at once share far more.
	Concurrency int

	s     store.Store
	devs  []*cycleDevice
	round int
}

type cycleDevice struct {
	id  string
	der []byte // its Mdm-Signature, decoded
}

var (
	cycleIdle    = []byte(strings.Repeat("<key>Status</key><string>Idle</string>", 8))
	cycleCommand = []byte(strings.Repeat("<key>RequestType</key><string>SecurityInfo</string>", 12))
	cycleResult  = []byte(strings.Repeat("<key>HardwareEncryptionCaps</key><integer>3</integer>", 20))
)

// NewCycler enrolls the devices in s.
func NewCycler(ctx context.Context, s store.Store) (*Cycler, error) {
	c := &Cycler{s: s, devs: make([]*cycleDevice, CycleDevices)}
	now := time.Now()
	for i := range c.devs {
		d := &cycleDevice{id: fmt.Sprintf("%040X", i*7919)}
		// A 2048-bit Mdm-Signature's 1,326 bytes, of which the signing
		// time, digest and signature (the last 323) change per request.
		d.der = make([]byte, 1326)
		for j := range d.der {
			d.der[j] = byte(i + j)
		}
		c.devs[i] = d
		e := &store.Enrollment{ID: d.id, Type: "Device", UDID: d.id, CertHash: fmt.Sprintf("%064x", i*104729), Enrolled: true,
			Topic: "com.apple.mgmt.External.bench", PushToken: []byte("token"), PushMagic: "magic",
			EnrolledAt: now, AuthenticatedAt: now}
		if err := s.PutEnrollment(ctx, e); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Round enqueues one command for every device, then runs their cycles, and
// returns the process CPU the cycles took (0 where it cannot be read).
func (c *Cycler) Round(ctx context.Context) (time.Duration, error) {
	round := c.round
	c.round++
	ids := make([]string, len(c.devs))
	for i, d := range c.devs {
		ids[i] = d.id
	}
	cmd := &store.Command{UUID: fmt.Sprintf("CYCLE-%08d", round), RequestType: "SecurityInfo", Raw: cycleCommand}
	if err := c.s.Enqueue(ctx, cmd, ids...); err != nil {
		return 0, err
	}
	before := processCPU()
	var wg sync.WaitGroup
	errs := make([]error, len(c.devs))
	running := make(chan struct{}, len(c.devs))
	if c.Concurrency > 0 {
		running = make(chan struct{}, c.Concurrency)
	}
	for i, d := range c.devs {
		wg.Go(func() {
			running <- struct{}{}
			defer func() { <-running }()
			errs[i] = c.cycle(ctx, d, round)
		})
	}
	wg.Wait()
	return processCPU() - before, errors.Join(errs...)
}

func (c *Cycler) cycle(ctx context.Context, d *cycleDevice, round int) error {
	next, err := c.request(ctx, d, 2*round, cycleIdle, "Idle", "")
	if err != nil {
		return err
	}
	if next == nil {
		return fmt.Errorf("%s: no command on Idle in round %d", d.id, round)
	}
	after, err := c.request(ctx, d, 2*round+1, cycleResult, store.CommandAcknowledged, next.CommandUUID)
	if err != nil {
		return err
	}
	if after != nil {
		return fmt.Errorf("%s: a second command in round %d", d.id, round)
	}
	return nil
}

// request is one check-in request's calls on the store; answering, if set,
// is the command whose result body is.
func (c *Cycler) request(ctx context.Context, d *cycleDevice, n int, body []byte, status, answering string) (*store.QueueItem, error) {
	s := c.s
	if br, ok := s.(interface {
		EnrollmentBinding(ctx context.Context, id string) (store.Binding, error)
	}); ok {
		if _, err := br.EnrollmentBinding(ctx, d.id); err != nil {
			return nil, err
		}
	} else if _, err := s.GetEnrollment(ctx, d.id); err != nil {
		return nil, err
	}
	now := time.Now()
	if err := s.TouchEnrollment(ctx, d.id, now); err != nil {
		return nil, err
	}
	if answering != "" {
		if err := s.SaveResult(ctx, d.id, answering, status, body, now); err != nil {
			return nil, err
		}
	}
	next, err := s.NextCommand(ctx, d.id, answering != "")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	binary.BigEndian.PutUint64(d.der[len(d.der)-323:], uint64(n))
	entry := &store.TranscriptEntry{Time: now, EnrollmentID: d.id, RequestID: "0123456789abcdef", Kind: "checkin",
		MessageType: status, CommandUUID: answering, Method: "PUT", Path: "/mdm/connect", Status: 200, Request: body,
		Signature: base64.StdEncoding.EncodeToString(d.der)}
	if next != nil {
		entry.Response = cycleCommand
	}
	return next, s.AppendTranscript(ctx, entry)
}

// BenchmarkCommandCycle runs b.N command cycles (see Cycler) and reports
// cpu-ns/cycle, the CPU of the whole process per cycle (the SQLite
// store's writer goroutine does its work on the callers' behalf, so their
// own time would miss it), where the platform can read it.
func BenchmarkCommandCycle(b *testing.B, s store.Store) {
	BenchmarkCommandCycleAtOnce(b, s, 0)
}

// BenchmarkCommandCycleAtOnce is BenchmarkCommandCycle with concurrency
// devices running their cycle at once (0: all): `mockmdm bench` runs
// eight (its -concurrency), and how many answers share a commit of the
// SQLite store, and how many transcript entries a write, follows from it.
func BenchmarkCommandCycleAtOnce(b *testing.B, s store.Store, concurrency int) {
	ctx := context.Background()
	c, err := NewCycler(ctx, s)
	if err != nil {
		b.Fatal(err)
	}
	c.Concurrency = concurrency
	rounds := (b.N + CycleDevices - 1) / CycleDevices
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range rounds {
		took, err := c.Round(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cpu += took
	}
	b.StopTimer()
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(rounds*CycleDevices), "cpu-ns/cycle")
	}
}

// RunCycles checks a Cycler's rounds on s: each device answers the round's
// command, which ends Acknowledged with its result, and nothing stays
// queued. It holds the benchmark to what it claims to measure.
func RunCycles(t *testing.T, s store.Store) {
	ctx := context.Background()
	c, err := NewCycler(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		items, err := s.CommandItems(ctx, fmt.Sprintf("CYCLE-%08d", round))
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != CycleDevices {
			t.Fatalf("round %d: %d items, want %d", round, len(items), CycleDevices)
		}
		for _, it := range items {
			if it.Status != store.CommandAcknowledged || string(it.Result) != string(cycleResult) {
				t.Fatalf("round %d, %s: %s with %d bytes of result", round, it.EnrollmentID, it.Status, len(it.Result))
			}
		}
	}
	for _, d := range c.devs {
		if open, err := s.QueueItems(ctx, d.id); err != nil || len(open) != 0 {
			t.Fatalf("%s: %d items still queued (%v)", d.id, len(open), err)
		}
	}
	all, err := s.Transcript(ctx, "", 0, 0)
	if err != nil || len(all) != 3*2*CycleDevices {
		t.Fatalf("transcript: %d entries (%v), want %d", len(all), err, 3*2*CycleDevices)
	}
	// Each request's record reads back with the bodies it was given,
	// however the store keeps them.
	for _, e := range all {
		wantRequest, wantResponse := cycleIdle, cycleCommand
		if e.MessageType != "Idle" {
			wantRequest, wantResponse = cycleResult, nil
		}
		if !bytes.Equal(e.Request, wantRequest) || !bytes.Equal(e.Response, wantResponse) {
			t.Fatalf("entry %d (%s): request %d bytes, response %d bytes; want %d and %d",
				e.Seq, e.MessageType, len(e.Request), len(e.Response), len(wantRequest), len(wantResponse))
		}
	}
}
