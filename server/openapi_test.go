package server

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestEveryRouteInOpenAPI holds docs/openapi.yaml to the route table: every
// method and path the server serves must be described, and every path the
// spec describes must be served.
func TestEveryRouteInOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	s := newTestServer(t)
	served := map[string]bool{}
	for _, r := range s.Routes() {
		served[r.Method+" "+r.Path] = true
		ops, ok := spec.Paths[r.Path]
		if !ok {
			t.Errorf("route %s %s is not in docs/openapi.yaml", r.Method, r.Path)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s: docs/openapi.yaml describes the path but not the method", r.Method, r.Path)
		}
	}
	for path, ops := range spec.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				if !served[strings.ToUpper(method)+" "+path] {
					t.Errorf("docs/openapi.yaml describes %s %s, which the server does not serve", strings.ToUpper(method), path)
				}
			}
		}
	}
	if len(s.Routes()) < 15 {
		t.Errorf("route table looks too small: %v", s.Routes())
	}
}

// TestEveryEndpointAuthenticatedOrPublic lists, deliberately, the routes
// that need no API key; every other route must refuse a request without it.
func TestEveryEndpointAuthenticatedOrPublic(t *testing.T) {
	public := map[string]bool{
		"GET /": true, "GET /healthz": true, "GET /enroll": true, "GET /ca": true, "GET /ca.pem": true,
		"GET /scep": true, "POST /scep": true, // SCEP: guarded by its challenge
		"PUT /checkin": true, "POST /checkin": true, "PUT /mdm": true, "POST /mdm": true, // devices: guarded by their identity
		"POST /apns/3/device/{token}": true, // mock APNs: guarded by the provider's push certificate
		"GET /apns/mock/v1/stream":    true, // mock APNs device stream: a device names its token
		// BYOD (server/byod.go): guarded by the user's sign-in and its session or bearer token.
		"POST /portal/v1/signin": true, "GET /portal/v1/options": true, "POST /portal/v1/enroll": true, "POST /portal/v1/register": true,
		"GET /portal": true, "POST /portal": true, "GET /portal/choose": true, "POST /portal/enroll": true, "GET /portal/profile/{ticket}": true,
		"GET /enroll/web": true, "POST /enroll/web": true, "GET /enroll/web/choose": true, "POST /enroll/web/enroll": true, "GET /enroll/web/profile/{ticket}": true,
		"GET /.well-known/com.apple.remotemanagement": true, "POST /enroll/account-driven": true,
		"GET /enroll/account-driven/signin": true, "POST /enroll/account-driven/signin": true,
		"GET /profiles/{name}": true, // hosted profiles a legacy declaration names: test data, as /enroll's profile
		"GET /data/{name}":     true, // hosted asset data a declaration names: the same
		// The simulated ABM's ADE API: OAuth 1.0a (/session), then its session header.
		"GET /session": true, "GET /account": true, "POST /server/devices": true, "POST /devices/sync": true,
		"POST /devices": true, "POST /devices/disown": true, "POST /device/activationlock": true,
		"POST /deviceservicesworkers/escrowKeyUnlock": true, // Apple's escrow key unlock: guarded by mutual TLS with the push certificate
		"POST /account-driven-enrollment/profile":     true, "GET /account-driven-enrollment/profile": true, "DELETE /account-driven-enrollment/profile": true,
		"GET /os-beta-enrollment/tokens": true, "POST /profile": true, "GET /profile": true,
		"PUT /profile/devices": true, "POST /profile/devices": true, "DELETE /profile/devices": true,
		"POST /ade/activation": true, // mock Apple activation service: what Apple tells any device
		"GET /ade/discovery":   true, // mock Apple-hosted service discovery: what Apple tells any device
		// The ADE enrollment endpoints a DEP profile points at: guarded by the
		// signed MachineInfo, and by the user's sign-in where the profile asks.
		"POST /ade/enroll/{profile}": true, "GET /ade/web/{profile}": true, "POST /ade/web/{profile}": true,
	}
	// The dashboard: public to the router, guarded by its own session
	// cookie (TestDashboardRoutesNeedSession holds each page to it); the
	// login form, the enrollment page with its QR code and the CSS and
	// script are open on purpose.
	for _, k := range []string{
		"GET /dashboard", "GET /dashboard/enrollments", "GET /dashboard/enrollments/{id}",
		"GET /dashboard/enrollments/{id}/live", "POST /dashboard/enrollments/{id}/commands",
		"GET /dashboard/login", "POST /dashboard/login", "POST /dashboard/logout", "GET /dashboard/status",
		"GET /dashboard/enroll", "GET /dashboard/enroll/qr.png", "GET /dashboard/static/{file}",
	} {
		public[k] = true
	}
	s := newTestServer(t)
	for _, r := range s.Routes() {
		key := r.Method + " " + r.Path
		if public[key] != r.Public {
			t.Errorf("%s: public=%v, but the list says %v", key, r.Public, public[key])
		}
		if r.Public {
			continue
		}
		path := strings.NewReplacer("{id}", "x", "{uuid}", "x").Replace(r.Path)
		rec := do(t, s, r.Method, path, "", nil)
		if rec.Code != 401 {
			t.Errorf("%s without an API key: %d, want 401", key, rec.Code)
		}
	}
}

// TestEveryRouteInOperationsGuide: each path the server serves has a
// heading in docs/operations-guide.md with a curl example under it.
func TestEveryRouteInOperationsGuide(t *testing.T) {
	raw, err := os.ReadFile("../docs/operations-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	var headings []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "### ") {
			headings = append(headings, line)
		}
	}
	s := newTestServer(t)
	for _, r := range s.Routes() {
		found := false
		for _, h := range headings {
			if strings.Contains(h, r.Method+" "+r.Path) || strings.HasSuffix(h, " "+r.Path) || strings.Contains(h, " "+r.Path+",") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("docs/operations-guide.md has no heading for %s %s", r.Method, r.Path)
		}
	}
}

// TestAPIKeyNeverLogged: at debug level, with right, wrong and missing
// keys on every kind of route, no log line holds a key.
func TestAPIKeyNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	key := s.PKI().APIKey
	wrong := "wrong-key-" + strings.Repeat("z", 20)
	for _, r := range s.Routes() {
		path := strings.NewReplacer("{id}", "x", "{uuid}", "x", "{token}", strings.Repeat("ab", 32)).Replace(r.Path)
		for _, k := range []string{key, wrong, ""} {
			do(t, s, r.Method, path, k, []byte(`{}`), "Content-Type", "application/json", "X-API-Key", k)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the test sees nothing")
	}
	for _, secret := range []string{key, wrong} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a log line holds an API key (%q…)", secret[:6])
		}
	}
}
