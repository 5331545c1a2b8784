package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStaticPathsAnswerAsTheRouter: the paths without variables are
// served from a map before the router is asked (routes.go). The router is
// the oracle: for every such path, and for its near misses — another
// method, a trailing slash, a doubled slash, an encoded slash, a query —
// both answer with the same status and the same Location, Allow and
// Content-Type.
func TestStaticPathsAnswerAsTheRouter(t *testing.T) {
	s := newTestServer(t)
	fast, ok := s.handler.(staticFirst)
	if !ok {
		t.Fatalf("the server's handler is a %T, not the static-first router", s.handler)
	}
	var targets []string
	for _, rt := range s.Routes() {
		p := rt.Path
		if strings.Contains(p, "{") {
			targets = append(targets, strings.NewReplacer("{", "", "}", "").Replace(p))
			continue
		}
		targets = append(targets, p, p+"/", "/"+p, p+"?x=1")
		if i := strings.Index(p[1:], "/"); i >= 0 {
			targets = append(targets, p[:i+1]+"%2F"+p[i+2:])
		}
	}
	checked := 0
	for _, target := range targets {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			want := httptest.NewRecorder()
			fast.router.ServeHTTP(want, httptest.NewRequest(method, target, nil))
			got := httptest.NewRecorder()
			fast.ServeHTTP(got, httptest.NewRequest(method, target, nil))
			if got.Code != want.Code {
				t.Errorf("%s %s: %d, the router answers %d", method, target, got.Code, want.Code)
			}
			for _, h := range []string{"Location", "Allow", "Content-Type"} {
				if got.Header().Get(h) != want.Header().Get(h) {
					t.Errorf("%s %s: %s %q, the router answers %q", method, target, h, got.Header().Get(h), want.Header().Get(h))
				}
			}
			checked++
		}
	}
	if checked < 300 {
		t.Fatalf("only %d requests compared", checked)
	}
}
