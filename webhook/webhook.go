// Package webhook sends MicroMDM-format webhook events for every successful
// device exchange, as MicroMDM and NanoMDM do, so that a test suite or a
// workflow written against those servers can be pointed at mockmdm.
//
// Events come from a decorator over store.Transcripts (Transcripts): each
// 2xx check-in or command exchange the MDM handler records becomes an event.
// Delivery never runs on the device's request path: events go to a bounded
// queue per receiver URL, sharded by enrollment so that one enrollment's
// events arrive in order, and workers started by Start POST them with an
// HMAC-SHA256 signature (SignatureHeader), retrying with backoff. Nothing is
// lost silently: a full queue, exhausted retries or a shutdown are counted
// (Stats), reported to the outcome observer (metrics) and kept in the
// delivery log (Deliveries). Tests await events with Wait and Flush.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// Delivery statuses, as the delivery log and the outcome observer name them.
const (
	// StatusQueued: waiting in the queue or between attempts.
	StatusQueued = "queued"
	// StatusDelivered: the receiver answered 2xx.
	StatusDelivered = "delivered"
	// StatusFailed: every attempt failed, the receiver refused it for good
	// (a 4xx other than 408 and 429, or a redirect), or the webhook shut down first.
	StatusFailed = "failed"
	// StatusDropped: the queue was full (or the webhook closed) when the event came.
	StatusDropped = "dropped"
)

// Defaults, each changed by an Option.
const (
	DefaultMaxAttempts    = 5
	DefaultAttemptTimeout = 5 * time.Second
	DefaultQueueSize      = 1024
	DefaultShards         = 4
	DefaultLogSize        = 1000
	DefaultHistory        = 1024
	DefaultDrainTimeout   = 10 * time.Second
	defaultBackoffInitial = 250 * time.Millisecond
	defaultBackoffMax     = 5 * time.Second
	maxResponseDrain      = 64 << 10
)

// Delivery is one event's delivery to one receiver URL.
type Delivery struct {
	Seq          int64  `json:"seq"`
	EventID      string `json:"event_id"`
	Topic        string `json:"topic"`
	EnrollmentID string `json:"enrollment_id,omitempty"`
	// URL is the receiver, its password redacted.
	URL      string `json:"url"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	// HTTPStatus is the receiver's last answer (0: none, e.g. a timeout).
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	QueuedAt   time.Time `json:"queued_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Stats counts events and deliveries since New.
type Stats struct {
	// Events is how many exchanges were taken as events. With no receiver
	// URLs an event is made only when Wait first asks for it (decoding every
	// result again on the request path would cost a device request most of
	// its time), so a body that does not decode shows in DecodeErrors then.
	Events int64 `json:"events"`
	// Delivered, Failed and Dropped count deliveries by outcome (one per event and URL).
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	Dropped   int64 `json:"dropped"`
	// Retries counts attempts after the first.
	Retries int64 `json:"retries"`
	// Pending is how many deliveries are queued or being attempted now.
	Pending int `json:"pending"`
	// DecodeErrors counts recorded exchanges that could not be made into an
	// event (they were recorded as successful, so this is a bug, not input).
	DecodeErrors int64 `json:"decode_errors"`
}

// Webhook makes and delivers events. Its methods are safe for concurrent use.
type Webhook struct {
	urls           []*url.URL
	secret         []byte
	maxAttempts    int
	attemptTimeout time.Duration
	backoffInitial time.Duration
	backoffMax     time.Duration
	queueSize      int
	shards         int
	logSize        int
	historySize    int
	drainTimeout   time.Duration
	client         *http.Client
	ownTransport   *http.Transport
	log            *slog.Logger
	now            func() time.Time
	onOutcome      func(string)

	queues [][]chan *job // [url][shard]
	wg     sync.WaitGroup
	cancel context.CancelFunc

	mu         sync.Mutex
	started    bool
	closed     bool
	stats      Stats
	seq        int64
	deliveries []*Delivery    // the last logSize deliveries, oldest first
	remaining  map[string]int // event ID → deliveries not yet settled
	history    []*historyItem // settled events, oldest first
	histBase   int64          // sequence number of history[0]
	changed    chan struct{}  // closed whenever something settles; nil until someone waits
}

type job struct {
	ev   Event
	body []byte
	url  *url.URL
	d    *Delivery
}

// Option configures a Webhook.
type Option func(*Webhook)

// WithSecret signs every request body with HMAC-SHA256 under secret, in
// SignatureHeader (empty: no signature header).
func WithSecret(secret string) Option { return func(w *Webhook) { w.secret = []byte(secret) } }

// WithMaxAttempts bounds the attempts per delivery (at least 1).
func WithMaxAttempts(n int) Option { return func(w *Webhook) { w.maxAttempts = n } }

// WithAttemptTimeout bounds each attempt, from connecting to reading the answer.
func WithAttemptTimeout(d time.Duration) Option { return func(w *Webhook) { w.attemptTimeout = d } }

// WithBackoff sets the wait before the second attempt and its cap; the wait
// doubles after each failed attempt.
func WithBackoff(initial, max time.Duration) Option {
	return func(w *Webhook) { w.backoffInitial, w.backoffMax = initial, max }
}

// WithQueueSize bounds the events waiting per receiver URL; past it new
// events are dropped (and counted), never blocking a device.
func WithQueueSize(n int) Option { return func(w *Webhook) { w.queueSize = n } }

// WithShards sets how many workers deliver to each URL in parallel; one
// enrollment's events always go through the same worker, in order.
func WithShards(n int) Option { return func(w *Webhook) { w.shards = n } }

// WithLogSize bounds the delivery log (Deliveries).
func WithLogSize(n int) Option { return func(w *Webhook) { w.logSize = n } }

// WithHistory bounds how many settled events Wait can still find.
func WithHistory(n int) Option { return func(w *Webhook) { w.historySize = n } }

// WithDrainTimeout bounds how long Close lets queued deliveries finish
// before it cancels them (they are then logged as failed).
func WithDrainTimeout(d time.Duration) Option { return func(w *Webhook) { w.drainTimeout = d } }

// WithHTTPClient sets the client (its Timeout should be 0: each attempt has
// its own). The default refuses redirects, as a redirected POST would be
// replayed as a GET.
func WithHTTPClient(c *http.Client) Option { return func(w *Webhook) { w.client = c } }

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(w *Webhook) { w.log = l } }

// WithClock sets the clock for event and delivery times.
func WithClock(now func() time.Time) Option { return func(w *Webhook) { w.now = now } }

// WithOnOutcome calls f with StatusDelivered, StatusFailed or StatusDropped
// each time a delivery settles (metrics count them). f must not block.
func WithOnOutcome(f func(outcome string)) Option { return func(w *Webhook) { w.onOutcome = f } }

// ParseURLs checks receiver URLs: absolute http or https URLs with a host.
// The error names the URL and what is wrong with it.
func ParseURLs(raw []string) ([]*url.URL, error) {
	var out []*url.URL
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("webhook URL %q is not a URL: %v", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("webhook URL %q must start with http:// or https://", s)
		}
		if u.Host == "" || u.Hostname() == "" {
			return nil, fmt.Errorf("webhook URL %q has no host: use e.g. http://127.0.0.1:5001/webhook", s)
		}
		if u.Fragment != "" {
			return nil, fmt.Errorf("webhook URL %q has a #fragment, which is never sent: remove it", s)
		}
		out = append(out, u)
	}
	return out, nil
}

// New returns a webhook that delivers to urls (none: events are still made
// and can be awaited, but go nowhere). Call Start to begin delivering and
// Close to stop. An invalid URL or option is an error saying which.
func New(urls []string, opts ...Option) (*Webhook, error) {
	parsed, err := ParseURLs(urls)
	if err != nil {
		return nil, err
	}
	w := &Webhook{
		urls: parsed, maxAttempts: DefaultMaxAttempts, attemptTimeout: DefaultAttemptTimeout,
		backoffInitial: defaultBackoffInitial, backoffMax: defaultBackoffMax,
		queueSize: DefaultQueueSize, shards: DefaultShards, logSize: DefaultLogSize,
		historySize: DefaultHistory, drainTimeout: DefaultDrainTimeout, now: time.Now,
		remaining: map[string]int{},
	}
	for _, o := range opts {
		o(w)
	}
	switch {
	case w.maxAttempts < 1:
		return nil, fmt.Errorf("webhook max attempts %d: at least 1", w.maxAttempts)
	case w.attemptTimeout <= 0:
		return nil, fmt.Errorf("webhook attempt timeout %s: must be positive", w.attemptTimeout)
	case w.backoffInitial < 0 || w.backoffMax < w.backoffInitial:
		return nil, fmt.Errorf("webhook backoff %s..%s: need 0 <= initial <= max", w.backoffInitial, w.backoffMax)
	case w.queueSize < 1 || w.shards < 1 || w.logSize < 1 || w.historySize < 1:
		return nil, errors.New("webhook queue size, shards, log size and history must each be at least 1")
	case w.drainTimeout < 0:
		return nil, fmt.Errorf("webhook drain timeout %s: must not be negative", w.drainTimeout)
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.client == nil {
		w.ownTransport = http.DefaultTransport.(*http.Transport).Clone()
		w.client = &http.Client{
			Transport: w.ownTransport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	perShard := (w.queueSize + w.shards - 1) / w.shards
	w.queues = make([][]chan *job, len(w.urls))
	for i := range w.urls {
		w.queues[i] = make([]chan *job, w.shards)
		for s := range w.queues[i] {
			w.queues[i][s] = make(chan *job, perShard)
		}
	}
	return w, nil
}

// URLs lists the receiver URLs, passwords redacted.
func (w *Webhook) URLs() []string {
	out := make([]string, len(w.urls))
	for i, u := range w.urls {
		out[i] = u.Redacted()
	}
	return out
}

// Start starts the delivery workers (one per URL and shard). ctx bounds
// them: once it is done, attempts in flight are cancelled and what is left
// is logged as failed; Close stops the workers. Start may be called once.
func (w *Webhook) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("webhook: Start after Close")
	}
	if w.started {
		return errors.New("webhook: already started")
	}
	w.started = true
	runCtx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	for _, shards := range w.queues {
		for _, ch := range shards {
			w.wg.Add(1)
			go w.work(runCtx, ch)
		}
	}
	return nil
}

// Close stops accepting events, lets the workers deliver what is queued for
// up to the drain timeout, then cancels the rest (logged as failed) and
// waits for every worker to return. It is safe to call more than once.
func (w *Webhook) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	started := w.started
	for _, shards := range w.queues {
		for _, ch := range shards {
			close(ch)
		}
	}
	w.mu.Unlock()

	if !started {
		for _, shards := range w.queues {
			for _, ch := range shards {
				for j := range ch {
					w.settle(j, StatusDropped, 0, "the webhook was closed before it was started")
				}
			}
		}
	} else {
		t := time.AfterFunc(w.drainTimeout, w.cancel)
		w.wg.Wait()
		t.Stop()
		w.cancel()
	}
	if w.ownTransport != nil {
		w.ownTransport.CloseIdleConnections()
	}
	return nil
}

// Transcripts returns next with every successful exchange also made into
// an event. The exchange is recorded first; the event is queued without
// waiting, whatever the store answered (the device got its answer either way).
func (w *Webhook) Transcripts(next store.Transcripts) store.Transcripts {
	if next == nil {
		panic("webhook.Transcripts: nil store")
	}
	return &recorder{Transcripts: next, w: w}
}

type recorder struct {
	store.Transcripts
	w *Webhook
}

func (r *recorder) AppendTranscript(ctx context.Context, entries ...*store.TranscriptEntry) error {
	err := r.Transcripts.AppendTranscript(ctx, entries...)
	for _, e := range entries {
		r.w.Observe(ctx, e)
	}
	return err
}

// Observe makes an event of one transcript entry, if it is one (a 2xx
// check-in or command exchange), and queues it for every URL.
func (w *Webhook) Observe(ctx context.Context, e *store.TranscriptEntry) {
	if len(w.urls) == 0 {
		// Nobody to deliver to: keep the entry for Wait and make its event
		// only if someone asks — decoding every result again on the
		// request path would cost a device request most of its time.
		if !mayBeEvent(e) {
			return
		}
		w.mu.Lock()
		w.stats.Events++
		w.addHistoryItem(&historyItem{entry: e, at: w.now()})
		w.broadcast()
		w.mu.Unlock()
		return
	}
	ev, ok, err := eventFromEntry(e, w.now())
	if err != nil {
		w.mu.Lock()
		w.stats.DecodeErrors++
		w.mu.Unlock()
		w.log.ErrorContext(ctx, "webhook: no event for a recorded exchange", "err", err,
			"enrollment_id", e.EnrollmentID, "request_id", e.RequestID)
		return
	}
	if ok {
		w.emit(ctx, ev)
	}
}

// emit queues ev for every URL (Observe keeps events itself when there are none).
func (w *Webhook) emit(ctx context.Context, ev Event) {
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen: every field marshals
		w.log.ErrorContext(ctx, "webhook: encoding event", "err", err)
		return
	}
	now := w.now().UTC()
	var dropped []*job
	w.mu.Lock()
	w.stats.Events++
	w.remaining[ev.EventID] = len(w.urls)
	shard := shardOf(ev.enrollment, w.shards)
	for i, u := range w.urls {
		w.seq++
		d := &Delivery{
			Seq: w.seq, EventID: ev.EventID, Topic: ev.Topic, EnrollmentID: ev.enrollment,
			URL: u.Redacted(), Status: StatusQueued, QueuedAt: now,
		}
		w.addDelivery(d)
		w.stats.Pending++
		j := &job{ev: ev, body: body, url: u, d: d}
		if w.closed {
			dropped = append(dropped, j)
			continue
		}
		select {
		case w.queues[i][shard] <- j:
		default:
			dropped = append(dropped, j)
		}
	}
	closed := w.closed
	w.mu.Unlock()
	for _, j := range dropped {
		reason := fmt.Sprintf("queue full (%d events waiting for this URL): raise the queue size or fix the receiver", w.queueSize)
		if closed {
			reason = "the webhook was closed"
		}
		w.settle(j, StatusDropped, 0, reason)
	}
}

func shardOf(enrollment string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(enrollment))
	return int(h.Sum32() % uint32(n))
}

// addDelivery appends d to the log, forgetting the oldest past logSize. Caller holds mu.
func (w *Webhook) addDelivery(d *Delivery) {
	if len(w.deliveries) >= w.logSize {
		n := copy(w.deliveries, w.deliveries[len(w.deliveries)-w.logSize+1:])
		clear(w.deliveries[n:])
		w.deliveries = w.deliveries[:n]
	}
	w.deliveries = append(w.deliveries, d)
}

// historyItem is a settled event, or the transcript entry it is made of
// when first asked for (Observe with no URLs).
type historyItem struct {
	once  sync.Once
	entry *store.TranscriptEntry
	at    time.Time
	ev    Event
	ok    bool
}

// event makes (once) and returns the item's event; ok is false for an
// entry that does not decode, which is counted.
func (h *historyItem) event(w *Webhook) (Event, bool) {
	h.once.Do(func() {
		if h.entry == nil {
			return
		}
		ev, ok, err := eventFromEntry(h.entry, h.at)
		if err != nil {
			w.mu.Lock()
			w.stats.DecodeErrors++
			w.mu.Unlock()
			w.log.Error("webhook: no event for a recorded exchange", "err", err, "enrollment_id", h.entry.EnrollmentID)
		}
		h.ev, h.ok, h.entry = ev, ok && err == nil, nil
	})
	return h.ev, h.ok
}

// mayBeEvent is eventFromEntry's first test, without decoding.
func mayBeEvent(e *store.TranscriptEntry) bool {
	return e != nil && e.Status >= 200 && e.Status <= 299 && len(e.Request) > 0 && (e.Kind == "checkin" || e.Kind == "command")
}

// addHistory appends a settled event, keeping at least the last
// historySize. Caller holds mu.
func (w *Webhook) addHistory(ev Event) {
	h := &historyItem{ev: ev, ok: true}
	h.once.Do(func() {})
	w.addHistoryItem(h)
}

// The slice may hold up to twice historySize before the oldest are
// dropped in one copy: forgetting one at a time moved the whole history on
// every device request.
func (w *Webhook) addHistoryItem(h *historyItem) {
	if len(w.history) >= 2*w.historySize {
		drop := len(w.history) - w.historySize + 1
		n := copy(w.history, w.history[drop:])
		clear(w.history[n:])
		w.history = w.history[:n]
		w.histBase += int64(drop)
	}
	w.history = append(w.history, h)
}

// broadcast wakes every waiter. Caller holds mu.
//
// The channel is made only when someone waits (waitChan): most requests
// settle an event nobody is waiting for.
func (w *Webhook) broadcast() {
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// waitChan is the channel the next broadcast closes. Caller holds mu.
func (w *Webhook) waitChan() chan struct{} {
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.changed
}

// settle records a delivery's outcome, settles its event once every URL is
// done, and tells the observer — first, so that whoever Flush or Wait
// wakes sees the metrics already counted.
func (w *Webhook) settle(j *job, status string, httpStatus int, reason string) {
	if w.onOutcome != nil {
		w.onOutcome(status)
	}
	w.mu.Lock()
	d := j.d
	d.Status, d.Error, d.FinishedAt = status, reason, w.now().UTC()
	if httpStatus != 0 {
		d.HTTPStatus = httpStatus
	}
	attrs := []any{"event_id", d.EventID, "topic", d.Topic, "enrollment_id", d.EnrollmentID,
		"url", d.URL, "attempts", d.Attempts, "http_status", d.HTTPStatus}
	switch status {
	case StatusDelivered:
		w.stats.Delivered++
	case StatusFailed:
		w.stats.Failed++
	case StatusDropped:
		w.stats.Dropped++
	}
	w.stats.Pending--
	if w.remaining[d.EventID]--; w.remaining[d.EventID] <= 0 {
		delete(w.remaining, d.EventID)
		w.addHistory(j.ev)
	}
	w.broadcast()
	w.mu.Unlock()

	if status == StatusDelivered {
		w.log.Debug("webhook delivered", attrs...)
	} else {
		w.log.Warn("webhook not delivered", append(attrs, "status", status, "reason", reason)...)
	}
}

func (w *Webhook) work(ctx context.Context, ch <-chan *job) {
	defer w.wg.Done()
	for j := range ch {
		w.deliver(ctx, j)
	}
}

// deliver makes up to maxAttempts attempts, waiting between them.
func (w *Webhook) deliver(ctx context.Context, j *job) {
	wait := w.backoffInitial
	var lastStatus int
	var lastErr string
	for attempt := 1; attempt <= w.maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			w.settle(j, StatusFailed, lastStatus, stoppedReason(lastErr))
			return
		}
		w.mu.Lock()
		j.d.Attempts = attempt
		if attempt > 1 {
			w.stats.Retries++
		}
		w.mu.Unlock()
		status, err := w.post(ctx, j)
		if err == nil && status >= 200 && status <= 299 {
			w.settle(j, StatusDelivered, status, "")
			return
		}
		lastStatus = status
		if err != nil {
			lastErr = err.Error()
		} else {
			lastErr = fmt.Sprintf("the receiver answered %d %s", status, http.StatusText(status))
		}
		w.mu.Lock()
		j.d.HTTPStatus, j.d.Error = status, lastErr
		w.mu.Unlock()
		if err == nil && !retryable(status) {
			w.settle(j, StatusFailed, status, lastErr+" (not retried: only 408, 429 and 5xx are)")
			return
		}
		if attempt == w.maxAttempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			w.settle(j, StatusFailed, status, stoppedReason(lastErr))
			return
		case <-t.C:
		}
		wait = min(wait*2, w.backoffMax)
	}
	w.settle(j, StatusFailed, lastStatus, fmt.Sprintf("gave up after %d attempts: %s", w.maxAttempts, lastErr))
}

func stoppedReason(last string) string {
	if last == "" {
		return "the webhook stopped before this event could be delivered"
	}
	return "the webhook stopped before a retry succeeded; last: " + last
}

func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// post makes one attempt and returns the receiver's status.
func (w *Webhook) post(ctx context.Context, j *job) (int, error) {
	actx, cancel := context.WithTimeout(ctx, w.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, j.url.String(), bytes.NewReader(j.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "mockmdm-webhook")
	if len(w.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.secret, j.body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return 0, fmt.Errorf("no answer within %s", w.attemptTimeout)
		}
		return 0, fmt.Errorf("posting to the receiver: %w", scrub(err, j.url))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// scrub keeps a URL's password out of an error message.
func scrub(err error, u *url.URL) error {
	if _, has := u.User.Password(); !has {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), u.String(), u.Redacted()))
}

// Deliveries returns a copy of the delivery log, oldest first.
func (w *Webhook) Deliveries() []Delivery {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Delivery, len(w.deliveries))
	for i, d := range w.deliveries {
		out[i] = *d
	}
	return out
}

// Stats returns the counters.
func (w *Webhook) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Wait returns the first settled event, oldest first, that match accepts —
// settled means delivered, failed or dropped on every URL (or made, with no
// URLs). Events settled before the call count, so a test never misses one
// that was quick; the last DefaultHistory (WithHistory) are kept. Wait
// returns ctx's error, wrapped, if none comes. match runs without locks held.
func (w *Webhook) Wait(ctx context.Context, match func(Event) bool) (Event, error) {
	var next int64
	for {
		w.mu.Lock()
		start := max(next, w.histBase)
		fresh := append([]*historyItem(nil), w.history[start-w.histBase:]...)
		next = w.histBase + int64(len(w.history))
		ch := w.waitChan()
		w.mu.Unlock()
		for _, h := range fresh {
			ev, ok := h.event(w)
			if ok && (match == nil || match(ev)) {
				return ev, nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("waiting for a webhook event: %w", ctx.Err())
		}
	}
}

// Flush waits until every delivery queued so far has settled, or ctx is done.
func (w *Webhook) Flush(ctx context.Context) error {
	for {
		w.mu.Lock()
		pending := w.stats.Pending
		ch := w.waitChan()
		w.mu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("flushing webhooks (%d deliveries pending): %w", pending, ctx.Err())
		}
	}
}
