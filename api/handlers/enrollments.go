package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// ListEnrollments serves GET /v1/enrollments.
func (a *API) ListEnrollments() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := a.store.ListEnrollments(r.Context())
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out := api.EnrollmentList{Enrollments: make([]api.Enrollment, 0, len(list))}
		for _, e := range list {
			out.Enrollments = append(out.Enrollments, enrollmentJSON(e))
		}
		a.writeJSON(w, r, http.StatusOK, out)
	})
}

// GetEnrollment serves GET /v1/enrollments/{id}.
func (a *API) GetEnrollment() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := a.enrollment(r.Context(), r.PathValue("id"))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusOK, enrollmentJSON(e))
	})
}

// EnrollmentQueue serves GET /v1/enrollments/{id}/queue.
func (a *API) EnrollmentQueue() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := a.enrollment(r.Context(), id); err != nil {
			a.writeError(w, r, err)
			return
		}
		items, err := a.store.QueueItems(r.Context(), id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			a.writeError(w, r, err)
			return
		}
		out := api.Queue{EnrollmentID: id, Items: make([]api.QueueItem, 0, len(items))}
		for _, it := range items {
			out.Items = append(out.Items, api.QueueItem{
				CommandUUID: it.CommandUUID,
				RequestType: it.RequestType,
				Status:      it.Status,
				CreatedAt:   it.CreatedAt,
				UpdatedAt:   it.UpdatedAt,
			})
		}
		a.writeJSON(w, r, http.StatusOK, out)
	})
}

// enrollment loads one enrollment, turning not-found into a 404 that says
// where to look.
func (a *API) enrollment(ctx context.Context, id string) (*store.Enrollment, error) {
	if id == "" {
		return nil, httperr.New(http.StatusBadRequest, "enrollment ID missing from the path")
	}
	e, err := a.store.GetEnrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, httperr.New(http.StatusNotFound, "no enrollment with ID %q (GET /v1/enrollments lists them)", truncate(id, 100))
	}
	return e, err
}

// enrollmentJSON shows a record without its secrets.
func enrollmentJSON(e *store.Enrollment) api.Enrollment {
	t := mdm.EnrollType(e.Type)
	out := api.Enrollment{
		ID:             e.ID,
		Type:           e.Type,
		EnrollmentType: enrollmentTypeWords(t),
		Channel:        "user",
		DeviceID:       e.DeviceID,

		UDID:             e.UDID,
		EnrollmentID:     e.EnrollmentID,
		UserID:           e.UserID,
		UserShortName:    e.UserShortName,
		UserLongName:     e.UserLongName,
		EnrollmentUserID: e.EnrollmentUserID,

		SerialNumber: e.SerialNumber,
		Model:        e.Model,
		ModelName:    e.ModelName,
		ProductName:  e.ProductName,
		DeviceName:   e.DeviceName,
		OSVersion:    e.OSVersion,
		BuildVersion: e.BuildVersion,
		IMEI:         e.IMEI,
		MEID:         e.MEID,

		Topic:                 e.Topic,
		PushTokenPresent:      len(e.PushToken) > 0 && e.PushMagic != "",
		AwaitingConfiguration: e.AwaitingConfiguration,

		Enrolled:   e.Enrolled,
		CheckedOut: e.CheckedOut,

		AuthenticatedAt: e.AuthenticatedAt,
		EnrolledAt:      e.EnrolledAt,
		LastSeen:        e.LastSeen,

		IdentityCertSHA256: e.CertHash,
		Management:         api.Management(e.Management),
		IdentityNotAfter:   e.CertNotAfter,
	}
	if t.IsDeviceChannel() {
		out.Channel = "device"
	}
	switch {
	case e.CheckedOut:
		out.State = api.StateCheckedOut
	case e.Enrolled:
		out.State = api.StateEnrolled
	default:
		out.State = api.StateAuthenticated
	}
	return out
}

// enrollmentTypeWords says an enrollment type the way a person would.
func enrollmentTypeWords(t mdm.EnrollType) string {
	switch t {
	case mdm.Device:
		return "device enrollment"
	case mdm.User:
		return "device enrollment (macOS user channel)"
	case mdm.SharedIPad:
		return "Shared iPad user"
	case mdm.UserEnrollmentDevice:
		return "user enrollment (BYOD)"
	case mdm.UserEnrollment:
		return "user enrollment (BYOD, macOS user channel)"
	}
	return "unknown (" + string(t) + ")"
}
