package device_test

import (
	"testing"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestMacSecurityCommands: Recovery Lock is set, verified, refused a
// wrong current password, changed and cleared; Remote Desktop goes on and
// off; SecurityInfo follows both; Save/Load keep them; the firmware
// password commands are refused on an Apple silicon Mac; an iPad does not
// know these commands, and an unsupervised Mac gets no Remote Desktop.
func TestMacSecurityCommands(t *testing.T) {
	srv := mdmtest.NewServer(t)
	mac := srv.NewDevice(device.WithModel(device.Mac), device.WithSupervised(true))
	srv.Enroll(mac)
	run := func(dev *device.Device, c map[string]any) (string, map[string]any) {
		t.Helper()
		return runDict(t, srv, dev, c)
	}
	security := func(dev *device.Device) map[string]any {
		t.Helper()
		status, dict := run(dev, map[string]any{"RequestType": "SecurityInfo"})
		info, _ := dict["SecurityInfo"].(map[string]any)
		if status != mdm.StatusAcknowledged || info == nil {
			t.Fatalf("SecurityInfo: %s %v", status, dict)
		}
		return info
	}
	verify := func(dev *device.Device, password string) bool {
		t.Helper()
		status, dict := run(dev, map[string]any{"RequestType": "VerifyRecoveryLock", "Password": password})
		s, _ := schema.Command("VerifyRecoveryLock")
		if probs := s.ValidateFor("macOS", "15.1", s.ResponseKeys, map[string]any{"PasswordVerified": dict["PasswordVerified"]}, ""); status != mdm.StatusAcknowledged || len(probs) > 0 {
			t.Fatalf("VerifyRecoveryLock: %s %v %v", status, dict, probs)
		}
		return dict["PasswordVerified"] == true
	}

	if security(mac)["IsRecoveryLockEnabled"] != false || verify(mac, "") {
		t.Fatal("a Recovery Lock before any was set")
	}
	if status, _ := run(mac, map[string]any{"RequestType": "SetRecoveryLock", "NewPassword": "first"}); status != mdm.StatusAcknowledged {
		t.Fatalf("SetRecoveryLock: %s", status)
	}
	if !verify(mac, "first") || verify(mac, "wrong") || security(mac)["IsRecoveryLockEnabled"] != true || !mac.RecoveryLock() {
		t.Error("after SetRecoveryLock")
	}
	// The signatures macOS answers with (device/commands.go): a server
	// that tells a missing password from a wrong one branches on these.
	for _, c := range []struct {
		name   string
		cmd    map[string]any
		domain string
		code   int64
		desc   string
	}{
		{"a wrong CurrentPassword", map[string]any{"RequestType": "SetRecoveryLock", "CurrentPassword": "wrong", "NewPassword": "second"},
			"ROSLockoutServiceDaemonErrorDomain", 8, "The provided recovery password failed to validate."},
		{"no CurrentPassword", map[string]any{"RequestType": "SetRecoveryLock", "NewPassword": "second"},
			"MDMClientError", 70, "Existing recovery lock password not provided"},
		{"an empty CurrentPassword clearing it", map[string]any{"RequestType": "SetRecoveryLock", "CurrentPassword": "", "NewPassword": ""},
			"MDMClientError", 70, "Existing recovery lock password not provided"},
	} {
		r := srv.Run(mac, c.cmd)
		if r.Status != mdm.StatusError || len(r.ErrorChain) == 0 {
			t.Errorf("%s: %+v", c.name, r)
			continue
		}
		if e := r.ErrorChain[0]; e.ErrorDomain != c.domain || e.ErrorCode != c.code || e.USEnglishDescription != c.desc {
			t.Errorf("%s: %+v", c.name, e)
		}
	}
	if !verify(mac, "first") {
		t.Error("a refused SetRecoveryLock changed the password")
	}
	if r := srv.Run(mac, map[string]any{"RequestType": "SetRecoveryLock", "NewPassword": 7}); r.Status != mdm.StatusCommandFormatError {
		t.Errorf("NewPassword not a string: %+v", r)
	}
	if status, _ := run(mac, map[string]any{"RequestType": "SetRecoveryLock", "CurrentPassword": "first", "NewPassword": "second"}); status != mdm.StatusAcknowledged || !verify(mac, "second") {
		t.Error("changing the Recovery Lock password")
	}

	if status, _ := run(mac, map[string]any{"RequestType": "EnableRemoteDesktop"}); status != mdm.StatusAcknowledged || security(mac)["RemoteDesktopEnabled"] != true {
		t.Error("EnableRemoteDesktop")
	}
	back := saveAndLoad(t, srv, mac)
	if !back.RecoveryLock() || !back.RemoteDesktop() || !verify(back, "second") {
		t.Error("Save/Load lost the Recovery Lock or Remote Desktop")
	}
	if status, _ := run(back, map[string]any{"RequestType": "DisableRemoteDesktop"}); status != mdm.StatusAcknowledged || security(back)["RemoteDesktopEnabled"] != false {
		t.Error("DisableRemoteDesktop")
	}
	if status, _ := run(back, map[string]any{"RequestType": "SetRecoveryLock", "CurrentPassword": "second", "NewPassword": ""}); status != mdm.StatusAcknowledged || back.RecoveryLock() || security(back)["IsRecoveryLockEnabled"] != false {
		t.Error("clearing the Recovery Lock")
	}

	for _, rt := range []string{"SetFirmwarePassword", "VerifyFirmwarePassword"} {
		r := srv.Run(back, map[string]any{"RequestType": rt, "NewPassword": "x", "Password": "x"})
		if r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeNotOnAppleSilicon {
			t.Errorf("%s on Apple silicon: %+v", rt, r)
		}
	}
	ipad := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	srv.Enroll(ipad)
	if r := srv.Run(ipad, map[string]any{"RequestType": "SetRecoveryLock", "NewPassword": "x"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("SetRecoveryLock on an iPad: %+v", r)
	}
	plain := srv.NewDevice(device.WithModel(device.Mac))
	srv.Enroll(plain)
	if r := srv.Run(plain, map[string]any{"RequestType": "EnableRemoteDesktop"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("EnableRemoteDesktop unsupervised: %+v", r)
	}
}

// TestAccountConfigurationNeedsADE: Apple's schema makes
// AccountConfiguration ADE-only, so a Mac enrolled with a profile refuses
// it with the rule named (the ADE path is in server/ade_flow_test.go), as
// it refuses DeviceConfigured; an iPad does not know the command.
func TestAccountConfigurationNeedsADE(t *testing.T) {
	srv := mdmtest.NewServer(t)
	mac := srv.NewDevice(device.WithModel(device.Mac), device.WithSupervised(true))
	srv.Enroll(mac)
	for _, rt := range []string{"AccountConfiguration", "DeviceConfigured"} {
		r := srv.Run(mac, map[string]any{"RequestType": rt})
		if r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeRequiresADE || len(r.ErrorChain) < 2 {
			t.Errorf("%s on a Mac enrolled with a profile: %+v", rt, r)
		}
	}
	status, dict := runDict(t, srv, mac, map[string]any{"RequestType": "SecurityInfo"})
	info, _ := dict["SecurityInfo"].(map[string]any)
	ms, _ := info["ManagementStatus"].(map[string]any)
	if status != mdm.StatusAcknowledged || ms["EnrolledViaDEP"] != false {
		t.Errorf("SecurityInfo's EnrolledViaDEP for a profile enrollment: %v", dict)
	}
	ipad := srv.NewDevice(device.WithModel(device.IPad))
	srv.Enroll(ipad)
	if r := srv.Run(ipad, map[string]any{"RequestType": "AccountConfiguration"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("AccountConfiguration on an iPad: %+v", r)
	}
}

// TestValidateAppsAndCellularPlans: both acknowledge a well-formed request
// and refuse a malformed one; RefreshCellularPlans keeps the URL, and a
// Mac does not know it.
func TestValidateAppsAndCellularPlans(t *testing.T) {
	srv := mdmtest.NewServer(t)
	phone := srv.NewDevice(device.WithModel(device.IPhone))
	srv.Enroll(phone)
	for _, tc := range []struct {
		c    map[string]any
		want string
	}{
		{map[string]any{"RequestType": "ValidateApplications"}, mdm.StatusAcknowledged},
		{map[string]any{"RequestType": "ValidateApplications", "Identifiers": []string{"com.example.app"}}, mdm.StatusAcknowledged},
		{map[string]any{"RequestType": "ValidateApplications", "Identifiers": "com.example.app"}, mdm.StatusCommandFormatError},
		{map[string]any{"RequestType": "RefreshCellularPlans", "eSIMServerURL": "https://esim.carrier.example/plans"}, mdm.StatusAcknowledged},
		{map[string]any{"RequestType": "RefreshCellularPlans", "eSIMServerURL": "http://esim.carrier.example"}, mdm.StatusCommandFormatError},
		{map[string]any{"RequestType": "RefreshCellularPlans"}, mdm.StatusCommandFormatError},
	} {
		if r := srv.Run(phone, tc.c); r.Status != tc.want {
			t.Errorf("%v: %s %+v, want %s", tc.c, r.Status, r.ErrorChain, tc.want)
		}
	}
	if got := phone.LastESIMServerURL(); got != "https://esim.carrier.example/plans" {
		t.Errorf("LastESIMServerURL %q", got)
	}
	mac := srv.NewDevice(device.WithModel(device.Mac))
	srv.Enroll(mac)
	if r := srv.Run(mac, map[string]any{"RequestType": "RefreshCellularPlans", "eSIMServerURL": "https://x.example"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("RefreshCellularPlans on a Mac: %+v", r)
	}
}
