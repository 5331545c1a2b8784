package device

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// builtinHandlers is the registry a new device starts with.
func builtinHandlers() map[string]CommandHandler {
	h := map[string]CommandHandler{
		"DeviceInformation":        handleDeviceInformation,
		"SecurityInfo":             handleSecurityInfo,
		"ProfileList":              handleProfileList,
		"InstallProfile":           handleInstallProfile,
		"RemoveProfile":            handleRemoveProfile,
		"InstalledApplicationList": handleInstalledApplicationList,
		"DeviceLock":               handleDeviceLock,
		"EraseDevice":              handleEraseDevice,
		"RestartDevice":            handleRestartDevice,
	}
	for rt, f := range moreHandlers {
		h[rt] = f
	}
	return h
}

// handleDeviceInformation answers every requested query the device knows,
// as a real device does, leaving out the ones Apple's schema says its OS
// does not have, User Enrollment forbids (UDID, serial number, IMEI, MAC
// addresses…) or the profile's AccessRights do not cover (network queries
// need AllowQueryNetworkInformation).
func handleDeviceInformation(_ context.Context, d *Device, cmd *Command) Response {
	queries, ok := stringList(cmd.Params["Queries"])
	if !ok {
		return formatError("Queries must be an array of strings")
	}
	values := d.deviceInformation()
	s, _ := schema.Command("DeviceInformation")
	var names *schema.Key
	if s != nil {
		names = schema.FindKey(s.PayloadKeys, "Queries", "QueriesItem")
	}
	os := d.model.schemaOS()
	version, _ := d.OS()
	out := map[string]any{}
	for _, q := range queries {
		v, known := values[q]
		if !known {
			continue
		}
		if names != nil {
			if k := schema.FindKey(names.Subkeys, q); k != nil {
				eff := s.Effective(os, k)
				if !eff.AvailableIn(version) {
					continue
				}
				if cmd.UserEnrollment && eff.UserEnrollment != nil && eff.UserEnrollment.Mode == "forbidden" {
					continue
				}
				if !cmd.UserEnrollment && !hasRight(cmd.AccessRights, eff.AccessRights) {
					continue
				}
			}
		}
		out[q] = v
	}
	return Acknowledged(map[string]any{"QueryResponses": out})
}

// deviceInformation is every DeviceInformation value the device knows,
// consistent with its model; handleDeviceInformation and the schema pick
// what a query gets.
func (d *Device) deviceInformation() map[string]any {
	m, hw := d.model, d.hw
	d.mu.RLock()
	lost := d.st.lostMode != nil
	osVersion, build := d.osVersion, d.build
	d.mu.RUnlock()
	capacity := round2(m.CapacityGB * 0.9305) // what the OS reports of the sold size
	info := map[string]any{
		"UDID":                          hw.UDID,
		"DeviceName":                    d.name,
		"OSVersion":                     osVersion,
		"BuildVersion":                  build,
		"SupplementalBuildVersion":      build,
		"ModelName":                     m.ModelName,
		"Model":                         m.Model,
		"ModelNumber":                   m.ModelNumber,
		"ProductName":                   m.ProductName,
		"SerialNumber":                  hw.SerialNumber,
		"DeviceCapacity":                capacity,
		"AvailableDeviceCapacity":       round2(capacity * hw.AvailableFraction),
		"BatteryLevel":                  hw.BatteryLevel,
		"IsSupervised":                  d.supervised,
		"IsMultiUser":                   d.SharedIPad(),
		"IsDeviceLocatorServiceEnabled": false,
		"IsActivationLockEnabled":       false,
		"IsDoNotDisturbInEffect":        false,
		"IsCloudBackupEnabled":          false,
		"IsMDMLostModeEnabled":          lost,
		"AwaitingConfiguration":         false,
		"iTunesStoreAccountIsActive":    false,
		"DiagnosticSubmissionEnabled":   false,
		"AppAnalyticsEnabled":           false,
		"IsNetworkTethered":             false,
		"TimeZone":                      "America/Los_Angeles",
		"WiFiMAC":                       hw.WiFiMAC,
		"BluetoothMAC":                  hw.BluetoothMAC,
		"PushToken":                     slices.Clone(hw.PushToken),
		"CellularTechnology":            0,
	}
	if m.Cellular {
		info["IMEI"] = hw.IMEI
		info["ModemFirmwareVersion"] = "2.10.02"
		info["CellularTechnology"] = 3 // GSM and CDMA
		info["IsRoaming"] = false
		info["DataRoamingEnabled"] = false
		info["VoiceRoamingEnabled"] = false
		info["PersonalHotspotEnabled"] = false
	}
	for k, v := range d.residentUserFigures(capacity) {
		info[k] = v
	}
	if m.IsMac() {
		host := hostName(d.name)
		info["EthernetMAC"] = hw.EthernetMAC
		info["IsAppleSilicon"] = true
		info["HasBattery"] = true
		info["SystemIntegrityProtectionEnabled"] = true
		info["LocalHostName"] = host
		info["HostName"] = host + ".local"
		info["ProvisioningUDID"] = hw.UDID
		info["IsActivationLockSupported"] = true
		info["SupportsLOMDevice"] = false
		info["SupportsiOSAppInstalls"] = true
		info["PINRequiredForDeviceLock"] = false
		info["PINRequiredForEraseDevice"] = false
		delete(info, "CellularTechnology")
	}
	return info
}

// hostName makes a Bonjour host name from a device name, as macOS does.
func hostName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// handleSecurityInfo reports a device with hardware encryption and no
// passcode — so out of compliance while a passcode policy asks for one: a
// profile's (PasscodeCompliantWithProfiles) or a declaration's too
// (PasscodeCompliant, passcodesettings.go); the schema prunes what the OS
// does not report.
func handleSecurityInfo(_ context.Context, d *Device, cmd *Command) Response {
	withProfiles := !d.passcodeRequired(cmd.User)
	info := map[string]any{
		"HardwareEncryptionCaps":        3,
		"PasscodePresent":               false,
		"PasscodeCompliant":             withProfiles && !d.declaredPasscodeRequired(cmd.User),
		"PasscodeCompliantWithProfiles": withProfiles,
		"ManagementStatus": map[string]any{
			"EnrolledViaDEP":             d.enrolledViaADE(),
			"UserApprovedEnrollment":     true,
			"IsUserEnrollment":           cmd.UserEnrollment,
			"IsActivationLockManageable": d.supervised,
		},
	}
	if d.model.IsMac() {
		info["FDE_Enabled"] = false
		info["FDE_HasPersonalRecoveryKey"] = false
		info["FDE_HasInstitutionalRecoveryKey"] = false
		info["SystemIntegrityProtectionEnabled"] = true
		info["FirewallSettings"] = map[string]any{"FirewallEnabled": false, "BlockAllIncoming": false, "StealthMode": false}
		info["RemoteDesktopEnabled"] = d.RemoteDesktop()
		info["AuthenticatedRootVolumeEnabled"] = true
		info["IsRecoveryLockEnabled"] = d.RecoveryLock()
	}
	return Acknowledged(map[string]any{"SecurityInfo": info})
}

// handleProfileList lists the installed profiles with their payloads'
// common keys.
func handleProfileList(_ context.Context, d *Device, cmd *Command) Response {
	managedOnly, err := optBool(cmd.Params, "ManagedOnly")
	if err != nil {
		return formatError("%v", err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	list := []any{}
	for _, p := range d.st.profiles {
		if (managedOnly && !p.Managed) || p.User != cmd.User {
			continue
		}
		item := map[string]any{
			"PayloadIdentifier":        p.Identifier,
			"PayloadUUID":              p.UUID,
			"PayloadVersion":           p.Version,
			"PayloadRemovalDisallowed": p.RemovalDisallowed,
			"HasRemovalPasscode":       false,
			"IsEncrypted":              p.Encrypted,
			"IsManaged":                p.Managed,
		}
		putNonEmpty(item, "PayloadDisplayName", p.DisplayName)
		putNonEmpty(item, "PayloadOrganization", p.Organization)
		putNonEmpty(item, "PayloadDescription", p.Description)
		if p.Signer != nil {
			item["SignerCertificates"] = []any{slices.Clone(p.Signer.Raw)}
		}
		content := make([]any, 0, len(p.Payloads))
		for _, pl := range p.Payloads {
			c := map[string]any{
				"PayloadType":       pl.Type,
				"PayloadIdentifier": pl.Identifier,
				"PayloadUUID":       pl.UUID,
				"PayloadVersion":    pl.Version,
			}
			putNonEmpty(c, "PayloadDisplayName", pl.DisplayName)
			putNonEmpty(c, "PayloadDescription", pl.Description)
			putNonEmpty(c, "PayloadOrganization", pl.Organization)
			content = append(content, c)
		}
		item["PayloadContent"] = content
		list = append(list, item)
	}
	return Acknowledged(map[string]any{"ProfileList": list})
}

func putNonEmpty(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// handleInstallProfile really installs the profile: the same checks and
// payload handling as Install, marked as installed by the server.
func handleInstallProfile(ctx context.Context, d *Device, cmd *Command) Response {
	payload, ok := cmd.Params["Payload"].([]byte)
	if !ok || len(payload) == 0 {
		return formatError("Payload must be <data> holding the profile")
	}
	_, err := d.installFor(ctx, payload, true, cmd.User, nil)
	if err == nil {
		return Acknowledged(nil)
	}
	var pe *ProfileError
	switch {
	case errors.As(err, &pe) && pe.Reason == "it cannot be decoded":
		return Failed(ChainItem(DomainProfile, ErrCodeProfileMalformed, "The profile is not properly formatted."), detail("%v", err))
	case pe != nil && pe.owner == ownerUser && d.model.IsMac():
		return Failed(ChainItem(DomainMDMClient, ErrCodeNotInstalledByMDM,
			fmt.Sprintf("Cannot replace profile '%s' because it was not installed by the MDM server.", pe.Identifier)), detail("%v", err))
	case pe != nil && pe.owner == ownerDeclaration:
		return Failed(ChainItem(DomainProfile, ErrCodeProfileOfDeclaration, "The profile is managed by a declaration."), detail("%v", err))
	}
	return Failed(ChainItem(DomainInstallation, ErrCodeInstallFailed, "The profile could not be installed."), detail("%v", err))
}

// handleRemoveProfile removes a profile the server installed. Removing the
// enrollment profile itself unenrolls the device — the way an MDM server
// retires a device (MicroMDM documents it as its unenroll): the device
// acknowledges, ends the session, removes every profile the server
// installed and, when the profile says CheckOutWhenRemoved, sends CheckOut.
// Profiles the user installed are not the server's to remove.
func handleRemoveProfile(ctx context.Context, d *Device, cmd *Command) Response {
	id, err := optString(cmd.Params, "Identifier")
	if err != nil || id == "" {
		return formatError("Identifier must be the PayloadIdentifier of the profile to remove")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.st.findProfile(id, cmd.User)
	switch {
	case p == nil && d.model.IsMac():
		return Failed(ChainItem(DomainMDMClient, ErrCodeMacProfileNotFound, fmt.Sprintf("Profile with identifier '%s' not found.", id)),
			detail("no installed profile has PayloadIdentifier %q", id))
	case p == nil:
		return Failed(ChainItem(DomainMDMErrors, ErrCodeProfileNotInstalled, fmt.Sprintf("The profile \u201c%s\u201d is not installed.", id)),
			detail("no installed profile has PayloadIdentifier %q", id))
	case p.Enrollment:
		r := Acknowledged(nil)
		r.EndSession = true
		// After the acknowledgement is sent; Connect holds the operation
		// lock, so this is the lock-free half of Unenroll.
		r.AfterSend = func() { d.unenroll(context.WithoutCancel(ctx), "the server removed the enrollment profile") }
		return r
	case !p.Managed:
		return Failed(ChainItem(DomainProfile, ErrCodeProfileNotRemovable, "The profile cannot be removed by the MDM server."),
			detail("%q was installed by the user, not by this MDM server", id))
	case p.Declaration != "":
		// The configuration owns it: removing it here would leave the
		// configuration reported active with its profile gone.
		return Failed(ChainItem(DomainProfile, ErrCodeProfileOfDeclaration, "The profile is managed by a declaration."),
			detail("%q was installed by the legacy configuration %q; it is removed when that configuration is removed or no longer active", id, p.Declaration))
	}
	d.st.removeProfile(p)
	d.log.Info("profile removed by the server", "profile", id)
	return Acknowledged(nil)
}

// builtinApp is an app preinstalled on the virtual device.
type builtinApp struct {
	id, name, version, shortVersion string
	externalID                      int64
	bundleSize, dynamicSize         int64
}

var (
	iosApps = []builtinApp{
		{"com.apple.Keynote", "Keynote", "7050.0.110", "14.2", 868421505, 602_349_568, 12_582_912},
		{"com.apple.Numbers", "Numbers", "7050.0.110", "14.2", 868426103, 560_177_152, 9_437_184},
		{"com.apple.Pages", "Pages", "7050.0.110", "14.2", 868421567, 571_473_920, 10_485_760},
	}
	macApps = []builtinApp{
		{"com.apple.iWork.Keynote", "Keynote", "7050.0.110", "14.2", 868421602, 742_391_808, 0},
		{"com.apple.iWork.Numbers", "Numbers", "7050.0.110", "14.2", 868426121, 640_090_112, 0},
		{"com.apple.iWork.Pages", "Pages", "7050.0.110", "14.2", 868421574, 655_360_000, 0},
	}
)

// handleInstalledApplicationList lists the built-in apps and the apps the
// server installed, filtered by Identifiers; ManagedAppsOnly lists only the
// server's. A virtual device does not download an app, so a managed app is
// listed under its identifier as its name, at version 1.0.
func handleInstalledApplicationList(_ context.Context, d *Device, cmd *Command) Response {
	want, ok := identifiersParam(cmd)
	if !ok {
		return formatError("Identifiers must be an array of strings")
	}
	managedOnly, err := optBool(cmd.Params, "ManagedAppsOnly")
	if err != nil {
		return formatError("%v", err)
	}
	apps := iosApps
	if d.model.IsMac() {
		apps = macApps
	}
	list := []any{}
	for _, a := range apps {
		if managedOnly || (want != nil && !slices.Contains(want, a.id)) {
			continue
		}
		e := installedAppEntry(a.id, a.name, a.version, a.shortVersion, a.externalID)
		e["BundleSize"], e["DynamicSize"] = a.bundleSize, a.dynamicSize
		list = append(list, e)
	}
	d.mu.RLock()
	managed := make([]map[string]any, 0, len(d.st.apps))
	for id, a := range d.st.apps {
		if want == nil || slices.Contains(want, id) {
			managed = append(managed, installedAppEntry(id, id, "1.0", "1.0", a.externalID))
		}
	}
	d.mu.RUnlock()
	slices.SortFunc(managed, func(a, b map[string]any) int {
		return strings.Compare(a["Identifier"].(string), b["Identifier"].(string))
	})
	for _, e := range managed {
		list = append(list, e)
	}
	return Acknowledged(map[string]any{"InstalledApplicationList": list})
}

// identifiersParam reads the optional Identifiers filter of the app list
// commands: nil when absent (list all), false when it is not an array of
// strings.
func identifiersParam(cmd *Command) (want []string, ok bool) {
	v, present := cmd.Params["Identifiers"]
	if !present {
		return nil, true
	}
	return stringList(v)
}

// installedAppEntry is one InstalledApplicationList entry of an App Store
// app that is installed, validated and up to date: the keys every app the
// virtual device lists shares, whether built in or the user's own.
func installedAppEntry(id, name, version, shortVersion string, externalID int64) map[string]any {
	return map[string]any{
		"Identifier":                id,
		"Name":                      name,
		"Version":                   version,
		"ShortVersion":              shortVersion,
		"ExternalVersionIdentifier": externalID,
		"IsValidated":               true,
		"Installing":                false,
		"AppStoreVendable":          true,
		"DeviceBasedVPP":            false,
		"BetaApp":                   false,
		"AdHocCodeSigned":           false,
		"HasUpdateAvailable":        false,
		"IsAppClip":                 false,
	}
}

// handleDeviceLock locks the device; with a message or phone number to
// show, it reports MessageResult as the schema defines.
func handleDeviceLock(_ context.Context, d *Device, cmd *Command) Response {
	msg, err1 := optString(cmd.Params, "Message")
	phone, err2 := optString(cmd.Params, "PhoneNumber")
	if err := errors.Join(err1, err2); err != nil {
		return formatError("%v", err)
	}
	d.mu.Lock()
	d.st.locked = true
	d.mu.Unlock()
	if msg != "" || phone != "" {
		return Acknowledged(map[string]any{"MessageResult": "Success"})
	}
	return Acknowledged(nil)
}

// handleEraseDevice acknowledges, then wipes the device once the
// acknowledgement is sent: keychain, profiles and enrollment are gone; the
// hardware (UDID, serial number) stays.
func handleEraseDevice(_ context.Context, d *Device, _ *Command) Response {
	r := Acknowledged(nil)
	r.AfterSend = d.erase
	r.EndSession = true
	return r
}

func (d *Device) erase() {
	d.mu.Lock()
	defer d.mu.Unlock()
	notNow := d.st.notNow
	d.st = state{notNow: notNow, erasures: d.st.erasures + 1, restarts: d.st.restarts}
	d.dropPushStreamLocked()
	d.log.Info("device erased")
}

// handleRestartDevice restarts (the gate has already refused it on an
// unsupervised iOS device): the session ends with the acknowledgement.
func handleRestartDevice(_ context.Context, d *Device, _ *Command) Response {
	r := Acknowledged(nil)
	r.AfterSend = func() {
		d.mu.Lock()
		d.st.restarts++
		d.mu.Unlock()
	}
	r.EndSession = true
	return r
}
