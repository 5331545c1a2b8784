package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/profiles"
)

// profileFixture writes an unsigned enrollment profile, a self-signed
// signer certificate with its key, and an unrelated CA, to dir.
func profileFixture(t *testing.T) (dir, unsigned, cert, key, other string) {
	t.Helper()
	dir = t.TempDir()
	selfSigned := func(cn string) ([]byte, *ecdsa.PrivateKey) {
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
		return der, k
	}
	der, k := selfSigned("profile test signer")
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	odr, _ := selfSigned("unrelated CA")
	root, _ := x509.ParseCertificate(der)
	b, err := profiles.BuildEnrollment(profiles.EnrollmentOptions{
		Identifier: "com.example.cli", ServerURL: "https://mdm.example.com/mdm", Topic: "com.apple.mgmt.External.x",
		AccessRights: profiles.AccessAll, RootCA: root, SCEPURL: "https://mdm.example.com/scep",
		SCEPSubject: [][][]string{{{"CN", "device"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unsigned = write("enroll.mobileconfig", b)
	cert = write("signer.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	key = write("signer.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	other = write("other.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: odr}))
	return dir, unsigned, cert, key, other
}

func runProfile(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"profile"}, args...), envOf(), &out, io.Discard)
	return out.String(), err
}

func TestProfileCommands(t *testing.T) {
	dir, unsigned, cert, key, other := profileFixture(t)
	signed := filepath.Join(dir, "signed.mobileconfig")

	if _, err := runProfile("sign", "-in", unsigned, "-cert", cert, "-key", key, "-out", signed); err != nil {
		t.Fatalf("sign: %v", err)
	}
	out, err := runProfile("verify", signed, "-ca", cert)
	if err != nil || !strings.Contains(out, "verified, signed by CN=profile test signer") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if _, err := runProfile("verify", signed, "-ca", other); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("verify against another CA: %v", err)
	}
	if _, err := runProfile("verify", "-ca", cert, unsigned); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("verify unsigned: %v", err)
	}

	out, err = runProfile("inspect", signed, "-ca", cert, "-platform", "iOS")
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	for _, want := range []string{"signed:    yes, by CN=profile test signer", "verified:  yes, against -ca", "(signer)",
		"payloads: 3", "[2] com.apple.mdm  com.example.cli.mdm", `ServerURL = "https://mdm.example.com/mdm"`, "PayloadContent = <data, ", "lint: no findings"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	out, err = runProfile("inspect", "-json", "-ca", other, signed)
	if err != nil {
		t.Fatalf("inspect -json: %v", err)
	}
	var in inspection
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("inspect -json output: %v\n%s", err, out)
	}
	if !in.Signed || in.Verified || !strings.Contains(in.VerifyError, "does not chain") || len(in.Payloads) != 3 || in.Payloads[2].Type != "com.apple.mdm" {
		t.Errorf("inspect -json: %+v", in)
	}

	if out, err := runProfile("lint", signed); err != nil || !strings.Contains(out, "no findings") {
		t.Errorf("lint clean profile: %v\n%s", err, out)
	}
	out, err = runProfile("lint", "-json", unsigned)
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("lint -json clean: %v %q", err, out)
	}
}

func TestProfileLintErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.mobileconfig")
	body := `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.example.bad</string>
<key>PayloadUUID</key><string>11111111-1111-4111-8111-111111111111</string>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>com.apple.mdm</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.example.bad.mdm</string>
<key>PayloadUUID</key><string>22222222-2222-4222-8222-222222222222</string>
<key>ServerURL</key><string>http://insecure/mdm</string>
<key>Topic</key><string>com.apple.mgmt.x</string>
<key>AccessRights</key><string>all</string>
</dict></array></dict></plist>`
	if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runProfile("lint", bad)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("lint with errors: err %v (exit %d)", err, exitCode(err))
	}
	for _, want := range []string{"error pattern PayloadContent[0].ServerURL", "error wrong-type PayloadContent[0].AccessRights", "error missing-required PayloadContent[0].IdentityCertificateUUID"} {
		if !strings.Contains(out, want) {
			t.Errorf("lint output lacks %q:\n%s", want, out)
		}
	}
	out, err = runProfile("lint", "-json", "-platform", "ios", bad)
	if err == nil {
		t.Fatal("lint -json with errors succeeded")
	}
	var fs []profiles.Finding
	if jerr := json.Unmarshal([]byte(out), &fs); jerr != nil || len(fs) < 3 {
		t.Fatalf("lint -json: %v %d findings\n%s", jerr, len(fs), out)
	}
	if fs[0].Rule == "" || fs[0].Severity == "" || fs[0].Path == "" {
		t.Errorf("finding %+v lacks fields", fs[0])
	}
	// inspect shows the findings but does not fail on them.
	if out, err := runProfile("inspect", bad); err != nil || !strings.Contains(out, "lint: 3 error(s)") {
		t.Errorf("inspect of a profile with lint errors: %v\n%s", err, out)
	}
}

func TestProfileHostileInput(t *testing.T) {
	dir, unsigned, cert, key, _ := profileFixture(t)
	signed := filepath.Join(dir, "signed.mobileconfig")
	if _, err := runProfile("sign", "-in", unsigned, "-cert", cert, "-key", key, "-out", signed); err != nil {
		t.Fatal(err)
	}
	sb, _ := os.ReadFile(signed)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bomb := "<plist><array>" + strings.Repeat("<array>", 100000) + strings.Repeat("</array>", 100000) + "</array></plist>"
	huge, err := os.Create(filepath.Join(dir, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	if err := huge.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	huge.Close()

	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/endless" {
			chunk := bytes.Repeat([]byte("<"), 1<<16)
			for range 200 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		http.NotFound(w, r)
	}))
	defer ts.Close()

	tests := []struct {
		name string
		arg  string
		want string
	}{
		{"not a profile", write("text", []byte("hello, world")), "not a property list"},
		{"truncated CMS", write("trunc", sb[:len(sb)/2]), "CMS"},
		{"plist bomb", write("bomb", []byte(bomb)), "refused"},
		{"array top level", write("arr", []byte("<plist><array/></plist>")), "top level is an array"},
		{"empty", write("empty", nil), "empty"},
		{"huge file", filepath.Join(dir, "huge"), "larger than"},
		{"missing file", filepath.Join(dir, "nope"), "no such file"},
		{"directory", dir, "directory"},
		{"URL 404", ts.URL + "/missing.mobileconfig", "404"},
		{"endless URL", ts.URL + "/endless", "larger than"},
	}
	for _, tc := range tests {
		for _, sub := range []string{"inspect", "lint", "verify"} {
			t.Run(tc.name+"/"+sub, func(t *testing.T) {
				_, err := runProfile(sub, tc.arg)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.want)
				}
				if exitCode(err) != 1 {
					t.Errorf("exit %d, want 1", exitCode(err))
				}
			})
		}
	}
}

func TestProfileUsage(t *testing.T) {
	_, unsigned, cert, _, _ := profileFixture(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown sub", []string{"frobnicate"}, "unknown profile command"},
		{"no file", []string{"lint"}, "missing FILE|URL"},
		{"two files", []string{"lint", unsigned, unsigned}, "unexpected argument"},
		{"bad platform", []string{"lint", "-platform", "Android", unsigned}, "-platform"},
		{"ue without platform", []string{"lint", "-user-enrollment", unsigned}, "need -platform"},
		{"sign without key", []string{"sign", "-in", unsigned, "-cert", cert}, "-key"},
		{"sign with a cert as key", []string{"sign", "-in", unsigned, "-cert", cert, "-key", cert}, "no PEM private key"},
		{"bad flag", []string{"inspect", "-bogus", unsigned}, "bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runProfile(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
				t.Fatalf("err = %v (exit %d), want a usage error mentioning %q", err, exitCode(err), tc.want)
			}
		})
	}
	if out, err := runProfile(); err != nil || !strings.Contains(out, "mockmdm profile inspect") {
		t.Errorf("profile without arguments: %v %q", err, out)
	}
}
