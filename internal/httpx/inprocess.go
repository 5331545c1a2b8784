package httpx

import (
	"net/http"
	"net/http/httptest"
)

// InProcess is a RoundTripper that serves each request by calling h in
// this process — no socket, no TLS — for clients (virtual devices, the API
// client) of a server running in the same test or scenario.
func InProcess(h http.Handler) http.RoundTripper { return inProcess{h} }

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
