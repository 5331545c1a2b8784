package profiles

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// Finding severities.
const (
	SeverityError   = "error"   // a device refuses the profile, or the value is broken
	SeverityWarning = "warning" // a device installs the profile but ignores or mistrusts part of it
)

// Rules a Finding can report. The schema rules are mdm/schema's Rule
// constants, except that its "format" is called "pattern" here.
const (
	RuleUnknownKey         = schema.RuleUnknownKey      // warning: devices ignore keys they do not know
	RuleWrongType          = schema.RuleWrongType       // error
	RuleMissingRequired    = schema.RuleMissingRequired // error
	RuleNotInRangeList     = schema.RuleNotInRangeList  // error
	RuleOutOfRange         = schema.RuleOutOfRange      // error
	RulePattern            = "pattern"                  // error: a string that does not match the key's format
	RuleRepetition         = schema.RuleRepetition      // error
	RuleTooDeep            = schema.RuleTooDeep         // error
	RuleUnknownPayloadType = "unknown-payload-type"     // error: no Apple schema names the PayloadType
	RulePlatform           = "platform"                 // a payload (error) or key (warning) the platform does not support
	RuleUserEnrollment     = "user-enrollment"          // a payload (error) or key (warning) User Enrollment forbids
	RuleSupervisedOnly     = "supervised-only"          // a payload (error) or key (warning) that needs a supervised device
	RuleDuplicateUUID      = "duplicate-uuid"           // error: two payloads (or the profile and a payload) share a PayloadUUID
	RuleEncrypted          = "encrypted"                // warning: EncryptedPayloadContent cannot be linted without the key
)

// Finding is one lint result.
type Finding struct {
	// Severity is SeverityError or SeverityWarning.
	Severity string `json:"severity"`
	// Rule is one of the Rule constants: a stable identifier.
	Rule string `json:"rule"`
	// PayloadType and PayloadIdentifier name the payload the finding is
	// about; the profile's own for a top-level finding.
	PayloadType       string `json:"payload_type,omitempty"`
	PayloadIdentifier string `json:"payload_identifier,omitempty"`
	// Path locates the value, e.g. "PayloadContent[2].ServerURL"; "" or
	// "PayloadContent[2]" for the profile or payload as a whole.
	Path string `json:"path,omitempty"`
	// Message says what is wrong, without the path.
	Message string `json:"message"`
}

// String renders the finding for a lint report line.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Severity)
	b.WriteString(" ")
	b.WriteString(f.Rule)
	if f.Path != "" {
		b.WriteString(" ")
		b.WriteString(f.Path)
	}
	if f.PayloadType != "" {
		b.WriteString(" (")
		b.WriteString(f.PayloadType)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(f.Message)
	return b.String()
}

// LintOptions describe the device a profile is linted for.
type LintOptions struct {
	// Platform is the OS whose rules apply: "iOS", "macOS", "tvOS",
	// "visionOS" or "watchOS" (case-insensitive). Empty means no OS-specific
	// checks: then UserEnrollment and Supervised have no effect either,
	// since Apple's schemas state those rules per OS.
	Platform string
	// UserEnrollment: the device is enrolled with User Enrollment (BYOD).
	UserEnrollment bool
	// Supervised: the device is supervised. When false, supervised-only
	// payloads and keys are reported.
	Supervised bool
}

// Platforms are the OS names LintOptions.Platform accepts.
var Platforms = []string{"iOS", "macOS", "tvOS", "visionOS", "watchOS"}

// NormalizePlatform returns the spelling of a platform name that Apple's
// schemas use ("ios" → "iOS"); ok is false for a name that is not one of
// Platforms.
func NormalizePlatform(name string) (string, bool) {
	for _, p := range Platforms {
		if strings.EqualFold(p, name) {
			return p, true
		}
	}
	return "", false
}

// HasErrors reports whether any finding has error severity.
func HasErrors(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Lint checks a parsed profile against Apple's profile schemas (mdm/schema):
// the top-level keys, then every payload of PayloadContent against the
// common payload keys and its PayloadType's keys (unknown keys, types,
// required keys, rangelists, ranges, formats), then, with a Platform, which
// payloads and keys that OS does not support, User Enrollment forbids or
// need supervision, and finally PayloadUUIDs used twice. An encrypted
// profile's payloads cannot be read, which is reported as a warning.
//
// Findings come in a stable order: the profile's, then each payload's in
// order, then duplicate UUIDs. Lint never fails; a nil p has no findings.
func Lint(p *Parsed, opts LintOptions) []Finding {
	if p == nil {
		return nil
	}
	l := &linter{}
	if opts.Platform != "" {
		os, ok := NormalizePlatform(opts.Platform)
		if !ok {
			l.add(Finding{Severity: SeverityError, Rule: RulePlatform,
				Message: fmt.Sprintf("unknown platform %q: expected one of %s; OS-specific checks were skipped", opts.Platform, strings.Join(Platforms, ", "))})
		} else {
			l.os, l.ue, l.supervised = os, opts.UserEnrollment, opts.Supervised
		}
	}
	l.top(p)
	for i, pl := range p.Payloads {
		l.payload(i, pl)
	}
	l.duplicates(p)
	return l.findings
}

type linter struct {
	findings []Finding

	os             string // "" for no OS-specific checks
	ue, supervised bool

	// current payload, for the findings' PayloadType and PayloadIdentifier
	ptype, pid string
}

func (l *linter) add(f Finding) {
	if f.PayloadType == "" {
		f.PayloadType = l.ptype
	}
	if f.PayloadIdentifier == "" {
		f.PayloadIdentifier = l.pid
	}
	l.findings = append(l.findings, f)
}

func (l *linter) problems(ps []schema.Problem) {
	for _, pr := range ps {
		sev, rule := SeverityError, pr.Rule
		switch pr.Rule {
		case schema.RuleUnknownKey:
			sev = SeverityWarning
		case schema.RuleFormat:
			rule = RulePattern
		}
		l.add(Finding{Severity: sev, Rule: rule, Path: pr.Path, Message: pr.Message})
	}
}

// validate runs the schema validator, OS-aware when a platform is set.
func (l *linter) validate(s *schema.Schema, keys []schema.Key, dict map[string]any, path string) {
	if l.os != "" && s != nil {
		l.problems(s.ValidateFor(l.os, "", keys, dict, path))
		return
	}
	l.problems(schema.ValidateDict(keys, dict, path))
}

// top lints the profile's own keys; PayloadContent is left to payload.
func (l *linter) top(p *Parsed) {
	l.ptype, l.pid = str(p.Top["PayloadType"]), str(p.Top["PayloadIdentifier"])
	s, ok := schema.Profile("TopLevel")
	if !ok {
		return
	}
	_, encrypted := p.Top["EncryptedPayloadContent"]
	keys := make([]schema.Key, 0, len(s.PayloadKeys))
	for _, k := range s.PayloadKeys {
		// Payloads are checked one by one against their own schemas; an
		// encrypted profile has no PayloadContent.
		if k.Name == "PayloadContent" && (encrypted || isArray(p.Top["PayloadContent"])) {
			continue
		}
		keys = append(keys, k)
	}
	dict := make(map[string]any, len(p.Top))
	for k, v := range p.Top {
		if k != "PayloadContent" || !isArray(v) {
			dict[k] = v
		}
	}
	l.validate(s, keys, dict, "")
	if encrypted {
		l.add(Finding{Severity: SeverityWarning, Rule: RuleEncrypted, Path: "EncryptedPayloadContent",
			Message: "the payloads are encrypted to the device (EncryptedPayloadContent) and cannot be linted without its private key"})
	}
	l.support(s, keys, dict, "", "the profile")
}

// payload lints PayloadContent[i].
func (l *linter) payload(i int, pl Payload) {
	path := "PayloadContent[" + strconv.Itoa(i) + "]"
	l.ptype, l.pid = pl.Type(), pl.Identifier()
	common := schema.CommonPayloadKeys()
	t, isString := pl["PayloadType"].(string)
	s, known := schema.Profile(t)
	if !isString || !known || t == "TopLevel" || t == "CommonPayloadKeys" {
		if isString {
			l.add(Finding{Severity: SeverityError, Rule: RuleUnknownPayloadType, Path: path + ".PayloadType",
				Message: fmt.Sprintf("PayloadType %s is not a payload type Apple's schemas describe; only its common payload keys were checked", strconv.Quote(short(t)))})
		}
		// Only the common keys: every other key would be "unknown".
		dict := make(map[string]any, len(common))
		for _, k := range common {
			if v, ok := pl[k.Name]; ok {
				dict[k.Name] = v
			}
		}
		l.problems(schema.ValidateDict(common, dict, path))
		return
	}
	keys := make([]schema.Key, 0, len(common)+len(s.PayloadKeys))
	keys = append(keys, common...)
	for _, k := range s.PayloadKeys {
		// A payload schema that repeats a common key takes precedence.
		dup := false
		for j := range common {
			if common[j].Name == k.Name {
				keys[j], dup = k, true
			}
		}
		if !dup {
			keys = append(keys, k)
		}
	}
	l.validate(s, keys, pl, path)
	l.support(s, keys, pl, path, "payload "+t)
}

// support reports, for the linter's OS, what the schema says the platform
// does not support, User Enrollment forbids, or needs supervision: for the
// payload as a whole, then for each key present whose own rules differ
// from its parent's (a key that merely inherits the payload's rule is not
// reported again).
func (l *linter) support(s *schema.Schema, keys []schema.Key, dict map[string]any, path, what string) {
	if l.os == "" {
		return
	}
	eff := s.EffectivePath(l.os)
	target := path
	if !eff.Supported() {
		l.add(Finding{Severity: SeverityError, Rule: RulePlatform, Path: target,
			Message: fmt.Sprintf("%s is not supported on %s", what, l.os)})
		return // every key would say the same
	}
	if l.ue && forbidsUE(eff) {
		l.add(Finding{Severity: SeverityError, Rule: RuleUserEnrollment, Path: target,
			Message: fmt.Sprintf("%s is not allowed on a User Enrollment", what)})
	}
	if !l.supervised && needsSupervision(eff) {
		l.add(Finding{Severity: SeverityError, Rule: RuleSupervisedOnly, Path: target,
			Message: fmt.Sprintf("%s needs a supervised %s device", what, l.os)})
	}
	l.keySupport(s, keys, dict, path, nil, eff, 1)
}

func (l *linter) keySupport(s *schema.Schema, keys []schema.Key, dict map[string]any, path string, chain []*schema.Key, parent schema.OSSupport, depth int) {
	if depth > schema.MaxDepth {
		return
	}
	named := make(map[string]*schema.Key, len(keys))
	for i := range keys {
		if !keys[i].Wildcard() {
			if _, dup := named[keys[i].Name]; !dup {
				named[keys[i].Name] = &keys[i]
			}
		}
	}
	names := make([]string, 0, len(dict))
	for n := range dict {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := named[n]
		if k == nil {
			continue // unknown or wildcard: nothing more specific to say
		}
		p := joinPath(path, n)
		c := append(chain[:len(chain):len(chain)], k)
		eff := s.EffectivePath(l.os, c...)
		if !eff.Supported() {
			if parent.Supported() {
				l.add(Finding{Severity: SeverityWarning, Rule: RulePlatform, Path: p,
					Message: fmt.Sprintf("key %q is not supported on %s; the device ignores it", n, l.os)})
			}
			continue
		}
		if l.ue && forbidsUE(eff) && !forbidsUE(parent) {
			l.add(Finding{Severity: SeverityWarning, Rule: RuleUserEnrollment, Path: p,
				Message: fmt.Sprintf("key %q is not allowed on a User Enrollment", n)})
		}
		if !l.supervised && needsSupervision(eff) && !needsSupervision(parent) {
			l.add(Finding{Severity: SeverityWarning, Rule: RuleSupervisedOnly, Path: p,
				Message: fmt.Sprintf("key %q takes effect only on a supervised %s device", n, l.os)})
		}
		switch v := dict[n].(type) {
		case map[string]any:
			if k.Type == "<dictionary>" && len(k.Subkeys) > 0 {
				l.keySupport(s, k.Subkeys, v, p, c, eff, depth+1)
			}
		case []any:
			if k.Type == "<array>" && len(k.Subkeys) == 1 && len(k.Subkeys[0].Subkeys) > 0 {
				ek := &k.Subkeys[0]
				ec := append(c[:len(c):len(c)], ek)
				eeff := s.EffectivePath(l.os, ec...)
				for i, e := range v {
					if m, ok := e.(map[string]any); ok {
						l.keySupport(s, ek.Subkeys, m, p+"["+strconv.Itoa(i)+"]", ec, eeff, depth+1)
					}
				}
			}
		}
	}
}

// duplicates reports PayloadUUIDs used more than once in the profile.
func (l *linter) duplicates(p *Parsed) {
	first := map[string]string{}
	if u := str(p.Top["PayloadUUID"]); u != "" {
		first[u] = "PayloadUUID"
	}
	for i, pl := range p.Payloads {
		u := pl.UUID()
		if u == "" {
			continue
		}
		path := "PayloadContent[" + strconv.Itoa(i) + "].PayloadUUID"
		if prev, dup := first[u]; dup {
			l.ptype, l.pid = pl.Type(), pl.Identifier()
			l.add(Finding{Severity: SeverityError, Rule: RuleDuplicateUUID, Path: path,
				Message: fmt.Sprintf("PayloadUUID %s is already used at %s; every payload needs its own", strconv.Quote(short(u)), prev)})
			continue
		}
		first[u] = path
	}
}

func forbidsUE(o schema.OSSupport) bool {
	return o.UserEnrollment != nil && o.UserEnrollment.Mode == "forbidden"
}

func needsSupervision(o schema.OSSupport) bool { return o.Supervised != nil && *o.Supervised }

func str(v any) string {
	s, _ := v.(string)
	return s
}

func isArray(v any) bool {
	_, ok := v.([]any)
	return ok
}

// short bounds a value quoted in a message.
func short(s string) string {
	const maxQuoted = 64
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "…"
	}
	return s
}

// joinPath appends a key to a path the way mdm/schema does: a dot for plain
// names, a quoted index otherwise.
func joinPath(path, name string) string {
	plain := name != ""
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}
