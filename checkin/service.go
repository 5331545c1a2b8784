// Package checkin is the MDM service: it handles check-in messages and the
// command ("connect") endpoint, binds device identity certificates to their
// enrollments, and keeps the per-enrollment command queue moving.
//
// The HTTP side (handler.go) authenticates the request and decodes it; the
// Service methods here hold the protocol rules, one method per message.
package checkin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// Store is what the service needs from a backend.
type Store interface {
	store.Enrollments
	store.Queue
}

// bindingReader is a Store that reads an enrollment's identity binding
// without copying the whole record (both of mockmdm's stores do): the
// command endpoint checks it on every request.
type bindingReader interface {
	EnrollmentBinding(ctx context.Context, id string) (store.Binding, error)
}

// UserAuthenticatePolicy says how UserAuthenticate check-ins are answered.
type UserAuthenticatePolicy string

const (
	// UserAuthDecline answers 410 Gone: do not manage this user (Apple's
	// way to decline; the default, as most servers do).
	UserAuthDecline UserAuthenticatePolicy = "decline"
	// UserAuthAllow answers round one with a zero-length DigestChallenge and
	// round two with 200.
	UserAuthAllow UserAuthenticatePolicy = "allow"
)

// Request is one authenticated device request.
type Request struct {
	// ID is the enrollment the message speaks for.
	ID mdm.ResolvedID
	// Cert is the identity certificate that authenticated the request.
	Cert *x509.Certificate
	// CertHash is certs.Hash(Cert).
	CertHash string
	// RequestID ties log lines and transcript entries together.
	RequestID string
	// Query is the request URL's query: enrollment programs put their
	// ticket in the profile's CheckInURL, which the device keeps calling.
	Query url.Values
}

// Admitter decides, at Authenticate, how an enrollment came about: it reads
// the ticket an enrollment program put in the profile's URLs (r.Query),
// fills e.Management, or refuses the enrollment with an error a person can
// act on. It runs before anything is stored, so a refusal leaves nothing
// half-created.
type Admitter interface {
	Admit(ctx context.Context, r *Request, e *store.Enrollment) error
}

// Service implements the MDM protocol rules over a Store.
type Service struct {
	store    Store
	log      *slog.Logger
	now      func() time.Time
	userAuth UserAuthenticatePolicy
	results  *ResultHub
	onChange func(ctx context.Context, e *store.Enrollment)
	admitter Admitter
	ddm      Declarative
	tokens   TokenIssuer
}

// TokenIssuer mints the token a GetToken check-in asks for: the token's
// bytes (a string token as UTF-8), or an error carrying its status.
type TokenIssuer interface {
	IssueToken(ctx context.Context, enrollmentID, serviceType string, params map[string]any) ([]byte, error)
}

// Declarative serves the DeclarativeManagement check-in endpoints (tokens,
// declaration-items, declaration/<kind>/<identifier>, status) for an
// enrollment: the JSON body to answer, or nil.
type Declarative interface {
	Serve(ctx context.Context, enrollmentID, endpoint string, data []byte) ([]byte, error)
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock, for deterministic tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithAdmitter sets who decides, at Authenticate, the enrollment's
// Management from the ticket its profile carried (nil: nobody, every
// enrollment is a plain profile enrollment).
func WithAdmitter(a Admitter) Option { return func(s *Service) { s.admitter = a } }

// WithDeclarative sets who answers DeclarativeManagement check-ins (nil:
// they are refused as not supported).
func WithDeclarative(d Declarative) Option { return func(s *Service) { s.ddm = d } }

// WithTokenIssuer sets who answers GetToken check-ins (nil: they are
// refused as not supported).
func WithTokenIssuer(t TokenIssuer) Option { return func(s *Service) { s.tokens = t } }

// WithUserAuthenticate sets how UserAuthenticate is answered.
func WithUserAuthenticate(p UserAuthenticatePolicy) Option {
	return func(s *Service) { s.userAuth = p }
}

// WithResultHub makes the service announce final command results on h, so
// API callers can wait for an answer instead of polling.
func WithResultHub(h *ResultHub) Option { return func(s *Service) { s.results = h } }

// WithOnPushChange calls f after a TokenUpdate or CheckOut is stored, with
// the enrollment as it now stands: the moment a device's APNs registration
// (token, topic) starts, changes or ends. f runs in the request.
func WithOnPushChange(f func(ctx context.Context, e *store.Enrollment)) Option {
	return func(s *Service) { s.onChange = f }
}

// New returns a Service over st.
func New(st Store, opts ...Option) *Service {
	if st == nil {
		panic("checkin.New: nil store")
	}
	s := &Service{store: st, now: time.Now, userAuth: UserAuthDecline}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.results == nil {
		s.results = NewResultHub()
	}
	switch s.userAuth {
	case UserAuthDecline, UserAuthAllow:
	default:
		panic(fmt.Sprintf("checkin.New: unknown UserAuthenticate policy %q", s.userAuth))
	}
	return s
}

// Results is the hub on which final command results are announced.
func (s *Service) Results() *ResultHub { return s.results }

// refuse is the error for a request the identity rules refuse: 403, and the
// reason goes to the log and the transcript. (Never 401: that unenrolls.)
func refuse(format string, args ...any) error {
	return httperr.New(http.StatusForbidden, format, args...)
}

// Authenticate binds the identity certificate to the device channel and
// (re)starts the enrollment: Apple's Authenticate means "this device is
// enrolling", so the queue is cleared and the enrollment is not enrolled
// until its TokenUpdate.
func (s *Service) Authenticate(ctx context.Context, r *Request, m *mdm.Authenticate) error {
	if !r.ID.Type.IsDeviceChannel() {
		return httperr.New(http.StatusBadRequest, "Authenticate is only sent on the device channel, not on %s", r.ID.Type)
	}
	if other, err := s.store.EnrollmentByCertHash(ctx, r.CertHash); err == nil && other.ID != r.ID.ID {
		return refuse("identity certificate %s… is already bound to enrollment %s; each enrollment needs its own identity (cert re-use not permitted)", r.CertHash[:12], other.ID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := s.now().UTC()
	e := &store.Enrollment{
		ID:              r.ID.ID,
		Type:            string(r.ID.Type),
		DeviceID:        r.ID.DeviceID,
		UDID:            m.UDID,
		EnrollmentID:    m.EnrollmentID,
		SerialNumber:    m.SerialNumber,
		Model:           m.Model,
		ModelName:       m.ModelName,
		ProductName:     m.ProductName,
		DeviceName:      m.DeviceName,
		OSVersion:       m.OSVersion,
		BuildVersion:    m.BuildVersion,
		IMEI:            m.IMEI,
		MEID:            m.MEID,
		Topic:           m.Topic,
		CertHash:        r.CertHash,
		AuthenticatedAt: now,
		LastSeen:        now,
	}
	if r.Cert != nil {
		e.CertNotAfter = r.Cert.NotAfter.UTC()
	}
	if s.admitter != nil {
		if err := s.admitter.Admit(ctx, r, e); err != nil {
			return err
		}
	}
	if err := s.store.PutEnrollment(ctx, e); err != nil {
		return err
	}
	return s.store.ClearQueue(ctx, r.ID.ID)
}

// authorize checks that the request's certificate is the one bound to its
// device channel at Authenticate, and returns the device channel record.
func (s *Service) authorize(ctx context.Context, r *Request) (*store.Enrollment, error) {
	dev, err := s.store.GetEnrollment(ctx, r.ID.DeviceID)
	if err != nil {
		return nil, bindingRefusal(r, err, store.Binding{})
	}
	if err := bindingRefusal(r, nil, store.Binding{ID: dev.ID, CertHash: dev.CertHash}); err != nil {
		return nil, err
	}
	return dev, nil
}

// bindingRefusal is why r may not speak for its enrollment: the lookup's
// error (an unknown enrollment refused with what to do), or a binding to
// another certificate; nil when it may.
func bindingRefusal(r *Request, err error, b store.Binding) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse("unknown enrollment %s: this server never received its Authenticate; install the enrollment profile again", r.ID.DeviceID)
	case err != nil:
		return err
	case b.CertHash != r.CertHash:
		return refuse("enrollment %s is bound to identity certificate %s…, but this request was signed by %s…", b.ID, short(b.CertHash), short(r.CertHash))
	}
	return nil
}

// binding is authorize for the command endpoint: the same checks on the
// enrollment's binding alone, read without a copy of the whole record
// where the store can.
func (s *Service) binding(ctx context.Context, r *Request) (store.Binding, error) {
	br, ok := s.store.(bindingReader)
	if !ok {
		dev, err := s.authorize(ctx, r)
		if err != nil {
			return store.Binding{}, err
		}
		return store.Binding{ID: dev.ID, CertHash: dev.CertHash, CheckedOut: dev.CheckedOut}, nil
	}
	b, err := br.EnrollmentBinding(ctx, r.ID.DeviceID)
	if err := bindingRefusal(r, err, b); err != nil {
		return store.Binding{}, err
	}
	return b, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// TokenUpdate records the push token; the first one completes the enrollment.
// On a user channel it creates the channel's record.
func (s *Service) TokenUpdate(ctx context.Context, r *Request, m *mdm.TokenUpdate) error {
	dev, err := s.authorize(ctx, r)
	if err != nil {
		return err
	}
	if dev.CheckedOut {
		return refuse("enrollment %s checked out; it must Authenticate again before a TokenUpdate", dev.ID)
	}
	e := dev
	if r.ID.ID != dev.ID {
		e, err = s.store.GetEnrollment(ctx, r.ID.ID)
		if errors.Is(err, store.ErrNotFound) {
			e = &store.Enrollment{
				ID: r.ID.ID, Type: string(r.ID.Type), DeviceID: dev.ID,
				UDID: m.UDID, EnrollmentID: m.EnrollmentID, UserID: m.UserID,
				UserShortName: m.UserShortName, UserLongName: m.UserLongName,
				EnrollmentUserID: m.EnrollmentUserID,
			}
		} else if err != nil {
			return err
		}
	}
	now := s.now().UTC()
	if !e.Enrolled {
		e.EnrolledAt = now
	}
	e.Enrolled = true
	e.CheckedOut = false
	e.Topic = m.Topic
	e.PushToken = m.Token
	e.PushMagic = m.PushMagic
	if len(m.UnlockToken) > 0 {
		e.UnlockToken = m.UnlockToken
	}
	e.AwaitingConfiguration = m.AwaitingConfiguration
	if m.UserLongName != "" {
		e.UserLongName = m.UserLongName
	}
	e.LastSeen = now
	if err := s.store.PutEnrollment(ctx, e); err != nil {
		return err
	}
	s.pushChanged(ctx, e)
	return nil
}

func (s *Service) pushChanged(ctx context.Context, e *store.Enrollment) {
	if s.onChange != nil {
		s.onChange(ctx, e)
	}
}

// CheckOut marks the enrollment removed.
func (s *Service) CheckOut(ctx context.Context, r *Request, m *mdm.CheckOut) error {
	dev, err := s.authorize(ctx, r)
	if err != nil {
		return err
	}
	dev.CheckedOut = true
	dev.Enrolled = false
	dev.LastSeen = s.now().UTC()
	if err := s.store.PutEnrollment(ctx, dev); err != nil {
		return err
	}
	s.pushChanged(ctx, dev)
	return nil
}

// SetBootstrapToken escrows (or, when empty, deletes) the bootstrap token.
func (s *Service) SetBootstrapToken(ctx context.Context, r *Request, m *mdm.SetBootstrapToken) error {
	dev, err := s.authorize(ctx, r)
	if err != nil {
		return err
	}
	dev.BootstrapToken = m.BootstrapToken
	dev.LastSeen = s.now().UTC()
	return s.store.PutEnrollment(ctx, dev)
}

// GetBootstrapToken returns the escrowed token, or nil when none is.
func (s *Service) GetBootstrapToken(ctx context.Context, r *Request, m *mdm.GetBootstrapToken) (*mdm.BootstrapTokenResponse, error) {
	dev, err := s.authorize(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(dev.BootstrapToken) == 0 {
		return nil, nil
	}
	return &mdm.BootstrapTokenResponse{BootstrapToken: dev.BootstrapToken}, nil
}

// ErrUserAuthDeclined answers UserAuthenticate with 410 Gone.
var ErrUserAuthDeclined = httperr.New(http.StatusGone, "UserAuthenticate declined: this server does not manage directory users (set -user-authenticate allow to accept)")

// UserAuthenticate answers per the configured policy: nil bytes mean an
// empty 200 body.
func (s *Service) UserAuthenticate(ctx context.Context, r *Request, m *mdm.UserAuthenticate) ([]byte, error) {
	if _, err := s.authorize(ctx, r); err != nil {
		return nil, err
	}
	if s.userAuth == UserAuthDecline {
		return nil, ErrUserAuthDeclined
	}
	if m.DigestResponse != "" {
		return nil, nil
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>DigestChallenge</key><string></string></dict></plist>
`), nil
}

// NotSupportedError answers a message this Service has no one to answer
// (built without WithDeclarative or WithTokenIssuer; the server sets both).
type NotSupportedError struct{ What string }

func (e *NotSupportedError) Error() string {
	return e.What + " is not supported by mockmdm yet; the message was recorded in the transcript"
}

// HTTPStatus is 400: the device is told plainly, not a server failure.
func (e *NotSupportedError) HTTPStatus() int { return http.StatusBadRequest }

// DeclarativeManagement answers a declarative management check-in on the
// channel it came through (each channel has its own declarations).
func (s *Service) DeclarativeManagement(ctx context.Context, r *Request, m *mdm.DeclarativeManagement) ([]byte, error) {
	if _, err := s.authorize(ctx, r); err != nil {
		return nil, err
	}
	if s.ddm == nil {
		return nil, &NotSupportedError{What: "DeclarativeManagement (endpoint " + m.Endpoint + ")"}
	}
	return s.ddm.Serve(ctx, r.ID.ID, m.Endpoint, m.Data)
}

// GetToken answers a token request with the plist {TokenData: <data>}.
func (s *Service) GetToken(ctx context.Context, r *Request, m *mdm.GetToken) ([]byte, error) {
	if _, err := s.authorize(ctx, r); err != nil {
		return nil, err
	}
	if s.tokens == nil {
		return nil, &NotSupportedError{What: "GetToken (" + m.TokenServiceType + ")"}
	}
	data, err := s.tokens.IssueToken(ctx, r.ID.ID, m.TokenServiceType, m.TokenParameters)
	if err != nil {
		return nil, err
	}
	return plist.MarshalIndent(struct{ TokenData []byte }{data}, "  ")
}

// CommandAndReportResults stores the device's answer and returns the next
// command to send, or nil when the queue has nothing for this session.
//
// A command answered NotNow stays queued and is offered again only when the
// device starts a new session with Idle; within the session it is skipped,
// so the device is never asked the same thing twice in a row.
func (s *Service) CommandAndReportResults(ctx context.Context, r *Request, res *mdm.CommandResults) (*store.QueueItem, error) {
	dev, err := s.binding(ctx, r)
	if err != nil {
		return nil, err
	}
	if dev.CheckedOut {
		return nil, refuse("enrollment %s checked out; it must enroll again", dev.ID)
	}
	if r.ID.ID != dev.ID {
		if _, err := s.store.GetEnrollment(ctx, r.ID.ID); errors.Is(err, store.ErrNotFound) {
			return nil, refuse("unknown user channel %s: it never sent a TokenUpdate", r.ID.ID)
		} else if err != nil {
			return nil, err
		}
	}
	now := s.now().UTC()
	if err := s.store.TouchEnrollment(ctx, r.ID.ID, now); err != nil {
		return nil, err
	}
	if res.Status != mdm.StatusIdle {
		err := s.store.SaveResult(ctx, r.ID.ID, res.CommandUUID, res.Status, res.Raw, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// A retry of an answer already taken, or an answer to a command
			// never queued here: keep the session going, say so in the log.
			s.log.WarnContext(ctx, "result for a command not queued for this enrollment",
				"enrollment_id", r.ID.ID, "command_uuid", res.CommandUUID, "status", res.Status, "request_id", r.RequestID)
			noteFrom(ctx).add("result for command " + res.CommandUUID + " ignored: it is not queued for this enrollment (already answered, or never sent)")
		case err != nil:
			return nil, err
		case store.IsFinal(res.Status):
			s.results.Publish(res.CommandUUID)
		}
	}
	next, err := s.store.NextCommand(ctx, r.ID.ID, res.Status != mdm.StatusIdle)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return next, err
}
