package apps

import (
	"fmt"
	"strings"

	"github.com/mockmdm/mockmdm/store"
)

// Filter is an assignment filter on the device's ownership, in the syntax
// seed 002's comments use: device.deviceOwnership -eq "Corporate" (or
// "Personal"), optionally in parentheses, optionally with -ne.
type Filter struct {
	// Negate is true for -ne.
	Negate bool `json:"negate,omitempty"`
	// Ownership is store.OwnershipCorporate or store.OwnershipPersonal.
	Ownership string `json:"ownership"`
}

// maxFilterLen bounds a filter rule: the longest valid one is under 60.
const maxFilterLen = 256

// ParseFilter reads an ownership filter rule. It accepts exactly
//
//	[(…(] device.deviceOwnership -eq|-ne "Corporate"|"Personal" [)…)]
//
// with balanced parentheses around the whole rule, the property and
// operator matched case-insensitively (as the filter language does), the
// value in straight or typographic double quotes (a rule pasted from a web
// page, as in seed 002, has “Corporate”). Anything else — another property,
// another operator, -and/-or, an unquoted or unknown value — is refused
// with what was expected. The empty rule is the zero Filter and ok=false.
func ParseFilter(rule string) (f Filter, ok bool, err error) {
	if len(rule) > maxFilterLen {
		return Filter{}, false, fmt.Errorf("filter is %d bytes long; an ownership filter is one rule such as device.deviceOwnership -eq \"Corporate\"", len(rule))
	}
	s := strings.TrimSpace(rule)
	if s == "" {
		return Filter{}, false, nil
	}
	for strings.HasPrefix(s, "(") {
		if !strings.HasSuffix(s, ")") {
			return Filter{}, false, fmt.Errorf("filter %q: unbalanced parentheses", rule)
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if strings.ContainsAny(s, "()") {
		return Filter{}, false, fmt.Errorf("filter %q: unbalanced parentheses; give one rule such as (device.deviceOwnership -eq \"Corporate\")", rule)
	}
	fields := strings.Fields(s)
	if len(fields) != 3 {
		for _, w := range fields {
			if lw := strings.ToLower(w); lw == "-and" || lw == "-or" || lw == "-not" {
				return Filter{}, false, fmt.Errorf("filter %q: %s is not supported; an assignment takes one ownership rule, so use two assignments instead", rule, w)
			}
		}
		return Filter{}, false, fmt.Errorf("filter %q: want property, operator and quoted value, such as device.deviceOwnership -eq \"Corporate\"", rule)
	}
	prop, op, val := fields[0], strings.ToLower(fields[1]), fields[2]
	if !strings.EqualFold(prop, "device.deviceOwnership") {
		return Filter{}, false, fmt.Errorf("filter %q: property %q is not supported; only device.deviceOwnership is", rule, prop)
	}
	switch op {
	case "-eq":
	case "-ne":
		f.Negate = true
	default:
		return Filter{}, false, fmt.Errorf("filter %q: operator %q is not supported; use -eq or -ne", rule, fields[1])
	}
	unq, quoted := unquote(val)
	if !quoted {
		return Filter{}, false, fmt.Errorf("filter %q: the value %s must be in double quotes, \"Corporate\" or \"Personal\"", rule, val)
	}
	switch strings.ToLower(unq) {
	case "corporate":
		f.Ownership = store.OwnershipCorporate
	case "personal":
		f.Ownership = store.OwnershipPersonal
	default:
		return Filter{}, false, fmt.Errorf("filter %q: ownership %q is not one of \"Corporate\", \"Personal\"", rule, unq)
	}
	return f, true, nil
}

func unquote(v string) (string, bool) {
	for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}} {
		if len(v) >= len(q[0])+len(q[1]) && strings.HasPrefix(v, q[0]) && strings.HasSuffix(v, q[1]) {
			inner := v[len(q[0]) : len(v)-len(q[1])]
			if !strings.ContainsAny(inner, `"“”`) {
				return inner, true
			}
		}
	}
	return "", false
}

// Match reports whether a device with this recorded ownership passes the
// filter. An unrecorded ownership passes no -eq rule and every -ne rule.
func (f Filter) Match(ownership string) bool {
	return (ownership == f.Ownership) != f.Negate
}

// String is the rule in its canonical spelling.
func (f Filter) String() string {
	op := "-eq"
	if f.Negate {
		op = "-ne"
	}
	v := "Corporate"
	if f.Ownership == store.OwnershipPersonal {
		v = "Personal"
	}
	return fmt.Sprintf("device.deviceOwnership %s %q", op, v)
}
