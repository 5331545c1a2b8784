package device

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// What a virtual device does with the declarations it holds, beyond
// reporting them, after each sync that changed the channel's set — and at
// every sync while something failed or the channel holds a legacy, app,
// certificate, identity or update enforcement configuration
// (actsOnEverySync), since a predicate or a deadline may have moved:
//
//   - A com.apple.configuration.legacy configuration ("Legacy Profile" in
//     Apple's schema) names an MDMv1 profile by ProfileURL. While the
//     configuration is active the device holds that profile, installed as a
//     managed profile of the channel through the same checks as
//     InstallProfile; it reinstalls it when the configuration's ServerToken
//     changes and removes it when the configuration is no longer active. A
//     failed download or install is Apple's
//     Error.ConfigurationCannotBeApplied.
//   - An active asset whose Reference names a DataURL is downloaded (with
//     the device's identity when Authentication.Type is MDM) and checked
//     against Reference.Size and Reference.Hash-SHA-256; a failed download
//     is Error.AssetCannotBeDownloaded, a mismatch
//     Error.AssetCannotBeVerified. An asset's data is fetched again when its
//     ServerToken changes.
//   - A softwareupdate.enforcement.specific configuration on the device
//     channel installs its OS update once due (swenforcement.go).
//   - An app.managed configuration on the device channel installs or
//     offers its app (declarativeapps.go).
//   - A security.certificate configuration puts its asset's certificate in
//     the channel's keychain, a security.identity configuration an identity
//     from its SCEP asset's server or its PKCS #12 asset (declaredcerts.go).
//
// A configuration Apple's schema does not give the device — its OS at its
// version, the channel's scope, the enrollment (the declarative schemas'
// supportedOS) — is not acted on: once activated it fails with Apple's
// Error.ConfigurationNotSupported ("not supported for this platform, scope,
// or enrollment type").
//
// A failure makes the declaration inactive, and is tried again at the next
// sync, whether or not the set changed — except an identity a credential
// could not make (a SCEP server's refusal, a PKCS #12 that does not open),
// tried again only once the credential changes.

const legacyConfigurationType = "com.apple.configuration.legacy"

// applyFailure is why the device could not act on a declaration: Apple's
// reason code, and the error as its details give it.
type applyFailure struct {
	Code  string `json:"code"`
	Error string `json:"error"`
	// CredentialSHA256 is, for an identity a credential could not make (a
	// SCEP enrollment the server refused, a PKCS #12 that did not open),
	// the hash of that credential: it is tried again only once that
	// changes (declaredcerts.go).
	CredentialSHA256 string `json:"credential_sha256,omitempty"`
}

// maxCredentialDataPerChannel bounds the credential asset data a channel
// keeps (and saves), so that a server's many assets cannot make a device
// whose saved file Load refuses.
const maxCredentialDataPerChannel = 1 << 20

// heldAsset is asset data the device downloaded.
type heldAsset struct {
	ServerToken string `json:"server_token"`
	SHA256      string `json:"sha256"`
	Size        int    `json:"size"`
	// Data is kept for the credential assets the device acts on later
	// (certificate, SCEP and PKCS #12 identity: declaredcerts.go), at most
	// maxCredentialDataPerChannel in all on a channel.
	Data []byte `json:"data,omitempty"`
}

// applyDeclarations acts on user's active declarations (see above) and
// returns the failures and the asset data now held; prev are the last
// sync's failures.
func (d *Device) applyDeclarations(ctx context.Context, user string, e *enrollment, ds []*heldDeclaration, assets map[string]heldAsset, prev map[string]applyFailure) (map[string]applyFailure, map[string]heldAsset) {
	unsupported := d.unsupportedConfigurations(ds, user, e.userEnrollment)
	statuses := evaluate(ds, d.predicateStatus(ds, user, e.userEnrollment), unsupported)
	failures := map[string]applyFailure{}
	if user == "" { // the device's OS: the system scope only
		var installed bool
		failures, installed = d.applyUpdateEnforcement(ds, statuses)
		if installed { // the OS changed: what predicates read, and what the OS supports, have
			unsupported = d.unsupportedConfigurations(ds, user, e.userEnrollment)
			statuses = evaluate(ds, d.predicateStatus(ds, user, e.userEnrollment), unsupported)
		}
		maps.Copy(failures, d.applyDeclaredApps(ds, statuses))
	}
	for id, f := range unsupported {
		if statuses[id].code == f.Code { // activated, so tried
			failures[id] = f
		}
	}
	for id, msg := range d.applyLegacyProfiles(ctx, user, ds, statuses) {
		failures[id] = cannotApply("%s", msg)
	}
	kept := map[string]heldAsset{}
	dataKept := 0 // credential data, bounded per channel
	for _, h := range ds {
		if h.Kind != "asset" || !statuses[h.Identifier].active {
			continue
		}
		a, ok := assets[h.Identifier]
		if !ok || a.ServerToken != h.ServerToken || (keepsAssetData(h.Type) && a.Data == nil) {
			got, f := d.fetchAsset(ctx, e, h)
			if f != nil {
				failures[h.Identifier] = *f
				continue
			}
			if got == nil {
				continue
			}
			a = *got
		}
		if dataKept+len(a.Data) > maxCredentialDataPerChannel {
			failures[h.Identifier] = applyFailure{Code: "Error.AssetCannotBeDownloaded",
				Error: fmt.Sprintf("a virtual device keeps at most %d bytes of credential data on a channel", maxCredentialDataPerChannel)}
			continue
		}
		dataKept += len(a.Data)
		kept[h.Identifier] = a
	}
	maps.Copy(failures, d.applyDeclaredCertificates(user, ds, statuses, kept))
	maps.Copy(failures, d.applyDeclaredIdentities(ctx, user, ds, statuses, kept, prev))
	return failures, kept
}

// unsupportedConfigurations are the configurations among ds that Apple's
// schema does not give the device on user's channel (see above), each
// with its failure, by identifier.
func (d *Device) unsupportedConfigurations(ds []*heldDeclaration, user string, userEnrollment bool) map[string]applyFailure {
	out := map[string]applyFailure{}
	for _, h := range ds {
		if h.Kind != "configuration" {
			continue
		}
		s, ok := schema.Declaration(h.Type)
		if !ok {
			continue // an unknown type is invalid (evaluate)
		}
		if why := d.schemaRefusal(s.EffectivePath(d.model.schemaOS()), user, userEnrollment); why != "" {
			out[h.Identifier] = applyFailure{Code: "Error.ConfigurationNotSupported", Error: fmt.Sprintf("%s is %s", h.Type, why)}
		}
	}
	return out
}

// fetchAsset downloads an asset's Reference.DataURL and checks it; an asset
// with no DataURL has nothing to fetch (nil, nil).
func (d *Device) fetchAsset(ctx context.Context, e *enrollment, h *heldDeclaration) (*heldAsset, *applyFailure) {
	ref, _ := h.Payload["Reference"].(map[string]any)
	url, _ := ref["DataURL"].(string)
	if url == "" {
		return nil, nil
	}
	fail := func(code, format string, args ...any) (*heldAsset, *applyFailure) {
		return nil, &applyFailure{Code: code, Error: fmt.Sprintf(format, args...)}
	}
	if !strings.HasPrefix(url, "https://") && !(d.allowHTTP && strings.HasPrefix(url, "http://")) {
		return fail("Error.AssetCannotBeDownloaded", "DataURL %q does not start with https:// (Apple's schema requires it)", clipValue(url))
	}
	var signer *identity
	if auth, _ := h.Payload["Authentication"].(map[string]any); auth["Type"] == "MDM" {
		signer = e.identity
	}
	const step = "declarative asset data"
	r, err := d.send(ctx, step, http.MethodGet, url, "", nil, signer)
	switch {
	case err != nil:
		return fail("Error.AssetCannotBeDownloaded", "%v", err)
	case r.status != http.StatusOK:
		return fail("Error.AssetCannotBeDownloaded", "GET %s answered %d", clipValue(url), r.status)
	}
	sum := sha256.Sum256(r.body)
	got := hex.EncodeToString(sum[:])
	if size, ok := ref["Size"].(float64); ok && size > 0 && int(size) != len(r.body) {
		return fail("Error.AssetCannotBeVerified", "the data is %d bytes; Reference.Size says %d", len(r.body), int(size))
	}
	// Apple: when Size is 0, clients ignore the hash.
	if want, _ := ref["Hash-SHA-256"].(string); want != "" && ref["Size"] != 0.0 && !strings.EqualFold(want, got) {
		return fail("Error.AssetCannotBeVerified", "the data's SHA-256 is %s; Reference.Hash-SHA-256 says %s", got, clipValue(want))
	}
	held := &heldAsset{ServerToken: h.ServerToken, SHA256: got, Size: len(r.body)}
	if keepsAssetData(h.Type) {
		if err := checkAssetData(h.Type, r.body); err != nil {
			return fail("Error.AssetCannotBeDeserialized", "%v", err)
		}
		held.Data = slices.Clone(r.body)
	}
	return held, nil
}

// applyLegacyProfiles makes user's channel hold the profiles of its active
// legacy configurations, and returns why each one that could not be
// applied failed, by declaration identifier.
func (d *Device) applyLegacyProfiles(ctx context.Context, user string, ds []*heldDeclaration, statuses map[string]declStatus) map[string]string {
	want := map[string]*heldDeclaration{}
	for _, h := range ds {
		if h.Type == legacyConfigurationType && statuses[h.Identifier].active {
			want[h.Identifier] = h
		}
	}
	installed := map[string]bool{}
	d.mu.Lock()
	for _, p := range slices.Clone(d.st.profiles) {
		if p.Declaration == "" || p.User != user {
			continue
		}
		if h := want[p.Declaration]; h == nil || h.ServerToken != p.DeclarationToken {
			d.st.removeProfile(p)
			d.log.Info("legacy profile removed", "profile", p.Identifier, "declaration", p.Declaration)
			continue
		}
		installed[p.Declaration] = true
	}
	d.mu.Unlock()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	failures := map[string]string{}
	for _, id := range ids {
		if installed[id] {
			continue
		}
		if err := d.installLegacyProfile(ctx, user, want[id]); err != nil {
			failures[id] = err.Error()
			d.log.Warn("legacy profile not applied", "declaration", id, "err", err)
		}
	}
	return failures
}

// installLegacyProfile downloads and installs the profile one legacy
// configuration names, and marks it as that configuration's.
func (d *Device) installLegacyProfile(ctx context.Context, user string, h *heldDeclaration) error {
	url, _ := h.Payload["ProfileURL"].(string)
	if !strings.HasPrefix(url, "https://") && !(d.allowHTTP && strings.HasPrefix(url, "http://")) {
		return fmt.Errorf("ProfileURL %q does not start with https:// (Apple's schema requires it)", clipValue(url))
	}
	const step = "declarative legacy profile"
	r, err := d.send(ctx, step, http.MethodGet, url, "", nil, nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return serverError(step, http.MethodGet, url, r, "the profile download failed")
	}
	_, err = d.installFor(ctx, r.body, true, user, h)
	return err
}

// clipValue shortens a value the server sent for an error message.
func clipValue(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// actsOnEverySync reports whether ds holds a declaration the device acts
// on (apply.go) for user's channel: a sync with nothing new acts on them
// again, as what makes them active (a predicate, a deadline) may have
// moved since.
func actsOnEverySync(ds []*heldDeclaration, user string) bool {
	for _, h := range ds {
		switch h.Type {
		case legacyConfigurationType, certificateConfigurationType, identityConfigurationType:
			return true
		case updateEnforcementType, appManagedType:
			if user == "" {
				return true
			}
		}
	}
	return false
}
