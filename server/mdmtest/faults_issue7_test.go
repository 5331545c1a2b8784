package mdmtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server"
)

// ruleFired returns how often rule id fired.
func ruleFired(t *testing.T, srv *Server, id string) int {
	t.Helper()
	for _, r := range srv.Server().Faults().List() {
		if r.ID == id {
			return r.Fired
		}
	}
	t.Fatalf("no rule %s", id)
	return 0
}

// TestNotNowFault: the server withholds a queued command once, answering
// the connect 200 with nothing; the command stays queued and the next
// connect delivers it. With nothing queued the rule does not fire.
func TestNotNowFault(t *testing.T) {
	srv := NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()

	idle := addFault(t, srv, `{"endpoint":"mdm","enrollment_id":"`+id+`","action":"notnow","times":1}`)
	if res, err := dev.Connect(ctx); err != nil || len(res.Commands) != 0 {
		t.Fatalf("connect with an empty queue: %+v %v", res, err)
	}
	if n := ruleFired(t, srv, idle); n != 0 {
		t.Fatalf("notnow fired %d times with nothing to withhold", n)
	}

	uuid := srv.Enqueue(&mdm.SecurityInfo{}, id)
	if res, err := dev.Connect(ctx); err != nil || len(res.Commands) != 0 {
		t.Fatalf("connect under notnow: %+v %v, want no command handed out", res, err)
	}
	q, err := srv.Client().Queue(ctx, id)
	if err != nil || len(q.Items) != 1 || q.Items[0].CommandUUID != uuid {
		t.Fatalf("queue after notnow: %+v %v, want %s still queued", q, err, uuid)
	}
	notes := transcriptNotes(t, srv, id)
	if !strings.Contains(notes, "command Idle 200 fault injected: rule "+idle+" (notnow), firing 1: withheld command "+uuid+" (SecurityInfo)") {
		t.Fatalf("transcript does not mark the withheld command:\n%s", notes)
	}
	res, err := dev.Connect(ctx)
	if err != nil || len(res.Commands) != 1 || res.Commands[0].CommandUUID != uuid {
		t.Fatalf("connect after the rule ran out: %+v %v", res, err)
	}
}

// TestExpiredIdentityFault: the refusal is the one the real expiry check
// gives — 400 and the verifier's own text for this certificate — and the
// rule firing is in the transcript.
func TestExpiredIdentityFault(t *testing.T) {
	srv := NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()
	rule := addFault(t, srv, `{"endpoint":"mdm","action":"expired-identity","times":1}`)
	_, err := dev.Connect(ctx)
	var se *device.ServerError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("connect under expired-identity: %v, want 400", err)
	}
	ids := dev.Identities()
	cert := ids[len(ids)-1]
	real := certs.NewVerifier([]*x509.Certificate{srv.Server().PKI().CA.Cert}).Verify(cert, cert.NotAfter.Add(time.Second))
	if real == nil || strings.TrimSpace(string(se.Body)) != real.Error() {
		t.Fatalf("fault answer %q\nreal expiry answer %v", se.Body, real)
	}
	if !strings.Contains(transcriptNotes(t, srv, id), "rule "+rule+" (expired-identity), firing 1: identity certificate treated as expired") {
		t.Fatal("transcript does not mark expired-identity")
	}
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatalf("connect after the rule ran out: %v", err)
	}
}

// TestSigningTimeSkewFault: a device 5 minutes slow (the server's clock
// runs ahead; a device on a fake clock signs without a signing time)
// passes the default hour of tolerance, is refused under a 1m rule with the
// real check's text, and passes a 10m rule.
func TestSigningTimeSkewFault(t *testing.T) {
	srv := NewServer(t, WithServerOptions(server.WithClock(func() time.Time { return time.Now().Add(5 * time.Minute) })))
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()
	rule := addFault(t, srv, `{"endpoint":"mdm","enrollment_id":"`+id+`","action":"signing-time-skew","skew":"1m","times":1}`)
	_, err := dev.Connect(ctx)
	var se *device.ServerError
	if !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(string(se.Body), "away from the server clock (tolerance 1m0s)") {
		t.Fatalf("connect 5m slow under a 1m tolerance: %v", err)
	}
	if !strings.Contains(transcriptNotes(t, srv, id), "rule "+rule+" (signing-time-skew 1m), firing 1") {
		t.Fatal("transcript does not mark signing-time-skew")
	}
	addFault(t, srv, `{"endpoint":"mdm","action":"signing-time-skew","skew":"10m","times":1}`)
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatalf("connect 5m slow under a 10m tolerance: %v", err)
	}
}

// TestSCEPFaults: each SCEP fault reaches a virtual device as a real
// CertRep its SCEP client decodes; the certs client polls a PENDING
// through to a certificate, or gives up with a clear error; every SCEP
// exchange is in the transcript and its HAR export.
func TestSCEPFaults(t *testing.T) {
	srv := NewServer(t)
	ctx := context.Background()
	enrollErr := func() *certs.SCEPError {
		t.Helper()
		_, err := srv.NewDevice().EnrollFromURL(ctx, srv.EnrollURL())
		var se *certs.SCEPError
		if !errors.As(err, &se) {
			t.Fatalf("enroll: %v, want a SCEP CertRep refusal", err)
		}
		return se
	}

	addFault(t, srv, `{"action":"scep-bad-challenge","times":1}`)
	if se := enrollErr(); se.Status != "FAILURE" || se.FailInfo != "badRequest" {
		t.Fatalf("bad challenge: %+v", se)
	}
	for _, fi := range []string{"badAlg", "badMessageCheck", "badTime", "badCertId"} {
		addFault(t, srv, `{"endpoint":"scep","action":"scep-failure","fail_info":"`+fi+`","times":1}`)
		se := enrollErr()
		if se.Status != "FAILURE" || !strings.EqualFold(se.FailInfo, fi) {
			t.Fatalf("scep-failure %s: %+v", fi, se)
		}
	}
	// The virtual device does not poll: PENDING is a clear error.
	addFault(t, srv, `{"endpoint":"scep","message_type":"PKIOperation","action":"scep-pending","times":1}`)
	se := enrollErr()
	if se.Status != "PENDING" || !strings.Contains(se.Error(), "PENDING") || !strings.Contains(se.Error(), "polling is off") {
		t.Fatalf("pending, device: %v", se)
	}
	// Every rule ran out: a device enrolls.
	srv.Enroll(srv.NewDevice())

	// The certs client polls: one PENDING, then the certificate.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	req := certs.SCEPRequest{
		URL: srv.Server().URL("/scep"), Challenge: srv.Server().PKI().SCEPChallenge,
		Subject: pkix.Name{CommonName: "poller"}, Key: key, MaxPolls: 3, PollInterval: time.Millisecond,
	}
	pending := addFault(t, srv, `{"endpoint":"scep","action":"scep-pending","times":1}`)
	cert, err := certs.SCEPEnroll(ctx, srv.Doer(), req)
	if err != nil || cert == nil || ruleFired(t, srv, pending) != 1 {
		t.Fatalf("poll through one PENDING: %v (rule fired %d)", err, ruleFired(t, srv, pending))
	}
	// A CA that stays PENDING: the client gives up after MaxPolls.
	always := addFault(t, srv, `{"endpoint":"scep","action":"scep-pending"}`)
	_, err = certs.SCEPEnroll(ctx, srv.Doer(), req)
	if !errors.As(err, &se) || se.Status != "PENDING" || se.Polls != 3 || !strings.Contains(err.Error(), "after 3 polls") {
		t.Fatalf("always PENDING: %v", err)
	}
	if n := ruleFired(t, srv, always); n != 4 {
		t.Fatalf("always-PENDING rule fired %d times, want 4 (the request and 3 polls)", n)
	}

	// The transcript has the SCEP exchanges, the faults marked.
	tr, err := srv.Client().Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds = map[string]int{}
	var sawPending, sawFailure, sawEnroll bool
	for _, e := range tr {
		kinds[e.Kind+" "+e.MessageType]++
		if e.Kind == "scep" && e.MessageType == "PKIOperation/PKCSReq" && strings.Contains(e.Note, "(scep-pending)") && strings.Contains(e.Note, "CertRep PENDING") {
			sawPending = true
		}
		if e.Kind == "scep" && strings.Contains(e.Note, "(scep-failure badTime)") && strings.Contains(e.Note, "CertRep FAILURE failInfo badTime") {
			sawFailure = true
		}
		if e.Kind == "enroll" && e.HTTPStatus == 200 {
			sawEnroll = true
		}
	}
	if !sawPending || !sawFailure || !sawEnroll || kinds["scep GetCACaps"] == 0 || kinds["scep GetCACert"] == 0 {
		t.Fatalf("transcript kinds %v; pending %v failure %v enroll %v", kinds, sawPending, sawFailure, sawEnroll)
	}

	// The HAR export names the SCEP and profile content types.
	hreq, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v1/transcript?format=har", nil)
	hreq.Header.Set("Authorization", "Bearer "+srv.Server().PKI().APIKey)
	resp, err := srv.HTTPClient().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var har struct {
		Log struct {
			Entries []struct {
				Request struct {
					URL      string
					PostData *struct{ MimeType string }
				}
				Response struct {
					Status  int
					Content struct{ MimeType, Encoding string }
				}
			}
		}
	}
	if err := json.Unmarshal(b, &har); err != nil {
		t.Fatalf("HAR: %v", err)
	}
	mimes := map[string]bool{}
	for _, e := range har.Log.Entries {
		if e.Response.Status == 200 {
			mimes[e.Response.Content.MimeType] = true
		}
		if strings.Contains(e.Request.URL, "operation=PKIOperation") && e.Request.PostData != nil && e.Request.PostData.MimeType != "application/x-pki-message" {
			t.Errorf("PKIOperation request MIME %q", e.Request.PostData.MimeType)
		}
	}
	for _, m := range []string{"application/x-pki-message", "application/x-x509-ca-cert", "application/x-apple-aspen-config", "text/plain"} {
		if !mimes[m] {
			t.Errorf("HAR has no 200 answer of type %s (types: %v)", m, mimes)
		}
	}
}

// TestFaultRuleErrorsName: a bad rule through the API names the field and,
// for an unknown action, every known one.
func TestFaultRuleErrorsName(t *testing.T) {
	srv := NewServer(t)
	for rule, want := range map[string][]string{
		`{"action":"explode"}`:                            {"action", "explode", "notnow", "scep-failure", "signing-time-skew"},
		`{"action":"scep-failure"}`:                       {"fail_info", "badAlg", "badCertId"},
		`{"action":"scep-failure","fail_info":"badLuck"}`: {"fail_info", "badLuck"},
		`{"action":"signing-time-skew","skew":"soon"}`:    {"skew", "soon"},
		`{"endpoint":"checkin","action":"notnow"}`:        {"endpoint", "mdm"},
		`{"endpoint":"mdm","action":"scep-pending"}`:      {"endpoint", "scep"},
		`{"action":"status","status":500,"skew":"1m"}`:    {"skew"},
	} {
		status, body := postFault(t, srv, rule)
		if status != 400 {
			t.Errorf("%s: %d %s, want 400", rule, status, body)
			continue
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: %s does not say %q", rule, body, w)
			}
		}
	}
}
