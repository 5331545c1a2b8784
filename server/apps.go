package server

import (
	"context"
	"strings"

	"github.com/mockmdm/mockmdm/api/handlers"
	"github.com/mockmdm/mockmdm/apps"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/store"
)

// appsOptions wires the app catalog and retire into the API: the catalog
// reads groups from the enrollment programs' directory; retire names the
// enrollment profile the server built for the enrollment.
func (s *Server) appsOptions() []handlers.Option {
	s.apps = apps.New(s.store, appDirectory{s.programs}, apps.WithLogger(s.log), apps.WithClock(s.now))
	return []handlers.Option{
		handlers.WithApps(s.apps),
		handlers.WithRetire(s.enrollmentProfileID, s.store),
	}
}

// Apps is the app catalog.
func (s *Server) Apps() *apps.Service { return s.apps }

// enrollmentProfileID is the PayloadIdentifier of the enrollment profile
// an enrollment installed: the server's own, made per ticket when an
// enrollment program issued it (profileIssuer).
func (s *Server) enrollmentProfileID(e *store.Enrollment) string {
	id := s.enrollmentOptions("").Identifier
	if e.Management.Ticket != "" {
		id += "." + e.Management.Ticket
	}
	return id
}

// appDirectory answers the catalog's group questions from the directory.
type appDirectory struct{ programs *enroll.Service }

func (d appDirectory) GroupKind(ctx context.Context, name string) (string, error) {
	g, err := d.programs.Group(ctx, name)
	if err != nil {
		return "", err
	}
	return g.Kind, nil
}

func (d appDirectory) GroupMembers(ctx context.Context, name string) ([]string, error) {
	users, err := d.programs.Users(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range users {
		for _, g := range u.Groups {
			if strings.EqualFold(g, name) || g == name {
				out = append(out, u.UPN)
				break
			}
		}
	}
	return out, nil
}
