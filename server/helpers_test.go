package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

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
