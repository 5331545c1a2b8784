package device_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

func TestSaveLoadKeepsTheEnrollment(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPhone))
	id := srv.Enroll(dev)
	srv.Run(dev, map[string]any{"RequestType": "InstallApplication", "Identifier": "com.example.kept"})
	path := filepath.Join(t.TempDir(), "iphone.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file mode: %v %v", fi.Mode(), err)
	}

	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	if back.UDID() != dev.UDID() || back.SerialNumber() != dev.SerialNumber() || back.Name() != dev.Name() || !back.IsEnrolled() {
		t.Fatalf("loaded device differs: %s/%s enrolled=%v", back.UDID(), back.SerialNumber(), back.IsEnrolled())
	}
	if string(back.Hardware().PushToken) != string(dev.Hardware().PushToken) || back.Hardware().IMEI == "" {
		t.Error("hardware not restored")
	}
	// The loaded device still authenticates with the saved identity.
	res := srv.Run(back, map[string]any{"RequestType": "ManagedApplicationList"})
	if res.Status != mdm.StatusAcknowledged || !strings.Contains(res.ResultPlist, "com.example.kept") {
		t.Fatalf("loaded device: %+v", res)
	}
	if len(back.InstalledProfiles()) != len(dev.InstalledProfiles()) || len(back.TrustedRoots()) != len(dev.TrustedRoots()) {
		t.Error("profiles or roots not restored")
	}
	_ = id
	if err := back.Unenroll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLoadHostileFiles(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	srv.Enroll(dev)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := dev.Save(good); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	cases := map[string]string{
		"empty":         "",
		"not json":      "hello",
		"array":         "[]",
		"wrong version": strings.Replace(string(raw), `"version": 1`, `"version": 99`, 1),
		"truncated":     string(raw[:len(raw)/2]),
		"no hardware":   `{"version":1,"model":{"Family":"iPad","ProductName":"iPad13,18","ModelName":"iPad","OSName":"iPadOS"},"hardware":{}}`,
		"bad model":     `{"version":1,"model":{"Family":"Toaster"},"hardware":{"UDID":"x","SerialNumber":"y","PushToken":"AAAA"}}`,
		"bad cert":      strings.Replace(string(raw), "-----BEGIN CERTIFICATE-----", "-----BEGIN NOTHING-----", 1),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := device.Load(p, srv.Doer())
			var le *device.LoadError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want a LoadError naming the file", err)
			}
		})
	}
	if _, err := device.Load(filepath.Join(dir, "missing.json"), srv.Doer()); err == nil {
		t.Error("a missing file loaded")
	}
}
