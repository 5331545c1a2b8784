package checkin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mockmdm/mockmdm/store"
)

// Account-driven enrollments authenticate their user as well as their
// device: the device sends the access token it got at sign-in in an
// Authorization: Bearer header on its check-in and command requests (on
// iOS on every channel; on macOS only the user channel), and when the
// token has expired the server answers 401 with the same WWW-Authenticate
// challenge that started the enrollment, which makes the device sign the
// person in again and retry. A 401 without that header would unenroll the
// device, so a refused token must always carry it (PROTOCOL.md §6 step 7,
// from Apple's "Implementing the simple authentication account-driven
// enrollment flow").
//
// The check costs nothing on other requests: it runs only when a request
// carries an Authorization header, which only account-driven devices send.
// A request from an account-driven enrollment that carries none is let
// through (a macOS device channel sends none).

// BearerVerifier checks an account-driven enrollment's access token; the
// enrollment service satisfies it.
type BearerVerifier interface {
	// VerifyAccountBearer accepts token for the organisation user upn, or
	// says why not.
	VerifyAccountBearer(ctx context.Context, upn, token string) error
	// AccountChallenge is the WWW-Authenticate value that sends a device
	// to sign its user in again.
	AccountChallenge() string
}

// WithBearerVerifier turns on the access-token check of account-driven
// enrollments.
func WithBearerVerifier(v BearerVerifier) HandlerOption { return func(h *Handler) { h.bearer = v } }

// ReauthError is a refused access token: a 401 whose WWW-Authenticate
// header asks the device to re-authenticate its user.
type ReauthError struct {
	Challenge string
	Reason    string
}

func (e *ReauthError) Error() string {
	return "the account-driven enrollment's access token is refused (" + e.Reason + "); answering 401 with WWW-Authenticate so the device signs its user in again"
}

// HTTPStatus is 401: with the challenge, the device re-authenticates
// instead of unenrolling.
func (e *ReauthError) HTTPStatus() int { return http.StatusUnauthorized }

// checkBearer checks the Authorization header of a request for enrollment
// id when the enrollment was made through account-driven enrollment.
func (h *Handler) checkBearer(ctx context.Context, id string, authorization string) error {
	e, err := h.svc.store.GetEnrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not enrolled yet (Authenticate): the enrollment request checked the token
	}
	if err != nil {
		return err
	}
	if e.Management.Program != store.ProgramAccountDriven {
		return nil
	}
	scheme, token, _ := strings.Cut(authorization, " ")
	token = strings.TrimSpace(token)
	switch {
	case !strings.EqualFold(scheme, "Bearer") || token == "":
		return &ReauthError{Challenge: h.bearer.AccountChallenge(), Reason: "the Authorization header is not \"Bearer <token>\""}
	case e.Management.User == "":
		return nil // no user recorded: nothing to hold the token to
	}
	if err := h.bearer.VerifyAccountBearer(ctx, e.Management.User, token); err != nil {
		return &ReauthError{Challenge: h.bearer.AccountChallenge(), Reason: err.Error()}
	}
	noteFrom(ctx).add("account-driven access token accepted for " + e.Management.User)
	return nil
}
