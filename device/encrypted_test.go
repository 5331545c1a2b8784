package device_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// encryptedShell is the profile around an EncryptedPayloadContent: the
// top-level keys of plain, PayloadContent replaced by env (and no
// IsEncrypted, which Apple's schema pairs with it but devices do not need).
func encryptedShell(t *testing.T, plain []byte, env any) []byte {
	t.Helper()
	var top map[string]any
	if err := plist.Unmarshal(plain, &top); err != nil {
		t.Fatal(err)
	}
	delete(top, "PayloadContent")
	top["EncryptedPayloadContent"] = env
	b, err := plist.MarshalIndent(top, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadArray is plain's PayloadContent array as a property list, what
// EncryptedPayloadContent holds encrypted.
func payloadArray(t *testing.T, plain []byte) []byte {
	t.Helper()
	var top map[string]any
	if err := plist.Unmarshal(plain, &top); err != nil {
		t.Fatal(err)
	}
	content, err := plist.MarshalIndent(top["PayloadContent"], "\t")
	if err != nil {
		t.Fatal(err)
	}
	return content
}

// opensslEncrypt encrypts content to cert with openssl cms -encrypt, as a
// server built on OpenSSL would, and returns the DER EnvelopedData; it
// skips the test where openssl is absent.
func opensslEncrypt(t *testing.T, content []byte, cert *x509.Certificate) []byte {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed (apt-get install -y openssl): the envelope made by a tool we did not write is not tried")
	}
	dir := t.TempDir()
	in, certPath, out := filepath.Join(dir, "content.plist"), filepath.Join(dir, "identity.pem"), filepath.Join(dir, "env.der")
	if err := os.WriteFile(in, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(openssl, "cms", "-encrypt", "-binary", "-aes-256-cbc", "-outform", "DER",
		"-in", in, "-out", out, certPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -encrypt: %v\n%s", err, b)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestEncryptedProfiles: an InstallProfile whose payloads are encrypted to
// the device's MDM identity — by profiles.Encrypt, by openssl (a tool we
// did not write), and signed over the encryption — is decrypted and
// installed: ProfileList says IsEncrypted and lists the payloads, and they
// take effect (Restrictions reports them). An encrypted profile the device
// cannot open is refused with 4001 and the reason, and nothing is
// installed.
func TestEncryptedProfiles(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPhone), device.WithSupervised(true))
	srv.Enroll(dev)
	ids := dev.Identities()
	if len(ids) != 1 {
		t.Fatalf("the enrolled device holds %d identities, want its MDM identity", len(ids))
	}
	mdmIdentity := ids[0]

	installed := func(identifier string) map[string]any {
		t.Helper()
		status, dict := runDict(t, srv, dev, &mdm.ProfileList{})
		if status != mdm.StatusAcknowledged {
			t.Fatalf("ProfileList: %s", status)
		}
		list, _ := dict["ProfileList"].([]any)
		for _, item := range list {
			if m, _ := item.(map[string]any); m["PayloadIdentifier"] == identifier {
				return m
			}
		}
		return nil
	}

	// Another CA's certificate: an identity the device does not hold.
	otherCA, err := certs.NewCA("Another Device CA", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		encrypt func(plain []byte) []byte
		signed  bool
	}{
		{"profiles.Encrypt", func(plain []byte) []byte {
			b, err := profiles.Encrypt(plain, mdmIdentity)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, false},
		{"openssl cms -encrypt", func(plain []byte) []byte {
			return encryptedShell(t, plain, opensslEncrypt(t, payloadArray(t, plain), mdmIdentity))
		}, false},
		{"signed over the encryption", func(plain []byte) []byte {
			enc, err := profiles.Encrypt(plain, mdmIdentity)
			if err != nil {
				t.Fatal(err)
			}
			return signedBy(t, enc)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "com.example.encrypted." + strings.ReplaceAll(tc.name, " ", "-")
			payload := tc.encrypt(restrictionsProfile(t, id, map[string]any{"allowCamera": false}))
			if r := srv.Run(dev, &mdm.InstallProfile{Payload: payload}); r.Status != mdm.StatusAcknowledged {
				t.Fatalf("InstallProfile: %s %s", r.Status, r.ResultPlist)
			}
			item := installed(id)
			if item == nil || item["IsEncrypted"] != true {
				t.Fatalf("ProfileList does not show the profile as encrypted: %v", item)
			}
			if content, _ := item["PayloadContent"].([]any); len(content) != 1 || content[0].(map[string]any)["PayloadType"] != "com.apple.applicationaccess" {
				t.Errorf("ProfileList's payloads of the decrypted profile: %v", item["PayloadContent"])
			}
			if _, ok := item["SignerCertificates"]; ok != tc.signed {
				t.Errorf("SignerCertificates listed: %v, want %v", ok, tc.signed)
			}
			g := restrictionsView(t, restrictionsOf(t, srv, dev, false)["GlobalRestrictions"])
			if g["restrictedBool"]["allowCamera"] != false {
				t.Errorf("the decrypted restriction is not enforced: %v", g)
			}
			if r := srv.Run(dev, &mdm.RemoveProfile{Identifier: id}); r.Status != mdm.StatusAcknowledged {
				t.Fatalf("RemoveProfile: %s", r.Status)
			}
		})
	}

	other, _, err := otherCA.IssueSigner("Another Device", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	plain := restrictionsProfile(t, "com.example.encrypted.hostile", map[string]any{"allowCamera": false})
	toOther, err := profiles.Encrypt(plain, other)
	if err != nil {
		t.Fatal(err)
	}
	good, err := profiles.Encrypt(plain, mdmIdentity)
	if err != nil {
		t.Fatal(err)
	}
	gp, err := profiles.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	env := gp.Top["EncryptedPayloadContent"].([]byte)
	for _, tc := range []struct {
		name    string
		payload func(t *testing.T) []byte
		want    string
	}{
		{"encrypted to another identity", func(*testing.T) []byte { return toOther }, `encrypted to issuer &#34;CN=Another Device CA,O=mockmdm&#34;, serial`},
		{"EncryptedPayloadContent is not CMS", func(t *testing.T) []byte { return encryptedShell(t, plain, []byte("not cms at all")) }, "cannot be read"},
		{"EncryptedPayloadContent is truncated", func(t *testing.T) []byte { return encryptedShell(t, plain, env[:len(env)/2]) }, "cannot be read"},
		{"EncryptedPayloadContent is a string", func(t *testing.T) []byte { return encryptedShell(t, plain, "MIIB") }, "must be data"},
		{"the decrypted content is a dictionary, not the payload array", func(t *testing.T) []byte {
			dict := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>a</key><string>b</string></dict></plist>`)
			return encryptedShell(t, plain, opensslEncrypt(t, dict, mdmIdentity))
		}, "cannot be decrypted"},
		{"IsEncrypted with nothing encrypted", func(*testing.T) []byte {
			var top map[string]any
			_ = plist.Unmarshal(plain, &top)
			top["IsEncrypted"] = true
			b, _ := plist.Marshal(top)
			return b
		}, "IsEncrypted is true but the profile has no EncryptedPayloadContent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.Run(dev, &mdm.InstallProfile{Payload: tc.payload(t)})
			if r.Status != mdm.StatusError || !strings.Contains(r.ResultPlist, "<integer>4001</integer>") || !strings.Contains(r.ResultPlist, tc.want) {
				t.Fatalf("want Error 4001 saying %q, got %s:\n%s", tc.want, r.Status, r.ResultPlist)
			}
			if installed("com.example.encrypted.hostile") != nil {
				t.Fatal("the refused profile is installed")
			}
		})
	}
}

// TestServerEncryptsProfile: POST /v1/commands with "encrypt_profile"
// sends the InstallProfile with its payloads encrypted to the identity the
// device authenticated with; the device decrypts and installs it. The
// request is refused, saying why, for more than one target, another
// command, a signed or broken profile, and an enrollment whose identity
// certificate is not on record.
func TestServerEncryptsProfile(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	id := srv.Enroll(dev)
	other := srv.NewDevice()
	otherID := srv.Enroll(other)
	ctx := context.Background()
	plain := restrictionsProfile(t, "com.example.server-encrypted", map[string]any{"allowCamera": false})
	noPush := false
	enqueue := func(ids []string, command string) (*api.EnqueueResponse, error) {
		return srv.Client().Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: ids, Command: json.RawMessage(command), Push: &noPush, EncryptProfile: true})
	}
	installCommand := func(profile []byte) string {
		b, err := json.Marshal(map[string]any{"RequestType": "InstallProfile", "Payload": profile})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	resp, err := enqueue([]string{id}, installCommand(plain))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if st := srv.WaitResult(resp.CommandUUID, 10*time.Second); st.Results[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("the encrypted InstallProfile: %+v", st.Results[0])
	}
	// What went over the wire is encrypted to the device's identity.
	var sent []byte
	for _, ex := range dev.Transcript() {
		if bytes.Contains(ex.Response, []byte("InstallProfile")) {
			sent = ex.Response
		}
	}
	var c struct{ Command struct{ Payload []byte } }
	if err := plist.Unmarshal(sent, &c); err != nil {
		t.Fatalf("the command the device received: %v", err)
	}
	p, err := profiles.Parse(c.Command.Payload)
	if err != nil || !p.IsEncrypted() || len(p.Payloads) != 0 || !p.EncryptedTo(dev.Identities()[0]) {
		t.Fatalf("the Payload sent is not encrypted to the device's identity: %v, %v", p, err)
	}
	var installed *device.ProfileInfo
	for _, pi := range dev.InstalledProfiles() {
		if pi.Identifier == "com.example.server-encrypted" {
			installed = &pi
		}
	}
	if installed == nil || !installed.Encrypted || len(installed.Payloads) != 1 {
		t.Fatalf("the device's record of the profile: %+v", installed)
	}

	signed := signedBy(t, plain)
	forgotten := srv.NewDevice()
	forgottenID := srv.Enroll(forgotten)
	if err := srv.Server().Store().DeleteDocument(ctx, "identity-certificate", forgottenID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ids     []string
		command string
		status  int
		want    string
	}{
		{"two enrollments", []string{id, otherID}, installCommand(plain), 400, "exactly one enrollment, not 2"},
		{"not InstallProfile", []string{id}, `{"RequestType":"ProfileList"}`, 400, "is for InstallProfile; this command is ProfileList"},
		{"a signed profile", []string{id}, installCommand(signed), 400, "encrypt the unsigned profile, then sign the result"},
		{"not a profile", []string{id}, installCommand([]byte("hello")), 400, "the Payload cannot be encrypted"},
		{"no identity certificate on record", []string{forgottenID}, installCommand(plain), 409, "no identity certificate on record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := enqueue(tc.ids, tc.command)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, tc.want) {
				t.Fatalf("want %d saying %q, got %v", tc.status, tc.want, err)
			}
			if q, err := srv.Client().Queue(ctx, tc.ids[0]); err != nil || len(q.Items) != 0 {
				t.Fatalf("something was queued: %+v, %v", q, err)
			}
		})
	}
}

// signedBy signs profile with a signer of a CA of its own.
func signedBy(t *testing.T, profile []byte) []byte {
	t.Helper()
	ca, err := certs.NewCA("Signer CA", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.IssueSigner("Profile Signer", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := profiles.Sign(profile, c, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
