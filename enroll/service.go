package enroll

import (
	"context"
	"log/slog"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// Store is what the enrollment programs keep: their documents, and the
// enrollments whose Management they update after the fact (Company Portal
// registration, "identify as corporate").
type Store interface {
	store.Documents
	GetEnrollment(ctx context.Context, id string) (*store.Enrollment, error)
	PutEnrollment(ctx context.Context, e *store.Enrollment) error
	ListEnrollments(ctx context.Context) ([]*store.Enrollment, error)
}

// Service is the enrollment programs' rules over a Store.
type Service struct {
	docs      Store
	log       *slog.Logger
	now       func() time.Time
	ticketTTL time.Duration
	company   string
	newID     func() string
	// accountTokenTTL is how long an account-driven access token lasts;
	// accountChallenge is the WWW-Authenticate value that sends a device
	// to sign in again (set by DeviceRoutes, which knows the public URL).
	accountTokenTTL  time.Duration
	accountChallenge string
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock for ticket expiry.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithTicketTTL sets how long an enrollment ticket (and so the profile that
// carries it) can start an enrollment; default 24 hours.
func WithTicketTTL(d time.Duration) Option { return func(s *Service) { s.ticketTTL = d } }

// WithCompany sets the organisation's default name ("Contoso").
func WithCompany(name string) Option { return func(s *Service) { s.company = name } }

// WithAccountTokenLifetime sets how long the access token of an
// account-driven enrollment lasts (default 24 hours): the device sends it
// with every check-in and command request, and once it has expired the
// server answers 401 with WWW-Authenticate and the device signs its user in
// again. Other sign-ins last 15 minutes, long enough to enroll.
func WithAccountTokenLifetime(d time.Duration) Option {
	return func(s *Service) { s.accountTokenTTL = d }
}

// WithNewID sets how ticket IDs are made (deterministic tests).
func WithNewID(f func() string) Option { return func(s *Service) { s.newID = f } }

// New returns the enrollment programs' service over st.
func New(st Store, opts ...Option) *Service {
	if st == nil {
		panic("enroll.New: nil store")
	}
	s := &Service{docs: st, now: time.Now, ticketTTL: 24 * time.Hour, company: "Contoso", newID: randomID, accountTokenTTL: 24 * time.Hour}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.ticketTTL <= 0 {
		panic("enroll.New: ticket TTL must be positive")
	}
	if s.accountTokenTTL <= 0 {
		panic("enroll.New: account token lifetime must be positive")
	}
	return s
}
