package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// DocRetirement is the store.Documents kind of retirement records, by the
// device channel's enrollment ID.
const DocRetirement = "retirement"

// Retirement records a retire request: the RemoveProfile of the
// enrollment profile that ends management. It is what the API answers to
// POST /v1/enrollments/{id}/retire. (Wire type kept here until it moves to
// package api.)
type Retirement struct {
	EnrollmentID string `json:"enrollment_id"`
	// CommandUUID is the RemoveProfile queued for the device channel.
	CommandUUID string `json:"command_uuid"`
	// ProfileIdentifier is the enrollment profile's PayloadIdentifier.
	ProfileIdentifier string `json:"profile_identifier"`
	// Mode and Ownership are the enrollment's when it was retired.
	Mode        string           `json:"mode,omitempty"`
	Ownership   string           `json:"ownership,omitempty"`
	RequestedAt time.Time        `json:"requested_at"`
	Push        []api.PushResult `json:"push,omitempty"`
}

// WithRetire enables POST /v1/enrollments/{id}/retire: profileID names the
// PayloadIdentifier of the enrollment profile an enrollment installed
// (the server knows how it builds them), docs keeps the records.
func WithRetire(profileID func(e *store.Enrollment) string, docs store.Documents) Option {
	return func(a *API) { a.retireProfileID, a.docs = profileID, docs }
}

// Retire serves POST /v1/enrollments/{id}/retire: it ends management the
// way a User Enrollment allows (no wipe, only retire, seed 002): it queues
// RemoveProfile of the enrollment profile for the device channel, which
// removes the MDM profile and with it the managed apps, accounts and data
// (the managed partition of a User Enrollment), and records the request.
// MicroMDM documents the same server-side unenrollment (its wiki,
// "Terminating a Management Relationship with a device"). Any enrollment
// may be retired; a checked-out one is already gone (409).
func (a *API) Retire() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if a.retireProfileID == nil || a.docs == nil {
			a.writeError(w, r, httperr.New(http.StatusNotImplemented, "retire is not configured on this server"))
			return
		}
		var req struct {
			Push *bool `json:"push,omitempty"`
		}
		if err := a.decodeJSONBody(w, r, &req, true); err != nil {
			a.writeError(w, r, err)
			return
		}
		e, err := a.enrollment(ctx, r.PathValue("id"))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if e.DeviceID != "" && e.DeviceID != e.ID {
			// A user channel lives on the device's enrollment profile.
			if e, err = a.enrollment(ctx, e.DeviceID); err != nil {
				a.writeError(w, r, err)
				return
			}
		}
		if e.CheckedOut {
			a.writeError(w, r, httperr.New(http.StatusConflict, "enrollment %s is checked out already (its MDM profile was removed); there is nothing to retire", e.ID))
			return
		}
		pid := a.retireProfileID(e)
		cmd, err := mdm.NewCommand(a.newUUID(), &mdm.RemoveProfile{Identifier: pid})
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		push, err := a.enqueue(ctx, cmd, []string{e.ID}, req.Push == nil || *req.Push)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		rec := Retirement{EnrollmentID: e.ID, CommandUUID: cmd.CommandUUID, ProfileIdentifier: pid,
			Mode: e.Management.Mode, Ownership: e.Management.Ownership, RequestedAt: a.now().UTC()}
		b, err := json.Marshal(rec)
		if err == nil {
			err = a.docs.PutDocument(ctx, DocRetirement, e.ID, b)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		rec.Push = push
		a.log.InfoContext(ctx, "enrollment retired", "enrollment_id", e.ID, "command_uuid", cmd.CommandUUID)
		w.Header().Set("Location", "/v1/commands/"+cmd.CommandUUID)
		a.writeJSON(w, r, http.StatusAccepted, rec)
	})
}

// enqueue queues a command the server built (retire, app installs) the
// way POST /v1/commands does: durably, then the enqueue hook, then a push
// unless push is false.
func (a *API) enqueue(ctx context.Context, cmd *mdm.Command, ids []string, push bool) ([]api.PushResult, error) {
	rec := &store.Command{UUID: cmd.CommandUUID, RequestType: cmd.RequestType, Raw: cmd.Raw, CreatedAt: a.now().UTC()}
	if err := a.store.Enqueue(ctx, rec, ids...); err != nil {
		return nil, err
	}
	a.log.InfoContext(ctx, "command queued", "command_uuid", rec.UUID, "request_type", rec.RequestType,
		"enrollments", len(ids), "enrollment_id", ids[0])
	if a.onEnqueue != nil {
		a.onEnqueue(ctx, rec, ids)
	}
	p := push
	return a.pushAfterEnqueue(ctx, &api.EnqueueRequest{Push: &p}, ids), nil
}
