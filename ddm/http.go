package ddm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/store"
)

// Route is one HTTP route of the tester's API; the server mounts it under
// /v1 behind the API key.
type Route struct {
	Method, Path string
	Handler      http.Handler
}

// EnrollmentLookup finds an enrollment (store.ErrNotFound when none).
type EnrollmentLookup interface {
	GetEnrollment(ctx context.Context, id string) (*store.Enrollment, error)
}

// AdminRoutes are the tester's routes: declarations, and each enrollment's
// declarations and status. enrollments, when not nil, refuses an unknown
// enrollment ID with a 404.
func (s *Service) AdminRoutes(enrollments EnrollmentLookup) []Route {
	a := admin{s: s, enrollments: enrollments}
	return []Route{
		{http.MethodGet, "/declarations", http.HandlerFunc(a.list)},
		{http.MethodGet, "/declarations/{identifier}", http.HandlerFunc(a.get)},
		{http.MethodPut, "/declarations/{identifier}", http.HandlerFunc(a.put)},
		{http.MethodDelete, "/declarations/{identifier}", http.HandlerFunc(a.delete)},
		{http.MethodPost, "/declaration-assignments", http.HandlerFunc(a.assignMany)},
		{http.MethodGet, "/enrollments/{id}/declarations", http.HandlerFunc(a.enrollment)},
		{http.MethodPut, "/enrollments/{id}/declarations", http.HandlerFunc(a.assign)},
	}
}

type admin struct {
	s           *Service
	enrollments EnrollmentLookup
}

func (a admin) list(w http.ResponseWriter, r *http.Request) {
	ds, err := a.s.List(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"declarations": ds})
}

func (a admin) get(w http.ResponseWriter, r *http.Request) {
	d, err := a.s.Get(r.Context(), r.PathValue("identifier"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a admin) put(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	id := r.PathValue("identifier")
	var head struct{ Identifier string }
	if json.Unmarshal(body, &head) == nil && head.Identifier == "" {
		// The path names it; the body may leave it out.
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			m["Identifier"], _ = json.Marshal(id)
			body, _ = json.Marshal(m)
		}
	}
	d, err := ParseDeclaration(body)
	if err != nil {
		writeErr(w, err)
		return
	}
	if d.Identifier != id {
		writeErr(w, badRequest("the body's Identifier %q is not the path's %q", clip(d.Identifier), clip(id)))
		return
	}
	if err := a.s.Put(r.Context(), d); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a admin) delete(w http.ResponseWriter, r *http.Request) {
	if err := a.s.Delete(r.Context(), r.PathValue("identifier")); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a admin) checkEnrollment(ctx context.Context, id string) error {
	if a.enrollments == nil {
		return nil
	}
	_, err := a.enrollments.GetEnrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.New(http.StatusNotFound, "no enrollment %q", clip(id))
	}
	return err
}

func (a admin) assign(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.checkEnrollment(r.Context(), id); err != nil {
		writeErr(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	var req struct {
		Identifiers []string `json:"identifiers"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Identifiers == nil {
		writeErr(w, badRequest(`want {"identifiers": ["com.example.decl", …]} (an empty list removes every declaration)`))
		return
	}
	if len(req.Identifiers) > 1000 {
		writeErr(w, badRequest("%d identifiers; at most 1000", len(req.Identifiers)))
		return
	}
	if err := a.s.Assign(r.Context(), id, req.Identifiers); err != nil {
		writeErr(w, err)
		return
	}
	a.writeEnrollment(w, r, id)
}

// maxAssignTargets bounds one bulk assignment, as POST /v1/commands bounds
// its targets.
const maxAssignTargets = 10000

// assignMany gives many enrollments the same declarations: every
// enrollment must exist and every declaration be defined, or nothing is
// assigned.
func (a admin) assignMany(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	var req struct {
		EnrollmentIDs []string `json:"enrollment_ids"`
		Identifiers   []string `json:"identifiers"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Identifiers == nil || len(req.EnrollmentIDs) == 0 {
		writeErr(w, badRequest(`want {"enrollment_ids": ["…", …], "identifiers": ["com.example.decl", …]} (an empty identifiers list removes every declaration)`))
		return
	}
	if len(req.EnrollmentIDs) > maxAssignTargets || len(req.Identifiers) > 1000 {
		writeErr(w, badRequest("%d enrollments and %d identifiers; at most %d and 1000", len(req.EnrollmentIDs), len(req.Identifiers), maxAssignTargets))
		return
	}
	var unknown []string
	for _, id := range req.EnrollmentIDs {
		if err := a.checkEnrollment(r.Context(), id); httperr.StatusOf(err) == http.StatusNotFound {
			unknown = append(unknown, clip(id))
		} else if err != nil {
			writeErr(w, err)
			return
		}
	}
	if len(unknown) > 0 {
		if len(unknown) > 10 {
			unknown = append(unknown[:10], "…")
		}
		writeErr(w, httperr.New(http.StatusNotFound, "no enrollment %s; nothing was assigned", strings.Join(unknown, ", ")))
		return
	}
	if _, err := a.s.definedAll(r.Context(), req.Identifiers); err != nil {
		writeErr(w, err)
		return
	}
	for _, id := range req.EnrollmentIDs {
		if err := a.s.Assign(r.Context(), id, req.Identifiers); err != nil {
			writeErr(w, err)
			return
		}
	}
	ds, _, err := a.s.Assigned(r.Context(), req.EnrollmentIDs[0])
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"assigned": len(req.EnrollmentIDs), "declarations_token": DeclarationsToken(ds)})
}

func (a admin) enrollment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.checkEnrollment(r.Context(), id); err != nil {
		writeErr(w, err)
		return
	}
	a.writeEnrollment(w, r, id)
}

func (a admin) writeEnrollment(w http.ResponseWriter, r *http.Request, id string) {
	out, err := a.s.View(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// View is an enrollment's declarations, their DeclarationsToken and the
// status its device last reported (nil before any).
func (s *Service) View(ctx context.Context, id string) (*api.EnrollmentDeclarations, error) {
	ds, _, err := s.Assigned(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &api.EnrollmentDeclarations{EnrollmentID: id, Identifiers: []string{}, Declarations: []Declaration{}, DeclarationsToken: DeclarationsToken(ds)}
	for _, d := range ds {
		out.Identifiers = append(out.Identifiers, d.Identifier)
		out.Declarations = append(out.Declarations, *d)
	}
	if st, err := s.Status(ctx, id); err == nil {
		out.Status = st
	} else if httperr.StatusOf(err) != http.StatusNotFound {
		return nil, err
	}
	return out, nil
}

// readBody reads a JSON request body, bounded; a Content-Type that is not
// JSON is a 415, as everywhere in the API.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Header.Get("Content-Type") != "" { // a body without one is taken as JSON
		if err := httpx.RequireJSON(r); err != nil {
			return nil, err
		}
	}
	b, err := httpx.ReadBody(w, r, MaxDeclarationSize)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", MaxDeclarationSize)
	}
	if err != nil {
		return nil, httperr.Wrap(http.StatusBadRequest, err, "reading the body failed")
	}
	return b, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // reasons quote schema types such as <string>
	_ = enc.Encode(v)
}

// writeErr answers {"error": reason, "status": code}, as the rest of the
// API does.
func writeErr(w http.ResponseWriter, err error) {
	status := httperr.StatusOf(err)
	reason := httperr.ReasonOf(err)
	writeJSON(w, status, map[string]any{"error": reason, "status": status})
}
