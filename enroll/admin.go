package enroll

import (
	"context"
	"net/http"
	"strings"

	"github.com/mockmdm/mockmdm/store"
)

// AdminRoutes are the directory and enrollment-program routes of the REST
// API; the server mounts them behind the API key. Errors are JSON
// {code, message} with the rule's code.
func (s *Service) AdminRoutes() []Route {
	h := func(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := f(w, r); err != nil {
				s.log.InfoContext(r.Context(), "enrollment admin request refused", "method", r.Method, "path", r.URL.Path, "err", err)
				writeError(w, err)
			}
		})
	}
	return []Route{
		{http.MethodPut, "/v1/directory", h(s.adminLoadConfig)},
		{http.MethodGet, "/v1/directory/users", h(s.adminUsers)},
		{http.MethodGet, "/v1/directory/users/{upn}", h(s.adminGetUser)},
		{http.MethodPut, "/v1/directory/users/{upn}", h(s.adminPutUser)},
		{http.MethodDelete, "/v1/directory/users/{upn}", h(s.adminDeleteUser)},
		{http.MethodGet, "/v1/directory/groups", h(s.adminGroups)},
		{http.MethodGet, "/v1/directory/groups/{name}", h(s.adminGetGroup)},
		{http.MethodPut, "/v1/directory/groups/{name}", h(s.adminPutGroup)},
		{http.MethodDelete, "/v1/directory/groups/{name}", h(s.adminDeleteGroup)},
		{http.MethodGet, "/v1/enrollment-type-profiles", h(s.adminTypeProfiles)},
		{http.MethodGet, "/v1/enrollment-type-profiles/{name}", h(s.adminGetTypeProfile)},
		{http.MethodPut, "/v1/enrollment-type-profiles/{name}", h(s.adminPutTypeProfile)},
		{http.MethodDelete, "/v1/enrollment-type-profiles/{name}", h(s.adminDeleteTypeProfile)},
		{http.MethodGet, "/v1/enrollment-settings", h(s.adminSettings)},
		{http.MethodPut, "/v1/enrollment-settings", h(s.adminPutSettings)},
		{http.MethodPut, "/v1/enrollments/{id}/ownership", h(s.adminOwnership)},
		{http.MethodGet, "/v1/enrollment-tickets", h(s.adminTickets)},
		{http.MethodGet, "/v1/enrollment-sessions", h(s.adminSessions)},
	}
}

// UserList is GET /v1/directory/users.
type UserList struct {
	Users []User `json:"users"`
}

func (s *Service) adminUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := s.Users(r.Context())
	if err != nil {
		return err
	}
	out := UserList{Users: make([]User, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, u.Public())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) adminGetUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.User(r.Context(), r.PathValue("upn"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u.Public())
	return nil
}

// adminPutUser creates or replaces a user. Replacing a user without giving
// a password (or MFA code) keeps the old one: the API never returns
// secrets, so an admin editing groups could not send them back.
func (s *Service) adminPutUser(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	var u User
	if err := readJSON(w, r, &u); err != nil {
		return err
	}
	upn := r.PathValue("upn")
	if u.UPN == "" {
		u.UPN = upn
	}
	if userKey(u.UPN) != userKey(upn) {
		return invalid("the body's upn %q differs from the path's %q", u.UPN, upn)
	}
	status := http.StatusCreated
	if old, err := s.User(r.Context(), upn); err == nil {
		status = http.StatusOK
		if u.Password == "" {
			u.Password = old.Password
		}
		if u.MFACode == "" {
			u.MFACode = old.MFACode
		}
	}
	if err := s.PutUser(r.Context(), u); err != nil {
		return err
	}
	writeJSON(w, status, u.Public())
	return nil
}

func (s *Service) adminDeleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeleteUser(r.Context(), r.PathValue("upn")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GroupList is GET /v1/directory/groups.
type GroupList struct {
	Groups []Group `json:"groups"`
}

func (s *Service) adminGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.Groups(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, GroupList{Groups: gs})
	return nil
}

func (s *Service) adminGetGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.Group(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Service) adminPutGroup(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	var g Group
	if err := readJSON(w, r, &g); err != nil {
		return err
	}
	name := r.PathValue("name")
	if g.Name == "" {
		g.Name = name
	}
	if g.Name != name {
		return invalid("the body's name %q differs from the path's %q", g.Name, name)
	}
	if err := s.PutGroup(r.Context(), g); err != nil {
		return err
	}
	g2, err := s.Group(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g2)
	return nil
}

func (s *Service) adminDeleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeleteGroup(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DeleteGroup removes a group no user or enrollment type profile refers
// to; one still in use is refused (409) with the users and profiles named.
func (s *Service) DeleteGroup(ctx context.Context, name string) error {
	if _, err := s.Group(ctx, name); err != nil {
		return err
	}
	var users []string
	us, err := s.Users(ctx)
	if err != nil {
		return err
	}
	for _, u := range us {
		if hasGroup(&u, name) {
			users = append(users, u.UPN)
		}
	}
	var profs []string
	ps, err := s.TypeProfiles(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		for _, g := range p.Groups {
			if g == name {
				profs = append(profs, p.Name)
			}
		}
	}
	if len(users)+len(profs) > 0 {
		return refuse(http.StatusConflict, CodeInvalid, "group %s is still used by users [%s] and enrollment type profiles [%s]; remove it from them first",
			name, strings.Join(users, ", "), strings.Join(profs, ", "))
	}
	return s.docs.DeleteDocument(ctx, kindGroup, name)
}

// TypeProfileList is GET /v1/enrollment-type-profiles, highest priority first.
type TypeProfileList struct {
	Profiles []TypeProfile `json:"enrollment_type_profiles"`
}

func (s *Service) adminTypeProfiles(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.TypeProfiles(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TypeProfileList{Profiles: ps})
	return nil
}

// TypeProfile returns an enrollment type profile by name.
func (s *Service) TypeProfile(ctx context.Context, name string) (*TypeProfile, error) {
	return getDoc[TypeProfile](ctx, s, kindTypeProfile, name,
		refuse(http.StatusNotFound, CodeNoTypeProfile, "no enrollment type profile %q", name))
}

func (s *Service) adminGetTypeProfile(w http.ResponseWriter, r *http.Request) error {
	p, err := s.TypeProfile(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Service) adminPutTypeProfile(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	var p TypeProfile
	if err := readJSON(w, r, &p); err != nil {
		return err
	}
	name := r.PathValue("name")
	if p.Name == "" {
		p.Name = name
	}
	if p.Name != name {
		return invalid("the body's name %q differs from the path's %q", p.Name, name)
	}
	if err := s.PutTypeProfile(r.Context(), p); err != nil {
		return err
	}
	got, err := s.TypeProfile(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, got)
	return nil
}

func (s *Service) adminDeleteTypeProfile(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeleteTypeProfile(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) adminSettings(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Settings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Service) adminPutSettings(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	var st Settings
	if err := readJSON(w, r, &st); err != nil {
		return err
	}
	if err := s.PutSettings(r.Context(), st); err != nil {
		return err
	}
	return s.adminSettings(w, r)
}

// OwnershipRequest is PUT /v1/enrollments/{id}/ownership ("identify as
// corporate").
type OwnershipRequest struct {
	Ownership string `json:"ownership"`
}

func (s *Service) adminOwnership(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	var req OwnershipRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	e, err := s.SetOwnership(r.Context(), r.PathValue("id"), req.Ownership)
	if err != nil {
		if isNotFound(err) {
			return refuse(http.StatusNotFound, "not_found", "no enrollment %q", r.PathValue("id"))
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": e.ID, "management": e.Management})
	return nil
}

// TicketList is GET /v1/enrollment-tickets.
type TicketList struct {
	Tickets []Ticket `json:"tickets"`
}

func (s *Service) adminTickets(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.Tickets(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TicketList{Tickets: ts})
	return nil
}

// SessionList is GET /v1/enrollment-sessions (tokens redacted).
type SessionList struct {
	Sessions []Session `json:"sessions"`
}

func (s *Service) adminSessions(w http.ResponseWriter, r *http.Request) error {
	ss, err := s.Sessions(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, SessionList{Sessions: ss})
	return nil
}

// adminLoadConfig applies a directory config (YAML or JSON) on top of what
// is there; the first refused item is named with its line, and the items
// before it stay applied (as at start-up with -directory).
func (s *Service) adminLoadConfig(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if err := s.LoadConfig(r.Context(), "request body", body); err != nil {
		if _, ok := ErrorOf(err); ok {
			return err
		}
		return invalid("%v", err)
	}
	c, _, _ := ParseConfig("request body", body)
	writeJSON(w, http.StatusOK, map[string]int{"groups": len(c.Groups), "users": len(c.Users), "enrollment_type_profiles": len(c.TypeProfiles)})
	return nil
}

func isNotFound(err error) bool { return err != nil && errorsIs(err, store.ErrNotFound) }
