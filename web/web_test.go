package web

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"html"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/api/handlers"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

const testKey = "dashboard-test-key-0123456789"

var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

const (
	idIPad    = "0000FE00-IPAD-0001"
	idHostile = "0000FE00-EVIL-0002"
	idGone    = "0000FE00-GONE-0003"
	hostile   = `<script>alert("pwned")</script><img src=x onerror=alert(1)>`
)

// env is a dashboard over a memory store, queuing through the real REST
// API's Enqueue (no push), mounted on an http.ServeMux.
type env struct {
	t    *testing.T
	st   *memory.Store
	d    *Dashboard
	h    http.Handler
	sigs map[int64]string
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, sigs: map[int64]string{}}
	a := handlers.New(st, nil, handlers.WithClock(func() time.Time { return testNow }))
	base := []Option{
		WithCommander(a),
		WithClock(func() time.Time { return testNow }),
		WithInfo(func() api.ServerInfo {
			return api.ServerInfo{EnrollmentURL: "https://mdm.test/enroll", CAURL: "https://mdm.test/ca", Topic: "com.apple.mgmt.External.test", Version: "test"}
		}),
		WithSignatureOf(func(en *store.TranscriptEntry) string { return e.sigs[en.Seq] }),
	}
	e.d = New(st, testKey, append(base, opts...)...)
	e.h = e.d.Handler()
	ctx := context.Background()
	for _, rec := range []*store.Enrollment{
		{ID: idIPad, Type: "Device", DeviceID: idIPad, UDID: idIPad, SerialNumber: "DMPTEST0001", ProductName: "iPad13,1",
			DeviceName: "QA iPad", OSVersion: "17.4", Enrolled: true, AuthenticatedAt: testNow.Add(-2 * time.Hour), LastSeen: testNow},
		{ID: idHostile, Type: "Device", DeviceID: idHostile, UDID: idHostile, SerialNumber: hostile, DeviceName: hostile,
			Enrolled: true, AuthenticatedAt: testNow.Add(-time.Hour)},
		{ID: idGone, Type: "Device", DeviceID: idGone, UDID: idGone, CheckedOut: true, AuthenticatedAt: testNow.Add(-3 * time.Hour)},
	} {
		if err := st.PutEnrollment(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

type resp struct {
	*http.Response
	Body string
}

func (e *env) do(method, target string, form url.Values, cookies ...*http.Cookie) resp {
	e.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return resp{rec.Result(), rec.Body.String()}
}

func cookie(t *testing.T, r resp, name string) *http.Cookie {
	t.Helper()
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in the answer (status %d)", name, r.StatusCode)
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", html)
	}
	return m[1]
}

// login goes through the form and returns the session cookie.
func (e *env) login() *http.Cookie {
	e.t.Helper()
	form := e.do("GET", PathLogin, nil)
	r := e.do("POST", PathLogin, url.Values{"key": {testKey}, "csrf": {csrfOf(e.t, form.Body)}}, cookie(e.t, form, loginCookie))
	if r.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login: %d\n%s", r.StatusCode, r.Body)
	}
	return cookie(e.t, r, sessionCookie)
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	// Without a session, a page sends the browser to the form, a fragment
	// answers 401.
	r := e.do("GET", PathPrefix+"/enrollments/"+idIPad, nil)
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), PathLogin+"?next=") {
		t.Fatalf("no session: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	req := httptest.NewRequest("GET", PathPrefix+"/enrollments", nil)
	req.Header.Set("X-Dashboard-Fragment", "1")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("fragment without session: %d", rec.Code)
	}

	form := e.do("GET", PathLogin+"?next="+url.QueryEscape(PathPrefix+"/status"), nil)
	lc := cookie(t, form, loginCookie)
	token := csrfOf(t, form.Body)

	// A wrong key: the form again, 401, a message that says what to do.
	r = e.do("POST", PathLogin, url.Values{"key": {"not-the-key"}, "csrf": {token}}, lc)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "That is not the API key") || !strings.Contains(r.Body, `name="key"`) {
		t.Fatalf("wrong key: %d\n%s", r.StatusCode, r.Body)
	}
	for _, c := range r.Cookies() {
		if c.Name == sessionCookie && c.MaxAge >= 0 {
			t.Fatal("a wrong key got a session cookie")
		}
	}

	// The right key with no CSRF token, or another login's token: refused.
	for name, vals := range map[string]url.Values{
		"no token":      {"key": {testKey}},
		"foreign token": {"key": {testKey}, "csrf": {e.d.mac("login", "someone-else")}},
		"session token": {"key": {testKey}, "csrf": {e.d.csrfToken(e.d.newSession())}},
	} {
		r = e.do("POST", PathLogin, vals, lc)
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, r.StatusCode)
		}
	}
	// The right key but the token without its cookie: refused too.
	if r = e.do("POST", PathLogin, url.Values{"key": {testKey}, "csrf": {token}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("token without its cookie: %d, want 403", r.StatusCode)
	}

	// The right key: a session cookie that is HttpOnly, SameSite=Strict,
	// not the key, and the redirect back to where the person was going.
	r = e.do("POST", PathLogin, url.Values{"key": {testKey}, "csrf": {token}, "next": {PathPrefix + "/status"}}, lc)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != PathPrefix+"/status" {
		t.Fatalf("right key: %d %q\n%s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	sc := cookie(t, r, sessionCookie)
	if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure || sc.Path != PathPrefix {
		t.Errorf("session cookie %+v", sc)
	}
	if strings.Contains(sc.Value, testKey) || strings.Contains(sc.Raw, testKey) {
		t.Fatal("the session cookie holds the API key")
	}
	if r = e.do("GET", PathPrefix, nil, sc); r.StatusCode != http.StatusOK {
		t.Fatalf("list with session: %d", r.StatusCode)
	}

	// A forged or expired session is no session.
	exp, _, _ := strings.Cut(sc.Value, ".")
	for _, v := range []string{exp + ".AAAA", "9999999999." + strings.Repeat("A", 43), "", "junk", strings.Repeat("9", 300)} {
		if r = e.do("GET", PathPrefix, nil, &http.Cookie{Name: sessionCookie, Value: v}); r.StatusCode != http.StatusSeeOther {
			t.Errorf("forged session %q: %d", v, r.StatusCode)
		}
	}
	later := newEnv(t, WithClock(func() time.Time { return testNow.Add(13 * time.Hour) }))
	if r = later.do("GET", PathPrefix, nil, sc); r.StatusCode != http.StatusSeeOther {
		t.Errorf("expired session: %d", r.StatusCode)
	}
	// Another API key does not accept this key's sessions.
	other := New(e.st, "another-key", WithClock(func() time.Time { return testNow }))
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", PathPrefix, nil)
	req.AddCookie(sc)
	other.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Errorf("session under another key: %d", rec.Code)
	}

	// An open redirect through next is refused.
	for _, next := range []string{"https://evil.test/", "//evil.test/dashboard", "/v1/reset", "/dashboard\\..\\x"} {
		if got := safeNext(next); got != PathPrefix {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	e := newEnv(t)
	req := httptest.NewRequest("GET", PathLogin, nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	c := cookie(t, resp{rec.Result(), ""}, loginCookie)
	if !c.Secure {
		t.Fatal("login cookie over TLS is not Secure")
	}
}

func TestCommandButtons(t *testing.T) {
	e := newEnv(t)
	sc := e.login()
	page := e.do("GET", PathPrefix+"/enrollments/"+idIPad, nil, sc)
	if page.StatusCode != 200 {
		t.Fatalf("device page: %d", page.StatusCode)
	}
	for _, c := range commands {
		if !strings.Contains(page.Body, `id="cmd-`+c.Name+`"`) {
			t.Errorf("no button for %s", c.Name)
		}
	}
	if !strings.Contains(page.Body, `data-confirm="Erase this device?`) {
		t.Error("EraseDevice asks for no confirmation")
	}
	token := csrfOf(t, page.Body)
	target := PathPrefix + "/enrollments/" + idIPad + "/commands"

	// No token, a stale one, another site's Origin: 403, nothing queued.
	for name, vals := range map[string]url.Values{
		"no token":    {"command": {"SecurityInfo"}},
		"stale token": {"command": {"SecurityInfo"}, "csrf": {e.d.csrfToken("123.abc")}},
	} {
		if r := e.do("POST", target, vals, sc); r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "security token") {
			t.Errorf("%s: %d", name, r.StatusCode)
		}
	}
	req := httptest.NewRequest("POST", target, strings.NewReader(url.Values{"command": {"SecurityInfo"}, "csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.test")
	req.AddCookie(sc)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("foreign Origin: %d", rec.Code)
	}
	if items, _ := e.st.QueueItems(context.Background(), idIPad); len(items) != 0 {
		t.Fatalf("refused forms queued %d commands", len(items))
	}

	// A name that is not a button: 400 naming the ones there are, escaped.
	r := e.do("POST", target, url.Values{"command": {"<b>Shutdown</b>"}, "csrf": {token}}, sc)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "Unknown command") || !strings.Contains(r.Body, "DeviceInformation, ProfileList") {
		t.Fatalf("bad command: %d\n%s", r.StatusCode, r.Body)
	}
	if strings.Contains(r.Body, "<b>Shutdown</b>") {
		t.Fatal("the command name is echoed unescaped")
	}

	// Every button queues its command through the Commander.
	for _, c := range commands {
		r := e.do("POST", target, url.Values{"command": {c.Name}, "csrf": {token}}, sc)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", c.Name, r.StatusCode, r.Body)
		}
		loc, _ := url.Parse(r.Header.Get("Location"))
		if loc.Path != PathPrefix+"/enrollments/"+idIPad || !strings.HasPrefix(loc.Query().Get("queued"), c.Name+" ") {
			t.Errorf("%s: redirect to %q", c.Name, loc)
		}
	}
	items, err := e.st.QueueItems(context.Background(), idIPad)
	if err != nil || len(items) != len(commands) {
		t.Fatalf("queue: %d items, %v", len(items), err)
	}
	for i, c := range commands {
		if items[i].RequestType != c.Name {
			t.Errorf("item %d is %s, want %s", i, items[i].RequestType, c.Name)
		}
	}
	// The page shows them queued, and the live fragment too.
	page = e.do("GET", PathPrefix+"/enrollments/"+idIPad+"?queued="+url.QueryEscape("SecurityInfo X"), nil, sc)
	if !strings.Contains(page.Body, `id="queued"`) || !strings.Contains(page.Body, items[0].CommandUUID) {
		t.Errorf("device page does not show the queue")
	}
	live := e.do("GET", PathPrefix+"/enrollments/"+idIPad+"/live", nil, sc)
	if live.StatusCode != 200 || !strings.Contains(live.Body, items[3].CommandUUID) || strings.Contains(live.Body, "<html") {
		t.Errorf("live fragment: %d\n%s", live.StatusCode, live.Body)
	}

	// A checked-out device has no buttons; a forced POST is refused by the
	// Commander with its status and reason, shown on the device page.
	gone := e.do("GET", PathPrefix+"/enrollments/"+idGone, nil, sc)
	if strings.Contains(gone.Body, `id="cmd-`) {
		t.Error("buttons shown for a checked-out device")
	}
	r = e.do("POST", PathPrefix+"/enrollments/"+idGone+"/commands", url.Values{"command": {"SecurityInfo"}, "csrf": {token}}, sc)
	if r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "SecurityInfo was not queued") || !strings.Contains(r.Body, "checked out") {
		t.Fatalf("checked-out device: %d\n%s", r.StatusCode, r.Body)
	}
	// An unknown enrollment: the 404 page.
	r = e.do("POST", PathPrefix+"/enrollments/nobody/commands", url.Values{"command": {"SecurityInfo"}, "csrf": {token}}, sc)
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("command for unknown enrollment: %d\n%s", r.StatusCode, r.Body)
	}
}

func TestUnknownEnrollment404(t *testing.T) {
	e := newEnv(t)
	sc := e.login()
	for _, p := range []string{"/enrollments/no-such-device", "/enrollments/no-such-device/live", "/enrollments/" + url.PathEscape(hostile)} {
		r := e.do("GET", PathPrefix+p, nil, sc)
		if r.StatusCode != http.StatusNotFound || !strings.Contains(r.Body, "No enrollment with ID") {
			t.Errorf("%s: %d\n%s", p, r.StatusCode, r.Body)
		}
		if strings.Contains(r.Body, "<script>alert") {
			t.Errorf("%s: the ID is echoed unescaped", p)
		}
	}
}

func TestNoCommanderNoButtons(t *testing.T) {
	e := newEnv(t, WithCommander(nil))
	sc := e.login()
	page := e.do("GET", PathPrefix+"/enrollments/"+idIPad, nil, sc)
	if strings.Contains(page.Body, `id="cmd-`) {
		t.Error("buttons shown without a Commander")
	}
	r := e.do("POST", PathPrefix+"/enrollments/"+idIPad+"/commands", url.Values{"command": {"SecurityInfo"}, "csrf": {csrfOf(t, page.Body)}}, sc)
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("command without a Commander: %d", r.StatusCode)
	}
}

// TestHostileContentEscaped: device names, serials and transcript bodies a
// device chose are shown as text, never as markup.
func TestHostileContentEscaped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	body := `<?xml version="1.0"?><plist version="1.0"><dict><key>DeviceName</key><string>` +
		strings.NewReplacer("<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(hostile) + `</string><key>MessageType</key><string>Authenticate</string></dict></plist>`
	if err := e.st.AppendTranscript(ctx,
		&store.TranscriptEntry{Time: testNow, EnrollmentID: idHostile, Kind: "checkin", MessageType: "Authenticate", Method: "PUT", Path: "/checkin", Status: 200,
			Request: []byte(body), Response: []byte(`</pre><script>alert(2)</script>`)},
		&store.TranscriptEntry{Time: testNow, EnrollmentID: idHostile, Kind: "command", MessageType: "Acknowledged", CommandUUID: "U1", Method: "PUT", Path: "/mdm", Status: 400,
			Note: hostile, Request: []byte("not a plist " + hostile)},
	); err != nil {
		t.Fatal(err)
	}
	sc := e.login()
	for _, p := range []string{PathPrefix, PathPrefix + "/enrollments", PathPrefix + "/enrollments/" + idHostile, PathPrefix + "/enrollments/" + idHostile + "/live"} {
		r := e.do("GET", p, nil, sc)
		if r.StatusCode != 200 {
			t.Fatalf("%s: %d", p, r.StatusCode)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "</pre><script>"} {
			if strings.Contains(r.Body, bad) {
				t.Errorf("%s holds %q unescaped", p, bad)
			}
		}
		if !strings.Contains(r.Body, "&lt;script&gt;alert(") {
			t.Errorf("%s does not show the hostile text escaped", p)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
	}
}

func TestListNewestFirstWithQueueDepth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.Enqueue(ctx, &store.Command{UUID: "Q1", RequestType: "ProfileList", Raw: []byte("x"), CreatedAt: testNow}, idIPad); err != nil {
		t.Fatal(err)
	}
	sc := e.login()
	r := e.do("GET", PathPrefix+"/enrollments", nil, sc)
	iHostile, iIPad, iGone := strings.Index(r.Body, `data-id="`+idHostile), strings.Index(r.Body, `data-id="`+idIPad), strings.Index(r.Body, `data-id="`+idGone)
	if iHostile < 0 || iIPad < 0 || iGone < 0 || !(iHostile < iIPad && iIPad < iGone) {
		t.Fatalf("order %d %d %d, want newest first\n%s", iHostile, iIPad, iGone, r.Body)
	}
	row := r.Body[iIPad:]
	row = row[:strings.Index(row, "</tr>")]
	for _, want := range []string{"QA iPad", "DMPTEST0001", "17.4", "enrolled", `<td class="num">1</td>`, "2025-03-14 15:09:26Z"} {
		if !strings.Contains(row, want) {
			t.Errorf("iPad row lacks %q:\n%s", want, row)
		}
	}
	if !strings.Contains(r.Body, "checked out") {
		t.Error("checked-out state not shown")
	}
	page := e.do("GET", PathPrefix, nil, sc)
	if !strings.Contains(page.Body, `data-refresh="/dashboard/enrollments"`) || !strings.Contains(page.Body, "/dashboard/static/dashboard.js") {
		t.Error("the list does not refresh itself")
	}
}

func TestTranscriptAndResults(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ca, err := certs.NewCA("dashboard test CA", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssueSigner("device identity DMPTEST0001", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	result := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>CommandUUID</key><string>CMD-1</string><key>QueryResponses</key><dict><key>DeviceName</key><string>QA iPad</string></dict><key>Status</key><string>Acknowledged</string><key>UDID</key><string>` + idIPad + `</string></dict></plist>`)
	sig, err := certs.SignMdmSignature(result, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Enqueue(ctx, &store.Command{UUID: "CMD-1", RequestType: "DeviceInformation", Raw: []byte("x"), CreatedAt: testNow}, idIPad); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SaveResult(ctx, idIPad, "CMD-1", "Acknowledged", result, testNow); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AppendTranscript(ctx, &store.TranscriptEntry{Time: testNow, EnrollmentID: idIPad, Kind: "command",
		MessageType: "Acknowledged", CommandUUID: "CMD-1", Method: "PUT", Path: "/mdm", Status: 200, Request: result}); err != nil {
		t.Fatal(err)
	}
	entries, _ := e.st.Transcript(ctx, idIPad, 0, 0)
	e.sigs[entries[0].Seq] = sig

	sc := e.login()
	r := e.do("GET", PathPrefix+"/enrollments/"+idIPad, nil, sc)
	for _, want := range []string{
		"DeviceInformation", "CMD-1", "Acknowledged",
		"&lt;dict&gt;\n  &lt;key&gt;CommandUUID&lt;/key&gt;", // re-indented, escaped
		"verifies", "CN=device identity DMPTEST0001", "CN=dashboard test CA", serialHex(cert.SerialNumber),
	} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
}

func TestExplainSignature(t *testing.T) {
	ca, err := certs.NewCA("sig test CA", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssueSigner("sig signer", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("<plist><dict/></plist>")
	good, err := certs.SignMdmSignature(body, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	s := explainSignature(good, body)
	if !s.Present || !s.Verified || !strings.HasPrefix(s.Subject, "CN=sig signer") || !strings.HasPrefix(s.Issuer, "CN=sig test CA") || s.Serial != serialHex(cert.SerialNumber) || s.SigningTime.IsZero() || s.Problem != "" {
		t.Fatalf("good signature: %+v", s)
	}
	// Over another body it names the signer but does not verify.
	s = explainSignature(good, []byte("<plist><dict><key>x</key></dict></plist>"))
	if !s.Present || s.Verified || !strings.HasPrefix(s.Subject, "CN=sig signer") || s.Problem == "" {
		t.Fatalf("tampered body: %+v", s)
	}
	der, _ := base64.StdEncoding.DecodeString(good)
	for name, h := range map[string]string{
		"not base64":    "%%%not base64%%%",
		"not CMS":       base64.StdEncoding.EncodeToString([]byte("hello")),
		"truncated CMS": base64.StdEncoding.EncodeToString(der[:len(der)/2]),
		"huge":          strings.Repeat("A", maxSignatureHeader+4),
	} {
		s := explainSignature(h, body)
		if !s.Present || s.Verified || s.Problem == "" {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if s := explainSignature("  ", body); s.Present {
		t.Error("blank header is present")
	}
}

func TestShowBody(t *testing.T) {
	for _, tc := range []struct {
		name, in, kind, contains, note string
	}{
		{"empty", "", "", "", ""},
		{"plist", `<?xml version="1.0"?><plist version="1.0"><dict><key>A</key><integer>1</integer></dict></plist>`, "plist", "<dict>\n  <key>A</key>", ""},
		{"broken plist", `<plist><dict><key>A</key>`, "text", "<key>A</key>", "shown as sent"},
		{"deep plist", "<plist>" + strings.Repeat("<array>", 5000) + strings.Repeat("</array>", 5000) + "</plist>", "text", "<array>", "shown as sent"},
		{"text", "403 refused", "text", "403 refused", ""},
		{"binary plist", "bplist00\x01\x02", "binary", "62 70 6c 69", "binary property list"},
		{"not utf-8", "\xff\xfe\x00", "binary", "ff fe 00", "not UTF-8"},
		{"huge text", strings.Repeat("é", maxShownBody), "text", "éé", "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := showBody([]byte(tc.in))
			if b.Kind != tc.kind || !strings.Contains(b.Text, tc.contains) || !strings.Contains(b.Note, tc.note) {
				t.Fatalf("got kind %q note %q text %.200q", b.Kind, b.Note, b.Text)
			}
			if len(b.Text) > maxShownBody+1024 && tc.kind != "binary" {
				t.Fatalf("shows %d bytes", len(b.Text))
			}
		})
	}
}

func TestEnrollPageQR(t *testing.T) {
	e := newEnv(t)
	// Public: no login needed.
	r := e.do("GET", PathEnroll, nil)
	if r.StatusCode != 200 || !strings.Contains(r.Body, `href="https://mdm.test/ca"`) || !strings.Contains(r.Body, `href="https://mdm.test/enroll"`) {
		t.Fatalf("enroll page: %d\n%s", r.StatusCode, r.Body)
	}
	m := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no inline QR code:\n%s", r.Body)
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(strings.NewReader(string(raw)))
	if err != nil || img.Bounds().Dx() != 320 {
		t.Fatalf("inline QR: %v %v", err, img)
	}
	r = e.do("GET", PathEnroll+"/qr.png", nil)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("qr.png: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if _, err := png.Decode(strings.NewReader(r.Body)); err != nil {
		t.Fatalf("qr.png: %v", err)
	}
	none := newEnv(t, WithInfo(func() api.ServerInfo { return api.ServerInfo{} }))
	if r := none.do("GET", PathEnroll+"/qr.png", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("qr.png without a URL: %d", r.StatusCode)
	}
}

func TestStatusPage(t *testing.T) {
	push := &api.PushCertStatus{Topic: "com.apple.mgmt.External.test", Subject: "CN=APSP:test", State: api.PushCertExpiringSoon, DaysLeft: 12, Warnings: []string{"expires in 12 days: renew it"}}
	e := newEnv(t, WithPushStatus(func(context.Context) (*api.PushCertStatus, error) { return push, nil }))
	sc := e.login()
	r := e.do("GET", PathStatus, nil, sc)
	for _, want := range []string{"expiring_soon", "12 days left", "com.apple.mgmt.External.test", "renew it", `id="token-status">Not configured.`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	// A token func that returns nil is "not configured" too; one that
	// fails says why (a 4xx reason) or only that it failed (a 5xx).
	e = newEnv(t,
		WithPushStatus(func(context.Context) (*api.PushCertStatus, error) { return nil, errors.New("secret detail") }),
		WithTokenStatus(func(context.Context) (*ADETokenStatus, error) { return nil, nil }))
	r = e.do("GET", PathStatus, nil, e.login())
	if !strings.Contains(r.Body, "Not configured.") || strings.Contains(r.Body, "secret detail") || !strings.Contains(r.Body, "internal error") {
		t.Errorf("status page with nil token and failing push:\n%s", r.Body)
	}
	e = newEnv(t, WithTokenStatus(func(context.Context) (*ADETokenStatus, error) {
		return &ADETokenStatus{ServerName: "mockmdm ADE", OrgName: "Example School", State: "valid", DaysLeft: 300}, nil
	}))
	r = e.do("GET", PathStatus, nil, e.login())
	if !strings.Contains(r.Body, "Example School") || !strings.Contains(r.Body, "300 days left") {
		t.Errorf("token status not shown:\n%s", r.Body)
	}
	e = newEnv(t, WithTokenStatus(func(context.Context) (*ADETokenStatus, error) {
		return nil, httperr.New(http.StatusConflict, "the token file does not decrypt with the server key")
	}))
	if r = e.do("GET", PathStatus, nil, e.login()); !strings.Contains(r.Body, "does not decrypt") {
		t.Errorf("token error not shown:\n%s", r.Body)
	}
}

func TestLogoutAndStatic(t *testing.T) {
	e := newEnv(t)
	sc := e.login()
	page := e.do("GET", PathPrefix, nil, sc)
	if r := e.do("POST", PathLogout, url.Values{}, sc); r.StatusCode != http.StatusForbidden {
		t.Errorf("logout without token: %d", r.StatusCode)
	}
	r := e.do("POST", PathLogout, url.Values{"csrf": {csrfOf(t, page.Body)}}, sc)
	if r.StatusCode != http.StatusSeeOther || cookie(t, r, sessionCookie).MaxAge >= 0 {
		t.Errorf("logout: %d", r.StatusCode)
	}
	for file, ct := range map[string]string{"style.css": "text/css", "dashboard.js": "text/javascript"} {
		r := e.do("GET", PathPrefix+"/static/"+file, nil)
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), ct) || r.Body == "" {
			t.Errorf("%s: %d %s", file, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	if r := e.do("GET", PathPrefix+"/static/nope.txt", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("missing static file: %d", r.StatusCode)
	}
}

// TestDevicePageShowsManagement: the device page says how the enrollment
// came about — program, mode, ownership, user, how the user signed in,
// registration and compliance — what a QA team checks after each path.
func TestDevicePageShowsManagement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.PutEnrollment(ctx, &store.Enrollment{ID: "ade-1", Type: "Device", DeviceID: "ade-1", UDID: "ade-1", Enrolled: true,
		Management: store.Management{Program: store.ProgramADE, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate, Supervised: true,
			User: "user@contoso.com", AuthMethod: "setup-assistant-modern", TypeProfile: "corp", CompliantInMDM: true}}); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", PathPrefix+"/enrollments/ade-1", nil, e.login())
	for _, want := range []string{"ade · device · profile “corp”", "corporate · supervised", "user@contoso.com", "setup-assistant-modern",
		"not registered · compliant in the MDM · not compliant in the directory"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
}

// TestDevicePageShowsDeclarations: the device page joins the enrollment's
// declarations with the status its device reported: active or not, valid
// or not with the reasons, an older version than the server's, not yet
// reported; the status items the device could not report; all escaped.
func TestDevicePageShowsDeclarations(t *testing.T) {
	reported := time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)
	view := &api.EnrollmentDeclarations{
		EnrollmentID: "dev-1", DeclarationsToken: "tok123",
		Declarations: []api.Declaration{
			{Type: "com.apple.activation.simple", Identifier: "act", ServerToken: "a1"},
			{Type: "com.apple.configuration.management.test", Identifier: "conf", ServerToken: "c2"},
			{Type: "com.apple.configuration.management.test", Identifier: "<script>x</script>", ServerToken: "n1"},
			{Type: "com.apple.management.organization-info", Identifier: "org", ServerToken: "o1"},
		},
		Status: &api.DeclarativeStatus{ReceivedAt: reported, StatusItems: map[string]any{"management": map[string]any{"declarations": map[string]any{
			"activations":    []any{map[string]any{"identifier": "act", "server-token": "a1", "active": true, "valid": "valid"}},
			"configurations": []any{map[string]any{"identifier": "conf", "server-token": "c1", "active": false, "valid": "invalid", "reasons": []any{map[string]any{"code": "Error.InvalidPayload", "description": "Echo missing"}}}},
		}}}, Errors: []any{map[string]any{"StatusItem": "device.power.battery-health"}}},
	}
	var asked string
	e := newEnv(t, WithDeclarations(func(_ context.Context, id string) (*api.EnrollmentDeclarations, error) {
		asked = id
		return view, nil
	}))
	ctx := context.Background()
	if err := e.st.PutEnrollment(ctx, &store.Enrollment{ID: "dev-1", Type: "Device", DeviceID: "dev-1", UDID: "dev-1", Enrolled: true}); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", PathPrefix+"/enrollments/dev-1", nil, e.login())
	if asked != "dev-1" {
		t.Errorf("declarations asked for %q", asked)
	}
	for _, want := range []string{"Declarative management", "tok123", `data-identifier="act"`, "active</span> · valid",
		"inactive</span> · invalid · an older version · Error.InvalidPayload Echo missing", "not reported yet", "device.power.battery-health",
		"&lt;script&gt;x&lt;/script&gt;", `id="cmd-DeclarativeManagement"`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
	if strings.Contains(r.Body, "<script>x</script>") {
		t.Error("an identifier reached the page unescaped")
	}
	// Without a source there is no section.
	plain := newEnv(t)
	if err := plain.st.PutEnrollment(ctx, &store.Enrollment{ID: "dev-1", Type: "Device", DeviceID: "dev-1", UDID: "dev-1", Enrolled: true}); err != nil {
		t.Fatal(err)
	}
	if r := plain.do("GET", PathPrefix+"/enrollments/dev-1", nil, plain.login()); strings.Contains(r.Body, "Declarative management") {
		t.Error("a declarations section without a source")
	}
}
