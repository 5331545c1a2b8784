// Package httpx holds the small net/http helpers that more than one layer
// needs (middleware of the MDM service, metrics, the route table), so that
// each keeps one copy of the subtle parts.
package httpx

import (
	"bufio"
	"net"
	"net/http"
)

// StatusWriter passes a response through and remembers the status the
// handler answered with: middleware that counts, records or reacts to the
// outcome wraps the ResponseWriter in one. It passes Flush and Unwrap
// through, so long-polls and http.ResponseController keep working.
type StatusWriter struct {
	http.ResponseWriter
	status int
}

// NewStatusWriter wraps w. The http.ResponseWriter it returns is the one to
// hand to the next handler: sw itself, or, when w can be hijacked (HTTP/1),
// sw with Hijack as well — so that code asserting http.Hijacker (the mock
// APNs stream, a fault that drops the connection) sees the truth about w.
func NewStatusWriter(w http.ResponseWriter) (sw *StatusWriter, next http.ResponseWriter) {
	sw = &StatusWriter{ResponseWriter: w}
	if hj, ok := w.(http.Hijacker); ok {
		return sw, &hijackWriter{StatusWriter: sw, hj: hj}
	}
	return sw, sw
}

// Status is the status answered so far: the first WriteHeader's code, 200
// once the body was written without one, 101 after a hijack, and 0 while
// nothing has been written (net/http will answer 200 for a handler that
// returns without writing; a caller that counts should read 0 as that).
func (s *StatusWriter) Status() int { return s.status }

// WriteHeader keeps the first code (net/http ignores later ones too).
func (s *StatusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush flushes the wrapped writer when it can; a status not yet written is
// then 200, as net/http sends it.
func (s *StatusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if s.status == 0 {
			s.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the wrapped writer.
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// hijackWriter is a StatusWriter over a connection that can be hijacked; a
// hijacked request counts as 101 Switching Protocols.
type hijackWriter struct {
	*StatusWriter
	hj http.Hijacker
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h.status == 0 {
		h.status = http.StatusSwitchingProtocols
	}
	return h.hj.Hijack()
}
