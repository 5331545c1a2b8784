package enroll

import (
	"context"
	"net/http"
	"strings"

	"github.com/mockmdm/mockmdm/store"
)

// Register completes the Company Portal sign-in on an enrolled device (seed
// 000): it establishes user affinity where the enrollment had none yet
// (ADE with Company Portal authentication), registers the device in the
// organisation's directory, makes it compliant there, and unlocks a device
// that was waiting for this sign-in.
func (s *Service) Register(ctx context.Context, enrollmentID string, c Credentials) (*store.Enrollment, error) {
	e, err := s.docs.GetEnrollment(ctx, enrollmentID)
	if err != nil {
		return nil, err
	}
	u, err := s.SignIn(ctx, c)
	if err != nil {
		return nil, err
	}
	m := &e.Management
	switch {
	case !e.Enrolled:
		return nil, refuse(http.StatusConflict, CodeInvalid, "enrollment %s is not enrolled (no TokenUpdate yet, or checked out); the Company Portal signs in on an enrolled device", e.ID)
	case m.Program == store.ProgramADE || m.Program == store.ProgramConfigurator:
		if m.AuthMethod == "none" {
			return nil, refuse(http.StatusConflict, CodeInvalid, "enrollment %s was enrolled without user affinity: the Company Portal is not used, needed or supported there", e.ID)
		}
	}
	if m.User != "" && !strings.EqualFold(m.User, u.UPN) {
		return nil, refuse(http.StatusForbidden, CodeInvalid, "this device belongs to %s; %s cannot sign in to its Company Portal", m.User, u.UPN)
	}
	if err := s.Restrict(ctx, m.Program, u, m.Ownership); err != nil {
		return nil, err
	}
	m.User = u.UPN
	m.Registered, m.CompliantInDirectory, m.CompliantInMDM, m.Locked = true, true, true, false
	if err := s.docs.PutEnrollment(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// SetOwnership changes the recorded ownership ("identify as corporate").
// A User Enrollment stays a User Enrollment: it cannot become a device
// enrollment without unenrolling.
func (s *Service) SetOwnership(ctx context.Context, enrollmentID, ownership string) (*store.Enrollment, error) {
	if ownership != store.OwnershipCorporate && ownership != store.OwnershipPersonal {
		return nil, invalid("ownership %q must be %q or %q", ownership, store.OwnershipCorporate, store.OwnershipPersonal)
	}
	e, err := s.docs.GetEnrollment(ctx, enrollmentID)
	if err != nil {
		return nil, err
	}
	e.Management.Ownership = ownership
	if err := s.docs.PutEnrollment(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// ProfileRequest asks the server for an enrollment profile.
type ProfileRequest struct {
	// Ticket goes into the CheckInURL (TicketURL).
	Ticket string
	// Mode is store.ModeDevice or store.ModeUserEnrollment.
	Mode string
	// EnrollmentMode is the MDM payload's EnrollmentMode: "BYOD" or "ADDE"
	// for account-driven enrollment, else empty.
	EnrollmentMode string
	// ManagedAppleID is the User Enrollment's Managed Apple ID
	// (AssignedManagedAppleID for account-driven, ManagedAppleID otherwise).
	ManagedAppleID string
	// Unsigned skips the CMS signature (Configurator exports may be either).
	Unsigned bool
}

// Profiles builds enrollment profiles; the server implements it with its
// PKI, URLs and push topic.
type Profiles interface {
	EnrollmentProfile(ctx context.Context, req ProfileRequest) ([]byte, error)
}
