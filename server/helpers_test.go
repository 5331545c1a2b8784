package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/flowtest"
	"github.com/mockmdm/mockmdm/store/memory"
)

var (
	pkiOnce sync.Once
	pkiDir  string
	testPKI *PKI
	pkiErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pkiDir != "" {
		os.RemoveAll(pkiDir)
	}
	os.Exit(code)
}

// sharedPKI creates one PKI for the package: generating its keys is the
// slow part of a server start.
func sharedPKI(t testing.TB) *PKI {
	t.Helper()
	pkiOnce.Do(func() {
		if pkiDir, pkiErr = os.MkdirTemp("", "mockmdm-server-test-"); pkiErr != nil {
			return
		}
		testPKI, pkiErr = LoadOrCreatePKI(pkiDir, []string{"mockmdm.test", "127.0.0.1"})
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	copy := *testPKI
	return &copy
}

func newTestServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	s, err := New(st, sharedPKI(t), "https://mockmdm.test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(t testing.TB, s *Server, method, path, apiKey string, body []byte, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// handlerDoer serves requests in-process: the device and API client reach
// the server with no socket at all.
type handlerDoer struct{ h http.Handler }

func (d handlerDoer) Do(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

func (d handlerDoer) RoundTrip(req *http.Request) (*http.Response, error) { return d.Do(req) }

// enrollInProcess enrolls a virtual device into s through its handler, with
// no socket, and returns it with an API client that reaches s the same way.
func enrollInProcess(t *testing.T, ctx context.Context, s *Server) (flowtest.EnrollResult, *api.Client) {
	t.Helper()
	doer := handlerDoer{s.Handler()}
	client := api.NewClient("https://mockmdm.test", s.PKI().APIKey, api.WithHTTPClient(&http.Client{Transport: doer}))
	trust := x509.NewCertPool()
	trust.AddCert(s.PKI().CA.Cert)
	return flowtest.EnrollDevice(t, ctx, doer, client, s.URL(PathEnroll), trust), client
}
