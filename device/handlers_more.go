package device

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error codes of the app and passcode commands: mockmdm's own picks in
// Apple's domains (see the note on the other codes in commands.go).
const (
	ErrCodeAppNotManaged     = 12031 // RemoveApplication: the app is not managed by this server
	ErrCodeAppOfDeclaration  = 12035 // RemoveApplication: an app an app.managed configuration installed
	ErrCodeBadUnlockToken    = 12080 // ClearPasscode: the UnlockToken is not the device's
	ErrCodeNoAppToInstall    = 12032 // InstallApplication: neither iTunesStoreID, Identifier nor ManifestURL
	ErrCodeSettingNotAllowed = 12090 // Settings: an item the device refuses (e.g. DeviceName unsupervised)
)

func init() {
	for rt, h := range map[string]CommandHandler{
		"CertificateList":        handleCertificateList,
		"ManagedApplicationList": handleManagedApplicationList,
		"InstallApplication":     handleInstallApplication,
		"RemoveApplication":      handleRemoveApplication,
		"ShutDownDevice":         handleShutDownDevice,
		"ClearPasscode":          handleClearPasscode,
		"Settings":               handleSettings,
		"AvailableOSUpdates":     handleAvailableOSUpdates,
		"DeviceConfigured":       handleAcknowledge,
		"ValidateApplications":   handleValidateApplications,
		"RefreshCellularPlans":   handleRefreshCellularPlans,
	} {
		moreHandlers[rt] = h
	}
}

// moreHandlers joins builtinHandlers' registry (see builtinHandlers).
var moreHandlers = map[string]CommandHandler{}

// managedApp is an app the server installed.
type managedApp struct {
	id         string
	storeID    int64
	manifest   string
	flags      int64
	installed  time.Time
	externalID int64
	// config, attrs and feedback are the app's managed configuration,
	// its attributes and the feedback it wrote (appconfig.go); nil when none.
	config, attrs, feedback map[string]any
	// declaration is the app.managed configuration that installed the
	// app (declarativeapps.go); "" for one InstallApplication installed.
	declaration string
}

// unlockToken is the device's UnlockToken (sent in TokenUpdate on iOS
// device enrollments; ClearPasscode must bring it back).
func (d *Device) unlockToken() []byte {
	sum := sha256.Sum256([]byte("mockmdm unlock token " + d.hw.UDID))
	return sum[:]
}

func handleAcknowledge(context.Context, *Device, *Command) Response { return Acknowledged(nil) }

// handleCertificateList lists the keychain: identities (with their keys)
// and trusted roots.
func handleCertificateList(_ context.Context, d *Device, _ *Command) Response {
	d.mu.RLock()
	defer d.mu.RUnlock()
	list := []any{}
	for _, id := range d.st.identities {
		list = append(list, map[string]any{"CommonName": id.cert.Subject.CommonName, "IsIdentity": true, "Data": slices.Clone(id.cert.Raw)})
	}
	for _, r := range d.st.roots {
		list = append(list, map[string]any{"CommonName": r.cert.Subject.CommonName, "IsIdentity": false, "Data": slices.Clone(r.cert.Raw)})
	}
	return Acknowledged(map[string]any{"CertificateList": list})
}

func (d *Device) appEntry(a *managedApp) map[string]any {
	return map[string]any{
		"Status":                    "Managed",
		"ManagementFlags":           a.flags,
		"UnusedRedemptionCode":      "",
		"HasConfiguration":          a.config != nil,
		"HasFeedback":               a.feedback != nil,
		"IsValidated":               true,
		"ExternalVersionIdentifier": a.externalID,
	}
}

// handleManagedApplicationList reports the apps the server installed.
func handleManagedApplicationList(_ context.Context, d *Device, cmd *Command) Response {
	want, ok := identifiersParam(cmd)
	if !ok {
		return formatError("Identifiers must be an array of strings")
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string]any{}
	for id, a := range d.st.apps {
		if want == nil || slices.Contains(want, id) {
			out[id] = d.appEntry(a)
		}
	}
	return Acknowledged(map[string]any{"ManagedApplicationList": out})
}

// handleInstallApplication installs an app by store ID, bundle identifier
// or manifest URL and reports it Managed; installing one already managed
// is refused as Apple's RejectionReason says.
func handleInstallApplication(_ context.Context, d *Device, cmd *Command) Response {
	id, err := optString(cmd.Params, "Identifier")
	if err != nil {
		return formatError("%v", err)
	}
	manifest, err := optString(cmd.Params, "ManifestURL")
	if err != nil {
		return formatError("%v", err)
	}
	var storeID int64
	if v, ok := cmd.Params["iTunesStoreID"]; ok {
		n, ok := toInt64(v)
		if !ok {
			return formatError("iTunesStoreID must be an integer")
		}
		storeID = n
	}
	var flags int64
	if v, ok := cmd.Params["ManagementFlags"]; ok {
		if flags, ok = toInt64(v); !ok {
			return formatError("ManagementFlags must be an integer")
		}
	}
	config, _, err := dictParam(cmd.Params, "Configuration")
	if err != nil {
		return formatError("%v", err)
	}
	attrs, err := d.attributesParam(cmd.Params)
	if err != nil {
		return formatError("%v", err)
	}
	switch {
	case id != "", storeID != 0:
		id = appIdentifier(id, storeID, "")
	case manifest != "":
		if !strings.HasPrefix(manifest, "https://") {
			return formatError("ManifestURL must be an https URL")
		}
		id = appIdentifier("", 0, manifest)
	default:
		return Failed(ChainItem(DomainMDM, ErrCodeNoAppToInstall, "No app to install."),
			detail("InstallApplication needs iTunesStoreID, Identifier or ManifestURL"))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.apps == nil {
		d.st.apps = map[string]*managedApp{}
	}
	if _, ok := d.st.apps[id]; ok {
		return Acknowledged(map[string]any{"Identifier": id, "State": "Managed", "RejectionReason": "AppAlreadyInstalled"})
	}
	d.st.apps[id] = &managedApp{id: id, storeID: storeID, manifest: manifest, flags: flags, installed: d.now(), externalID: storeID, config: config, attrs: attrs}
	return Acknowledged(map[string]any{"Identifier": id, "State": "Managed"})
}

// handleRemoveApplication removes an app the server installed.
func handleRemoveApplication(_ context.Context, d *Device, cmd *Command) Response {
	id, err := optString(cmd.Params, "Identifier")
	if err != nil || id == "" {
		return formatError("Identifier must name the app to remove")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.st.apps[id]
	if !ok {
		return appNotManaged(id)
	}
	if a.declaration != "" {
		return Failed(ChainItem(DomainMDM, ErrCodeAppOfDeclaration, "The app is managed by a declaration."),
			detail("the configuration %s installed %s; remove the configuration to remove the app", a.declaration, id))
	}
	delete(d.st.apps, id)
	return Acknowledged(nil)
}

// handleShutDownDevice acknowledges and ends the session: the device is off
// until the test connects it again.
func handleShutDownDevice(_ context.Context, d *Device, _ *Command) Response {
	r := Acknowledged(nil)
	r.EndSession = true
	return r
}

// handleClearPasscode clears the passcode when the command carries the
// UnlockToken the device sent in TokenUpdate.
func handleClearPasscode(_ context.Context, d *Device, cmd *Command) Response {
	tok, ok := cmd.Params["UnlockToken"].([]byte)
	if !ok || len(tok) == 0 {
		return formatError("UnlockToken must be <data>: the token from the device's TokenUpdate")
	}
	if !bytes.Equal(tok, d.unlockToken()) {
		return Failed(ChainItem(DomainMDM, ErrCodeBadUnlockToken, "The unlock token is not valid."),
			detail("the UnlockToken does not match the one this device sent in TokenUpdate"))
	}
	d.mu.Lock()
	d.st.locked = false
	d.mu.Unlock()
	return Acknowledged(nil)
}

// handleSettings applies the items it models: DeviceName (supervised only
// on iOS, as the schema says) renames the device; the others are accepted
// and kept as inert. Its response keys are left out: Apple's schema
// describes Settings' response as a dictionary while devices are reported
// to send an array, so the virtual device sends neither rather than guess.
func handleSettings(_ context.Context, d *Device, cmd *Command) Response {
	items, ok := cmd.Params["Settings"].([]any)
	if !ok {
		return formatError("Settings must be an array of dictionaries, each with an Item")
	}
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return formatError("Settings[%d] must be a dictionary", i)
		}
		item, _ := m["Item"].(string)
		if item == "" {
			return formatError("Settings[%d] has no Item", i)
		}
		if set, ok := map[string]func(map[string]any) Response{
			"ApplicationConfiguration": d.setAppConfiguration,
			"ApplicationAttributes":    d.setAppAttributes,
		}[item]; ok {
			if r := set(m); r.Status != "" {
				return r
			}
			continue
		}
		if item == "DeviceName" {
			name, _ := m["DeviceName"].(string)
			if name == "" {
				return formatError("Settings[%d]: DeviceName needs a DeviceName string", i)
			}
			if !d.supervised && !d.model.IsMac() {
				return Failed(ChainItem(DomainMDM, ErrCodeSettingNotAllowed, "The setting cannot be changed on this device."),
					detail("DeviceName can only be set on a supervised iOS device"))
			}
			d.mu.Lock()
			d.name = name
			d.mu.Unlock()
		}
	}
	return Acknowledged(nil)
}

// handleAvailableOSUpdates offers one update: the next minor version.
func handleAvailableOSUpdates(_ context.Context, d *Device, _ *Command) Response {
	u := d.availableUpdate()
	return Acknowledged(map[string]any{"AvailableOSUpdates": []any{map[string]any{
		"ProductKey":              u.productKey,
		"HumanReadableName":       d.model.OSName + " " + u.version,
		"HumanReadableNameLocale": "en",
		"MetadataURL":             "",
		"ProductName":             d.model.OSName,
		"Version":                 u.version,
		"Build":                   u.build,
		"DownloadSize":            int64(6_400_000_000),
		"InstallSize":             int64(13_000_000_000),
		"AppIdentifiersToClose":   []any{},
		"IsCritical":              false,
		"RestartRequired":         true,
		"IsSecurityResponse":      false,
	}}})
}

func nextMinor(v string) string {
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	n, _ := strconv.Atoi(minor)
	return major + "." + strconv.Itoa(n+1)
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return int64(n), n <= 1<<62
	case int:
		return int64(n), true
	}
	return 0, false
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// handleValidateApplications validates the enterprise apps named (all when
// Identifiers is absent): the virtual device's apps are always valid, so it
// only checks the request.
func handleValidateApplications(_ context.Context, _ *Device, cmd *Command) Response {
	if _, ok := identifiersParam(cmd); !ok {
		return formatError("Identifiers must be an array of strings")
	}
	return Acknowledged(nil)
}

// handleRefreshCellularPlans asks the carrier's eSIM server for plans; the
// virtual device has no eSIM to refresh, so it checks that eSIMServerURL
// is an https URL, keeps it (LastESIMServerURL) and acknowledges.
func handleRefreshCellularPlans(_ context.Context, d *Device, cmd *Command) Response {
	u, ok := cmd.Params["eSIMServerURL"].(string)
	if !ok || !strings.HasPrefix(u, "https://") || len(u) <= len("https://") {
		return formatError("eSIMServerURL must be the carrier's https URL")
	}
	d.mu.Lock()
	d.st.lastESIMServerURL = u
	d.mu.Unlock()
	return Acknowledged(nil)
}

// LastESIMServerURL is the eSIM server URL of the last RefreshCellularPlans.
func (d *Device) LastESIMServerURL() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.lastESIMServerURL
}
