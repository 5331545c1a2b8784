package checkin

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// Content types of the MDM protocol.
const (
	CheckinContentType = "application/x-apple-aspen-mdm-checkin"
	CommandContentType = "application/x-apple-aspen-mdm"
)

// DefaultMaxBody bounds a check-in or command request body. Results such as
// a long InstalledApplicationList are the largest legitimate bodies.
const DefaultMaxBody = 8 << 20

// CertVerifier checks that an identity certificate chains to the test CA and
// is valid now (certs.Verifier).
type CertVerifier interface {
	Verify(c *x509.Certificate, now time.Time) error
}

// Handler serves the check-in and command endpoints: it bounds and reads the
// body, decodes the message, authenticates the device identity (Mdm-Signature
// or TLS client certificate), calls the Service, and records the exchange.
type Handler struct {
	svc         *Service
	verifier    CertVerifier
	transcripts store.Transcripts
	log         *slog.Logger
	now         func() time.Time
	maxBody     int64
	skew        time.Duration
	bearer      BearerVerifier // nil: account-driven access tokens are not checked
}

// HandlerOption configures a Handler.
type HandlerOption func(*Handler)

// WithHandlerLogger sets the logger (nil: discard).
func WithHandlerLogger(l *slog.Logger) HandlerOption { return func(h *Handler) { h.log = l } }

// WithHandlerClock sets the clock used for certificate validity and skew.
func WithHandlerClock(now func() time.Time) HandlerOption { return func(h *Handler) { h.now = now } }

// WithMaxBody bounds request bodies (bytes).
func WithMaxBody(n int64) HandlerOption { return func(h *Handler) { h.maxBody = n } }

// WithSigningTimeSkew sets how far an Mdm-Signature's signing time may be
// from the server clock; 0 turns the check off.
func WithSigningTimeSkew(d time.Duration) HandlerOption { return func(h *Handler) { h.skew = d } }

// NewHandler returns the HTTP side of svc. transcripts may be nil (no recording).
func NewHandler(svc *Service, verifier CertVerifier, transcripts store.Transcripts, opts ...HandlerOption) *Handler {
	if svc == nil || verifier == nil {
		panic("checkin.NewHandler: nil service or verifier")
	}
	h := &Handler{svc: svc, verifier: verifier, transcripts: transcripts, now: time.Now, maxBody: DefaultMaxBody, skew: time.Hour}
	for _, o := range opts {
		o(h)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// Checkin serves the CheckInURL: check-in messages only.
func (h *Handler) Checkin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, kindCheckin)
	})
}

// Connect serves the ServerURL: command results, and check-ins too when
// their Content-Type says so (one URL may carry both, as on Apple's side).
func (h *Handler) Connect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isCheckinContentType(r.Header.Get("Content-Type")) {
			h.serve(w, r, kindCheckin)
			return
		}
		h.serve(w, r, kindCommand)
	})
}

const (
	kindCheckin = "checkin"
	kindCommand = "command"
)

func isCheckinContentType(ct string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), CheckinContentType)
}

// commandContentTypeOK accepts what devices and plist clients send on the
// command endpoint; Apple does not promise one value, so only types that
// cannot carry a plist are refused.
func commandContentTypeOK(ct string) bool {
	// What devices send is one of these as it is: no need to parse it (and
	// allocate the parameters' map) on every command result.
	if commandMediaType(ct) || strings.TrimSpace(ct) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && commandMediaType(mt)
}

func commandMediaType(mt string) bool {
	switch mt {
	case CommandContentType, "application/xml", "text/xml", "application/x-plist",
		"application/x-apple-plist", "application/octet-stream", "text/plain":
		return true
	}
	return false
}

// exchange is what the recorder keeps of one request while it is served.
type exchange struct {
	mu    sync.Mutex
	notes []string
}

func (x *exchange) add(note string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	x.notes = append(x.notes, note)
	x.mu.Unlock()
}

type exchangeKey struct{}

func noteFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

func newRequestID() string {
	// The runtime's per-thread ChaCha8 source: unique enough for a log
	// correlation ID, without crypto/rand's system call on every request.
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], mathrand.Uint64())
	return hex.EncodeToString(b[:])
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, kind string) {
	now := h.now()
	// Canonical spellings, so neither lookup allocates to canonicalise.
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" || len(reqID) > 64 {
		reqID = newRequestID()
	}
	w.Header()["X-Request-Id"] = []string{reqID}
	// A fault rule handed over by Faults.Wrap brings the exchange its note
	// goes in.
	ctx := r.Context()
	x := noteFrom(ctx)
	if x == nil {
		x = &exchange{}
		ctx = context.WithValue(ctx, exchangeKey{}, x)
	}
	entry := &store.TranscriptEntry{Time: now.UTC(), RequestID: reqID, Kind: kind, Method: r.Method, Path: r.URL.Path,
		Signature: r.Header.Get("Mdm-Signature")}
	if r.URL.RawQuery != "" {
		// The query is part of what the device sent: an enrollment
		// program's ticket rides in the profile's CheckInURL.
		entry.Path += "?" + r.URL.RawQuery
	}

	body, status, resp, err := h.handle(ctx, r, kind, reqID, now, entry)
	entry.Request = body
	if err != nil {
		status = httperr.StatusOf(err)
		x.add(err.Error())
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		h.log.Log(ctx, level, "mdm request refused", "kind", kind, "status", status, "err", err,
			"enrollment_id", entry.EnrollmentID, "request_id", reqID, "message_type", entry.MessageType)
		var reauth *ReauthError
		if errors.As(err, &reauth) {
			w.Header().Set("WWW-Authenticate", reauth.Challenge)
		}
		httperr.WriteText(w, err)
		entry.Response = []byte(httperr.ReasonOf(err))
	} else {
		if len(resp) > 0 {
			ct := "application/xml; charset=utf-8"
			if entry.MessageType == mdm.MessageDeclarativeManagement {
				ct = "application/json" // DDM answers are Apple's JSON documents
			}
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		_, _ = w.Write(resp)
		entry.Response = resp
		h.log.DebugContext(ctx, "mdm request", "kind", kind, "message_type", entry.MessageType,
			"enrollment_id", entry.EnrollmentID, "request_id", reqID, "command_uuid", entry.CommandUUID)
	}
	entry.Status = status
	entry.Note = strings.Join(x.notes, "; ")
	if h.transcripts != nil {
		// The transcript outlives the request: a client hanging up must not
		// cancel the record of what it sent.
		if terr := h.transcripts.AppendTranscript(context.WithoutCancel(ctx), entry); terr != nil {
			h.log.ErrorContext(ctx, "transcript write failed", "err", terr, "request_id", reqID)
		}
	}
}

// handle does the work of serve and returns the body read, the status and
// response body to send, or an error carrying the status.
func (h *Handler) handle(ctx context.Context, r *http.Request, kind, reqID string, now time.Time, entry *store.TranscriptEntry) ([]byte, int, []byte, error) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		return nil, 0, nil, httperr.New(http.StatusMethodNotAllowed, "%s is not allowed here: devices send check-ins and command results with PUT", r.Method)
	}
	ct := r.Header.Get("Content-Type")
	if kind == kindCheckin && !isCheckinContentType(ct) {
		return nil, 0, nil, httperr.New(http.StatusUnsupportedMediaType, "check-in requests must have Content-Type %s, got %q", CheckinContentType, ct)
	}
	if kind == kindCommand && !commandContentTypeOK(ct) {
		return nil, 0, nil, httperr.New(http.StatusUnsupportedMediaType, "command results are XML property lists (Content-Type %s), got %q", CommandContentType, ct)
	}
	body, err := httpx.ReadBody(nil, r, h.maxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, 0, nil, httperr.New(http.StatusRequestEntityTooLarge, "request body is larger than the %d-byte limit", h.maxBody)
		}
		return nil, 0, nil, httperr.Wrap(http.StatusBadRequest, err, "reading the request body failed")
	}

	// Decode first, so that even a refused request is filed under its enrollment.
	var (
		msg mdm.CheckinMessage
		res *mdm.CommandResults
		ids mdm.Enrollment
	)
	if kind == kindCheckin {
		msg, err = mdm.DecodeCheckin(body)
		if err != nil {
			return body, 0, nil, err
		}
		ids = msg.IDs()
		entry.MessageType = msg.Type()
	} else {
		res, err = mdm.DecodeCommandResults(body)
		if err != nil {
			return body, 0, nil, err
		}
		ids = res.Enrollment
		entry.MessageType = res.Status
		entry.CommandUUID = res.CommandUUID
	}
	id, err := ids.Resolve()
	if err != nil {
		return body, 0, nil, err
	}
	entry.EnrollmentID = id.ID

	cert, sum, err := h.identity(ctx, r, body, now)
	if err != nil {
		return body, 0, nil, err
	}
	if h.bearer != nil {
		// Only account-driven devices send Authorization (bearer.go).
		if auth := r.Header.Get("Authorization"); auth != "" {
			if err := h.checkBearer(ctx, id.DeviceID, auth); err != nil {
				return body, 0, nil, err
			}
		}
	}
	req := &Request{ID: id, Cert: cert, CertHash: hex.EncodeToString(sum[:]), RequestID: reqID}
	if r.URL.RawQuery != "" { // parsing costs on the hot path; most URLs have none
		req.Query = r.URL.Query()
	}

	if kind == kindCommand {
		next, err := h.svc.CommandAndReportResults(ctx, req, res)
		if err != nil {
			return body, 0, nil, err
		}
		if next == nil {
			return body, http.StatusOK, nil, nil
		}
		if pendingFaultFrom(ctx, FaultNotNow).fire(ctx, "withheld command "+next.CommandUUID+" ("+next.RequestType+"), which stays queued for the next connect") {
			return body, http.StatusOK, nil, nil
		}
		noteFrom(ctx).add("sent command " + next.CommandUUID + " (" + next.RequestType + ")")
		return body, http.StatusOK, next.Command, nil
	}
	resp, err := h.dispatch(ctx, req, msg)
	if err != nil {
		return body, 0, nil, err
	}
	return body, http.StatusOK, resp, nil
}

func (h *Handler) dispatch(ctx context.Context, req *Request, msg mdm.CheckinMessage) ([]byte, error) {
	switch m := msg.(type) {
	case *mdm.Authenticate:
		return nil, h.svc.Authenticate(ctx, req, m)
	case *mdm.TokenUpdate:
		return nil, h.svc.TokenUpdate(ctx, req, m)
	case *mdm.CheckOut:
		return nil, h.svc.CheckOut(ctx, req, m)
	case *mdm.SetBootstrapToken:
		return nil, h.svc.SetBootstrapToken(ctx, req, m)
	case *mdm.GetBootstrapToken:
		tok, err := h.svc.GetBootstrapToken(ctx, req, m)
		if err != nil || tok == nil {
			return nil, err
		}
		return mdm.MarshalPlist(tok)
	case *mdm.UserAuthenticate:
		return h.svc.UserAuthenticate(ctx, req, m)
	case *mdm.DeclarativeManagement:
		return h.svc.DeclarativeManagement(ctx, req, m)
	case *mdm.GetToken:
		return h.svc.GetToken(ctx, req, m)
	}
	return nil, fmt.Errorf("checkin: no handler for %T", msg)
}

// identity finds the certificate that authenticates the request — the
// signer of Mdm-Signature, else the TLS client certificate — and checks it
// chains to the test CA and is valid now.
//
// Two injected faults act here: expired-identity checks the certificate at
// the instant after it expires, so the refusal is the real one; and
// signing-time-skew replaces the tolerance of the signing-time check.
//
// It returns the certificate and the SHA-256 of its DER (what enrollments
// are bound to).
func (h *Handler) identity(ctx context.Context, r *http.Request, body []byte, now time.Time) (*x509.Certificate, [32]byte, error) {
	var (
		cert        *x509.Certificate
		info        *certs.SignedInfo
		signingTime time.Time
		none        [32]byte
	)
	if sig := r.Header.Get("Mdm-Signature"); sig != "" {
		var err error
		if info, err = certs.VerifyMdmSignature(sig, body); err != nil {
			return nil, none, err
		}
		cert, signingTime = info.Signer, info.SigningTime
	} else if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cert = r.TLS.PeerCertificates[0]
	} else {
		return nil, none, httperr.New(http.StatusBadRequest, "no device identity: the request has neither an Mdm-Signature header nor a TLS client certificate (sign each request with the identity certificate the enrollment profile's SCEP payload issued)")
	}
	at := now
	if p := pendingFaultFrom(ctx, FaultExpiredIdentity); p != nil && p.fire(ctx, "identity certificate treated as expired (NotAfter "+cert.NotAfter.UTC().Format(time.RFC3339)+")") {
		at = cert.NotAfter.Add(time.Second)
	}
	var sum [32]byte
	if sv, ok := h.verifier.(signerVerifier); ok && info != nil {
		if err := sv.VerifySigner(info, at); err != nil {
			return nil, none, err
		}
		sum = info.SignerSHA256()
	} else {
		if err := h.verifier.Verify(cert, at); err != nil {
			return nil, none, err
		}
		sum = sha256.Sum256(cert.Raw)
	}
	skew := h.skew
	if !signingTime.IsZero() {
		if p := pendingFaultFrom(ctx, FaultSigningTimeSkew); p != nil && p.fire(ctx, "signing-time tolerance "+p.rule.skew.String()+" instead of "+h.skew.String()) {
			skew = p.rule.skew
		}
	}
	// The clock check comes after the chain check: an expired identity is
	// the more useful thing to be told.
	if skew > 0 && !signingTime.IsZero() {
		off := now.Sub(signingTime)
		if off < 0 {
			off = -off
		}
		if off > skew {
			return nil, none, httperr.New(http.StatusBadRequest, "Mdm-Signature signing time %s is %s away from the server clock (tolerance %s): check the device's clock",
				signingTime.UTC().Format(time.RFC3339), off.Round(time.Second), skew)
		}
	}
	return cert, sum, nil
}

// signerVerifier is a CertVerifier that checks the signer of a verified
// Mdm-Signature without hashing its certificate again (certs.Verifier).
type signerVerifier interface {
	VerifySigner(info *certs.SignedInfo, now time.Time) error
}
