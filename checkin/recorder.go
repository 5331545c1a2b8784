package checkin

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/smallstep/scep"

	"github.com/mockmdm/mockmdm/store"
)

// Transcript kinds the Recorder writes (the Handler writes checkin and
// command).
const (
	KindSCEP   = "scep"
	KindEnroll = "enroll"
)

// maxRecordBody bounds each body a Recorder keeps: a SCEP PKIMessage is a
// few KiB (the SCEP endpoint refuses more than 64 KiB) and an enrollment
// profile a few more, so 64 KiB keeps every real one whole.
const maxRecordBody = 64 << 10

// maxRecordPath bounds the path kept: a GET PKIOperation carries the whole
// PKIMessage, base64, in its query.
const maxRecordPath = 2048

// Recorder writes the exchanges of the endpoints the Handler does not
// serve — SCEP and the enrollment profile — to the transcript, so that an
// enrollment can be followed from its first request. It also gives the
// request an exchange for notes (what an injected SCEP fault did).
type Recorder struct {
	transcripts store.Transcripts
	now         func() time.Time
	log         *slog.Logger
}

// RecorderOption configures a Recorder.
type RecorderOption func(*Recorder)

// WithRecorderLogger sets the logger for failed transcript writes (nil: discard).
func WithRecorderLogger(l *slog.Logger) RecorderOption { return func(r *Recorder) { r.log = l } }

// NewRecorder returns a Recorder writing to transcripts, timed by now (nil: time.Now).
func NewRecorder(transcripts store.Transcripts, now func() time.Time, opts ...RecorderOption) *Recorder {
	if transcripts == nil {
		panic("checkin: NewRecorder needs a transcript store")
	}
	if now == nil {
		now = time.Now
	}
	r := &Recorder{transcripts: transcripts, now: now}
	for _, o := range opts {
		o(r)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Wrap records each request to next as one transcript entry of kind
// (KindSCEP or KindEnroll): method, path, status, and the request and
// response bodies, each cut at 64 KiB (the note says so when cut). SCEP
// entries carry the operation as MessageType, and for PKIOperation the
// PKIMessage's messageType too ("PKIOperation/PKCSReq"); a CertRep's
// pkiStatus goes in the note.
func (rec *Recorder) Wrap(kind string, next http.Handler) http.Handler {
	if kind != KindSCEP && kind != KindEnroll {
		panic("checkin: Recorder.Wrap: unknown kind " + kind)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := rec.now()
		ctx := r.Context()
		x := noteFrom(ctx)
		if x == nil {
			x = &exchange{}
			ctx = context.WithValue(ctx, exchangeKey{}, x)
			r = r.WithContext(ctx)
		}
		var reqBody []byte
		if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Read what is kept, then hand next the same bytes followed by
			// the rest: next applies its own limit.
			reqBody, _ = io.ReadAll(io.LimitReader(r.Body, maxRecordBody+1))
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(reqBody), r.Body), r.Body}
		}
		cw := &captureWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)

		e := &store.TranscriptEntry{
			Time: start.UTC(), RequestID: r.Header.Get("X-Request-Id"), Kind: kind,
			Method: r.Method, Path: clip(r.URL.RequestURI(), maxRecordPath), Status: cw.status,
		}
		if e.Status == 0 {
			e.Status = http.StatusOK // next wrote nothing at all
		}
		if len(e.RequestID) > 64 {
			e.RequestID = ""
		}
		var notes []string
		e.Request, notes = keep(reqBody, "request", notes)
		e.Response, notes = keep(cw.body.Bytes(), "response", notes)
		if cw.dropped > 0 {
			notes = append(notes, fmt.Sprintf("response cut at %d of %d bytes", maxRecordBody, maxRecordBody+cw.dropped))
		}
		if kind == KindSCEP {
			e.MessageType, notes = scepMessageType(r, reqBody, cw, notes)
		} else {
			e.MessageType = "profile"
		}
		x.mu.Lock()
		notes = append(notes, x.notes...)
		x.mu.Unlock()
		e.Note = strings.Join(notes, "; ")
		// The record outlives the request, as the Handler's does.
		if err := rec.transcripts.AppendTranscript(context.WithoutCancel(ctx), e); err != nil {
			rec.log.ErrorContext(ctx, "transcript write failed", "kind", kind, "err", err)
		}
	})
}

// keep returns b cut at maxRecordBody, noting a cut.
func keep(b []byte, what string, notes []string) ([]byte, []string) {
	if len(b) <= maxRecordBody {
		return b, notes
	}
	return b[:maxRecordBody], append(notes, what+" cut at 64 KiB")
}

// scepMessageType names a SCEP exchange: the operation, and for a
// PKIOperation the request's messageType and the CertRep's pkiStatus
// (decoded without the CA's key: only the signed attributes are read).
func scepMessageType(r *http.Request, reqBody []byte, cw *captureWriter, notes []string) (string, []string) {
	op := r.URL.Query().Get("operation")
	if op != "PKIOperation" {
		return clip(op, 64), notes
	}
	msg := reqBody
	if r.Method == http.MethodGet {
		msg = decodeMessageParam(r.URL.Query().Get("message"))
	}
	mt := op
	if m := parsePKIMessage(msg); m != nil {
		name, _, _ := strings.Cut(m.MessageType.String(), " ") // "PKCSReq (19)"
		mt += "/" + name
	}
	if cw.status == http.StatusOK || cw.status == 0 {
		if m := parsePKIMessage(cw.body.Bytes()); m != nil && m.CertRepMessage != nil {
			rep := "CertRep " + pkiStatusName(m.PKIStatus)
			if m.PKIStatus == scep.FAILURE {
				rep += " failInfo " + m.FailInfo.String()
			}
			notes = append(notes, rep)
		}
	}
	return mt, notes
}

// parsePKIMessage decodes what it can of a PKIMessage, nil when it cannot
// (the SCEP handler has said why, in its answer). The decoder is third
// party and indexes into what the client sent: a panic means "cannot".
func parsePKIMessage(b []byte) (m *scep.PKIMessage) {
	if len(b) == 0 || len(b) > maxRecordBody {
		return nil
	}
	defer func() {
		if recover() != nil {
			m = nil
		}
	}()
	m, err := scep.ParsePKIMessage(b)
	if err != nil {
		return nil
	}
	return m
}

func pkiStatusName(s scep.PKIStatus) string {
	switch s {
	case scep.SUCCESS:
		return "SUCCESS"
	case scep.FAILURE:
		return "FAILURE"
	case scep.PENDING:
		return "PENDING"
	}
	return fmt.Sprintf("pkiStatus %.8q", string(s))
}

func decodeMessageParam(s string) []byte {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "+")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}

// captureWriter passes a response through, keeping its status and the
// first maxRecordBody bytes of its body.
type captureWriter struct {
	http.ResponseWriter
	status  int
	body    bytes.Buffer
	dropped int
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	room := maxRecordBody - c.body.Len()
	if room >= len(b) {
		c.body.Write(b)
	} else {
		if room > 0 {
			c.body.Write(b[:room])
		}
		c.dropped += len(b) - max(room, 0)
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection underneath.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
