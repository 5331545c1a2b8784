package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/api"
)

// Command statuses the API reports (api.CommandResult.Status).
var (
	finalStatuses = []string{"Acknowledged", "Error", "CommandFormatError"}
	allStatuses   = []string{"Pending", "NotNow", "Acknowledged", "Error", "CommandFormatError"}
)

// expectFields are an expect step's keys. "enrollment." and "result."
// take a dotted path into the API's JSON: enrollment.type,
// enrollment.serial_number, result.QueryResponses.OSVersion…, so a field
// the API gains later is assertable without a change here.
var expectFields = []string{"command", "status", "within", "result.", "device", "enrollment.", "enrolled",
	"profile_installed", "profile_absent", "transcript_contains", "queue_empty", "response", "body."}

// commandOnly and deviceOnly keys need a command or a device to be about.
var (
	commandOnly = []string{"status", "within", "result."}
	deviceOnly  = []string{"enrollment.", "enrolled", "profile_installed", "profile_absent", "transcript_contains", "queue_empty"}
	// responseOnly keys are about the answer of an api step (response: NAME).
	responseOnly = []string{"body."}
)

// defaultWithin is how long a command assertion waits when it says not.
const defaultWithin = 10 * time.Second

type fieldWant struct {
	path string
	want any
}

type expectAction struct {
	command    string
	status     string
	within     time.Duration
	results    []fieldWant
	device     string
	fields     []fieldWant
	enrolled   *bool
	installed  []string
	absent     []string
	transcript []string
	queueEmpty *bool
	response   string
	bodies     []fieldWant
}

func (p *parser) expectStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field); err != nil {
		return nil, err
	}
	em, order, err := p.mapping(m[KindExpect].value, field, expectFields...)
	if err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, p.errf(deref(m[KindExpect].value), field, "asserts nothing (give command with status, or device with enrollment.FIELD, profile_installed…)")
	}
	a := &expectAction{within: defaultWithin}
	if f, ok := em["command"]; ok {
		if a.command, err = p.name(f.value, join(field, "command")); err != nil {
			return nil, err
		}
		if !p.commands[a.command] {
			return nil, p.errf(deref(f.value), join(field, "command"), "no command %q was queued by an earlier step (name one with as:; named so far: %s)", a.command, known(p.commands))
		}
	}
	if f, ok := em["device"]; ok {
		if a.device, err = p.deviceRef(f.value, join(field, "device")); err != nil {
			return nil, err
		}
	}
	if f, ok := em["response"]; ok {
		if a.response, err = p.name(f.value, join(field, "response")); err != nil {
			return nil, err
		}
		if !p.responses[a.response] {
			return nil, p.errf(deref(f.value), join(field, "response"), "no api step kept an answer as %q (name one with as:; named so far: %s)", a.response, known(p.responses))
		}
	}
	for _, k := range order {
		f := em[k]
		kf := join(field, k)
		if a.command == "" && allowedKey(commandOnly, k) {
			return nil, p.errf(f.key, kf, "is about a command: add command: NAME (a name given with as:)")
		}
		if a.device == "" && allowedKey(deviceOnly, k) {
			return nil, p.errf(f.key, kf, "is about a device: add device: NAME")
		}
		if a.response == "" && allowedKey(responseOnly, k) {
			return nil, p.errf(f.key, kf, "is about the answer of an api step: add response: NAME (a name given with as:)")
		}
		switch {
		case k == "command" || k == "device" || k == "response":
		case strings.HasPrefix(k, "body."):
			v, err := p.value(f.value, kf, 0)
			if err != nil {
				return nil, err
			}
			if err := p.checkRefsTree(f.value, kf, 0); err != nil {
				return nil, err
			}
			a.bodies = append(a.bodies, fieldWant{strings.TrimPrefix(k, "body."), v})
		case k == "status":
			if a.status, err = p.str(f.value, kf); err != nil {
				return nil, err
			}
			if !slices.Contains(allStatuses, a.status) {
				return nil, p.errf(deref(f.value), kf, "%q: a command status is one of %s", clip(a.status), strings.Join(allStatuses, ", "))
			}
		case k == "within":
			if a.within, err = p.duration(f.value, kf, maxWithin); err != nil {
				return nil, err
			}
		case strings.HasPrefix(k, "result."):
			v, err := p.value(f.value, kf, 0)
			if err != nil {
				return nil, err
			}
			if err := p.checkRefsTree(f.value, kf, 0); err != nil {
				return nil, err
			}
			a.results = append(a.results, fieldWant{strings.TrimPrefix(k, "result."), v})
		case strings.HasPrefix(k, "enrollment."):
			v, err := p.value(f.value, kf, 0)
			if err != nil {
				return nil, err
			}
			if err := p.checkRefsTree(f.value, kf, 0); err != nil {
				return nil, err
			}
			a.fields = append(a.fields, fieldWant{strings.TrimPrefix(k, "enrollment."), v})
		case k == "enrolled" || k == "queue_empty":
			b, err := p.boolean(f.value, kf)
			if err != nil {
				return nil, err
			}
			if k == "enrolled" {
				a.enrolled = &b
			} else {
				a.queueEmpty = &b
			}
		case k == "profile_installed":
			if a.installed, err = p.strList(f.value, kf); err != nil {
				return nil, err
			}
		case k == "profile_absent":
			if a.absent, err = p.strList(f.value, kf); err != nil {
				return nil, err
			}
		case k == "transcript_contains":
			if a.transcript, err = p.strList(f.value, kf); err != nil {
				return nil, err
			}
		}
	}
	if a.command != "" && a.status == "" && len(a.results) == 0 {
		return nil, p.errf(em["command"].key, join(field, "status"), "missing: what should command %q have come to? (status: Acknowledged, or result.PATH)", a.command)
	}
	if a.response != "" && len(a.bodies) == 0 {
		return nil, p.errf(em["response"].key, field, "asserts nothing about answer %q (give body.PATH: VALUE)", a.response)
	}
	if a.command == "" && a.response == "" && len(order) == 1 {
		return nil, p.errf(em["device"].key, field, "asserts nothing about device %q (give enrollment.FIELD, enrolled, profile_installed, profile_absent, transcript_contains or queue_empty)", a.device)
	}
	return a, nil
}

func (a *expectAction) summary() string {
	var parts []string
	if a.command != "" {
		s := "command " + a.command
		if a.device != "" {
			s += " on " + a.device
		}
		if a.status != "" {
			s += fmt.Sprintf(" %s within %s", a.status, a.within)
		}
		for _, f := range a.results {
			s += fmt.Sprintf(", result.%s = %v", f.path, show(f.want))
		}
		parts = append(parts, s)
	} else if a.device != "" {
		parts = append(parts, "device "+a.device)
	}
	if a.response != "" {
		s := "answer " + a.response
		for _, f := range a.bodies {
			s += fmt.Sprintf(", body.%s = %v", f.path, show(f.want))
		}
		parts = append(parts, s)
	}
	for _, f := range a.fields {
		parts = append(parts, fmt.Sprintf("enrollment.%s = %v", f.path, show(f.want)))
	}
	if a.enrolled != nil {
		parts = append(parts, fmt.Sprintf("enrolled %v", *a.enrolled))
	}
	if len(a.installed) > 0 {
		parts = append(parts, "profile installed "+strings.Join(a.installed, ", "))
	}
	if len(a.absent) > 0 {
		parts = append(parts, "profile absent "+strings.Join(a.absent, ", "))
	}
	if len(a.transcript) > 0 {
		parts = append(parts, "transcript contains "+strings.Join(a.transcript, ", "))
	}
	if a.queueEmpty != nil {
		parts = append(parts, fmt.Sprintf("queue empty %v", *a.queueEmpty))
	}
	return "expect " + strings.Join(parts, "; ")
}

func (a *expectAction) run(ctx context.Context, r *run) error {
	if a.command != "" {
		if err := a.checkCommand(ctx, r); err != nil {
			return err
		}
	}
	if a.response != "" {
		doc, err := asJSON(r.responses[a.response].Body)
		if err != nil {
			return err
		}
		for _, f := range a.bodies {
			if err := compareAt(doc, f, a.response+".body", r); err != nil {
				return err
			}
		}
	}
	if a.device == "" {
		return nil
	}
	ds := r.devices[a.device]
	if a.enrolled != nil && ds.dev.IsEnrolled() != *a.enrolled {
		return &Mismatch{What: "device " + a.device + " enrolled", Expected: strconv.FormatBool(*a.enrolled), Seen: strconv.FormatBool(ds.dev.IsEnrolled())}
	}
	if len(a.installed) > 0 || len(a.absent) > 0 {
		var have []string
		for _, p := range ds.dev.InstalledProfiles() {
			have = append(have, p.Identifier)
		}
		for _, id := range a.installed {
			if !slices.Contains(have, id) {
				return &Mismatch{What: "profiles on " + a.device, Expected: fmt.Sprintf("%q installed", id), Seen: listOrNone(have)}
			}
		}
		for _, id := range a.absent {
			if slices.Contains(have, id) {
				return &Mismatch{What: "profiles on " + a.device, Expected: fmt.Sprintf("%q absent", id), Seen: listOrNone(have)}
			}
		}
	}
	if len(a.fields) == 0 && len(a.transcript) == 0 && a.queueEmpty == nil {
		return nil
	}
	id, err := r.enrollmentID(a.device)
	if err != nil {
		return err
	}
	if len(a.fields) > 0 {
		e, err := r.target.Client.GetEnrollment(ctx, id)
		if err != nil {
			return fmt.Errorf("reading enrollment %s: %w", id, err)
		}
		doc, err := asJSON(e)
		if err != nil {
			return err
		}
		for _, f := range a.fields {
			if err := compareAt(doc, f, "enrollment", r); err != nil {
				return err
			}
		}
	}
	if len(a.transcript) > 0 {
		seen, err := r.messageTypes(ctx, id)
		if err != nil {
			return err
		}
		for _, mt := range a.transcript {
			if !slices.Contains(seen, mt) {
				return &Mismatch{What: "transcript of " + a.device, Expected: "a " + mt + " message", Seen: listOrNone(seen)}
			}
		}
	}
	if a.queueEmpty != nil {
		q, err := r.target.Client.Queue(ctx, id)
		if err != nil {
			return fmt.Errorf("reading the queue of %s: %w", id, err)
		}
		if (len(q.Items) == 0) != *a.queueEmpty {
			var items []string
			for _, it := range q.Items {
				items = append(items, it.RequestType+" "+it.Status)
			}
			want := "an empty queue"
			if !*a.queueEmpty {
				want = "queued commands"
			}
			return &Mismatch{What: "queue of " + a.device, Expected: want, Seen: listOrNone(items)}
		}
	}
	return nil
}

// checkCommand waits, at most within, for the command to reach the
// expected status. A final status is awaited with the API's long-poll; a
// passing one (Pending, NotNow) is read until it shows or time is up.
func (a *expectAction) checkCommand(ctx context.Context, r *run) error {
	uuid := r.commands[a.command]
	var target string
	if a.device != "" {
		id, err := r.enrollmentID(a.device)
		if err != nil {
			return err
		}
		target = id
	}
	deadline := time.Now().Add(a.within)
	var st *api.CommandStatus
	for {
		left := time.Until(deadline)
		wait := time.Duration(0)
		if a.status == "" || slices.Contains(finalStatuses, a.status) {
			wait = max(left, 0)
		}
		var err error
		cctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
		st, err = r.target.Client.GetCommand(cctx, uuid, wait)
		cancel()
		if err != nil {
			return fmt.Errorf("reading command %s (%s): %w", a.command, uuid, err)
		}
		// A final answer does not change: no use waiting for another.
		if a.statusMatches(st, target) || left <= 0 || st.Done {
			break
		}
		if wait == 0 {
			// A passing status: look again shortly (nothing to long-poll for).
			t := time.NewTimer(min(50*time.Millisecond, left))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	if a.status != "" && !a.statusMatches(st, target) {
		return &Mismatch{What: fmt.Sprintf("command %s (%s %s)", a.command, st.RequestType, uuid), Expected: fmt.Sprintf("%s within %s", a.status, a.within), Seen: statuses(st)}
	}
	for _, f := range a.results {
		res := pick(st, target)
		if res == nil || len(res.Result) == 0 {
			return &Mismatch{What: "result of command " + a.command, Expected: fmt.Sprintf("result.%s = %v", f.path, show(f.want)), Seen: "no result yet (" + statuses(st) + ")"}
		}
		var doc any
		if err := json.Unmarshal(res.Result, &doc); err != nil {
			return fmt.Errorf("result of command %s is not JSON: %w", a.command, err)
		}
		if err := compareAt(doc, f, "result", r); err != nil {
			return err
		}
	}
	return nil
}

// statusMatches is true when every target (or the one asked about) shows
// the expected status.
func (a *expectAction) statusMatches(st *api.CommandStatus, target string) bool {
	if a.status == "" {
		return st.Done
	}
	n := 0
	for _, res := range st.Results {
		if target != "" && res.EnrollmentID != target {
			continue
		}
		if res.Status != a.status {
			return false
		}
		n++
	}
	return n > 0
}

func pick(st *api.CommandStatus, target string) *api.CommandResult {
	for i := range st.Results {
		if target == "" || st.Results[i].EnrollmentID == target {
			return &st.Results[i]
		}
	}
	return nil
}

func statuses(st *api.CommandStatus) string {
	var parts []string
	for _, res := range st.Results {
		s := res.Status
		for _, e := range res.ErrorChain {
			s += fmt.Sprintf(" [%s %d: %s]", e.ErrorDomain, e.ErrorCode, e.LocalizedDescription)
		}
		parts = append(parts, s+" for "+res.EnrollmentID)
	}
	return listOrNone(parts)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// asJSON turns a value into the generic JSON tree the API sent.
func asJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc any
	return doc, json.Unmarshal(b, &doc)
}

// compareAt follows a dotted path (a number indexes a list) into doc and
// compares what is there with the expected value.
// References (${ipad.serial}) in the expected value are expanded with r
// (nil: none).
func compareAt(doc any, f fieldWant, root string, r *run) error {
	if r != nil {
		w, err := r.expandTree(f.want)
		if err != nil {
			return err
		}
		f.want = w
	}
	cur := doc
	walked := root
	for _, part := range strings.Split(f.path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[part]
			if !ok {
				keys := make([]string, 0, len(c))
				for k := range c {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				return &Mismatch{What: root + "." + f.path, Expected: fmt.Sprintf("%v", show(f.want)), Seen: fmt.Sprintf("no field %q in %s (fields: %s)", part, walked, strings.Join(keys, ", "))}
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return &Mismatch{What: root + "." + f.path, Expected: fmt.Sprintf("%v", show(f.want)), Seen: fmt.Sprintf("%s is a list of %d; %q does not index it", walked, len(c), part)}
			}
			cur = c[i]
		default:
			return &Mismatch{What: root + "." + f.path, Expected: fmt.Sprintf("%v", show(f.want)), Seen: fmt.Sprintf("%s is %s, with no field %q", walked, show(cur), part)}
		}
		walked += "." + part
	}
	if !sameValue(cur, f.want) {
		return &Mismatch{What: root + "." + f.path, Expected: show(f.want), Seen: show(cur)}
	}
	return nil
}

// sameValue compares a JSON value with a YAML one: numbers by value,
// everything else by its JSON form.
func sameValue(got, want any) bool {
	gj, err1 := json.Marshal(normalize(got))
	wj, err2 := json.Marshal(normalize(want))
	return err1 == nil && err2 == nil && string(gj) == string(wj)
}

func normalize(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
