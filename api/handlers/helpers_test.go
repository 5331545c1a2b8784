package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

const testKey = "test-api-key-0123456789"

var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// env is one API over a fresh memory store, mounted on an http.ServeMux
// the way the server's route table mounts it.
type env struct {
	t     *testing.T
	st    *memory.Store
	hub   *checkin.ResultHub
	api   *API
	mux   *http.ServeMux
	logs  *syncBuffer
	uuids atomic.Int64
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	e := &env{t: t, st: memory.New(), hub: checkin.NewResultHub(), logs: &syncBuffer{}}
	base := []Option{
		WithClock(func() time.Time { return testNow }),
		WithLogger(slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithNewUUID(func() string { return fmt.Sprintf("GEN-UUID-%04d", e.uuids.Add(1)) }),
		WithInfo(api.ServerInfo{Version: "test", EnrollmentURL: "https://mdm.test/enroll", CAURL: "https://mdm.test/ca", Topic: "com.apple.mgmt.External.test"}),
	}
	e.api = New(e.st, e.hub, append(base, opts...)...)
	e.mux = mount(e.api, testKey)
	return e
}

// mount registers every route with Go's ServeMux patterns.
func mount(a *API, key string) *http.ServeMux {
	mux := http.NewServeMux()
	k := func(h http.Handler) http.Handler { return a.RequireKey(key, h) }
	mux.Handle("GET /v1/info", k(a.Info()))
	mux.Handle("GET /v1/enrollments", k(a.ListEnrollments()))
	mux.Handle("GET /v1/enrollments/{id}", k(a.GetEnrollment()))
	mux.Handle("GET /v1/enrollments/{id}/queue", k(a.EnrollmentQueue()))
	mux.Handle("GET /v1/enrollments/{id}/transcript", k(a.Transcript()))
	mux.Handle("GET /v1/transcript", k(a.AllTranscript()))
	mux.Handle("POST /v1/commands", k(a.EnqueueCommand()))
	mux.Handle("GET /v1/commands/{uuid}", k(a.GetCommand()))
	mux.Handle("POST /v1/scep/challenges", k(a.MintChallenge()))
	mux.Handle("POST /v1/reset", k(a.Reset()))
	return mux
}

// req is one API request for do.
type req struct {
	method, path string
	body         string
	contentType  string // default application/json when body is set
	noKey        bool
	headers      map[string]string
	ctx          context.Context
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	} else if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	if !r.noKey {
		hr.Header.Set("Authorization", "Bearer "+testKey)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, hr)
	return rec
}

// decode decodes a JSON answer, failing the test on anything else.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder, wantStatus int) T {
	t.Helper()
	var v T
	if rec.Code != wantStatus {
		t.Fatalf("status %d, want %d; body: %s", rec.Code, wantStatus, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", rec.Body.String(), err)
	}
	return v
}

// Seed enrollment IDs.
const (
	idEnrolled   = "0000AAAA-0001"
	idCheckedOut = "0000AAAA-0002"
	idAuthOnly   = "0000AAAA-0003"
	idBYOD       = "BYOD-ENROLLMENT-ID"
	idBYODUser   = "BYOD-ENROLLMENT-ID:USER-1"
)

// Secrets a seeded enrollment holds, which the API must never show.
var (
	secretPushToken   = []byte("push-token-secret-bytes")
	secretPushMagic   = "PUSH-MAGIC-SECRET-7F1E"
	secretUnlockToken = []byte("unlock-token-secret")
	secretBootstrap   = []byte("bootstrap-token-secret")
)

func (e *env) seed() {
	e.t.Helper()
	ctx := context.Background()
	recs := []*store.Enrollment{
		{ID: idEnrolled, Type: "Device", DeviceID: idEnrolled, UDID: idEnrolled, SerialNumber: "C02TEST0001",
			Model: "iPad13,1", ModelName: "iPad", ProductName: "iPad13,1", DeviceName: "QA iPad", OSVersion: "17.4",
			BuildVersion: "21E219", Topic: "com.apple.mgmt.External.test",
			PushToken: secretPushToken, PushMagic: secretPushMagic, UnlockToken: secretUnlockToken, BootstrapToken: secretBootstrap,
			CertHash: strings.Repeat("ab", 32), CertNotAfter: testNow.Add(365 * 24 * time.Hour),
			Enrolled: true, AuthenticatedAt: testNow.Add(-time.Hour), EnrolledAt: testNow.Add(-time.Hour), LastSeen: testNow},
		{ID: idCheckedOut, Type: "Device", DeviceID: idCheckedOut, UDID: idCheckedOut, CheckedOut: true,
			AuthenticatedAt: testNow.Add(-2 * time.Hour)},
		{ID: idAuthOnly, Type: "Device", DeviceID: idAuthOnly, UDID: idAuthOnly, AuthenticatedAt: testNow},
		{ID: idBYOD, Type: "UserEnrollmentDevice", DeviceID: idBYOD, EnrollmentID: idBYOD, Enrolled: true,
			PushToken: []byte{1, 2, 3}, PushMagic: "m"},
		{ID: idBYODUser, Type: "UserEnrollment", DeviceID: idBYOD, EnrollmentID: idBYOD, EnrollmentUserID: "USER-1", Enrolled: true},
	}
	for _, r := range recs {
		if err := e.st.PutEnrollment(ctx, r); err != nil {
			e.t.Fatal(err)
		}
	}
}

// enqueue queues a typed DeviceInformation command and returns its UUID.
func (e *env) enqueue(uuid string, ids ...string) string {
	e.t.Helper()
	b, _ := json.Marshal(map[string]any{
		"enrollment_ids": ids,
		"command_uuid":   uuid,
		"command":        map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"DeviceName"}},
	})
	out := decode[api.EnqueueResponse](e.t, e.do(req{method: "POST", path: "/v1/commands", body: string(b)}), http.StatusCreated)
	return out.CommandUUID
}

// resultPlist is an Acknowledged DeviceInformation answer with every
// plist type the JSON conversion must handle.
func resultPlist(udid, uuid string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CommandUUID</key><string>` + uuid + `</string>
	<key>QueryResponses</key>
	<dict>
		<key>DeviceName</key><string>QA iPad</string>
		<key>BatteryLevel</key><real>0.5</real>
		<key>AvailableDeviceCapacity</key><integer>9007199254740993</integer>
		<key>IsSupervised</key><true/>
		<key>PushToken</key><data>AAEC</data>
		<key>LastCloudBackupDate</key><date>2024-01-02T03:04:05Z</date>
		<key>Languages</key><array><string>en</string><string>fr</string></array>
	</dict>
	<key>Status</key><string>Acknowledged</string>
	<key>UDID</key><string>` + udid + `</string>
</dict>
</plist>
`
}

func errorPlist(udid, uuid string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>CommandUUID</key><string>` + uuid + `</string>
	<key>ErrorChain</key>
	<array>
		<dict>
			<key>ErrorCode</key><integer>12021</integer>
			<key>ErrorDomain</key><string>MCMDMErrorDomain</string>
			<key>LocalizedDescription</key><string>Unknown command</string>
			<key>USEnglishDescription</key><string>Unknown command</string>
		</dict>
	</array>
	<key>Status</key><string>Error</string>
	<key>UDID</key><string>` + udid + `</string>
</dict>
</plist>
`
}
