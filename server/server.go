// Package server is the composition root of mockmdm: it builds the store,
// services, middleware and the route table (the only code that imports
// gorilla/mux), and runs the listeners. server/mdmtest is the in-process
// harness built on it.
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/ade"
	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/api/handlers"
	"github.com/mockmdm/mockmdm/apps"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/ddm"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/metrics"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/push/mockapns"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/web"
	"github.com/mockmdm/mockmdm/webhook"
)

// Paths of the device-facing endpoints, relative to the public base URL.
const (
	PathEnroll  = "/enroll"
	PathCA      = "/ca"
	PathCAPEM   = "/ca.pem"
	PathSCEP    = "/scep"
	PathCheckin = "/checkin"
	PathMDM     = "/mdm"
	// PathMetrics serves the Prometheus metrics (API key, as a bearer token).
	PathMetrics = "/metrics"
)

// Server is one mockmdm instance.
type Server struct {
	pki       *PKI
	store     store.Store
	publicURL *url.URL
	log       *slog.Logger
	now       func() time.Time
	version   string

	identityValidity time.Duration
	accountTokenTTL  time.Duration
	skew             time.Duration
	userAuth         checkin.UserAuthenticatePolicy
	oneTimeTTL       time.Duration

	svc      *checkin.Service
	checkin  *checkin.Handler
	verifier *certs.Verifier
	api      *handlers.API
	scep     http.Handler
	handler  http.Handler
	pushCfg  pushConfig
	push     *pushService
	faults   *checkin.Faults
	programs *enroll.Service
	abm      *ade.Service
	ddm      *ddm.Service // declarative device management
	issuer   profileIssuer
	dash     *web.Dashboard
	// ADE device flow (ade_flow.go).
	adeCfg *ADEFlowConfig
	ade    *enroll.ADE
	apps   *apps.Service // the app catalog (apps.go)

	directoryName string // WithDirectory (server/byod.go)
	directory     []byte
	metrics       *metrics.Metrics
	webhook       *webhook.Webhook

	webhookURLs []string
	webhookOpts []webhook.Option

	routeList []Route
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithClock sets the clock for every time decision, for deterministic tests.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithAccountTokenLifetime sets how long an account-driven enrollment's
// access token lasts before the device is asked to sign its user in again
// (default 24 hours).
func WithAccountTokenLifetime(d time.Duration) Option {
	return func(s *Server) { s.accountTokenTTL = d }
}

// WithIdentityValidity sets how long SCEP-issued identities are valid.
func WithIdentityValidity(d time.Duration) Option { return func(s *Server) { s.identityValidity = d } }

// WithSigningTimeSkew sets the tolerance for Mdm-Signature signing times (0: off).
func WithSigningTimeSkew(d time.Duration) Option { return func(s *Server) { s.skew = d } }

// WithUserAuthenticate sets how UserAuthenticate check-ins are answered.
func WithUserAuthenticate(p checkin.UserAuthenticatePolicy) Option {
	return func(s *Server) { s.userAuth = p }
}

// WithVersion sets the version reported by /v1/info.
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithWebhook sends MicroMDM-format webhook events for every successful
// check-in and command exchange to urls (http or https), with opts such as
// webhook.WithSecret and webhook.WithMaxAttempts. Without it events are
// still made and awaitable (Webhook().Wait), but go nowhere.
func WithWebhook(urls []string, opts ...webhook.Option) Option {
	return func(s *Server) {
		s.webhookURLs = append(s.webhookURLs, urls...)
		s.webhookOpts = append(s.webhookOpts, opts...)
	}
}

// New builds a server over st with the given PKI. publicURL is the base URL
// devices reach it at (https:// for real devices; http:// for harnesses).
func New(st store.Store, pki *PKI, publicURL string, opts ...Option) (*Server, error) {
	if st == nil || pki == nil {
		panic("server.New: nil store or PKI")
	}
	u, err := url.Parse(strings.TrimRight(publicURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("public URL %q must be an absolute http(s) URL such as https://192.168.1.20:8443", publicURL)
	}
	s := &Server{
		pki: pki, store: st, publicURL: u, now: time.Now, version: "dev",
		identityValidity: 365 * 24 * time.Hour, skew: time.Hour, accountTokenTTL: 24 * time.Hour,
		userAuth: checkin.UserAuthDecline, oneTimeTTL: time.Hour,
		pushCfg: pushConfig{expiration: -1}, // omit apns-expiration, as NanoMDM does
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.accountTokenTTL < time.Minute {
		return nil, fmt.Errorf("account token lifetime %s is too short: at least one minute", s.accountTokenTTL)
	}
	if s.identityValidity < time.Minute {
		return nil, fmt.Errorf("identity validity %s is too short: at least one minute", s.identityValidity)
	}

	s.metrics = metrics.New(metrics.WithLogger(s.log), metrics.WithStore(st, st))
	whOpts := append([]webhook.Option{webhook.WithLogger(s.log), webhook.WithClock(s.now),
		webhook.WithOnOutcome(s.metrics.ObserveWebhook)}, s.webhookOpts...)
	if s.webhook, err = webhook.New(s.webhookURLs, whOpts...); err != nil {
		return nil, err
	}
	// Delivery workers run from New to Close: harnesses that never call
	// Serve (mdmtest) get their events delivered too.
	if err := s.webhook.Start(context.Background()); err != nil {
		return nil, err
	}
	if s.push, err = newPushService(st, pki, s.pushCfg, s.log, s.now); err != nil {
		s.webhook.Close()
		return nil, fmt.Errorf("push: %w", err)
	}
	s.programs = enroll.New(st, enroll.WithLogger(s.log), enroll.WithClock(s.now), enroll.WithAccountTokenLifetime(s.accountTokenTTL))
	if s.abm, err = ade.New(st, ade.WithLogger(s.log), ade.WithClock(s.now), ade.WithTranscript(st),
		ade.WithTokenKeyPair(pki.ADETokenKeys)); err != nil {
		return nil, fmt.Errorf("simulated ABM: %w", err)
	}
	s.issuer = profileIssuer{s}
	s.newADE() // ADE device flow (ade_flow.go)
	s.push.observe = s.metrics.ObservePush
	hub := checkin.NewResultHub()
	s.ddm = ddm.New(st, ddm.WithLogger(s.log), ddm.WithClock(s.now))
	s.svc = checkin.New(st, checkin.WithLogger(s.log), checkin.WithClock(s.now), checkin.WithAdmitter(admitter{s.programs, identityArchive{st}, s.log}),
		checkin.WithUserAuthenticate(s.userAuth), checkin.WithResultHub(hub),
		checkin.WithOnPushChange(s.onPushChange), checkin.WithDeclarative(s.ddm), checkin.WithTokenIssuer(tokenIssuer{s}))
	s.verifier = certs.NewVerifier([]*x509.Certificate{pki.CA.Cert})
	s.checkin = checkin.NewHandler(s.svc, s.verifier, s.webhook.Transcripts(st),
		checkin.WithHandlerLogger(s.log), checkin.WithHandlerClock(s.now), checkin.WithSigningTimeSkew(s.skew),
		checkin.WithBearerVerifier(s.programs))
	s.scep, err = certs.NewSCEPHandler(pki.CA,
		certs.WithStaticChallenge(pki.SCEPChallenge),
		certs.WithChallengeStore(st),
		certs.WithIdentityValidity(s.identityValidity),
		certs.WithSCEPLogger(s.log),
		certs.WithSCEPClock(s.now))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("SCEP service: %w", err)
	}
	s.faults = checkin.NewFaults(st, s.now)
	s.api = handlers.New(st, hub,
		handlers.WithFaults(s.faults),
		handlers.WithLogger(s.log),
		handlers.WithClock(s.now),
		handlers.WithPush(s.push, s.push, s.push),
		handlers.WithProfileTrust(profileTrust(pki.CA.Cert)),
		handlers.WithOptions(s.appsOptions()...), // apps and retire (apps.go)
		handlers.WithIdentityCertificates(identityArchive{st}),
		handlers.WithInfoFunc(s.info))
	// The dashboard queues through the API's Enqueue, so a button does
	// what POST /v1/commands does (checks, durable queue, push).
	s.dash = web.New(st, pki.APIKey,
		web.WithCommander(s.api),
		web.WithInfo(s.info),
		web.WithPushStatus(func(ctx context.Context) (*api.PushCertStatus, error) {
			st, err := s.push.PushCertStatus(ctx)
			if err != nil {
				return nil, err
			}
			return &st, nil
		}),
		web.WithTokenStatus(s.adeTokenStatus),
		web.WithSignatureOf(func(e *store.TranscriptEntry) string { return e.Signature }),
		web.WithDeclarations(s.ddm.View),
		web.WithLogger(s.log),
		web.WithClock(s.now))
	if err := s.loadDirectory(context.Background()); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// info is what GET /v1/info answers and the dashboard shows, read at
// each request (the push topic changes when a certificate is uploaded).
func (s *Server) info() api.ServerInfo {
	return api.ServerInfo{
		Version:       s.version,
		EnrollmentURL: s.URL(PathEnroll),
		CAURL:         s.URL(PathCA),
		SCEPURL:       s.URL(PathSCEP),
		ServerURL:     s.URL(PathMDM),
		CheckInURL:    s.URL(PathCheckin),
		Topic:         s.push.Topic(),
		APNsURL:       s.URL(PathAPNs),
	}
}

// URL is the public URL of path.
func (s *Server) URL(path string) string { return s.publicURL.String() + path }

// Handler is the whole server as one http.Handler (device endpoints, SCEP,
// profile, API).
func (s *Server) Handler() http.Handler { return s.handler }

// PKI is the server's PKI.
func (s *Server) PKI() *PKI { return s.pki }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.store }

// Faults are the device-endpoint fault rules (/v1/faults).
func (s *Server) Faults() *checkin.Faults { return s.faults }

// MockAPNs is the in-process mock APNs (served under PathAPNs).
func (s *Server) MockAPNs() *mockapns.Server { return s.push.mock }

// Topic is the push topic enrollment profiles carry now.
func (s *Server) Topic() string { return s.push.Topic() }

// Metrics are the server's Prometheus metrics (served at /metrics).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Webhook makes and delivers the webhook events; tests await them with
// Webhook().Wait and Flush.
func (s *Server) Webhook() *webhook.Webhook { return s.webhook }

// Close releases what the server holds beyond its listeners: the mock
// APNs's device streams, the push provider's connections, and the webhook
// workers (after they deliver what is queued, up to their drain timeout).
func (s *Server) Close() {
	s.push.close()
	_ = s.webhook.Close()
}

// Service is the MDM service, for harnesses.
func (s *Server) Service() *checkin.Service { return s.svc }

// EnrollmentProfile builds the device enrollment profile; signed unless
// unsigned is true. challenge overrides the static SCEP challenge.
func (s *Server) EnrollmentProfile(unsigned bool, challenge string) ([]byte, error) {
	if challenge == "" {
		challenge = s.pki.SCEPChallenge
	}
	raw, err := profiles.BuildEnrollment(s.enrollmentOptions(challenge))
	if err != nil {
		return nil, err
	}
	if unsigned {
		return raw, nil
	}
	return profiles.Sign(raw, s.pki.SignerCert, s.pki.SignerKey, s.pki.CA.Cert)
}

// enrollmentOptions are the device enrollment profile's options, which the
// enrollment programs adapt (ticket, User Enrollment keys).
func (s *Server) enrollmentOptions(challenge string) profiles.EnrollmentOptions {
	host := s.publicURL.Hostname()
	return profiles.EnrollmentOptions{
		Identifier:          "com.github.mockmdm.enroll." + host,
		DisplayName:         "mockmdm enrollment (" + host + ")",
		Organization:        "mockmdm",
		Description:         "Enrolls this device in the mockmdm test MDM server at " + s.publicURL.String() + ". For testing only.",
		ServerURL:           s.URL(PathMDM),
		CheckInURL:          s.URL(PathCheckin),
		Topic:               s.push.Topic(),
		SignMessage:         true,
		AccessRights:        8191,
		CheckOutWhenRemoved: true,
		ServerCapabilities:  []string{"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken", "com.apple.mdm.token"},
		RootCA:              s.pki.CA.Cert,
		SCEPURL:             s.URL(PathSCEP),
		SCEPChallenge:       challenge,
		SCEPName:            "mockmdm",
		SCEPSubject:         [][][]string{{{"O", "mockmdm"}}, {{"CN", "mockmdm device identity"}}},
		SCEPKeysize:         2048,
		SCEPKeyUsage:        5,
		UUIDSeed:            s.push.Topic() + s.publicURL.String(),
		AllowInsecureURLs:   s.publicURL.Scheme == "http",
	}
}

func (s *Server) serveEnroll(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	unsigned, err := handlers.BoolParam(q, "unsigned")
	if err != nil {
		httperr.WriteText(w, err)
		return
	}
	oneTime, err := handlers.BoolParam(q, "one_time_challenge")
	if err != nil {
		httperr.WriteText(w, err)
		return
	}
	challenge := ""
	if oneTime {
		challenge, err = s.mintChallenge(r.Context())
		if err != nil {
			s.log.ErrorContext(r.Context(), "minting one-time challenge", "err", err)
			httperr.WriteText(w, err)
			return
		}
	}
	body, err := s.EnrollmentProfile(unsigned, challenge)
	if err != nil {
		s.log.ErrorContext(r.Context(), "building enrollment profile", "err", err)
		httperr.WriteText(w, err)
		return
	}
	w.Header().Set("Content-Type", profiles.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="mockmdm-enroll.mobileconfig"`)
	_, _ = w.Write(body)
}

func (s *Server) mintChallenge(ctx context.Context) (string, error) {
	c := newSecret()
	return c, s.store.PutChallenge(ctx, c, s.now().Add(s.oneTimeTTL))
}

// ErrServerClosed is returned by Serve after a graceful shutdown.
var ErrServerClosed = errors.New("server closed")

// profileTrust is the pool POST /v1/profiles/lint verifies signers against.
func profileTrust(ca *x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}
