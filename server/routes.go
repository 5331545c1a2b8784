package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/internal/httperr"
)

// Route is one entry of the route table, as listed for docs and tests.
type Route struct {
	Method string
	Path   string
	// Public routes need no API key (device endpoints, profile, CA, SCEP).
	Public bool
}

// routes builds the route table. It is the only place gorilla/mux appears:
// handlers read path values with r.PathValue, which withPathValues fills.
// mux matches paths only; the methods of each path are dispatched here, so
// a wrong method always gets a 405 that names the allowed ones.
func (s *Server) routes() http.Handler {
	key := func(h http.Handler) http.Handler { return s.api.RequireKey(s.pki.APIKey, h) }
	health := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	apns := http.StripPrefix(PathAPNs, s.push.mock.Handler())
	// Injected faults come first on the device endpoints (checkin.Faults);
	// SCEP and the enrollment profile are recorded in the transcript by a
	// checkin.Recorder (the check-in and command handlers record their own).
	rec := checkin.NewRecorder(s.store, s.now, checkin.WithRecorderLogger(s.log))
	// Every device-facing enrollment endpoint (profile downloads, the
	// Company Portal, web and account-driven enrollment, the ADE url and
	// configuration_web_url) takes the "enroll" fault rules and is recorded
	// in the transcript.
	enrollment := func(h http.Handler) http.Handler {
		return s.faults.Wrap("enroll", rec.Wrap(checkin.KindEnroll, h))
	}
	scep := s.faults.Wrap("scep", rec.Wrap(checkin.KindSCEP, s.scep))
	checkinH := s.faults.Wrap("checkin", s.checkin.Checkin())
	connect := s.faults.Wrap("mdm", s.checkin.Connect())
	table := []struct {
		method, path string
		h            http.Handler
	}{
		// Device-facing and public endpoints.
		{http.MethodGet, "/", http.HandlerFunc(s.serveIndex)},
		{http.MethodGet, "/healthz", health},
		{http.MethodGet, PathEnroll, enrollment(http.HandlerFunc(s.serveEnroll))},
		{http.MethodGet, PathCA, http.HandlerFunc(s.serveCA)},
		{http.MethodGet, PathCAPEM, http.HandlerFunc(s.serveCAPEM)},
		{http.MethodGet, PathSCEP, scep},
		{http.MethodPost, PathSCEP, scep},
		{http.MethodPut, PathCheckin, checkinH},
		{http.MethodPost, PathCheckin, checkinH},
		{http.MethodPut, PathMDM, connect},
		{http.MethodPost, PathMDM, connect},
		// REST API: every route needs the API key.
		{http.MethodGet, "/v1/info", key(s.api.Info())},
		{http.MethodGet, "/v1/enrollments", key(s.api.ListEnrollments())},
		{http.MethodGet, "/v1/enrollments/{id}", key(s.api.GetEnrollment())},
		{http.MethodGet, "/v1/enrollments/{id}/queue", key(s.api.EnrollmentQueue())},
		{http.MethodGet, "/v1/enrollments/{id}/transcript", key(s.api.Transcript())},
		{http.MethodGet, "/v1/transcript", key(s.api.AllTranscript())},
		{http.MethodPost, "/v1/commands", key(s.api.EnqueueCommand())},
		{http.MethodGet, "/v1/commands/{uuid}", key(s.api.GetCommand())},
		{http.MethodPost, "/v1/scep/challenges", key(s.api.MintChallenge())},
		{http.MethodPost, "/v1/profiles/lint", key(s.api.LintProfile())},
		// Files declarations name (hosted.go): a legacy configuration's
		// ProfileURL, an asset's DataURL; put by the tester, downloaded by devices.
		{http.MethodPut, "/v1/hosted-profiles/{name}", key(s.putHosted(hostedProfiles))},
		{http.MethodDelete, "/v1/hosted-profiles/{name}", key(s.deleteHosted(hostedProfiles))},
		{http.MethodGet, PathHostedProfiles + "/{name}", s.serveHosted(hostedProfiles)},
		{http.MethodPut, "/v1/hosted-data/{name}", key(s.putHosted(hostedData))},
		{http.MethodDelete, "/v1/hosted-data/{name}", key(s.deleteHosted(hostedData))},
		{http.MethodGet, PathHostedData + "/{name}", s.serveHosted(hostedData)},
		{http.MethodPost, "/v1/reset", key(s.resetThenDirectory(s.api.Reset()))}, // BYOD: re-applies -directory
		{http.MethodPost, "/v1/push", key(s.api.Push())},
		{http.MethodGet, "/v1/push/certificate", key(s.api.PushCertificate())},
		{http.MethodPut, "/v1/push/certificate", key(s.api.UploadPushCertificate())},
		{http.MethodPost, "/v1/push/portal/certificates", key(s.api.PortalIssue())},
		{http.MethodPost, "/v1/push/portal/vendor-certificate", key(s.api.PortalVendorCert())},
		{http.MethodGet, "/v1/apns", key(s.api.APNsStats())},
		{http.MethodPost, "/v1/apns/faults", key(s.api.InjectAPNsFault())},
		{http.MethodDelete, "/v1/apns/faults", key(s.api.ClearAPNsFaults())},
		{http.MethodPost, "/v1/faults", key(s.api.AddFault())},
		{http.MethodGet, "/v1/faults", key(s.api.ListFaults())},
		{http.MethodDelete, "/v1/faults", key(s.api.ClearFaults())},
		{http.MethodDelete, "/v1/faults/{id}", key(s.api.DeleteFault())},
		// What each enrollment allows, and apps (apps.go).
		{http.MethodPost, "/v1/enrollments/{id}/retire", key(s.api.Retire())},
		{http.MethodGet, "/v1/apps", key(s.api.ListApps())},
		{http.MethodPost, "/v1/apps/sync", key(s.api.SyncApps())},
		{http.MethodGet, "/v1/apps/{id}", key(s.api.GetApp())},
		{http.MethodPut, "/v1/apps/{id}", key(s.api.PutApp())},
		{http.MethodDelete, "/v1/apps/{id}", key(s.api.DeleteApp())},
		{http.MethodGet, "/v1/apps/{id}/status", key(s.api.AppStatus())},
		{http.MethodGet, "/v1/webhooks", key(http.HandlerFunc(s.serveWebhooks))},
		// Prometheus metrics need the key too: scrapers send it as a bearer
		// token (authorization.credentials, or bearer_token_file).
		{http.MethodGet, PathMetrics, key(s.metrics.Handler())},
		// The mock APNs: providers authenticate by their push certificate,
		// devices by their token; both are deliberately public.
		{http.MethodPost, PathAPNs + "/3/device/{token}", apns},
		{http.MethodGet, PathAPNs + "/mock/v1/stream", apns},
	}
	add := func(method, path string, h http.Handler) {
		table = append(table, struct {
			method, path string
			h            http.Handler
		}{method, path, h})
	}
	// The simulated Apple Business Manager: Apple's ADE API at the root
	// (OAuth and session authenticated), the mock activation service, and
	// its admin endpoints behind the API key.
	apple, activation, admin := s.adeRoutes()
	for _, rt := range append(apple, activation...) {
		add(rt.Method, rt.Path, rt.Handler)
	}
	for _, rt := range admin {
		add(rt.Method, rt.Path, key(rt.Handler))
	}
	add(http.MethodPost, PathADEDeviceIdentities, key(http.HandlerFunc(s.serveDeviceIdentity))) // for virtual devices outside the process (ade_identity.go)
	// Declarative device management: the tester's declarations and each
	// enrollment's set and status (the devices sync through the check-in).
	for _, rt := range s.ddm.AdminRoutes(s.store) {
		add(rt.Method, "/v1"+rt.Path, key(rt.Handler))
	}
	// The dashboard checks its own session cookie (a person logs in with
	// the API key through its form), so the router treats it as public.
	for _, rt := range s.dash.Routes() {
		add(rt.Method, rt.Path, rt.Handler)
	}

	// The enrollment programs (enroll): the directory's admin API, the
	// Company Portal, web-based and account-driven enrollment, the ADE
	// device flow and Apple Configurator — admin routes behind the key,
	// device-facing ones with the enroll faults and the transcript.
	for _, rt := range append(s.programs.AdminRoutes(), s.ade.AdminRoutes()...) {
		add(rt.Method, rt.Path, key(rt.Handler))
	}
	for _, rt := range append(s.programs.DeviceRoutes(s.issuer, s.publicURL.String()), s.ade.Routes()...) {
		add(rt.Method, rt.Path, enrollment(rt.Handler))
	}

	r := mux.NewRouter()
	// Unmatched paths share one metrics label, so a scanner cannot grow them.
	r.NotFoundHandler = s.metrics.Instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		httperr.WriteText(w, httperr.New(http.StatusNotFound, "no such endpoint: %s %s (see docs/openapi.yaml for the routes)", req.Method, req.URL.Path))
	}))
	byPath := map[string]map[string]http.Handler{}
	var order []string
	s.routeList = nil
	for _, rt := range table {
		if byPath[rt.path] == nil {
			byPath[rt.path] = map[string]http.Handler{}
			order = append(order, rt.path)
		}
		// Counted under the route template, never the raw path.
		byPath[rt.path][rt.method] = s.metrics.Instrument(rt.path, rt.h)
		s.routeList = append(s.routeList, Route{Method: rt.method, Path: rt.path, Public: !isAPIPath(rt.path) && rt.path != PathMetrics})
	}
	// A path without variables is also looked up in a map before the
	// router is asked: mux tries each route's regular expression in turn
	// and copies the request twice to put its variables and route in the
	// context, which the device endpoints, taking every request of a load
	// test, do not need. The map holds only paths mux would match exactly
	// (clean, no pattern), so what answers a request is the same either way.
	static := map[string]http.Handler{}
	for _, path := range order {
		h := byMethod(byPath[path])
		if !strings.Contains(path, "{") {
			static[path] = h
		}
		r.Path(path).Handler(withPathValues(h))
	}
	return staticFirst{static: static, router: r}
}

// staticFirst serves the paths in static itself and every other through
// router.
type staticFirst struct {
	static map[string]http.Handler
	router http.Handler
}

func (s staticFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := s.static[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	s.router.ServeHTTP(w, r)
}

// byMethod dispatches on the request method, answering any other with 405
// and the Allow header.
func byMethod(handlers map[string]http.Handler) http.Handler {
	allowed := make([]string, 0, len(handlers))
	for m := range handlers {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := handlers[r.Method]; ok {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", allow)
		httperr.WriteText(w, httperr.New(http.StatusMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
	})
}

func isAPIPath(p string) bool { return len(p) >= 4 && p[:4] == "/v1/" }

// Routes lists the route table: every method and path the server serves.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routeList...) }

// withPathValues copies the router's path variables into the request, so
// handlers use the standard r.PathValue and never see the router.
func withPathValues(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range mux.Vars(r) {
			r.SetPathValue(k, v)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveCA(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Content-Disposition", `attachment; filename="mockmdm-ca.cer"`)
	_, _ = w.Write(s.pki.CA.Cert.Raw)
}

func (s *Server) serveCAPEM(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: s.pki.CA.Cert.Raw})
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>mockmdm</title>
<style>body{font-family:-apple-system,system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.5}
a.button{display:inline-block;padding:.6em 1.2em;margin:.3em 0;background:#0a64d8;color:#fff;border-radius:.5em;text-decoration:none}
code{background:#eee;padding:0 .2em}</style></head>
<body>
<h1>mockmdm</h1>
<p>A mock Apple MDM server for testing. Enroll a test device in two steps:</p>
<ol>
<li><a class="button" href="{{.CA}}">1. Download the test CA</a><br>
Then on the device: Settings → General → VPN &amp; Device Management → install it, and
Settings → General → About → Certificate Trust Settings → turn on full trust for “mockmdm test CA”.</li>
<li><a class="button" href="{{.Enroll}}">2. Download the enrollment profile</a><br>
Then Settings → Profile Downloaded → Install.</li>
</ol>
<p>Other ways to enroll: the <a href="/portal">Company Portal</a> (sign in with an organisation account:
User Enrollment or device enrollment, as your enrollment type profile says) and
<a href="/enroll/web">web-based device enrollment</a>.</p>
<p>For the tester: the <a href="/dashboard">dashboard</a> (log in with the API key),
the <a href="/dashboard/enroll">enrollment page with a QR code</a>.</p>
<p>Push topic: <code>{{.Topic}}</code>. The REST API is under <code>/v1</code> and needs the API key printed at start-up.</p>
</body></html>
`))

func (s *Server) serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, map[string]string{
		"CA": s.URL(PathCA), "Enroll": s.URL(PathEnroll), "Topic": s.push.Topic(),
	})
}

// newSecret returns 24 random bytes, URL-safe base64.
func newSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
