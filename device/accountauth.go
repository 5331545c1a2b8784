package device

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// An account-driven enrollment keeps authenticating its user after it
// enrolls (PROTOCOL.md §6 step 7): the device sends the access token from
// its sign-in as Authorization: Bearer with every check-in and command
// request, and when the server answers 401 with a WWW-Authenticate Bearer
// challenge — the token has expired, say — the device signs the person in
// again at the challenge's URL, takes the new token and sends the request
// again. A 401 without the challenge still unenrolls, as on Apple devices.
// The virtual device signs in again with the credentials it enrolled with
// (a new password, if the first sign-in set one).

// accountAuth is an account-driven enrollment's user authentication.
type accountAuth struct {
	token string
	creds Credentials
}

// AccountAccessToken is the access token an account-driven enrollment
// sends with its MDM requests ("" for other enrollments).
func (d *Device) AccountAccessToken() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.st.account == nil {
		return ""
	}
	return d.st.account.token
}

// bearerHeader is the Authorization header of an access token.
func bearerHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// sendMDM is send for the MDM server's check-in and command URLs: it adds
// an account-driven enrollment's access token, and answers a 401 that
// challenges for it by signing the user in again and retrying once.
func (d *Device) sendMDM(ctx context.Context, step, method, target, ctype string, body []byte, signer *identity) (*reply, error) {
	d.mu.RLock()
	auth := d.st.account
	d.mu.RUnlock()
	if auth == nil {
		return d.send(ctx, step, method, target, ctype, body, signer)
	}
	r, err := d.sendWith(ctx, step, method, target, ctype, body, signer, bearerHeader(auth.token))
	if err != nil || r.status != http.StatusUnauthorized {
		return r, err
	}
	signin, ok := signInChallenge(r)
	if !ok {
		return r, nil // no challenge: the caller unenrolls, as a device does
	}
	tok, err := d.signInForToken(ctx, "account-driven re-authentication", signin, auth.creds)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.st.account != nil {
		d.st.account = &accountAuth{token: tok, creds: auth.creds}
	}
	d.mu.Unlock()
	d.log.Info("signed the account-driven enrollment's user in again", "step", step)
	step += " (after re-authentication)"
	r, err = d.sendWith(ctx, step, method, target, ctype, body, signer, bearerHeader(tok))
	if _, again := signInChallenge(r); err == nil && r.status == http.StatusUnauthorized && again {
		// Refused again straight after a sign-in the server accepted: stop
		// here rather than sign in forever, and stay enrolled (the 401
		// asked for authentication, not for the device to leave).
		return nil, serverError(step, method, target, r, "the server asked for re-authentication again right after a new sign-in")
	}
	return r, err
}

// signInChallenge is the sign-in URL of a reply's account-driven challenge
// (WWW-Authenticate: Bearer method="apple-as-web", url=…), if it has one.
func signInChallenge(r *reply) (string, bool) {
	scheme, signin, ok := ParseAuthenticate(r.header.Get("WWW-Authenticate"))
	return signin, ok && scheme == "apple-as-web" && signin != ""
}

// signInForToken signs in at an account-driven sign-in page and returns
// the access token from the page's redirect to Apple's callback.
func (d *Device) signInForToken(ctx context.Context, step, page string, creds Credentials) (string, error) {
	r, err := d.browser().signInForm(ctx, step, page, creds)
	if err != nil {
		return "", err
	}
	loc := r.header.Get("Location")
	if r.status != http.StatusFound || !strings.HasPrefix(loc, adCallbackPrefix) {
		return "", refusal(step, r)
	}
	tok := ""
	if cb, err := url.Parse(loc); err == nil {
		tok = cb.Query().Get("access-token")
	}
	if tok == "" {
		return "", &EnrollError{Step: step, StatusCode: r.status, Code: "bad_callback", Message: "the callback " + loc + " has no access-token"}
	}
	return tok, nil
}

// reauthCredentials are the credentials to sign in with again: after a
// sign-in that changed an expired password, the new one.
func reauthCredentials(c Credentials) Credentials {
	if c.NewPassword != "" {
		c.Password, c.NewPassword = c.NewPassword, ""
	}
	return c
}
