package device

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// A com.apple.configuration.legacy configuration ("Legacy Profile" in
// Apple's schema) names an MDMv1 profile by ProfileURL, which the device
// downloads and installs while the configuration is active. The virtual
// device applies it for real after each sync that changed the channel's
// set: it installs the profile of each newly active legacy configuration
// (as a managed profile of that channel, through the same checks as
// InstallProfile), reinstalls it when the configuration's ServerToken
// changes, and removes it when the configuration is no longer active.
// A download or install that fails is reported with Apple's
// Error.ConfigurationCannotBeApplied; it is tried again at the next sync
// that changes the set.

const legacyConfigurationType = "com.apple.configuration.legacy"

// applyLegacyProfiles makes user's channel hold the profiles of its active
// legacy configurations, and returns why each one that could not be
// applied failed, by declaration identifier.
func (d *Device) applyLegacyProfiles(ctx context.Context, user string, ds []*heldDeclaration, status map[string]any) map[string]string {
	statuses := evaluate(ds, status, nil)
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
		return fmt.Errorf("ProfileURL %q does not start with https:// (Apple's schema requires it)", clipURL(url))
	}
	const step = "declarative legacy profile"
	r, err := d.send(ctx, step, http.MethodGet, url, "", nil, nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return serverError(step, http.MethodGet, url, r, "the profile download failed")
	}
	res, err := d.installFor(ctx, r.body, true, user)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.st.findProfile(res.Profile.Identifier, user); p != nil {
		p.Declaration, p.DeclarationToken = h.Identifier, h.ServerToken
	}
	return nil
}

func clipURL(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
