package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/mdm"
)

// TestAccountDrivenReauthentication: an account-driven enrollment keeps
// sending its access token; once the token expires (or is not the user's)
// the server answers 401 with the WWW-Authenticate challenge — never a
// bare 401, which would unenroll — and the device signs its user in again
// and carries on. A user who can no longer sign in stays enrolled but is
// refused.
func TestAccountDrivenReauthentication(t *testing.T) {
	data, err := os.ReadFile("../testdata/directory/contoso.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := newTestServer(t, WithDirectory("contoso.yaml", data), WithClock(clock), WithAccountTokenLifetime(time.Hour))
	ctx := byodCtx(t)
	// The device signs its messages without a signing time, as a device
	// on the server's moved clock must.
	dev := byodDevice(s, 700, device.WithClock(clock))
	creds := device.Credentials{UPN: "adde@contoso.com", Password: "Passw0rd!"}
	if _, err := dev.AccountDrivenEnroll(ctx, s.URL(""), "adde@appleid.contoso.com", creds); err != nil {
		t.Fatal(err)
	}
	first := dev.AccountAccessToken()
	if first == "" {
		t.Fatal("the device kept no access token")
	}
	id := dev.EnrollmentID()
	connect := func(step string) *device.ConnectResult {
		t.Helper()
		res, err := dev.Connect(ctx)
		if err != nil || res.Unenrolled || !dev.IsEnrolled() {
			t.Fatalf("%s: %v (unenrolled %v)", step, err, res.Unenrolled)
		}
		return res
	}
	connect("connect with a fresh token")
	if dev.AccountAccessToken() != first {
		t.Error("the token changed while it was valid")
	}
	if !transcriptHas(t, s, id, "account-driven access token accepted for adde@contoso.com") {
		t.Error("the transcript does not show the token accepted")
	}

	// Expired: 401 with the challenge, a new sign-in, the command answered.
	advance(2 * time.Hour)
	queued := appsJSON[api.EnqueueResponse](t, s, "POST", "/v1/commands", map[string]any{"enrollment_ids": []string{id}, "command": map[string]any{"RequestType": "ProfileList"}, "push": false}, 201)
	res := connect("connect with an expired token")
	if len(res.Commands) != 1 || res.Commands[0].CommandUUID != queued.CommandUUID || res.Commands[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("after re-authentication: %+v", res.Commands)
	}
	second := dev.AccountAccessToken()
	if second == "" || second == first {
		t.Fatalf("no new token after re-authentication: %q", second)
	}
	challenged := false
	for _, ex := range dev.Transcript() {
		if ex.StatusCode == 401 {
			h := ex.ResponseHeader.Get("WWW-Authenticate")
			if _, url, ok := device.ParseAuthenticate(h); !ok || !strings.HasSuffix(url, enroll.PathAccountDrivenIn) {
				t.Errorf("a 401 without the sign-in challenge (would unenroll): %q at %s", h, ex.Step)
			}
			challenged = true
		}
	}
	if !challenged {
		t.Error("the expired token was not challenged")
	}

	// A token that is not this user's (a forged one, here) is challenged
	// the same way: saved, edited and loaded, the device signs in again.
	path := filepath.Join(t.TempDir(), "adde.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	b = []byte(strings.ReplaceAll(string(b), second, "forged-token"))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if dev, err = device.Load(path, handlerDoer{s.Handler()}, device.WithTrust(trustPool(s)), device.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	if dev.AccountAccessToken() != "forged-token" {
		t.Fatalf("loaded token %q", dev.AccountAccessToken())
	}
	connect("connect with a forged token")
	if tok := dev.AccountAccessToken(); tok == "forged-token" || tok == second {
		t.Errorf("token after the forged one: %q", tok)
	}

	// A user who can no longer sign in: refused, but still enrolled.
	u, err := s.Programs().User(ctx, "adde@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	u.Disabled = true
	if err := s.Programs().PutUser(ctx, *u); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Hour)
	if _, err := dev.Connect(ctx); err == nil {
		t.Error("a disabled user's device connected")
	}
	if !dev.IsEnrolled() {
		t.Error("a failed re-authentication unenrolled the device")
	}
}

// transcriptHas reports whether an enrollment's transcript has a note
// containing text.
func transcriptHas(t *testing.T, s *Server, id, text string) bool {
	t.Helper()
	rec := do(t, s, "GET", "/v1/enrollments/"+id+"/transcript", s.PKI().APIKey, nil)
	if rec.Code != 200 {
		t.Fatalf("transcript: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Entries []struct{ Note string } `json:"entries"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Entries {
		if strings.Contains(e.Note, text) {
			return true
		}
	}
	return false
}

// challengingDoer answers every check-in and command request with the
// sign-in challenge while on, and counts them: a server that never takes
// the new token.
type challengingDoer struct {
	handlerDoer
	mu       sync.Mutex
	on       bool
	mdmCalls int
}

func (c *challengingDoer) Do(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	on := c.on
	if on && (req.URL.Path == "/mdm" || req.URL.Path == "/checkin") {
		c.mdmCalls++
		c.mu.Unlock()
		rec := httptest.NewRecorder()
		rec.Header().Set("WWW-Authenticate", `Bearer method="apple-as-web", url="https://mockmdm.test`+enroll.PathAccountDrivenIn+`"`)
		rec.WriteHeader(http.StatusUnauthorized)
		return rec.Result(), nil
	}
	c.mu.Unlock()
	return c.handlerDoer.Do(req)
}

// TestAccountDrivenChallengeLoop: a server that challenges again right
// after the device signed in anew gets one retry, not a loop, and the
// device stays enrolled.
func TestAccountDrivenChallengeLoop(t *testing.T) {
	data, err := os.ReadFile("../testdata/directory/contoso.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, WithDirectory("contoso.yaml", data))
	ctx := byodCtx(t)
	doer := &challengingDoer{handlerDoer: handlerDoer{s.Handler()}}
	dev := device.New(doer, device.WithSeed(701), device.WithTrust(trustPool(s)))
	if _, err := dev.AccountDrivenEnroll(ctx, s.URL(""), "adde@appleid.contoso.com", device.Credentials{UPN: "adde@contoso.com", Password: "Passw0rd!"}); err != nil {
		t.Fatal(err)
	}
	doer.mu.Lock()
	doer.on = true
	doer.mu.Unlock()
	res, err := dev.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "re-authentication again") {
		t.Errorf("connect against a server that never takes the token: %v", err)
	}
	if res.Unenrolled || !dev.IsEnrolled() {
		t.Error("the device unenrolled on a 401 that carried the challenge")
	}
	if doer.mdmCalls != 2 {
		t.Errorf("%d requests to /mdm, want 2 (the first and one retry)", doer.mdmCalls)
	}
}
