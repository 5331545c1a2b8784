package push

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
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mockmdm/mockmdm/certs"
)

// Defaults of a Provider. They suit both Apple and the mock APNs: Apple
// advises keeping a few connections open and multiplexing many pushes on
// each, which HTTP/2 does with a small pool of workers.
const (
	DefaultConcurrency    = 16
	DefaultRequestTimeout = 10 * time.Second

	// maxResponseBody bounds what Push reads of an APNs answer. APNs sends
	// an empty body on success and a JSON object of a few dozen bytes on
	// failure; anything longer is not APNs, and reading it whole would let
	// a misconfigured base URL make the server buffer megabytes per push.
	maxResponseBody = 4 << 10

	// priorityImmediate is apns-priority 10: deliver now. An MDM wake-up is
	// worth nothing late, and Apple documents 10 for MDM.
	priorityImmediate = "10"
)

// Kinds of failure that are not an APNs answer. Each Result.Err of such a
// failure is an *Error wrapping one of these (or the transport's own error),
// so callers branch with errors.Is instead of parsing messages.
var (
	// ErrNotPushable: the enrollment has no usable push token or PushMagic,
	// normally because the device has not sent TokenUpdate yet. No request
	// was made; the caller can do nothing but wait for the device.
	ErrNotPushable = errors.New("enrollment cannot be pushed: no usable push token or PushMagic")

	// ErrNotHTTP2: the server at the base URL did not agree to HTTP/2.
	// APNs speaks only HTTP/2, so such a server is not APNs (nor a working
	// mock of it); the provider refuses to fall back to HTTP/1.1.
	ErrNotHTTP2 = errors.New("the APNs endpoint does not speak HTTP/2")

	// ErrCertificateExpired: the push certificate has expired. APNs would
	// refuse the TLS handshake with a bare alert; saying so first is clearer.
	ErrCertificateExpired = errors.New("push certificate expired")
)

// Target is one enrollment to wake.
type Target struct {
	EnrollmentID string // for results and logs only
	Token        []byte // the 32-byte Token from TokenUpdate
	PushMagic    string // the PushMagic from TokenUpdate
}

// Result is what APNs answered for one target.
type Result struct {
	EnrollmentID string
	Token        string // hex
	Status       int    // HTTP status from APNs; 0 if no answer
	APNsID       string // apns-id response header
	Reason       string // ErrorBody.Reason when Status != 200
	Timestamp    int64  // ErrorBody.Timestamp (Unregistered), ms since the epoch
	Err          error  // nil when Status == 200; a *push.Error otherwise
}

// Error is why one push failed: APNs refused it (Status and Reason are
// APNs's answer), or it never got an answer (Status 0, Err the cause). Its
// message says what to do about it.
type Error struct {
	// Reason is the reason APNs gave, e.g. "BadDeviceToken"; "" when APNs
	// did not answer or answered without an APNs error document.
	Reason string
	// Status is the HTTP status APNs answered with; 0 when it did not.
	Status int
	// Timestamp is ErrorBody.Timestamp (ms since the epoch): with
	// Unregistered, the last time the token was valid for the topic.
	Timestamp int64
	// Err is the cause when there was no APNs answer: ErrNotPushable,
	// ErrNotHTTP2, ErrCertificateExpired, a context error or the
	// transport's error. It is nil for an answer from APNs.
	Err error

	message string
}

func (e *Error) Error() string {
	if e.message != "" {
		return e.message
	}
	switch {
	case e.Status != 0:
		return fmt.Sprintf("push: APNs answered %d %s", e.Status, e.Reason)
	case e.Err != nil:
		return "push: " + e.Err.Error()
	default:
		return "push: failed"
	}
}

func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status an API handler answers with when a push it was
// asked for fails: 409 Conflict when the enrollment cannot be pushed yet
// (the caller's request conflicts with the enrollment's state), otherwise
// 502 Bad Gateway — the push gateway failed, not the API caller, even when
// APNs's own answer was a 4xx.
func (e *Error) HTTPStatus() int {
	if errors.Is(e.Err, ErrNotPushable) {
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// reasonAdvice says, for each reason APNs gives, what went wrong and what to
// do, in the words of an MDM operator rather than of the APNs docs. The
// placeholders {base}, {topic} and {since} are filled in per push.
var reasonAdvice = map[string]string{
	ReasonBadDeviceToken: "the token is not valid for this environment — a development token sent to production or vice versa, " +
		"or the device re-enrolled; push with the Token of the latest TokenUpdate, to the APNs the profile chose (UseDevelopmentAPNS)",
	ReasonDeviceTokenNotForTopic: "the device enrolled under another push topic: it must re-enroll with a profile whose Topic is {topic}",
	ReasonUnregistered:           "the device is no longer registered for this topic (removed its MDM profile) since {since}; stop pushing to it, or enroll it again",
	ReasonExpiredToken:           "the device token expired (last valid {since}); wait for the device's next TokenUpdate",
	ReasonTopicDisallowed: "APNs does not allow pushes to topic {topic} with this certificate — it is not an MDM push certificate " +
		"or it was revoked; renew it in the Apple Push Certificates Portal (Renew keeps the topic)",
	ReasonBadCertificate:     "APNs refused the client certificate; configure the MDM push certificate and key whose topic is {topic}",
	ReasonBadCertificateEnv:  "the certificate belongs to the other APNs environment (production or development); point the base URL at the environment it was issued for",
	ReasonForbidden:          "APNs refused the request: the push certificate may be revoked or expired; renew it in the Apple Push Certificates Portal (Renew keeps the topic)",
	ReasonBadTopic:           "the apns-topic header is not the certificate's topic; send {topic} or no apns-topic at all",
	ReasonMissingTopic:       "APNs needs an apns-topic header for this certificate; send {topic} (WithTopicHeader(true))",
	ReasonInvalidPushType:    `an MDM push needs apns-push-type "mdm" (WithPushType(true))`,
	ReasonBadExpirationDate:  "apns-expiration is not a valid unix time; check WithExpiration and the server clock",
	ReasonBadPriority:        "apns-priority must be 10 or 5",
	ReasonPayloadEmpty:       `the body must be {"mdm":"<PushMagic>"}; the enrollment's PushMagic is probably empty — wait for its next TokenUpdate`,
	ReasonPayloadTooLarge:    "the body is over 4 KB: the enrollment's PushMagic is far too long to be one a device sent",
	ReasonMissingDeviceToken: "the request path has no device token; check that the base URL {base} is the bare APNs address",
	ReasonBadPath:            "APNs does not know the request path; the base URL {base} must be the bare APNs address (requests go to /3/device/<token>)",
	ReasonMethodNotAllowed:   "APNs accepts only POST on /3/device/<token>; check that the base URL {base} is an APNs endpoint",
	ReasonBadCollapseID:      "the apns-collapse-id header is too long; this is a bug in the provider — report it",
	ReasonBadMessageID:       "the apns-id header is not a UUID; this is a bug in the provider — report it",
	ReasonDuplicateHeaders:   "a header was sent twice; this is a bug in the provider — report it",
	ReasonIdleTimeout:        "APNs closed an idle connection; retry — the next push opens a new one",
	ReasonExpiredProviderToken: "APNs expected token (JWT) authentication, which MDM pushes do not use; " +
		"check that the base URL {base} is APNs and the certificate is an MDM push certificate",
	ReasonInvalidProviderToken:     "APNs expected token (JWT) authentication, which MDM pushes do not use; check that the certificate is an MDM push certificate",
	ReasonMissingProviderToken:     "APNs saw no client certificate: the TLS connection must present the MDM push certificate for topic {topic}",
	ReasonTooManyProviderTokenUpds: "too many authentication changes; slow down and reuse connections",
	ReasonTooManyRequests:          "too many pushes to this device in a short time; slow down — wait before pushing it again",
	ReasonInternalServerError:      "APNs failed internally; retry later",
	ReasonServiceUnavailable:       "APNs is unavailable; retry later",
	ReasonShutdown:                 "APNs is shutting down this server; retry later — the next push opens a new connection",
}

// unknownReasonAdvice is the advice for a reason Apple added after this
// table was written.
const unknownReasonAdvice = "a reason mockmdm has no advice for yet; see Apple's \"Handling notification responses from APNs\""

// ProviderOption configures a Provider. Options panic on misuse: they are
// written by programmers, not read from users.
type ProviderOption func(*providerConfig)

type providerConfig struct {
	baseURL        string
	rootCAs        *x509.CertPool
	transport      http.RoundTripper
	expiration     time.Duration
	pushType       bool
	topicHeader    bool
	concurrency    int
	requestTimeout time.Duration
	logger         *slog.Logger
	now            func() time.Time
}

// WithBaseURL sets where pushes go (default ProductionURL). It must be an
// absolute https URL — or http, only together with WithTransport, for an
// in-process mock. A path is kept as a prefix: with https://host:8443/apns
// requests go to https://host:8443/apns/3/device/<token>. NewProvider
// returns an error for a bad URL, because URLs come from configuration.
func WithBaseURL(u string) ProviderOption {
	return func(c *providerConfig) { c.baseURL = u }
}

// WithRootCAs sets the roots that authenticate the APNs server: the CA of a
// mock APNs. nil means the system roots (the default), which trust Apple.
// It cannot be combined with WithTransport, whose TLS setup is its own.
func WithRootCAs(pool *x509.CertPool) ProviderOption {
	return func(c *providerConfig) { c.rootCAs = pool }
}

// WithTransport sends every push through rt instead of a transport the
// provider builds: for an in-process mock APNs, or a transport the caller
// configured itself (it must then present the push certificate and speak
// HTTP/2 — the provider checks neither). The certificate then only gives
// the topic, and Close leaves rt alone.
func WithTransport(rt http.RoundTripper) ProviderOption {
	if rt == nil {
		panic("push: WithTransport(nil)")
	}
	return func(c *providerConfig) { c.transport = rt }
}

// WithExpiration sets apns-expiration. With d > 0 the header is now+d in
// unix seconds: APNs stores the push and retries until then if the device
// is offline. With d == 0 the header is "0": deliver once, do not store.
// With d < 0 (the default) no header is sent, as NanoMDM does; APNs then
// stores the push for a while at its discretion.
func WithExpiration(d time.Duration) ProviderOption {
	return func(c *providerConfig) { c.expiration = d }
}

// WithPushType sets whether to send apns-push-type: mdm (default true).
// Apple asks for it; turning it off reproduces older providers.
func WithPushType(send bool) ProviderOption {
	return func(c *providerConfig) { c.pushType = send }
}

// WithTopicHeader sets whether to send apns-topic with the certificate's
// topic (default true). APNs infers the topic of a single-topic MDM
// certificate, so NanoMDM omits it; sending it makes a mismatched
// certificate fail loudly with BadTopic rather than quietly.
func WithTopicHeader(send bool) ProviderOption {
	return func(c *providerConfig) { c.topicHeader = send }
}

// WithConcurrency bounds how many pushes one Push call has in flight
// (default 16). HTTP/2 multiplexes them on one connection, so a small
// number already saturates it.
func WithConcurrency(n int) ProviderOption {
	if n <= 0 {
		panic(fmt.Sprintf("push: WithConcurrency(%d): need at least 1", n))
	}
	return func(c *providerConfig) { c.concurrency = n }
}

// WithRequestTimeout bounds each push, from request to read answer
// (default 10s), so one silent server cannot hold a Push call forever.
func WithRequestTimeout(d time.Duration) ProviderOption {
	if d <= 0 {
		panic(fmt.Sprintf("push: WithRequestTimeout(%s): need a positive duration", d))
	}
	return func(c *providerConfig) { c.requestTimeout = d }
}

// WithLogger sets the logger; nil discards. Every line carries
// enrollment_id.
func WithLogger(l *slog.Logger) ProviderOption {
	return func(c *providerConfig) { c.logger = l }
}

// WithClock sets the clock for apns-expiration and the certificate's expiry
// check, so a server on a fake clock pushes consistently with it.
func WithClock(now func() time.Time) ProviderOption {
	if now == nil {
		panic("push: WithClock(nil)")
	}
	return func(c *providerConfig) { c.now = now }
}

// Provider sends MDM wake-ups to APNs: one HTTP/2 POST per device, with TLS
// client authentication by the MDM push certificate. It is safe for
// concurrent use; keep one per certificate so its connection is reused, as
// Apple asks.
type Provider struct {
	topic    string
	baseURL  string
	endpoint string // baseURL + PathPrefix
	notAfter time.Time
	client   *http.Client
	ownedTr  *http.Transport // nil with WithTransport
	cfg      providerConfig
}

// NewProvider returns a Provider for the MDM push certificate cert (with its
// private key). It reads the topic from the certificate — refusing one that
// is not an MDM push certificate or has expired — and, unless WithTransport
// is given, builds an HTTP/2-only transport that presents cert to APNs.
func NewProvider(cert tls.Certificate, opts ...ProviderOption) (*Provider, error) {
	cfg := providerConfig{
		baseURL:        ProductionURL,
		expiration:     -1,
		pushType:       true,
		topicHeader:    true,
		concurrency:    DefaultConcurrency,
		requestTimeout: DefaultRequestTimeout,
		now:            time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.transport != nil && cfg.rootCAs != nil {
		panic("push: WithRootCAs has no effect together with WithTransport: configure the trust in the transport")
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}

	leaf, err := leafOf(cert)
	if err != nil {
		return nil, err
	}
	topic, err := certs.TopicFromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("push: the certificate cannot send MDM pushes: %w", err)
	}
	if now := cfg.now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("push: %w: the push certificate for topic %s expired on %s; renew it in the Apple Push Certificates Portal (Renew keeps the topic)",
			ErrCertificateExpired, topic, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	base, err := checkBaseURL(cfg.baseURL, cfg.transport != nil)
	if err != nil {
		return nil, err
	}

	p := &Provider{
		topic:    topic,
		baseURL:  base,
		endpoint: base + PathPrefix,
		notAfter: leaf.NotAfter,
		cfg:      cfg,
	}
	rt := cfg.transport
	if rt == nil {
		if cert.PrivateKey == nil {
			return nil, fmt.Errorf("push: the push certificate for topic %s has no private key; load the key that was made with its CSR", topic)
		}
		p.ownedTr = newHTTP2Transport(cert, cfg.rootCAs)
		rt = p.ownedTr
	}
	// No Client.Timeout: each push has its own context deadline, which
	// also covers reading the answer.
	p.client = &http.Client{
		Transport: rt,
		// APNs never redirects; following a redirect would resend the
		// push somewhere the operator did not configure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p, nil
}

// leafOf is the certificate's leaf, parsed if tls.X509KeyPair left Leaf nil
// (as it did before Go 1.23, and as hand-built tls.Certificates do).
func leafOf(cert tls.Certificate) (*x509.Certificate, error) {
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	if len(cert.Certificate) == 0 {
		return nil, errors.New("push: no push certificate given (tls.Certificate has no certificate)")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("push: parse the push certificate: %w", err)
	}
	return leaf, nil
}

// checkBaseURL returns u without a trailing slash, or says why it cannot be
// an APNs base URL.
func checkBaseURL(u string, customTransport bool) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("push: base URL %q: %w", u, err)
	}
	switch {
	case parsed.Scheme == "https":
	case parsed.Scheme == "http" && customTransport:
	case parsed.Scheme == "http":
		return "", fmt.Errorf("push: base URL %q is http, but APNs needs TLS (HTTP/2 over https); use https, or WithTransport for an in-process mock", u)
	default:
		return "", fmt.Errorf("push: base URL %q is not an absolute https URL (e.g. %s)", u, ProductionURL)
	}
	if parsed.Host == "" || parsed.Hostname() == "" {
		return "", fmt.Errorf("push: base URL %q has no host (e.g. %s)", u, ProductionURL)
	}
	if parsed.User != nil || parsed.RawQuery != "" || parsed.Fragment != "" || parsed.Opaque != "" {
		return "", fmt.Errorf("push: base URL %q may hold only scheme, host, port and path (no user, query or fragment)", u)
	}
	return strings.TrimRight(u, "/"), nil
}

// newHTTP2Transport builds the transport to APNs: TLS 1.2+ with the push
// certificate as client certificate, and HTTP/2 only. Protocols without
// HTTP/1 stops the transport offering "http/1.1" in ALPN, and
// requireHTTP2 closes the remaining gap — a server that negotiates no ALPN
// at all, with which the transport would otherwise speak HTTP/1.1.
func newHTTP2Transport(cert tls.Certificate, rootCAs *x509.CertPool) *http.Transport {
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion:       tls.VersionTLS12,
			Certificates:     []tls.Certificate{cert},
			RootCAs:          rootCAs,
			VerifyConnection: requireHTTP2,
		},
		TLSHandshakeTimeout:    10 * time.Second,
		ForceAttemptHTTP2:      true,
		Protocols:              &protocols,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        5 * time.Minute,
		MaxResponseHeaderBytes: 64 << 10,
		HTTP2: &http.HTTP2Config{
			// A connection APNs (or a NAT on the way) silently dropped
			// would otherwise hang pushes until TCP gives up: ping after
			// a minute of silence and drop it if no pong comes back.
			SendPingTimeout: time.Minute,
			PingTimeout:     15 * time.Second,
		},
	}
}

// requireHTTP2 fails a TLS handshake that did not settle on HTTP/2.
func requireHTTP2(cs tls.ConnectionState) error {
	if cs.NegotiatedProtocol != "h2" {
		return fmt.Errorf("%w: the server negotiated ALPN %q, not \"h2\"", ErrNotHTTP2, cs.NegotiatedProtocol)
	}
	return nil
}

// Topic is the push topic of the provider's certificate: what every
// enrollment profile's Topic must be.
func (p *Provider) Topic() string { return p.topic }

// BaseURL is where pushes go, without a trailing slash.
func (p *Provider) BaseURL() string { return p.baseURL }

// Close closes the idle connections of the transport the provider built
// (not one given with WithTransport). The provider stays usable: a later
// push opens a new connection.
func (p *Provider) Close() {
	if p.ownedTr != nil {
		p.ownedTr.CloseIdleConnections()
	}
}

// Push wakes every target and returns one Result per target, in the same
// order. It sends at most the configured concurrency at once and returns
// after every push has finished (or failed); no goroutine outlives it. When
// ctx ends, pushes in flight fail with ctx's error and the rest are not
// sent.
func (p *Provider) Push(ctx context.Context, targets ...Target) []Result {
	results := make([]Result, len(targets))
	workers := min(p.cfg.concurrency, len(targets))
	if workers <= 1 {
		// One target, or concurrency 1: no goroutine at all.
		for i := range targets {
			results[i] = p.pushOne(ctx, targets[i])
		}
		return results
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) {
					return
				}
				results[i] = p.pushOne(ctx, targets[i])
			}
		})
	}
	wg.Wait()
	return results
}

// pushOne sends one wake-up and logs its outcome.
func (p *Provider) pushOne(ctx context.Context, t Target) Result {
	res := p.send(ctx, t)
	log := p.cfg.logger
	if res.Err == nil {
		log.LogAttrs(ctx, slog.LevelDebug, "push sent",
			slog.String("enrollment_id", t.EnrollmentID),
			slog.String("token", res.Token),
			slog.String("apns_id", res.APNsID))
		return res
	}
	log.LogAttrs(ctx, slog.LevelWarn, "push failed",
		slog.String("enrollment_id", t.EnrollmentID),
		slog.String("token", res.Token),
		slog.Int("status", res.Status),
		slog.String("reason", res.Reason),
		slog.String("apns_id", res.APNsID),
		slog.String("error", res.Err.Error()))
	return res
}

func (p *Provider) send(ctx context.Context, t Target) Result {
	res := Result{EnrollmentID: t.EnrollmentID, Token: TokenHex(t.Token)}
	if err := p.checkTarget(t); err != nil {
		res.Err = err
		return res
	}
	if err := ctx.Err(); err != nil {
		res.Err = &Error{Err: err, message: fmt.Sprintf("push to %s not sent: %v", who(t), err)}
		return res
	}
	now := p.cfg.now()
	if now.After(p.notAfter) {
		res.Err = &Error{Err: ErrCertificateExpired, message: fmt.Sprintf(
			"push to %s not sent: the push certificate for topic %s expired on %s; renew it in the Apple Push Certificates Portal (Renew keeps the topic)",
			who(t), p.topic, p.notAfter.UTC().Format(time.RFC3339))}
		return res
	}

	reqCtx, cancel := context.WithTimeout(ctx, p.cfg.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, p.endpoint+res.Token, bytes.NewReader(EncodeMDMPayload(t.PushMagic)))
	if err != nil {
		// The base URL was checked at construction and the token is hex,
		// so this is a bug, but report it rather than panic.
		res.Err = &Error{Err: err, message: fmt.Sprintf("push to %s: build request: %v", who(t), err)}
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderPriority, priorityImmediate)
	if p.cfg.pushType {
		req.Header.Set(HeaderPushType, PushTypeMDM)
	}
	if p.cfg.topicHeader {
		req.Header.Set(HeaderTopic, p.topic)
	}
	if d := p.cfg.expiration; d >= 0 {
		exp := int64(0)
		if d > 0 {
			exp = now.Add(d).Unix()
		}
		req.Header.Set(HeaderExpiration, strconv.FormatInt(exp, 10))
	}

	resp, err := p.client.Do(req)
	if err != nil {
		res.Err = p.transportError(ctx, t, err)
		return res
	}
	defer resp.Body.Close()
	if p.ownedTr != nil && resp.ProtoMajor != 2 {
		// requireHTTP2 makes this unreachable through a direct
		// connection; it guards the path through a proxy or a future
		// transport change.
		res.Err = &Error{Err: ErrNotHTTP2, message: fmt.Sprintf(
			"push to %s: APNs (%s) answered over %s; APNs requires HTTP/2 — is the base URL an APNs endpoint?", who(t), p.baseURL, resp.Proto)}
		return res
	}
	res.Status = resp.StatusCode
	res.APNsID = resp.Header.Get(HeaderID)
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode == http.StatusOK {
		return res
	}
	if readErr != nil {
		res.Err = &Error{Status: resp.StatusCode, Err: readErr, message: fmt.Sprintf(
			"push to %s: APNs (%s) answered %d but the body could not be read: %v", who(t), p.baseURL, resp.StatusCode, p.describe(ctx, readErr))}
		return res
	}
	res.Err = p.answerError(t, resp.StatusCode, body, &res)
	return res
}

// checkTarget refuses a target that cannot be pushed, before any request:
// APNs would only answer BadDeviceToken or PayloadEmpty, which would send
// the operator looking in the wrong place.
func (p *Provider) checkTarget(t Target) *Error {
	var msg string
	switch {
	case len(t.Token) == 0:
		msg = fmt.Sprintf("%s has no push token yet (no TokenUpdate): it can be pushed once the device has checked in with TokenUpdate", who(t))
	case len(t.Token) != TokenLen:
		msg = fmt.Sprintf("%s has a push token of %d bytes, not %d: the stored Token is damaged; the device's next TokenUpdate replaces it", who(t), len(t.Token), TokenLen)
	case t.PushMagic == "":
		msg = fmt.Sprintf("%s has no PushMagic yet (no TokenUpdate): it can be pushed once the device has checked in with TokenUpdate", who(t))
	default:
		return nil
	}
	return &Error{Err: ErrNotPushable, message: msg}
}

// who names a target in messages.
func who(t Target) string {
	if t.EnrollmentID == "" {
		return "the enrollment"
	}
	return "enrollment " + t.EnrollmentID
}

// answerError turns an APNs refusal into an *Error with advice, filling
// res.Reason and res.Timestamp from the error document.
func (p *Provider) answerError(t Target, status int, body []byte, res *Result) *Error {
	var doc ErrorBody
	if err := json.Unmarshal(body, &doc); err != nil || doc.Reason == "" {
		return &Error{Status: status, message: fmt.Sprintf(
			"push to %s: APNs (%s) answered %d %s without an APNs error document (body %s); is the base URL an APNs endpoint?",
			who(t), p.baseURL, status, http.StatusText(status), snippet(body))}
	}
	res.Reason, res.Timestamp = doc.Reason, doc.Timestamp
	advice, known := reasonAdvice[doc.Reason]
	if !known {
		advice = unknownReasonAdvice
	}
	since := "an unknown time"
	if doc.Timestamp > 0 {
		since = time.UnixMilli(doc.Timestamp).UTC().Format(time.RFC3339)
	}
	advice = strings.NewReplacer("{base}", p.baseURL, "{topic}", p.topic, "{since}", since).Replace(advice)
	return &Error{
		Reason:    doc.Reason,
		Status:    status,
		Timestamp: doc.Timestamp,
		message:   fmt.Sprintf("push to %s: APNs (%s) says %s (%d): %s", who(t), p.baseURL, doc.Reason, status, advice),
	}
}

// snippet quotes the start of a body that is not an APNs error document, so
// the message shows what answered without carrying a whole HTML page.
func snippet(body []byte) string {
	const limit = 120
	if len(body) == 0 {
		return "empty"
	}
	if len(body) > limit {
		return strconv.Quote(string(body[:limit])) + "…"
	}
	return strconv.Quote(string(body))
}

// transportError explains a push that got no answer.
func (p *Provider) transportError(ctx context.Context, t Target, err error) *Error {
	var certErr *tls.CertificateVerificationError
	var advice string
	switch {
	case ctx.Err() != nil:
		return &Error{Err: err, message: fmt.Sprintf("push to %s cancelled before APNs (%s) answered: %v", who(t), p.baseURL, context.Cause(ctx))}
	case errors.Is(err, context.DeadlineExceeded):
		advice = fmt.Sprintf("no answer within %s (WithRequestTimeout); APNs may be unreachable or overloaded — retry later", p.cfg.requestTimeout)
	case errors.Is(err, ErrNotHTTP2):
		advice = "APNs requires HTTP/2; this server is not APNs or a working mock of it (an httptest server needs EnableHTTP2)"
	case isALPNRefusal(err):
		err = fmt.Errorf("%w: %w", ErrNotHTTP2, err)
		advice = "the server refused HTTP/2 in the TLS handshake (ALPN h2); APNs requires HTTP/2, so this server is not APNs or a working mock of it (an httptest server needs EnableHTTP2)"
	case errors.As(err, &certErr):
		advice = "the APNs server's certificate is not trusted; for a mock APNs pass its CA with WithRootCAs"
	default:
		advice = "check the network and the base URL"
	}
	return &Error{Err: err, message: fmt.Sprintf("push to %s: APNs (%s) did not answer: %v; %s", who(t), p.baseURL, err, advice)}
}

// describe is err, or the context's cause when the context ended the read.
func (p *Provider) describe(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// isALPNRefusal reports the TLS alert a Go (and any RFC 7301) server sends
// when it shares no application protocol with the client: here, a server
// that speaks only HTTP/1.1. crypto/tls exposes a received alert only by
// its text, so the text is what is matched.
func isALPNRefusal(err error) bool {
	return strings.Contains(err.Error(), "no application protocol")
}
