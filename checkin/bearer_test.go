package checkin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/store"
)

// fakeBearer accepts the token "good" for alice@contoso.com only.
type fakeBearer struct{}

func (*fakeBearer) VerifyAccountBearer(_ context.Context, upn, token string) error {
	if token == "good" && upn == "alice@contoso.com" {
		return nil
	}
	return errors.New("the token is unknown or expired")
}

func (*fakeBearer) AccountChallenge() string {
	return `Bearer method="apple-as-web", url="https://mdm.example/signin"`
}

// TestAccountDrivenBearer: on an account-driven enrollment, a refused
// Authorization header gets 401 with the challenge (never a bare 401,
// which would unenroll); other enrollments' headers, and a missing one,
// are not looked at.
func TestAccountDrivenBearer(t *testing.T) {
	f := newFixture(t)
	fb := &fakeBearer{}
	WithBearerVerifier(fb)(f.h)
	ctx := context.Background()
	ad, plain := newDevice(t, "ACCT0001"), newDevice(t, "PLAIN001")
	f.enroll(t, ad)
	f.enroll(t, plain)
	e, err := f.st.GetEnrollment(ctx, "ACCT0001")
	if err != nil {
		t.Fatal(err)
	}
	e.Management = store.Management{Program: store.ProgramAccountDriven, User: "alice@contoso.com", AuthMethod: "account-driven"}
	if err := f.st.PutEnrollment(ctx, e); err != nil {
		t.Fatal(err)
	}
	idle := func(d *device, auth string) (int, string, string) {
		body := encode(t, map[string]any{"UDID": d.ids.UDID, "Status": "Idle"})
		req, _ := http.NewRequest(http.MethodPut, "/mdm", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", CommandContentType)
		req.Header.Set("Mdm-Signature", mustSign(t, body, d))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := recorderFor(f.h.Connect(), req)
		return rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String()
	}
	for _, c := range []struct {
		name      string
		dev       *device
		auth      string
		status    int
		challenge bool
	}{
		{"good token", ad, "Bearer good", 200, false},
		{"no header (a macOS device channel sends none)", ad, "", 200, false},
		{"expired or unknown token", ad, "Bearer stale", 401, true},
		{"not a bearer", ad, "Basic YTpi", 401, true},
		{"bearer without a token", ad, "Bearer ", 401, true},
		{"other enrollment, any header", plain, "Bearer whatever", 200, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, challenge, body := idle(c.dev, c.auth)
			if code != c.status || (challenge != "") != c.challenge {
				t.Errorf("%d, WWW-Authenticate %q, body %q", code, challenge, body)
			}
			if code == 401 && (challenge != fb.AccountChallenge() || !strings.Contains(body, "signs its user in again")) {
				t.Errorf("a 401 without the challenge or a reason: %q %q", challenge, body)
			}
		})
	}
	// The refusal is in the transcript, under the enrollment.
	entries, err := f.st.Transcript(ctx, "ACCT0001", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range entries {
		if e.Status == 401 && strings.Contains(e.Note, "access token is refused") {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d refusals in the transcript, want 3", refused)
	}
}

func recorderFor(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
