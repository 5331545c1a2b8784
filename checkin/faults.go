package checkin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// Fault actions: what a rule makes the server do instead of (or before)
// answering.
const (
	FaultStatus                 = "status"                  // answer with Status and a body naming the rule
	FaultDelay                  = "delay"                   // wait Delay, then answer as usual
	FaultDrop                   = "drop"                    // close the connection without an answer
	FaultUnrecognizedDevice     = "unrecognized-device"     // 403 com.apple.unrecognized.device: the device unenrolls
	FaultSoftwareUpdateRequired = "softwareupdate-required" // 403 com.apple.softwareupdate.required, details.OSVersion
	FaultUnauthorized           = "unauthorized"            // the legacy bare 401, which also unenrolls a device

	// The actions below change what the endpoint's own handler decides,
	// rather than replacing its answer: the wrapper hands the rule to the
	// handler (through the request context), and the rule fires — counts,
	// and is marked in the transcript — only when it changes the outcome.

	// FaultNotNow (endpoint mdm) simulates a server that defers its queue:
	// on a connect that would hand out a command, the server answers 200
	// with an empty body — what a device gets when nothing is queued — and
	// the command stays queued, untouched, for the next connect. (The
	// device-side NotNow status is the device's to send; this is its
	// mirror on the server side: "not now" from the server.) Use it to test
	// that a client neither loses the command nor treats the empty answer
	// as a failure, and that a later push or connect delivers it. A result
	// the request carried is still recorded.
	FaultNotNow = "notnow"
	// FaultSCEPBadChallenge (endpoint scep) refuses a PKCSReq as if its
	// challengePassword were wrong: a CertRep FAILURE/badRequest, what the
	// SCEP server answers a real wrong challenge with. A one-time challenge
	// is not consumed. A RenewalReq signed by a valid identity needs no
	// challenge, so it still passes (and the rule does not fire).
	FaultSCEPBadChallenge = "scep-bad-challenge"
	// FaultSCEPPending (endpoint scep) answers a PKIOperation with a CertRep
	// whose pkiStatus is PENDING (manual approval), so the client polls.
	FaultSCEPPending = "scep-pending"
	// FaultSCEPFailure (endpoint scep) answers a PKIOperation with a CertRep
	// FAILURE carrying FailInfo (badAlg, badMessageCheck, badRequest,
	// badTime or badCertId).
	FaultSCEPFailure = "scep-failure"
	// FaultExpiredIdentity (endpoints checkin, mdm) treats the device's
	// identity certificate as expired: the request is refused exactly as the
	// real check refuses an expired certificate (same status, same text).
	FaultExpiredIdentity = "expired-identity"
	// FaultSigningTimeSkew (endpoints checkin, mdm) applies Skew as the
	// tolerance of the Mdm-Signature signing-time check for the matching
	// requests, so a device whose clock is off by more is refused as the
	// real check refuses it.
	FaultSigningTimeSkew = "signing-time-skew"
)

// FaultActions lists every action, in the order messages name them.
var FaultActions = []string{
	FaultStatus, FaultDelay, FaultDrop, FaultUnrecognizedDevice, FaultSoftwareUpdateRequired, FaultUnauthorized,
	FaultNotNow, FaultSCEPBadChallenge, FaultSCEPPending, FaultSCEPFailure, FaultExpiredIdentity, FaultSigningTimeSkew,
}

// actionEndpoints are the endpoints an action can apply to (absent: all).
var actionEndpoints = map[string][]string{
	FaultNotNow:           {"mdm"},
	FaultSCEPBadChallenge: {"scep"},
	FaultSCEPPending:      {"scep"},
	FaultSCEPFailure:      {"scep"},
	FaultExpiredIdentity:  {"checkin", "mdm"},
	FaultSigningTimeSkew:  {"checkin", "mdm"},
}

// deferredAction reports whether the endpoint's handler applies the action
// (the wrapper only hands it over).
func deferredAction(action string) bool { return actionEndpoints[action] != nil }

func actionApplies(action, endpoint string) bool {
	eps := actionEndpoints[action]
	return eps == nil || slices.Contains(eps, endpoint)
}

// Device endpoints a fault rule can name.
var faultEndpoints = map[string]bool{"checkin": true, "mdm": true, "scep": true, "enroll": true}

// FaultRule is one injected fault. Empty match fields match anything.
type FaultRule struct {
	ID string `json:"id"`
	// Endpoint is checkin, mdm, scep or enroll ("" = every device endpoint).
	Endpoint string `json:"endpoint,omitempty"`
	// MessageType is a check-in MessageType (Authenticate, TokenUpdate…), a
	// command-endpoint Status (Idle, Acknowledged…) or a SCEP operation.
	MessageType string `json:"message_type,omitempty"`
	// EnrollmentID limits the rule to one enrollment (check-in and command
	// endpoints, where the request names it).
	EnrollmentID string `json:"enrollment_id,omitempty"`
	Action       string `json:"action"`
	// Status is the HTTP status of FaultStatus.
	Status int `json:"status,omitempty"`
	// Delay is how long FaultDelay waits, e.g. "2s".
	Delay string `json:"delay,omitempty"`
	// OSVersion is what FaultSoftwareUpdateRequired asks for (default 99.0).
	OSVersion string `json:"os_version,omitempty"`
	// Times fires the rule for the first Times matching requests, then lets
	// them through ("fail the first N attempts, then succeed"); 0: always.
	Times int `json:"times,omitempty"`
	// FailInfo is the failInfo of FaultSCEPFailure: badAlg,
	// badMessageCheck, badRequest, badTime or badCertId.
	FailInfo string `json:"fail_info,omitempty"`
	// Skew is the signing-time tolerance of FaultSigningTimeSkew, e.g. "10m".
	Skew string `json:"skew,omitempty"`
	// Fired counts the requests the rule changed.
	Fired int `json:"fired"`

	delay time.Duration
	skew  time.Duration
}

// FaultRuleError is a rule refused: Field names the rule's field at fault
// ("" when the rule as a whole is), so that a file loader can point at its
// line.
type FaultRuleError struct {
	Field  string
	Reason string
}

func (e *FaultRuleError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// HTTPStatus is 400: the rule is the client's.
func (e *FaultRuleError) HTTPStatus() int { return http.StatusBadRequest }

// knownActions is the list messages about a bad action give.
func knownActions() string { return strings.Join(FaultActions, ", ") }

// maxFaultRules bounds the rule list.
const maxFaultRules = 1000

// Faults holds the rules and applies them to device requests. Its zero
// value is not usable: call NewFaults.
type Faults struct {
	transcripts store.Transcripts
	now         func() time.Time
	mu          sync.Mutex
	rules       []*FaultRule
	count       atomic.Int32 // len(rules), read without the lock on every request
	next        int
}

// NewFaults returns an empty rule set that records each fault it injects
// in transcripts.
func NewFaults(transcripts store.Transcripts, now func() time.Time) *Faults {
	if transcripts == nil {
		panic("checkin: NewFaults needs a transcript store")
	}
	if now == nil {
		now = time.Now
	}
	return &Faults{transcripts: transcripts, now: now}
}

// Add checks and adds a rule, giving it an ID. A bad rule is a
// *FaultRuleError naming the field.
func (f *Faults) Add(r FaultRule) (FaultRule, error) {
	if err := r.check(); err != nil {
		return FaultRule{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rules) >= maxFaultRules {
		return FaultRule{}, httperr.New(http.StatusConflict, "there are already %d fault rules; clear some first", len(f.rules))
	}
	f.next++
	r.ID, r.Fired = "fault-"+strconv.Itoa(f.next), 0
	rule := r
	f.rules = append(f.rules, &rule)
	f.count.Store(int32(len(f.rules)))
	return rule, nil
}

// check validates r, fills its parsed fields and defaults, and names the
// field at fault.
func (r *FaultRule) check() error {
	bad := func(field, format string, args ...any) error {
		return &FaultRuleError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if r.Endpoint != "" && !faultEndpoints[r.Endpoint] {
		return bad("endpoint", "%q is not a device endpoint: use checkin, mdm, scep or enroll (or leave it out for all)", clip(r.Endpoint, 40))
	}
	if r.Times < 0 {
		return bad("times", "%d: 0 (always) or the number of requests to fail", r.Times)
	}
	switch {
	case len(r.MessageType) > 64:
		return bad("message_type", "longer than 64 bytes")
	case len(r.EnrollmentID) > 512:
		return bad("enrollment_id", "longer than 512 bytes")
	case len(r.OSVersion) > 32:
		return bad("os_version", "longer than 32 bytes")
	}
	switch r.Action {
	case FaultStatus:
		if r.Status < 200 || r.Status > 599 {
			return bad("status", "%d: give the HTTP status to answer with (200–599)", r.Status)
		}
	case FaultDelay:
		d, err := time.ParseDuration(r.Delay)
		if err != nil || d <= 0 || d > 5*time.Minute {
			return bad("delay", "%q: a duration such as 2s, at most 5m", clip(r.Delay, 40))
		}
		r.delay = d
	case FaultDrop, FaultUnrecognizedDevice, FaultUnauthorized, FaultNotNow,
		FaultSCEPBadChallenge, FaultSCEPPending, FaultExpiredIdentity:
	case FaultSoftwareUpdateRequired:
		if r.OSVersion == "" {
			r.OSVersion = "99.0"
		}
	case FaultSCEPFailure:
		if r.FailInfo == "" {
			return bad("fail_info", "scep-failure needs the failInfo to answer with: one of %s", strings.Join(certs.SCEPFailInfoNames, ", "))
		}
		name, ok := certs.CanonicalFailInfo(r.FailInfo)
		if !ok {
			return bad("fail_info", "%q is not a SCEP failInfo: use one of %s", clip(r.FailInfo, 40), strings.Join(certs.SCEPFailInfoNames, ", "))
		}
		r.FailInfo = name
	case FaultSigningTimeSkew:
		d, err := time.ParseDuration(r.Skew)
		if err != nil || d <= 0 || d > 365*24*time.Hour {
			return bad("skew", "%q: the signing-time tolerance to apply, a duration such as 10m or 30s (more than 0, at most 8760h)", clip(r.Skew, 40))
		}
		r.skew = d
	case "":
		return bad("action", "missing: use one of %s", knownActions())
	default:
		return bad("action", "%q is not a fault action: use one of %s", clip(r.Action, 40), knownActions())
	}
	if r.FailInfo != "" && r.Action != FaultSCEPFailure {
		return bad("fail_info", "only the scep-failure action takes a failInfo")
	}
	if r.Skew != "" && r.Action != FaultSigningTimeSkew {
		return bad("skew", "only the signing-time-skew action takes a skew")
	}
	if r.Endpoint != "" && !actionApplies(r.Action, r.Endpoint) {
		return bad("endpoint", "%s applies to the %s endpoint(s), not %s", r.Action, strings.Join(actionEndpoints[r.Action], " and "), r.Endpoint)
	}
	return nil
}

// List returns the rules with how often each fired.
func (f *Faults) List() []FaultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FaultRule, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, *r)
	}
	return out
}

// Remove deletes one rule; Clear all.
func (f *Faults) Remove(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if r.ID == id {
			f.rules = append(f.rules[:i], f.rules[i+1:]...)
			f.count.Store(int32(len(f.rules)))
			return nil
		}
	}
	return httperr.New(http.StatusNotFound, "no fault rule %q (GET /v1/faults lists them)", clip(id, 80))
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.rules = nil
	f.count.Store(0)
	f.mu.Unlock()
}

// match returns the first rule for the request that may still fire, and
// counts the firing; and, separately, the first deferred rule (one the
// handler applies), which is counted only when the handler fires it. An
// immediate rule that answers in place of the handler makes the deferred
// one moot.
func (f *Faults) match(endpoint, messageType, enrollmentID string) (immediate, deferred *FaultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if (r.Endpoint == "" || r.Endpoint == endpoint) && actionApplies(r.Action, endpoint) &&
			(r.MessageType == "" || r.MessageType == messageType) &&
			(r.EnrollmentID == "" || r.EnrollmentID == enrollmentID) &&
			(r.Times == 0 || r.Fired < r.Times) {
			if deferredAction(r.Action) {
				if deferred == nil {
					c := *r
					deferred = &c
				}
				continue
			}
			if immediate == nil {
				r.Fired++
				c := *r
				immediate = &c
			}
		}
	}
	return immediate, deferred
}

// pendingFault is a deferred rule handed to the endpoint's handler through
// the request context.
type pendingFault struct {
	f    *Faults
	rule FaultRule
}

type pendingFaultKey struct{}

// pendingFaultFrom returns the deferred rule of ctx if its action is one
// of actions.
func pendingFaultFrom(ctx context.Context, actions ...string) *pendingFault {
	p, _ := ctx.Value(pendingFaultKey{}).(*pendingFault)
	if p == nil || !slices.Contains(actions, p.rule.Action) {
		return nil
	}
	return p
}

// fire counts one firing of the rule, if it still exists and has firings
// left (another request may have used the last one meanwhile), and notes
// it, with what it did, in the transcript entry of the exchange in ctx. It
// reports whether the handler should apply the fault.
func (p *pendingFault) fire(ctx context.Context, what string) bool {
	if p == nil {
		return false
	}
	p.f.mu.Lock()
	var fired *FaultRule
	for _, r := range p.f.rules {
		if r.ID == p.rule.ID {
			if r.Times == 0 || r.Fired < r.Times {
				r.Fired++
				c := *r
				fired = &c
			}
			break
		}
	}
	p.f.mu.Unlock()
	if fired == nil {
		return false
	}
	note := fmt.Sprintf("fault injected: rule %s (%s%s), firing %d", fired.ID, fired.Action, ruleDetail(fired), fired.Fired)
	if what != "" {
		note += ": " + what
	}
	noteFrom(ctx).add(note)
	return true
}

// maxFaultPeek bounds the body read to match a rule (the endpoints' own
// limit applies after).
const maxFaultPeek = 8 << 20

// Wrap applies the rules to requests for endpoint before next sees them.
// With no rules it costs an atomic load. A deferred rule (notnow, the SCEP
// faults, expired-identity, signing-time-skew) goes to next in the request
// context, with an exchange for its transcript note.
func (f *Faults) Wrap(endpoint string, next http.Handler) http.Handler {
	if !faultEndpoints[endpoint] {
		panic("checkin: Faults.Wrap: unknown endpoint " + endpoint)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.count.Load() == 0 {
			next.ServeHTTP(w, r)
			return
		}
		body, messageType, id := f.identify(endpoint, r)
		rule, deferred := f.match(endpoint, messageType, id)
		if deferred != nil {
			p := &pendingFault{f: f, rule: *deferred}
			ctx := context.WithValue(r.Context(), pendingFaultKey{}, p)
			if noteFrom(ctx) == nil {
				ctx = context.WithValue(ctx, exchangeKey{}, &exchange{})
			}
			if sf := p.scepFault(); sf != nil {
				ctx = certs.WithSCEPFault(ctx, sf)
			}
			r = r.WithContext(ctx)
		}
		if rule == nil {
			next.ServeHTTP(w, r)
			return
		}
		status := f.apply(rule, w, r, next)
		f.record(r.Context(), rule, endpoint, messageType, id, r, body, status)
	})
}

// scepFault is the certs side of a deferred SCEP rule, nil for others.
func (p *pendingFault) scepFault() *certs.SCEPFault {
	var kind string
	switch p.rule.Action {
	case FaultSCEPBadChallenge:
		kind = certs.SCEPFaultBadChallenge
	case FaultSCEPPending:
		kind = certs.SCEPFaultPending
	case FaultSCEPFailure:
		kind = certs.SCEPFaultFailure
	default:
		return nil
	}
	return &certs.SCEPFault{Kind: kind, FailInfo: p.rule.FailInfo, Fire: func(ctx context.Context, what string) bool { return p.fire(ctx, what) }}
}

// identify reads what a rule may match on: the message type and enrollment
// of a check-in or command request (its body is put back for next), or the
// SCEP operation.
func (f *Faults) identify(endpoint string, r *http.Request) (body []byte, messageType, id string) {
	switch endpoint {
	case "scep":
		return nil, r.URL.Query().Get("operation"), ""
	case "enroll":
		return nil, "", ""
	}
	if r.Body == nil {
		return nil, "", ""
	}
	body, _ = io.ReadAll(io.LimitReader(r.Body, maxFaultPeek+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	var ids mdm.Enrollment
	if endpoint == "checkin" || strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-apple-aspen-mdm-checkin") {
		if m, err := mdm.DecodeCheckin(body); err == nil {
			messageType, ids = m.Type(), m.IDs()
		}
	} else if res, err := mdm.DecodeCommandResults(body); err == nil {
		messageType, ids = res.Status, res.Enrollment
	}
	if rid, err := ids.Resolve(); err == nil {
		id = rid.ID
	}
	return body, messageType, id
}

// apply does what the rule says and returns the status answered (0 when
// the connection was dropped).
func (f *Faults) apply(rule *FaultRule, w http.ResponseWriter, r *http.Request, next http.Handler) int {
	note := fmt.Sprintf("mockmdm fault rule %s (%s)", rule.ID, rule.Action)
	switch rule.Action {
	case FaultDelay:
		t := time.NewTimer(rule.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return 0
		}
		sw, ww := httpx.NewStatusWriter(w)
		next.ServeHTTP(ww, r)
		return sw.Status()
	case FaultDrop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return 0
			}
		}
		panic(http.ErrAbortHandler) // HTTP/2: reset the stream
	case FaultUnrecognizedDevice:
		writeAppleError(w, "com.apple.unrecognized.device", note+": this server does not recognize the device", nil)
		return http.StatusForbidden
	case FaultSoftwareUpdateRequired:
		writeAppleError(w, "com.apple.softwareupdate.required", note+": the device must update its OS first", map[string]any{"OSVersion": rule.OSVersion})
		return http.StatusForbidden
	case FaultUnauthorized:
		w.WriteHeader(http.StatusUnauthorized)
		return http.StatusUnauthorized
	default: // FaultStatus
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(rule.Status)
		fmt.Fprintln(w, note+": answered "+strconv.Itoa(rule.Status))
		return rule.Status
	}
}

// writeAppleError answers 403 with Apple's structured error document
// (iOS 17+, macOS 14+): {code, description, details}.
func writeAppleError(w http.ResponseWriter, code, description string, details map[string]any) {
	doc := map[string]any{"code": code, "description": description}
	if details != nil {
		doc["details"] = details
	}
	b, _ := json.Marshal(doc)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(b)
}

// record marks the fault in the transcript with the rule that fired.
func (f *Faults) record(ctx context.Context, rule *FaultRule, endpoint, messageType, id string, r *http.Request, body []byte, status int) {
	e := &store.TranscriptEntry{
		Time: f.now().UTC(), EnrollmentID: id, Kind: endpoint, MessageType: messageType,
		Method: r.Method, Path: r.URL.RequestURI(), Status: status, Request: body,
		Note: fmt.Sprintf("fault injected: rule %s (%s%s), firing %d", rule.ID, rule.Action, ruleDetail(rule), rule.Fired),
	}
	_ = f.transcripts.AppendTranscript(context.WithoutCancel(ctx), e)
}

func ruleDetail(r *FaultRule) string {
	switch r.Action {
	case FaultStatus:
		return " " + strconv.Itoa(r.Status)
	case FaultDelay:
		return " " + r.Delay
	case FaultSoftwareUpdateRequired:
		return " OSVersion " + r.OSVersion
	case FaultSCEPFailure:
		return " " + r.FailInfo
	case FaultSigningTimeSkew:
		return " " + r.Skew
	}
	return ""
}

// clip shortens a value a client sent before it goes in a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
