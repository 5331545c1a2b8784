package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/store"
)

// TestClientRoundTrip drives every client method against the real
// handlers over a real socket.
func TestClientRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.seed()
	srv := httptest.NewServer(e.mux)
	defer srv.Close()
	ctx := context.Background()
	c := api.NewClient(srv.URL+"/", testKey, api.WithHTTPClient(srv.Client()))

	info, err := c.Info(ctx)
	if err != nil || info.Topic != "com.apple.mgmt.External.test" {
		t.Fatalf("Info: %+v %v", info, err)
	}
	list, err := c.ListEnrollments(ctx)
	if err != nil || len(list) != 5 {
		t.Fatalf("ListEnrollments: %d %v", len(list), err)
	}
	en, err := c.GetEnrollment(ctx, idBYODUser)
	if err != nil || en.ID != idBYODUser || en.Channel != "user" {
		t.Fatalf("GetEnrollment: %+v %v", en, err)
	}
	_, err = c.GetEnrollment(ctx, "no such/id")
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || !strings.Contains(apiErr.Message, "no such/id") {
		t.Fatalf("GetEnrollment unknown: %v", err)
	}
	if !api.IsStatus(err, http.StatusNotFound) {
		t.Error("IsStatus(404) false")
	}

	res, err := c.Enqueue(ctx, api.EnqueueRequest{
		EnrollmentIDs: []string{idEnrolled},
		Command:       json.RawMessage(`{"RequestType":"DeviceLock","Message":"Lost"}`),
		CommandUUID:   "CLIENT-1",
	})
	if err != nil || res.CommandUUID != "CLIENT-1" || res.RequestType != "DeviceLock" {
		t.Fatalf("Enqueue: %+v %v", res, err)
	}
	_, err = c.Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: []string{idEnrolled}, Command: json.RawMessage(`{"RequestType":"DeviceLock"}`), CommandUUID: "CLIENT-1"})
	if !api.IsStatus(err, http.StatusConflict) {
		t.Fatalf("duplicate Enqueue: %v", err)
	}
	q, err := c.Queue(ctx, idEnrolled)
	if err != nil || len(q.Items) != 1 || q.Items[0].RequestType != "DeviceLock" {
		t.Fatalf("Queue: %+v %v", q, err)
	}
	st, err := c.GetCommand(ctx, "CLIENT-1", 0)
	if err != nil || st.Done {
		t.Fatalf("GetCommand: %+v %v", st, err)
	}

	// Long-poll through the client: a device answers while it waits.
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(30 * time.Millisecond)
		if err := e.st.SaveResult(ctx, idEnrolled, "CLIENT-1", "Acknowledged", []byte(errorPlist(idEnrolled, "CLIENT-1")), testNow); err != nil {
			t.Error(err)
		}
		e.hub.Publish("CLIENT-1")
	})
	st, err = c.GetCommand(ctx, "CLIENT-1", 60*time.Second)
	wg.Wait()
	if err != nil || !st.Done || len(st.Results) != 1 || st.Results[0].ResultPlist == "" {
		t.Fatalf("GetCommand wait: %+v %v", st, err)
	}

	if err := e.st.AppendTranscript(ctx, transcriptEntries(idEnrolled, 3)...); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Transcript(ctx, idEnrolled, 0, 2)
	if err != nil || len(tr) != 2 {
		t.Fatalf("Transcript: %d %v", len(tr), err)
	}
	tr, err = c.Transcript(ctx, "", tr[1].Seq, 0)
	if err != nil || len(tr) != 1 {
		t.Fatalf("Transcript all after: %d %v", len(tr), err)
	}

	ch, err := c.MintChallenge(ctx, 10*time.Minute)
	if err != nil || len(ch.Challenge) != 32 || !ch.ExpiresAt.Equal(testNow.Add(10*time.Minute)) {
		t.Fatalf("MintChallenge: %+v %v", ch, err)
	}
	ch, err = c.MintChallenge(ctx, 0)
	if err != nil || !ch.ExpiresAt.Equal(testNow.Add(time.Hour)) {
		t.Fatalf("MintChallenge default: %+v %v", ch, err)
	}

	if err := c.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if list, _ := c.ListEnrollments(ctx); len(list) != 0 {
		t.Errorf("%d enrollments after Reset", len(list))
	}

	// A wrong key is a 401 *api.Error with the server's reason.
	bad := api.NewClient(srv.URL+"/v1", "wrong", api.WithHTTPClient(srv.Client()))
	_, err = bad.Info(ctx)
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Message != "API key not accepted" {
		t.Fatalf("wrong key: %v", err)
	}
	// An ID with a slash is escaped into one path segment.
	_, err = c.Queue(ctx, "a/b")
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || !strings.Contains(apiErr.Message, `"a/b"`) {
		t.Fatalf("escaped ID: %v", err)
	}
	// A non-JSON error body (a router's plain-text 404) still becomes an *api.Error.
	_, err = api.NewClient(srv.URL+"/nowhere", testKey).Info(ctx)
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Message == "" {
		t.Fatalf("plain-text 404: %#v", err)
	}
}

func transcriptEntries(id string, n int) []*store.TranscriptEntry {
	out := make([]*store.TranscriptEntry, n)
	for i := range out {
		out[i] = &store.TranscriptEntry{Time: testNow, EnrollmentID: id, Kind: "checkin", Method: "PUT", Path: "/checkin", Status: 200}
	}
	return out
}
