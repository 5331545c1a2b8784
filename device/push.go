package device

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
		e, offline := d.st.enrollment, d.beh.offline
		token, magic := d.hw.PushToken, d.hw.PushMagic
		d.mu.RUnlock()
		if e == nil || offline {
			if err := wait(); err != nil {
				return err
			}
			continue
		}
		topic := e.mdm.Topic
		stream, err := mockapns.Dial(ctx, apnsURL, token, topic, o)
		if err != nil {
			d.record(Exchange{Time: d.now(), Step: "APNs subscribe", Method: http.MethodGet, URL: apnsURL, Err: err.Error()})
			if err := wait(); err != nil {
				return err
			}
			continue
		}
		if !d.holdPushStream(stream, e) {
			_ = stream.Close() // the enrollment changed while dialing
			continue
		}
		if cfg.onReady != nil {
			cfg.onReady()
		}
		stop := context.AfterFunc(ctx, func() { _ = stream.Close() })
		err = d.readPushes(ctx, stream, topic, magic, cfg.onPush, d.Connect)
		stop()
		d.releasePushStream(stream)
		_ = stream.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, errResubscribe) {
			d.record(Exchange{Time: d.now(), Step: "APNs stream", URL: apnsURL, Err: err.Error()})
			if err := wait(); err != nil {
				return err
			}
		}
	}
}

// errResubscribe ends a stream whose subscription no longer matches the device.
var errResubscribe = errors.New("subscription changed")

// readPushes handles the pushes of one stream: each one for topic with
// magic runs connect (the device channel's or a user's).
func (d *Device) readPushes(ctx context.Context, stream *mockapns.Stream, topic, magic string, onPush func(PushEvent), connect func(context.Context) (*ConnectResult, error)) error {
	for {
		p, err := stream.Next()
		if err != nil {
			if d.pushStreamDropped(stream) {
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
			ev.Connect, ev.Err = connect(ctx)
			ev.Latency = time.Since(arrived)
		}
		if onPush != nil {
			onPush(ev)
		}
	}
}

// holdPushStream makes s the device's stream if e is still its enrollment.
func (d *Device) holdPushStream(s *mockapns.Stream, e *enrollment) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.enrollment != e || d.beh.offline {
		return false
	}
	d.pushStream = s
	d.pushDropped = false
	return true
}

func (d *Device) releasePushStream(s *mockapns.Stream) {
	d.mu.Lock()
	if d.pushStream == s {
		d.pushStream = nil
	}
	d.mu.Unlock()
}

func (d *Device) pushStreamDropped(s *mockapns.Stream) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.pushStream == s && d.pushDropped
}

// dropPushStreamLocked closes the APNs stream so the listener subscribes
// again with what changed (token, topic, network). d.mu must be held.
func (d *Device) dropPushStreamLocked() {
	if d.pushStream != nil {
		d.pushDropped = true
		_ = d.pushStream.Close()
	}
}

// ListenForUserPushes is ListenForPushes for the channel of the user
// logged in now (a Shared iPad's or a Mac's): it subscribes with that
// user's push token and, for each push with the user's PushMagic, runs the
// user's command session (ConnectUser) while the user stays logged in; a
// push after the user logged out ends in ErrNoUserLoggedIn, as the user's
// channel is gone. It returns ErrNoUserLoggedIn or ErrUserNotManaged at
// once when no user has a channel, ctx's error when ctx is done, or the
// stream's error (it does not subscribe again).
func (d *Device) ListenForUserPushes(ctx context.Context, apnsURL string, o mockapns.DialOptions, opts ...ListenOption) error {
	var cfg listenConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	d.mu.RLock()
	e, name := d.st.enrollment, d.st.currentUser
	var token []byte
	var magic string
	unmanaged := false
	if u := d.st.user(name); u != nil {
		token, magic, unmanaged = u.Token, u.PushMagic, u.Unmanaged
	}
	d.mu.RUnlock()
	switch {
	case e == nil:
		return ErrNotEnrolled
	case name == "" || token == nil:
		return ErrNoUserLoggedIn
	case unmanaged:
		return ErrUserNotManaged
	}
	stream, err := mockapns.Dial(ctx, apnsURL, token, e.mdm.Topic, o)
	if err != nil {
		d.record(Exchange{Time: d.now(), Step: "APNs subscribe (user " + name + ")", Method: http.MethodGet, URL: apnsURL, Err: err.Error()})
		return err
	}
	defer stream.Close()
	if cfg.onReady != nil {
		cfg.onReady()
	}
	stop := context.AfterFunc(ctx, func() { _ = stream.Close() })
	defer stop()
	err = d.readPushes(ctx, stream, e.mdm.Topic, magic, cfg.onPush, func(ctx context.Context) (*ConnectResult, error) {
		d.mu.RLock()
		still := d.st.currentUser == name
		d.mu.RUnlock()
		if !still {
			return &ConnectResult{}, ErrNoUserLoggedIn
		}
		return d.ConnectUser(ctx)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
