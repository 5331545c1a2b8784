package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/apiview"
	"github.com/mockmdm/mockmdm/internal/httperr"
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
			out.Enrollments = append(out.Enrollments, apiview.Enrollment(e))
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
		a.writeJSON(w, r, http.StatusOK, apiview.Enrollment(e))
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
