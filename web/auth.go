package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cookie names. The session cookie holds "<expiry>.<mac>", an HMAC under a
// key derived from the API key: it proves a login without holding the key.
// The login cookie is a random value the login form's CSRF token is bound
// to (double submit), since there is no session yet to bind it to.
const (
	sessionCookie = "mockmdm_session"
	loginCookie   = "mockmdm_login"
	csrfField     = "csrf"
	// maxFormBody bounds a dashboard form: a key, a token, a command name.
	maxFormBody = 16 << 10
)

type ctxKey int

const sessionCtx ctxKey = 0

// mac is the HMAC of the parts under the session key, base64url.
func (d *Dashboard) mac(parts ...string) string {
	m := hmac.New(sha256.New, d.sessionKey)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// equal compares two strings in constant time (over their SHA-256, so the
// length leaks nothing either).
func equal(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// newSession returns a session value valid until now+ttl.
func (d *Dashboard) newSession() string {
	exp := strconv.FormatInt(d.now().Add(d.sessionTTL).Unix(), 10)
	return exp + "." + d.mac("session", exp)
}

// validSession reports whether v is a session this dashboard issued and
// that has not expired.
func (d *Dashboard) validSession(v string) bool {
	exp, sum, ok := strings.Cut(v, ".")
	if !ok || len(v) > 200 {
		return false
	}
	if !equal(sum, d.mac("session", exp)) {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && d.now().Unix() < n
}

// csrfToken is the CSRF token of a session: forms carry it, and only a
// page served to that session knows it.
func (d *Dashboard) csrfToken(session string) string { return d.mac("csrf", session) }

// secure reports whether cookies should be Secure: the request came over
// TLS, or through a proxy that says it did.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: PathPrefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

// auth lets a request with a valid session through; any other gets the
// login form (a page) or a 401 (a fragment fetched by the refresh script).
func (d *Dashboard) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || !d.validSession(c.Value) {
			if r.Method == http.MethodGet && r.Header.Get("X-Dashboard-Fragment") == "" {
				http.Redirect(w, r, PathLogin+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			d.renderError(w, r, http.StatusUnauthorized, "Your dashboard session has ended or is missing: log in again with the API key.")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionCtx, c.Value)))
	})
}

// sessionOf is the session value auth let through ("" outside auth).
func sessionOf(r *http.Request) string {
	s, _ := r.Context().Value(sessionCtx).(string)
	return s
}

// sameOrigin refuses a POST whose Origin names another site: a second
// line behind the CSRF token and the SameSite cookie.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// parseForm reads a bounded urlencoded form.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	return r.ParseForm()
}

// csrf refuses a POST without the session's CSRF token (403).
func (d *Dashboard) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(w, r); err != nil {
			d.renderError(w, r, http.StatusBadRequest, "The form could not be read ("+err.Error()+"); reload the page and try again.")
			return
		}
		if !sameOrigin(r) || !equal(r.PostForm.Get(csrfField), d.csrfToken(sessionOf(r))) {
			d.renderError(w, r, http.StatusForbidden, "The form's security token is missing or stale (the page may be from an earlier session): reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safeNext keeps a post-login redirect on the dashboard.
func safeNext(next string) string {
	if next == PathPrefix || (strings.HasPrefix(next, PathPrefix+"/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n")) {
		if u, err := url.Parse(next); err == nil && u.Host == "" && u.Scheme == "" {
			return next
		}
	}
	return PathPrefix
}

type loginView struct {
	CSRF, Next, Message string
}

// serveLoginForm shows the login form, with a fresh login cookie the
// form's CSRF token is bound to.
func (d *Dashboard) serveLoginForm(w http.ResponseWriter, r *http.Request) {
	d.renderLogin(w, r, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	var b [18]byte
	_, _ = rand.Read(b[:])
	nonce := base64.RawURLEncoding.EncodeToString(b[:])
	d.setCookie(w, r, loginCookie, nonce, 3600)
	d.render(w, r, status, "login", "Log in", loginView{CSRF: d.mac("login", nonce), Next: next, Message: msg})
}

// serveLogin checks the API key typed into the form. A wrong key gets the
// form again with a 401 and a message; a right one, the session cookie.
func (d *Dashboard) serveLogin(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		d.renderLogin(w, r, http.StatusBadRequest, PathPrefix, "The form could not be read ("+err.Error()+"); try again.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !equal(r.PostForm.Get(csrfField), d.mac("login", c.Value)) {
		d.log.InfoContext(r.Context(), "dashboard login refused: CSRF token missing or stale")
		d.renderLogin(w, r, http.StatusForbidden, next, "The login form was stale or came from another page; it has been reloaded: type the key again.")
		return
	}
	key := r.PostForm.Get("key")
	// The typed key is compared through the derived session key, in
	// constant time, and never logged.
	mac := hmac.New(sha256.New, []byte(strings.TrimSpace(key)))
	mac.Write([]byte("mockmdm dashboard session v1"))
	if key == "" || subtle.ConstantTimeCompare(mac.Sum(nil), d.sessionKey) != 1 {
		d.log.InfoContext(r.Context(), "dashboard login refused: wrong API key")
		d.renderLogin(w, r, http.StatusUnauthorized, next, "That is not the API key. The key is printed when the server starts (and kept in the data directory).")
		return
	}
	d.setCookie(w, r, loginCookie, "", -1)
	d.setCookie(w, r, sessionCookie, d.newSession(), int(d.sessionTTL/time.Second))
	d.log.InfoContext(r.Context(), "dashboard login")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// serveLogout ends the session in this browser.
func (d *Dashboard) serveLogout(w http.ResponseWriter, r *http.Request) {
	d.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, PathLogin, http.StatusSeeOther)
}
