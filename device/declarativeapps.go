package device

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// Declarative apps: a com.apple.configuration.app.managed configuration
// (iOS 17.2 and later, on the device channel) names one app by AppStoreID,
// BundleID or ManifestURL — exactly one, as Apple's schema says, or the
// configuration fails with Error.ConfigurationIsInvalid ("not valid for
// applying to the device"), as it does for a ManifestURL that is not https.
// While the configuration is active:
//
//   - InstallBehavior.Install Required: the device installs the app as a
//     managed app, under the identifier InstallApplication would give it (the
//     BundleID; com.example.app<AppStoreID>; com.example.enterprise.<hash>
//     for a ManifestURL). It is then in InstalledApplicationList and
//     ManagedApplicationList, takes a managed app configuration, and is
//     reported in app.managed.list with state managed. RemoveApplication of
//     it is refused (ErrCodeAppOfDeclaration, 12035, mockmdm's): the configuration
//     owns it. A virtual device's user approves the install, as for
//     InstallApplication.
//   - Optional (Apple's default): the app is offered; app.managed.list
//     reports it optional (the user has to trigger the install), and a
//     virtual device's user never does.
//   - An App Store app (AppStoreID, BundleID) needs License.Assignment (or,
//     before iOS 18, the VPPType it replaced), as Apple's schema says:
//     without, the app is reported failed with Apple's Error.LicenseNotFound
//     and nothing is installed. An AppStoreID that is not a number is
//     Error.InvalidAppID.
//   - An app already managed — installed by InstallApplication, or named by
//     another active configuration (the one that installed it keeps it;
//     else the first by identifier) — makes the configuration fail with
//     Error.ConfigurationCannotBeApplied, its
//     error naming Apple's Error.DuplicateConfiguredApp ("the app is already
//     being managed"): mockmdm's reading, as the app's own entry belongs to
//     whoever manages it.
//
// When the configuration is no longer active (looked at every sync, as a
// predicate may have moved) the app it installed is removed; so it is
// when the enrollment ends. app.managed.list is worked out with the
// declarations' statuses, so predicates do not read it, and it carries no
// external-version-id: a virtual device knows no store version. mdm.app
// lists only the apps MDM commands installed, as Apple defines it.
//
// Sources: Apple's schemas declarations/configurations/app.managed.yaml
// and status/app.managed.list.yaml (the states and the reason codes).

const appManagedType = "com.apple.configuration.app.managed"

// maxBundleID bounds a BundleID a virtual device takes (Apple's run to
// about 155 characters).
const maxBundleID = 255

// vppTypeAvailable reports whether License.VPPType is still read at the
// device's OS version: Apple's schema gives the version it was removed in.
func (d *Device) vppTypeAvailable(version string) bool {
	s, ok := schema.Declaration(appManagedType)
	if !ok {
		return false
	}
	k := schema.FindKey(s.PayloadKeys, "InstallBehavior", "License", "VPPType")
	if k == nil {
		return false
	}
	return s.EffectivePath(d.model.schemaOS(), s.KeyPath(k)...).AvailableIn(version)
}

// declaredApp is what an active app.managed configuration asks for.
type declaredApp struct {
	decl       *heldDeclaration
	id         string // the app's identifier, "" when the configuration is invalid
	storeID    int64
	manifest   string
	required   bool
	invalid    string // why the configuration is invalid
	failCode   string // the app's reason code when it cannot be installed
	failReason string
}

// declaredApps lists what the active app.managed configurations among ds
// ask for, in ds's order (by identifier).
func (d *Device) declaredApps(ds []*heldDeclaration, statuses map[string]declStatus) []declaredApp {
	version, _ := d.OS()
	var out []declaredApp
	for _, h := range ds {
		if h.Type != appManagedType || !statuses[h.Identifier].active {
			continue
		}
		p := h.Payload
		a := declaredApp{decl: h}
		storeID, _ := p["AppStoreID"].(string)
		bundleID, _ := p["BundleID"].(string)
		a.manifest, _ = p["ManifestURL"].(string)
		behavior, _ := p["InstallBehavior"].(map[string]any)
		a.required = behavior["Install"] == "Required"
		license, _ := behavior["License"].(map[string]any)
		_, assigned := license["Assignment"].(string)
		if _, vpp := license["VPPType"].(string); vpp && d.vppTypeAvailable(version) {
			assigned = true
		}
		named := 0
		for _, s := range []string{storeID, bundleID, a.manifest} {
			if s != "" {
				named++
			}
		}
		switch {
		case named != 1:
			a.invalid = fmt.Sprintf("the configuration names %d of AppStoreID, BundleID and ManifestURL; Apple's schema asks for exactly one", named)
		case a.manifest != "":
			if !strings.HasPrefix(a.manifest, "https://") {
				a.invalid = fmt.Sprintf("ManifestURL %q is not an https URL", clipValue(a.manifest))
				break
			}
			a.id = appIdentifier("", 0, a.manifest)
		case bundleID != "":
			if len(bundleID) > maxBundleID {
				a.invalid = fmt.Sprintf("BundleID %q is longer than the %d bytes a virtual device takes for a bundle identifier", clipValue(bundleID), maxBundleID)
				break
			}
			a.id = bundleID
		default:
			n, err := strconv.ParseInt(storeID, 10, 64)
			if err != nil || n <= 0 || strings.TrimLeft(storeID, "0123456789") != "" {
				// No bundle ID to list it under: the ID as given stands in.
				a.id = clipValue(storeID)
				a.failCode, a.failReason = "Error.InvalidAppID", fmt.Sprintf("AppStoreID %q is not an App Store ID", clipValue(storeID))
				break
			}
			a.storeID = n
			a.id = appIdentifier("", n, "")
		}
		if a.invalid == "" && a.failCode == "" && a.manifest == "" && !assigned {
			a.failCode, a.failReason = "Error.LicenseNotFound", "an App Store app needs InstallBehavior.License.Assignment to say which license to use"
		}
		out = append(out, a)
	}
	return out
}

// appIdentifier is the identifier a virtual device gives an app it
// installs: the bundle ID when given, else one made from the store ID or
// the manifest's URL.
func appIdentifier(bundleID string, storeID int64, manifest string) string {
	switch {
	case bundleID != "":
		return bundleID
	case storeID != 0:
		return "com.example.app" + strconv.FormatInt(storeID, 10)
	}
	return "com.example.enterprise." + shortHash(manifest)
}

// applyDeclaredApps installs the apps the active app.managed configurations
// among ds require, removes those of configurations no longer active, and
// returns why each configuration it cannot act on failed, by identifier.
func (d *Device) applyDeclaredApps(ds []*heldDeclaration, statuses map[string]declStatus) map[string]applyFailure {
	apps := d.declaredApps(ds, statuses)
	failures := map[string]applyFailure{}
	d.mu.Lock()
	defer d.mu.Unlock()
	// owner maps an app to the configuration that manages it: the one
	// that installed it keeps it while it names it, else the first by
	// identifier. An app that cannot be installed is claimed too, so that
	// app.managed.list names each app once.
	owner := map[string]string{}
	for _, a := range apps {
		if m := d.st.apps[a.id]; a.invalid == "" && m != nil && m.declaration == a.decl.Identifier {
			owner[a.id] = a.decl.Identifier
		}
	}
	for _, a := range apps {
		if a.invalid != "" {
			failures[a.decl.Identifier] = applyFailure{Code: "Error.ConfigurationIsInvalid", Error: a.invalid}
			continue
		}
		if other, ok := owner[a.id]; ok && other != a.decl.Identifier {
			failures[a.decl.Identifier] = cannotApply("Error.DuplicateConfiguredApp: the app %s is already managed by the configuration %s", clipValue(a.id), other)
			continue
		}
		if m := d.st.apps[a.id]; m != nil && m.declaration == "" {
			failures[a.decl.Identifier] = cannotApply("Error.DuplicateConfiguredApp: the app %s is already managed (installed by InstallApplication)", clipValue(a.id))
			continue
		}
		owner[a.id] = a.decl.Identifier
		if !a.required || a.failCode != "" {
			continue
		}
		if m := d.st.apps[a.id]; m == nil || m.declaration != a.decl.Identifier {
			if d.st.apps == nil {
				d.st.apps = map[string]*managedApp{}
			}
			d.st.apps[a.id] = &managedApp{id: a.id, storeID: a.storeID, manifest: a.manifest, installed: d.now(), externalID: a.storeID, declaration: a.decl.Identifier}
		}
	}
	for id, m := range d.st.apps {
		if m.declaration != "" && owner[id] != m.declaration {
			delete(d.st.apps, id)
		}
	}
	return failures
}

// managedAppList is the app.managed.list status item: an entry for each
// app an active app.managed configuration among ds manages or offers.
func (d *Device) managedAppList(ds []*heldDeclaration, statuses map[string]declStatus) []any {
	apps := d.declaredApps(ds, statuses)
	d.mu.RLock()
	defer d.mu.RUnlock()
	list := []any{}
	listed := map[string]bool{} // Apple: the identifier is unique
	for _, a := range apps {
		if a.invalid != "" || listed[a.id] {
			continue
		}
		listed[a.id] = true
		e := map[string]any{"identifier": a.id, "declaration-identifier": a.decl.Identifier, "name": a.id}
		switch m := d.st.apps[a.id]; {
		case a.failCode != "":
			e["state"] = "failed"
			e["reasons"] = []any{map[string]any{"code": a.failCode, "description": a.failReason}}
		case m != nil && m.declaration == a.decl.Identifier:
			e["state"], e["version"], e["short-version"] = "managed", "1.0", "1.0"
		default:
			e["state"] = "optional"
		}
		list = append(list, e)
	}
	return list
}
