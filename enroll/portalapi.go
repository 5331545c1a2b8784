package enroll

import (
	"context"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

func httpStatus(err error) int { return httperr.StatusOf(err) }

// SignInResponse answers POST /portal/v1/signin: the session token to send
// as "Authorization: Bearer …" and the user's enrollment options.
type SignInResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Options   *Options  `json:"options"`
}

// apiSignIn is the Company Portal's sign-in: an MFA code or a new password
// go in the same call, each missing one refused with its own code.
func (s *Service) apiSignIn(w http.ResponseWriter, r *http.Request) {
	var c Credentials
	err := requireJSON(r)
	if err == nil {
		err = readJSON(w, r, &c)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	sess, u, err := s.StartSession(r.Context(), PurposePortal, c)
	if err != nil {
		s.log.InfoContext(r.Context(), "Company Portal sign-in refused", "upn", c.UPN, "err", err)
		writeError(w, err)
		return
	}
	o, err := s.Options(r.Context(), PurposePortal, u)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, SignInResponse{Token: sess.Token, ExpiresAt: sess.ExpiresAt, Options: o})
}

func (s *Service) apiOptions(w http.ResponseWriter, r *http.Request) {
	_, u, err := s.Session(r.Context(), PurposePortal, bearerOf(r))
	if err != nil {
		writeError(w, err)
		return
	}
	o, err := s.Options(r.Context(), PurposePortal, u)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// PortalEnrollRequest is POST /portal/v1/enroll: the user's choice, and the
// device's current enrollment when the Company Portal app knows it has one.
type PortalEnrollRequest struct {
	Choice
	CurrentEnrollmentID string `json:"current_enrollment_id,omitempty"`
}

// checkNotEnrolled refuses to enroll a device that is enrolled already: the
// Company Portal app does not start a second enrollment, and a User
// Enrollment cannot switch to device enrollment without unenrolling (seed
// 000: "When devices are enrolled using user enrollment, you can't switch
// to device enrollment … Users must unenroll from user enrollment, and then
// re-enroll to device enrollment").
func (s *Service) checkNotEnrolled(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	e, err := s.docs.GetEnrollment(ctx, id)
	if err != nil || !e.Enrolled || e.CheckedOut {
		return nil // unknown here, or gone: nothing to switch from
	}
	if e.Management.Mode == store.ModeUserEnrollment {
		return refuse(http.StatusConflict, CodeUserEnrollmentSwitch, "this device is in User Enrollment (%s); it cannot switch to device enrollment, or enroll again, without unenrolling: remove the management profile in Settings (or have the administrator retire it), then enroll again", id)
	}
	return refuse(http.StatusConflict, CodeInvalid, "this device is enrolled already (%s): remove the management profile first to enroll it again", id)
}

// apiEnroll takes the choice and answers with the enrollment profile
// (application/x-apple-aspen-config) and its ticket in TicketHeader.
func apiEnroll(s *Service, p Profiles) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, u, err := s.Session(r.Context(), PurposePortal, bearerOf(r))
		if err != nil {
			writeError(w, err)
			return
		}
		var in PortalEnrollRequest
		if err := requireJSON(r); err != nil {
			writeError(w, err)
			return
		}
		body, err := readBody(w, r)
		if err == nil && len(body) > 0 {
			err = decodeJSON(body, &in)
		}
		if err == nil {
			err = s.checkNotEnrolled(r.Context(), in.CurrentEnrollmentID)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		t, req, err := s.Prepare(r.Context(), PurposePortal, u, in.Choice)
		if err != nil {
			s.log.InfoContext(r.Context(), "Company Portal choice refused", "upn", u.UPN, "err", err)
			writeError(w, err)
			return
		}
		profile, err := p.EnrollmentProfile(r.Context(), req)
		if err != nil {
			// Nothing can use the ticket without its profile.
			_ = s.docs.DeleteDocument(r.Context(), kindTicket, t.ID)
			s.log.ErrorContext(r.Context(), "building a Company Portal profile", "err", err)
			writeError(w, err)
			return
		}
		serveProfile(w, profile, t.ID)
	})
}

// RegisterRequest is POST /portal/v1/register: the Company Portal on an
// enrolled device signs in and registers it (Register).
type RegisterRequest struct {
	EnrollmentID string `json:"enrollment_id"`
	Credentials
}

// RegisterResponse is the enrollment's Management after registration.
type RegisterResponse struct {
	EnrollmentID string           `json:"enrollment_id"`
	Management   store.Management `json:"management"`
}

func (s *Service) apiRegister(w http.ResponseWriter, r *http.Request) {
	var req RegisterRequest
	err := requireJSON(r)
	if err == nil {
		err = readJSON(w, r, &req)
	}
	if err == nil && req.EnrollmentID == "" {
		err = invalid("enrollment_id is required: the UDID (device enrollment) or EnrollmentID (User Enrollment) the device enrolled with")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	e, err := s.Register(r.Context(), req.EnrollmentID, req.Credentials)
	if err != nil {
		if isNotFound(err) {
			err = refuse(http.StatusNotFound, "not_found", "no enrollment %q: enroll the device first", req.EnrollmentID)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RegisterResponse{EnrollmentID: e.ID, Management: e.Management})
}
