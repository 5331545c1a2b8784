package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/push/mockapns"
)

// PushEvent is one push the device received while listening, and what it
// did about it.
type PushEvent struct {
	Push mockapns.Push
	// Ignored says why the device did nothing (a push for another topic, or
	// without its PushMagic), as a real device silently drops it.
	Ignored string
	// Connect is the command session the push started (nil if ignored).
	Connect *ConnectResult
	// Err is the session's error, if any.
	Err error
	// Latency is from the push's arrival to the end of the session.
	Latency time.Duration
}

// ListenOption configures ListenForPushes.
type ListenOption func(*listenConfig)

type listenConfig struct {
	onPush  func(PushEvent)
	onReady func()
	retry   time.Duration
}

// OnPush is called after each push is handled (from the listening
// goroutine: keep it short).
func OnPush(f func(PushEvent)) ListenOption { return func(c *listenConfig) { c.onPush = f } }

// OnSubscribed is called each time the stream is (re)established.
func OnSubscribed(f func()) ListenOption { return func(c *listenConfig) { c.onReady = f } }

// WithRetry sets how long the device waits before subscribing again after
// the stream failed (default 1s), and how often it checks, while offline
// or not enrolled, whether it can subscribe.
func WithRetry(d time.Duration) ListenOption {
	if d <= 0 {
		panic("device: WithRetry needs a positive duration")
	}
	return func(c *listenConfig) { c.retry = d }
}

// ListenForPushes keeps the device subscribed at a mock APNs (base URL
// apnsURL, reached as o says) with its push token and the topic it
// enrolled under, and runs a command session (Connect) for each push that
// carries its topic and PushMagic — what a real device does when APNs
// wakes it. A push for another topic, or with another PushMagic, is
// acknowledged to APNs and otherwise ignored, and the transcript records
// it. The stream is dropped and made again when the device goes offline
// and back, rotates its push token, or unenrolls and enrolls again.
//
// It blocks until ctx is done and returns ctx's error; the caller owns the
// goroutine it runs in.
func (d *Device) ListenForPushes(ctx context.Context, apnsURL string, o mockapns.DialOptions, opts ...ListenOption) error {
	return d.listen(ctx, apnsURL, o, opts, func() (subscription, bool) {
		e, token := d.st.enrollment, d.hw.PushToken
		if e == nil || d.beh.offline {
			return subscription{}, false
		}
		return subscription{
			token: token, topic: e.mdm.Topic, magic: d.hw.PushMagic,
			hold: &d.devicePush,
			current: func() bool {
				return d.st.enrollment == e && !d.beh.offline && bytes.Equal(d.hw.PushToken, token)
			},
			connect: d.Connect,
		}, true
	})
}

// ListenForUserPushes is ListenForPushes for the channel of the user
// logged in (a Shared iPad's or a Mac's): it subscribes with that user's
// push token and, for each push with the user's PushMagic, runs the user's
// command session (ConnectUser). It follows the login window as a device
// does: when the user logs out the stream is dropped, and the listener
// waits for the next user with a channel and subscribes with that user's
// token, so a push APNs kept for a logged-out user arrives when the user
// logs in again. A failed stream is made again, as ListenForPushes does.
//
// It returns ErrNotEnrolled, ErrNoUserLoggedIn or ErrUserNotManaged at
// once when, as it starts, no user has a channel (a test that listens
// before logging in has its steps in the wrong order); otherwise it blocks
// until ctx is done and returns ctx's error.
func (d *Device) ListenForUserPushes(ctx context.Context, apnsURL string, o mockapns.DialOptions, opts ...ListenOption) error {
	d.mu.RLock()
	e, name := d.st.enrollment, d.st.currentUser
	u := d.st.user(name)
	d.mu.RUnlock()
	switch {
	case e == nil:
		return ErrNotEnrolled
	case u == nil || u.Token == nil:
		return ErrNoUserLoggedIn
	case u.Unmanaged:
		return ErrUserNotManaged
	}
	return d.listen(ctx, apnsURL, o, opts, func() (subscription, bool) {
		e, name := d.st.enrollment, d.st.currentUser
		u := d.st.user(name)
		if e == nil || d.beh.offline || u == nil || u.Token == nil || u.Unmanaged {
			return subscription{}, false
		}
		return subscription{
			token: u.Token, topic: e.mdm.Topic, magic: u.PushMagic, user: name,
			hold: &d.userPush,
			current: func() bool {
				return d.st.enrollment == e && !d.beh.offline && d.st.currentUser == name
			},
			connect: func(ctx context.Context) (*ConnectResult, error) {
				d.mu.RLock()
				still := d.st.currentUser == name
				d.mu.RUnlock()
				if !still {
					return &ConnectResult{}, ErrNoUserLoggedIn
				}
				return d.ConnectUser(ctx)
			},
		}, true
	})
}

// subscription is what one of the listeners subscribes with: a channel's
// push token, topic and magic, the holder its stream is kept in, and the
// session a push starts.
type subscription struct {
	token        []byte
	topic, magic string
	// user names the user whose channel it is ("" for the device's).
	user string
	hold *pushHold
	// current tells, with d.mu held, whether the subscription is still the
	// device's (a stream made for an old one is closed at once).
	current func() bool
	connect func(context.Context) (*ConnectResult, error)
}

// listen is the loop both listeners run: next, called with d.mu read-held,
// gives the subscription to make now, or false while there is none (not
// enrolled, offline, nobody logged in), in which case the loop checks again
// every retry. A stream that fails is made again after retry; one dropped
// because the subscription changed is made again at once.
func (d *Device) listen(ctx context.Context, apnsURL string, o mockapns.DialOptions, opts []ListenOption, next func() (subscription, bool)) error {
	cfg := listenConfig{retry: time.Second}
	for _, opt := range opts {
		opt(&cfg)
	}
	wait := func() error {
		t := time.NewTimer(cfg.retry)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.mu.RLock()
		sub, ok := next()
		d.mu.RUnlock()
		if !ok {
			if err := wait(); err != nil {
				return err
			}
			continue
		}
		step := "APNs subscribe"
		if sub.user != "" {
			step += " (user " + sub.user + ")"
		}
		stream, err := mockapns.Dial(ctx, apnsURL, sub.token, sub.topic, o)
		if err != nil {
			d.record(Exchange{Time: d.now(), Step: step, Method: http.MethodGet, URL: apnsURL, Err: err.Error()})
			if err := wait(); err != nil {
				return err
			}
			continue
		}
		if !d.holdPushStream(stream, sub) {
			_ = stream.Close() // the subscription changed while dialing
			continue
		}
		if cfg.onReady != nil {
			cfg.onReady()
		}
		stop := context.AfterFunc(ctx, func() { _ = stream.Close() })
		err = d.readPushes(ctx, stream, sub, cfg.onPush)
		stop()
		d.releasePushStream(stream, sub.hold)
		_ = stream.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, errResubscribe) {
			d.record(Exchange{Time: d.now(), Step: strings.Replace(step, "subscribe", "stream", 1), URL: apnsURL, Err: err.Error()})
			if err := wait(); err != nil {
				return err
			}
		}
	}
}

// errResubscribe ends a stream whose subscription no longer matches the device.
var errResubscribe = errors.New("subscription changed")

// readPushes handles the pushes of one stream: each one for the
// subscription's topic with its magic runs its session.
func (d *Device) readPushes(ctx context.Context, stream *mockapns.Stream, sub subscription, onPush func(PushEvent)) error {
	topic, magic := sub.topic, sub.magic
	for {
		p, err := stream.Next()
		if err != nil {
			if d.pushStreamDropped(stream, sub.hold) {
				return errResubscribe
			}
			return err
		}
		arrived := time.Now()
		if err := stream.Ack(p.ID); err != nil {
			return err
		}
		ev := PushEvent{Push: p}
		ex := Exchange{Time: d.now(), Step: "push", Method: "APNS", URL: "apns-topic " + p.Topic, Response: append([]byte(nil), p.Payload...)}
		switch got := p.PushMagic(); {
		case p.Topic != topic:
			ev.Ignored = fmt.Sprintf("push for topic %s ignored: the device enrolled under %s", p.Topic, topic)
		case got != magic:
			ev.Ignored = fmt.Sprintf("push ignored: its mdm value %q is not the device's PushMagic", got)
		}
		ex.Err = ev.Ignored
		d.record(ex)
		if ev.Ignored == "" {
			ev.Connect, ev.Err = sub.connect(ctx)
			ev.Latency = time.Since(arrived)
		}
		if onPush != nil {
			onPush(ev)
		}
	}
}

// pushHold is where a listener keeps its stream, so that what changes
// the subscription can close it (dropped set) and the listener makes it again.
type pushHold struct {
	stream  *mockapns.Stream
	dropped bool
}

// dropLocked closes the held stream; d.mu must be held.
func (h *pushHold) dropLocked() {
	if h.stream != nil {
		h.dropped = true
		_ = h.stream.Close()
	}
}

// holdPushStream keeps s in sub's holder if sub is still the device's.
func (d *Device) holdPushStream(s *mockapns.Stream, sub subscription) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !sub.current() {
		return false
	}
	sub.hold.stream, sub.hold.dropped = s, false
	return true
}

func (d *Device) releasePushStream(s *mockapns.Stream, h *pushHold) {
	d.mu.Lock()
	if h.stream == s {
		h.stream = nil
	}
	d.mu.Unlock()
}

func (d *Device) pushStreamDropped(s *mockapns.Stream, h *pushHold) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return h.stream == s && h.dropped
}

// dropPushStreamLocked closes the APNs streams so the listeners subscribe
// again with what changed (token, enrollment, network): the user
// channel's too, which rides on the device's enrollment and network.
// d.mu must be held.
func (d *Device) dropPushStreamLocked() {
	d.devicePush.dropLocked()
	d.userPush.dropLocked()
}
