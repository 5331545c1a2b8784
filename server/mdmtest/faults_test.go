package mdmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/device"
)

// postFault posts a rule to /v1/faults.
func postFault(t *testing.T, srv *Server, rule string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/v1/faults", strings.NewReader(rule))
	req.Header.Set("Authorization", "Bearer "+srv.Server().PKI().APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// addFault posts a rule and returns its ID.
func addFault(t *testing.T, srv *Server, rule string) string {
	t.Helper()
	status, b := postFault(t, srv, rule)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/faults %s: %d %s", rule, status, b)
	}
	var out struct{ ID string }
	_ = json.Unmarshal(b, &out)
	return out.ID
}

func transcriptNotes(t *testing.T, srv *Server, id string) string {
	t.Helper()
	tr, err := srv.Client().Transcript(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range tr {
		fmt.Fprintf(&b, "%s %s %d %s\n", e.Kind, e.MessageType, e.HTTPStatus, e.Note)
	}
	return b.String()
}

// TestFaultInjection drives each fault action through the API against a
// virtual device over real TLS, and finds each one marked in the
// transcript with the rule that fired.
func TestFaultInjection(t *testing.T) {
	srv := NewServer(t, WithTLS())
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()

	// Fail the first two connects with 503, then succeed.
	addFault(t, srv, `{"endpoint":"mdm","message_type":"Idle","enrollment_id":"`+id+`","action":"status","status":503,"times":2}`)
	for i := 1; i <= 2; i++ {
		_, err := dev.Connect(ctx)
		var se *device.ServerError
		if !errors.As(err, &se) || se.StatusCode != 503 {
			t.Fatalf("connect %d: %v, want the injected 503", i, err)
		}
	}
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatalf("third connect, after the rule's two firings: %v", err)
	}
	notes := transcriptNotes(t, srv, id)
	if strings.Count(notes, "fault injected: rule fault-1 (status 503)") != 2 || !strings.Contains(notes, "firing 2") {
		t.Fatalf("transcript does not mark the faults:\n%s", notes)
	}

	// A delay: the answer comes, later.
	addFault(t, srv, `{"endpoint":"mdm","action":"delay","delay":"150ms","times":1}`)
	start := time.Now()
	if _, err := dev.Connect(ctx); err != nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("delayed connect: %v after %s", err, time.Since(start))
	}

	// Dropping the connection: the device sees a network error, not an answer.
	addFault(t, srv, `{"endpoint":"mdm","action":"drop","times":1}`)
	_, err := dev.Connect(ctx)
	var ee *device.ExchangeError
	if !errors.As(err, &ee) {
		t.Fatalf("dropped connect: %v, want a network error", err)
	}

	// com.apple.unrecognized.device: the device forgets its enrollment.
	addFault(t, srv, `{"endpoint":"mdm","enrollment_id":"`+id+`","action":"unrecognized-device","times":1}`)
	res, _ := dev.Connect(ctx)
	if res == nil || !res.Unenrolled || dev.IsEnrolled() {
		t.Fatalf("after com.apple.unrecognized.device the device is still enrolled: %+v", res)
	}

	// com.apple.softwareupdate.required at enrollment, with the OS asked for.
	other := srv.NewDevice()
	addFault(t, srv, `{"endpoint":"enroll","action":"softwareupdate-required","os_version":"18.2","times":1}`)
	_, err = other.EnrollFromURL(ctx, srv.EnrollURL())
	var se *device.ServerError
	if !errors.As(err, &se) || se.StatusCode != 403 || !bytes.Contains(se.Body, []byte(`"com.apple.softwareupdate.required"`)) || !bytes.Contains(se.Body, []byte(`"18.2"`)) {
		t.Fatalf("enroll under softwareupdate-required: %v", err)
	}
	// The rule fired once: the next enrollment goes through.
	srv.Enroll(other)

	// The legacy bare 401 on SCEP.
	addFault(t, srv, `{"endpoint":"scep","message_type":"PKIOperation","action":"unauthorized","times":1}`)
	if _, err := srv.NewDevice().EnrollFromURL(ctx, srv.EnrollURL()); err == nil {
		t.Fatal("an enrollment went through a SCEP 401")
	}

	// The rules list how often they fired; bad rules are refused; reset clears.
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v1/faults", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Server().PKI().APIKey)
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Rules []struct {
			ID    string
			Fired int
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Rules) != 6 || list.Rules[0].Fired != 2 {
		t.Fatalf("rules %+v", list.Rules)
	}
	for _, bad := range []string{`{"action":"explode"}`, `{"action":"status","status":42}`, `{"action":"delay","delay":"forever"}`, `{"endpoint":"ftp","action":"drop"}`, `{"action":"status","status":500,"times":-1}`} {
		if status, body := postFault(t, srv, bad); status != 400 {
			t.Errorf("rule %s: %d %s, want 400", bad, status, body)
		}
	}
	if err := srv.Client().Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.Server().Faults().List(); len(got) != 0 {
		t.Fatalf("reset left %d rules", len(got))
	}
}
