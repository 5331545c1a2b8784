package handlers

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store/memory"
)

func selfSignedForLint(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestLintProfile(t *testing.T) {
	signer, key := selfSignedForLint(t, "lint signer")
	other, otherKey := selfSignedForLint(t, "someone else")
	pool := x509.NewCertPool()
	pool.AddCert(signer)
	a := New(memory.New(), nil, WithProfileTrust(pool))
	h := a.LintProfile()

	clean, err := profiles.BuildEnrollment(profiles.EnrollmentOptions{
		Identifier: "com.example.api", ServerURL: "https://mdm.example.com/mdm", Topic: "com.apple.mgmt.External.x",
		AccessRights: profiles.AccessAll, SCEPURL: "https://mdm.example.com/scep", SCEPSubject: [][][]string{{{"CN", "d"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := profiles.Sign(clean, signer, key)
	if err != nil {
		t.Fatal(err)
	}
	signedOther, err := profiles.Sign(clean, other, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	broken := bytes.Replace(clean, []byte("https://mdm.example.com/mdm"), []byte("http://mdm.example.com/mdm"), 1)

	post := func(query string, body []byte) (*httptest.ResponseRecorder, api.ProfileLintResponse) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/v1/profiles/lint"+query, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-apple-aspen-config")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var resp api.ProfileLintResponse
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
		}
		return w, resp
	}

	if w, resp := post("", clean); w.Code != 200 || resp.Signed || resp.Verified || resp.Errors != 0 || resp.Findings == nil || len(resp.Findings) != 0 {
		t.Errorf("clean unsigned: %d %s", w.Code, w.Body)
	}
	if w, resp := post("?platform=ios&supervised=true", signed); w.Code != 200 || !resp.Signed || !resp.Verified || resp.Signer != "CN=lint signer" || len(resp.Findings) != 0 {
		t.Errorf("clean signed: %d %s", w.Code, w.Body)
	}
	if w, resp := post("", signedOther); w.Code != 200 || !resp.Signed || resp.Verified || !strings.Contains(resp.VerifyError, "does not chain") {
		t.Errorf("signed by an untrusted signer: %d %s", w.Code, w.Body)
	}
	w, resp := post("?platform=iOS", broken)
	if w.Code != 200 || resp.Errors != 1 || len(resp.Findings) != 1 {
		t.Fatalf("broken: %d %s", w.Code, w.Body)
	}
	if f := resp.Findings[0]; f.Rule != profiles.RulePattern || f.Severity != "error" || !strings.HasSuffix(f.Path, ".ServerURL") || f.PayloadType != "com.apple.mdm" {
		t.Errorf("finding %+v", f)
	}
}

func TestLintProfileHostile(t *testing.T) {
	a := New(memory.New(), nil)
	h := a.LintProfile()
	bomb := "<plist><array>" + strings.Repeat("<array>", 100000) + strings.Repeat("</array>", 100000) + "</array></plist>"
	tests := []struct {
		name   string
		query  string
		body   []byte
		status int
		want   string
	}{
		{"empty", "", nil, 400, "empty"},
		{"not a profile", "", []byte("hello"), 400, "not a property list"},
		{"truncated CMS", "", []byte{0x30, 0x82, 0x10, 0x00, 0x06}, 400, "CMS"},
		{"plist bomb", "", []byte(bomb), 400, "refused"},
		{"JSON", "", []byte(`{"profile":"x"}`), 400, "not a property list"},
		{"too large", "", bytes.Repeat([]byte("<"), profiles.MaxProfileSize+10), 413, "larger than"},
		{"bad platform", "?platform=Android", []byte("<plist/>"), 400, "platform="},
		{"bad bool", "?platform=iOS&supervised=maybe", []byte("<plist/>"), 400, "true or false"},
		{"ue without platform", "?user_enrollment=1", []byte("<plist/>"), 400, "need platform"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/profiles/lint"+tc.query, bytes.NewReader(tc.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var eb api.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tc.status || eb.Status != tc.status || !strings.Contains(eb.Error, tc.want) {
				t.Errorf("%d %s, want %d mentioning %q", w.Code, w.Body, tc.status, tc.want)
			}
		})
	}
}

// TestEnqueueInstallProfileIsLinted: the profile an InstallProfile carries
// is linted and the findings come back with the enqueue, which still
// happens (a test may mean to send a broken profile).
func TestEnqueueInstallProfileIsLinted(t *testing.T) {
	e := newEnv(t)
	e.seed()
	broken := `<?xml version="1.0"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string>` +
		`<key>PayloadVersion</key><string>1</string><key>PayloadIdentifier</key><string>com.example.x</string>` +
		`<key>PayloadUUID</key><string>U-1</string><key>PayloadContent</key><array/></dict></plist>`
	cases := []struct {
		name, payload string
		wantRule      string
	}{
		{"broken profile", broken, "wrong-type"},
		{"not a profile", "hello", "not-a-profile"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]any{
				"enrollment_ids": []string{idEnrolled},
				"command_uuid":   fmt.Sprintf("LINT-%d", i),
				"command":        map[string]any{"RequestType": "InstallProfile", "Payload": base64.StdEncoding.EncodeToString([]byte(tc.payload))},
			})
			out := decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: string(b)}), http.StatusCreated)
			found := false
			for _, f := range out.Lint {
				found = found || f.Rule == tc.wantRule && f.Severity == "error"
			}
			if !found {
				t.Fatalf("lint %+v has no %s error", out.Lint, tc.wantRule)
			}
		})
	}
	// Other commands carry no lint.
	b, _ := json.Marshal(map[string]any{"enrollment_ids": []string{idEnrolled}, "command": map[string]any{"RequestType": "ProfileList"}})
	if out := decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: string(b)}), http.StatusCreated); out.Lint != nil {
		t.Fatalf("ProfileList enqueue has lint %+v", out.Lint)
	}
}
