package enroll

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// webSession remembers, between the first load of configuration_web_url
// (which alone carries x-apple-aspen-deviceinfo) and the sign-in form
// post, which device is signing in.
type webSession struct {
	ID        string    `json:"id"`
	Profile   string    `json:"profile"`
	Serial    string    `json:"serial"`
	UDID      string    `json:"udid"`
	ExpiresAt time.Time `json:"expires_at"`
}

// maxFormBody bounds the sign-in form post.
const maxFormBody = 16 << 10

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — {{.Company}}</title>
<style>body{font-family:-apple-system,system-ui,sans-serif;max-width:24em;margin:3em auto;padding:0 1em}
input{display:block;width:100%;margin:.3em 0 .8em;padding:.5em;font-size:1em}.error{color:#b00020}</style></head>
<body>
<h1>{{.Company}}</h1>
<p>Sign in with your work account to set up this device{{if .Serial}} ({{.Serial}}){{end}}.</p>
{{if .Error}}<p class="error" id="error" data-code="{{.Code}}">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}" id="signin">
<input type="hidden" name="session" value="{{.Session}}">
<label>Work account<input type="email" name="upn" value="{{.UPN}}" placeholder="user@contoso.com" autocomplete="username"></label>
<label>Password<input type="password" name="password" autocomplete="current-password"></label>
<label>Verification code (if your account uses one)<input type="text" name="mfa_code" inputmode="numeric" autocomplete="one-time-code"></label>
<label>New password (if yours has expired)<input type="password" name="new_password" autocomplete="new-password"></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`))

type signInData struct {
	Company, Serial, Error, Code, Action, Session, UPN string
}

// serveWeb is the configuration_web_url: the mock identity provider's
// sign-in page (GET, with x-apple-aspen-deviceinfo on the first load), and
// the form post that answers with the enrollment profile as
// application/x-apple-aspen-config, which ends the web view.
func (a *ADE) serveWeb(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := a.Profile(ctx, r.PathValue("profile"))
	if err != nil {
		a.failPage(w, r, err)
		return
	}
	if p.AuthMethod != AuthModern {
		a.failPage(w, r, refuse(http.StatusForbidden, CodeInvalid, "ADE profile %s does not use Setup Assistant with modern authentication; its devices enroll at %s", p.Name, a.EnrollURL(p.Name)))
		return
	}
	st, _ := a.svc.Settings(ctx)
	data := signInData{Company: st.Company, Action: a.WebURL(p.Name)}
	if r.Method == http.MethodGet {
		h := r.Header.Get(mdm.MachineInfoHeader)
		if h == "" {
			a.failPage(w, r, refuse(http.StatusBadRequest, CodeBadWebSession, "the first load of configuration_web_url must carry the %s header (the device's signed MachineInfo)", mdm.MachineInfoHeader))
			return
		}
		mi, err := mdm.ParseMachineInfoHeader(h)
		if err != nil {
			a.failPage(w, r, err)
			return
		}
		if mi, err = a.machineInfo(ctx, p, mi.Signed); err != nil {
			a.failPage(w, r, err)
			return
		}
		s := webSession{ID: a.svc.newID(), Profile: p.Name, Serial: mi.Serial, UDID: mi.UDID, ExpiresAt: a.svc.now().Add(a.webTTL)}
		if err := a.svc.put(ctx, kindWebSession, s.ID, s); err != nil {
			a.failPage(w, r, err)
			return
		}
		data.Session, data.Serial = s.ID, s.Serial
		a.page(w, http.StatusOK, data)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		a.failPage(w, r, refuse(http.StatusBadRequest, CodeInvalid, "the sign-in form could not be read: %v", err))
		return
	}
	s, err := a.session(ctx, p.Name, r.PostForm.Get("session"))
	if err != nil {
		a.failPage(w, r, err)
		return
	}
	data.Session, data.Serial = s.ID, s.Serial
	c := Credentials{UPN: r.PostForm.Get("upn"), Password: r.PostForm.Get("password"), MFACode: r.PostForm.Get("mfa_code"), NewPassword: r.PostForm.Get("new_password")}
	data.UPN = c.UPN
	u, err := a.svc.SignIn(ctx, c)
	if err == nil {
		err = a.svc.Restrict(ctx, store.ProgramADE, u, store.OwnershipCorporate)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			a.failPage(w, r, err)
			return
		}
		data.Error, data.Code = e.Message, e.Code
		a.page(w, e.Status, data)
		return
	}
	m := p.management()
	// Seed 000: compliant in the MDM, not yet registered (nor compliant) in
	// the directory until the Company Portal sign-in.
	m.User, m.CompliantInMDM = u.UPN, true
	body, err := a.issue(ctx, m, s.Serial)
	if err != nil {
		a.failPage(w, r, err)
		return
	}
	_ = a.svc.docs.DeleteDocument(ctx, kindWebSession, s.ID)
	a.log.InfoContext(ctx, "ADE modern authentication: profile served", "profile", p.Name, "serial", s.Serial, "user", u.UPN)
	w.Header().Set("Content-Type", profiles.ContentType)
	_, _ = w.Write(body)
}

func (a *ADE) session(ctx context.Context, profile, id string) (*webSession, error) {
	if id == "" {
		return nil, refuse(http.StatusBadRequest, CodeBadWebSession, "the sign-in form has no session: reload configuration_web_url")
	}
	var s webSession
	if err := a.svc.get(ctx, kindWebSession, id, &s); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, refuse(http.StatusBadRequest, CodeBadWebSession, "sign-in session %q is unknown (used already, or the server was reset): reload configuration_web_url", id)
		}
		return nil, err
	}
	if s.Profile != profile || !a.svc.now().Before(s.ExpiresAt) {
		return nil, refuse(http.StatusBadRequest, CodeBadWebSession, "sign-in session %q expired or belongs to another profile: reload configuration_web_url", id)
	}
	return &s, nil
}

func (a *ADE) page(w http.ResponseWriter, status int, d signInData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = signInPage.Execute(w, d)
}

func (a *ADE) failPage(w http.ResponseWriter, r *http.Request, err error) {
	a.fail(w, r, err)
}
