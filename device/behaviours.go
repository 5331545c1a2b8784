package device

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/mockmdm/mockmdm/mdm"
)

// behaviours are what a tester makes a device do, beyond what it would do
// on its own. They belong to the test, not the device: an erase keeps them.
type behaviours struct {
	failWith map[string][]mdm.ErrorChainItem
	delay    map[string]time.Duration
	offline  bool
	// locked is the tester's "user has the device locked": commands that
	// need an unlocked device get NotNow. (A DeviceLock command only
	// records the lock: no passcode is modelled, so nothing waits on it.)
	locked bool
	// statusItems are the status item values the tester set, by item name
	// (SetStatusItem, statusitems.go).
	statusItems map[string]any
}

// needsUnlock lists commands a locked device postpones with NotNow, as an
// iOS device does while its data protection keys are unavailable.
var needsUnlock = map[string]bool{
	"InstallProfile":     true,
	"InstallApplication": true,
	"Settings":           true,
}

// SetLocked makes the device behave as one whose user keeps it locked
// (true) or unlocked: while locked it answers NotNow to the commands that
// need an unlocked device (InstallProfile, InstallApplication, Settings).
func (d *Device) SetLocked(locked bool) {
	d.mu.Lock()
	d.beh.locked = locked
	d.mu.Unlock()
}

// FailWith makes the device answer every command of requestType ("" = any)
// with Status Error and this chain; with no chain, it stops doing so.
func (d *Device) FailWith(requestType string, chain ...mdm.ErrorChainItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(chain) == 0 {
		delete(d.beh.failWith, requestType)
		return
	}
	if d.beh.failWith == nil {
		d.beh.failWith = map[string][]mdm.ErrorChainItem{}
	}
	d.beh.failWith[requestType] = append([]mdm.ErrorChainItem(nil), chain...)
}

// DelayAck makes the device take delay before answering each command of
// requestType ("" = any); 0 removes the delay. A cancelled context ends the
// wait (and the session).
func (d *Device) DelayAck(requestType string, delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if delay <= 0 {
		delete(d.beh.delay, requestType)
		return
	}
	if d.beh.delay == nil {
		d.beh.delay = map[string]time.Duration{}
	}
	d.beh.delay[requestType] = delay
}

// SetOffline takes the device off the network (true) or back on: while
// offline every exchange fails at once with an *ExchangeError, as on a
// device with no connection, and nothing reaches the server.
func (d *Device) SetOffline(offline bool) {
	d.mu.Lock()
	d.beh.offline = offline
	if offline {
		d.dropPushStreamLocked()
	}
	d.mu.Unlock()
}

func (d *Device) isOffline() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.beh.offline
}

// RotatePushToken gives the device a new push token, as APNs does from time
// to time, and sends the TokenUpdate that tells the server.
func (d *Device) RotatePushToken(ctx context.Context) error {
	d.op.Lock()
	defer d.op.Unlock()
	e, err := d.enrolled()
	if err != nil {
		return err
	}
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	d.mu.Lock()
	d.hw.PushToken = token
	d.devicePush.dropLocked() // APNs knows the device by its new token now
	d.mu.Unlock()
	body, err := d.tokenUpdateMessage(e.mdm.Topic, e.userEnrollment)
	if err != nil {
		return err
	}
	return d.checkin(ctx, &e.mdm, e.identity, mdm.MessageTokenUpdate, body)
}

// behave applies the tester's behaviours to a command before its handler:
// a delay first, then a locked device's NotNow, then a forced failure. ok
// is false when the behaviour answered.
func (d *Device) behave(ctx context.Context, rt string) (Response, bool) {
	d.mu.RLock()
	delay := d.beh.delay[rt]
	if delay == 0 {
		delay = d.beh.delay[""]
	}
	locked := d.beh.locked
	chain, fail := d.beh.failWith[rt]
	if !fail {
		chain, fail = d.beh.failWith[""]
	}
	d.mu.RUnlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Failed(commandFailed(), detail("interrupted while delaying the answer: %v", ctx.Err())), false
		}
	}
	if locked && needsUnlock[rt] {
		return Response{Status: mdm.StatusNotNow}, false
	}
	if fail {
		return Failed(chain...), false
	}
	return Response{}, true
}

// offlineError is what an exchange of an offline device fails with.
func offlineError(step, url string) error {
	return &ExchangeError{Step: step, URL: url, Reason: "the device is offline (SetOffline)"}
}
