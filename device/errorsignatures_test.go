package device_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestKnownErrorSignatures: where what a device answers is on public
// record (device/commands.go), the virtual device answers the same — a
// Mac with mdmclient's MDMClientError codes, an iPhone with the "not
// installed" answer — since servers branch on them (a RemoveProfile
// answered "not found" is the profile gone). Each chain's second item
// says in words what the device found.
func TestKnownErrorSignatures(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t)
	mac := srv.NewDevice(device.WithModel(device.Mac), device.WithSupervised(true))
	iphone := srv.NewDevice(device.WithModel(device.IPhone))
	srv.Enroll(mac)
	srv.Enroll(iphone)
	users := restrictionsProfile(t, "com.example.users", map[string]any{"allowCamera": false})
	for _, dev := range []*device.Device{mac, iphone} {
		if _, err := dev.Install(ctx, users); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct {
		name    string
		dev     *device.Device
		command any
		domain  string
		code    int64
		desc    string
	}{
		{"RemoveProfile of a missing profile on a Mac", mac, &mdm.RemoveProfile{Identifier: "com.example.nothing"},
			"MDMClientError", 89, "Profile with identifier 'com.example.nothing' not found."},
		{"RemoveProfile of a missing profile on an iPhone", iphone, &mdm.RemoveProfile{Identifier: "com.example.nothing"},
			"MDMErrorDomain", 12075, "The profile \u201ccom.example.nothing\u201d is not installed."},
		{"InstallProfile over the user's profile on a Mac", mac, &mdm.InstallProfile{Payload: users},
			"MDMClientError", 96, "Cannot replace profile 'com.example.users' because it was not installed by the MDM server."},
		// No public record for an iPhone: the generic installation failure.
		{"InstallProfile over the user's profile on an iPhone", iphone, &mdm.InstallProfile{Payload: users},
			device.DomainInstallation, device.ErrCodeInstallFailed, "The profile could not be installed."},
		{"RemoveProfile of the user's profile", iphone, &mdm.RemoveProfile{Identifier: "com.example.users"},
			device.DomainProfile, device.ErrCodeProfileNotRemovable, "The profile cannot be removed by the MDM server."},
	} {
		r := srv.Run(c.dev, c.command)
		if r.Status != mdm.StatusError || len(r.ErrorChain) < 2 {
			t.Errorf("%s: %+v", c.name, r)
			continue
		}
		if e := r.ErrorChain[0]; e.ErrorDomain != c.domain || e.ErrorCode != c.code || e.USEnglishDescription != c.desc || e.LocalizedDescription != c.desc {
			t.Errorf("%s: %+v", c.name, e)
		}
		if r.ErrorChain[1].ErrorDomain != device.DomainDevice || r.ErrorChain[1].USEnglishDescription == "" {
			t.Errorf("%s: no reason in words: %+v", c.name, r.ErrorChain)
		}
		if _, err := mdm.DecodeCommandResults([]byte(r.ResultPlist)); err != nil {
			t.Errorf("%s: the result the server kept does not decode: %v", c.name, err)
		}
	}
}

// TestRemovalKeepsOtherChannels: one profile identifier installed on a
// Mac's device channel and on a user's; removing the user's copy takes
// only the root that copy brought, and the device channel's root stays —
// also once the device is saved and loaded again.
func TestRemovalKeepsOtherChannels(t *testing.T) {
	srv, mac := macWithAnn(t)
	base := len(mac.TrustedRoots())
	profile := rootProfile(t, "com.example.root")
	if r := srv.Run(mac, &mdm.InstallProfile{Payload: profile}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallProfile on the device channel: %+v", r)
	}
	if r := srv.RunUser(mac, &mdm.InstallProfile{Payload: profile}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallProfile on Ann's channel: %+v", r)
	}
	if n := len(mac.TrustedRoots()); n != base+2 {
		t.Fatalf("%d roots after two installs, want %d", n, base+2)
	}
	if r := srv.RunUser(mac, &mdm.RemoveProfile{Identifier: "com.example.root"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("RemoveProfile on Ann's channel: %+v", r)
	}
	if n := len(mac.TrustedRoots()); n != base+1 {
		t.Fatalf("%d roots after removing Ann's copy, want %d: the device channel's root went with it", n, base+1)
	}
	back := saveAndLoad(t, srv, mac)
	if n := len(back.TrustedRoots()); n != base+1 {
		t.Fatalf("%d roots after Save/Load, want %d", n, base+1)
	}
	if r := srv.Run(back, &mdm.RemoveProfile{Identifier: "com.example.root"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("RemoveProfile on the device channel: %+v", r)
	}
	if n := len(back.TrustedRoots()); n != base {
		t.Errorf("%d roots after removing both copies, want %d", n, base)
	}
}

// rootProfile is a profile with one root payload, a fresh self-signed CA.
func rootProfile(t *testing.T, identifier string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: identifier},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plist.MarshalIndent(map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": identifier,
		"PayloadUUID": "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
		"PayloadContent": []any{map[string]any{
			"PayloadType": "com.apple.security.root", "PayloadVersion": 1,
			"PayloadIdentifier": identifier + ".root", "PayloadUUID": "3F2504E0-4F89-41D3-9A0C-0305E82C3302",
			"PayloadContent": der,
		}},
	}, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
