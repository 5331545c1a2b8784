package handlers

import (
	"context"
	"net/http"

	"github.com/mockmdm/mockmdm/checkin"
)

// FaultRules holds the device-endpoint faults (checkin.Faults).
type FaultRules interface {
	Add(r checkin.FaultRule) (checkin.FaultRule, error)
	List() []checkin.FaultRule
	Remove(id string) error
	Clear()
}

// WithFaults connects the /v1/faults endpoints.
func WithFaults(f FaultRules) Option { return func(a *API) { a.faults = f } }

// AddFault serves POST /v1/faults.
func (a *API) AddFault() http.Handler {
	return jsonCall(a, a.faults != nil, "fault injection", false, http.StatusCreated, func(ctx context.Context, r *checkin.FaultRule) (any, error) {
		rule, err := a.faults.Add(*r)
		if err != nil {
			return nil, err
		}
		a.log.InfoContext(ctx, "fault rule added", "rule", rule.ID, "action", rule.Action, "endpoint", rule.Endpoint, "message_type", rule.MessageType, "enrollment_id", rule.EnrollmentID)
		return rule, nil
	})
}

// ListFaults serves GET /v1/faults.
func (a *API) ListFaults() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.faults == nil {
			a.writeError(w, r, notConfigured("fault injection"))
			return
		}
		a.writeJSON(w, r, http.StatusOK, map[string]any{"rules": a.faults.List()})
	})
}

// ClearFaults serves DELETE /v1/faults, and DeleteFault DELETE /v1/faults/{id}.
func (a *API) ClearFaults() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.faults == nil {
			a.writeError(w, r, notConfigured("fault injection"))
			return
		}
		a.faults.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
}

// DeleteFault serves DELETE /v1/faults/{id}.
func (a *API) DeleteFault() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.faults == nil {
			a.writeError(w, r, notConfigured("fault injection"))
			return
		}
		if err := a.faults.Remove(r.PathValue("id")); err != nil {
			a.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
