package server

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/profiles"
)

// TestBYODBadInput: each refusal has its code and message in the API and
// on the page, and leaves no enrollment, ticket or session behind.
func TestBYODBadInput(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	for i, tc := range []struct {
		name   string
		creds  device.Credentials
		choice device.Choice
		code   string
		status int
		want   string // in the message
	}{
		{"wrong password", device.Credentials{UPN: "user@contoso.com", Password: "nope"}, device.Choice{}, enroll.CodeWrongPassword, 401, "incorrect"},
		{"expired password", device.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd"}, device.Choice{}, enroll.CodePasswordExpired, 401, "expired"},
		{"expired, weak new one", device.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd", NewPassword: "x"}, device.Choice{}, enroll.CodeWeakPassword, 400, "8 characters"},
		{"mfa missing", device.Credentials{UPN: "mfa@contoso.com", Password: "Passw0rd!"}, device.Choice{}, enroll.CodeMFARequired, 401, "verification code"},
		{"mfa failure", device.Credentials{UPN: "mfa@contoso.com", Password: "Passw0rd!", MFACode: "999999"}, device.Choice{}, enroll.CodeMFAFailed, 401, "wrong"},
		{"unknown user", device.Credentials{UPN: "ghost@contoso.com", Password: "x"}, device.Choice{}, enroll.CodeUnknownUser, 401, "ghost@contoso.com"},
		{"no type profile", device.Credentials{UPN: "nobody@contoso.com", Password: "Passw0rd!"}, device.Choice{}, enroll.CodeNoTypeProfile, 403, "assign one"},
		{"wrong path", device.Credentials{UPN: "web@contoso.com", Password: "Passw0rd!"}, device.Choice{}, enroll.CodeWrongPath, 403, "/enroll/web"},
		{"missing choice", device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}, device.Choice{}, enroll.CodeChoiceRequired, 400, "who owns"},
		{"missing scope", device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}, device.Choice{Ownership: "personal"}, enroll.CodeChoiceRequired, 400, "Secure entire device"},
		{"bad choice", device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}, device.Choice{Ownership: "mine"}, enroll.CodeBadChoice, 400, "mine"},
		{"choice not asked", device.Credentials{UPN: "user@contoso.com", Password: "Passw0rd!"}, device.Choice{Ownership: "corporate"}, enroll.CodeBadChoice, 400, "does not let"},
		{"no managed apple id", device.Credentials{UPN: "mfa@contoso.com", Password: "Passw0rd!", MFACode: "123456"}, device.Choice{}, enroll.CodeNoManagedAppleID, 403, "Managed Apple ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e0, t0, _ := counts(t, s)
			_, err := byodDevice(s, int64(600+i)).CompanyPortalEnroll(ctx, s.URL(""), tc.creds, tc.choice)
			var ee *device.EnrollError
			if errCode(err) != tc.code || !asEnrollError(err, &ee) || ee.StatusCode != tc.status || !strings.Contains(ee.Message, tc.want) {
				t.Errorf("API: %v; want %d %s mentioning %q", err, tc.status, tc.code, tc.want)
			}
			if e1, t1, _ := counts(t, s); e1 != e0 || t1 != t0 {
				t.Errorf("API refusal left enrollments %d→%d, tickets %d→%d", e0, e1, t0, t1)
			}
			// The same on the page.
			fields := url.Values{"upn": {tc.creds.UPN}, "password": {tc.creds.Password}, "mfa_code": {tc.creds.MFACode}, "new_password": {tc.creds.NewPassword}}
			_, _, s0 := counts(t, s)
			resp, body := form(t, s, enroll.PathPortal, fields)
			if resp.StatusCode == 303 {
				// Signed in: the refusal comes with the choice.
				cookies := resp.Cookies()
				choice := url.Values{"ownership": {tc.choice.Ownership}, "scope": {tc.choice.Scope}}
				page := doCookies(s, "GET", enroll.PathPortal+"/choose", nil, cookies)
				m := csrfRE.FindStringSubmatch(page.body)
				if m == nil {
					t.Fatalf("choose page: %d %s", page.resp.StatusCode, page.body)
				}
				choice.Set("csrf", m[1])
				r := doCookies(s, "POST", enroll.PathPortal+"/enroll", choice, cookies)
				resp, body = r.resp, r.body
			} else if _, _, s1 := counts(t, s); s1 != s0 {
				t.Errorf("a refused sign-in left a session: %d→%d", s0, s1)
			}
			if resp.StatusCode != tc.status || !strings.Contains(body, "<code>"+tc.code+"</code>") || !strings.Contains(body, htmlEsc(tc.want)) {
				t.Errorf("page: %d, want %d with %s and %q:\n%s", resp.StatusCode, tc.status, tc.code, tc.want, body)
			}
			if e1, t1, _ := counts(t, s); e1 != e0 || t1 != t0 {
				t.Errorf("page refusal left enrollments %d→%d, tickets %d→%d", e0, e1, t0, t1)
			}
		})
	}
	// The expired password, then changed: the new one enrolls.
	dev := byodDevice(s, 700)
	if _, err := dev.CompanyPortalEnroll(ctx, s.URL(""), device.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd", NewPassword: "NewPassw0rd!"}, device.Choice{}); errCode(err) != enroll.CodeNoManagedAppleID {
		// expired@ has no Managed Apple ID: the sign-in passed, the User Enrollment rule refused.
		t.Errorf("after changing the password: %v", err)
	}
	if _, err := byodDevice(s, 701).CompanyPortalEnroll(ctx, s.URL(""), device.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd"}, device.Choice{}); errCode(err) != enroll.CodeWrongPassword {
		t.Errorf("the old password after the change: %v", err)
	}
}

func asEnrollError(err error, target **device.EnrollError) bool {
	e, ok := err.(*device.EnrollError)
	if ok {
		*target = e
	}
	return ok
}

func htmlEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// TestBYODAdminRefusals: the admin API's refusals carry the rule's code.
func TestBYODAdminRefusals(t *testing.T) {
	s := byodServer(t)
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"PUT", "/v1/enrollment-type-profiles/iPads", enroll.TypeProfile{Type: "device-enrollment", Groups: []string{"corporate-ipads"}, Priority: 9}, 400, enroll.CodeDeviceGroup},
		{"PUT", "/v1/enrollment-type-profiles/x", enroll.TypeProfile{Type: "nonsense", Priority: 1}, 400, enroll.CodeInvalid},
		{"PUT", "/v1/enrollment-type-profiles/x", enroll.TypeProfile{Name: "y", Type: "web", Priority: 1}, 400, enroll.CodeInvalid},
		{"PUT", "/v1/directory/users/bad", enroll.User{Password: "x"}, 400, enroll.CodeInvalid},
		{"PUT", "/v1/directory/users/a@contoso.com", enroll.User{Password: "x", Groups: []string{"nope"}}, 400, enroll.CodeUnknownGroup},
		{"PUT", "/v1/directory/users/a@contoso.com", map[string]any{"password": "x", "pasword": "y"}, 400, enroll.CodeInvalid},
		{"GET", "/v1/directory/users/ghost@contoso.com", nil, 404, enroll.CodeUnknownUser},
		{"DELETE", "/v1/enrollment-type-profiles/ghost", nil, 404, enroll.CodeNoTypeProfile},
		{"DELETE", "/v1/directory/groups/byod-users", nil, 409, enroll.CodeInvalid},
		{"PUT", "/v1/enrollments/x/ownership", enroll.OwnershipRequest{Ownership: "yours"}, 400, enroll.CodeInvalid},
	} {
		b, _ := json.Marshal(tc.body)
		if tc.body == nil {
			b = nil
		}
		rec := do(t, s, tc.method, tc.path, s.PKI().APIKey, b, "Content-Type", "application/json")
		var e enroll.Error
		if rec.Code != tc.status || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s %s: %d %s; want %d %s", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.code)
		}
	}
	// No API key: refused before anything.
	if rec := do(t, s, "GET", "/v1/directory/users", "", nil); rec.Code != 401 {
		t.Errorf("no API key: %d", rec.Code)
	}
	// Users never show passwords or MFA codes.
	rec := do(t, s, "GET", "/v1/directory/users", s.PKI().APIKey, nil)
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "Passw0rd") || strings.Contains(rec.Body.String(), "123456") {
		t.Errorf("user list: %d %s", rec.Code, rec.Body)
	}
	// Type profiles list by priority; the config upload names the line.
	var tl enroll.TypeProfileList
	byodAPI(t, s, "GET", "/v1/enrollment-type-profiles", nil, &tl)
	for i := 1; i < len(tl.Profiles); i++ {
		if tl.Profiles[i-1].Priority > tl.Profiles[i].Priority {
			t.Errorf("profiles out of priority order: %+v", tl.Profiles)
		}
	}
	rec = do(t, s, "PUT", "/v1/directory", s.PKI().APIKey, []byte("groups:\n  - {name: d, kind: device}\nenrollment_type_profiles:\n  - {name: p, type: web, priority: 1, groups: [d]}\n"))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "request body:4") || !strings.Contains(rec.Body.String(), enroll.CodeDeviceGroup) {
		t.Errorf("config upload with a device-group assignment: %d %s", rec.Code, rec.Body)
	}
	// After a reset the -directory config is back.
	do(t, s, "POST", "/v1/reset", s.PKI().APIKey, nil)
	if rec := do(t, s, "GET", "/v1/directory/users/user@contoso.com", s.PKI().APIKey, nil); rec.Code != 200 {
		t.Errorf("after reset: %d", rec.Code)
	}
}

// TestBYODTamperedTicket: a profile whose ticket was changed does not
// enroll, and a ticket not issued to the signed-in user is not served.
func TestBYODTamperedTicket(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	tok := portalSignIn(t, s, "user@contoso.com")
	rec := do(t, s, "POST", enroll.PathPortalAPI+"/enroll", "", nil, "Authorization", "Bearer "+tok)
	ticket := rec.Header().Get(enroll.TicketHeader)
	if rec.Code != 200 || ticket == "" {
		t.Fatalf("enroll: %d %s", rec.Code, rec.Body)
	}
	p, err := profiles.Parse(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.ReplaceAll(p.Content, []byte("ticket="+ticket), []byte("ticket=tampered"+ticket[8:]))
	if bytes.Equal(tampered, p.Content) {
		t.Fatal("the profile does not carry the ticket")
	}
	e0, _, _ := counts(t, s)
	dev := byodDevice(s, 800)
	if _, err := dev.Install(ctx, tampered); err == nil || !strings.Contains(err.Error(), enroll.CodeBadTicket) && !strings.Contains(err.Error(), "unknown") {
		t.Errorf("tampered ticket: %v", err)
	}
	if dev.IsEnrolled() {
		t.Error("the device enrolled with a tampered ticket")
	}
	if e1, _, _ := counts(t, s); e1 != e0 {
		t.Errorf("a tampered ticket left an enrollment: %d→%d", e0, e1)
	}
	// On the page: another user's ticket, and a made-up one.
	resp, _ := form(t, s, enroll.PathPortal, url.Values{"upn": {"chooser@contoso.com"}, "password": {"Passw0rd!"}})
	for _, id := range []string{ticket, "made-up"} {
		r := doCookies(s, "GET", enroll.PathPortal+"/profile/"+id, nil, resp.Cookies())
		if r.resp.StatusCode != 403 || !strings.Contains(r.body, enroll.CodeBadTicket) {
			t.Errorf("profile %s for another user: %d %s", id, r.resp.StatusCode, r.body)
		}
	}
	// A CSRF-less post is refused.
	r := doCookies(s, "POST", enroll.PathPortal, url.Values{"upn": {"user@contoso.com"}, "password": {"Passw0rd!"}}, nil)
	if r.resp.StatusCode != 403 || !strings.Contains(r.body, "CSRF") {
		t.Errorf("no CSRF: %d", r.resp.StatusCode)
	}
}

// TestBYODPortalPageFlow walks seed 002's screens on the page: the two
// questions with their wording, then the download.
func TestBYODPortalPageFlow(t *testing.T) {
	s := byodServer(t)
	resp, body := form(t, s, enroll.PathPortal, url.Values{"upn": {"chooser@contoso.com"}, "password": {"Passw0rd!"}})
	if resp.StatusCode != 303 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	cookies := resp.Cookies()
	page := doCookies(s, "GET", enroll.PathPortal+"/choose", nil, cookies)
	for _, w := range []string{"I own this device", "Contoso owns this device"} {
		if !strings.Contains(page.body, w) {
			t.Errorf("ownership screen lacks %q", w)
		}
	}
	page = doCookies(s, "GET", enroll.PathPortal+"/choose?ownership=personal", nil, cookies)
	for _, w := range []string{"Secure entire device", "Secure work-related apps and data only"} {
		if !strings.Contains(page.body, w) {
			t.Errorf("scope screen lacks %q", w)
		}
	}
	m := csrfRE.FindStringSubmatch(page.body)
	r := doCookies(s, "POST", enroll.PathPortal+"/enroll", url.Values{"csrf": {m[1]}, "ownership": {"personal"}, "scope": {"work"}}, cookies)
	link := regexp.MustCompile(`id="profile" href="([^"]+)"`).FindStringSubmatch(r.body)
	if r.resp.StatusCode != 200 || link == nil {
		t.Fatalf("enroll: %d %s", r.resp.StatusCode, r.body)
	}
	prof := doCookies(s, "GET", link[1], nil, cookies)
	if prof.resp.StatusCode != 200 || prof.resp.Header.Get("Content-Type") != profiles.ContentType {
		t.Fatalf("download: %d %s", prof.resp.StatusCode, prof.resp.Header.Get("Content-Type"))
	}
	p, err := profiles.Parse([]byte(prof.body))
	if err != nil {
		t.Fatal(err)
	}
	if fs := profiles.Lint(p, profiles.LintOptions{Platform: "iOS", UserEnrollment: true}); profiles.HasErrors(fs) {
		t.Errorf("User Enrollment profile fails Apple's schema: %v", fs)
	}
	// MFA as a second step of the same form.
	resp, body = form(t, s, enroll.PathPortal, url.Values{"upn": {"mfa@contoso.com"}, "password": {"Passw0rd!"}})
	if resp.StatusCode != 401 || !strings.Contains(body, `name="mfa_code"`) {
		t.Errorf("MFA step: %d %s", resp.StatusCode, body)
	}
}
