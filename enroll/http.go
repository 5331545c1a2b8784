package enroll

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// Route is one HTTP route of the enrollment programs; the server mounts
// each (behind the API key for AdminRoutes). Handlers read path values
// with r.PathValue.
type Route struct {
	Method, Path string
	Handler      http.Handler
}

// maxBody bounds every request body these routes read: a directory config
// is the largest, and a test organisation fits well within 1 MiB.
const maxBody = 1 << 20

// writeError answers with err as JSON {code, message}: the rule's code for
// an enrollment refusal, "not_found" for a missing record, "invalid" for
// another 4xx and "internal" (with a generic message) for the rest.
func writeError(w http.ResponseWriter, err error) {
	status := httperr.StatusOf(err)
	body := Error{Code: "internal", Message: httperr.ReasonOf(err)}
	if e, ok := ErrorOf(err); ok {
		body.Code, body.Message, status = e.Code, err.Error(), e.Status
		if e2, ok := err.(*Error); ok {
			body.Message = e2.Message
		}
	} else if errors.Is(err, store.ErrNotFound) {
		status, body.Code, body.Message = http.StatusNotFound, "not_found", err.Error()
	} else if status < 500 {
		body.Code = CodeInvalid
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// readJSON decodes a bounded JSON body into v, refusing unknown fields and
// trailing data so a typo in a test's request is named, not ignored.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("the request body is not the expected JSON: %v", err)
	}
	if dec.More() {
		return invalid("the request body has data after its JSON value")
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refuse(http.StatusRequestEntityTooLarge, CodeInvalid, "the request body is larger than %d bytes", maxBody)
		}
		return nil, invalid("reading the request body: %v", err)
	}
	return b, nil
}

// requireJSON refuses a body declared as something other than JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return refuse(http.StatusUnsupportedMediaType, CodeInvalid, "Content-Type %q: send application/json", ct)
	}
	return nil
}

// maxTokenLen bounds a bearer token: ours are 32 characters, and nothing
// longer than this is worth a store lookup.
const maxTokenLen = 512

// ParseBearer returns the token of an Authorization header value
// "Bearer <token>" (RFC 6750 §2.1: the scheme is case-insensitive, the
// token is token68). ok is false for anything else, including an empty or
// oversized token, so a caller answers one 401 for every malformed header.
func ParseBearer(header string) (token string, ok bool) {
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" || len(token) > maxTokenLen {
		return "", false
	}
	for i, c := range token {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("-._~+/", c):
		case c == '=' && strings.Trim(token[i:], "=") == "":
		default:
			return "", false
		}
	}
	return token, true
}

// bearerOf is the token of r's Authorization header, "" when there is none
// or it is malformed.
func bearerOf(r *http.Request) string {
	tok, _ := ParseBearer(r.Header.Get("Authorization"))
	return tok
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
