package device

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// Status items: what a virtual device reports about itself in a
// declarative status report, beyond its declarations.
//
// Every report carries the device.* items a device reports unasked (its
// model, its OS and, except under User Enrollment, its identifiers). A
// com.apple.configuration.management.status-subscriptions configuration,
// while active, subscribes its channel to more: each item it names that the
// device's OS has (Apple's status schema, as client-capabilities lists
// them) is reported with the device's value. The subscriptions of every
// active such configuration add up (the schema's set-union). An item the
// device has no value for is reported in the report's Errors, with
// mockmdm's reason code Error.StatusItemNotAvailable, as Apple's
// StatusReport schema provides for "a status item that cannot be
// returned".
//
// Values come from the device's state: passcode.is-present is false (a
// virtual device has no passcode) and passcode.is-compliant follows the
// passcode policies installed and the passcode settings declared
// (passcodesettings.go), softwareupdate.* follow the OS updates
// (osupdate.go), security.certificate.list the keychain, mdm.app the
// managed apps. A tester sets any item, the test.* items included, with
// SetStatusItem; a value set so wins over the device's own. Predicates
// (@status) read the same values, subscribed or not.
//
// Sources: Apple's schemas declarative/status/*.yaml (each item's value
// and availability), declarations/configurations/management.status-
// subscriptions.yaml and protocol/statusreport.yaml (Errors).

// statusSubscriptionsType is the configuration that subscribes to status.
const statusSubscriptionsType = "com.apple.configuration.management.status-subscriptions"

// statusNotAvailable is the reason code for a subscribed item the device
// cannot report (mockmdm's: Apple publishes none).
const statusNotAvailable = "Error.StatusItemNotAvailable"

// unaskedStatusItems are reported without a subscription.
var unaskedStatusItems = []string{
	"device.model.family", "device.model.identifier", "device.model.marketing-name",
	"device.operating-system.family", "device.operating-system.version", "device.operating-system.build-version",
	"device.identifier.udid", "device.identifier.serial-number",
}

// statusItemValue is the device's own value of the status item name for a
// channel (user "" the device's), or ok false when it has none; whether the
// device may report it at all is statusItemAllowed's.
func (d *Device) statusItemValue(name, user string) (any, bool) {
	version, build := d.OS()
	switch name {
	case "device.model.family":
		return d.model.Family, true
	case "device.model.identifier":
		return d.model.ProductName, true
	case "device.model.marketing-name":
		return d.model.Description, true
	case "device.model.number":
		return d.model.ModelNumber, d.model.ModelNumber != ""
	case "device.operating-system.family":
		return d.model.OSName, true
	case "device.operating-system.version":
		return version, true
	case "device.operating-system.build-version":
		return build, true
	case "device.identifier.udid":
		return d.hw.UDID, true
	case "device.identifier.serial-number":
		return d.hw.SerialNumber, true
	case "device.power.battery-health":
		// Apple: reported on iPhone and Apple silicon Macs; an iPad
		// answers unsupported.
		if d.model.Family == "iPad" {
			return "unsupported", true
		}
		return "normal", true
	case "passcode.is-present":
		return false, true
	case "passcode.is-compliant":
		return !d.passcodeRequired(user), true
	case "diskmanagement.filevault.enabled":
		return false, d.model.IsMac()
	case "softwareupdate.install-state":
		if d.pendingUpdate() != nil {
			return "prepared", true
		}
		return "none", true
	case "softwareupdate.install-reason":
		// Apple: why the pending update is pending; an empty list when
		// none is.
		d.mu.RLock()
		enforced, downloaded := d.st.enforced, len(d.st.downloaded) > 0
		d.mu.RUnlock()
		switch {
		case enforced != nil:
			return map[string]any{"reason": []any{"declaration"}, "declaration-id": enforced.declaration}, true
		case downloaded:
			return map[string]any{"reason": []any{"mdm"}}, true
		}
		return map[string]any{"reason": []any{}}, true
	case "softwareupdate.pending-version":
		// Apple: both empty when no update is pending.
		if u := d.pendingUpdate(); u != nil {
			return map[string]any{"os-version": u.version, "build-version": u.build}, true
		}
		return map[string]any{"os-version": "", "build-version": ""}, true
	case "softwareupdate.failure-reason":
		return map[string]any{"count": 0}, true
	case "security.certificate.list":
		return d.certificateStatus(user), true
	case "mdm.app":
		return d.appStatus(), user == ""
	}
	return nil, false
}

// statusSource resolves status items for the channel: none that Apple's
// schema does not give the device, else the tester's value
// (SetStatusItem), else one worked out with the declarations' statuses
// (declarative: accountLists), else the device's own.
func (d *Device) statusSource(user string, userEnrollment bool, declarative map[string]any) func(name string) (any, bool) {
	d.mu.RLock()
	overrides := maps.Clone(d.beh.statusItems)
	d.mu.RUnlock()
	return func(name string) (any, bool) {
		if !d.statusItemAllowed(name, user, userEnrollment) {
			return nil, false
		}
		if v, ok := overrides[name]; ok {
			return v, true
		}
		if v, ok := declarative[name]; ok {
			return v, true
		}
		return d.statusItemValue(name, user)
	}
}

// statusItems are the status items a report for the channel carries:
// the unasked ones, then those subscribed (names), by name; and the
// subscribed ones it cannot report, sorted. declarative is statusSource's.
func (d *Device) statusItems(user string, userEnrollment bool, subscribed []string, declarative map[string]any) (map[string]any, []string) {
	value := d.statusSource(user, userEnrollment, declarative)
	values := map[string]any{}
	for _, name := range unaskedStatusItems {
		if v, ok := value(name); ok {
			values[name] = v
		}
	}
	var missing []string
	for _, name := range subscribed {
		if _, done := values[name]; done || strings.HasPrefix(name, "management.") {
			continue // reported anyway (management.declarations, client-capabilities)
		}
		v, ok := value(name)
		if !ok {
			missing = append(missing, name)
			continue
		}
		values[name] = v
	}
	sort.Strings(missing)
	return values, slices.Compact(missing)
}

// subscriptions are the status items the active status-subscriptions
// configurations among ds name.
func subscriptions(ds []*heldDeclaration, statuses map[string]declStatus) []string {
	var names []string
	for _, h := range ds {
		if h.Type != statusSubscriptionsType || !statuses[h.Identifier].active {
			continue
		}
		items, _ := h.Payload["StatusItems"].([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				if name, ok := m["Name"].(string); ok && name != "" && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
	}
	return names
}

// nestStatus turns dotted item names into the report's nested dictionaries
// (device.model.family → {"device": {"model": {"family": …}}}).
func nestStatus(values map[string]any) map[string]any {
	out := map[string]any{}
	for name, v := range values {
		parts := strings.Split(name, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

// SetStatusItem sets the value the device reports for a status item of
// Apple's status schema (test.string-value, device.power.battery-health,
// …), over its own; a nil value takes the setting back. The value must be
// what the schema says (a string, a bool, a number, []any and
// map[string]any, []byte for data), and is reported from the next status
// report on. Like the other behaviours a tester sets, it survives an erase
// and is not saved.
func (d *Device) SetStatusItem(name string, value any) error {
	if err := CheckStatusItem(name, value); err != nil {
		return err
	}
	if value != nil {
		s, _ := schema.StatusItem(name)
		version, _ := d.OS()
		if !s.EffectivePath(d.model.schemaOS()).AvailableIn(version) {
			return fmt.Errorf("device: %s is not a status item %s %s has", name, d.model.OSName, version)
		}
		// The device's own copy, in JSON's types: what the report sends
		// and predicates read, out of the caller's reach.
		b, err := json.Marshal(value)
		if err != nil {
			return fmt.Errorf("device: %s: the value cannot be sent as JSON: %w", name, err)
		}
		if err := json.Unmarshal(b, &value); err != nil {
			return fmt.Errorf("device: %s: %w", name, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if value == nil {
		delete(d.beh.statusItems, name)
		return nil
	}
	if d.beh.statusItems == nil {
		d.beh.statusItems = map[string]any{}
	}
	d.beh.statusItems[name] = value
	return nil
}

// CheckStatusItem reports whether name is a status item of Apple's schema
// and value (nil aside) a value it may take, as SetStatusItem requires.
func CheckStatusItem(name string, value any) error {
	s, ok := schema.StatusItem(name)
	if !ok || len(s.PayloadKeys) != 1 {
		return fmt.Errorf("device: %q is not a status item in Apple's schema (test.string-value, passcode.is-compliant, …)", name)
	}
	if strings.HasPrefix(name, "management.") {
		return fmt.Errorf("device: %s is the device's report of its declarations, not a value to set", name)
	}
	if value != nil {
		if f, ok := value.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return fmt.Errorf("device: %s: %v is not a number JSON can carry", name, f)
		}
		if probs := schema.ValidateValue(&s.PayloadKeys[0], schema.FromJSON(value), ""); len(probs) > 0 {
			return fmt.Errorf("device: %s: %s", name, strings.TrimPrefix(probs[0].String(), ": "))
		}
	}
	return nil
}

// passcodeRequired reports whether a passcode policy installed on the
// channel (the device's profiles, and the user's own) asks for a passcode,
// which a virtual device never has.
func (d *Device) passcodeRequired(user string) bool {
	for _, p := range d.channelProfiles(user) {
		for _, pl := range restrictionPayloads(p) {
			if pl.Type() != "com.apple.mobiledevice.passwordpolicy" {
				continue
			}
			if pl.Bool("forcePIN") || pl.Bool("requireAlphanumeric") {
				return true
			}
			for _, k := range []string{"minLength", "minComplexChars"} {
				if n, ok := pl.Int(k); ok && n > 0 {
					return true
				}
			}
		}
	}
	return false
}

// pendingUpdate is the OS update waiting to be installed, if any: the one
// a declaration enforces, else one downloaded and not yet installed.
func (d *Device) pendingUpdate() *osUpdate {
	d.mu.RLock()
	downloaded := len(d.st.downloaded) > 0
	enforced := d.st.enforced
	d.mu.RUnlock()
	switch {
	case enforced != nil:
		return &osUpdate{version: enforced.version, build: enforced.build}
	case downloaded:
		u := d.availableUpdate()
		return &u
	}
	return nil
}

// certificateStatus is security.certificate.list: the channel's identities
// and trusted roots, each identified by its certificate's SHA-256.
func (d *Device) certificateStatus(user string) []any {
	d.mu.RLock()
	defer d.mu.RUnlock()
	list := []any{}
	at := map[string]int{} // Apple: the identifier is the primary key
	add := func(der []byte, cn string, identity bool, asset string) {
		sum := sha256.Sum256(der)
		id := hex.EncodeToString(sum[:])
		e := map[string]any{"identifier": id, "subject-summary": cn, "is-identity": identity, "data": slices.Clone(der)}
		if asset != "" { // Apple: the asset declaration that installed it
			e["declaration-identifier"] = asset
		}
		if i, dup := at[id]; dup { // one certificate installed twice: listed once, a declaration's first
			if asset != "" && list[i].(map[string]any)["declaration-identifier"] == nil {
				list[i] = e
			}
			return
		}
		at[id] = len(list)
		list = append(list, e)
	}
	for _, id := range d.st.identities {
		if id.user == user {
			add(id.cert.Raw, id.cert.Subject.CommonName, true, id.asset)
		}
	}
	for _, r := range d.st.roots {
		if r.user == user {
			add(r.cert.Raw, r.cert.Subject.CommonName, false, r.asset)
		}
	}
	return list
}

// appStatus is mdm.app: the apps the MDM server installed, as
// ManagedApplicationList reports them.
func (d *Device) appStatus() []any {
	d.mu.RLock()
	defer d.mu.RUnlock()
	ids := make([]string, 0, len(d.st.apps))
	for id, a := range d.st.apps {
		if a.declaration == "" { // mdm.app: the apps MDM commands installed
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	list := []any{}
	for _, id := range ids {
		a := d.st.apps[id]
		list = append(list, map[string]any{"identifier": id, "name": id, "version": "1.0", "short-version": "1.0",
			"state": "managed", "external-version-id": fmt.Sprint(a.externalID)})
	}
	return list
}

// predicateStatus is what @status(...) reads in a Predicate: every status
// item the device has a value for on the channel, subscribed or not, by key
// path (a dictionary's entries under the item's name).
//
// Working every item out costs (certificate hashes, profiles parsed), so
// it is done only when an activation among ds has a Predicate; else nil.
func (d *Device) predicateStatus(ds []*heldDeclaration, user string, userEnrollment bool) map[string]any {
	if !slices.ContainsFunc(ds, func(h *heldDeclaration) bool {
		src, _ := h.Payload["Predicate"].(string)
		return h.Kind == "activation" && strings.TrimSpace(src) != ""
	}) {
		return nil
	}
	value := d.statusSource(user, userEnrollment, nil)
	out := map[string]any{}
	for _, name := range schema.Names(schema.KindStatus) {
		if v, ok := value(name); ok {
			flattenStatus(name, v, out)
		}
	}
	return out
}

// statusItemAllowed reports whether Apple's schema gives the device the
// status item: on its OS at its version, in the channel's scope (system for
// the device channel, user for a user's; a Shared iPad's own rule where the
// schema has one), for its kind of enrollment (supervised, device, user;
// the declarative schemas' allowed-enrollments).
func (d *Device) statusItemAllowed(name, user string, userEnrollment bool) bool {
	s, ok := schema.StatusItem(name)
	return ok && d.schemaAllows(s.EffectivePath(d.model.schemaOS()), user, userEnrollment)
}

// schemaAllows reports whether a declarative schema entry o (a status
// item's or a declaration's, for the device's OS) gives the device the item
// on the channel of user, for its enrollment: see statusItemAllowed.
func (d *Device) schemaAllows(o schema.OSSupport, user string, userEnrollment bool) bool {
	return d.schemaRefusal(o, user, userEnrollment) == ""
}

// schemaRefusal is why schemaAllows refuses: "" when it allows, else what
// the schema does not give (the OS at its version, the channel's scope,
// the enrollment).
func (d *Device) schemaRefusal(o schema.OSSupport, user string, userEnrollment bool) string {
	version, _ := d.OS()
	if !o.AvailableIn(version) {
		return fmt.Sprintf("not on %s %s", d.model.OSName, version)
	}
	scope, scopes := "system", o.AllowedScopes
	if user != "" {
		scope = "user"
	}
	restricted := len(scopes) > 0
	sharedRule := d.sharedIPad && o.SharedIPad != nil && o.SharedIPad.AllowedScopes != nil
	if sharedRule {
		// Apple's own list for a Shared iPad; an empty one (passcode
		// settings, legacy.interactive…) gives it no channel at all.
		scopes, restricted = o.SharedIPad.AllowedScopes, true
	}
	if restricted && !slices.Contains(scopes, scope) {
		channel := "the device channel"
		if user != "" {
			channel = "a user's channel"
		}
		if sharedRule {
			channel += " of a Shared iPad"
		}
		return "not on " + channel
	}
	// Apple's macOS rows know no "device" enrollment: a Mac enrolled
	// otherwise than by User Enrollment counts as supervised (mockmdm's
	// reading).
	enrollment := "device"
	switch {
	case userEnrollment:
		enrollment = "user"
	case d.supervised || d.model.IsMac():
		enrollment = "supervised"
	}
	if len(o.AllowedEnrollments) > 0 && !slices.Contains(o.AllowedEnrollments, enrollment) {
		return fmt.Sprintf("not for a %s enrollment (Apple's schema allows %s)", enrollment, strings.Join(o.AllowedEnrollments, ", "))
	}
	return ""
}
