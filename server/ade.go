package server

import (
	"github.com/mockmdm/mockmdm/ade"
)

// PathADEActivation is the mock Apple activation service a virtual device
// asks, at activation, for the ADE profile assigned to its serial.
const PathADEActivation = "/ade/activation"

// ABM is the simulated Apple Business Manager (ADE API, server tokens,
// devices the organisation owns).
func (s *Server) ABM() *ade.Service { return s.abm }

// adeRoutes lists the simulated ABM's routes for the route table. Apple's
// ADE API paths sit at the root of the host: DEP clients resolve them
// against the host of their base URL, dropping any path, so a DEP client
// is pointed at this server's own URL.
func (s *Server) adeRoutes() (apple, activation, admin []ade.Route) {
	apple = s.abm.Routes()
	for _, r := range s.abm.ActivationRoutes() {
		r.Path = "/ade" + r.Path
		activation = append(activation, r)
	}
	for _, r := range s.abm.AdminRoutes() {
		r.Path = "/v1/ade" + r.Path
		admin = append(admin, r)
	}
	return apple, activation, admin
}
