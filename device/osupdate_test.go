package device_test

import (
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestOSUpdate: a supervised iPad offers the next minor version, downloads
// it on DownloadOnly (OSUpdateStatus lists it), refuses an update it does
// not offer with InstallAction Error, and on InstallASAP restarts on the
// new OS, which DeviceInformation, Save/Load and the next offer all show.
func TestOSUpdate(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithSupervised(true))
	srv.Enroll(dev)
	run := func(c map[string]any) (*struct{ Status string }, map[string]any) {
		t.Helper()
		st, dict := runDict(t, srv, dev, c)
		return &struct{ Status string }{st}, dict
	}
	startVersion, startBuild := dev.OS()
	_, avail := run(map[string]any{"RequestType": "AvailableOSUpdates"})
	offer := avail["AvailableOSUpdates"].([]any)[0].(map[string]any)
	key, version := offer["ProductKey"].(string), offer["Version"].(string)
	if version == startVersion || key == "" {
		t.Fatalf("offer %v on %s", offer, startVersion)
	}

	_, res := run(map[string]any{"RequestType": "ScheduleOSUpdate", "Updates": []map[string]any{{"ProductKey": key, "InstallAction": "DownloadOnly"}}})
	r0 := res["UpdateResults"].([]any)[0].(map[string]any)
	if r0["ProductKey"] != key || r0["InstallAction"] != "DownloadOnly" || r0["Status"] != "Idle" {
		t.Errorf("DownloadOnly result %v", r0)
	}
	_, st := run(map[string]any{"RequestType": "OSUpdateStatus"})
	if list := st["OSUpdateStatus"].([]any); len(list) != 1 || list[0].(map[string]any)["ProductKey"] != key || list[0].(map[string]any)["IsDownloaded"] != true {
		t.Errorf("OSUpdateStatus after the download: %v", st)
	}

	_, res = run(map[string]any{"RequestType": "ScheduleOSUpdate", "Updates": []map[string]any{{"ProductVersion": "99.0", "InstallAction": "InstallASAP"}}})
	if r := res["UpdateResults"].([]any)[0].(map[string]any); r["InstallAction"] != "Error" || r["ErrorChain"] == nil {
		t.Errorf("an update the device does not offer: %v", r)
	}
	for _, bad := range []map[string]any{
		{"RequestType": "ScheduleOSUpdate"},
		{"RequestType": "ScheduleOSUpdate", "Updates": []map[string]any{{"InstallAction": "Now"}}},
		{"RequestType": "ScheduleOSUpdate", "Updates": []map[string]any{{"ProductKey": 7, "InstallAction": "InstallASAP"}}},
	} {
		if s, _ := run(bad); s.Status != mdm.StatusCommandFormatError {
			t.Errorf("%v: %s", bad, s.Status)
		}
	}
	if v, _ := dev.OS(); v != startVersion {
		t.Fatalf("a refused command changed the OS to %s", v)
	}

	restarts := dev.Restarts()
	if s, res := run(map[string]any{"RequestType": "ScheduleOSUpdate", "Updates": []map[string]any{{"InstallAction": "InstallASAP"}}}); s.Status != mdm.StatusAcknowledged ||
		res["UpdateResults"].([]any)[0].(map[string]any)["Status"] != "Installing" {
		t.Fatalf("InstallASAP: %s %v", s.Status, res)
	}
	if v, b := dev.OS(); v != version || b == startBuild || dev.Restarts() != restarts+1 {
		t.Errorf("after the install: %s %s, restarts %d (was %d)", v, b, dev.Restarts(), restarts)
	}
	_, info := run(map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"OSVersion"}})
	if got := info["QueryResponses"].(map[string]any)["OSVersion"]; got != version {
		t.Errorf("DeviceInformation after the install: %v", got)
	}
	if _, st := run(map[string]any{"RequestType": "OSUpdateStatus"}); len(st["OSUpdateStatus"].([]any)) != 0 {
		t.Errorf("the installed update is still listed: %v", st)
	}
	_, avail = run(map[string]any{"RequestType": "AvailableOSUpdates"})
	if next := avail["AvailableOSUpdates"].([]any)[0].(map[string]any)["Version"]; next == version {
		t.Errorf("still offering %v after installing it", next)
	}
	if v, _ := saveAndLoad(t, srv, dev).OS(); v != version {
		t.Errorf("loaded device runs %s, want %s", v, version)
	}

	// The scan is macOS's: an iPad does not know the command.
	if r := srv.Run(dev, map[string]any{"RequestType": "ScheduleOSUpdateScan"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("ScheduleOSUpdateScan on an iPad: %+v", r)
	}
	mac := srv.NewDevice(device.WithModel(device.Mac), device.WithSupervised(true))
	srv.Enroll(mac)
	if r := srv.Run(mac, map[string]any{"RequestType": "ScheduleOSUpdateScan", "Force": true}); r.Status != mdm.StatusAcknowledged || !strings.Contains(r.ResultPlist, "ScanInitiated") {
		t.Errorf("ScheduleOSUpdateScan on a Mac: %+v", r)
	}

	plain := srv.NewDevice()
	srv.Enroll(plain)
	if r := srv.Run(plain, map[string]any{"RequestType": "ScheduleOSUpdate", "Updates": []map[string]any{{"InstallAction": "InstallASAP"}}}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("unsupervised: %+v", r)
	}
}
