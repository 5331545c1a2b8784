package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"html/template"
	"net/http"

	"github.com/gorilla/mux"

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
func (s *Server) routes() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		httperr.WriteText(w, httperr.New(http.StatusNotFound, "no such endpoint: %s %s (see docs/openapi.yaml for the routes)", req.Method, req.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		httperr.WriteText(w, httperr.New(http.StatusMethodNotAllowed, "%s is not allowed on %s (see docs/openapi.yaml)", req.Method, req.URL.Path))
	})

	// Device-facing and public endpoints.
	r.Methods(http.MethodGet).Path("/").HandlerFunc(s.serveIndex)
	r.Methods(http.MethodGet).Path("/healthz").HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	r.Methods(http.MethodGet).Path(PathEnroll).HandlerFunc(s.serveEnroll)
	r.Methods(http.MethodGet).Path(PathCA).HandlerFunc(s.serveCA)
	r.Methods(http.MethodGet).Path(PathCAPEM).HandlerFunc(s.serveCAPEM)
	r.Methods(http.MethodGet, http.MethodPost).Path(PathSCEP).Handler(s.scep)
	r.Methods(http.MethodPut, http.MethodPost).Path(PathCheckin).Handler(s.checkin.Checkin())
	r.Methods(http.MethodPut, http.MethodPost).Path(PathMDM).Handler(s.checkin.Connect())

	// REST API: every route needs the API key.
	v1 := r.PathPrefix("/v1").Subrouter()
	key := func(h http.Handler) http.Handler { return s.api.RequireKey(s.pki.APIKey, withPathValues(h)) }
	v1.Methods(http.MethodGet).Path("/info").Handler(key(s.api.Info()))
	v1.Methods(http.MethodGet).Path("/enrollments").Handler(key(s.api.ListEnrollments()))
	v1.Methods(http.MethodGet).Path("/enrollments/{id}").Handler(key(s.api.GetEnrollment()))
	v1.Methods(http.MethodGet).Path("/enrollments/{id}/queue").Handler(key(s.api.EnrollmentQueue()))
	v1.Methods(http.MethodGet).Path("/enrollments/{id}/transcript").Handler(key(s.api.Transcript()))
	v1.Methods(http.MethodGet).Path("/transcript").Handler(key(s.api.AllTranscript()))
	v1.Methods(http.MethodPost).Path("/commands").Handler(key(s.api.EnqueueCommand()))
	v1.Methods(http.MethodGet).Path("/commands/{uuid}").Handler(key(s.api.GetCommand()))
	v1.Methods(http.MethodPost).Path("/scep/challenges").Handler(key(s.api.MintChallenge()))
	v1.Methods(http.MethodPost).Path("/reset").Handler(key(s.api.Reset()))
	v1.NotFoundHandler = r.NotFoundHandler
	v1.MethodNotAllowedHandler = r.MethodNotAllowedHandler

	s.routeList = nil
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil
		}
		for _, m := range methods {
			s.routeList = append(s.routeList, Route{Method: m, Path: path, Public: !isAPIPath(path)})
		}
		return nil
	})
	return r
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
<p>Push topic: <code>{{.Topic}}</code>. The REST API is under <code>/v1</code> and needs the API key printed at start-up.</p>
</body></html>
`))

func (s *Server) serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, map[string]string{
		"CA": s.URL(PathCA), "Enroll": s.URL(PathEnroll), "Topic": s.pki.Topic,
	})
}

// newSecret returns 24 random bytes, URL-safe base64.
func newSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
