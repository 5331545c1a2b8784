// Package handlers serves the mockmdm REST API (/v1): enrollments, the
// command queue, command results with long-poll, the transcript, SCEP
// challenges and reset. Wire types are in package api; the contract is
// docs/openapi.yaml.
//
// Handlers read path values with r.PathValue, so any router that fills them
// (the server's route table, or http.ServeMux in tests) can mount them.
package handlers

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/store"
)

// Store is what the API needs from a backend.
type Store interface {
	store.Enrollments
	store.Queue
	store.Transcripts
	store.Challenges
	Reset(ctx context.Context) error
}

// DefaultMaxBody bounds request bodies: an InstallProfile payload, base64
// in JSON, is the largest thing a client sends.
const DefaultMaxBody = 10 << 20

// API serves the REST API over a Store.
type API struct {
	store     Store
	hub       *checkin.ResultHub
	log       *slog.Logger
	now       func() time.Time
	maxBody   int64
	newUUID   func() string
	info      api.ServerInfo
	onEnqueue func(ctx context.Context, cmd *store.Command, ids []string)
	pusher    Pusher
	pushCerts PushCerts
	apns      APNsAdmin
	faults    FaultRules
	infoFunc  func() api.ServerInfo
	// pollEvery is how often a long-poll re-reads the store even without a
	// hub signal, since another process sharing the store may have saved
	// the answer.
	pollEvery time.Duration
	// profileTrust verifies signed profiles sent to LintProfile.
	profileTrust *x509.CertPool

	// Retire and apps (retire.go, apps.go).
	retireProfileID func(e *store.Enrollment) string
	docs            store.Documents
	apps            AppsService
	// identities are the certificates encrypt_profile encrypts to (encrypt.go).
	identities IdentityCertificates
}

// Option configures an API.
type Option func(*API)

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(a *API) { a.log = l } }

// WithClock sets the clock, for deterministic tests.
func WithClock(now func() time.Time) Option {
	return func(a *API) {
		if now != nil {
			a.now = now
		}
	}
}

// WithMaxBody bounds request bodies (default DefaultMaxBody). It panics
// unless n is positive.
func WithMaxBody(n int64) Option {
	if n <= 0 {
		panic("handlers: WithMaxBody needs a positive size")
	}
	return func(a *API) { a.maxBody = n }
}

// WithNewUUID sets how command UUIDs are made when the client gives none
// (default: random UUID v4 in upper case, as Apple's tools write them).
func WithNewUUID(f func() string) Option {
	return func(a *API) {
		if f != nil {
			a.newUUID = f
		}
	}
}

// WithInfo sets what GET /v1/info answers.
func WithInfo(info api.ServerInfo) Option { return func(a *API) { a.info = info } }

// WithInfoFunc sets what GET /v1/info answers, read at each request (the
// push topic changes when a push certificate is uploaded).
func WithInfoFunc(f func() api.ServerInfo) Option { return func(a *API) { a.infoFunc = f } }

// WithOnEnqueue sets a hook called after a command is durably queued, with
// the IDs it was queued for (used to push a wake-up). It runs in the
// request, before the answer is sent, so it must not block for long.
func WithOnEnqueue(f func(ctx context.Context, cmd *store.Command, ids []string)) Option {
	return func(a *API) { a.onEnqueue = f }
}

// New returns the API over st. hub announces command results so GetCommand
// can wait for them; a nil hub means long-polls re-read the store on a
// timer only. New panics if st is nil.
func New(st Store, hub *checkin.ResultHub, opts ...Option) *API {
	if st == nil {
		panic("handlers: New needs a store")
	}
	a := &API{
		store:     st,
		hub:       hub,
		now:       time.Now,
		maxBody:   DefaultMaxBody,
		newUUID:   func() string { return strings.ToUpper(uuid.NewString()) },
		pollEvery: 500 * time.Millisecond,
	}
	for _, o := range opts {
		o(a)
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}

// RequireKey lets a request through to next only if it carries key, as
// "Authorization: Bearer <key>" or "X-API-Key: <key>". Keys are compared
// in constant time (over their SHA-256, so the length leaks nothing
// either) and never logged. It panics if key is empty: an API without a
// key would be open to anyone who can reach it.
func (a *API) RequireKey(key string, next http.Handler) http.Handler {
	if key == "" {
		panic("handlers: RequireKey needs a non-empty key")
	}
	want := sha256.Sum256([]byte(key))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := presentedKey(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mockmdm"`)
			a.writeError(w, r, httperr.New(http.StatusUnauthorized,
				`API key missing: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>" (the key is printed when the server starts)`))
			return
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mockmdm", error="invalid_token"`)
			a.writeError(w, r, httperr.New(http.StatusUnauthorized, "API key not accepted"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// presentedKey returns the key a request carries, if any.
func presentedKey(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
		if strings.EqualFold(scheme, "Bearer") {
			if token = strings.TrimSpace(token); token != "" {
				return token, true
			}
		}
	}
	if k := strings.TrimSpace(r.Header.Get("X-API-Key")); k != "" {
		return k, true
	}
	return "", false
}

// Info serves GET /v1/info.
func (a *API) Info() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := a.info
		if a.infoFunc != nil {
			info = a.infoFunc()
		}
		a.writeJSON(w, r, http.StatusOK, info)
	})
}

// Reset serves POST /v1/reset: it deletes enrollments, queues, results,
// the transcript and challenges. The PKI lives outside the store and stays.
func (a *API) Reset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.store.Reset(r.Context()); err != nil {
			a.writeError(w, r, err)
			return
		}
		if a.apns != nil {
			a.apns.ResetAPNs(r.Context())
		}
		if a.faults != nil {
			a.faults.Clear()
		}
		a.log.InfoContext(r.Context(), "state reset through the API")
		a.writeJSON(w, r, http.StatusOK, api.ResetResponse{Reset: true})
	})
}

// writeJSON answers with v as JSON.
func (a *API) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers with err's status and a JSON body. A 5xx body says
// only that something went wrong inside; the detail goes to the log.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := httperr.StatusOf(err)
	if status >= 500 {
		a.log.ErrorContext(r.Context(), "API request failed",
			"method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else {
		a.log.DebugContext(r.Context(), "API request refused",
			"method", r.Method, "path", r.URL.Path, "status", status, "reason", err.Error())
	}
	b, _ := json.Marshal(api.ErrorBody{Error: httperr.ReasonOf(err), Status: status})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeJSONBody decodes a bounded JSON request body into v, refusing
// unknown fields, trailing data and a content type other than JSON.
// An empty body is allowed only when optional is true (v is left as is).
func (a *API) decodeJSONBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	if optional && r.ContentLength == 0 {
		return nil // no body at all (curl -X POST, or -d '' with a form type)
	}
	if err := httpx.RequireJSON(r); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, a.maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return a.jsonError(err, optional)
	}
	// Exactly one JSON value: "{...}{...}" or "{...} junk" is a client bug.
	if _, err := dec.Token(); err == nil {
		return httperr.New(http.StatusBadRequest, "request body has data after the JSON object; send exactly one object")
	} else if !errors.Is(err, errEOF) {
		return a.jsonError(err, optional)
	}
	return nil
}
