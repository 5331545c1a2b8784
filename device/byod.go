package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.mozilla.org/pkcs7"

	"github.com/mockmdm/mockmdm/profiles"
)

// BYOD enrollment paths, driven over HTTP the way the Company Portal app,
// Safari and the account-driven enrollment sheet do it. The device knows
// the server's paths but nothing of its code.

// Paths of the server's BYOD endpoints, relative to its base URL.
const (
	portalAPI          = "/portal/v1"
	webEnrollPath      = "/enroll/web"
	wellKnownPath      = "/.well-known/com.apple.remotemanagement"
	adCallbackPrefix   = "apple-remotemanagement-user-login://authentication-results"
	ticketHeader       = "Mockmdm-Ticket"
	wellKnownFailedStr = "com.apple.well-known.failed"
)

// Credentials are what the person types at a sign-in.
type Credentials struct {
	UPN         string `json:"upn"`
	Password    string `json:"password"`
	MFACode     string `json:"mfa_code,omitempty"`
	NewPassword string `json:"new_password,omitempty"`
}

// Choice answers the Company Portal's questions: Ownership "corporate" or
// "personal", then for a personal device Scope "device" or "work".
type Choice struct {
	Ownership string `json:"ownership,omitempty"`
	Scope     string `json:"scope,omitempty"`
}

// EnrollError is a BYOD step the server refused, with the code of the rule
// that refused it ("wrong_password", "no_enrollment_type_profile", or
// com.apple.well-known.failed at discovery) and its message.
type EnrollError struct {
	Step       string
	StatusCode int
	Code       string
	Message    string
}

func (e *EnrollError) Error() string {
	return fmt.Sprintf("device: %s refused (%d %s): %s", e.Step, e.StatusCode, e.Code, e.Message)
}

// HTTPStatus is the server's status: the refusal is the caller's input
// (credentials, choice), so it is passed on as it came.
func (e *EnrollError) HTTPStatus() int { return e.StatusCode }

// BYODResult is what a BYOD enrollment did: the profile installation and
// the ticket the server issued.
type BYODResult struct {
	*InstallResult
	Ticket string
}

// browser is a minimal Safari: it keeps cookies, follows no redirect by
// itself (the caller reads each one), and records every exchange in the
// device's transcript.
type browser struct {
	d       *Device
	doer    Doer
	cookies map[string]string
}

func (d *Device) browser() *browser {
	doer := d.doer
	if c, ok := doer.(*http.Client); ok {
		cc := *c
		cc.Jar = nil
		cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		doer = &cc
	}
	return &browser{d: d, doer: doer, cookies: map[string]string{}}
}

func (b *browser) do(ctx context.Context, step, method, target, ctype string, body []byte, header http.Header) (*reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(withStep(ctx, step), method, target, rd)
	if err != nil {
		return nil, &ExchangeError{Step: step, URL: target, Reason: "the URL cannot be requested", Err: err}
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range header {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	var cs []string
	for k, v := range b.cookies {
		cs = append(cs, k+"="+v)
	}
	if len(cs) > 0 {
		req.Header.Set("Cookie", strings.Join(cs, "; "))
	}
	d := b.d
	if d.isOffline() {
		return nil, offlineError(step, target)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.requestTimeout)
		defer cancel()
		req = req.WithContext(withStep(ctx, step))
	}
	ex := Exchange{Time: d.now(), Step: step, Method: method, URL: target, RequestHeader: req.Header.Clone(), Request: body}
	start := time.Now()
	resp, err := b.doer.Do(req)
	if err != nil {
		ex.Duration, ex.Err = time.Since(start), err.Error()
		d.record(ex)
		return nil, &ExchangeError{Step: step, URL: target, Err: err}
	}
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	resp.Body.Close()
	ex.Duration, ex.StatusCode, ex.ResponseHeader, ex.Response = time.Since(start), resp.StatusCode, resp.Header.Clone(), rb
	d.record(ex)
	if err != nil || len(rb) > maxResponse {
		return nil, &ExchangeError{Step: step, URL: target, Reason: "reading the response", Err: err}
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: rb}, nil
}

// refusal turns a non-success reply into an *EnrollError: the JSON
// {code, message} of an API, the error box of a page, or the status alone.
func refusal(step string, r *reply) error {
	e := &EnrollError{Step: step, StatusCode: r.status, Code: "http_" + fmt.Sprint(r.status), Message: strings.TrimSpace(string(r.body))}
	var j struct{ Code, Message, Description string }
	if json.Unmarshal(r.body, &j) == nil && j.Code != "" {
		e.Code, e.Message = j.Code, j.Message
		if e.Message == "" {
			e.Message = j.Description
		}
		return e
	}
	if m := pageError.FindSubmatch(r.body); m != nil {
		e.Message, e.Code = html.UnescapeString(string(m[1])), html.UnescapeString(string(m[2]))
	}
	if len(e.Message) > 512 {
		e.Message = e.Message[:512]
	}
	return e
}

var (
	pageError   = regexp.MustCompile(`(?s)<div class="error" role="alert"><strong>(.*?)</strong><br><code>(.*?)</code></div>`)
	csrfField   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	profileLink = regexp.MustCompile(`id="profile" href="([^"]+)"`)
)

func isProfile(r *reply) bool {
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	return err == nil && mt == profiles.ContentType
}

func (d *Device) installBYOD(ctx context.Context, step string, r *reply) (*BYODResult, error) {
	if r.status != http.StatusOK || !isProfile(r) {
		if r.status == http.StatusOK {
			return nil, &EnrollError{Step: step, StatusCode: r.status, Code: "not_a_profile", Message: "served as Content-Type " + r.header.Get("Content-Type") + ", not " + profiles.ContentType}
		}
		return nil, refusal(step, r)
	}
	res, err := d.install(ctx, r.body, false)
	if err != nil {
		return nil, err
	}
	return &BYODResult{InstallResult: res, Ticket: r.header.Get(ticketHeader)}, nil
}

// CompanyPortalEnroll is the Company Portal app (seed 002): sign in with
// the organisation account, answer the choice, download the enrollment
// profile and install it, which enrolls the device.
func (d *Device) CompanyPortalEnroll(ctx context.Context, baseURL string, creds Credentials, choice Choice) (*BYODResult, error) {
	d.op.Lock()
	defer d.op.Unlock()
	base := strings.TrimRight(baseURL, "/")
	b := d.browser()
	body, _ := json.Marshal(creds)
	r, err := b.do(ctx, "company portal sign-in", http.MethodPost, base+portalAPI+"/signin", "application/json", body, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, refusal("company portal sign-in", r)
	}
	var sess struct{ Token string }
	if json.Unmarshal(r.body, &sess) != nil || sess.Token == "" {
		return nil, &EnrollError{Step: "company portal sign-in", StatusCode: r.status, Code: "bad_reply", Message: "the sign-in answer has no token"}
	}
	// The app knows whether the device is enrolled already, and says so:
	// the server refuses a second enrollment (a User Enrollment cannot
	// switch to device enrollment without unenrolling).
	req := struct {
		Choice
		CurrentEnrollmentID string `json:"current_enrollment_id,omitempty"`
	}{Choice: choice}
	d.mu.RLock()
	if e := d.st.enrollment; e != nil {
		req.CurrentEnrollmentID = d.hw.UDID
		if e.userEnrollment {
			req.CurrentEnrollmentID = d.hw.EnrollmentID
		}
	}
	d.mu.RUnlock()
	body, _ = json.Marshal(req)
	r, err = b.do(ctx, "company portal enroll", http.MethodPost, base+portalAPI+"/enroll", "application/json", body,
		http.Header{"Authorization": {"Bearer " + sess.Token}})
	if err != nil {
		return nil, err
	}
	return d.installBYOD(ctx, "company portal enroll", r)
}

// RegisterCompanyPortal signs in to the Company Portal on the enrolled
// device, which registers it with the organisation (seed 000). It returns
// the server's view of the enrollment's management.
func (d *Device) RegisterCompanyPortal(ctx context.Context, baseURL string, creds Credentials) (map[string]any, error) {
	d.op.Lock()
	defer d.op.Unlock()
	e := d.Enrollment()
	if e == nil {
		return nil, ErrNotEnrolled
	}
	id := d.hw.UDID
	if e.UserEnrollment {
		id = d.hw.EnrollmentID
	}
	req := struct {
		EnrollmentID string `json:"enrollment_id"`
		Credentials
	}{id, creds}
	body, _ := json.Marshal(req)
	r, err := d.browser().do(ctx, "company portal register", http.MethodPost, strings.TrimRight(baseURL, "/")+portalAPI+"/register", "application/json", body, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, refusal("company portal register", r)
	}
	var out struct {
		Management map[string]any `json:"management"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		return nil, &ExchangeError{Step: "company portal register", URL: baseURL, Reason: "the answer is not JSON", Err: err}
	}
	return out.Management, nil
}

// signInForm fills and posts a sign-in page (GET it for its CSRF token
// first). It returns the reply to the POST.
func (b *browser) signInForm(ctx context.Context, step, pageURL string, creds Credentials) (*reply, error) {
	r, err := b.do(ctx, step+" page", http.MethodGet, pageURL, "", nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, refusal(step+" page", r)
	}
	m := csrfField.FindSubmatch(r.body)
	if m == nil {
		return nil, &EnrollError{Step: step + " page", StatusCode: r.status, Code: "bad_page", Message: "the sign-in page has no CSRF field"}
	}
	form := url.Values{"csrf": {html.UnescapeString(string(m[1]))}, "upn": {creds.UPN}, "password": {creds.Password}}
	if creds.MFACode != "" {
		form.Set("mfa_code", creds.MFACode)
	}
	if creds.NewPassword != "" {
		form.Set("new_password", creds.NewPassword)
	}
	return b.do(ctx, step, http.MethodPost, pageURL, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
}

// resolve makes a page's link absolute.
func resolve(base, ref string) string {
	bu, err := url.Parse(base)
	if err != nil {
		return ref
	}
	ru, err := url.Parse(html.UnescapeString(ref))
	if err != nil {
		return ref
	}
	return bu.ResolveReference(ru).String()
}

// WebEnroll is web-based device enrollment (iOS 15+) in Safari: sign in on
// the page, continue, download the profile and install it.
func (d *Device) WebEnroll(ctx context.Context, baseURL string, creds Credentials) (*BYODResult, error) {
	d.op.Lock()
	defer d.op.Unlock()
	page := strings.TrimRight(baseURL, "/") + webEnrollPath
	b := d.browser()
	r, err := b.signInForm(ctx, "web enrollment sign-in", page, creds)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusSeeOther {
		return nil, refusal("web enrollment sign-in", r)
	}
	next := resolve(page, r.header.Get("Location"))
	if r, err = b.do(ctx, "web enrollment options", http.MethodGet, next, "", nil, nil); err != nil {
		return nil, err
	}
	m := csrfField.FindSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		return nil, refusal("web enrollment options", r)
	}
	form := url.Values{"csrf": {string(m[1])}}
	if r, err = b.do(ctx, "web enrollment continue", http.MethodPost, page+"/enroll", "application/x-www-form-urlencoded", []byte(form.Encode()), nil); err != nil {
		return nil, err
	}
	link := profileLink.FindSubmatch(r.body)
	if r.status != http.StatusOK || link == nil {
		return nil, refusal("web enrollment continue", r)
	}
	if r, err = b.do(ctx, "web enrollment profile download", http.MethodGet, resolve(page, string(link[1])), "", nil, nil); err != nil {
		return nil, err
	}
	return d.installBYOD(ctx, "web enrollment profile download", r)
}

// modelFamily is the discovery model-family of the device.
func (d *Device) modelFamily() string {
	switch f := d.model.Family; f {
	case "iPad", "iPhone", "Mac", "AppleTV", "Watch", "RealityDevice":
		return f
	}
	if d.model.IsMac() {
		return "Mac"
	}
	return "iPhone"
}

// appleHostedDiscovery asks Apple (d.appleDiscovery) for the registered
// service discovery URL and fetches the discovery document from it.
func (d *Device) appleHostedDiscovery(ctx context.Context, b *browser, q url.Values) (*reply, error) {
	const step = "Apple-hosted service discovery"
	r, err := b.do(ctx, step, http.MethodGet, withQuery(d.appleDiscovery, url.Values{"user-identifier": q["user-identifier"]}), "", nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, refusal(step, r)
	}
	var found struct {
		URL string `json:"mdm_service_discovery_url"`
	}
	if err := json.Unmarshal(r.body, &found); err != nil || !strings.HasPrefix(found.URL, "https://") {
		return nil, &ExchangeError{Step: step, URL: d.appleDiscovery, Reason: "Apple's answer has no https mdm_service_discovery_url", Err: err}
	}
	return b.do(ctx, "account-driven discovery (Apple-hosted)", http.MethodGet, withQuery(found.URL, q), "", nil, nil)
}

// withQuery adds q to u, after any query u has.
func withQuery(u string, q url.Values) string {
	if strings.Contains(u, "?") {
		return u + "&" + q.Encode()
	}
	return u + "?" + q.Encode()
}

// AccountDrivenEnroll is account-driven User Enrollment (iOS 15+): the
// person types userID (their Managed Apple ID) in Settings; the device
// discovers the server at domainURL's /.well-known/com.apple.remotemanagement,
// (or, when the domain serves none and WithAppleServiceDiscovery is set,
// at the URL the organisation registered with Apple Business Manager),
// POSTs its signed MachineInfo to the BaseURL, follows the 401's
// WWW-Authenticate to the sign-in page, takes the access token from the
// page's redirect, POSTs again with it and installs the profile.
func (d *Device) AccountDrivenEnroll(ctx context.Context, domainURL, userID string, creds Credentials) (*BYODResult, error) {
	d.op.Lock()
	defer d.op.Unlock()
	b := d.browser()
	q := url.Values{"user-identifier": {userID}, "model-family": {d.modelFamily()}}
	r, err := b.do(ctx, "account-driven discovery", http.MethodGet, strings.TrimRight(domainURL, "/")+wellKnownPath+"?"+q.Encode(), "", nil, nil)
	if (err != nil || r.status != http.StatusOK) && d.appleDiscovery != "" {
		// Apple-hosted discovery: the domain does not serve the document,
		// so the device asks Apple for the URL the organisation registered
		// and fetches the document there, with the same parameters.
		if r, err = d.appleHostedDiscovery(ctx, b, q); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, refusal("account-driven discovery", r)
	}
	var wk struct {
		Servers []struct{ Version, BaseURL string }
	}
	if err := json.Unmarshal(r.body, &wk); err != nil {
		return nil, &ExchangeError{Step: "account-driven discovery", URL: domainURL, Reason: "the discovery document is not JSON", Err: err}
	}
	baseURL := ""
	for _, s := range wk.Servers {
		if s.Version == "mdm-byod" {
			baseURL = s.BaseURL
		}
	}
	if baseURL == "" {
		return nil, &EnrollError{Step: "account-driven discovery", StatusCode: r.status, Code: "no_server", Message: "the discovery document lists no mdm-byod server"}
	}
	mi, err := d.signedMachineInfo()
	if err != nil {
		return nil, err
	}
	const ct = "application/pkcs7-signature"
	if r, err = b.do(ctx, "account-driven enrollment", http.MethodPost, baseURL, ct, mi, nil); err != nil {
		return nil, err
	}
	if r.status != http.StatusUnauthorized {
		return nil, refusal("account-driven enrollment (expected a 401 to sign in)", r)
	}
	signin, ok := signInChallenge(r)
	if !ok {
		return nil, &EnrollError{Step: "account-driven enrollment", StatusCode: r.status, Code: "bad_challenge",
			Message: fmt.Sprintf("the 401 has no usable WWW-Authenticate: Bearer method=\"apple-as-web\", url=…; got %q (a device cancels enrollment here)", r.header.Get("WWW-Authenticate"))}
	}
	tok, err := d.signInForToken(ctx, "account-driven sign-in", signin, creds)
	if err != nil {
		return nil, err
	}
	if r, err = b.do(ctx, "account-driven enrollment with token", http.MethodPost, baseURL, ct, mi, bearerHeader(tok)); err != nil {
		return nil, err
	}
	// The enrollment's check-ins already carry the token; a failed
	// install leaves the device as it was.
	d.mu.Lock()
	prev := d.st.account
	d.st.account = &accountAuth{token: tok, creds: reauthCredentials(creds)}
	d.mu.Unlock()
	res, err := d.installBYOD(ctx, "account-driven enrollment with token", r)
	if err != nil {
		d.mu.Lock()
		d.st.account = prev
		d.mu.Unlock()
	}
	return res, err
}

// signedMachineInfo is the MachineInfo of a User Enrollment (no UDID or
// SERIAL), CMS-signed with the content attached by a key of the device's.
func (d *Device) signedMachineInfo() ([]byte, error) {
	version, build := d.OS()
	info := map[string]any{"PRODUCT": d.model.ProductName, "VERSION": build, "OS_VERSION": version, "LANGUAGE": "en"}
	raw, err := encodePlist(info)
	if err != nil {
		return nil, err
	}
	bits := d.keySize
	if bits == 0 {
		bits = 2048
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "virtual device " + d.model.ProductName},
		NotBefore: d.now().Add(-time.Hour), NotAfter: d.now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(raw)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

// ParseAuthenticate reads a WWW-Authenticate value of the form
// `Bearer method="apple-as-web", url="https://…"` (RFC 7235 auth-params,
// quoted or not). ok is false for another scheme or a malformed value.
func ParseAuthenticate(h string) (method, signinURL string, ok bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", "", false
	}
	params := map[string]string{}
	s := strings.TrimSpace(rest)
	for s != "" {
		name, after, found := strings.Cut(s, "=")
		if !found {
			return "", "", false
		}
		name = strings.ToLower(strings.TrimSpace(name))
		after = strings.TrimLeft(after, " ")
		var val string
		if strings.HasPrefix(after, `"`) {
			var sb strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				sb.WriteByte(after[i])
			}
			if i >= len(after) {
				return "", "", false
			}
			val, s = sb.String(), after[i+1:]
		} else {
			end := strings.IndexByte(after, ',')
			if end < 0 {
				end = len(after)
			}
			val, s = strings.TrimSpace(after[:end]), after[end:]
		}
		if name == "" {
			return "", "", false
		}
		params[name] = val
		s = strings.TrimLeft(s, " ")
		if s != "" {
			if s[0] != ',' {
				return "", "", false
			}
			s = strings.TrimLeft(s[1:], " ")
		}
	}
	return params["method"], params["url"], params["method"] != ""
}
