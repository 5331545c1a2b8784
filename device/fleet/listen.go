package fleet

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/push/mockapns"
)

// Listening is a fleet holding push streams at a mock APNs: every enrolled
// device waits for pushes and connects when one arrives, as idle devices
// in a drawer do.
type Listening struct {
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	subscribed atomic.Int64
	woken      atomic.Int64

	mu      sync.Mutex
	wakes   []time.Duration
	errs    map[string]int
	ignored int
}

// Listen subscribes every enrolled device at the mock APNs apnsURL (reached
// as o says) in a goroutine of its own, until Stop. Each push a device takes
// is counted with the time from its arrival to the end of the connect.
func (f *Fleet) Listen(ctx context.Context, apnsURL string, o mockapns.DialOptions) *Listening {
	ctx, cancel := context.WithCancel(ctx)
	l := &Listening{cancel: cancel, errs: map[string]int{}}
	for _, d := range f.devices {
		if !d.IsEnrolled() {
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = d.ListenForPushes(ctx, apnsURL, o, device.WithRetry(2*time.Second),
				device.OnSubscribed(func() { l.subscribed.Add(1) }),
				device.OnPush(l.record))
		}()
	}
	return l
}

func (l *Listening) record(ev device.PushEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case ev.Ignored != "":
		l.ignored++
	case ev.Err != nil:
		l.errs[Cause(ev.Err)]++
	default:
		l.wakes = append(l.wakes, ev.Latency)
	}
	l.woken.Add(1)
}

// Subscribed counts subscriptions made so far (a resubscription counts again).
func (l *Listening) Subscribed() int { return int(l.subscribed.Load()) }

// Woken counts the pushes the devices handled.
func (l *Listening) Woken() int { return int(l.woken.Load()) }

// WaitFor polls until cond holds or ctx ends; it reports whether cond held.
func (l *Listening) WaitFor(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// Report summarises the pushes handled: the "wake" step is from a push's
// arrival at the device to the end of the command session it started.
func (l *Listening) Report(elapsed time.Duration) *Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	rep := &Report{Phase: "push", OK: len(l.wakes), Elapsed: elapsed, Steps: map[string]Latency{}, Errors: map[string]int{}}
	for c, n := range l.errs {
		rep.Errors[c] = n
		rep.Failed += n
	}
	if l.ignored > 0 {
		rep.Errors["push ignored (topic or PushMagic)"] = l.ignored
		rep.Failed += l.ignored
	}
	rep.Operations = rep.OK + rep.Failed
	if len(l.wakes) > 0 {
		rep.Steps["wake"] = LatencyOf(append([]time.Duration(nil), l.wakes...))
	}
	if elapsed > 0 {
		rep.PerSecond = float64(rep.OK) / elapsed.Seconds()
	}
	if len(rep.Errors) == 0 {
		rep.Errors = nil
	}
	return rep
}

// Stop ends every stream and waits for the devices' goroutines.
func (l *Listening) Stop() {
	l.cancel()
	l.wg.Wait()
}
