package ade

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/nanodep/client"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm/schema"
)

// session signs GET /session with NanoDEP's OAuth code and returns the request.
func signedSession(t *testing.T, h *harness, tok certs.ADEToken) *http.Request {
	t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/session", nil)
	req.Header.Set("User-Agent", "test")
	if err := client.SetAuthorizationHeader(&client.OAuth1Tokens{ConsumerKey: tok.ConsumerKey, ConsumerSecret: tok.ConsumerSecret, AccessToken: tok.AccessToken, AccessSecret: tok.AccessSecret}, req); err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	code, b, h := roundTripHeader(t, req)
	return code, string(b) + " | " + h.Get("X-Mockmdm-Reason")
}

func TestHostileInput(t *testing.T) {
	h := newHarness(t, WithMaxBody(64<<10))
	ctx := context.Background()
	_, tok, err := h.svc.IssueToken(ctx, h.svc.KeyPair().Cert, certs.VariantValid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.BuyDevices(ctx, Device{SerialNumber: "DMQX1"}); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, signedSession(t, h, tok))
	if code != 200 || !strings.Contains(body, "auth_session_token") {
		t.Fatalf("good session: %d %s", code, body)
	}
	sess := body[strings.Index(body, `":"`)+3 : strings.Index(body, `"}`)]

	reused := signedSession(t, h, tok)
	if c, _ := do(t, reused.Clone(ctx)); c != 200 {
		t.Fatalf("first use: %d", c)
	}

	type tc struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}
	api := func(method, path, body string, edit func(*http.Request)) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
			req.Header.Set("User-Agent", "test")
			req.Header.Set("X-Server-Protocol-Version", "7")
			req.Header.Set("X-ADM-Auth-Session", sess)
			if edit != nil {
				edit(req)
			}
			return req
		}
	}
	badSig := func() *http.Request {
		r := signedSession(t, h, tok)
		a := r.Header.Get("Authorization")
		i := strings.Index(a, `oauth_signature="`) + len(`oauth_signature="`)
		r.Header.Set("Authorization", a[:i]+"AAAA"+a[i+4:])
		return r
	}
	wrongSecret := func() *http.Request { t2 := tok; t2.AccessSecret = "AS_wrong"; return signedSession(t, h, t2) }
	noNonce := func() *http.Request {
		r := signedSession(t, h, tok)
		a := r.Header.Get("Authorization")
		i := strings.Index(a, "oauth_nonce=")
		j := i + strings.Index(a[i:], ",")
		r.Header.Set("Authorization", a[:i]+a[j+1:])
		return r
	}
	for _, c := range []tc{
		{"bad signature", badSig, 401, "UNAUTHORIZED"},
		{"wrong access secret", wrongSecret, 401, "UNAUTHORIZED"},
		{"missing nonce", noNonce, 400, "BAD_REQUEST"},
		{"reused nonce", func() *http.Request { return reused.Clone(ctx) }, 401, "UNAUTHORIZED"},
		{"no Authorization", api("GET", "/session", "", func(r *http.Request) { r.Header.Del("Authorization") }), 400, "BAD_REQUEST"},
		{"not OAuth", api("GET", "/session", "", func(r *http.Request) { r.Header.Set("Authorization", "Basic Zm9vOmJhcg==") }), 400, "BAD_REQUEST"},
		{"PLAINTEXT method", api("GET", "/session", "", func(r *http.Request) {
			r.Header.Set("Authorization", `OAuth oauth_consumer_key="a", oauth_token="b", oauth_signature_method="PLAINTEXT", oauth_signature="x", oauth_timestamp="1", oauth_nonce="n"`)
		}), 400, "BAD_REQUEST"},
		{"unknown access token", api("GET", "/session", "", func(r *http.Request) {
			r.Header.Set("Authorization", `OAuth oauth_consumer_key="a", oauth_token="AT_nope", oauth_signature_method="HMAC-SHA1", oauth_signature="eA==", oauth_timestamp="1", oauth_nonce="n"`)
		}), 401, "UNAUTHORIZED"},
		{"no session", api("GET", "/account", "", func(r *http.Request) { r.Header.Del("X-ADM-Auth-Session") }), 401, "UNAUTHORIZED"},
		{"unknown session", api("GET", "/account", "", func(r *http.Request) { r.Header.Set("X-ADM-Auth-Session", "forged") }), 401, "UNAUTHORIZED"},
		{"missing User-Agent", api("GET", "/account", "", func(r *http.Request) { r.Header.Set("User-Agent", "") }), 400, "USER_AGENT_MISSING"},
		{"overlong User-Agent", api("GET", "/account", "", func(r *http.Request) { r.Header.Set("User-Agent", strings.Repeat("u", 300)) }), 400, "USER_AGENT_INVALID"},
		{"missing protocol version", api("GET", "/account", "", func(r *http.Request) { r.Header.Del("X-Server-Protocol-Version") }), 400, "BAD_REQUEST"},
		{"bad profile JSON", api("POST", "/profile", `{"profile_name":`, nil), 400, "MALFORMED_REQUEST_BODY"},
		{"unknown profile key", api("POST", "/profile", `{"profile_name":"a","url":"https://x","bogus":1}`, nil), 400, "MALFORMED_REQUEST_BODY"},
		{"no url", api("POST", "/profile", `{"profile_name":"a"}`, nil), 400, "CONFIG_URL_REQUIRED"},
		{"bad url", api("POST", "/profile", `{"profile_name":"a","url":"ftp://x"}`, nil), 400, "CONFIG_URL_INVALID"},
		{"no name", api("POST", "/profile", `{"url":"https://x"}`, nil), 400, "CONFIG_NAME_REQUIRED"},
		{"long name", api("POST", "/profile", `{"url":"https://x","profile_name":"`+strings.Repeat("n", 126)+`"}`, nil), 400, "CONFIG_NAME_INVALID"},
		{"unremovable unsupervised", api("POST", "/profile", `{"url":"https://x","profile_name":"a","is_mdm_removable":false}`, nil), 400, "FLAGS_INVALID"},
		{"bad language", api("POST", "/profile", `{"url":"https://x","profile_name":"a","language":"English"}`, nil), 400, "LOCALE_INVALID"},
		{"bad region", api("POST", "/profile", `{"url":"https://x","profile_name":"a","language":"en","region":"usa"}`, nil), 400, "LOCALE_INVALID"},
		{"invalid skip item", api("POST", "/profile", `{"url":"https://x","profile_name":"a","skip_setup_items":["Nope"]}`, nil), 400, "SKIP_SETUP_ITEMS_INVALID"},
		{"assign no uuid", api("PUT", "/profile/devices", `{"devices":["DMQX1"]}`, nil), 400, "PROFILE_UUID_REQUIRED"},
		{"assign no devices", api("PUT", "/profile/devices", `{"profile_uuid":"X"}`, nil), 400, "DEVICE_ID_REQUIRED"},
		{"assign unknown profile", api("PUT", "/profile/devices", `{"profile_uuid":"X","devices":["DMQX1"]}`, nil), 404, "NOT_FOUND"},
		{"get unknown profile", api("GET", "/profile?profile_uuid=nope", "", nil), 404, "NOT_FOUND"},
		{"invalid cursor", api("POST", "/devices/sync", `{"cursor":"abc"}`, nil), 400, "INVALID_CURSOR"},
		{"sync without cursor", api("POST", "/devices/sync", `{}`, nil), 400, "CURSOR_REQUIRED"},
		{"fetch bad JSON", api("POST", "/server/devices", `[1,2`, nil), 400, "MALFORMED_REQUEST_BODY"},
		{"lock bad JSON", api("POST", "/device/activationlock", `{"device":`, nil), 400, "MALFORMED_REQUEST_BODY"},
		{"lock without device", api("POST", "/device/activationlock", `{"escrow_key":"ab"}`, nil), 400, "MALFORMED_REQUEST_BODY"},
		{"lock device not a string", api("POST", "/device/activationlock", `{"device":["DMQX1"]}`, nil), 400, "MALFORMED_REQUEST_BODY"},
		{"lock overlong lost message", api("POST", "/device/activationlock", `{"device":"DMQX1","lost_message":"`+strings.Repeat("m", 5000)+`"}`, nil), 400, "MALFORMED_REQUEST_BODY"},
		{"lock without session", api("POST", "/device/activationlock", `{"device":"DMQX1"}`, func(r *http.Request) { r.Header.Del("X-ADM-Auth-Session") }), 401, "UNAUTHORIZED"},
		{"discovery without URL", api("POST", "/account-driven-enrollment/profile", `{}`, nil), 400, "MDM_SERVICE_DISCOVERY_URL_REQUIRED"},
		{"discovery over http", api("POST", "/account-driven-enrollment/profile", `{"mdm_service_discovery_url":"http://x.example/"}`, nil), 400, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"},
		{"discovery fetch before assign", api("GET", "/account-driven-enrollment/profile", "", nil), 404, "NOT_FOUND"},
		{"discovery without session", api("DELETE", "/account-driven-enrollment/profile", "", func(r *http.Request) { r.Header.Del("X-ADM-Auth-Session") }), 401, "UNAUTHORIZED"},
		{"huge body", api("POST", "/devices", `{"devices":["`+strings.Repeat("A", 70<<10)+`"]}`, nil), 413, "REQUEST_ENTITY_TOO_LARGE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(t, c.req())
			if code != c.status || !strings.HasPrefix(body, c.code+" | ") {
				t.Errorf("got %d %q, want %d %s", code, body, c.status, c.code)
			}
			if strings.HasSuffix(body, "| ") {
				t.Errorf("no X-Mockmdm-Reason for %s", c.code)
			}
		})
	}

	// Expired cursor: a fetch cursor older than 7 days.
	resp, err := h.svc.fetch(ctx, fetchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	h.clk.add(8 * 24 * time.Hour)
	if _, err := h.svc.sync(ctx, fetchRequest{Cursor: &resp.Cursor}); err == nil || !strings.Contains(err.Error(), "EXPIRED_CURSOR") {
		t.Errorf("old cursor: %v", err)
	}
	// Expired session, then re-auth works.
	code, body = do(t, api("GET", "/account", "", nil)())
	if code != 401 || !strings.HasPrefix(body, "UNAUTHORIZED") {
		t.Errorf("expired session: %d %s", code, body)
	}
}

func TestTokenUploadAndActivationRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	other, err := certs.NewTokenKeyPair("someone else", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p7m, _, err := h.svc.IssueToken(ctx, other.Cert, certs.VariantValid)
	if err != nil {
		t.Fatal(err)
	}
	put := func(q string, body []byte) (int, string) {
		req, _ := http.NewRequest("PUT", h.srv.URL+"/v1/ade/token"+q, strings.NewReader(string(body)))
		return do(t, req)
	}
	if c, b := put("", p7m); c != 400 || !strings.Contains(b, "someone else") || !strings.Contains(b, "INVALID_TOKEN") {
		t.Errorf("wrong recipient: %d %s", c, b)
	}
	for _, v := range []certs.TokenVariant{certs.VariantExpired, certs.VariantCorrupt, certs.VariantWrongRecipient} {
		bad, _, err := h.svc.IssueToken(ctx, h.svc.KeyPair().Cert, v)
		if err != nil {
			t.Fatal(err)
		}
		if c, b := put("", bad); c != 400 {
			t.Errorf("%s: %d %s", v, c, b)
		}
	}
	good1, _, _ := h.svc.IssueToken(ctx, h.svc.KeyPair().Cert, certs.VariantValid)
	good2, _, _ := h.svc.IssueToken(ctx, h.svc.KeyPair().Cert, certs.VariantValid)
	if c, b := put("", good1); c != 200 || !strings.Contains(b, `"state":"active"`) {
		t.Errorf("upload: %d %s", c, b)
	}
	if c, b := put("", good2); c != 409 {
		t.Errorf("another consumer key: %d %s", c, b)
	}
	if c, b := put("?force=true", good2); c != 200 {
		t.Errorf("forced: %d %s", c, b)
	}
	var e map[string]string
	if c := postJSON(t, h.srv.URL+"/ade/activation", `{"serial_number":"NOTOURS"}`, &e); c != 404 || e["reason"] == "" {
		t.Errorf("unowned serial: %d %v", c, e)
	}
	h.svc.BuyDevices(ctx, Device{SerialNumber: "OURS1"})
	if c := postJSON(t, h.srv.URL+"/ade/activation", `{"serial_number":"OURS1"}`, &e); c != 404 || e["error"] != "NO_PROFILE" {
		t.Errorf("no profile: %d %v", c, e)
	}
	if c := postJSON(t, h.srv.URL+"/ade/activation", `{"serial`, &e); c != 400 {
		t.Errorf("bad JSON: %d %v", c, e)
	}
}

// FuzzParseProfile: profile bodies never panic; errors are 4xx apiErrors.
func FuzzParseProfile(f *testing.F) {
	for _, s := range []string{`{"profile_name":"a","url":"https://x"}`, `{"profile_name":"a","url":"https://x","skip_setup_items":["Siri"],"is_supervised":true,"is_mdm_removable":false}`, `{`, `[]`, `null`, `{"devices":["A"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseProfile(b); err != nil {
			if ae, ok := err.(*apiError); !ok || ae.Status/100 != 4 {
				t.Fatalf("%v", err)
			}
		}
	})
}

// FuzzParseSerials: device-list bodies never panic.
func FuzzParseSerials(f *testing.F) {
	for _, s := range []string{`{"devices":["A","B"]}`, `{"devices":[],"profile_uuid":"x"}`, `{"devices":"A"}`, `{}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := ParseSerials(b); err != nil {
			if ae, ok := err.(*apiError); !ok || ae.Status != 400 {
				t.Fatalf("%v", err)
			}
		}
	})
}

// FuzzParseOAuthHeader: the Authorization parser never panics, and what it
// accepts has no duplicated names and no realm.
func FuzzParseOAuthHeader(f *testing.F) {
	for _, s := range []string{`OAuth oauth_consumer_key="CK_1", oauth_token="AT_1", oauth_signature_method="HMAC-SHA1", oauth_signature="a%2Bb%3D", oauth_timestamp="1", oauth_nonce="n", oauth_version="1.0"`, `OAuth realm="x"`, `OAuth a="1", a="2"`, `OAuth a=1`, `Basic x`, `OAuth a="%zz"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		m, err := ParseOAuthHeader(h)
		if err == nil {
			if _, ok := m["realm"]; ok {
				t.Fatal("realm kept")
			}
		}
	})
}

// TestSkipKeysMatchSchema: the copied table is the SkipKeys schema's key set.
func TestSkipKeysMatchSchema(t *testing.T) {
	sk, ok := schema.Other("skipkeys")
	if !ok {
		t.Fatal("mdm/schema has no SkipKeys")
	}
	want := map[string]bool{}
	for _, k := range sk.PayloadKeys {
		want[k.Name] = true
	}
	if len(want) != len(skipSetupItems) {
		t.Errorf("schema has %d skip keys, table %d", len(want), len(skipSetupItems))
	}
	for k := range want {
		if !skipSetupItems[k] {
			t.Errorf("skip key %s missing from the table", k)
		}
	}
}
