package httperr

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

type statusErr struct{ code int }

func (e statusErr) Error() string   { return fmt.Sprintf("status %d", e.code) }
func (e statusErr) HTTPStatus() int { return e.code }

func TestStatusAndReason(t *testing.T) {
	tests := []struct {
		err    error
		status int
		reason string
	}{
		{New(400, "bad %s", "thing"), 400, "bad thing"},
		{fmt.Errorf("wrapped: %w", New(404, "gone")), 404, "wrapped: gone"},
		{Wrap(413, errors.New("cause"), "too big"), 413, "too big: cause"},
		{statusErr{409}, 409, "status 409"},
		{statusErr{200}, 500, "internal error"}, // not an error status: treated as unknown
		{errors.New("db on fire"), 500, "internal error"},
	}
	for _, tt := range tests {
		if got := StatusOf(tt.err); got != tt.status {
			t.Errorf("StatusOf(%v) = %d, want %d", tt.err, got, tt.status)
		}
		if got := ReasonOf(tt.err); !strings.Contains(got, tt.reason) {
			t.Errorf("ReasonOf(%v) = %q, want %q", tt.err, got, tt.reason)
		}
	}
	if strings.Contains(ReasonOf(errors.New("db on fire")), "fire") {
		t.Error("a 5xx reason leaks the internal error")
	}
}

func TestWriteText(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteText(rec, New(415, "use XML"))
	if rec.Code != 415 || !strings.Contains(rec.Body.String(), "use XML") || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("%d %q %q", rec.Code, rec.Body, rec.Header())
	}
}
