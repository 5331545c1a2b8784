package httpx

import (
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

// RequireJSON refuses, with a 415 that says what to send, a request whose
// Content-Type is missing or not JSON (application/json or +json). The
// REST API's handlers all apply this one rule.
func RequireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return httperr.New(http.StatusUnsupportedMediaType, "Content-Type missing: send the body as JSON with \"Content-Type: application/json\"")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		if len(ct) > 100 {
			n := 100
			for n > 0 && !utf8.RuneStart(ct[n]) {
				n--
			}
			ct = ct[:n] + "…"
		}
		return httperr.New(http.StatusUnsupportedMediaType, "Content-Type %q is not JSON: send \"Content-Type: application/json\"", ct)
	}
	return nil
}
