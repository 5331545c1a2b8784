package device

import (
	"fmt"
	"time"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// Software update enforcement by declaration: while a
// com.apple.configuration.softwareupdate.enforcement.specific
// configuration is active on the device channel and names a TargetOSVersion
// newer than the device's, the device holds that update as pending
// (softwareupdate.pending-version, install-state prepared) until its
// TargetLocalDateTime, and installs it once that time has come: the OS
// version and build change everywhere the device reports them, the device
// restarts, and softwareupdate.install-reason says "declaration" with the
// configuration's identifier. Of several due, the newest version is
// installed.
//
// A virtual device has no clock running in the background: it looks at the
// deadlines when it syncs, and a sync with nothing new still looks while an
// update is pending. TargetLocalDateTime is read in the device's time zone,
// which for a virtual device is UTC, on the device's clock (WithClock). A
// TargetLocalDateTime that is not Apple's yyyy-mm-ddThh:mm:ss fails the
// configuration with Error.ConfigurationCannotBeApplied. Without a
// TargetBuildVersion the build is the current one with "a" added, as the
// updates the device offers are.
//
// Sources: Apple's schema declarations/configurations/
// softwareupdate.enforcement.specific.yaml (its keys and related status
// items) and status/softwareupdate.*.yaml.

const updateEnforcementType = "com.apple.configuration.softwareupdate.enforcement.specific"

// enforcedUpdate is an OS update a declaration enforces, not yet due.
type enforcedUpdate struct {
	declaration, version, build string
	deadline                    time.Time
}

// installReason is softwareupdate.install-reason for the last update the
// device installed: what made it (Apple's values "mdm", "declaration", …)
// and, for a declaration, which one.
type installReason struct {
	Reasons     []string `json:"reasons"`
	Declaration string   `json:"declaration_id,omitempty"`
}

// applyUpdateEnforcement installs what the active enforcement
// configurations among ds make due, keeps the next one pending, and returns
// why each configuration it cannot act on failed, by identifier.
func (d *Device) applyUpdateEnforcement(ds []*heldDeclaration, statuses map[string]declStatus) map[string]string {
	failures := map[string]string{}
	var enforced []enforcedUpdate
	for _, h := range ds {
		if h.Type != updateEnforcementType || !statuses[h.Identifier].active {
			continue
		}
		target, _ := h.Payload["TargetOSVersion"].(string)
		build, _ := h.Payload["TargetBuildVersion"].(string)
		when, _ := h.Payload["TargetLocalDateTime"].(string)
		deadline, err := time.ParseInLocation("2006-01-02T15:04:05", when, time.UTC)
		if err != nil {
			failures[h.Identifier] = fmt.Sprintf("TargetLocalDateTime %q is not a local date and time as yyyy-mm-ddThh:mm:ss", clipValue(when))
			continue
		}
		enforced = append(enforced, enforcedUpdate{declaration: h.Identifier, version: target, build: build, deadline: deadline})
	}
	now := d.now()
	version, build := d.OS()
	var due *enforcedUpdate
	for i, u := range enforced {
		if schema.CompareVersions(u.version, version) > 0 && !u.deadline.After(now) && (due == nil || schema.CompareVersions(u.version, due.version) > 0) {
			due = &enforced[i]
		}
	}
	if due != nil {
		b := due.build
		if b == "" {
			b = build + "a"
		}
		d.installUpdate(osUpdate{productKey: d.model.OSName + "Update" + due.version, version: due.version, build: b},
			installReason{Reasons: []string{"declaration"}, Declaration: due.declaration})
		d.log.Info("OS update installed as a declaration enforces", "version", due.version, "declaration", due.declaration)
		version, build = d.OS()
	}
	var pending *enforcedUpdate
	for i, u := range enforced {
		if schema.CompareVersions(u.version, version) > 0 && (pending == nil || u.deadline.Before(pending.deadline)) {
			pending = &enforced[i]
		}
	}
	if pending != nil && pending.build == "" {
		pending.build = build + "a"
	}
	d.mu.Lock()
	d.st.enforced = pending
	d.mu.Unlock()
	return failures
}

// enforcementPending reports whether a declaration's update waits for its
// deadline.
func (d *Device) enforcementPending() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.enforced != nil
}
