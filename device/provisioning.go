package device

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mozilla.org/pkcs7"
)

// Provisioning profiles on iOS: InstallProvisioningProfile takes a
// .mobileprovision (a CMS SignedData whose content is a property list with
// Name, UUID and ExpirationDate), ProvisioningProfileList lists the
// installed ones (Name, UUID, ExpiryDate), RemoveProvisioningProfile
// removes one by UUID. The dispatcher already applies each command's schema
// rules (the access rights, macOS's device channel).
//
// Sources: the schemas mdm/commands/profile.provisioning.install.yaml
// (ProvisioningProfile, <data>), profile.provisioning.list.yaml
// (ManagedOnly from iOS 13; the response's Name, UUID and ExpiryDate) and
// profile.provisioning.remove.yaml (UUID). A real device also checks that
// Apple signed the profile; a virtual device cannot hold Apple's
// certificates, so it checks that the CMS signature matches its content
// and accepts any signer, which is mockmdm's simplification. The error
// codes a device sends for a profile it refuses or a UUID it does not have
// are not published; the codes below are mockmdm's own in Apple's domain.

// Error codes of the provisioning profile commands (mockmdm's own).
const (
	ErrCodeProvisioningInvalid  = 12081 // InstallProvisioningProfile: not a usable .mobileprovision, or expired
	ErrCodeProvisioningNotFound = 12082 // RemoveProvisioningProfile: no profile with that UUID
)

// maxProvisioningProfiles bounds how many a device keeps.
const maxProvisioningProfiles = 200

// provisioningProfile is an installed provisioning profile.
type provisioningProfile struct {
	Name    string    `json:"name"`
	UUID    string    `json:"uuid"`
	Expires time.Time `json:"expires"`
	// Managed: the MDM server installed it.
	Managed bool `json:"managed"`
}

func init() {
	moreHandlers["InstallProvisioningProfile"] = handleInstallProvisioningProfile
	moreHandlers["ProvisioningProfileList"] = handleProvisioningProfileList
	moreHandlers["RemoveProvisioningProfile"] = handleRemoveProvisioningProfile
}

// ProvisioningProfiles lists the installed provisioning profiles' UUIDs.
func (d *Device) ProvisioningProfiles() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(d.st.provisioning))
	for _, p := range d.st.provisioning {
		out = append(out, p.UUID)
	}
	return out
}

// parseProvisioningProfile reads a .mobileprovision: DER CMS SignedData
// whose signature matches its content, an XML property list with Name,
// UUID and ExpirationDate.
func parseProvisioningProfile(raw []byte, now time.Time) (*provisioningProfile, error) {
	p7, err := pkcs7.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a CMS SignedData: %v", err)
	}
	if len(p7.Signers) == 0 {
		return nil, fmt.Errorf("the CMS has no signer")
	}
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("the CMS signature does not match its content: %v", err)
	}
	var content struct {
		Name           string
		UUID           string
		ExpirationDate time.Time
	}
	if !decodeXMLPlist(p7.Content, &content) {
		return nil, fmt.Errorf("the content is not a provisioning profile's XML property list")
	}
	switch {
	case strings.TrimSpace(content.UUID) == "":
		return nil, fmt.Errorf("the profile has no UUID")
	case content.ExpirationDate.IsZero():
		return nil, fmt.Errorf("the profile has no ExpirationDate")
	case !content.ExpirationDate.After(now):
		return nil, fmt.Errorf("the profile expired on %s", content.ExpirationDate.UTC().Format(time.RFC3339))
	}
	return &provisioningProfile{Name: content.Name, UUID: content.UUID, Expires: content.ExpirationDate.UTC()}, nil
}

func handleInstallProvisioningProfile(_ context.Context, d *Device, cmd *Command) Response {
	raw, ok := cmd.Params["ProvisioningProfile"].([]byte)
	if !ok || len(raw) == 0 {
		return formatError("ProvisioningProfile must be <data> holding the .mobileprovision")
	}
	p, err := parseProvisioningProfile(raw, d.now())
	if err != nil {
		return Failed(ChainItem(DomainMDM, ErrCodeProvisioningInvalid, "The provisioning profile is invalid."), detail("%v", err))
	}
	p.Managed = true
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.provisioning = slices.DeleteFunc(d.st.provisioning, func(q *provisioningProfile) bool { return q.UUID == p.UUID })
	if len(d.st.provisioning) >= maxProvisioningProfiles {
		return Failed(ChainItem(DomainMDM, ErrCodeProvisioningInvalid, "The provisioning profile could not be installed."),
			detail("the device already holds %d provisioning profiles", maxProvisioningProfiles))
	}
	d.st.provisioning = append(d.st.provisioning, p)
	return Acknowledged(nil)
}

func handleProvisioningProfileList(_ context.Context, d *Device, cmd *Command) Response {
	if _, err := optBool(cmd.Params, "ManagedOnly"); err != nil {
		return formatError("%v", err)
	}
	// Every profile a virtual device holds came from the server, so
	// ManagedOnly changes nothing.
	d.mu.RLock()
	defer d.mu.RUnlock()
	list := []any{}
	for _, p := range d.st.provisioning {
		list = append(list, map[string]any{"Name": p.Name, "UUID": p.UUID, "ExpiryDate": p.Expires})
	}
	return Acknowledged(map[string]any{"ProvisioningProfileList": list})
}

func handleRemoveProvisioningProfile(_ context.Context, d *Device, cmd *Command) Response {
	uuid, ok := cmd.Params["UUID"].(string)
	if !ok || uuid == "" {
		return formatError("UUID must name the provisioning profile to remove")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.st.provisioning)
	d.st.provisioning = slices.DeleteFunc(d.st.provisioning, func(p *provisioningProfile) bool { return p.UUID == uuid })
	if len(d.st.provisioning) == n {
		return Failed(ChainItem(DomainMDM, ErrCodeProvisioningNotFound, "The provisioning profile is not installed."),
			detail("no provisioning profile has UUID %q", uuid))
	}
	return Acknowledged(nil)
}
