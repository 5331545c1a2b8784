package ade

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/certs"
)

// apiError is an answer of the ADE API: Apple's status and bare-string body
// code (what DEP clients match on), and a reason for people, sent in the
// X-Mockmdm-Reason header and the transcript so the body stays Apple's.
type apiError struct {
	Status int
	Code   string
	Reason string
}

func (e *apiError) Error() string   { return e.Code + ": " + e.Reason }
func (e *apiError) HTTPStatus() int { return e.Status }

func apiErr(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// maxAuthHeader bounds the Authorization header we parse.
const maxAuthHeader = 4096

// oauthParam is one decoded parameter of the signature base string.
type oauthParam struct{ k, v string }

// ParseOAuthHeader decodes an "Authorization: OAuth k="v", …" header
// (RFC 5849 §3.5.1): names and values percent-decoded, realm dropped. A
// duplicated or malformed parameter is an error (Apple answers 400).
func ParseOAuthHeader(h string) (map[string]string, error) {
	if len(h) > maxAuthHeader {
		return nil, fmt.Errorf("the Authorization header is %d bytes (limit %d)", len(h), maxAuthHeader)
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "OAuth") {
		return nil, errors.New(`the Authorization header does not use the OAuth scheme ("Authorization: OAuth oauth_consumer_key=…")`)
	}
	out := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("OAuth parameter %q has no value", truncate(part, 40))
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, fmt.Errorf("OAuth parameter %s: the value must be in double quotes", truncate(k, 40))
		}
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(v[1 : len(v)-1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("OAuth parameter %s is not valid percent-encoding", truncate(k, 40))
		}
		if dk == "realm" {
			continue
		}
		if _, dup := out[dk]; dup {
			return nil, fmt.Errorf("OAuth parameter %s appears twice", truncate(dk, 40))
		}
		out[dk] = dv
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// oauthEncode is RFC 5849 §3.6 percent-encoding: unreserved characters as
// they are, everything else %XX in upper case.
func oauthEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// signatureBase is the RFC 5849 §3.4.1 signature base string.
func signatureBase(method, baseURL string, params []oauthParam) string {
	enc := make([]string, len(params))
	for i, p := range params {
		enc[i] = oauthEncode(p.k) + "=" + oauthEncode(p.v)
	}
	sort.Strings(enc) // "k=v" sorts by encoded name, then value (= sorts below every unreserved char)
	return strings.ToUpper(method) + "&" + oauthEncode(baseURL) + "&" + oauthEncode(strings.Join(enc, "&"))
}

// baseURLs are the base string URIs the client may have signed: scheme,
// lower-case host (default port dropped) and the path as requested. Behind a
// TLS-terminating proxy the client signed https while we see http, so
// X-Forwarded-Proto is honoured too.
func baseURLs(r *http.Request) []string {
	path := r.URL.EscapedPath()
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && r.RequestURI != "" {
		path = u.EscapedPath() // before any StripPrefix of the route table
	}
	schemes := []string{"http"}
	if r.TLS != nil {
		schemes[0] = "https"
	}
	if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); (p == "http" || p == "https") && p != schemes[0] {
		schemes = append(schemes, p)
	}
	var out []string
	for _, sc := range schemes {
		host := strings.ToLower(r.Host)
		if h, port, ok := strings.Cut(host, ":"); ok && !strings.Contains(port, ":") &&
			(sc == "http" && port == "80" || sc == "https" && port == "443") {
			host = h
		}
		out = append(out, sc+"://"+host+path)
	}
	return out
}

// authenticate checks the OAuth 1.0a HMAC-SHA1 signature of a /session
// request and returns the token it was signed with.
func (s *Service) authenticate(ctx context.Context, r *http.Request) (*certs.ADEToken, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "no Authorization header: sign GET /session with OAuth 1.0a HMAC-SHA1 using the server token's consumer and access credentials")
	}
	hp, err := ParseOAuthHeader(h)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "%v", err)
	}
	var missing []string
	for _, k := range []string{"oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_signature", "oauth_timestamp", "oauth_nonce"} {
		if hp[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "the OAuth header lacks %s", strings.Join(missing, ", "))
	}
	if hp["oauth_signature_method"] != "HMAC-SHA1" {
		return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "oauth_signature_method is %q; Apple supports HMAC-SHA1 only", hp["oauth_signature_method"])
	}
	if v, ok := hp["oauth_version"]; ok && v != "1.0" {
		return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "oauth_version is %q, want 1.0", v)
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "the query string is malformed: %v", err)
	}
	var params []oauthParam
	for k, v := range hp {
		if k != "oauth_signature" {
			params = append(params, oauthParam{k, v})
		}
	}
	for k, vs := range query {
		if strings.HasPrefix(k, "oauth_") {
			if _, dup := hp[k]; dup {
				return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "OAuth parameter %s is both in the header and the query", truncate(k, 40))
			}
		}
		for _, v := range vs {
			params = append(params, oauthParam{k, v})
		}
	}

	tok, err := s.issuedToken(ctx, hp["oauth_token"])
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "oauth_token %s… is not an access token this ABM issued (generate a server token first)", truncate(hp["oauth_token"], 8))
	}
	if tok.ConsumerKey != hp["oauth_consumer_key"] {
		return nil, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "oauth_consumer_key %s… does not belong to the access token's server token (%s…)", truncate(hp["oauth_consumer_key"], 8), truncate(tok.ConsumerKey, 8))
	}
	now := s.now()
	if !tok.AccessTokenExpiry.After(now) {
		return nil, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "the server token expired at %s: download a new one", tok.AccessTokenExpiry.UTC().Format(time.RFC3339))
	}
	key := oauthEncode(tok.ConsumerSecret) + "&" + oauthEncode(tok.AccessSecret)
	got, err := base64.StdEncoding.DecodeString(hp["oauth_signature"])
	if err != nil {
		return nil, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "oauth_signature is not base64")
	}
	ok := false
	var tried []string
	for _, u := range baseURLs(r) {
		m := hmac.New(sha1.New, []byte(key))
		base := signatureBase(r.Method, u, params)
		m.Write([]byte(base))
		if hmac.Equal(m.Sum(nil), got) {
			ok = true
			break
		}
		tried = append(tried, u)
	}
	if !ok {
		return nil, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "oauth_signature does not match: signed base string URI must be %s, with the consumer secret and access secret of the server token", strings.Join(tried, " or "))
	}
	ts, err := strconv.ParseInt(hp["oauth_timestamp"], 10, 64)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "BAD_REQUEST", "oauth_timestamp %q is not seconds since 1970", truncate(hp["oauth_timestamp"], 20))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > s.skew || d < -s.skew {
		return nil, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "oauth_timestamp is %s away from the server clock (window %s)", d.Round(time.Second), s.skew)
	}
	if !s.useNonce(tok.ConsumerKey+"\x00"+hp["oauth_nonce"], now) {
		return nil, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "oauth_nonce %q was already used: every /session request needs a fresh nonce", truncate(hp["oauth_nonce"], 40))
	}
	return tok, nil
}

// useNonce records a nonce, refusing one seen within the timestamp window.
func (s *Service) useNonce(n string, now time.Time) bool {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if len(s.nonces) > 1024 {
		for k, t := range s.nonces {
			if now.Sub(t) > 2*s.skew {
				delete(s.nonces, k)
			}
		}
	}
	if t, seen := s.nonces[n]; seen && now.Sub(t) <= 2*s.skew {
		return false
	}
	s.nonces[n] = now
	return true
}

func (s *Service) issuedToken(ctx context.Context, accessToken string) (*certs.ADEToken, error) {
	if accessToken == "" || len(accessToken) > 512 {
		return nil, nil
	}
	return getJSON[certs.ADEToken](ctx, s, KindToken, accessToken)
}

// session is an auth session token's record (memory only).
type session struct {
	consumerKey string
	issued      time.Time
	expires     time.Time
}

func (s *Service) newSession(consumerKey string) string {
	now := s.now()
	id := randomToken(24)
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	for k, v := range s.sessions {
		if !now.Before(v.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = &session{consumerKey: consumerKey, issued: now, expires: now.Add(s.sessionTTL)}
	return id
}

// checkSession validates X-ADM-Auth-Session and returns a rotated token when
// the session is past half its life (empty otherwise).
func (s *Service) checkSession(r *http.Request, q Quirks) (rotated string, err error) {
	id := r.Header.Get("X-ADM-Auth-Session")
	if id == "" {
		return "", apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "no X-ADM-Auth-Session header: call GET /session first")
	}
	now := s.now()
	s.sessMu.Lock()
	sess, ok := s.sessions[id]
	s.sessMu.Unlock()
	if !ok {
		if q.RestartInvalidatesSessions {
			return "", apiErr(http.StatusForbidden, "FORBIDDEN", "unknown session (the server restarted); authenticate again at /session")
		}
		return "", apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "unknown X-ADM-Auth-Session; authenticate again at /session")
	}
	if !now.Before(sess.expires) {
		return "", apiErr(http.StatusUnauthorized, "UNAUTHORIZED", "the session expired at %s; authenticate again at /session", sess.expires.UTC().Format(time.RFC3339))
	}
	if now.Sub(sess.issued) >= s.sessionTTL/2 {
		return s.newSession(sess.consumerKey), nil
	}
	return "", nil
}
