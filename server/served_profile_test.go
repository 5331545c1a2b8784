package server

import (
	"bytes"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

func fetchProfile(t *testing.T, s *Server, query string) []byte {
	t.Helper()
	rec := do(t, s, "GET", PathEnroll+query, "", nil)
	if rec.Code != 200 {
		t.Fatalf("GET /enroll%s: %d %s", query, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != profiles.ContentType {
		t.Fatalf("Content-Type %q, want %q", ct, profiles.ContentType)
	}
	return rec.Body.Bytes()
}

// TestServedProfileOpenSSL checks the served profile with an oracle we did
// not write: openssl must verify the CMS signature against the test CA and
// output exactly the plist.
func TestServedProfileOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed: cannot cross-check the served profile's CMS signature")
	}
	s := newTestServer(t)
	signed := fetchProfile(t, s, "")
	unsigned := fetchProfile(t, s, "?unsigned=true")
	dir := t.TempDir()
	caPath, inPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "enroll.mobileconfig")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.PKI().CA.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-in", inPath, "-CAfile", caPath).Output()
	if err != nil {
		t.Fatalf("openssl cms -verify refused the served profile: %v", err)
	}
	p, err := profiles.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, p.Content) {
		t.Error("openssl's verified content differs from the profile's plist")
	}
	// The unsigned variant is the same plist.
	if !bytes.Equal(unsigned, p.Content) {
		t.Error("?unsigned=true does not serve the same plist as the signed profile carries")
	}
}

// TestServedProfilePlistlib has Python's plistlib read the served profile.
func TestServedProfilePlistlib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: cannot cross-check the profile with plistlib")
	}
	s := newTestServer(t)
	path := filepath.Join(t.TempDir(), "enroll.mobileconfig")
	if err := os.WriteFile(path, fetchProfile(t, s, "?unsigned=1"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
import plistlib, sys
d = plistlib.load(open(sys.argv[1], "rb"))
assert d["PayloadType"] == "Configuration" and d["PayloadVersion"] == 1
types = {p["PayloadType"]: p for p in d["PayloadContent"]}
m = types["com.apple.mdm"]
assert m["AccessRights"] == 8191 and isinstance(m["AccessRights"], int)
assert m["SignMessage"] is True and m["CheckOutWhenRemoved"] is True
assert m["Topic"].startswith("com.apple.mgmt.External.")
assert m["ServerURL"].startswith("https://") and m["CheckInURL"].startswith("https://")
assert isinstance(m["ServerCapabilities"], list)
scep = types["com.apple.security.scep"]
assert m["IdentityCertificateUUID"] == scep["PayloadUUID"]
assert isinstance(scep["PayloadContent"]["Keysize"], int)
assert isinstance(types["com.apple.security.root"]["PayloadContent"], bytes)
print("ok")
`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
}

// TestServedProfileSchema checks every payload of the served profile
// against Apple's schema for its type (generated into mdm/schema).
func TestServedProfileSchema(t *testing.T) {
	s := newTestServer(t)
	var top map[string]any
	if err := plist.Unmarshal(fetchProfile(t, s, "?unsigned=1"), &top); err != nil {
		t.Fatal(err)
	}
	tl, ok := schema.Profile("Configuration")
	if !ok {
		t.Fatal("no TopLevel schema")
	}
	for _, pr := range schema.ValidateDict(tl.PayloadKeys, top, "") {
		t.Errorf("top level: %s", pr)
	}
	content, _ := top["PayloadContent"].([]any)
	if len(content) != 3 {
		t.Fatalf("%d payloads, want root, SCEP and MDM", len(content))
	}
	for _, c := range content {
		p := c.(map[string]any)
		pt, _ := p["PayloadType"].(string)
		sch, ok := schema.Profile(pt)
		if !ok {
			t.Errorf("no schema for %s", pt)
			continue
		}
		keys := append(append([]schema.Key(nil), schema.CommonPayloadKeys()...), sch.PayloadKeys...)
		for _, pr := range schema.ValidateDict(keys, p, pt) {
			t.Errorf("%s", pr)
		}
	}
}

// TestEveryServedProfileLints: every kind of enrollment profile the
// enrollment programs hand out — a ticketed device enrollment (Company
// Portal, web, ADE, Configurator), a User Enrollment with its Managed Apple
// ID, an account-driven User Enrollment (EnrollmentMode BYOD) and an
// account-driven device enrollment (ADDE) — passes the profile lint against
// Apple's schemas for the enrollment it makes, signed or not.
func TestEveryServedProfileLints(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		req  enroll.ProfileRequest
		opts profiles.LintOptions
	}{
		{"device enrollment", enroll.ProfileRequest{Ticket: "t1", Mode: store.ModeDevice}, profiles.LintOptions{Platform: "iOS"}},
		{"supervised device enrollment (ADE)", enroll.ProfileRequest{Ticket: "t2", Mode: store.ModeDevice}, profiles.LintOptions{Platform: "iOS", Supervised: true}},
		{"unsigned device enrollment (Configurator export)", enroll.ProfileRequest{Ticket: "t3", Mode: store.ModeDevice, Unsigned: true}, profiles.LintOptions{Platform: "iOS"}},
		{"User Enrollment", enroll.ProfileRequest{Ticket: "t4", Mode: store.ModeUserEnrollment, ManagedAppleID: "user@appleid.contoso.com"}, profiles.LintOptions{Platform: "iOS", UserEnrollment: true}},
		{"account-driven User Enrollment", enroll.ProfileRequest{Ticket: "t5", Mode: store.ModeUserEnrollment, EnrollmentMode: profiles.EnrollmentModeBYOD, ManagedAppleID: "user@appleid.contoso.com"}, profiles.LintOptions{Platform: "iOS", UserEnrollment: true}},
		{"account-driven device enrollment", enroll.ProfileRequest{Ticket: "t6", Mode: store.ModeDevice, EnrollmentMode: profiles.EnrollmentModeADDE}, profiles.LintOptions{Platform: "iOS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := s.issuer.EnrollmentProfile(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			p, err := profiles.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if fs := profiles.Lint(p, tc.opts); profiles.HasErrors(fs) {
				t.Errorf("lint: %+v", fs)
			}
			if !strings.Contains(string(p.Content), "ticket="+tc.req.Ticket) {
				t.Errorf("the CheckInURL does not carry the ticket")
			}
		})
	}
}
