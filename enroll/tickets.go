package enroll

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// TicketParam is the query parameter of the profile's CheckInURL that names
// the enrollment ticket.
const TicketParam = "ticket"

// Ticket is what an enrollment program decided for one device, waiting for
// that device's Authenticate. The profile the program served carries its ID.
type Ticket struct {
	ID         string           `json:"id"`
	Management store.Management `json:"management"`
	// SerialNumber, when the program knows the device (ADE, a Configurator
	// import), must match the serial the device authenticates with.
	SerialNumber string    `json:"serial_number,omitempty"`
	IssuedAt     time.Time `json:"issued_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	// BoundTo is the enrollment that used the ticket first: one ticket
	// enrolls one device (which may authenticate again with it).
	BoundTo string `json:"bound_to,omitempty"`
}

// IssueTicket records a program's decision for a device that has yet to
// enroll and returns the ticket to put in its profile.
func (s *Service) IssueTicket(ctx context.Context, m store.Management, serial string) (*Ticket, error) {
	now := s.now().UTC()
	t := &Ticket{ID: s.newID(), Management: m, SerialNumber: serial, IssuedAt: now, ExpiresAt: now.Add(s.ticketTTL)}
	t.Management.Ticket = t.ID
	if err := s.put(ctx, kindTicket, t.ID, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Ticket returns a ticket by ID.
func (s *Service) Ticket(ctx context.Context, id string) (*Ticket, error) {
	return getDoc[Ticket](ctx, s, kindTicket, id,
		refuse(http.StatusForbidden, CodeBadTicket, "enrollment ticket %q is unknown (the server was reset, or the profile came from another server): download the enrollment profile again", id))
}

// Admit decides, at Authenticate, the Management of the enrollment e from
// the ticket in query (the CheckInURL's query): no ticket is a plain
// profile enrollment; an unknown, expired or foreign ticket, or a device
// that is not the one the ticket was for, is refused.
func (s *Service) Admit(ctx context.Context, query url.Values, e *store.Enrollment) error {
	id := query.Get(TicketParam)
	if id == "" {
		mode := store.ModeDevice
		if e.EnrollmentID != "" {
			mode = store.ModeUserEnrollment
		}
		e.Management = store.Management{Program: store.ProgramProfile, Mode: mode}
		return nil
	}
	t, err := s.Ticket(ctx, id)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if !now.Before(t.ExpiresAt) {
		return refuse(http.StatusForbidden, CodeBadTicket, "enrollment ticket %s expired at %s: download the enrollment profile again", id, t.ExpiresAt.Format(time.RFC3339))
	}
	if t.BoundTo != "" && t.BoundTo != e.ID {
		return refuse(http.StatusForbidden, CodeBadTicket, "enrollment ticket %s already enrolled %s; each device needs its own profile", id, t.BoundTo)
	}
	ue := e.EnrollmentID != ""
	if ue != (t.Management.Mode == store.ModeUserEnrollment) {
		return refuse(http.StatusForbidden, CodeBadTicket, "enrollment ticket %s is for a %s, but the device authenticated as a %s", id, modeName(t.Management.Mode), modeName(map[bool]string{true: store.ModeUserEnrollment, false: store.ModeDevice}[ue]))
	}
	if t.SerialNumber != "" && e.SerialNumber != "" && !strings.EqualFold(t.SerialNumber, e.SerialNumber) {
		return refuse(http.StatusForbidden, CodeBadTicket, "enrollment ticket %s is for serial %s, but the device says %s", id, t.SerialNumber, e.SerialNumber)
	}
	e.Management = t.Management
	if t.BoundTo == "" {
		t.BoundTo = e.ID
		if err := s.put(ctx, kindTicket, t.ID, t); err != nil {
			return err
		}
	}
	return nil
}

func modeName(m string) string {
	if m == store.ModeUserEnrollment {
		return "User Enrollment"
	}
	return "device enrollment"
}

// TicketURL adds the ticket to a profile URL (the CheckInURL).
func TicketURL(base, ticket string) string {
	if ticket == "" {
		return base
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + TicketParam + "=" + url.QueryEscape(ticket)
}

// randomID is 128 random bits, lower-case base32.
func randomID() string { return strings.ToLower(rand.Text()) }
