package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

var errEOF = io.EOF

// jsonError turns a decoding error into a 4xx that says what to fix.
func (a *API) jsonError(err error, optional bool) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return httperr.New(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", a.maxBody)
	case errors.Is(err, io.EOF):
		if optional {
			return nil
		}
		return httperr.New(http.StatusBadRequest, "request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return httperr.New(http.StatusBadRequest, "request body is truncated: the JSON object does not end")
	case errors.As(err, &syntaxErr):
		return httperr.New(http.StatusBadRequest, "request body is not valid JSON: %s (at byte %d)", syntaxErr.Error(), syntaxErr.Offset)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return httperr.New(http.StatusBadRequest, "request body must be a JSON object, got a JSON %s", typeErr.Value)
		}
		return httperr.New(http.StatusBadRequest, "field %q must be %s, got a JSON %s", field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return httperr.New(http.StatusBadRequest, "unknown field %s in the request body (check its spelling; docs/openapi.yaml lists the fields)", f)
	}
	return httperr.New(http.StatusBadRequest, "request body is not valid JSON: %s", strings.TrimPrefix(msg, "json: "))
}

// jsonTypeName says a Go kind as a JSON type.
func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return "a " + kind
}

// Query bounds for the transcript.
const (
	defaultTranscriptLimit = 500
	maxTranscriptLimit     = 5000
	// maxWait is the longest a GetCommand long-poll may hold a request.
	maxWait = 120 * time.Second
)

// parseAfterLimit reads ?after=SEQ&limit=N.
func parseAfterLimit(r *http.Request) (after int64, limit int, err error) {
	q := r.URL.Query()
	limit = defaultTranscriptLimit
	if s := q.Get("after"); s != "" {
		after, err = strconv.ParseInt(s, 10, 64)
		if err != nil || after < 0 {
			return 0, 0, httperr.New(http.StatusBadRequest, "after=%q: must be a sequence number, a whole number ≥ 0 (the seq of the last entry you have)", truncate(s, 40))
		}
	}
	if s := q.Get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > maxTranscriptLimit {
			return 0, 0, httperr.New(http.StatusBadRequest, "limit=%q: must be a whole number from 1 to %d (default %d)", truncate(s, 40), maxTranscriptLimit, defaultTranscriptLimit)
		}
		limit = n
	}
	return after, limit, nil
}

// parseWait reads ?wait=: a Go duration ("30s", "1m") or a number of
// seconds ("30", "2.5"), from 0 to maxWait.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	bad := func() error {
		return httperr.New(http.StatusBadRequest, "wait=%q: must be a duration such as \"30s\" or a number of seconds, from 0 to %s", truncate(s, 40), maxWait)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		// ParseFloat accepts "NaN", "Inf" and hex; a wait is a plain number.
		if ferr != nil || secs != secs || strings.ContainsAny(s, "xXpPnNiI") {
			return 0, bad()
		}
		if secs < 0 || secs > maxWait.Seconds() {
			return 0, httperr.New(http.StatusBadRequest, "wait=%q: must be from 0 to %s", truncate(s, 40), maxWait)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || d > maxWait {
		return 0, httperr.New(http.StatusBadRequest, "wait=%q: must be from 0 to %s", truncate(s, 40), maxWait)
	}
	return d, nil
}

// truncate shortens s for an error message, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// listNames formats up to a few names for an error message.
func listNames(names []string) string {
	const show = 10
	quoted := make([]string, 0, min(len(names), show))
	for i, n := range names {
		if i == show {
			break
		}
		quoted = append(quoted, strconv.Quote(truncate(n, 80)))
	}
	s := strings.Join(quoted, ", ")
	if len(names) > show {
		s += " and " + strconv.Itoa(len(names)-show) + " more"
	}
	return s
}
