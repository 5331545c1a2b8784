// Package httperr is the one convention for errors that carry an HTTP status:
// any error with an HTTPStatus() int method (found with errors.As) decides
// the status a handler answers with; everything else is a 500.
package httperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with an HTTP status and a reason a person can act on.
type Error struct {
	Status int
	Reason string
	Err    error
}

// New returns an Error with a formatted reason.
func New(status int, format string, args ...any) *Error {
	return &Error{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with status and reason that wraps err.
func Wrap(status int, err error, format string, args ...any) *Error {
	return &Error{Status: status, Reason: fmt.Sprintf(format, args...), Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		if e.Reason == "" {
			return e.Err.Error()
		}
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status to answer with.
func (e *Error) HTTPStatus() int { return e.Status }

// StatusOf returns the HTTP status err carries, or 500 when it carries none.
func StatusOf(err error) int {
	var s interface{ HTTPStatus() int }
	if errors.As(err, &s) {
		if code := s.HTTPStatus(); code >= 400 && code <= 599 {
			return code
		}
	}
	return http.StatusInternalServerError
}

// ReasonOf is what a client may be told about err: its message for a 4xx,
// a generic sentence for a 5xx (whose detail belongs in the log only).
func ReasonOf(err error) string {
	if StatusOf(err) < 500 {
		return err.Error()
	}
	return "internal error; the server log has the detail"
}

// WriteText answers with err's status and reason as plain text.
func WriteText(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(StatusOf(err))
	fmt.Fprintln(w, ReasonOf(err))
}
