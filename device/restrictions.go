package device

import (
	"context"
	"slices"
	"strings"

	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
)

// The Restrictions command (RequestType "Restrictions", often called
// RestrictionsList) reports the restrictions the device enforces: the
// "global" ones, which are every installed profile's restrictions and
// passcode payloads combined, most restrictive value kept, and, when
// ProfileRestrictions is true, each installed profile's own as it set
// them. ClearRestrictionsPassword clears the Screen Time passcode, which a
// virtual device does not have, so it only acknowledges; the dispatcher
// already refuses it where Apple's schema does (unsupervised, User
// Enrollment, Shared iPad).
//
// Sources: the schemas mdm/commands/device.restrictions.list.yaml (the
// response's four dictionaries: restrictedBool and restrictedValue, each
// restriction as {value}, intersection and union, each as {values}) and
// device.restrictions.clearpassword.yaml; mdm/profiles/
// com.apple.applicationaccess.yaml and com.apple.mobiledevice.passwordpolicy
// .yaml for each key's type, OS availability and supervision rule. The
// shape of an answer follows Apple's example on its Restrictions page (a
// GlobalRestrictions holding only the dictionaries that have entries, no
// ProfileRestrictions unless asked) and a device's answer recorded in an
// open-source MDM's tests (passcode keys such as forcePIN and minLength
// among the restrictions; a Boolean left at its unrestricted value, such as
// allowSimple true, listed under its profile but not in the global set;
// every installed profile listed, with empty restrictedBool and
// restrictedValue when it restricts nothing). Apple publishes no table of
// which value of each key is the more restrictive, so the virtual device
// infers it from the name (restrictiveBool, restrictiveValue,
// setCombination) and the inference is mockmdm's. A key the device's OS
// does not have, or a supervised-only one on an unsupervised device, is
// ignored, as iOS ignores it. ratingRegion is a setting, not a
// restriction, and iOS does not report it (Apple feedback 38951150);
// safariAcceptCookies is a real while the response's values are integers;
// changeAtNextAuth is an action, not a restriction. None is reported.

// restrictionPayloadTypes are the payload types whose keys are
// restrictions: the Restrictions payload and the passcode policy.
var restrictionPayloadTypes = []string{"com.apple.applicationaccess", "com.apple.mobiledevice.passwordpolicy"}

func init() {
	moreHandlers["Restrictions"] = handleRestrictions
	moreHandlers["ClearRestrictionsPassword"] = handleAcknowledge
}

// restrictionSet is restrictions combined, most restrictive value kept.
type restrictionSet struct {
	bools        map[string]bool
	values       map[string]int64
	intersection map[string][]string
	union        map[string][]string
}

func newRestrictionSet() *restrictionSet {
	return &restrictionSet{bools: map[string]bool{}, values: map[string]int64{}, intersection: map[string][]string{}, union: map[string][]string{}}
}

// dict is the set as the response's RestrictionsDictionary. The global
// set lists only the dictionaries that have entries, and a Boolean only at
// its restrictive value; a profile's lists what it set, with
// restrictedBool and restrictedValue always present.
func (r *restrictionSet) dict(global bool) map[string]any {
	wrap := func(field string, v any) map[string]any { return map[string]any{field: v} }
	bools, values, inter, union := map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}
	for k, v := range r.bools {
		if restrictive, _ := restrictiveBool(k); !global || v == restrictive {
			bools[k] = wrap("value", v)
		}
	}
	for k, v := range r.values {
		values[k] = wrap("value", v)
	}
	for k, v := range r.intersection {
		inter[k] = wrap("values", toAny(v))
	}
	for k, v := range r.union {
		union[k] = wrap("values", toAny(v))
	}
	out := map[string]any{}
	for name, part := range map[string]map[string]any{"restrictedBool": bools, "restrictedValue": values, "intersection": inter, "union": union} {
		always := !global && (name == "restrictedBool" || name == "restrictedValue")
		if len(part) > 0 || always {
			out[name] = part
		}
	}
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// restrictiveBool is the value of a Boolean restriction that restricts:
// false for the allow… keys (allowCamera, safariAllowPopups, allowSimple,
// even those whose default is false, such as
// allowUnmanagedToReadManagedContacts), true for the force… and require…
// keys (forceEncryptedBackup, safariForceFraudWarning,
// forceWiFiToAllowedNetworksOnly, forcePIN, requireAlphanumeric). ok is
// false for a key that is neither (changeAtNextAuth).
func restrictiveBool(name string) (value, ok bool) {
	switch {
	case strings.HasPrefix(name, "force") || strings.Contains(name, "Force") || strings.HasPrefix(name, "require"):
		return true, true
	case strings.HasPrefix(name, "allow") || strings.Contains(name, "Allow"):
		return false, true
	}
	return false, false
}

// restrictiveValue reports whether a is more restrictive than b for the
// numeric restriction name: a higher minimum (minLength, minComplexChars)
// or a longer passcode history restricts more, and so does a longer
// software-update delay, which hides updates for longer; for the rest (a
// content rating, a maximum such as maxInactivity, the fingerprint
// timeout) the lower value restricts more.
func restrictiveValue(name string, a, b int64) bool {
	if strings.HasPrefix(name, "min") || name == "pinHistory" || strings.Contains(name, "Delay") {
		return a > b
	}
	return a < b
}

// setCombination says how profiles combine a list restriction: block lists
// and permitted-app lists add up ("union"); allow lists can only shrink
// ("intersection").
func setCombination(name string) string {
	lower := strings.ToLower(name)
	if strings.Contains(lower, "allowlist") || strings.Contains(lower, "whitelist") {
		return "intersection"
	}
	return "union"
}

// add combines one restrictions payload into r, keeping only what the
// device enforces.
func (r *restrictionSet) add(d *Device, pl profiles.Payload) {
	variants := schema.ProfileVariants(pl.Type())
	os := d.model.schemaOS()
	version, _ := d.OS()
	for name, v := range pl {
		var s *schema.Schema
		var k *schema.Key
		for _, vs := range variants {
			if k = schema.FindKey(vs.PayloadKeys, name); k != nil {
				s = vs
				break
			}
		}
		if k == nil || strings.HasPrefix(name, "Payload") {
			continue
		}
		eff := s.Effective(os, k)
		if !eff.AvailableIn(version) || (eff.Supervised != nil && *eff.Supervised && !d.supervised) {
			continue
		}
		switch k.Type {
		case "<boolean>":
			b, ok := v.(bool)
			restrictive, known := restrictiveBool(name)
			if !ok || !known {
				continue
			}
			if prev, seen := r.bools[name]; !seen || (prev != restrictive && b == restrictive) {
				r.bools[name] = b
			}
		case "<integer>":
			n, ok := pl.Int(name)
			if !ok {
				continue
			}
			if prev, seen := r.values[name]; !seen || restrictiveValue(name, n, prev) {
				r.values[name] = n
			}
		case "<array>":
			list, ok := stringList(v)
			if !ok {
				continue
			}
			switch setCombination(name) {
			case "intersection":
				if prev, seen := r.intersection[name]; seen {
					list = slices.DeleteFunc(slices.Clone(prev), func(s string) bool { return !slices.Contains(list, s) })
				}
				r.intersection[name] = dedupe(list)
			default:
				r.union[name] = dedupe(append(slices.Clone(r.union[name]), list...))
			}
		}
	}
}

// dedupe keeps the first of each string, in order.
func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// channelProfiles are the profiles in force on user's channel: the
// device's, and on a user channel the user's own as well.
func (d *Device) channelProfiles(user string) []*ProfileInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*ProfileInfo
	for _, p := range d.st.profiles {
		if p.User == "" || p.User == user {
			out = append(out, p)
		}
	}
	return out
}

// restrictionPayloads are the restrictions and passcode payloads of an
// installed profile.
func restrictionPayloads(p *ProfileInfo) []profiles.Payload {
	var has bool
	for _, pl := range p.Payloads {
		has = has || slices.Contains(restrictionPayloadTypes, pl.Type)
	}
	if !has {
		return nil
	}
	parsed, err := profiles.Parse(p.Raw)
	if err != nil {
		return nil // it parsed when it was installed
	}
	var out []profiles.Payload
	for _, pl := range parsed.Payloads {
		if slices.Contains(restrictionPayloadTypes, pl.Type()) {
			out = append(out, pl)
		}
	}
	return out
}

func handleRestrictions(_ context.Context, d *Device, cmd *Command) Response {
	perProfile, err := optBool(cmd.Params, "ProfileRestrictions")
	if err != nil {
		return formatError("%v", err)
	}
	installed := d.channelProfiles(cmd.User)
	global := newRestrictionSet()
	byProfile := map[string]any{}
	for _, p := range installed {
		own := newRestrictionSet()
		for _, pl := range restrictionPayloads(p) {
			global.add(d, pl)
			own.add(d, pl)
		}
		byProfile[p.Identifier] = own.dict(false)
	}
	out := map[string]any{"GlobalRestrictions": global.dict(true)}
	if perProfile {
		out["ProfileRestrictions"] = byProfile
	}
	return Acknowledged(out)
}
