package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mockmdm/mockmdm/ade"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/web"
)

// PathADEActivation is the mock Apple activation service a virtual device
// asks, at activation, for the ADE profile assigned to its serial.
const PathADEActivation = "/ade/activation"

// PathADEDiscovery is the mock of Apple-hosted service discovery a virtual
// device asks (device.WithAppleServiceDiscovery) when the user's domain
// serves no discovery document.
const PathADEDiscovery = "/ade/discovery"

// ABM is the simulated Apple Business Manager (ADE API, server tokens,
// devices the organisation owns).
func (s *Server) ABM() *ade.Service { return s.abm }

// adeRoutes lists the simulated ABM's routes for the route table. Apple's
// ADE API paths sit at the root of the host: DEP clients resolve them
// against the host of their base URL, dropping any path, so a DEP client
// is pointed at this server's own URL.
func (s *Server) adeRoutes() (apple, activation, admin []ade.Route) {
	apple = append(s.abm.Routes(), s.abm.EscrowKeyUnlockRoutes(s.pushCertClient)...)
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

// pushCertClient is how the mock of Apple's "escrow key unlock" knows the
// MDM server: Apple authenticates that call by mutual TLS with the
// server's APNs push certificate, so the TLS client certificate must be
// the push certificate this server holds (uploaded, or its mock one). The
// handshake has already checked the client holds its key.
func (s *Server) pushCertClient(r *http.Request) error {
	switch {
	case r.TLS == nil:
		return httperr.New(http.StatusForbidden, "escrow key unlock authenticates the MDM server by its APNs push certificate over mutual TLS; this request came over plain HTTP (use the HTTPS listener)")
	case len(r.TLS.PeerCertificates) == 0:
		return httperr.New(http.StatusForbidden, "no TLS client certificate: present the push certificate and its key, as for Apple (GET /v1/push/certificate shows which)")
	case !s.push.isPushCert(r.TLS.PeerCertificates[0]):
		return httperr.New(http.StatusForbidden, "the TLS client certificate %q is not this server's push certificate (GET /v1/push/certificate shows which)", r.TLS.PeerCertificates[0].Subject.String())
	}
	return nil
}

// abmDefiner defines the MDM side's ADE enrollment profiles in the
// simulated ABM (enroll.DEPDefiner over ade.Service), as an MDM server
// calls Apple's "Define a Profile" with the serials to assign.
type abmDefiner struct{ abm *ade.Service }

func (d abmDefiner) DefineAndAssign(ctx context.Context, p enroll.DEPProfile, serials []string) (string, error) {
	yes := func(b bool) *bool { return &b }
	prof := &ade.Profile{
		ProfileName: p.ProfileName, URL: p.URL, ConfigurationWebURL: p.ConfigurationWebURL,
		IsSupervised: yes(p.IsSupervised), IsMandatory: yes(p.IsMandatory), IsMDMRemovable: yes(p.IsMDMRemovable),
		AwaitDeviceConfigured: yes(p.AwaitDeviceConfigured),
		Department:            p.Department, SupportPhoneNumber: p.SupportPhoneNumber,
		SkipSetupItems: p.SkipSetupItems, AnchorCerts: p.AnchorCerts, Devices: serials,
	}
	if p.IsMultiUser {
		prof.IsMultiUser = yes(true)
	}
	res, err := d.abm.DefineProfile(ctx, prof)
	if err != nil {
		return "", err
	}
	var missing []string
	for serial, status := range res.Devices {
		if status != "SUCCESS" {
			missing = append(missing, serial+" ("+status+")")
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return res.ProfileUUID, httperr.New(http.StatusConflict, "the profile was defined in the simulated Apple Business Manager, but these serials could not be assigned: %s; buy them into the organisation first (POST /v1/ade/devices)", strings.Join(missing, ", "))
	}
	return res.ProfileUUID, nil
}

// adeTokenStatus is the uploaded ADE server token's status for the
// dashboard (nil when no token was uploaded).
func (s *Server) adeTokenStatus(ctx context.Context) (*web.ADETokenStatus, error) {
	st, err := s.abm.CurrentTokenStatus(ctx)
	if err != nil || st == nil {
		return nil, err
	}
	out := &web.ADETokenStatus{ConsumerKey: st.ConsumerKey, NotAfter: st.Expiry, DaysLeft: st.DaysLeft, State: st.State}
	switch st.State {
	case "expired":
		out.Warnings = append(out.Warnings, "the server token has expired: download a new one from Apple Business Manager and upload it (PUT /v1/ade/token)")
	case "expiring-soon":
		out.Warnings = append(out.Warnings, fmt.Sprintf("the server token expires in %d days: renew it in Apple Business Manager", st.DaysLeft))
	}
	return out, nil
}
