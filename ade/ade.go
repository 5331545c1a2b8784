// Package ade is a simulated Apple Business Manager: the ADE (DEP) API of
// https://mdmenrollment.apple.com, wire-compatible with Apple's so that an
// existing DEP client works against it by changing only its base URL, plus
// what a tester needs around it: server tokens issued for any certificate,
// devices "bought" into the organisation, quirk switches, and a mock of the
// Apple activation service that tells a virtual device its ADE profile.
//
// State (devices, profiles, issued tokens, the uploaded token, switches) is
// kept as JSON documents in a store.Documents, so it survives a restart on
// SQLite. Sessions and OAuth nonces live in memory only: a restart
// invalidates sessions, as Apple's and depsim's do.
package ade

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/store"
)

// Documents is where the service keeps its state; store.Documents satisfies it.
type Documents interface {
	PutDocument(ctx context.Context, kind, id string, data []byte) error
	GetDocument(ctx context.Context, kind, id string) ([]byte, error)
	ListDocuments(ctx context.Context, kind string) ([]*store.Document, error)
	DeleteDocument(ctx context.Context, kind, id string) error
}

// Transcript records ADE API exchanges; store.Transcripts satisfies it.
type Transcript interface {
	AppendTranscript(ctx context.Context, entries ...*store.TranscriptEntry) error
}

// Document kinds the service owns.
const (
	KindDevice  = "ade-device"
	KindProfile = "ade-profile"
	KindToken   = "ade-token"  // tokens this simulated ABM issued, by access token
	KindServer  = "ade-server" // the server record (state, switches, uploaded token)
)

// Route is one HTTP route: the lead's route table mounts it.
type Route struct {
	Method, Path string
	Handler      http.Handler
}

// Service is the simulated ABM. Create it with New.
type Service struct {
	docs       Documents
	log        *slog.Logger
	now        func() time.Time
	transcript Transcript
	keyPair    *certs.TokenKeyPair
	sessionTTL time.Duration
	skew       time.Duration
	maxBody    int64

	mu       sync.Mutex // serializes state changes (read-modify-write of documents)
	sessMu   sync.Mutex
	sessions map[string]*session
	nonces   map[string]time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock, for tests of expiry.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithTranscript records every ADE API exchange (Kind "ade").
func WithTranscript(t Transcript) Option { return func(s *Service) { s.transcript = t } }

// WithTokenKeyPair sets the MDM server's token key pair (the certificate an
// admin uploads to ABM); without it New makes an ephemeral one.
func WithTokenKeyPair(kp *certs.TokenKeyPair) Option { return func(s *Service) { s.keyPair = kp } }

// WithSessionLifetime sets how long an auth session token lives (default
// 30 minutes); after half of it a call gets a rotated token in the
// X-ADM-Auth-Session response header.
func WithSessionLifetime(d time.Duration) Option { return func(s *Service) { s.sessionTTL = d } }

// WithTimestampWindow sets how far an OAuth timestamp may be from the
// server's clock (default 5 minutes), which is also how long nonces are kept.
func WithTimestampWindow(d time.Duration) Option { return func(s *Service) { s.skew = d } }

// WithMaxBody bounds request bodies (default 1 MiB: 1000 serials fit easily).
func WithMaxBody(n int64) Option { return func(s *Service) { s.maxBody = n } }

// New returns the service. docs is required (it panics without it).
func New(docs Documents, opts ...Option) (*Service, error) {
	if docs == nil {
		panic("ade: New needs a Documents store")
	}
	s := &Service{
		docs:       docs,
		now:        time.Now,
		sessionTTL: 30 * time.Minute,
		skew:       5 * time.Minute,
		maxBody:    1 << 20,
		sessions:   map[string]*session{},
		nonces:     map[string]time.Time{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.keyPair == nil {
		kp, err := certs.NewTokenKeyPair("", 0)
		if err != nil {
			return nil, err
		}
		s.keyPair = kp
	}
	return s, nil
}

// KeyPair is the MDM server's token key pair.
func (s *Service) KeyPair() *certs.TokenKeyPair { return s.keyPair }

// Quirks are switches that make the simulated ABM behave like a known
// imperfect server.
type Quirks struct {
	// CursorEcho: /devices/sync answers with the cursor it was given
	// instead of a new one (as the depsim simulator does), so a client that
	// trusts the cursor sees the same changes again.
	CursorEcho bool `json:"cursor_echo"`
	// RestartInvalidatesSessions: an unknown session (e.g. from before a
	// restart) gets 403 FORBIDDEN, as depsim answers, instead of Apple's 401.
	RestartInvalidatesSessions bool `json:"restart_invalidates_sessions"`
	// TermsNotSigned: every call but /session gets 403 T_C_NOT_SIGNED, as
	// when the organisation has not accepted Apple's new terms.
	TermsNotSigned bool `json:"terms_not_signed"`
	// ActivationLockStatus: POST /device/activationlock answers this
	// response_status (NOT_ACCESSIBLE, ORG_NOT_SUPPORTED,
	// DEVICE_NOT_SUPPORTED, DEVICE_ALREADY_LOCKED or FAILED) for every device
	// and locks nothing, so a client's handling of each failure can be
	// tested; empty answers as the device's state says.
	ActivationLockStatus string `json:"activation_lock_status,omitempty"`
	// DiscoveryOrgNotSupported: the account-driven enrollment service
	// discovery endpoints answer 400 ORG_NOT_SUPPORTED.
	DiscoveryOrgNotSupported bool `json:"discovery_org_not_supported,omitempty"`
	// ThrottleAssignSeconds, when above zero, throttles every device of an
	// Assign a Profile call from a client speaking X-Server-Protocol-Version
	// 9 or later: each answers THROTTLED and nothing is assigned; from
	// version 10 the answer also carries retry_after_seconds with this
	// value. Apple throttles per device at its own discretion; throttling
	// the whole call is mockmdm's choice, so a client's retry can be tested.
	ThrottleAssignSeconds int `json:"throttle_assign_seconds,omitempty"`
}

// serverState is the KindServer/"state" document.
type serverState struct {
	Seq          int64   `json:"seq"`            // last device change
	CursorSecret []byte  `json:"cursor_secret"`  // HMAC key of cursors
	ServerUUID   string  `json:"server_uuid"`    // /account
	Quirks       Quirks  `json:"quirks"`         //
	Uploaded     *upload `json:"uploaded_token"` // the token the MDM server uses
	// Discovery is the registered account-driven service discovery (discovery.go).
	Discovery *DiscoveryProfile `json:"discovery,omitempty"`
	// BetaTokens are the organisation's OS beta programs (beta.go).
	BetaTokens []BetaToken `json:"beta_tokens,omitempty"`
}

type upload struct {
	Token      certs.ADEToken `json:"token"`
	UploadedAt time.Time      `json:"uploaded_at"`
}

func (s *Service) loadState(ctx context.Context) (*serverState, error) {
	st, err := getJSON[serverState](ctx, s, KindServer, "state")
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = &serverState{}
	}
	if len(st.CursorSecret) == 0 || st.ServerUUID == "" {
		st.CursorSecret = make([]byte, 32)
		if _, err := rand.Read(st.CursorSecret); err != nil {
			return nil, err
		}
		st.ServerUUID = newUUID()
		if err := s.saveState(ctx, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (s *Service) saveState(ctx context.Context, st *serverState) error {
	return s.putJSON(ctx, KindServer, "state", st)
}

// updateState changes the server state under the service's lock.
func (s *Service) updateState(ctx context.Context, change func(*serverState) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.loadState(ctx)
	if err != nil {
		return err
	}
	if err := change(st); err != nil {
		return err
	}
	return s.saveState(ctx, st)
}

// getJSON reads the document kind/id into a new T. A missing document is
// (nil, nil): the callers answer it in Apple's words (NOT_FOUND,
// NOT_ACCESSIBLE, an unknown token), which differ by endpoint.
func getJSON[T any](ctx context.Context, s *Service, kind, id string) (*T, error) {
	b, err := s.docs.GetDocument(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("ade: %s document %s: %w", kind, id, err)
	}
	return v, nil
}

func (s *Service) putJSON(ctx context.Context, kind, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.docs.PutDocument(ctx, kind, id, b)
}

// SetQuirks replaces the quirk switches.
func (s *Service) SetQuirks(ctx context.Context, q Quirks) error {
	if err := checkLockQuirk(q.ActivationLockStatus); err != nil {
		return err
	}
	if q.ThrottleAssignSeconds < 0 || q.ThrottleAssignSeconds > 86400 {
		return apiErr(http.StatusBadRequest, "QUIRK_INVALID", "throttle_assign_seconds is %d: 0 (off) to 86400", q.ThrottleAssignSeconds)
	}
	return s.updateState(ctx, func(st *serverState) error {
		st.Quirks = q
		return nil
	})
}

// Quirks returns the quirk switches.
func (s *Service) Quirks(ctx context.Context) (Quirks, error) {
	st, err := s.loadState(ctx)
	if err != nil {
		return Quirks{}, err
	}
	return st.Quirks, nil
}

// Restart forgets every session and nonce, as a restart of the process
// does; tokens, devices and profiles stay.
func (s *Service) Restart() {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	s.sessions = map[string]*session{}
	s.nonces = map[string]time.Time{}
}

func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func mac(secret []byte, msg string) string {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, msg)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// readBody reads a request body bounded to the service's limit; past it the
// error is an *http.MaxBytesError, so the caller can answer 413.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	return io.ReadAll(r.Body)
}

// ServerUUID is the simulated ABM's MDM server UUID (what Apple's account
// details call server_uuid): the issuer of the MDM server's com.apple.maid
// tokens.
func (s *Service) ServerUUID(ctx context.Context) (string, error) {
	st, err := s.loadState(ctx)
	if err != nil {
		return "", err
	}
	return st.ServerUUID, nil
}
