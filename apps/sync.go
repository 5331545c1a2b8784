package apps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// command builds the app's install command with the existing command
// builder (mdm.CommandFromPlist over the Command dictionary) and checks it
// against Apple's schema: InstallApplication with iTunesStoreID and
// Options.PurchaseMethod 1 (a VPP license) for a VPP app,
// InstallApplication with ManifestURL for a LOB app, InstallProfile with a
// com.apple.webClip.managed payload for a web link.
func (a *App) command(uuid string) (*mdm.Command, error) {
	var dict map[string]any
	switch a.Kind {
	case KindVPP:
		dict = map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": a.ITunesStoreID,
			"Options": map[string]any{"PurchaseMethod": 1}}
	case KindLOB:
		dict = map[string]any{"RequestType": "InstallApplication", "ManifestURL": a.ManifestURL}
	case KindWebLink:
		p, err := a.webClipProfile()
		if err != nil {
			return nil, err
		}
		dict = map[string]any{"RequestType": "InstallProfile", "Payload": p}
	default:
		return nil, fmt.Errorf("unknown kind %q", a.Kind)
	}
	s, ok := schema.Command(dict["RequestType"].(string))
	if !ok {
		return nil, fmt.Errorf("no schema for %s", dict["RequestType"])
	}
	keys := append([]schema.Key{{Name: "RequestType", Type: "<string>", Presence: "required"}}, s.PayloadKeys...)
	if probs := schema.ValidateDict(keys, dict, "Command"); len(probs) > 0 {
		return nil, fmt.Errorf("the %s command does not pass Apple's schema (%s): %s", dict["RequestType"], s.File, probs[0].String())
	}
	raw, err := mdm.MarshalPlist(map[string]any{"CommandUUID": uuid, "Command": dict})
	if err != nil {
		return nil, err
	}
	return mdm.CommandFromPlist(raw, func() string { return uuid })
}

// webClipProfile is the web link as a profile holding one
// com.apple.webClip.managed payload, linted against Apple's schemas.
func (a *App) webClipProfile() ([]byte, error) {
	id := webClipIdentifier + a.ID
	p := map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": id,
		"PayloadUUID": stableUUID("profile " + a.ID), "PayloadDisplayName": a.Name,
		"PayloadContent": []any{map[string]any{
			"PayloadType": "com.apple.webClip.managed", "PayloadVersion": 1,
			"PayloadIdentifier": id + ".clip", "PayloadUUID": stableUUID("clip " + a.ID),
			"PayloadDisplayName": a.Name, "URL": a.URL, "Label": a.Name, "IsRemovable": true,
		}},
	}
	raw, err := mdm.MarshalPlist(p)
	if err != nil {
		return nil, err
	}
	parsed, err := profiles.Parse(raw)
	if err != nil {
		return nil, err
	}
	for _, f := range profiles.Lint(parsed, profiles.LintOptions{Platform: "iOS", UserEnrollment: true}) {
		if f.Severity == profiles.SeverityError {
			return nil, fmt.Errorf("the web clip profile does not pass Apple's schema: %s", f)
		}
	}
	return raw, nil
}

// stableUUID derives a UUID-shaped string from a name, so a web link's
// profile keeps its PayloadUUIDs from one sync to the next.
func stableUUID(name string) string {
	var h [16]byte
	x := uint64(14695981039346656037)
	for i := range h {
		for _, c := range []byte(name) {
			x ^= uint64(c) + uint64(i)
			x *= 1099511628211
		}
		h[i] = byte(x >> 24)
	}
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:]))
}

// SyncReport says what a sync did.
type SyncReport struct {
	// Queued counts install commands queued; Failed counts installs the
	// licensing rule failed; Excluded counts devices a filter kept out;
	// Available counts available-intent offers.
	Queued, Failed, Excluded, Available int
}

// Sync computes, for every app and assignment, each enrolled device
// channel of each user in the assigned group, and decides: excluded when
// the ownership filter says no; failed with ErrorLicenseMismatch for a
// device-licensed VPP app on a User Enrollment (recorded, never queued);
// available (recorded, not pushed) for an available assignment; else the
// install command is queued through enq. A device that already has a
// pending, installed or failed status for the app is left alone, so
// syncing twice queues nothing twice; excluded and available ones are
// decided again (ownership may have changed). The first assignment that
// reaches a device wins, required before available.
func (s *Service) Sync(ctx context.Context, enq Enqueuer) (*SyncReport, error) {
	apps, err := s.Apps(ctx)
	if err != nil {
		return nil, err
	}
	enrollments, err := s.st.ListEnrollments(ctx)
	if err != nil {
		return nil, err
	}
	byUser := map[string][]*store.Enrollment{}
	for _, e := range enrollments {
		if e.Management.User == "" || !e.Enrolled || e.CheckedOut || !mdm.EnrollType(e.Type).IsDeviceChannel() {
			continue
		}
		u := strings.ToLower(e.Management.User)
		byUser[u] = append(byUser[u], e)
	}
	rep := &SyncReport{}
	for i := range apps {
		if err := s.syncApp(ctx, &apps[i], byUser, enq, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (s *Service) syncApp(ctx context.Context, a *App, byUser map[string][]*store.Enrollment, enq Enqueuer, rep *SyncReport) error {
	statuses, err := s.statuses(ctx, a.ID)
	if err != nil {
		return err
	}
	decided := map[string]bool{}
	// Required assignments first: they win over available ones.
	order := make([]Assignment, 0, len(a.Assignments))
	for _, as := range a.Assignments {
		if as.Intent == IntentRequired {
			order = append(order, as)
		}
	}
	for _, as := range a.Assignments {
		if as.Intent != IntentRequired {
			order = append(order, as)
		}
	}
	for _, as := range order {
		f, hasFilter, err := ParseFilter(as.Filter)
		if err != nil {
			return invalid("app %s: %v", a.ID, err)
		}
		members, err := s.dir.GroupMembers(ctx, as.Group)
		if err != nil {
			s.log.WarnContext(ctx, "app assignment group unreadable", "app", a.ID, "group", as.Group, "err", err)
			continue
		}
		for _, upn := range members {
			for _, e := range byUser[strings.ToLower(upn)] {
				if decided[e.ID] {
					continue
				}
				st := Status{EnrollmentID: e.ID, User: e.Management.User, Ownership: e.Management.Ownership,
					Mode: e.Management.Mode, UpdatedAt: s.now().UTC()}
				prev, had := statuses[e.ID]
				if had && (prev.State == StatePending || prev.State == StateInstalled || prev.State == StateFailed) {
					decided[e.ID] = true
					continue
				}
				if hasFilter && !f.Match(e.Management.Ownership) {
					if !had || prev.State != StateExcluded {
						st.State, st.Reason = StateExcluded, fmt.Sprintf("the assignment to %s has the filter %s and the device's ownership is %q", as.Group, f, ownershipName(e.Management.Ownership))
						statuses[e.ID] = st
						rep.Excluded++
					}
					continue // another assignment may still reach it
				}
				decided[e.ID] = true
				ue := e.Management.Mode == store.ModeUserEnrollment || mdm.EnrollType(e.Type).IsUserEnrollment()
				switch {
				case a.Kind == KindVPP && a.Licensing == LicenseDevice && ue:
					st.State, st.ErrorCode = StateFailed, ErrorLicenseMismatch
					st.Reason = "a device-licensed VPP app cannot install on a User Enrollment: the managed partition belongs to the Managed Apple ID, so it needs a user license (seed 002); assign it with user licensing and the filter device.deviceOwnership -eq \"Personal\""
					rep.Failed++
				case as.Intent == IntentAvailable:
					st.State, st.Reason = StateAvailable, "offered in the Company Portal (available intent); nothing is pushed"
					rep.Available++
				default:
					cmd, err := a.command(s.newUUID())
					if err != nil {
						return errors.Join(err, s.putStatuses(ctx, a.ID, statuses))
					}
					if err := enq.Enqueue(ctx, cmd, e.ID); err != nil {
						if code := httperr.StatusOf(err); code < 400 || code >= 500 {
							// Keep what was queued so far, then fail.
							return errors.Join(err, s.putStatuses(ctx, a.ID, statuses))
						}
						// A refusal (the enrollment's policy): recorded, not queued.
						st.State, st.RequestType, st.Reason = StateFailed, cmd.RequestType, httperr.ReasonOf(err)
						rep.Failed++
						break
					}
					st.State, st.CommandUUID, st.RequestType = StatePending, cmd.CommandUUID, cmd.RequestType
					st.Reason = "required by the assignment to " + as.Group
					rep.Queued++
				}
				statuses[e.ID] = st
			}
		}
	}
	return s.putStatuses(ctx, a.ID, statuses)
}

func ownershipName(o string) string {
	if o == "" {
		return "not recorded"
	}
	return o
}

func (s *Service) statuses(ctx context.Context, appID string) (map[string]Status, error) {
	out := map[string]Status{}
	b, err := s.st.GetDocument(ctx, docStatus, appID)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) putStatuses(ctx context.Context, appID string, m map[string]Status) error {
	if len(m) > maxStatusPerApp {
		return fmt.Errorf("app %s: %d statuses; at most %d", appID, len(m), maxStatusPerApp)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.st.PutDocument(ctx, docStatus, appID, b)
}

// Status returns the app's install status on each device, ordered by
// enrollment ID. Pending installs are brought up to date from the command
// queue first: acknowledged → installed, an error → failed with the
// device's first ErrorChain code and its State/RejectionReason.
func (s *Service) Status(ctx context.Context, appID string) ([]Status, error) {
	if _, err := s.App(ctx, appID); err != nil {
		return nil, err
	}
	m, err := s.statuses(ctx, appID)
	if err != nil {
		return nil, err
	}
	changed := false
	for id, st := range m {
		if st.State != StatePending || st.CommandUUID == "" {
			continue
		}
		items, err := s.st.CommandItems(ctx, st.CommandUUID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		for _, it := range items {
			if it.EnrollmentID != id || !store.IsFinal(it.Status) {
				continue
			}
			res := decodeResult(it.Result)
			st.DeviceState, st.RejectionReason = res.State, res.RejectionReason
			switch {
			case it.Status == store.CommandAcknowledged && res.RejectionReason == "":
				st.State, st.Reason = StateInstalled, "the device acknowledged the install"
			default:
				st.State = StateFailed
				st.Reason = "the device answered " + it.Status
				if len(res.ErrorChain) > 0 {
					st.ErrorCode = strconv.Itoa(res.ErrorChain[0].ErrorCode)
					st.Reason += ": " + res.ErrorChain[0].USEnglishDescription
					if st.Reason[len(st.Reason)-2:] == ": " {
						st.Reason += res.ErrorChain[0].LocalizedDescription
					}
				}
				if res.RejectionReason != "" {
					st.Reason += " (RejectionReason " + res.RejectionReason + ")"
				}
			}
			st.UpdatedAt = it.UpdatedAt
			m[id] = st
			changed = true
		}
	}
	if changed {
		if err := s.putStatuses(ctx, appID, m); err != nil {
			return nil, err
		}
	}
	out := make([]Status, 0, len(m))
	for _, id := range sortedKeys(m) {
		out = append(out, m[id])
	}
	return out, nil
}

type result struct {
	State           string
	RejectionReason string
	ErrorChain      []mdm.ErrorChainItem
}

// decodeResult reads the keys Status needs from a device's answer;
// whatever does not decode is left empty.
func decodeResult(raw []byte) result {
	var r result
	if len(raw) > 0 {
		_ = plist.Unmarshal(raw, &r)
	}
	return r
}
