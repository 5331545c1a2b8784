package device

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Errors are typed by who is at fault, so that a caller (a test, the REST
// API that drives virtual devices) can branch with errors.As / errors.Is
// and answer with the status each one's HTTPStatus gives:
//
//   - *ProfileError: the profile cannot be installed as given (malformed,
//     inconsistent, untrusted when trust is required). Its status is the
//     profile decoder's (400, 413) or 400.
//   - *ServerError: the server answered a protocol step with a status that
//     fails it (a non-200 Authenticate, a 401 on connect). 502.
//   - *ExchangeError: the exchange did not complete (network, timeout, a
//     reply that breaks the protocol, a SCEP refusal). 502, or 504 when the
//     context ran out.
//   - ErrNotEnrolled, ErrAlreadyEnrolled: the call does not fit the
//     device's state. 409.

// stateError is a sentinel that carries an HTTP status.
type stateError struct{ msg string }

func (e *stateError) Error() string   { return e.msg }
func (e *stateError) HTTPStatus() int { return http.StatusConflict }

var (
	// ErrNotEnrolled: the device has no MDM enrollment (Connect, Unenroll).
	ErrNotEnrolled error = &stateError{"device: not enrolled in an MDM server; install an enrollment profile first"}
	// ErrAlreadyEnrolled: a profile with an MDM payload was given to a
	// device that is already enrolled; a device has one MDM payload at a time.
	ErrAlreadyEnrolled error = &stateError{"device: already enrolled; Unenroll before installing another MDM profile"}
	// ErrUnenrolled is matched (errors.Is) by a *ServerError whose status
	// made the device drop its enrollment (401, or 403 com.apple.unrecognized.device).
	ErrUnenrolled = errors.New("device: the server unenrolled the device")
	// ErrUntrustedProfile is matched by a *ProfileError refusing a profile
	// whose signer does not chain to the trusted roots (WithRequireVerified).
	ErrUntrustedProfile = errors.New("device: the profile's signer is not trusted")
)

// ProfileError is a profile the device refuses to install.
type ProfileError struct {
	// Identifier is the profile's PayloadIdentifier, when it got that far.
	Identifier string
	// Reason says what is wrong in words a person can act on.
	Reason string
	// Err is the cause (a profiles decoder error, ErrUntrustedProfile, …).
	Err error
	// owner, when set, is who installed the profile this one would have
	// replaced; InstallProfile's error code follows it.
	owner profileOwner
}

// profileOwner is who installed a profile a replacement was refused for.
type profileOwner int

const (
	ownerUser        profileOwner = iota + 1 // the user (Install)
	ownerDeclaration                         // a legacy configuration
)

func (e *ProfileError) Error() string {
	msg := "device: profile"
	if e.Identifier != "" {
		msg += " " + quote(e.Identifier)
	}
	msg += " not installed: " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ProfileError) Unwrap() error { return e.Err }

// HTTPStatus is the cause's status when it has one (400 or 413 from the
// profile decoder), else 400.
func (e *ProfileError) HTTPStatus() int {
	var s interface{ HTTPStatus() int }
	if errors.As(e.Err, &s) {
		if code := s.HTTPStatus(); code >= 400 && code < 500 {
			return code
		}
	}
	return http.StatusBadRequest
}

// ServerError is a protocol step the server failed with its HTTP status.
type ServerError struct {
	// Step names the protocol step: "profile download", "Authenticate",
	// "TokenUpdate", "CheckOut", "connect".
	Step       string
	Method     string
	URL        string
	StatusCode int
	// Body is the start of the server's answer (at most 4 KiB).
	Body []byte
	// Reason adds what the device concluded, e.g. "the device unenrolled".
	Reason string
	// Unenrolled is set when the answer made the device drop its enrollment.
	Unenrolled bool
}

func (e *ServerError) Error() string {
	msg := fmt.Sprintf("device: %s: %s %s answered HTTP %d", e.Step, e.Method, e.URL, e.StatusCode)
	if len(e.Body) > 0 {
		msg += ": " + quote(string(e.Body))
	}
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg
}

// Is matches ErrUnenrolled when the answer unenrolled the device.
func (e *ServerError) Is(target error) bool { return target == ErrUnenrolled && e.Unenrolled }

// HTTPStatus is 502: the upstream server refused the device.
func (e *ServerError) HTTPStatus() int { return http.StatusBadGateway }

// ExchangeError is a protocol step that did not complete: the server could
// not be reached, did not answer in time, or answered something the
// protocol does not allow.
type ExchangeError struct {
	Step string
	URL  string
	// Reason says what went wrong, when Err alone does not.
	Reason string
	Err    error
}

func (e *ExchangeError) Error() string {
	msg := "device: " + e.Step
	if e.URL != "" {
		msg += " (" + e.URL + ")"
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// HTTPStatus is 504 when the context ran out, else 502.
func (e *ExchangeError) HTTPStatus() int {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// quote shortens s for an error message.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}
