package mdm

import "fmt"

// ParseError reports a message that is not a well-formed MDM message: not a
// plist, a missing required key, a key of the wrong type. Handlers answer it
// with 400 (never 401, which would unenroll a real device).
type ParseError struct {
	// Field names the key at fault, if one is.
	Field string
	// Reason says what is wrong in words a person can act on.
	Reason string
	Err    error
}

func (e *ParseError) Error() string {
	msg := e.Reason
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ParseError) Unwrap() error { return e.Err }

// HTTPStatus is 400: a malformed message is the client's fault.
func (e *ParseError) HTTPStatus() int { return 400 }

func parseErrorf(field, format string, args ...any) *ParseError {
	return &ParseError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
