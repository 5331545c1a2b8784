// Package mockapns is a stand-in for the Apple Push Notification service as
// an MDM server and its devices meet it.
//
// The provider side is Apple's: POST /3/device/<hex token> over HTTP/2 with
// a client certificate, the apns-* headers, and Apple's statuses and error
// bodies ({"reason":"BadDeviceToken"}, 410 Unregistered with a timestamp,
// 429, 503…). The certificate must chain to a configured issuer (the mock
// "Apple" push CA by default) and name the topic the token registered for.
//
// The device side is mockmdm's own, since Apple's device protocol is
// private: a virtual device holds a long-lived stream (an HTTP/1.1 Upgrade
// to "mockapns-stream" at /mock/v1/stream, or a raw connection through
// DialInProcess), registering its token for a topic. Pushes reach it as JSON
// lines; it acknowledges each one. APNs keeps one notification per token
// for a device that is offline (a newer push replaces an older one) until
// its apns-expiration; the mock does the same, and keeps a delivered
// notification until the device acknowledges it, so a push is never lost to
// a connection that died mid-write. When no apns-expiration header is sent,
// Apple's public record disagrees on whether APNs stores the notification:
// the ExpiryPolicy option decides.
//
// Faults are injected per token or as a ratio of all pushes, so a test can
// see how an MDM server copes with Unregistered, TooManyRequests or 503.
package mockapns

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/push"
)

// StreamPath is the device endpoint: an HTTP/1.1 Upgrade to
// StreamProtocol with ?token=<hex>&topic=<topic>.
const (
	StreamPath     = "/mock/v1/stream"
	StreamProtocol = "mockapns-stream"
)

// DetailHeader carries, on every error answer, the rule that fired in words
// a person can act on (Apple's body only has the reason code).
const DetailHeader = "X-Mock-APNs-Detail"

// ExpiryPolicy is what the mock does with a push that has no apns-expiration
// header.
type ExpiryPolicy struct {
	// Store keeps such a push for an offline device (for StoreFor); when
	// false it is delivered only to a device connected at that moment, as
	// if apns-expiration were 0.
	Store bool
	// StoreFor is how long it is kept (default 30 days).
	StoreFor time.Duration
}

// DefaultExpiryPolicy stores a push without apns-expiration for 30 days.
var DefaultExpiryPolicy = ExpiryPolicy{Store: true, StoreFor: 30 * 24 * time.Hour}

// Notification is one push as the mock holds and delivers it.
type Notification struct {
	// ID is the apns-id (the provider's, or one the mock made).
	ID    string `json:"id"`
	Topic string `json:"topic"`
	// Payload is the request body, verbatim (for MDM {"mdm":"<PushMagic>"}).
	Payload json.RawMessage `json:"payload"`
	// Received is when the mock accepted it.
	Received time.Time `json:"received"`
	// Expires is when an undelivered push is dropped; zero with Once.
	Expires time.Time `json:"expires,omitzero"`
	// Once marks apns-expiration 0: delivered only to a connected device.
	Once bool `json:"once,omitempty"`
}

// Stats counts what the mock did since it started.
type Stats struct {
	Registered int `json:"registered"`
	Connected  int `json:"connected"`
	Pending    int `json:"pending"`
	// Accepted are pushes answered 200; Delivered were written to a stream;
	// Acknowledged were confirmed by the device.
	Accepted     int64 `json:"accepted"`
	Delivered    int64 `json:"delivered"`
	Acknowledged int64 `json:"acknowledged"`
	// Coalesced were replaced by a newer push before delivery; Expired
	// passed their apns-expiration undelivered; Dropped had apns-expiration
	// 0 and no connected device.
	Coalesced int64 `json:"coalesced"`
	Expired   int64 `json:"expired"`
	Dropped   int64 `json:"dropped"`
	// Refused counts error answers by reason.
	Refused map[string]int64 `json:"refused"`
}

// Server is a mock APNs. Its zero value is not usable: call New.
type Server struct {
	verifier *certs.Verifier
	log      *slog.Logger
	now      func() time.Time
	policy   ExpiryPolicy
	writeTO  time.Duration
	beat     time.Duration
	newID    func() string

	mu       sync.Mutex
	tokens   map[string]*token // by lowercase hex
	faults   map[string]*fault // by lowercase hex
	ratio    float64
	ratioWhy string
	rng      *rand.Rand
	closed   bool
	refused  map[string]int64
	// stopBeat stops the heartbeat goroutine, started with the first stream.
	stopBeat chan struct{}

	accepted, delivered, acked, coalesced, expired, dropped atomic.Int64

	conns sync.WaitGroup
}

type token struct {
	hex        string
	topic      string
	registered time.Time
	// unregistered is when the token stopped being valid (410 after it).
	unregistered time.Time
	pending      *Notification
	sub          *subscriber
}

type fault struct {
	reason string
	left   int // 0: until cleared
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithClock sets the clock for expirations and timestamps.
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now != nil {
			s.now = now
		}
	}
}

// WithExpiryPolicy sets what happens to a push without apns-expiration.
func WithExpiryPolicy(p ExpiryPolicy) Option {
	if p.Store && p.StoreFor <= 0 {
		p.StoreFor = DefaultExpiryPolicy.StoreFor
	}
	return func(s *Server) { s.policy = p }
}

// WithSeed seeds the generator that picks which pushes an error ratio hits,
// so a run with faults is repeatable.
func WithSeed(seed uint64) Option {
	return func(s *Server) { s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithWriteTimeout bounds a write to a device stream (default 5s); a device
// that does not read in time is disconnected and its push kept pending.
func WithWriteTimeout(d time.Duration) Option {
	if d <= 0 {
		panic("mockapns: WithWriteTimeout needs a positive duration")
	}
	return func(s *Server) { s.writeTO = d }
}

// WithHeartbeat sets how often the mock checks every device stream: it
// reads what the device wrote (acknowledgements, or the end of the
// stream) and writes an empty line, so a vanished device is noticed
// (default 30s).
func WithHeartbeat(d time.Duration) Option {
	if d <= 0 {
		panic("mockapns: WithHeartbeat needs a positive duration")
	}
	return func(s *Server) { s.beat = d }
}

// New returns a mock APNs that accepts provider certificates issued by one
// of issuers (with the clientAuth usage and a com.apple.mgmt. topic). It
// panics without an issuer.
func New(issuers []*x509.Certificate, opts ...Option) *Server {
	if len(issuers) == 0 {
		panic("mockapns: New needs at least one push certificate issuer")
	}
	s := &Server{
		verifier: certs.NewVerifier(issuers),
		now:      time.Now,
		policy:   DefaultExpiryPolicy,
		writeTO:  5 * time.Second,
		beat:     30 * time.Second,
		newID:    uuid.NewString,
		tokens:   map[string]*token{},
		faults:   map[string]*fault{},
		refused:  map[string]int64{},
		rng:      rand.New(rand.NewPCG(1, 2)),
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Handler serves the provider endpoint (POST /3/device/{token}) and the
// device stream (GET /mock/v1/stream). Mount it at the root of its own
// listener, or under a prefix with http.StripPrefix.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == StreamPath:
			s.serveStream(w, r)
		case strings.HasPrefix(r.URL.Path, push.PathPrefix) || r.URL.Path == strings.TrimSuffix(push.PathPrefix, "/"):
			s.servePush(w, r)
		default:
			s.refuse(w, push.ReasonBadPath, "", "no such path %q: providers POST to %s<hex token>, devices stream from %s", r.URL.Path, push.PathPrefix, StreamPath)
		}
	})
}

// Register makes token valid for topic, as APNs does when a device's MDM
// profile registers for the topic. A device stream registers its own token;
// Register is for tests that push to a device that is not listening.
func (s *Server) Register(tok []byte, topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registerLocked(push.TokenHex(tok), topic)
}

func (s *Server) registerLocked(hexTok, topic string) *token {
	t := s.tokens[hexTok]
	if t == nil || t.topic != topic || !t.unregistered.IsZero() {
		if t != nil && t.sub != nil {
			t.sub.close()
		}
		t = &token{hex: hexTok, topic: topic, registered: s.now()}
		s.tokens[hexTok] = t
	}
	return t
}

// Unregister marks token as no longer valid for its topic (the device
// removed its MDM profile): pushes to it answer 410 Unregistered from now.
func (s *Server) Unregister(tok []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[push.TokenHex(tok)]
	if t == nil {
		return fmt.Errorf("token %s is not registered", push.TokenHex(tok))
	}
	t.unregistered = s.now()
	t.pending = nil
	if t.sub != nil {
		t.sub.close()
	}
	return nil
}

// InjectError makes pushes to the token (hex) answer reason, for the next
// times pushes (0: until ClearErrors). reason must be one APNs documents.
func (s *Server) InjectError(tokenHex, reason string, times int) error {
	if _, ok := push.Status(reason); !ok {
		return fmt.Errorf("unknown APNs reason %q (one of %s)", reason, strings.Join(sortedReasons(), ", "))
	}
	if _, err := parseToken(tokenHex); err != nil {
		return err
	}
	if times < 0 {
		return fmt.Errorf("times %d must be 0 (until cleared) or more", times)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[strings.ToLower(tokenHex)] = &fault{reason: reason, left: times}
	return nil
}

// SetErrorRatio makes that share of all pushes (0 to 1) answer reason.
func (s *Server) SetErrorRatio(ratio float64, reason string) error {
	if ratio < 0 || ratio > 1 || ratio != ratio {
		return fmt.Errorf("ratio %v must be between 0 and 1", ratio)
	}
	if _, ok := push.Status(reason); !ok && ratio > 0 {
		return fmt.Errorf("unknown APNs reason %q (one of %s)", reason, strings.Join(sortedReasons(), ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ratio, s.ratioWhy = ratio, reason
	return nil
}

// ClearErrors removes every injected fault.
func (s *Server) ClearErrors() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*fault{}
	s.ratio, s.ratioWhy = 0, ""
}

// Pending returns the notification held for the token, if any. It first
// reads what the token's device wrote (its acknowledgements).
func (s *Server) Pending(tok []byte) (Notification, bool) {
	s.checkStream(push.TokenHex(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[push.TokenHex(tok)]
	if t == nil || t.pending == nil || s.expiredLocked(t) {
		return Notification{}, false
	}
	return *t.pending, true
}

// Connected reports whether a device stream holds the token (checking that
// the device has not closed it).
func (s *Server) Connected(tok []byte) bool {
	s.checkStream(push.TokenHex(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[push.TokenHex(tok)]
	return t != nil && t.sub != nil
}

// Stats returns the counters, after checking every stream (so Connected
// and Pending are current).
func (s *Server) Stats() Stats {
	s.sweep(false)
	s.mu.Lock()
	st := Stats{Registered: len(s.tokens), Refused: make(map[string]int64, len(s.refused))}
	for _, t := range s.tokens {
		if t.sub != nil {
			st.Connected++
		}
		if t.pending != nil {
			st.Pending++
		}
	}
	for k, v := range s.refused {
		st.Refused[k] = v
	}
	s.mu.Unlock()
	st.Accepted, st.Delivered, st.Acknowledged = s.accepted.Load(), s.delivered.Load(), s.acked.Load()
	st.Coalesced, st.Expired, st.Dropped = s.coalesced.Load(), s.expired.Load(), s.dropped.Load()
	return st
}

// Reset forgets every token, pending push and fault, closing the streams.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.sub != nil {
			t.sub.close()
		}
	}
	s.tokens = map[string]*token{}
	s.faults = map[string]*fault{}
	s.ratio, s.ratioWhy = 0, ""
}

// Close closes every device stream and waits for the mock's goroutines
// (the heartbeat, in-process pipes). Later streams are refused; pushes are
// still answered.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if s.stopBeat != nil {
			close(s.stopBeat)
		}
	}
	for _, t := range s.tokens {
		if t.sub != nil {
			t.sub.close()
		}
	}
	s.mu.Unlock()
	s.conns.Wait()
}

// ---- provider side ----

// validPushTypes are the apns-push-type values APNs knows.
var validPushTypes = map[string]bool{
	"alert": true, "background": true, "location": true, "voip": true, "complication": true,
	"fileprovider": true, "mdm": true, "liveactivity": true, "pushtotalk": true, "widgets": true, "controls": true,
}

func (s *Server) servePush(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, push.ReasonMethodNotAllowed, "", "%s is not allowed: providers POST to %s<hex token>", r.Method, push.PathPrefix)
		return
	}
	hexTok := strings.TrimPrefix(r.URL.Path, push.PathPrefix)
	if r.URL.Path == strings.TrimSuffix(push.PathPrefix, "/") || hexTok == "" {
		s.refuse(w, push.ReasonMissingDeviceToken, "", "the path names no device token: POST %s<64 hex digits>", push.PathPrefix)
		return
	}
	// The provider is who its TLS client certificate says.
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		s.refuse(w, push.ReasonMissingProviderToken, hexTok, "no client certificate: connect over TLS with the MDM push certificate and its key")
		return
	}
	leaf := r.TLS.PeerCertificates[0]
	if now := s.now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		s.refuse(w, push.ReasonBadCertificate, hexTok, "provider certificate %q is valid from %s to %s, not now: renew it in Apple's Push Certificates Portal (Renew keeps the topic)",
			leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
		return
	}
	if err := s.verifier.Verify(leaf, s.now()); err != nil {
		s.refuse(w, push.ReasonBadCertificate, hexTok, "provider certificate %q refused: %v", leaf.Subject.String(), err)
		return
	}
	certTopic, err := certs.TopicFromCert(leaf)
	if err != nil {
		s.refuse(w, push.ReasonBadCertificate, hexTok, "%v", err)
		return
	}
	h := r.Header
	for _, name := range []string{push.HeaderTopic, push.HeaderPushType, push.HeaderExpiration, push.HeaderPriority, push.HeaderID, push.HeaderCollapseID} {
		if len(h.Values(name)) > 1 {
			s.refuse(w, push.ReasonDuplicateHeaders, hexTok, "header %s is given %d times", name, len(h.Values(name)))
			return
		}
	}
	if t := h.Get(push.HeaderTopic); t != "" && t != certTopic {
		s.refuse(w, push.ReasonTopicDisallowed, hexTok, "apns-topic %q is not the topic of the client certificate (%s)", t, certTopic)
		return
	}
	if pt := h.Get(push.HeaderPushType); pt != "" && !validPushTypes[pt] {
		s.refuse(w, push.ReasonInvalidPushType, hexTok, "apns-push-type %q is not one APNs knows; MDM pushes use %q", pt, push.PushTypeMDM)
		return
	}
	var expires time.Time
	once := false
	hasExpiry := false
	if v := h.Get(push.HeaderExpiration); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.refuse(w, push.ReasonBadExpirationDate, hexTok, "apns-expiration %q must be 0 or a UNIX time in seconds", v)
			return
		}
		hasExpiry = true
		if n == 0 {
			once = true
		} else {
			expires = time.Unix(n, 0)
		}
	}
	if v := h.Get(push.HeaderPriority); v != "" && v != "1" && v != "5" && v != "10" {
		s.refuse(w, push.ReasonBadPriority, hexTok, "apns-priority %q must be 10, 5 or 1", v)
		return
	}
	id := h.Get(push.HeaderID)
	if id != "" {
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			s.refuse(w, push.ReasonBadMessageID, hexTok, "apns-id %q is not a canonical UUID (8-4-4-4-12 hex digits)", id)
			return
		}
	} else {
		id = s.newID()
	}
	if len(h.Get(push.HeaderCollapseID)) > 64 {
		s.refuse(w, push.ReasonBadCollapseID, hexTok, "apns-collapse-id is longer than 64 bytes")
		return
	}
	if _, err := parseToken(hexTok); err != nil {
		s.refuse(w, push.ReasonBadDeviceToken, hexTok, "%v", err)
		return
	}
	hexTok = strings.ToLower(hexTok)
	body, err := io.ReadAll(io.LimitReader(r.Body, push.MaxPayload+1))
	if err != nil {
		s.refuse(w, push.ReasonIdleTimeout, hexTok, "reading the body: %v", err)
		return
	}
	switch {
	case len(body) == 0:
		s.refuse(w, push.ReasonPayloadEmpty, hexTok, "the body is empty: an MDM push is {\"mdm\":\"<PushMagic>\"}")
		return
	case len(body) > push.MaxPayload:
		s.refuse(w, push.ReasonPayloadTooLarge, hexTok, "the body is over %d bytes", push.MaxPayload)
		return
	case !json.Valid(body) || body[0] != '{':
		// APNs documents no reason for this; PayloadEmpty is the closest it
		// has, and the detail header says what really happened.
		s.refuse(w, push.ReasonPayloadEmpty, hexTok, "the body is not a JSON object: an MDM push is {\"mdm\":\"<PushMagic>\"}")
		return
	}

	s.mu.Lock()
	if reason, detail, ts := s.faultLocked(hexTok); reason != "" {
		s.mu.Unlock()
		s.refuseAt(w, reason, hexTok, ts, "%s", detail)
		return
	}
	t := s.tokens[hexTok]
	switch {
	case t == nil:
		s.mu.Unlock()
		s.refuse(w, push.ReasonBadDeviceToken, hexTok, "token %s is not registered with this APNs (no device has subscribed with it): the device never enrolled here, or it enrolled against the other APNs environment", hexTok)
		return
	case !t.unregistered.IsZero():
		ts := t.unregistered.UnixMilli()
		s.mu.Unlock()
		s.refuseAt(w, push.ReasonUnregistered, hexTok, ts, "token %s is no longer registered for %s (since %s)", hexTok, t.topic, t.unregistered.UTC().Format(time.RFC3339))
		return
	case t.topic != certTopic:
		topic := t.topic
		s.mu.Unlock()
		s.refuse(w, push.ReasonDeviceTokenNotForTopic, hexTok, "token %s registered for topic %s, but the certificate's topic is %s", hexTok, topic, certTopic)
		return
	}
	now := s.now()
	n := &Notification{ID: id, Topic: certTopic, Payload: json.RawMessage(body), Received: now, Once: once}
	if !once {
		switch {
		case hasExpiry:
			n.Expires = expires
		case s.policy.Store:
			n.Expires = now.Add(s.policy.StoreFor)
		default:
			n.Once = true
		}
	}
	if !n.Once && !n.Expires.After(now) {
		// Already past its expiration: APNs accepts it and never delivers.
		s.mu.Unlock()
		s.expired.Add(1)
		s.accept(w, id)
		return
	}
	if t.pending != nil {
		s.coalesced.Add(1)
	}
	t.pending = n
	sub := t.sub
	if sub == nil && n.Once {
		t.pending = nil
		s.dropped.Add(1)
	}
	s.mu.Unlock()
	s.accepted.Add(1)
	s.accept(w, id)
	if sub != nil {
		s.deliver(t, sub, n)
	}
}

// faultLocked returns the injected reason for this push, if any.
func (s *Server) faultLocked(hexTok string) (reason, detail string, ts int64) {
	if f := s.faults[hexTok]; f != nil {
		reason = f.reason
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				delete(s.faults, hexTok)
			}
		}
		detail = "fault injected for token " + hexTok
	} else if s.ratio > 0 && s.rng.Float64() < s.ratio {
		reason, detail = s.ratioWhy, fmt.Sprintf("fault injected for %.0f%% of pushes", s.ratio*100)
	}
	if reason == push.ReasonUnregistered || reason == push.ReasonExpiredToken {
		ts = s.now().UnixMilli()
	}
	return reason, detail, ts
}

func (s *Server) accept(w http.ResponseWriter, id string) {
	w.Header().Set(push.HeaderID, id)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) refuse(w http.ResponseWriter, reason, hexTok, format string, args ...any) {
	s.refuseAt(w, reason, hexTok, 0, format, args...)
}

func (s *Server) refuseAt(w http.ResponseWriter, reason, hexTok string, ts int64, format string, args ...any) {
	status, _ := push.Status(reason)
	detail := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.refused[reason]++
	s.mu.Unlock()
	s.log.Info("mock APNs refused a push", "reason", reason, "status", status, "token", hexTok, "detail", detail)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(DetailHeader, sanitizeHeader(detail))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(push.ErrorBody{Reason: reason, Timestamp: ts})
}

// sanitizeHeader keeps a detail safe to put in a header value.
func sanitizeHeader(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > 1024 {
		b = b[:1024]
	}
	return string(b)
}

func parseToken(h string) ([]byte, error) {
	if len(h) != 2*push.TokenLen {
		return nil, fmt.Errorf("device token %q is %d characters: an APNs token is %d hex digits", truncate(h, 80), len(h), 2*push.TokenLen)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("device token %q is not hex", truncate(h, 80))
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func sortedReasons() []string {
	rs := push.Reasons()
	slices.Sort(rs)
	return rs
}

func (s *Server) expiredLocked(t *token) bool {
	if t.pending == nil || t.pending.Once || t.pending.Expires.After(s.now()) {
		return false
	}
	t.pending = nil
	s.expired.Add(1)
	return true
}
