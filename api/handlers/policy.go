package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// Enqueue-time policy: what each enrollment allows.
//
// Apple's schemas state, per command and per profile payload and key, the
// rules a device applies (supportedOS.<os>.userenrollment.mode, supervised,
// requiresdep). A device that gets a command its enrollment does not allow
// answers with an error, so by then the administrator has queued something
// that can never work. POST /v1/commands refuses it up front instead, for
// every target, naming the rule and the schema file it comes from, and
// queues nothing for any target (all or nothing, like checkTargets).
//
// The status is 403 Forbidden, not 422: the command itself is well formed
// and valid for other enrollments (422 would say the content is wrong); it
// is this target's enrollment that forbids it. There is no "force" for User
// Enrollment: the device would refuse the command anyway.
//
// What is known about an enrollment decides which rules apply:
//   - User Enrollment (Management.Mode "user-enrollment", or a channel type
//     of a User Enrollment) is always known, from the profile or the
//     program, so userenrollment.mode "forbidden" always applies.
//   - Supervision and ADE are recorded only by an enrollment program
//     (Management.Program set, other than "profile"). A plain /enroll
//     profile enrollment records neither, and the virtual or real device
//     may well be supervised (or came through a real ADE set-up), so the
//     supervised and requiresdep rules apply only where a program recorded
//     the enrollment.
//
// Wipe and ownership: EraseDevice is refused for User Enrollment (the
// schema's rule, device.erase.yaml), which is also what seed 002 reports
// ("an administrator can only use Microsoft Intune to retire the device and
// not to wipe the device") and seed 000 explains ("Users can factory reset
// the personal partition. Administrators can't.", the BYOD section on User
// enrollment). For a device enrollment it is allowed whatever the recorded
// ownership: seed 002's comment 16 observes that for a personally owned
// device enrolled with "Secure entire device" the wipe action is there
// ("This ability appears when personally owned and secure entire device
// selected"), and seeds 000/002 name no rule that removes it from a
// corporate device. A User Enrollment is retired instead
// (POST /v1/enrollments/{id}/retire).

// PolicyRefusal is one target's refusal by an enrollment rule.
type PolicyRefusal struct {
	EnrollmentID string
	// Rule is "user-enrollment", "supervised-only" or "requires-ade".
	Rule string
	// Source is where the rule comes from, e.g. "apple-schema
	// mdm/commands/device.erase.yaml: supportedOS.iOS.userenrollment.mode forbidden".
	Source string
	// Message says what is refused and why, with the source.
	Message string
}

// Policy rules.
const (
	RuleUserEnrollment = "user-enrollment"
	RuleSupervisedOnly = "supervised-only"
	RuleRequiresADE    = "requires-ade"
)

// PolicyError refuses an enqueue: every refused target, in request order.
type PolicyError struct {
	Refusals []PolicyRefusal
}

func (e *PolicyError) Error() string {
	msgs := make([]string, 0, len(e.Refusals))
	for i, r := range e.Refusals {
		if i == 5 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(e.Refusals)-5))
			break
		}
		msgs = append(msgs, r.Message)
	}
	return strings.Join(msgs, "; ") + "; nothing was queued"
}

// HTTPStatus makes PolicyError an httperr status carrier (403).
func (e *PolicyError) HTTPStatus() int { return http.StatusForbidden }

// EnrollmentOS is the OS name Apple's schemas use for an enrollment's
// device, from its ProductName or Model ("iPhone15,2" → iOS, "Mac14,2" →
// macOS); iOS when unknown, since iPhone and iPad are the devices the
// enrollment programs serve.
func EnrollmentOS(e *store.Enrollment) string {
	p := e.ProductName + " " + e.Model
	switch {
	case strings.Contains(p, "Mac"):
		return "macOS"
	case strings.Contains(p, "AppleTV"):
		return "tvOS"
	case strings.Contains(p, "Watch"):
		return "watchOS"
	case strings.Contains(p, "RealityDevice"):
		return "visionOS"
	}
	return "iOS"
}

// IsUserEnrollment reports whether the enrollment is a User Enrollment.
func IsUserEnrollment(e *store.Enrollment) bool {
	return e.Management.Mode == store.ModeUserEnrollment || mdm.EnrollType(e.Type).IsUserEnrollment()
}

// CommandPolicy checks one command against what one enrollment allows and
// returns the refusal, or nil when the enrollment allows it. A command no
// schema describes is not checked: the device decides.
func CommandPolicy(e *store.Enrollment, cmd *mdm.Command) *PolicyRefusal {
	s, ok := schema.Command(cmd.RequestType)
	if !ok {
		return nil
	}
	os := EnrollmentOS(e)
	eff := s.EffectivePath(os)
	ue := IsUserEnrollment(e)
	known := e.Management.Program != "" && e.Management.Program != store.ProgramProfile
	src := func(rule string) string {
		return fmt.Sprintf("apple-schema %s: supportedOS.%s.%s", s.File, os, rule)
	}
	// The message is "<what> (<source>): <why this target>", so the rule
	// and its source come first, as a person reads them.
	refuse := func(rule, source, what, why string) *PolicyRefusal {
		return &PolicyRefusal{EnrollmentID: e.ID, Rule: rule, Source: source,
			Message: what + " (" + source + "): " + why}
	}
	switch {
	case ue && eff.UserEnrollment != nil && eff.UserEnrollment.Mode == "forbidden":
		why := e.ID + " is a User Enrollment"
		if cmd.RequestType == "EraseDevice" {
			why += "; retire it instead (POST /v1/enrollments/{id}/retire)"
		}
		return refuse(RuleUserEnrollment, src("userenrollment.mode forbidden"),
			cmd.RequestType+" is forbidden for User Enrollment", why)
	case known && !e.Management.Supervised && eff.Supervised != nil && *eff.Supervised:
		return refuse(RuleSupervisedOnly, src("supervised true"),
			cmd.RequestType+" needs a supervised device", e.ID+" is not supervised")
	case known && e.Management.Program != store.ProgramADE && eff.RequiresDEP != nil && *eff.RequiresDEP:
		return refuse(RuleRequiresADE, src("requiresdep true"),
			cmd.RequestType+" needs a device enrolled through Automated Device Enrollment",
			fmt.Sprintf("%s was enrolled by %q", e.ID, e.Management.Program))
	}
	if cmd.RequestType == "InstallProfile" {
		return profilePolicy(e, cmd, os, ue, known)
	}
	return nil
}

// profilePolicy lints an InstallProfile's payload with the enrollment's
// options and refuses it for the first payload User Enrollment forbids or
// that needs supervision. Payloads that fail to parse are left to the
// device (and to the lint report the enqueue answer carries).
func profilePolicy(e *store.Enrollment, cmd *mdm.Command, os string, ue, known bool) *PolicyRefusal {
	var c struct{ Command struct{ Payload []byte } }
	if err := plist.Unmarshal(cmd.Raw, &c); err != nil || len(c.Command.Payload) == 0 {
		return nil
	}
	p, err := profiles.Parse(c.Command.Payload)
	if err != nil {
		return nil
	}
	// Unknown supervision counts as supervised: only a recorded
	// unsupervised enrollment refuses supervised-only payloads.
	opts := profiles.LintOptions{Platform: os, UserEnrollment: ue, Supervised: !known || e.Management.Supervised}
	for _, f := range profiles.Lint(p, opts) {
		if f.Severity != profiles.SeverityError {
			continue
		}
		var rule, what, why, field string
		switch f.Rule {
		case profiles.RuleUserEnrollment:
			rule, what, why, field = RuleUserEnrollment, "is forbidden for User Enrollment", e.ID+" is a User Enrollment", "userenrollment.mode forbidden"
		case profiles.RuleSupervisedOnly:
			rule, what, why, field = RuleSupervisedOnly, "needs a supervised device", e.ID+" is not supervised", "supervised true"
		default:
			continue
		}
		file := "mdm/profiles (no schema for " + f.PayloadType + ")"
		if s, ok := schema.Profile(f.PayloadType); ok {
			file = s.File
		}
		source := fmt.Sprintf("apple-schema %s: supportedOS.%s.%s", file, os, field)
		return &PolicyRefusal{EnrollmentID: e.ID, Rule: rule, Source: source,
			Message: fmt.Sprintf("InstallProfile: payload %s at %s %s (%s): %s", f.PayloadType, f.Path, what, source, why)}
	}
	return nil
}

// checkPolicy applies CommandPolicy to every target and refuses the whole
// request if any target refuses. checkTargets has already made sure every
// target exists.
func (a *API) checkPolicy(ctx context.Context, cmd *mdm.Command, ids []string) error {
	byID := map[string]*store.Enrollment{}
	if len(ids) > lookupOneByOne {
		all, err := a.store.ListEnrollments(ctx)
		if err != nil {
			return err
		}
		for _, e := range all {
			byID[e.ID] = e
		}
	}
	var refusals []PolicyRefusal
	for _, id := range ids {
		e := byID[id]
		if e == nil {
			var err error
			if e, err = a.store.GetEnrollment(ctx, id); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue // checkTargets reports it
				}
				return err
			}
		}
		if r := CommandPolicy(e, cmd); r != nil {
			refusals = append(refusals, *r)
		}
	}
	if len(refusals) > 0 {
		return &PolicyError{Refusals: refusals}
	}
	return nil
}
