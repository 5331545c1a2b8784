package ade

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// Apple's "Get Beta Enrollment Tokens" (GET /os-beta-enrollment/tokens)
// gives the MDM server the organisation's OS beta programs, whose tokens
// it then offers or requires in a declarative software update settings
// configuration. mockmdm's organisation has the programs a tester sets
// (PUT /v1/ade/beta-tokens), none at first.
//
// Sources: the endpoint and the GetSeedBuildTokenResponse / SeedBuildToken
// objects as NanoDEP v0.7.0's godep generates them from Apple's schema
// (betaEnrollmentTokens: [{title, os, token}], os one of homePodOS, iOS,
// OSX, tvOS, visionOS, watchOS; the older seedBuildTokens key is answered
// alike).

// BetaToken is one OS beta program of the organisation.
type BetaToken struct {
	Title string `json:"title"`
	OS    string `json:"os"`
	Token string `json:"token"`
}

// betaOSValues are SeedBuildToken's os values.
var betaOSValues = []string{"homePodOS", "iOS", "OSX", "tvOS", "visionOS", "watchOS"}

// maxBetaTokens bounds the list a tester sets.
const maxBetaTokens = 100

// BetaTokensResponse is Apple's GetSeedBuildTokenResponse.
type BetaTokensResponse struct {
	BetaEnrollmentTokens []BetaToken `json:"betaEnrollmentTokens"`
	SeedBuildTokens      []BetaToken `json:"seedBuildTokens"`
}

func (s *Service) handleBetaTokens(ctx context.Context, _ *http.Request, _ []byte) (any, error) {
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	list := betaTokensOf(st)
	return BetaTokensResponse{BetaEnrollmentTokens: list, SeedBuildTokens: list}, nil
}

// ParseBetaTokens decodes and checks a PUT /v1/ade/beta-tokens body,
// {"tokens": [{"title", "os", "token"}]}.
func ParseBetaTokens(body []byte) ([]BetaToken, error) {
	var req struct {
		Tokens []BetaToken `json:"tokens"`
	}
	if err := decodeKnown(body, &req, `{"tokens": [{"title", "os", "token"}]}`); err != nil {
		return nil, err
	}
	return req.Tokens, checkBetaTokens(req.Tokens)
}

// SetBetaTokens replaces the organisation's OS beta programs.
func (s *Service) SetBetaTokens(ctx context.Context, list []BetaToken) error {
	if err := checkBetaTokens(list); err != nil {
		return err
	}
	return s.updateState(ctx, func(st *serverState) error {
		st.BetaTokens = slices.Clone(list)
		return nil
	})
}

// checkBetaTokens holds a list to SeedBuildToken's os values, non-empty
// titles and tokens, and bounded sizes.
func checkBetaTokens(list []BetaToken) error {
	if len(list) > maxBetaTokens {
		return apiErr(http.StatusBadRequest, "BETA_TOKENS_INVALID", "%d beta programs; at most %d", len(list), maxBetaTokens)
	}
	for i, b := range list {
		switch {
		case strings.TrimSpace(b.Title) == "" || strings.TrimSpace(b.Token) == "":
			return apiErr(http.StatusBadRequest, "BETA_TOKENS_INVALID", "beta program %d needs a title and a token", i)
		case !slices.Contains(betaOSValues, b.OS):
			return apiErr(http.StatusBadRequest, "BETA_TOKENS_INVALID", "beta program %d: os %q is not one of %s", i, truncate(b.OS, 40), strings.Join(betaOSValues, ", "))
		case len(b.Title) > 256 || len(b.Token) > 1024:
			return apiErr(http.StatusBadRequest, "BETA_TOKENS_INVALID", "beta program %d: title over 256 or token over 1024 bytes", i)
		}
	}
	return nil
}

func (s *Service) adminSetBetaTokens(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	list, err := ParseBetaTokens(body)
	if err == nil {
		err = s.SetBetaTokens(r.Context(), list)
	}
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
}

func (s *Service) adminGetBetaTokens(w http.ResponseWriter, r *http.Request) {
	st, err := s.loadState(r.Context())
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": betaTokensOf(st)})
}

// betaTokensOf is the state's programs, an empty list (not null) for none.
func betaTokensOf(st *serverState) []BetaToken {
	if st.BetaTokens == nil {
		return []BetaToken{}
	}
	return st.BetaTokens
}
