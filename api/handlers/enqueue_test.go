package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// TestEnqueueMethod: the Go method the dashboard calls queues exactly as
// POST /v1/commands does, and its refusals carry the status the HTTP
// answer would have.
func TestEnqueueMethod(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	no := false
	resp, err := e.api.Enqueue(ctx, &api.EnqueueRequest{
		EnrollmentIDs: []string{idEnrolled},
		Command:       json.RawMessage(`{"RequestType":"SecurityInfo"}`),
		Push:          &no,
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.RequestType != "SecurityInfo" || resp.CommandUUID == "" || len(resp.EnrollmentIDs) != 1 || resp.Push != nil {
		t.Fatalf("answer %+v", resp)
	}
	items, err := e.st.QueueItems(ctx, idEnrolled)
	if err != nil || len(items) != 1 || items[0].CommandUUID != resp.CommandUUID || items[0].Status != store.CommandPending {
		t.Fatalf("queue after Enqueue: %+v %v", items, err)
	}

	for _, tc := range []struct {
		name string
		req  *api.EnqueueRequest
		want int
	}{
		{"nil request", nil, http.StatusBadRequest},
		{"no targets", &api.EnqueueRequest{Command: json.RawMessage(`{"RequestType":"SecurityInfo"}`)}, http.StatusBadRequest},
		{"unknown enrollment", &api.EnqueueRequest{EnrollmentIDs: []string{"nobody"}, Command: json.RawMessage(`{"RequestType":"SecurityInfo"}`)}, http.StatusNotFound},
		{"unknown command", &api.EnqueueRequest{EnrollmentIDs: []string{idEnrolled}, Command: json.RawMessage(`{"RequestType":"Nope"}`)}, http.StatusBadRequest},
		{"duplicate UUID", &api.EnqueueRequest{EnrollmentIDs: []string{idEnrolled}, CommandUUID: resp.CommandUUID, Command: json.RawMessage(`{"RequestType":"SecurityInfo"}`)}, http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.api.Enqueue(ctx, tc.req)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := httperr.StatusOf(err); got != tc.want {
				t.Fatalf("status %d (%v), want %d", got, err, tc.want)
			}
		})
	}
}
