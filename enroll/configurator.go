package enroll

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

const kindConfigurator = "configurator-profile"

// ConfiguratorProfile is an Apple Configurator enrollment profile (seed
// 000): exported and installed over USB, with user affinity (the user
// authenticates in Setup Assistant or the Company Portal) or without
// (Direct enrollment). Serials, when given, are the imported device list:
// only those devices may use it.
type ConfiguratorProfile struct {
	Name         string `json:"name"`
	UserAffinity bool   `json:"user_affinity"`
	// AuthMethod is AuthSetupAssistant or AuthCompanyPortal with user
	// affinity, AuthNone (Direct enrollment) without.
	AuthMethod string    `json:"auth_method"`
	Supervised bool      `json:"supervised"`
	Serials    []string  `json:"serials"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ConfiguratorExport asks for the exported profile of one device.
type ConfiguratorExport struct {
	// Serial is the device's serial: required when the profile has an
	// imported device list, and then carried by the ticket.
	Serial string `json:"serial,omitempty"`
	// Credentials are the user's, for Setup Assistant authentication.
	Credentials
}

// PutConfiguratorProfile saves an Apple Configurator profile.
func (a *ADE) PutConfiguratorProfile(ctx context.Context, p ConfiguratorProfile) (*ConfiguratorProfile, error) {
	var err error
	if p.Name, err = profileName("Apple Configurator profile", p.Name); err != nil {
		return nil, err
	}
	if !p.UserAffinity {
		if p.AuthMethod != "" && p.AuthMethod != AuthNone {
			return nil, invalid("Apple Configurator profile %s: auth_method %q needs user_affinity (Direct enrollment has no user)", p.Name, p.AuthMethod)
		}
		p.AuthMethod = AuthNone
	} else if p.AuthMethod != AuthSetupAssistant && p.AuthMethod != AuthCompanyPortal {
		return nil, invalid("Apple Configurator profile %s: auth_method %q must be %q or %q with user affinity", p.Name, p.AuthMethod, AuthSetupAssistant, AuthCompanyPortal)
	}
	if p.Serials, err = profileSerials("Apple Configurator profile "+p.Name, p.Serials); err != nil {
		return nil, err
	}
	p.UpdatedAt = a.svc.now().UTC()
	if err := a.svc.put(ctx, kindConfigurator, p.Name, p); err != nil {
		return nil, err
	}
	return &p, nil
}

// profileName trims the name of an ADE or Apple Configurator profile
// (what says which) and refuses one that cannot stand as one segment of
// the URL paths it names.
func profileName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || strings.ContainsAny(name, "/?#% ") {
		return "", invalid("%s name %q: give a non-empty name without spaces, / ? # %%", what, name)
	}
	return name, nil
}

// profileSerials normalizes a profile's assigned (or imported) serial
// numbers as devices report them — trimmed, upper case, each once, in the
// order given — and refuses anything that is not a serial. It never
// returns nil, so the JSON lists [] rather than null. what names the
// profile in the error.
func profileSerials(what string, serials []string) ([]string, error) {
	out, seen := []string{}, map[string]bool{}
	for _, s := range serials {
		s = strings.ToUpper(strings.TrimSpace(s))
		if s == "" || len(s) > 64 || strings.ContainsAny(s, " /?#") {
			return nil, invalid("%s: serial %q is not a serial number", what, s)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// ConfiguratorProfile returns an Apple Configurator profile.
func (a *ADE) ConfiguratorProfile(ctx context.Context, name string) (*ConfiguratorProfile, error) {
	return getDoc[ConfiguratorProfile](ctx, a.svc, kindConfigurator, name,
		refuse(http.StatusNotFound, CodeNoConfigurator, "no Apple Configurator profile %q", name))
}

// ConfiguratorProfiles lists the Apple Configurator profiles.
func (a *ADE) ConfiguratorProfiles(ctx context.Context) ([]ConfiguratorProfile, error) {
	return list[ConfiguratorProfile](ctx, a.svc, kindConfigurator)
}

// ExportConfigurator builds the .mobileconfig to install over USB for one
// device: a ticket carries the decision (and the serial, when known) to
// the device's Authenticate.
func (a *ADE) ExportConfigurator(ctx context.Context, name string, x ConfiguratorExport) ([]byte, error) {
	p, err := a.ConfiguratorProfile(ctx, name)
	if err != nil {
		return nil, err
	}
	serial := strings.ToUpper(strings.TrimSpace(x.Serial))
	if len(p.Serials) > 0 && !slices.Contains(p.Serials, serial) {
		if serial == "" {
			return nil, refuse(http.StatusBadRequest, CodeUnknownSerial, "Apple Configurator profile %s has an imported device list: give the device's serial", p.Name)
		}
		return nil, refuse(http.StatusForbidden, CodeUnknownSerial, "serial %s is not in the imported device list of Apple Configurator profile %s", serial, p.Name)
	}
	m := store.Management{
		Program: store.ProgramConfigurator, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate,
		Supervised: p.Supervised, AuthMethod: p.AuthMethod, TypeProfile: p.Name,
	}
	switch p.AuthMethod {
	case AuthNone:
		m.CompliantInMDM = true
	case AuthCompanyPortal:
		m.Locked = true
	case AuthSetupAssistant:
		u, err := a.svc.SignIn(ctx, x.Credentials)
		if err != nil {
			return nil, err
		}
		if err := a.svc.Restrict(ctx, store.ProgramConfigurator, u, store.OwnershipCorporate); err != nil {
			return nil, err
		}
		m.User, m.CompliantInMDM = u.UPN, true
	}
	return a.issue(ctx, m, serial)
}
