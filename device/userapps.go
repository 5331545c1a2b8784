package device

import (
	"context"
	"slices"
)

// ErrCodeAppNotTakenOver is the error an InstallApplication gets on a User
// Enrollment for an app the user installed before enrolling. The code is
// mockmdm's pick in Apple's MDM domain (no public source lists the code a
// device sends); the response keys beside it are Apple's own words from
// the InstallApplication schema (mdm/commands/application.install.yaml):
// State "UserInstalledApp" and RejectionReason
// "ManagementChangeNotSupported", because ChangeManagementState — taking
// over a user-installed app — is userenrollment.mode forbidden there.
const ErrCodeAppNotTakenOver = 12033

// UserApp is an app the user installed from the App Store before enrolling.
type UserApp struct {
	// Identifier is the bundle identifier, e.g. com.microsoft.Office.Outlook.
	Identifier string
	Name       string
	Version    string
	// ITunesStoreID is the app's App Store ID; an InstallApplication that
	// names it by iTunesStoreID finds it too.
	ITunesStoreID int64
}

// AddUserInstalledApps gives the device apps its user installed before it
// enrolled (seed 000: "If you install apps before the user enrollment
// profile is applied, then these apps aren't protected or managed"; seed
// 002's comments: "if the user has the app already installed via Apple
// Appstore these app believe unmanaged — there is no converting to
// managed"). InstalledApplicationList lists them as not managed
// (ManagementFlags absent, not in ManagedApplicationList), and an
// InstallApplication for one of them:
//   - on a User Enrollment fails: Status Error, State UserInstalledApp,
//     RejectionReason ManagementChangeNotSupported (ErrCodeAppNotTakenOver);
//     the app stays unmanaged;
//   - on a device enrollment is answered as Apple's schema allows: without
//     ChangeManagementState "Managed" it is refused with RejectionReason
//     AppAlreadyInstalled; with it, the device takes the app over (the
//     prompt the user would see is taken as accepted).
//
// It wraps the device's current handlers for both commands, so it
// composes with Handle; an erase keeps it, like the other behaviours.
func (d *Device) AddUserInstalledApps(apps ...UserApp) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list, install := d.handlers["InstalledApplicationList"], d.handlers["InstallApplication"]
	own := slices.Clone(apps)
	find := func(cmd *Command) (UserApp, bool) {
		id, _ := cmd.Params["Identifier"].(string)
		sid, _ := toInt64(cmd.Params["iTunesStoreID"])
		for _, a := range own {
			if (id != "" && a.Identifier == id) || (sid != 0 && a.ITunesStoreID == sid) {
				return a, true
			}
		}
		return UserApp{}, false
	}
	if list != nil {
		d.handlers["InstalledApplicationList"] = func(ctx context.Context, d *Device, cmd *Command) Response {
			r := list(ctx, d, cmd)
			if r.Status != "Acknowledged" {
				return r
			}
			entries, _ := r.Keys["InstalledApplicationList"].([]any)
			if managedOnly, _ := cmd.Params["ManagedAppsOnly"].(bool); managedOnly {
				return r
			}
			want, _ := identifiersParam(cmd) // a bad filter was refused above
			filtered := want != nil
			d.mu.RLock()
			for _, a := range own {
				if _, managed := d.st.apps[a.Identifier]; managed {
					continue // taken over: the managed list has it
				}
				if filtered && !slices.Contains(want, a.Identifier) {
					continue
				}
				entries = append(entries, installedAppEntry(a.Identifier, a.Name, a.Version, a.Version, a.ITunesStoreID))
			}
			d.mu.RUnlock()
			keys := map[string]any{}
			for k, v := range r.Keys {
				keys[k] = v
			}
			keys["InstalledApplicationList"] = entries
			r.Keys = keys
			return r
		}
	}
	if install != nil {
		d.handlers["InstallApplication"] = func(ctx context.Context, d *Device, cmd *Command) Response {
			a, ok := find(cmd)
			if !ok {
				return install(ctx, d, cmd)
			}
			d.mu.RLock()
			_, managed := d.st.apps[a.Identifier]
			d.mu.RUnlock()
			if managed {
				return install(ctx, d, cmd)
			}
			if cmd.UserEnrollment {
				r := Failed(ChainItem(DomainMDM, ErrCodeAppNotTakenOver, "The app is already installed and cannot be managed."),
					detail("%s (%s) was installed by the user before enrolling; User Enrollment cannot change an app from unmanaged to managed — the user must delete it first", a.Name, a.Identifier))
				r.Keys = map[string]any{"Identifier": a.Identifier, "State": "UserInstalledApp", "RejectionReason": "ManagementChangeNotSupported"}
				return r
			}
			if s, _ := cmd.Params["ChangeManagementState"].(string); s != "Managed" {
				return Acknowledged(map[string]any{"Identifier": a.Identifier, "State": "UserInstalledApp", "RejectionReason": "AppAlreadyInstalled"})
			}
			// Take the app over: install it under its own identifier.
			params := map[string]any{}
			for k, v := range cmd.Params {
				params[k] = v
			}
			delete(params, "iTunesStoreID")
			params["Identifier"] = a.Identifier
			c := *cmd
			c.Params = params
			r := install(ctx, d, &c)
			if r.Status == "Acknowledged" && a.ITunesStoreID != 0 {
				d.mu.Lock()
				if m := d.st.apps[a.Identifier]; m != nil {
					m.storeID, m.externalID = a.ITunesStoreID, a.ITunesStoreID
				}
				d.mu.Unlock()
			}
			return r
		}
	}
}

// IsAppManaged reports whether the MDM server manages the app with this
// bundle identifier on the device (an app the user installed before
// enrolling is not, unless a device enrollment took it over).
func (d *Device) IsAppManaged(identifier string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.st.apps[identifier]
	return ok
}
