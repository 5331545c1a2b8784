// Package web is mockmdm's dashboard: server-rendered pages (html/template,
// assets embedded with go:embed, no build step) that show what devices did
// and let a person queue the common commands with a button.
//
// It reads through the same store interfaces as the REST API and queues
// through a Commander (api/handlers.API), so a command from a button is
// checked, stored and pushed exactly as POST /v1/commands would do it.
// The dashboard does its own authentication: a person types the API key
// once into a form and gets a session cookie derived from it by HMAC, so
// the key itself never sits in the browser.
//
// Handlers read path values with r.PathValue, so any router that fills them
// can mount Routes.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/store"
)

// Paths of the dashboard. Every page lives under PathPrefix; PathEnroll is
// the page a person opens to enroll a real device.
const (
	PathPrefix = "/dashboard"
	PathLogin  = PathPrefix + "/login"
	PathLogout = PathPrefix + "/logout"
	PathEnroll = PathPrefix + "/enroll"
	PathStatus = PathPrefix + "/status"
)

// Store is what the dashboard reads: enrollments, their queues and the
// transcript (store.Store provides it).
type Store interface {
	store.Enrollments
	store.Queue
	store.Transcripts
}

// Commander queues a command the way POST /v1/commands does
// (api/handlers.API.Enqueue). Errors a client causes carry their HTTP
// status (internal/httperr), which the dashboard shows with its reason.
type Commander interface {
	Enqueue(ctx context.Context, req *api.EnqueueRequest) (*api.EnqueueResponse, error)
}

// ADETokenStatus is the already-computed state of the ADE (Apple Business
// Manager) server token, as the status page shows it.
type ADETokenStatus struct {
	// ServerName is the MDM server's name in Apple Business Manager.
	ServerName string
	OrgName    string
	// ConsumerKey identifies the token (never its secrets).
	ConsumerKey string
	NotAfter    time.Time
	// DaysLeft is whole days until NotAfter (negative once expired).
	DaysLeft int
	// State is a word such as valid, expiring_soon or expired.
	State    string
	Warnings []string
}

// Dashboard serves the dashboard pages.
type Dashboard struct {
	declarations func(ctx context.Context, enrollmentID string) (*api.EnrollmentDeclarations, error)
	store        Store
	sessionKey   []byte
	commander    Commander
	pushStatus   func(ctx context.Context) (*api.PushCertStatus, error)
	tokenStatus  func(ctx context.Context) (*ADETokenStatus, error)
	info         func() api.ServerInfo
	signatureOf  func(e *store.TranscriptEntry) string
	log          *slog.Logger
	now          func() time.Time
	sessionTTL   time.Duration
	refresh      time.Duration
	maxEntries   int
	pages        *pages
	static       fs.FS
}

// Option configures a Dashboard.
type Option func(*Dashboard)

// WithCommander sets what the command buttons queue through; without one
// the buttons are not shown and a command POST answers 503.
func WithCommander(c Commander) Option { return func(d *Dashboard) { d.commander = c } }

// WithPushStatus sets where the status page reads the push certificate's state.
func WithPushStatus(f func(ctx context.Context) (*api.PushCertStatus, error)) Option {
	return func(d *Dashboard) { d.pushStatus = f }
}

// WithTokenStatus sets where the status page reads the ADE server token's
// state. Without it, or when it returns nil, the page says "not configured".
func WithTokenStatus(f func(ctx context.Context) (*ADETokenStatus, error)) Option {
	return func(d *Dashboard) { d.tokenStatus = f }
}

// WithInfo sets where the dashboard reads the server's URLs and push topic
// (read at each request: the topic changes when a certificate is uploaded).
func WithInfo(f func() api.ServerInfo) Option { return func(d *Dashboard) { d.info = f } }

// WithSignatureOf tells the transcript view where an entry keeps the
// request's Mdm-Signature header, so it can explain the signature (signer,
// issuer, serial, signing time, whether it verifies). Without it the view
// shows only the server's verdict (the HTTP status and note).
func WithSignatureOf(f func(e *store.TranscriptEntry) string) Option {
	return func(d *Dashboard) { d.signatureOf = f }
}

// WithDeclarations shows each device's declarative management on its page:
// its declarations and the status its device last reported (nil: the
// section is left out).
func WithDeclarations(f func(ctx context.Context, enrollmentID string) (*api.EnrollmentDeclarations, error)) Option {
	return func(d *Dashboard) { d.declarations = f }
}

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(d *Dashboard) { d.log = l } }

// WithClock sets the clock, for deterministic tests.
func WithClock(now func() time.Time) Option {
	return func(d *Dashboard) {
		if now != nil {
			d.now = now
		}
	}
}

// WithSessionTTL sets how long a login lasts (default 12 hours). It panics
// unless ttl is positive.
func WithSessionTTL(ttl time.Duration) Option {
	if ttl <= 0 {
		panic("web: WithSessionTTL needs a positive duration")
	}
	return func(d *Dashboard) { d.sessionTTL = ttl }
}

// WithRefresh sets how often the enrollment list and a device's queue
// refresh themselves in the browser (default 2s). It panics unless every
// is at least 100ms.
func WithRefresh(every time.Duration) Option {
	if every < 100*time.Millisecond {
		panic("web: WithRefresh needs at least 100ms")
	}
	return func(d *Dashboard) { d.refresh = every }
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the dashboard over st, guarded by the API key key. It panics
// if st is nil or key is empty: a dashboard without a key would be open to
// anyone who can reach it.
func New(st Store, key string, opts ...Option) *Dashboard {
	if st == nil {
		panic("web: New needs a store")
	}
	if key == "" {
		panic("web: New needs a non-empty API key")
	}
	// The session key is derived from the API key, so changing the API key
	// ends every session, and the cookie never carries the key itself.
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("mockmdm dashboard session v1"))
	d := &Dashboard{
		store:      st,
		sessionKey: mac.Sum(nil),
		now:        time.Now,
		sessionTTL: 12 * time.Hour,
		refresh:    2 * time.Second,
		maxEntries: 100,
		info:       func() api.ServerInfo { return api.ServerInfo{} },
	}
	for _, o := range opts {
		o(d)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.pages = mustParsePages()
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	d.static = sub
	return d
}

// Route is one dashboard route for the server's route table.
type Route struct {
	Method, Path string
	Handler      http.Handler
}

// Routes lists the dashboard's routes. All are public from the router's
// point of view: the dashboard checks its own session cookie, and sends a
// person without one to the login form. The enrollment page and its QR
// code need no login: they show only the public enrollment URLs, and the
// person opening them may be on the iPad being enrolled.
func (d *Dashboard) Routes() []Route {
	return []Route{
		{http.MethodGet, PathPrefix, d.auth(http.HandlerFunc(d.serveList))},
		{http.MethodGet, PathPrefix + "/enrollments", d.auth(http.HandlerFunc(d.serveListRows))},
		{http.MethodGet, PathPrefix + "/enrollments/{id}", d.auth(http.HandlerFunc(d.serveDevice))},
		{http.MethodGet, PathPrefix + "/enrollments/{id}/live", d.auth(http.HandlerFunc(d.serveDeviceLive))},
		{http.MethodPost, PathPrefix + "/enrollments/{id}/commands", d.auth(d.csrf(http.HandlerFunc(d.serveCommand)))},
		{http.MethodGet, PathLogin, http.HandlerFunc(d.serveLoginForm)},
		{http.MethodPost, PathLogin, http.HandlerFunc(d.serveLogin)},
		{http.MethodPost, PathLogout, d.auth(d.csrf(http.HandlerFunc(d.serveLogout)))},
		{http.MethodGet, PathStatus, d.auth(http.HandlerFunc(d.serveStatus))},
		{http.MethodGet, PathEnroll, http.HandlerFunc(d.serveEnroll)},
		{http.MethodGet, PathEnroll + "/qr.png", http.HandlerFunc(d.serveQR)},
		{http.MethodGet, PathPrefix + "/static/{file}", http.HandlerFunc(d.serveStatic)},
	}
}

// Handler mounts Routes on an http.ServeMux, for tests and for a server
// without a route table of its own.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range d.Routes() {
		mux.Handle(rt.Method+" "+rt.Path, rt.Handler)
	}
	return mux
}
