package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// admitter lets the enrollment programs decide each enrollment's
// Management at Authenticate (checkin.Admitter over enroll.Service), and
// keeps the identity certificate the device authenticated with, which
// encrypt_profile encrypts to.
type admitter struct {
	programs   *enroll.Service
	identities identityArchive
	log        *slog.Logger
}

func (a admitter) Admit(ctx context.Context, r *checkin.Request, e *store.Enrollment) error {
	if err := a.programs.Admit(ctx, r.Query, e); err != nil {
		return err
	}
	// The copy only serves encrypt_profile, which says so (409) when it is
	// missing: failing to keep it must not fail the enrollment.
	if err := a.identities.keep(ctx, e.ID, r.Cert); err != nil {
		a.log.WarnContext(ctx, "the identity certificate was not kept; encrypt_profile will not reach this enrollment", "enrollment_id", e.ID, "err", err)
	}
	return nil
}

// Programs is the enrollment programs' service (directory, enrollment type
// profiles, tickets).
func (s *Server) Programs() *enroll.Service { return s.programs }

// profileIssuer builds the enrollment profiles the programs hand out
// (enroll.Profiles): the server's own profile with the ticket in its
// CheckInURL, a one-time SCEP challenge, and the User Enrollment keys.
type profileIssuer struct{ s *Server }

func (p profileIssuer) EnrollmentProfile(ctx context.Context, req enroll.ProfileRequest) ([]byte, error) {
	challenge, err := p.s.mintChallenge(ctx)
	if err != nil {
		return nil, err
	}
	o := p.s.enrollmentOptions(challenge)
	o.CheckInURL = enroll.TicketURL(o.CheckInURL, req.Ticket)
	if req.Ticket != "" {
		// One profile per ticket: its own identifier and UUIDs, so a device
		// that installs it replaces nothing of another enrollment's.
		o.Identifier += "." + req.Ticket
		o.UUIDSeed += req.Ticket
	}
	switch req.Mode {
	case store.ModeUserEnrollment:
		o.AccessRights = 0 // ignored by User Enrollment
		switch req.EnrollmentMode {
		case profiles.EnrollmentModeBYOD:
			o.EnrollmentMode, o.AssignedManagedAppleID = req.EnrollmentMode, req.ManagedAppleID
		case "":
			o.ManagedAppleID = req.ManagedAppleID
		default:
			return nil, fmt.Errorf("User Enrollment with EnrollmentMode %q: want %q or none", req.EnrollmentMode, profiles.EnrollmentModeBYOD)
		}
		o.DisplayName = "mockmdm User Enrollment (" + p.s.publicURL.Hostname() + ")"
	case store.ModeDevice, "":
		o.EnrollmentMode = req.EnrollmentMode // ADDE for account-driven device enrollment
	default:
		return nil, fmt.Errorf("unknown enrollment mode %q", req.Mode)
	}
	raw, err := profiles.BuildEnrollment(o)
	if err != nil {
		return nil, err
	}
	if req.Unsigned {
		return raw, nil
	}
	return profiles.Sign(raw, p.s.pki.SignerCert, p.s.pki.SignerKey, p.s.pki.CA.Cert)
}
