package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClientRequests checks what the client puts on the wire, against a
// stub server (the real handlers are exercised in api/handlers).
func TestClientRequests(t *testing.T) {
	var got *http.Request
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/commands/"):
			_, _ = w.Write([]byte(`{"command_uuid":"U","request_type":"X","done":true,"results":[]}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := NewClient(srv.URL+"/v1/", "k3y", WithHTTPClient(srv.Client()))

	if _, err := c.GetCommand(ctx, "A B/C", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got.URL.EscapedPath() != "/v1/commands/A%20B%2FC" || got.URL.Query().Get("wait") != "1.5s" {
		t.Errorf("GetCommand sent %s", got.URL)
	}
	if got.Header.Get("Authorization") != "Bearer k3y" {
		t.Errorf("Authorization %q", got.Header.Get("Authorization"))
	}
	if _, err := c.Transcript(ctx, "", 7, 20); err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/v1/transcript" || got.URL.Query().Get("after") != "7" || got.URL.Query().Get("limit") != "20" {
		t.Errorf("Transcript sent %s", got.URL)
	}
	if _, err := c.Enqueue(ctx, EnqueueRequest{EnrollmentIDs: []string{"E"}, RawPlist: "<plist/>"}); err != nil {
		t.Fatal(err)
	}
	if got.Method != "POST" || got.Header.Get("Content-Type") != "application/json" ||
		gotBody != `{"enrollment_ids":["E"],"raw_plist":"\u003cplist/\u003e"}` {
		t.Errorf("Enqueue sent %s %q %s", got.Method, got.Header.Get("Content-Type"), gotBody)
	}
	if _, err := c.MintChallenge(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if gotBody != "" || got.Header.Get("Content-Type") != "" {
		t.Errorf("MintChallenge(0) sent a body %q", gotBody)
	}
	if _, err := c.MintChallenge(ctx, 90*time.Minute); err != nil {
		t.Fatal(err)
	}
	if gotBody != `{"ttl":"1h30m0s"}` {
		t.Errorf("MintChallenge body %q", gotBody)
	}
}

func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/info":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"taken","status":409}`))
		case "/v1/enrollments":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("upstream down\n"))
		case "/v1/transcript":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"entries":[`)) // truncated
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := NewClient(srv.URL, "k", WithHTTPClient(srv.Client()))

	_, err := c.Info(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Status != 409 || e.Message != "taken" || e.HTTPStatus() != 409 {
		t.Fatalf("JSON error: %#v", err)
	}
	if !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "taken") {
		t.Errorf("Error() = %q", err.Error())
	}
	_, err = c.ListEnrollments(ctx)
	if !IsStatus(err, http.StatusBadGateway) || !errors.As(err, &e) || e.Message != "upstream down" {
		t.Fatalf("text error: %#v", err)
	}
	if _, err = c.Transcript(ctx, "", 0, 0); err == nil || IsStatus(err, 200) {
		t.Fatalf("truncated answer: %v", err)
	}
	if IsStatus(errors.New("x"), 500) {
		t.Error("IsStatus true for a plain error")
	}
	if (&Error{Status: 503}).Error() != "mockmdm API: 503 Service Unavailable" {
		t.Errorf("empty message: %q", (&Error{Status: 503}).Error())
	}
	// A server that is not there is an error, not a panic.
	dead := NewClient("http://127.0.0.1:1", "k")
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := dead.Reset(ctx2); err == nil {
		t.Error("Reset against nothing succeeded")
	}
}
