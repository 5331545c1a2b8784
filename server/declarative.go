package server

import (
	"context"

	"github.com/mockmdm/mockmdm/api"
)

// declarationsView is an enrollment's declarative management in the API's
// wire types, for the dashboard's device page.
func (s *Server) declarationsView(ctx context.Context, id string) (*api.EnrollmentDeclarations, error) {
	v, err := s.ddm.View(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &api.EnrollmentDeclarations{EnrollmentID: v.EnrollmentID, Identifiers: v.Identifiers, DeclarationsToken: v.DeclarationsToken}
	for _, d := range v.Declarations {
		out.Declarations = append(out.Declarations, api.Declaration{Type: d.Type, Identifier: d.Identifier, ServerToken: d.ServerToken, Payload: d.Payload})
	}
	if st := v.Status; st != nil {
		out.Status = &api.DeclarativeStatus{ReceivedAt: st.ReceivedAt, Report: st.Report, StatusItems: st.StatusItems, Errors: st.Errors}
	}
	return out, nil
}
