package server

import (
	"context"
	"crypto/x509"
	"strings"

	"github.com/google/uuid"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// ADEFlowConfig configures the ADE device flow and Apple Configurator
// profiles (enroll.ADE); its zero value uses the simulated ABM and the
// PKI's mock Apple device CA.
type ADEFlowConfig struct {
	// Definer defines and assigns DEP profiles in the simulated ABM.
	Definer enroll.DEPDefiner
	// AppleDeviceCA is the mock "Apple iPhone Device CA" the server trusts
	// for MachineInfo in strict mode.
	AppleDeviceCA *x509.Certificate
	// Verify is how MachineInfo signatures are checked (default signature).
	Verify certs.MachineInfoVerify
}

// WithADEFlow configures the ADE device endpoints (/ade/enroll/{profile},
// /ade/web/{profile}) and the ADE and Configurator profile API.
func WithADEFlow(c ADEFlowConfig) Option { return func(s *Server) { s.adeCfg = &c } }

// ADE is the ADE flow.
func (s *Server) ADE() *enroll.ADE { return s.ade }

// newADE builds the ADE flow from the configuration.
func (s *Server) newADE() {
	c := s.adeCfg
	if c == nil {
		c = &ADEFlowConfig{}
	}
	if c.Definer == nil {
		c.Definer = abmDefiner{s.abm}
	}
	if c.AppleDeviceCA == nil {
		c.AppleDeviceCA = s.pki.AppleDeviceCA.Certificate()
	}
	if c.Verify == "" {
		c.Verify = certs.VerifySignature
	}
	var roots []*x509.Certificate
	if c.AppleDeviceCA != nil {
		roots = append(roots, c.AppleDeviceCA)
	}
	v := certs.NewAppleDeviceVerifier(c.Verify, roots, s.now)
	s.ade = enroll.NewADE(s.programs, c.Definer, s.issuer, v, s.publicURL.String(), enroll.WithADELogger(s.log))
}

// onPushChange follows every TokenUpdate and CheckOut: the push provider's
// registration, then the ADE profile's automatic DeviceConfigured.
func (s *Server) onPushChange(ctx context.Context, e *store.Enrollment) {
	s.push.registration(ctx, e)
	if s.ade == nil || !s.ade.AutoDeviceConfigured(ctx, e) {
		return
	}
	items, err := s.store.QueueItems(ctx, e.ID)
	if err == nil {
		for _, it := range items {
			if it.RequestType == "DeviceConfigured" {
				return // already on its way
			}
		}
	}
	raw := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceConfigured</string></dict></dict></plist>`)
	cmd, err := mdm.CommandFromPlist(raw, func() string { return strings.ToUpper(uuid.NewString()) })
	if err == nil {
		err = s.store.Enqueue(ctx, &store.Command{UUID: cmd.CommandUUID, RequestType: cmd.RequestType, Raw: cmd.Raw, CreatedAt: s.now().UTC()}, e.ID)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "automatic DeviceConfigured", "enrollment", e.ID, "err", err)
		return
	}
	s.log.InfoContext(ctx, "DeviceConfigured queued automatically (ADE profile)", "enrollment", e.ID, "profile", e.Management.TypeProfile)
}
