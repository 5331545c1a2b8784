package schema

import (
	"strconv"
	"strings"
)

// Effective is the support for key k on one OS ("iOS", "macOS", …): the
// schema's payload-level entry, overlaid by the supportedOS of each key on
// the way down to k, k's own last. An overlay replaces only the fields it
// names, so a key that says just {introduced: '9.0'} keeps the payload's
// supervised and User Enrollment rules (Apple's "inheritance", docs/schema.md).
// Shared iPad and User Enrollment rules merge field by field the same way.
//
// k should point into the schema (&s.PayloadKeys[i], or deeper): then its
// parents are found and applied too; a nested query key such as
// DeviceInformation's Queries → QueriesItem → UDID inherits from all three.
// For a key found in a shared subkey list, the first place it appears wins.
// A k that is not part of s is overlaid on the payload level alone.
//
// The result is a fresh value; changing it does not change the schema.
func (s *Schema) Effective(os string, k *Key) OSSupport {
	path := s.KeyPath(k)
	if path == nil && k != nil {
		path = []*Key{k}
	}
	return s.EffectivePath(os, path...)
}

// EffectivePath is Effective for an explicit chain of keys, outermost first.
func (s *Schema) EffectivePath(os string, path ...*Key) OSSupport {
	o := overlay(OSSupport{}, s.SupportedOS[os])
	for _, k := range path {
		if k == nil {
			continue
		}
		if ko, ok := k.SupportedOS[os]; ok {
			o = overlay(o, ko)
		}
	}
	return o
}

// KeyPath returns the keys from the top of the schema down to k (k last), or
// nil when k does not point into s. Keys are compared by address.
func (s *Schema) KeyPath(k *Key) []*Key {
	if k == nil {
		return nil
	}
	visited := map[*Key]bool{}
	var path []*Key
	var walk func(list []Key) bool
	walk = func(list []Key) bool {
		if len(list) == 0 || visited[&list[0]] {
			return false
		}
		visited[&list[0]] = true
		for i := range list {
			p := &list[i]
			path = append(path, p)
			if p == k || walk(p.Subkeys) {
				return true
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if walk(s.PayloadKeys) || walk(s.ResponseKeys) {
		return path
	}
	return nil
}

// FindKey follows names down through subkeys, e.g.
// FindKey(s.PayloadKeys, "Queries", "QueriesItem", "UDID"). It returns a
// pointer into keys, suitable for Effective.
func FindKey(keys []Key, names ...string) *Key {
	var found *Key
	for _, n := range names {
		found = nil
		for i := range keys {
			if keys[i].Name == n {
				found = &keys[i]
				break
			}
		}
		if found == nil {
			return nil
		}
		keys = found.Subkeys
	}
	return found
}

// overlay returns base with every field that over names replaced. Pointers in
// the result are fresh copies.
func overlay(base, over OSSupport) OSSupport {
	o := base
	setStr(&o.Introduced, over.Introduced)
	setStr(&o.Deprecated, over.Deprecated)
	setStr(&o.Removed, over.Removed)
	setStr(&o.AccessRights, over.AccessRights)
	o.Supervised = pick(base.Supervised, over.Supervised)
	o.RequiresDEP = pick(base.RequiresDEP, over.RequiresDEP)
	o.UserApprovedMDM = pick(base.UserApprovedMDM, over.UserApprovedMDM)
	o.AllowManualInstall = pick(base.AllowManualInstall, over.AllowManualInstall)
	o.Multiple = pick(base.Multiple, over.Multiple)
	o.DeviceChannel = pick(base.DeviceChannel, over.DeviceChannel)
	o.UserChannel = pick(base.UserChannel, over.UserChannel)
	o.AlwaysSkippable = pick(base.AlwaysSkippable, over.AlwaysSkippable)
	o.SharedIPad = overlayMode(base.SharedIPad, over.SharedIPad)
	o.UserEnrollment = overlayMode(base.UserEnrollment, over.UserEnrollment)
	o.AllowedEnrollments = pickSlice(base.AllowedEnrollments, over.AllowedEnrollments)
	o.AllowedScopes = pickSlice(base.AllowedScopes, over.AllowedScopes)
	return o
}

func overlayMode(base, over *ModeRule) *ModeRule {
	if base == nil && over == nil {
		return nil
	}
	var m ModeRule
	if base != nil {
		m = *base
	}
	if over != nil {
		setStr(&m.Mode, over.Mode)
		setStr(&m.Behavior, over.Behavior)
	}
	var bd, bu, od, ou *bool
	var bs, os []string
	if base != nil {
		bd, bu, bs = base.DeviceChannel, base.UserChannel, base.AllowedScopes
	}
	if over != nil {
		od, ou, os = over.DeviceChannel, over.UserChannel, over.AllowedScopes
	}
	m.DeviceChannel = pick(bd, od)
	m.UserChannel = pick(bu, ou)
	m.AllowedScopes = pickSlice(bs, os)
	return &m
}

func setStr(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func pick(base, over *bool) *bool {
	p := over
	if p == nil {
		p = base
	}
	if p == nil {
		return nil
	}
	b := *p
	return &b
}

func pickSlice(base, over []string) []string {
	p := over
	if p == nil {
		p = base
	}
	if p == nil {
		return nil
	}
	// An empty list stays empty, not nil: Apple's "allowed-scopes: []"
	// means none, not no rule.
	return append(make([]string, 0, len(p)), p...)
}

// Supported reports whether the OS supports the item at all: it is listed
// with an introduced version other than "n/a".
func (o OSSupport) Supported() bool {
	return o.Introduced != "" && o.Introduced != "n/a"
}

// AvailableIn reports whether the item exists on that OS version: supported,
// introduced at or before version, and not removed at or before it.
func (o OSSupport) AvailableIn(version string) bool {
	if !o.Supported() || CompareVersions(version, o.Introduced) < 0 {
		return false
	}
	return o.Removed == "" || CompareVersions(version, o.Removed) < 0
}

// DeprecatedIn reports whether the item is deprecated in that OS version.
func (o OSSupport) DeprecatedIn(version string) bool {
	return o.Deprecated != "" && CompareVersions(version, o.Deprecated) >= 0
}

// CompareVersions compares dotted OS versions numerically ("10.13.4" <
// "10.14", "9.0" == "9"), returning -1, 0 or +1. Apple's "all" compares as
// the lowest version; a part that is not a number counts as 0.
func CompareVersions(a, b string) int {
	if a == "all" {
		a = "0"
	}
	if b == "all" {
		b = "0"
	}
	ap, bp := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(ap) || i < len(bp); i++ {
		var x, y uint64
		if i < len(ap) {
			x, _ = strconv.ParseUint(strings.TrimSpace(ap[i]), 10, 64)
		}
		if i < len(bp) {
			y, _ = strconv.ParseUint(strings.TrimSpace(bp[i]), 10, 64)
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}
