package handlers

import (
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// Transcript serves GET /v1/enrollments/{id}/transcript?after=SEQ&limit=N.
// An ID the server never saw and that has no entries is a 404, so a typo
// does not look like a quiet device; a refused device that never enrolled
// still has its entries shown.
func (a *API) Transcript() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id == "" {
			a.writeError(w, r, httperr.New(http.StatusBadRequest, "enrollment ID missing from the path"))
			return
		}
		after, limit, err := parseAfterLimit(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		format, err := transcriptFormat(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		entries, err := a.store.Transcript(r.Context(), id, after, limit)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if len(entries) == 0 && after == 0 {
			if _, err := a.store.GetEnrollment(r.Context(), id); errors.Is(err, store.ErrNotFound) {
				a.writeError(w, r, httperr.New(http.StatusNotFound, "no enrollment with ID %q and no transcript entries for it (GET /v1/transcript shows every entry)", truncate(id, 100)))
				return
			} else if err != nil {
				a.writeError(w, r, err)
				return
			}
		}
		a.writeTranscript(w, r, format, "mockmdm-"+safeFileName(id), entries)
	})
}

// safeFileName keeps an enrollment ID to characters a file name can hold.
func safeFileName(s string) string {
	b := []byte(truncate(s, 64))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// AllTranscript serves GET /v1/transcript?after=SEQ&limit=N: every
// enrollment's entries, and those of requests that named none.
func (a *API) AllTranscript() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, limit, err := parseAfterLimit(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		format, err := transcriptFormat(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		entries, err := a.store.Transcript(r.Context(), "", after, limit)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeTranscript(w, r, format, "mockmdm-transcript", entries)
	})
}

func transcriptJSON(entries []*store.TranscriptEntry) api.Transcript {
	out := api.Transcript{Entries: make([]api.TranscriptEntry, 0, len(entries))}
	for _, e := range entries {
		te := api.TranscriptEntry{
			Seq:          e.Seq,
			Time:         e.Time,
			EnrollmentID: e.EnrollmentID,
			RequestID:    e.RequestID,
			Kind:         e.Kind,
			MessageType:  e.MessageType,
			CommandUUID:  e.CommandUUID,
			Method:       e.Method,
			Path:         e.Path,
			HTTPStatus:   e.Status,
			Note:         e.Note,
		}
		if len(e.Request) > 0 {
			if utf8.Valid(e.Request) && !isBinaryPlist(e.Request) {
				te.RequestPlist = string(e.Request)
				if looksLikePlist(e.Request) {
					if j, err := plistToJSON(e.Request); err == nil {
						te.RequestDecoded = j
					}
				}
			} else {
				te.RequestBase64 = e.Request
			}
		}
		if len(e.Response) > 0 {
			if utf8.Valid(e.Response) && !isBinaryPlist(e.Response) {
				te.Response = string(e.Response)
			} else {
				te.ResponseBase64 = e.Response
			}
		}
		out.Entries = append(out.Entries, te)
	}
	return out
}
