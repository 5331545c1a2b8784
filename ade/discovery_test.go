package ade

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServiceDiscoveryWithNanoDEP: NanoDEP's godep client registers the
// account-driven service discovery URL; the fetch answers it with its time,
// the remove forgets it, and /account lists the URI once with its three
// methods, as Apple does.
func TestServiceDiscoveryWithNanoDEP(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	dep := nanoDEPClient(t, h)
	const name = "mockmdm"

	// The calls NanoDEP has no method for go through godep's Do, with
	// the same transport and session handling.
	fetch := func() (int, DiscoveryProfile) {
		t.Helper()
		var out DiscoveryProfile
		err := dep.Do(ctx, name, http.MethodGet, "/account-driven-enrollment/profile", nil, &out)
		if err != nil {
			if strings.Contains(err.Error(), "404") {
				return 404, out
			}
			t.Fatalf("fetch: %v", err)
		}
		return 200, out
	}
	if code, _ := fetch(); code != 404 {
		t.Fatalf("fetch before any assign: %d", code)
	}
	before := h.clk.now()
	if err := dep.AssignAccountDrivenEnrollmentProfile(ctx, name, "https://contoso.example/.well-known/com.apple.remotemanagement"); err != nil {
		t.Fatalf("assign: %v", err)
	}
	code, got := fetch()
	if code != 200 || got.URL != "https://contoso.example/.well-known/com.apple.remotemanagement" || got.LastUpdated.Before(before.Add(-time.Second)) {
		t.Errorf("fetch after assign: %d %+v", code, got)
	}
	if err := dep.Do(ctx, name, http.MethodDelete, "/account-driven-enrollment/profile", nil, nil); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if code, _ := fetch(); code != 404 {
		t.Errorf("fetch after remove: %d", code)
	}

	acct, err := dep.AccountDetail(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, u := range acct.Urls {
		uri := ""
		if u.Uri != nil {
			uri = *u.Uri
		}
		seen[uri]++
		if uri == "/account-driven-enrollment/profile" {
			var m []string
			for _, hm := range u.HttpMethod {
				m = append(m, string(hm))
			}
			slices.Sort(m)
			if !slices.Equal(m, []string{"DELETE", "GET", "POST"}) {
				t.Errorf("discovery methods %v", u.HttpMethod)
			}
		}
	}
	for uri, n := range seen {
		if n != 1 {
			t.Errorf("/account lists %s %d times", uri, n)
		}
	}
	if seen["/account-driven-enrollment/profile"] != 1 || seen["/device/activationlock"] != 1 {
		t.Errorf("/account urls %v", seen)
	}
}

// TestServiceDiscoveryRefusals: Apple's 400s, each with its code and a
// reason, and the organisation quirk on all three endpoints.
func TestServiceDiscoveryRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for _, c := range []struct{ body, code string }{
		{`{}`, "MDM_SERVICE_DISCOVERY_URL_REQUIRED"},
		{`{"mdm_service_discovery_url":""}`, "MDM_SERVICE_DISCOVERY_URL_REQUIRED"},
		{`{"mdm_service_discovery_url":"http://contoso.example/x"}`, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"},
		{`{"mdm_service_discovery_url":"https://"}`, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"},
		{`{"mdm_service_discovery_url":"https://u:p@contoso.example/"}`, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"},
		{`{"mdm_service_discovery_url":"https://contoso.example/%zz"}`, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"},
		{`{"mdm_service_discovery_url":"https://contoso.example/` + strings.Repeat("a", 2000) + `"}`, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"},
		{`{"mdm_service_discovery_url":42}`, "MALFORMED_REQUEST_BODY"},
		{`[`, "MALFORMED_REQUEST_BODY"},
	} {
		_, err := h.svc.handleAssignDiscovery(ctx, nil, []byte(c.body))
		if ae, ok := err.(*apiError); !ok || ae.Status != 400 || ae.Code != c.code || ae.Reason == "" {
			t.Errorf("%s: %v, want 400 %s", c.body, err, c.code)
		}
	}
	if err := h.svc.SetQuirks(ctx, Quirks{DiscoveryOrgNotSupported: true}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"assign": func() error {
			_, err := h.svc.handleAssignDiscovery(ctx, nil, []byte(`{"mdm_service_discovery_url":"https://contoso.example/d"}`))
			return err
		},
		"fetch":  func() error { _, err := h.svc.handleFetchDiscovery(ctx, nil, nil); return err },
		"remove": func() error { _, err := h.svc.handleRemoveDiscovery(ctx, nil, nil); return err },
	} {
		if ae, ok := call().(*apiError); !ok || ae.Status != 400 || ae.Code != "ORG_NOT_SUPPORTED" {
			t.Errorf("%s with the quirk: %v", name, ae)
		}
	}
	// The state survives as JSON: the quirk off, the URL is kept.
	if err := h.svc.SetQuirks(ctx, Quirks{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.handleAssignDiscovery(ctx, nil, []byte(`{"mdm_service_discovery_url":"https://contoso.example/d"}`)); err != nil {
		t.Fatal(err)
	}
	raw, err := h.svc.docs.GetDocument(ctx, KindServer, "state")
	if err != nil {
		t.Fatal(err)
	}
	var st serverState
	if err := json.Unmarshal(raw, &st); err != nil || st.Discovery == nil || st.Discovery.URL != "https://contoso.example/d" {
		t.Errorf("stored state %s: %v", raw, err)
	}
}

// FuzzParseDiscoveryRequest: discovery bodies never panic; refusals are
// 400s with a reason, and what is accepted is an https URL with a host.
func FuzzParseDiscoveryRequest(f *testing.F) {
	for _, s := range []string{`{"mdm_service_discovery_url":"https://contoso.example/d"}`, `{}`, `{"mdm_service_discovery_url":"http://x"}`, `{"mdm_service_discovery_url":1}`, `[`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseDiscoveryRequest(b)
		if err != nil {
			requireRefusal(t, err)
			return
		}
		if !strings.HasPrefix(u, "https://") {
			t.Fatalf("accepted %q", u)
		}
	})
}
