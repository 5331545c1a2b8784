package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/profiles"
)

// byodServer is a server with testdata/directory/contoso.yaml loaded.
func byodServer(t *testing.T) *Server {
	t.Helper()
	data, err := os.ReadFile("../testdata/directory/contoso.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, WithDirectory("contoso.yaml", data))
}

func byodDevice(s *Server, seed int64, opts ...device.Option) *device.Device {
	return device.New(handlerDoer{s.Handler()}, append([]device.Option{device.WithSeed(seed), device.WithTrust(trustPool(s))}, opts...)...)
}

// trustPool trusts the server's test CA.
func trustPool(s *Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.PKI().CA.Cert)
	return p
}

func byodCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type enrollmentView struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Management struct {
		Program, Mode, Ownership, User, AuthMethod, TypeProfile, Ticket, ManagedAppleID string
		DEM, Registered                                                                 bool
	} `json:"management"`
}

func (v *enrollmentView) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID         string         `json:"id"`
		Type       string         `json:"type"`
		Management map[string]any `json:"management"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	v.ID, v.Type = raw.ID, raw.Type
	str := func(k string) string { s, _ := raw.Management[k].(string); return s }
	bl := func(k string) bool { b, _ := raw.Management[k].(bool); return b }
	m := &v.Management
	m.Program, m.Mode, m.Ownership, m.User, m.AuthMethod = str("program"), str("mode"), str("ownership"), str("user"), str("auth_method")
	m.TypeProfile, m.Ticket, m.ManagedAppleID, m.DEM, m.Registered = str("type_profile"), str("ticket"), str("managed_apple_id"), bl("dem"), bl("registered")
	return nil
}

func byodAPI(t *testing.T, s *Server, method, path string, body any, out any) int {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	rec := do(t, s, method, path, s.PKI().APIKey, b, "Content-Type", "application/json")
	if out != nil && rec.Code < 300 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, rec.Body)
		}
	}
	return rec.Code
}

func getEnrollment(t *testing.T, s *Server, id string) enrollmentView {
	t.Helper()
	var v enrollmentView
	if code := byodAPI(t, s, "GET", "/v1/enrollments/"+url.PathEscape(id), nil, &v); code != 200 {
		t.Fatalf("GET enrollment %s: %d", id, code)
	}
	return v
}

// counts returns how many enrollments, tickets and sessions the API lists.
func counts(t *testing.T, s *Server) (enrollments, tickets, sessions int) {
	t.Helper()
	var es struct {
		Enrollments []json.RawMessage `json:"enrollments"`
	}
	rec := do(t, s, "GET", "/v1/enrollments", s.PKI().APIKey, nil)
	if rec.Code != 200 {
		t.Fatalf("list enrollments: %d", rec.Code)
	}
	var anyList any
	_ = json.Unmarshal(rec.Body.Bytes(), &anyList)
	switch l := anyList.(type) {
	case []any:
		enrollments = len(l)
	case map[string]any:
		_ = json.Unmarshal(rec.Body.Bytes(), &es)
		enrollments = len(es.Enrollments)
	}
	var tl enroll.TicketList
	byodAPI(t, s, "GET", "/v1/enrollment-tickets", nil, &tl)
	var sl enroll.SessionList
	byodAPI(t, s, "GET", "/v1/enrollment-sessions", nil, &sl)
	return enrollments, len(tl.Tickets), len(sl.Sessions)
}

type wantState struct {
	typ, program, mode, ownership, user, auth, typeProfile string
	dem                                                    bool
}

func checkState(t *testing.T, s *Server, id string, w wantState) {
	t.Helper()
	v := getEnrollment(t, s, id)
	m := v.Management
	if v.Type != w.typ || m.Program != w.program || m.Mode != w.mode || m.Ownership != w.ownership || m.User != w.user || m.AuthMethod != w.auth || m.TypeProfile != w.typeProfile || m.DEM != w.dem {
		t.Errorf("enrollment %s = type %s %+v; want %+v", id, v.Type, m, w)
	}
	if m.Ticket == "" {
		t.Errorf("enrollment %s carries no ticket", id)
	}
}

func enrolledID(dev *device.Device, res *device.BYODResult) string {
	if res.UserEnrollment {
		return dev.EnrollmentID()
	}
	return dev.UDID()
}

func TestBYODCompanyPortalPaths(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	base := "https://mockmdm.test"
	for i, tc := range []struct {
		name   string
		creds  device.Credentials
		choice device.Choice
		want   wantState
	}{
		{"user enrollment", device.Credentials{UPN: "user@contoso.com", Password: "Passw0rd!"}, device.Choice{},
			wantState{"UserEnrollmentDevice", "company-portal", "user-enrollment", "personal", "user@contoso.com", "company-portal", "BYOD user enrollment", false}},
		{"choice corporate", device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}, device.Choice{Ownership: "corporate"},
			wantState{"Device", "company-portal", "device", "corporate", "chooser@contoso.com", "company-portal", "BYOD user choice", false}},
		{"choice personal entire device", device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}, device.Choice{Ownership: "personal", Scope: "device"},
			wantState{"Device", "company-portal", "device", "personal", "chooser@contoso.com", "company-portal", "BYOD user choice", false}},
		{"choice personal work only", device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}, device.Choice{Ownership: "personal", Scope: "work"},
			wantState{"UserEnrollmentDevice", "company-portal", "user-enrollment", "personal", "chooser@contoso.com", "company-portal", "BYOD user choice", false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := byodDevice(s, int64(100+i))
			res, err := dev.CompanyPortalEnroll(ctx, base, tc.creds, tc.choice)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Enrolled || res.Ticket == "" || !res.Verified {
				t.Fatalf("result %+v", res)
			}
			checkState(t, s, enrolledID(dev, res), tc.want)
		})
	}
	// Device enrollment with Company Portal: a type profile for a new group.
	if code := byodAPI(t, s, "PUT", "/v1/directory/groups/corp-users", enroll.Group{Kind: "user"}, nil); code != 200 {
		t.Fatalf("PUT group: %d", code)
	}
	if code := byodAPI(t, s, "PUT", "/v1/directory/users/corp@contoso.com", enroll.User{Password: "Passw0rd!", Groups: []string{"corp-users"}}, nil); code != 201 {
		t.Fatalf("PUT user: %d", code)
	}
	if code := byodAPI(t, s, "PUT", "/v1/enrollment-type-profiles/Corporate", enroll.TypeProfile{Type: "device-enrollment", Groups: []string{"corp-users"}, Priority: 6}, nil); code != 200 {
		t.Fatalf("PUT type profile: %d", code)
	}
	dev := byodDevice(s, 110)
	res, err := dev.CompanyPortalEnroll(ctx, base, device.Credentials{UPN: "corp@contoso.com", Password: "Passw0rd!"}, device.Choice{})
	if err != nil {
		t.Fatal(err)
	}
	checkState(t, s, dev.UDID(), wantState{"Device", "company-portal", "device", "corporate", "corp@contoso.com", "company-portal", "Corporate", false})
	// "Identify as corporate" and back; then the Company Portal registers it.
	var own struct {
		Management struct{ Ownership string } `json:"management"`
	}
	if code := byodAPI(t, s, "PUT", "/v1/enrollments/"+dev.UDID()+"/ownership", enroll.OwnershipRequest{Ownership: "personal"}, &own); code != 200 || own.Management.Ownership != "personal" {
		t.Errorf("identify as personal: %d %+v", code, own)
	}
	if code := byodAPI(t, s, "PUT", "/v1/enrollments/GHOST/ownership", enroll.OwnershipRequest{Ownership: "personal"}, nil); code != 404 {
		t.Errorf("ownership of an unknown enrollment: %d", code)
	}
	m, err := dev.RegisterCompanyPortal(ctx, base, device.Credentials{UPN: "corp@contoso.com", Password: "Passw0rd!"})
	if err != nil || m["registered"] != true {
		t.Errorf("RegisterCompanyPortal = %v, %v", m, err)
	}
	if _, err := dev.RegisterCompanyPortal(ctx, base, device.Credentials{UPN: "corp@contoso.com", Password: "bad"}); errCode(err) != enroll.CodeWrongPassword {
		t.Errorf("register with a wrong password: %v", err)
	}
	_ = res
}

func errCode(err error) string {
	var e *device.EnrollError
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "other: " + err.Error()
}

func TestBYODDEMAndBlockedPersonal(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	// The DEM account in byod-users enrolls with User Enrollment; it needs a Managed Apple ID.
	dev := byodDevice(s, 200)
	_, err := dev.CompanyPortalEnroll(ctx, s.URL(""), device.Credentials{UPN: "dem@contoso.com", Password: "Passw0rd!"}, device.Choice{})
	if errCode(err) != enroll.CodeNoManagedAppleID {
		t.Fatalf("DEM without a Managed Apple ID: %v", err)
	}
	if code := byodAPI(t, s, "PUT", "/v1/directory/users/dem@contoso.com", enroll.User{ManagedAppleID: "dem@appleid.contoso.com", DEM: true, Groups: []string{"byod-users"}}, nil); code != 200 {
		t.Fatalf("PUT dem: %d", code)
	}
	res, err := dev.CompanyPortalEnroll(ctx, s.URL(""), device.Credentials{UPN: "dem@contoso.com", Password: "Passw0rd!"}, device.Choice{})
	if err != nil {
		t.Fatal(err)
	}
	checkState(t, s, enrolledID(dev, res), wantState{"UserEnrollmentDevice", "company-portal", "user-enrollment", "personal", "dem@contoso.com", "company-portal", "BYOD user enrollment", true})

	// Block personal devices: the personal answers are refused, corporate is not.
	if code := byodAPI(t, s, "PUT", "/v1/enrollment-settings", enroll.Settings{Company: "Contoso", BlockPersonal: true}, nil); code != 200 {
		t.Fatalf("PUT settings: %d", code)
	}
	e0, t0, _ := counts(t, s)
	chooser := device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}
	_, err = byodDevice(s, 201).CompanyPortalEnroll(ctx, s.URL(""), chooser, device.Choice{Ownership: "personal", Scope: "work"})
	if errCode(err) != enroll.CodePersonalBlocked || !strings.Contains(err.Error(), "Contoso") {
		t.Errorf("blocked personal device: %v", err)
	}
	if e1, t1, _ := counts(t, s); e1 != e0 || t1 != t0 {
		t.Errorf("a refused enrollment left enrollments %d→%d, tickets %d→%d", e0, e1, t0, t1)
	}
	cdev := byodDevice(s, 202)
	if _, err := cdev.CompanyPortalEnroll(ctx, s.URL(""), chooser, device.Choice{Ownership: "corporate"}); err != nil {
		t.Errorf("corporate while personal is blocked: %v", err)
	}
}

func TestBYODWebEnrollment(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	dev := byodDevice(s, 300)
	res, err := dev.WebEnroll(ctx, s.URL(""), device.Credentials{UPN: "web@contoso.com", Password: "Passw0rd!"})
	if err != nil {
		t.Fatal(err)
	}
	checkState(t, s, dev.UDID(), wantState{"Device", "web", "device", "corporate", "web@contoso.com", "web", "Web enrollment", false})
	if res.UserEnrollment {
		t.Error("web-based enrollment enrolled a User Enrollment")
	}
	// The wrong path for a Company Portal user, refused on the page.
	_, err = byodDevice(s, 301).WebEnroll(ctx, s.URL(""), device.Credentials{UPN: "user@contoso.com", Password: "Passw0rd!"})
	if errCode(err) != enroll.CodeWrongPath {
		t.Errorf("Company Portal user on the web page: %v", err)
	}
}

func TestBYODAccountDriven(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	// The discovery document validates against the key list.
	rec := do(t, s, "GET", enroll.PathWellKnown+"?user-identifier=adde@appleid.contoso.com&model-family=iPhone", "", nil)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("discovery: %d %s", rec.Code, rec.Body)
	}
	validateDiscovery(t, rec.Body.Bytes())

	dev := byodDevice(s, 400)
	res, err := dev.AccountDrivenEnroll(ctx, s.URL(""), "adde@appleid.contoso.com", device.Credentials{UPN: "adde@contoso.com", Password: "Passw0rd!"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.UserEnrollment {
		t.Fatal("account-driven enrollment is not a User Enrollment")
	}
	checkState(t, s, dev.EnrollmentID(), wantState{"UserEnrollmentDevice", "account-driven", "user-enrollment", "personal", "adde@contoso.com", "account-driven", "Account driven", false})
	// The served profile: EnrollmentMode BYOD, AssignedManagedAppleID, and Apple's schema.
	p, err := profiles.Parse(res.Profile.Raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range p.Payloads {
		if pl.Type() == profiles.PayloadTypeMDM {
			if pl.String("EnrollmentMode") != "BYOD" || pl.String("AssignedManagedAppleID") != "adde@appleid.contoso.com" || pl["ManagedAppleID"] != nil {
				t.Errorf("MDM payload: %v", pl)
			}
		}
	}
	if fs := profiles.Lint(p, profiles.LintOptions{Platform: "iOS", UserEnrollment: true}); profiles.HasErrors(fs) {
		t.Errorf("account-driven profile fails Apple's schema: %v", fs)
	}
	// The device's UE install never sent a UDID or serial.
	for _, ex := range dev.Transcript() {
		if strings.Contains(string(ex.Request), dev.UDID()) || strings.Contains(string(ex.Request), dev.SerialNumber()) {
			t.Errorf("%s sent a device identifier", ex.Step)
		}
	}
}

// TestBYODAccountDrivenAppleHosted: when the user's domain does not serve
// the discovery document, a device set up for Apple-hosted discovery asks
// the mock Apple service for the URL the organisation registered in the
// simulated ABM, fetches the document there and enrolls. Nothing
// registered, the lookup answers 404 and the device stops there, saying
// so; without the option the device stops at the domain's 404.
func TestBYODAccountDrivenAppleHosted(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	creds := device.Credentials{UPN: "adde@contoso.com", Password: "Passw0rd!"}
	domain := s.URL("/contoso-without-discovery")
	lookup := device.WithAppleServiceDiscovery(s.URL(PathADEDiscovery))

	var ee *device.EnrollError
	if _, err := byodDevice(s, 410, lookup).AccountDrivenEnroll(ctx, domain, "adde@appleid.contoso.com", creds); !errors.As(err, &ee) ||
		ee.Step != "Apple-hosted service discovery" || ee.StatusCode != 404 || !strings.Contains(ee.Message, "no service discovery URL is registered") {
		t.Fatalf("nothing registered: %v", err)
	}
	if _, err := byodDevice(s, 411).AccountDrivenEnroll(ctx, domain, "adde@appleid.contoso.com", creds); !errors.As(err, &ee) || ee.Step != "account-driven discovery" || ee.StatusCode != 404 {
		t.Fatalf("without Apple-hosted discovery: %v", err)
	}

	if err := s.ABM().RegisterDiscovery(ctx, s.URL(enroll.PathWellKnown)); err != nil {
		t.Fatal(err)
	}
	dev := byodDevice(s, 412, lookup)
	res, err := dev.AccountDrivenEnroll(ctx, domain, "adde@appleid.contoso.com", creds)
	if err != nil || !res.UserEnrollment {
		t.Fatalf("Apple-hosted discovery: %+v %v", res, err)
	}
	steps := map[string]int{}
	for _, ex := range dev.Transcript() {
		steps[ex.Step]++
	}
	if steps["account-driven discovery"] != 1 || steps["Apple-hosted service discovery"] != 1 || steps["account-driven discovery (Apple-hosted)"] != 1 {
		t.Errorf("the discovery steps: %v", steps)
	}
	checkState(t, s, dev.EnrollmentID(), wantState{"UserEnrollmentDevice", "account-driven", "user-enrollment", "personal", "adde@contoso.com", "account-driven", "Account driven", false})

	// The lookup refuses a request without the account.
	if rec := do(t, s, "GET", PathADEDiscovery, "", nil); rec.Code != 400 || !strings.Contains(rec.Body.String(), "user-identifier") {
		t.Errorf("a lookup without user-identifier: %d %s", rec.Code, rec.Body)
	}
}

// validateDiscovery checks a discovery document against enroll.WellKnownKeys.
func validateDiscovery(t *testing.T, body []byte) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for k := range doc {
		if _, ok := enroll.WellKnownKeys[k]; !ok {
			t.Errorf("unknown discovery key %q", k)
		}
	}
	servers, ok := doc["Servers"].([]any)
	if !ok || len(servers) == 0 {
		t.Fatalf("Servers: %v", doc["Servers"])
	}
	for _, sv := range servers {
		m, _ := sv.(map[string]any)
		for k := range m {
			spec, ok := enroll.WellKnownKeys["Servers."+k]
			if !ok {
				t.Errorf("unknown server key %q", k)
				continue
			}
			v, isStr := m[k].(string)
			if spec.Type == "string" && !isStr {
				t.Errorf("%s is not a string", k)
			}
			if len(spec.Values) > 0 && !contains(spec.Values, v) {
				t.Errorf("%s = %q, not one of %v", k, v, spec.Values)
			}
		}
		for k, spec := range enroll.WellKnownKeys {
			if name, ok := strings.CutPrefix(k, "Servers."); ok && spec.Required && m[name] == nil {
				t.Errorf("server misses required %s", name)
			}
		}
		if u, _ := m["BaseURL"].(string); !strings.HasPrefix(u, "https://") {
			t.Errorf("BaseURL %q", u)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestBYODAccountDrivenRefusals(t *testing.T) {
	s := byodServer(t)
	for _, tc := range []struct{ name, query string }{
		{"not account-driven", "?user-identifier=user@contoso.com&model-family=iPhone"},
		{"unknown user", "?user-identifier=ghost@contoso.com&model-family=iPad"},
		{"no type profile", "?user-identifier=nobody@contoso.com&model-family=iPad"},
		{"missing user", "?model-family=iPad"},
		{"bad family", "?user-identifier=adde@contoso.com&model-family=Toaster"},
		{"apple tv", "?user-identifier=adde@contoso.com&model-family=AppleTV"},
	} {
		rec := do(t, s, "GET", enroll.PathWellKnown+tc.query, "", nil)
		var doc map[string]any
		if rec.Code != 403 || rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			t.Errorf("%s: %d %q %s", tc.name, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			continue
		}
		// Apple's schema: code (required, the one value), description, message; nothing else.
		if doc["code"] != enroll.WellKnownFailedCode || doc["message"] == "" {
			t.Errorf("%s: %v", tc.name, doc)
		}
		for k := range doc {
			if k != "code" && k != "description" && k != "message" {
				t.Errorf("%s: key %q is not in com.apple.well-known.failed", tc.name, k)
			}
		}
	}
	// Without a token, with a malformed or unknown one: the same 401 with the header.
	dev := byodDevice(s, 500)
	mi := signedMachineInfoFor(t, dev)
	for _, auth := range []string{"", "Bearer", "Basic dXNlcjpwYXNz", "Bearer nope-unknown-token", "Bearer " + strings.Repeat("a", 600)} {
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		rec := do(t, s, "POST", enroll.PathAccountDriven, "", mi, hdr...)
		method, u, ok := device.ParseAuthenticate(rec.Header().Get("WWW-Authenticate"))
		if rec.Code != 401 || !ok || method != "apple-as-web" || u != s.URL(enroll.PathAccountDrivenIn) {
			t.Errorf("Authorization %q: %d %q", auth, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	// A body that is not a signed MachineInfo: 400, never a 401 or 5xx.
	for _, body := range [][]byte{nil, []byte("<plist/>"), {0x30, 0x80, 0x01}} {
		if rec := do(t, s, "POST", enroll.PathAccountDriven, "", body); rec.Code != 400 {
			t.Errorf("body %q: %d", body, rec.Code)
		}
	}
	// An expired token (past -account-token-lifetime, 24 hours by
	// default) gets the challenge again.
	now := time.Now()
	clockS := newTestServer(t, WithClock(func() time.Time { return now }), WithDirectory("contoso.yaml", mustRead(t, "../testdata/directory/contoso.yaml")))
	tok := signInAccountDriven(t, clockS, "adde@contoso.com", "Passw0rd!")
	now = now.Add(23 * time.Hour)
	if rec := do(t, clockS, "POST", enroll.PathAccountDriven, "", mi, "Authorization", "Bearer "+tok); rec.Code != 200 {
		t.Errorf("a token 23 hours old: %d", rec.Code)
	}
	now = now.Add(2 * time.Hour)
	rec := do(t, clockS, "POST", enroll.PathAccountDriven, "", mi, "Authorization", "Bearer "+tok)
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "apple-as-web") || !strings.Contains(rec.Body.String(), "expired") {
		t.Errorf("expired token: %d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	// A portal token is no bearer token for account-driven enrollment.
	ptok := portalSignIn(t, clockS, "user@contoso.com")
	if rec := do(t, clockS, "POST", enroll.PathAccountDriven, "", mi, "Authorization", "Bearer "+ptok); rec.Code != 401 {
		t.Errorf("portal token for account-driven: %d", rec.Code)
	}
}

func mustRead(t *testing.T, name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedMachineInfoFor captures the device's signed MachineInfo by letting
// it start an account-driven enrollment against a server that answers 401.
func signedMachineInfoFor(t *testing.T, dev *device.Device) []byte {
	t.Helper()
	s := byodServer(t)
	d := byodDevice(s, 501)
	_, _ = d.AccountDrivenEnroll(byodCtx(t), s.URL(""), "adde@appleid.contoso.com", device.Credentials{UPN: "adde@contoso.com", Password: "wrong"})
	for _, ex := range d.Transcript() {
		if ex.Step == "account-driven enrollment" {
			return ex.Request
		}
	}
	t.Fatal("no MachineInfo in the transcript")
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// form GETs a page for its CSRF cookie and field, then POSTs fields.
func form(t *testing.T, s *Server, path string, fields url.Values, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	get := doCookies(s, "GET", path, nil, cookies)
	m := csrfRE.FindStringSubmatch(get.body)
	if m == nil {
		t.Fatalf("GET %s: no CSRF field: %d %s", path, get.resp.StatusCode, get.body)
	}
	fields.Set("csrf", m[1])
	post := doCookies(s, "POST", path, fields, append(cookies, get.resp.Cookies()...))
	// Keep the CSRF cookie with the response's, as a browser's jar would.
	for _, c := range get.resp.Cookies() {
		post.resp.Header.Add("Set-Cookie", c.String())
	}
	return post.resp, post.body
}

type pageResp struct {
	resp *http.Response
	body string
}

func doCookies(s *Server, method, path string, fields url.Values, cookies []*http.Cookie) pageResp {
	var body *strings.Reader
	if fields != nil {
		body = strings.NewReader(fields.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, "https://mockmdm.test"+path, body)
	if fields != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, _ := handlerDoer{s.Handler()}.Do(req)
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return pageResp{resp, b.String()}
}

func signInAccountDriven(t *testing.T, s *Server, upn, pw string) string {
	t.Helper()
	resp, body := form(t, s, enroll.PathAccountDrivenIn, url.Values{"upn": {upn}, "password": {pw}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 302 || !strings.HasPrefix(loc, enroll.CallbackURL+"?access-token=") {
		t.Fatalf("account-driven sign-in: %d %q %s", resp.StatusCode, loc, body)
	}
	u, _ := url.Parse(loc)
	return u.Query().Get("access-token")
}

func portalSignIn(t *testing.T, s *Server, upn string) string {
	t.Helper()
	b, _ := json.Marshal(enroll.Credentials{UPN: upn, Password: "Passw0rd!"})
	rec := do(t, s, "POST", enroll.PathPortalAPI+"/signin", "", b, "Content-Type", "application/json")
	var r enroll.SignInResponse
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &r) != nil || r.Token == "" {
		t.Fatalf("portal sign-in: %d %s", rec.Code, rec.Body)
	}
	return r.Token
}

// TestBYODUserEnrollmentCannotSwitch: a User Enrollment cannot become a
// device enrollment without unenrolling (seed 000). The Company Portal
// refuses the second enrollment by the rule's code, nothing is created, and
// once the user removes the management profile the device enrollment works.
func TestBYODUserEnrollmentCannotSwitch(t *testing.T) {
	s := byodServer(t)
	ctx := byodCtx(t)
	base := "https://mockmdm.test"
	chooser := device.Credentials{UPN: "chooser@contoso.com", Password: "Passw0rd!"}
	dev := byodDevice(s, 120)
	if _, err := dev.CompanyPortalEnroll(ctx, base, chooser, device.Choice{Ownership: "personal", Scope: "work"}); err != nil {
		t.Fatal(err)
	}
	enrollments, tickets, _ := counts(t, s)
	_, err := dev.CompanyPortalEnroll(ctx, base, chooser, device.Choice{Ownership: "personal", Scope: "device"})
	var ee *device.EnrollError
	if !errors.As(err, &ee) || ee.Code != enroll.CodeUserEnrollmentSwitch || ee.StatusCode != 409 || !strings.Contains(ee.Message, "without unenrolling") {
		t.Fatalf("switching a User Enrollment to device enrollment: %v, want 409 %s", err, enroll.CodeUserEnrollmentSwitch)
	}
	if e, tk, _ := counts(t, s); e != enrollments || tk != tickets {
		t.Errorf("the refusal left enrollments %d→%d, tickets %d→%d", enrollments, e, tickets, tk)
	}
	if err := dev.Unenroll(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := dev.CompanyPortalEnroll(ctx, base, chooser, device.Choice{Ownership: "personal", Scope: "device"})
	if err != nil || res.UserEnrollment {
		t.Fatalf("device enrollment after unenrolling: %+v, %v", res, err)
	}
	checkState(t, s, dev.UDID(), wantState{"Device", "company-portal", "device", "personal", "chooser@contoso.com", "company-portal", "BYOD user choice", false})
}
