package device

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
)

// Declarative device management: the DeclarativeManagement command makes
// the device sync. Once its acknowledgement is sent, the device asks the
// check-in endpoint for the tokens, then (when the DeclarationsToken
// changed) for the declaration items, fetches each declaration whose
// ServerToken it does not hold, drops the ones no longer listed, and sends
// a status report of what it holds: each declaration's identifier,
// server-token, active and valid, and its status items. When the token did
// not change, it tries again what failed to apply at the last sync and looks
// again at a held update enforcement's deadline, and reports when its status
// differs from what the server last took. Each channel (the device's, a
// logged-in user's) syncs its own declarations.
//
// Sources: PROTOCOL.md §10; Apple's schemas mdm/checkin/
// declarativemanagement.yaml (Endpoint, Data), declarative/protocol/*
// (the tokens, declaration-items and status report shapes) and
// declarative/status/management.declarations.yaml and device.*.yaml (the
// status items). A declaration is valid when Apple's schema knows its type
// and its payload passes that schema (an activation's Predicate must also
// parse). An activation is active when it is valid, every configuration
// it lists is held and valid, and its Predicate is true (predicate.go). A
// configuration is active when an active activation lists it and every
// asset it references is held (else Error.MissingAssets), an asset when an
// active configuration references it (else, when the configurations that
// reference it failed, Error.ConfigurationFailed), a management
// declaration when valid. A configuration references an asset by a key
// Apple's schema marks with assettypes. Of what declarations configure, the
// device applies legacy profiles and fetches asset data (apply.go),
// installs enforced OS updates (swenforcement.go) and reports subscribed
// status items (statusitems.go), account configurations among them
// (accountstatus.go); it holds and reports the rest without enforcing them.

// DeclarationStatus is one declaration a virtual device holds and what it
// reported about it.
type DeclarationStatus struct {
	Kind, Type, Identifier, ServerToken string
	Active                              bool
	// Valid is "valid" or "invalid"; Reason says why it is invalid, or why
	// a valid one is not active (a false predicate, a missing configuration,
	// a configuration that could not be applied).
	Valid, Reason string
}

// heldDeclaration is a declaration the device synced.
type heldDeclaration struct {
	Kind        string         `json:"kind"`
	Type        string         `json:"Type"`
	Identifier  string         `json:"Identifier"`
	ServerToken string         `json:"ServerToken"`
	Payload     map[string]any `json:"Payload"`
}

// declarativeState is one channel's declarative management state.
type declarativeState struct {
	Token        string             `json:"declarations_token"`
	Declarations []*heldDeclaration `json:"declarations"`
	// Syncs counts completed syncs; LastError is the last sync's failure.
	Syncs     int    `json:"syncs"`
	LastError string `json:"last_error,omitempty"`
	// Failures says, by identifier, why a declaration the device acts on
	// (apply.go: a legacy profile, an asset's data) failed at the last
	// sync; Assets are the asset data it holds, by identifier.
	Failures map[string]applyFailure `json:"failures,omitempty"`
	Assets   map[string]heldAsset    `json:"assets,omitempty"`
	// ReportSHA256 is the hash of the last status report the server took,
	// so that a sync with nothing new reports only what changed since.
	ReportSHA256 string `json:"report_sha256,omitempty"`
}

// maxDeclarations bounds what one sync fetches, so a server listing
// millions cannot keep a device fetching.
const maxDeclarations = 1000

// declarationKinds are the declaration-items keys and their endpoint kinds.
var declarationKinds = []struct{ items, kind, status string }{
	{"Activations", "activation", "activations"},
	{"Configurations", "configuration", "configurations"},
	{"Assets", "asset", "assets"},
	{"Management", "management", "management"},
}

func init() {
	moreHandlers["DeclarativeManagement"] = handleDeclarativeManagement
}

// handleDeclarativeManagement acknowledges, then syncs once the
// acknowledgement is sent.
func handleDeclarativeManagement(ctx context.Context, d *Device, cmd *Command) Response {
	if v, ok := cmd.Params["Data"]; ok {
		if _, isData := v.([]byte); !isData {
			return formatError("Data must be <data> holding the SyncTokens JSON")
		}
	}
	user := cmd.User
	r := Acknowledged(nil)
	r.AfterSend = func() {
		if err := d.syncDeclarations(context.WithoutCancel(ctx), user); err != nil {
			d.log.Warn("declarative management sync failed", "user", user, "err", err)
		}
	}
	return r
}

// Declarations lists what the device's channel (user "") or a user's
// channel holds, with its status, and the last sync's error. The status is
// worked out again from the device's state now: after a change that moves
// a predicate (a profile installed, SetStatusItem), it follows that state,
// not the last report.
func (d *Device) Declarations(user string) (list []DeclarationStatus, syncs int, lastErr string) {
	d.mu.RLock()
	st := d.st.declarative[user]
	d.mu.RUnlock()
	if st == nil {
		return nil, 0, ""
	}
	statuses := evaluate(st.Declarations, d.predicateStatus(st.Declarations, user, d.userEnrolled()), st.Failures)
	for _, h := range st.Declarations {
		s := statuses[h.Identifier]
		list = append(list, DeclarationStatus{Kind: h.Kind, Type: h.Type, Identifier: h.Identifier, ServerToken: h.ServerToken, Active: s.active, Valid: s.valid, Reason: s.reason})
	}
	return list, st.Syncs, st.LastError
}

// SyncDeclarations runs a declarative sync now, as the DeclarativeManagement
// command does (user: a logged-in user's channel, or "").
func (d *Device) SyncDeclarations(ctx context.Context, user string) error {
	d.op.Lock()
	defer d.op.Unlock()
	return d.syncDeclarations(ctx, user)
}

// syncDeclarations is SyncDeclarations under the operation lock.
func (d *Device) syncDeclarations(ctx context.Context, user string) (err error) {
	d.mu.RLock()
	e := d.st.enrollment
	prev := d.st.declarative[user]
	d.mu.RUnlock()
	if e == nil {
		return ErrNotEnrolled
	}
	held := &declarativeState{}
	if prev != nil {
		held.Token, held.Syncs, held.Failures, held.Assets, held.ReportSHA256 = prev.Token, prev.Syncs, prev.Failures, prev.Assets, prev.ReportSHA256
		held.Declarations = slices.Clone(prev.Declarations)
	}
	defer func() {
		held.LastError = ""
		if err != nil {
			held.LastError = err.Error()
		} else {
			held.Syncs++
		}
		d.mu.Lock()
		if d.st.declarative == nil {
			d.st.declarative = map[string]*declarativeState{}
		}
		d.st.declarative[user] = held
		d.mu.Unlock()
	}()
	ids := d.ids(e.userEnrollment)
	if user != "" {
		ids = d.userIDs(user)
	}
	ask := func(endpoint string, data []byte, v any) error {
		var m mdm.DeclarativeManagement
		m.MessageType = mdm.MessageDeclarativeManagement
		m.Enrollment = ids
		m.Endpoint = endpoint
		m.Data = data
		r, url, err := d.sendCheckin(ctx, e, "declarative "+endpoint, m)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return serverError("DeclarativeManagement "+endpoint, http.MethodPut, url, r, "the server refused the declarative check-in")
		}
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(r.body, v); err != nil {
			return &ExchangeError{Step: "declarative " + endpoint, URL: url, Reason: "the answer is not the JSON Apple defines", Err: err}
		}
		return nil
	}
	// report sends the status report of what the channel holds now; with
	// onlyChanged, only when it differs from the last one the server took.
	report := func(onlyChanged bool) error {
		r, err := d.statusReport(held.Declarations, user, e.userEnrollment, held.Failures)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(r)
		digest := hex.EncodeToString(sum[:])
		if onlyChanged && digest == held.ReportSHA256 {
			return nil
		}
		if err := ask("status", r, nil); err != nil {
			return err // not taken: the next sync reports again
		}
		held.ReportSHA256 = digest
		return nil
	}

	var tokens struct {
		SyncTokens struct{ DeclarationsToken, Timestamp string }
	}
	if err := ask("tokens", nil, &tokens); err != nil {
		return err
	}
	if tokens.SyncTokens.DeclarationsToken == "" {
		return fmt.Errorf("device: the tokens answer has no SyncTokens.DeclarationsToken")
	}
	if prev != nil && prev.Token == tokens.SyncTokens.DeclarationsToken {
		// Nothing new from the server. What failed at the last sync is
		// tried again (the server may have fixed a download since), what
		// the device acts on is looked at again (a predicate or a deadline
		// may have moved), and
		// the status is reported when it differs from what the server last
		// took — a retry's outcome, or a report that did not get through.
		if len(prev.Failures) > 0 || actsOnEverySync(held.Declarations, user) {
			held.Failures, held.Assets = d.applyDeclarations(ctx, user, e, held.Declarations, held.Assets, held.Failures)
		}
		return report(true)
	}
	var items struct {
		Declarations      map[string][]struct{ Identifier, ServerToken string }
		DeclarationsToken string
	}
	if err := ask("declaration-items", nil, &items); err != nil {
		return err
	}
	total := 0
	for _, list := range items.Declarations {
		total += len(list)
	}
	if total > maxDeclarations {
		return fmt.Errorf("device: the server lists %d declarations; a virtual device takes at most %d", total, maxDeclarations)
	}
	byID := map[string]*heldDeclaration{}
	for _, h := range held.Declarations {
		byID[h.Identifier] = h
	}
	var next []*heldDeclaration
	for _, k := range declarationKinds {
		list, ok := items.Declarations[k.items]
		if !ok {
			return fmt.Errorf("device: the declaration-items answer has no Declarations.%s (all four are required)", k.items)
		}
		for _, it := range list {
			if h := byID[it.Identifier]; h != nil && h.ServerToken == it.ServerToken && h.Kind == k.kind {
				next = append(next, h)
				continue
			}
			var got heldDeclaration
			if err := ask("declaration/"+k.kind+"/"+it.Identifier, nil, &got); err != nil {
				return err
			}
			if got.Identifier != it.Identifier {
				return fmt.Errorf("device: asked for declaration %q, got %q", it.Identifier, got.Identifier)
			}
			got.Kind = k.kind
			next = append(next, &got)
		}
	}
	sort.SliceStable(next, func(i, j int) bool { return next[i].Identifier < next[j].Identifier })
	held.Declarations = next // applied, whether or not the report gets through
	held.Failures, held.Assets = d.applyDeclarations(ctx, user, e, next, held.Assets, held.Failures)
	if err := report(false); err != nil {
		return err // the token stays the old one, so the next sync reports again
	}
	held.Token = items.DeclarationsToken
	return nil
}

// declStatus is what the device reports about one declaration: code is
// the reason's code from Apple's declarationbase schema (Error.InvalidPayload
// when empty and there is a reason), details its details.
type declStatus struct {
	active              bool
	valid, reason, code string
	details             map[string]any
}

// evaluate decides each declaration's valid and active (see the package
// comment above); status is the device's status items by key path, which
// an activation's Predicate reads (predicate.go) with the management
// properties ds sets.
func evaluate(ds []*heldDeclaration, status map[string]any, failures map[string]applyFailure) map[string]declStatus {
	out := map[string]declStatus{}
	byID := map[string]*heldDeclaration{}
	for _, h := range ds {
		byID[h.Identifier] = h
		st := declStatus{valid: "valid"}
		s, ok := schema.Declaration(h.Type)
		switch {
		case !ok:
			st.valid, st.reason = "invalid", fmt.Sprintf("Type %q is not a declaration type the device knows", h.Type)
		default:
			payload, _ := schema.FromJSON(h.Payload).(map[string]any)
			if payload == nil {
				payload = map[string]any{}
			}
			if probs := schema.ValidateDict(s.PayloadKeys, payload, "Payload"); len(probs) > 0 {
				st.valid, st.reason = "invalid", probs[0].String()
			}
		}
		out[h.Identifier] = st
	}
	// Predicates read the status items and the properties the valid
	// com.apple.management.properties declarations set.
	env := &predicateEnv{status: status, properties: map[string]any{}}
	for _, h := range ds {
		if h.Type == "com.apple.management.properties" && out[h.Identifier].valid == "valid" {
			flattenStatus("", h.Payload, env.properties)
		}
	}
	configActive := map[string]bool{}
	referenced := map[string]bool{} // by any activation held
	for _, h := range ds {
		if h.Kind == "activation" {
			confs, _ := stringList(h.Payload["StandardConfigurations"])
			for _, c := range confs {
				referenced[c] = true
			}
		}
	}
	for _, h := range ds {
		if h.Kind != "activation" || out[h.Identifier].valid != "valid" {
			continue
		}
		confs, _ := stringList(h.Payload["StandardConfigurations"])
		ok := true
		var missing []any
		for _, c := range confs {
			if cd := byID[c]; cd == nil || cd.Kind != "configuration" || out[c].valid != "valid" {
				ok = false
				if cd == nil {
					missing = append(missing, c)
				}
			}
		}
		about := map[string]any{"Identifier": h.Identifier, "ServerToken": h.ServerToken}
		if len(missing) > 0 {
			st := out[h.Identifier]
			st.code, st.reason = "Error.MissingConfigurations", fmt.Sprintf("the activation lists configurations the device does not hold: %v", missing)
			st.details = map[string]any{"Identifier": h.Identifier, "ServerToken": h.ServerToken, "ConfigurationIdentifiers": missing}
			out[h.Identifier] = st
		}
		// A predicate that does not parse makes the activation invalid
		// whatever else it lists; one that parses is evaluated only when
		// the activation could apply.
		if src, _ := h.Payload["Predicate"].(string); strings.TrimSpace(src) != "" {
			about["Predicate"] = src
			pred, err := parsePredicate(src)
			switch {
			case err != nil:
				ok = false
				out[h.Identifier] = declStatus{valid: "invalid", code: "Error.UnableToParsePredicate",
					reason: "the Predicate does not parse: " + err.Error(), details: about}
			case ok && !pred.eval(env):
				ok = false
				out[h.Identifier] = declStatus{valid: "valid", code: "Info.Predicate", reason: "the Predicate is false on this device", details: about}
			}
		}
		if ok {
			st := out[h.Identifier]
			st.active = true
			out[h.Identifier] = st
			for _, c := range confs {
				configActive[c] = true
			}
		}
	}
	assetActive := map[string]bool{}
	// failedBy names, per asset, a configuration that was activated but
	// failed: Apple's Error.ConfigurationFailed for an asset left inactive.
	failedBy := map[string]*heldDeclaration{}
	for _, h := range ds {
		switch h.Kind {
		case "configuration":
			st := out[h.Identifier]
			st.active = configActive[h.Identifier]
			refs := assetReferences(h)
			var missing []any
			for _, ref := range refs {
				if a := byID[ref]; a == nil || a.Kind != "asset" {
					missing = append(missing, ref)
				}
			}
			f, failed := failures[h.Identifier]
			switch {
			case !referenced[h.Identifier] && st.valid == "valid":
				// What a Mac reported for one (KMFDDM's getting-started
				// guide records it): not looked at, so validity unknown.
				// One the schema refuses stays invalid, with its reason.
				st.valid, st.code = "unknown", "Info.NotReferencedByActivation"
				st.reason = fmt.Sprintf("Configuration \u201c%s:%s\u201d is not referenced by an activation.", h.Identifier, h.ServerToken)
				st.details = map[string]any{"Identifier": h.Identifier, "ServerToken": h.ServerToken}
			case !st.active:
			case len(missing) > 0:
				st.active = false
				st.code, st.reason = "Error.MissingAssets", fmt.Sprintf("the configuration references assets the device does not hold: %v", missing)
				st.details = map[string]any{"Identifier": h.Identifier, "ServerToken": h.ServerToken, "AssetIdentifiers": missing}
			case failed:
				st.active = false
				st.code, st.reason, st.details = f.Code, "the configuration could not be applied: "+f.Error, map[string]any{"Error": f.Error}
				switch f.Code {
				case "Error.ConfigurationNotSupported": // Apple's details for it
					st.details = map[string]any{"Identifier": h.Identifier, "ServerToken": h.ServerToken}
				case "Error.ConfigurationIsInvalid":
					st.valid = "invalid"
				}
			case h.Type == managementTestType && h.Payload["ReturnStatus"] == "Failed" && st.valid == "valid":
				// Apple's test configuration failing on request, as a Mac
				// reports it (the same guide): still active, but invalid.
				st.valid, st.code, st.reason = "invalid", "Error.ConfigurationCannotBeApplied", "Configuration cannot be applied"
				st.details = map[string]any{"Error": "An internal error has occurred."}
			}
			out[h.Identifier] = st
			for _, ref := range refs {
				switch {
				case st.active:
					assetActive[ref] = true
				case configActive[h.Identifier] && failedBy[ref] == nil:
					failedBy[ref] = h
				}
			}
		case "management":
			st := out[h.Identifier]
			st.active = st.valid == "valid"
			out[h.Identifier] = st
		}
	}
	for _, h := range ds {
		if h.Kind == "asset" {
			st := out[h.Identifier]
			st.active = st.valid == "valid" && assetActive[h.Identifier]
			conf := failedBy[h.Identifier]
			switch f, failed := failures[h.Identifier]; {
			case failed && (st.active || conf != nil):
				// Its own failure first: a configuration that failed for
				// want of it does not hide why.
				st.active = false
				st.code, st.reason, st.details = f.Code, "the asset's data could not be used: "+f.Error, map[string]any{"Error": f.Error}
			case !st.active && st.valid == "valid" && conf != nil:
				st.code, st.reason = "Error.ConfigurationFailed", fmt.Sprintf("the configuration %s that references it failed", conf.Identifier)
				st.details = map[string]any{"Identifier": conf.Identifier, "ServerToken": conf.ServerToken}
			}
			out[h.Identifier] = st
		}
	}
	return out
}

// managementTestType is Apple's configuration for testing declarative
// management: ReturnStatus Failed makes the device report it failed.
const managementTestType = "com.apple.configuration.management.test"

// assetReferences lists the asset identifiers a configuration's payload
// names: the string values of the keys Apple's schema marks with
// assettypes (AuthenticationCredentialsAssetReference and the like), at
// any depth, in the schema's key order.
func assetReferences(h *heldDeclaration) []string {
	s, ok := schema.Declaration(h.Type)
	if !ok {
		return nil
	}
	var out []string
	assetReferencesIn(s.PayloadKeys, h.Payload, &out)
	return out
}

func assetReferencesIn(keys []schema.Key, dict map[string]any, out *[]string) {
	for _, k := range keys {
		if v, ok := dict[k.Name]; ok {
			assetReferencesAt(k, v, out)
		}
	}
}

func assetReferencesAt(k schema.Key, v any, out *[]string) {
	switch x := v.(type) {
	case string:
		if len(k.AssetTypes) > 0 && x != "" && !slices.Contains(*out, x) {
			*out = append(*out, x)
		}
	case map[string]any:
		assetReferencesIn(k.Subkeys, x, out)
	case []any:
		if len(k.Subkeys) != 1 {
			return
		}
		// Apple marks some lists of references on the array key itself
		// (watch.enrollment's AnchorCertificateAssetReferences), others on
		// the element.
		elem := k.Subkeys[0]
		if len(elem.AssetTypes) == 0 {
			elem.AssetTypes = k.AssetTypes
		}
		for _, e := range x {
			assetReferencesAt(elem, e, out)
		}
	}
}

// clientCapabilities is the management.client-capabilities status item:
// the declaration types and status items Apple's schemas say the device's
// OS has at its version. The protocol version, 1.0.0, is the first
// declarative management protocol's; no features are announced.
func (d *Device) clientCapabilities() map[string]any {
	os := d.model.schemaOS()
	version, _ := d.OS()
	byKind := map[string][]string{}
	for _, name := range schema.Names(schema.KindDeclaration) {
		s, ok := schema.Declaration(name)
		if !ok || !s.EffectivePath(os).AvailableIn(version) {
			continue
		}
		for _, k := range declarationKinds {
			if strings.HasPrefix(name, "com.apple."+k.kind+".") {
				byKind[k.status] = append(byKind[k.status], name)
			}
		}
	}
	decls := map[string]any{}
	for kind, names := range byKind {
		decls[kind] = names
	}
	var items []string
	for _, name := range schema.Names(schema.KindStatus) {
		if s, ok := schema.StatusItem(name); ok && s.EffectivePath(os).AvailableIn(version) {
			items = append(items, name)
		}
	}
	return map[string]any{
		"supported-versions": []string{"1.0.0"},
		"supported-features": map[string]any{},
		"supported-payloads": map[string]any{"declarations": decls, "status-items": items},
	}
}

// statusReport is the full status report of what the device holds.
// Under User Enrollment the device's identifiers stay out of it, as they do
// everywhere else.
func (d *Device) statusReport(ds []*heldDeclaration, user string, userEnrollment bool, failures map[string]applyFailure) ([]byte, error) {
	statuses := evaluate(ds, d.predicateStatus(ds, user, userEnrollment), failures)
	lists := map[string][]map[string]any{}
	for _, k := range declarationKinds {
		lists[k.status] = []map[string]any{}
	}
	for _, h := range ds {
		s := statuses[h.Identifier]
		item := map[string]any{"identifier": h.Identifier, "server-token": h.ServerToken, "active": s.active, "valid": s.valid}
		if s.reason != "" {
			code := s.code
			if code == "" {
				code = "Error.InvalidPayload"
			}
			reason := map[string]any{"code": code, "description": s.reason}
			if s.details != nil {
				reason["details"] = s.details
			}
			item["reasons"] = []map[string]any{reason}
		}
		for _, k := range declarationKinds {
			if k.kind == h.Kind {
				lists[k.status] = append(lists[k.status], item)
			}
		}
	}
	values, missing := d.statusItems(user, userEnrollment, subscriptions(ds, statuses), d.declarativeStatus(ds, statuses))
	items := nestStatus(values)
	items["management"] = map[string]any{"declarations": lists, "client-capabilities": d.clientCapabilities()}
	errs := []any{}
	for _, name := range missing {
		errs = append(errs, map[string]any{"StatusItem": name, "Reasons": []any{map[string]any{
			"Code": statusNotAvailable, "Description": fmt.Sprintf("The virtual device has no value for %s.", name),
		}}})
	}
	report := map[string]any{"StatusItems": items, "Errors": errs, "FullReport": true}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(report); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// userEnrolled reports whether the device's enrollment is a User Enrollment.
func (d *Device) userEnrolled() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.enrollment != nil && d.st.enrollment.userEnrollment
}
