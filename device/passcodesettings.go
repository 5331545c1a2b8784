package device

import "github.com/mockmdm/mockmdm/mdm/schema"

// Passcode settings by declaration: a virtual device has no passcode, so
// while an active com.apple.configuration.passcode.settings configuration
// on the channel asks for one — RequirePasscode true, or any other key
// present, which Apple's schema says "implicitly requires a passcode, and
// overrides this key's value" — the device is out of compliance, as a device whose user has not
// yet set the passcode asked for is: the configuration stays active and
// valid (Apple applies it and prompts the user), the status item
// passcode.is-compliant is false, and SecurityInfo answers PasscodeCompliant
// false. PasscodeCompliantWithProfiles follows the passcode policies of
// profiles only, as Apple defines it.
//
// Predicates read passcode.is-compliant as the profiles make it: a
// configuration's own effect deciding whether the activation that carries
// it applies would go round in a circle.
//
// Sources: Apple's schemas declarations/configurations/passcode.settings.yaml
// (the keys, their defaults and the scopes and enrollments it is for),
// status/passcode.is-compliant.yaml, and mdm/commands/information.security.yaml
// (PasscodeCompliant against PasscodeCompliantWithProfiles).

const passcodeSettingsType = "com.apple.configuration.passcode.settings"

// declaresPasscode reports whether an active passcode settings
// configuration among ds asks for a passcode (see above). A key Apple's
// schema does not give the device's OS at its version (CustomRegex on an
// iPhone) is not read.
func (d *Device) declaresPasscode(ds []*heldDeclaration, statuses map[string]declStatus) bool {
	s, ok := schema.Declaration(passcodeSettingsType)
	if !ok {
		return false
	}
	version, _ := d.OS()
	os := d.model.schemaOS()
	for _, h := range ds {
		if h.Type != passcodeSettingsType || !statuses[h.Identifier].active {
			continue
		}
		for i := range s.PayloadKeys {
			k := &s.PayloadKeys[i]
			v, present := h.Payload[k.Name]
			if !present || !s.EffectivePath(os, k).AvailableIn(version) {
				continue
			}
			if k.Name != "RequirePasscode" || v == true {
				return true
			}
		}
	}
	return false
}

// declaredPasscodeRequired reports whether the channel's declarations, as
// they stand now, ask for a passcode.
func (d *Device) declaredPasscodeRequired(user string) bool {
	d.mu.RLock()
	st := d.st.declarative[user]
	d.mu.RUnlock()
	if st == nil {
		return false
	}
	statuses := evaluate(st.Declarations, d.predicateStatus(st.Declarations, user, d.userEnrolled()), st.Failures)
	return d.declaresPasscode(st.Declarations, statuses)
}

// declarativeStatus is the status items worked out with the declarations'
// statuses (statusSource's declarative): the account lists, the declared
// apps, and passcode.is-compliant when a passcode configuration makes it
// false.
func (d *Device) declarativeStatus(ds []*heldDeclaration, statuses map[string]declStatus) map[string]any {
	items := accountLists(ds, statuses)
	items["app.managed.list"] = d.managedAppList(ds, statuses)
	if d.declaresPasscode(ds, statuses) {
		items["passcode.is-compliant"] = false
	}
	return items
}
