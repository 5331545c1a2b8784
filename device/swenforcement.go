package device

import (
	"fmt"
	"regexp"
	"time"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// Software update enforcement by declaration: while a
// com.apple.configuration.softwareupdate.enforcement.specific
// configuration is active on the device channel and names a TargetOSVersion
// newer than the device's, the device holds that update as pending
// (softwareupdate.pending-version, install-state prepared, install-reason
// "declaration" with the configuration's identifier) until its
// TargetLocalDateTime, and installs it once that time has come: the OS
// version and build change everywhere the device reports them and the
// device restarts. Of several due, the newest version is installed.
//
// A virtual device has no clock running in the background: it looks at the
// deadlines when it syncs, and a sync with nothing new still looks while it
// holds such a configuration. TargetLocalDateTime is read in the device's
// time zone, which for a virtual device is UTC, on the device's clock
// (WithClock). A configuration whose TargetOSVersion is not a dotted version
// or whose TargetLocalDateTime is not Apple's yyyy-mm-ddThh:mm:ss fails with
// Error.ConfigurationCannotBeApplied; on a device whose OS, version or
// enrollment Apple's schema does not give the type (iOS 17, macOS 14; its
// allowed enrollments), it fails with Error.ConfigurationNotSupported, as
// every configuration does (apply.go).
// Without a TargetBuildVersion the build is the current one with "a" added,
// as the updates the device offers are.
//
// Sources: Apple's schema declarations/configurations/
// softwareupdate.enforcement.specific.yaml (its keys, availability and
// related status items) and status/softwareupdate.*.yaml.

const updateEnforcementType = "com.apple.configuration.softwareupdate.enforcement.specific"

// osVersionForm is a TargetOSVersion: a dotted version such as 17.1.
var osVersionForm = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,3}$`)

// enforcedUpdate is an OS update a declaration enforces, not yet due.
type enforcedUpdate struct {
	declaration, version, build string
	deadline                    time.Time
}

// applyUpdateEnforcement installs what the active enforcement
// configurations among ds make due, keeps the next one pending, and returns
// why each configuration it cannot act on failed, by identifier, and
// whether it installed an update.
func (d *Device) applyUpdateEnforcement(ds []*heldDeclaration, statuses map[string]declStatus) (failures map[string]applyFailure, installed bool) {
	failures = map[string]applyFailure{}
	fail := func(code, format string, args ...any) applyFailure {
		return applyFailure{Code: code, Error: fmt.Sprintf(format, args...)}
	}
	var enforced []enforcedUpdate
	for _, h := range ds {
		if h.Type != updateEnforcementType || !statuses[h.Identifier].active {
			continue
		}
		target, _ := h.Payload["TargetOSVersion"].(string)
		build, _ := h.Payload["TargetBuildVersion"].(string)
		when, _ := h.Payload["TargetLocalDateTime"].(string)
		if !osVersionForm.MatchString(target) {
			failures[h.Identifier] = fail("Error.ConfigurationCannotBeApplied", "TargetOSVersion %q is not an OS version such as 18.2", clipValue(target))
			continue
		}
		deadline, err := time.ParseInLocation("2006-01-02T15:04:05", when, time.UTC)
		if err != nil {
			failures[h.Identifier] = fail("Error.ConfigurationCannotBeApplied", "TargetLocalDateTime %q is not a local date and time as yyyy-mm-ddThh:mm:ss", clipValue(when))
			continue
		}
		enforced = append(enforced, enforcedUpdate{declaration: h.Identifier, version: target, build: build, deadline: deadline})
	}
	now := d.now()
	// Decided and done under one lock: a ScheduleOSUpdate landing between
	// reading the version and installing must not be undone.
	d.mu.Lock()
	defer d.mu.Unlock()
	var due *enforcedUpdate
	for i, u := range enforced {
		if schema.CompareVersions(u.version, d.osVersion) > 0 && !u.deadline.After(now) && (due == nil || schema.CompareVersions(u.version, due.version) > 0) {
			due = &enforced[i]
		}
	}
	if due != nil {
		b := due.build
		if b == "" {
			b = d.build + "a"
		}
		d.installUpdateLocked(osUpdate{productKey: d.model.OSName + "Update" + due.version, version: due.version, build: b})
		d.log.Info("OS update installed as a declaration enforces", "version", due.version, "declaration", due.declaration)
	}
	var pending *enforcedUpdate
	for i, u := range enforced {
		if schema.CompareVersions(u.version, d.osVersion) > 0 && (pending == nil || u.deadline.Before(pending.deadline)) {
			pending = &enforced[i]
		}
	}
	if pending != nil && pending.build == "" {
		pending.build = d.build + "a"
	}
	d.st.enforced = pending
	return failures, due != nil
}
