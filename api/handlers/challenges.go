package handlers

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
)

// Challenge lifetimes.
const (
	defaultChallengeTTL = time.Hour
	maxChallengeTTL     = 30 * 24 * time.Hour
)

// MintChallenge serves POST /v1/scep/challenges: a one-time SCEP challenge
// password, for an enrollment profile that must not reuse the static one.
func (a *API) MintChallenge() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.MintChallengeRequest
		if err := a.decodeJSONBody(w, r, &req, true); err != nil {
			a.writeError(w, r, err)
			return
		}
		ttl := defaultChallengeTTL
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil || d <= 0 || d > maxChallengeTTL {
				a.writeError(w, r, httperr.New(http.StatusBadRequest, "ttl %q: must be a duration such as \"15m\" or \"24h\", more than 0 and at most %s (30 days)", truncate(req.TTL, 40), "720h"))
				return
			}
			ttl = d
		}
		challenge := newChallenge()
		expires := a.now().UTC().Add(ttl).Truncate(time.Second)
		if err := a.store.PutChallenge(r.Context(), challenge, expires); err != nil {
			a.writeError(w, r, err)
			return
		}
		a.log.InfoContext(r.Context(), "SCEP challenge minted", "expires_at", expires)
		a.writeJSON(w, r, http.StatusCreated, api.Challenge{Challenge: challenge, ExpiresAt: expires})
	})
}

// newChallenge returns 32 URL-safe characters (192 random bits), safe to
// put in a profile, a URL or a shell command unquoted.
func newChallenge() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
