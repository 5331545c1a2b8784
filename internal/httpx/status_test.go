package httpx_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mockmdm/mockmdm/internal/httpx"
)

func TestStatusWriterRemembersTheFirstStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(http.ResponseWriter)
		want    int
	}{
		{"nothing written", func(http.ResponseWriter) {}, 0},
		{"body only", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "hi") }, http.StatusOK},
		{"explicit status", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) }, http.StatusTeapot},
		{"second status ignored", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusInternalServerError)
		}, http.StatusNotFound},
		{"status then body", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "made")
		}, http.StatusCreated},
		{"flush without status", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			sw, next := httpx.NewStatusWriter(rec)
			tc.handler(next)
			if got := sw.Status(); got != tc.want {
				t.Errorf("Status() = %d, want %d", got, tc.want)
			}
			// What the client got is what the handler wrote.
			if tc.want != 0 && rec.Code != tc.want {
				t.Errorf("recorder code %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

// A ResponseRecorder cannot be hijacked, so neither may its wrapper: code
// that asserts http.Hijacker must see the truth.
func TestStatusWriterHijackerOnlyWhenTheWriterIsOne(t *testing.T) {
	_, next := httpx.NewStatusWriter(httptest.NewRecorder())
	if _, ok := next.(http.Hijacker); ok {
		t.Error("the wrapper of a ResponseRecorder claims to be a Hijacker")
	}
}

// Over a real HTTP/1 connection the wrapper hijacks, counts 101, and
// http.ResponseController reaches through Unwrap.
func TestStatusWriterOverHTTP1(t *testing.T) {
	got := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, next := httpx.NewStatusWriter(w)
		if r.URL.Path == "/flush" {
			if err := http.NewResponseController(next).Flush(); err != nil {
				t.Errorf("ResponseController.Flush through the wrapper: %v", err)
			}
			got <- sw.Status()
			return
		}
		hj, ok := next.(http.Hijacker)
		if !ok {
			t.Error("the wrapper of an HTTP/1 writer is not a Hijacker")
			got <- -1
			return
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			got <- -1
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		_ = buf.Flush()
		got <- sw.Status()
	}))
	defer srv.Close()

	for _, tc := range []struct {
		path string
		want int
	}{{"/hijack", http.StatusSwitchingProtocols}, {"/flush", http.StatusOK}} {
		res, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, bufio.NewReader(res.Body))
		res.Body.Close()
		if s := <-got; s != tc.want {
			t.Errorf("%s: Status() = %d, want %d", tc.path, s, tc.want)
		}
	}
}
