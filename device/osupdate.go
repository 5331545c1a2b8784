package device

import (
	"context"
	"slices"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
)

// OS updates on a supervised device: AvailableOSUpdates offers the next
// minor version; ScheduleOSUpdateScan starts a scan (macOS only, as the
// schema says: the dispatcher answers Unknown command elsewhere);
// ScheduleOSUpdate acts
// on an update — downloading it (DownloadOnly, NotifyOnly, InstallLater)
// or installing it (Default, InstallASAP, InstallForceRestart), which ends
// the session, restarts the device and changes the OS version and build it
// reports everywhere (DeviceInformation, Authenticate, MachineInfo, Save);
// OSUpdateStatus lists the updates downloaded and not yet installed.
//
// Sources: the schemas mdm/commands/system.update.available.yaml,
// system.update.scan.yaml (ScanInitiated), system.update.schedule.yaml
// (Updates of {ProductKey?, ProductVersion?, InstallAction}, the
// InstallAction values, and the UpdateResults of {ProductKey,
// InstallAction, Status, ErrorChain?}) and system.update.status.yaml
// (OSUpdateStatus of {ProductKey, IsDownloaded, DownloadPercentComplete,
// Status}). A real device downloads and installs over minutes; the
// virtual one does it at once. Which action Default stands for is the
// device's choice; the virtual device installs. An update it does not offer
// gets InstallAction Error with an error chain.

// installActions are ScheduleOSUpdate's InstallAction values.
var installActions = []string{"Default", "DownloadOnly", "InstallASAP", "NotifyOnly", "InstallLater", "InstallForceRestart"}

// osUpdate is an update the device offers.
type osUpdate struct {
	productKey, version, build string
}

// availableUpdate is the update the device offers: the next minor version.
func (d *Device) availableUpdate() osUpdate {
	version, build := d.OS()
	next := nextMinor(version)
	return osUpdate{productKey: d.model.OSName + "Update" + next, version: next, build: build + "a"}
}

func init() {
	moreHandlers["ScheduleOSUpdateScan"] = handleScheduleOSUpdateScan
	moreHandlers["ScheduleOSUpdate"] = handleScheduleOSUpdate
	moreHandlers["OSUpdateStatus"] = handleOSUpdateStatus
}

func handleScheduleOSUpdateScan(_ context.Context, _ *Device, cmd *Command) Response {
	if f, ok := cmd.Params["Force"]; ok {
		if _, isBool := f.(bool); !isBool {
			return formatError("Force must be a boolean")
		}
	}
	return Acknowledged(map[string]any{"ScanInitiated": true})
}

func handleScheduleOSUpdate(_ context.Context, d *Device, cmd *Command) Response {
	items, ok := cmd.Params["Updates"].([]any)
	if !ok || len(items) == 0 {
		return formatError("Updates must be a non-empty array of dictionaries")
	}
	offered := d.availableUpdate()
	var results []any
	var install bool
	for i, it := range items {
		u, ok := it.(map[string]any)
		if !ok {
			return formatError("Updates[%d] must be a dictionary", i)
		}
		action, ok := u["InstallAction"].(string)
		if !ok || !slices.Contains(installActions, action) {
			return formatError("Updates[%d].InstallAction must be one of %v", i, installActions)
		}
		key, keyOK := stringOr(u["ProductKey"])
		version, versionOK := stringOr(u["ProductVersion"])
		if !keyOK || !versionOK {
			return formatError("Updates[%d]: ProductKey and ProductVersion must be strings", i)
		}
		if (key != "" && key != offered.productKey) || (version != "" && version != offered.version) {
			results = append(results, map[string]any{
				"ProductKey": key, "InstallAction": "Error", "Status": "Idle",
				"ErrorChain": []mdm.ErrorChainItem{detail("the device offers %s (%s), not %q %q", offered.productKey, offered.version, key, version)},
			})
			continue
		}
		status := "Idle"
		switch action {
		case "Default", "InstallASAP", "InstallForceRestart":
			if action == "Default" {
				action = "InstallASAP"
			}
			status, install = "Installing", true
		default:
			d.mu.Lock()
			if !slices.Contains(d.st.downloaded, offered.productKey) {
				d.st.downloaded = append(d.st.downloaded, offered.productKey)
			}
			d.mu.Unlock()
		}
		results = append(results, map[string]any{"ProductKey": offered.productKey, "InstallAction": action, "Status": status})
	}
	r := Acknowledged(map[string]any{"UpdateResults": results})
	if install {
		r.AfterSend = func() { d.installUpdate(offered) }
		r.EndSession = true
	}
	return r
}

// installUpdate installs u: the device restarts on the new OS.
func (d *Device) installUpdate(u osUpdate) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.installUpdateLocked(u)
}

// installUpdateLocked is installUpdate with d.mu held. The updates
// downloaded before are for the OS the device no longer runs: they go.
func (d *Device) installUpdateLocked(u osUpdate) {
	d.osVersion, d.build = u.version, u.build
	d.st.downloaded = nil
	d.st.restarts++
	// An enforced update the device now runs (or passed) is pending no more.
	if e := d.st.enforced; e != nil && schema.CompareVersions(e.version, u.version) <= 0 {
		d.st.enforced = nil
	}
}

func handleOSUpdateStatus(_ context.Context, d *Device, _ *Command) Response {
	d.mu.RLock()
	defer d.mu.RUnlock()
	list := []any{}
	for _, k := range d.st.downloaded {
		list = append(list, map[string]any{"ProductKey": k, "IsDownloaded": true, "DownloadPercentComplete": 1.0, "Status": "Idle"})
	}
	return Acknowledged(map[string]any{"OSUpdateStatus": list})
}

// stringOr reads an optional string: ("", true) when absent.
func stringOr(v any) (string, bool) {
	if v == nil {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}
