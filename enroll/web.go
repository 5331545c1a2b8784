package enroll

import (
	"context"
	"crypto/subtle"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Paths of the device-facing pages and APIs.
const (
	PathPortal          = "/portal"     // Company Portal, as a web page
	PathPortalAPI       = "/portal/v1"  // Company Portal, as an API
	PathWeb             = "/enroll/web" // web-based device enrollment
	PathWellKnown       = "/.well-known/com.apple.remotemanagement"
	PathAccountDriven   = "/enroll/account-driven"        // BaseURL of account-driven enrollment
	PathAccountDrivenIn = "/enroll/account-driven/signin" // its sign-in page
	csrfCookie          = "mockmdm_csrf"
)

// DeviceRoutes are the public, device-facing routes of the enrollment
// programs: the Company Portal (API and page), web-based device
// enrollment, and account-driven enrollment (discovery, BaseURL, sign-in).
// profiles builds the enrollment profiles; publicURL is the server's base
// URL (the account-driven BaseURL and sign-in URL are made from it).
func (s *Service) DeviceRoutes(p Profiles, publicURL string) []Route {
	base := strings.TrimRight(publicURL, "/")
	secure := strings.HasPrefix(base, "https://")
	portal := &webFlow{s: s, profiles: p, purpose: PurposePortal, base: PathPortal, title: "Set up access", secure: secure}
	web := &webFlow{s: s, profiles: p, purpose: PurposeWeb, base: PathWeb, title: "Enroll this device", secure: secure}
	ad := &accountDriven{s: s, profiles: p, baseURL: base + PathAccountDriven, signinURL: base + PathAccountDrivenIn, secure: secure}
	s.accountChallenge = challengeFor(ad.signinURL)
	routes := []Route{
		{http.MethodPost, PathPortalAPI + "/signin", http.HandlerFunc(s.apiSignIn)},
		{http.MethodGet, PathPortalAPI + "/options", http.HandlerFunc(s.apiOptions)},
		{http.MethodPost, PathPortalAPI + "/enroll", apiEnroll(s, p)},
		{http.MethodPost, PathPortalAPI + "/register", http.HandlerFunc(s.apiRegister)},
	}
	routes = append(routes, portal.routes()...)
	routes = append(routes, web.routes()...)
	routes = append(routes, ad.routes()...)
	return routes
}

// webFlow is the sign-in → choice → download page flow of one enrollment
// path (the Company Portal page, or web-based device enrollment).
type webFlow struct {
	s        *Service
	profiles Profiles
	purpose  string
	base     string
	title    string
	secure   bool
}

func (f *webFlow) routes() []Route {
	return []Route{
		{http.MethodGet, f.base, http.HandlerFunc(f.signInPage)},
		{http.MethodPost, f.base, http.HandlerFunc(f.signIn)},
		{http.MethodGet, f.base + "/choose", http.HandlerFunc(f.choose)},
		{http.MethodPost, f.base + "/enroll", http.HandlerFunc(f.enroll)},
		{http.MethodGet, f.base + "/profile/{ticket}", http.HandlerFunc(f.profile)},
	}
}

func (f *webFlow) sessionCookie() string { return "mockmdm_session_" + f.purpose }

// page is what every template renders.
type page struct {
	Title, Action, ChooseAction, CSRF, Company string
	Err                                        *Error
	UPN, Password, MFACode                     string
	AskMFA, AskNewPassword                     bool
	Options                                    *Options
	Mode, Ownership, ProfileURL                string
	UserEnrollment                             bool
}

func render(w http.ResponseWriter, status int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, p)
}

// csrfToken returns the double-submit token of r, setting the cookie when
// the browser has none yet. Every form carries it; a POST whose field does
// not match its cookie is refused, so another site cannot post our forms
// (it can neither read our cookie nor set it, and the cookie is SameSite).
func csrfToken(w http.ResponseWriter, r *http.Request, secure bool) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 16 && len(c.Value) <= 64 {
		return c.Value
	}
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	return tok
}

func checkCSRF(r *http.Request) error {
	c, err := r.Cookie(csrfCookie)
	field := r.PostFormValue("csrf")
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(field)) != 1 {
		return refuse(http.StatusForbidden, CodeInvalid, "the form expired or came from another site (CSRF check failed): reload the page and try again")
	}
	return nil
}

// signInForm is the POST of a sign-in page p, shared by the enrollment web
// flows: it reads the form, checks CSRF and starts a session for purpose.
// admit, when set, may refuse the signed-in user (it must then leave no
// session behind). A refusal renders the sign-in page again, with the
// reason and one more field when the refusal asks for a second factor or a
// new password, and reports false: the caller has nothing left to write.
func (s *Service) signInForm(w http.ResponseWriter, r *http.Request, p page, secure bool, purpose string, admit func(*Session, *User) error) (*Session, bool) {
	err := postedForm(w, r)
	p.CSRF = csrfToken(w, r, secure)
	if err != nil {
		p.Err = asError(err)
		render(w, httpStatus(err), "signin", p)
		return nil, false
	}
	c := credentialsOf(r)
	sess, u, err := s.StartSession(r.Context(), purpose, c)
	if err == nil && admit != nil {
		err = admit(sess, u)
	}
	if err != nil {
		p.Err, p.UPN, p.Password, p.MFACode = asError(err), c.UPN, c.Password, c.MFACode
		switch p.Err.Code {
		case CodeMFARequired, CodeMFAFailed:
			p.AskMFA = true
		case CodePasswordExpired, CodeWeakPassword:
			p.AskNewPassword = true
		}
		s.log.InfoContext(r.Context(), "enrollment sign-in refused", "path", purpose, "upn", c.UPN, "code", p.Err.Code)
		render(w, p.Err.Status, "signin", p)
		return nil, false
	}
	return sess, true
}

// postedForm reads a form POST and checks its CSRF token.
func postedForm(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	return checkCSRF(r)
}

// parseForm reads a bounded urlencoded form.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return invalid("the form cannot be read: %v", err)
	}
	return nil
}

func (f *webFlow) company(ctx context.Context) string {
	st, _ := f.s.Settings(ctx)
	return st.Company
}

func (f *webFlow) signInPage(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, "signin", page{Title: f.title, Action: f.base, CSRF: csrfToken(w, r, f.secure), Company: f.company(r.Context())})
}

// signIn handles the sign-in form. A second factor or an expired password
// is the same form again with one more field, and the refusal's message.
func (f *webFlow) signIn(w http.ResponseWriter, r *http.Request) {
	p := page{Title: f.title, Action: f.base, Company: f.company(r.Context())}
	sess, ok := f.s.signInForm(w, r, p, f.secure, f.purpose, nil)
	if !ok {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: f.sessionCookie(), Value: sess.Token, Path: f.base, HttpOnly: true, Secure: f.secure,
		SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt})
	http.Redirect(w, r, f.base+"/choose", http.StatusSeeOther)
}

func credentialsOf(r *http.Request) Credentials {
	return Credentials{
		UPN: strings.TrimSpace(r.PostFormValue("upn")), Password: r.PostFormValue("password"),
		MFACode: strings.TrimSpace(r.PostFormValue("mfa_code")), NewPassword: r.PostFormValue("new_password"),
	}
}

// session is the signed-in user of the page's cookie; without one the
// page shows the refusal and a link back to the sign-in.
func (f *webFlow) session(w http.ResponseWriter, r *http.Request) (*User, bool) {
	tok := ""
	if c, err := r.Cookie(f.sessionCookie()); err == nil {
		tok = c.Value
	}
	_, u, err := f.s.Session(r.Context(), f.purpose, tok)
	if err != nil {
		render(w, httpStatus(err), "error", page{Title: f.title, Action: f.base, Err: asError(err)})
		return nil, false
	}
	return u, true
}

// choose shows seed 002's questions: "I own this device" / "{company}
// owns this device", then, for a personal device, "Secure entire device" /
// "Secure work-related apps and data only". A type without a choice shows
// a Continue button.
func (f *webFlow) choose(w http.ResponseWriter, r *http.Request) {
	u, ok := f.session(w, r)
	if !ok {
		return
	}
	o, err := f.s.Options(r.Context(), f.purpose, u)
	p := page{Title: f.title, Action: f.base + "/enroll", ChooseAction: f.base + "/choose", CSRF: csrfToken(w, r, f.secure), Options: o}
	if err != nil {
		p.Err, p.Action = asError(err), f.base
		render(w, httpStatus(err), "error", p)
		return
	}
	switch {
	case !o.AskOwnership:
		p.Title = "Set up " + o.Company + " access"
		render(w, http.StatusOK, "begin", p)
	case r.URL.Query().Get("ownership") == store.OwnershipPersonal:
		p.Title = "Select device and enrollment type"
		render(w, http.StatusOK, "scope", p)
	default:
		p.Title = "Select device and enrollment type"
		render(w, http.StatusOK, "ownership", p)
	}
}

// enroll takes the choice and issues the ticket; the page then offers the
// profile for download.
func (f *webFlow) enroll(w http.ResponseWriter, r *http.Request) {
	p := page{Title: f.title, Action: f.base + "/choose"}
	if err := postedForm(w, r); err != nil {
		p.Err = asError(err)
		render(w, httpStatus(err), "error", p)
		return
	}
	u, ok := f.session(w, r)
	if !ok {
		return
	}
	c := Choice{Ownership: r.PostFormValue("ownership"), Scope: r.PostFormValue("scope")}
	t, _, err := f.s.Prepare(r.Context(), f.purpose, u, c)
	if err != nil {
		p.Err = asError(err)
		f.s.log.InfoContext(r.Context(), "enrollment choice refused", "path", f.purpose, "upn", u.UPN, "code", p.Err.Code)
		render(w, httpStatus(err), "error", p)
		return
	}
	p.Title = "Download the profile"
	p.Mode, p.Ownership, p.UserEnrollment = modeName(t.Management.Mode), t.Management.Ownership, t.Management.Mode == store.ModeUserEnrollment
	p.ProfileURL = f.base + "/profile/" + url.PathEscape(t.ID)
	render(w, http.StatusOK, "download", p)
}

// profile serves the enrollment profile of a ticket issued to the
// signed-in user and not yet used.
func (f *webFlow) profile(w http.ResponseWriter, r *http.Request) {
	u, ok := f.session(w, r)
	if !ok {
		return
	}
	body, err := f.s.ticketProfile(r.Context(), f.profiles, r.PathValue("ticket"), u)
	if err != nil {
		render(w, httpStatus(err), "error", page{Title: f.title, Action: f.base, Err: asError(err)})
		return
	}
	serveProfile(w, body, r.PathValue("ticket"))
}

// ticketProfile builds the profile of ticket id for user u.
func (s *Service) ticketProfile(ctx context.Context, p Profiles, id string, u *User) ([]byte, error) {
	t, err := s.Ticket(ctx, id)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(t.Management.User, u.UPN) {
		return nil, refuse(http.StatusForbidden, CodeBadTicket, "enrollment ticket %s was issued to another user; sign in as that user or choose again", id)
	}
	if t.BoundTo != "" {
		return nil, refuse(http.StatusConflict, CodeBadTicket, "enrollment ticket %s already enrolled %s; choose again for another device", id, t.BoundTo)
	}
	if !s.now().UTC().Before(t.ExpiresAt) {
		return nil, refuse(http.StatusForbidden, CodeBadTicket, "enrollment ticket %s expired: choose again", id)
	}
	return p.EnrollmentProfile(ctx, profileRequest(t))
}

func profileRequest(t *Ticket) ProfileRequest {
	req := ProfileRequest{Ticket: t.ID, Mode: t.Management.Mode}
	if t.Management.Mode == store.ModeUserEnrollment {
		req.ManagedAppleID = t.Management.ManagedAppleID
		if t.Management.Program == store.ProgramAccountDriven {
			req.EnrollmentMode = profiles.EnrollmentModeBYOD
		}
	}
	return req
}

// TicketHeader names the ticket of a served enrollment profile.
const TicketHeader = "Mockmdm-Ticket"

func serveProfile(w http.ResponseWriter, body []byte, ticket string) {
	w.Header().Set("Content-Type", profiles.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="enroll.mobileconfig"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(TicketHeader, ticket)
	_, _ = w.Write(body)
}

// asError is err as a rule refusal, for the page: a non-rule error keeps
// its status with a generic code.
func asError(err error) *Error {
	if e, ok := ErrorOf(err); ok {
		return e
	}
	st := httpStatus(err)
	msg := "internal error; the server log has the detail"
	if st < 500 {
		msg = err.Error()
	}
	return &Error{Status: st, Code: "internal", Message: msg}
}
