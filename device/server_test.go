package device_test

import (
	"context"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// protocolKeys are the keys of a command result that belong to the protocol,
// not to the command's response (the schemas' responsekeys leave them out).
var protocolKeys = []string{"CommandUUID", "Status", "UDID", "EnrollmentID", "RequestType", "ErrorChain", "UserID", "UserShortName", "EnrollmentUserID"}

// TestResponsesValidateAgainstAppleSchemas sends every command the device
// handles, through a real mockmdm, to a supervised iPad, and validates the
// keys and types of each answer against the command's response schema.
func TestResponsesValidateAgainstAppleSchemas(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithSupervised(true))
	id := srv.Enroll(dev)
	e, err := srv.Server().Store().GetEnrollment(context.Background(), id)
	if err != nil || len(e.UnlockToken) == 0 {
		t.Fatalf("the iPad's TokenUpdate carried no UnlockToken: %v", err)
	}
	commands := []map[string]any{
		{"RequestType": "DeviceInformation", "Queries": []string{"DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ProductName", "SerialNumber", "UDID", "IsSupervised", "DeviceCapacity", "AvailableDeviceCapacity", "BatteryLevel", "WiFiMAC", "BluetoothMAC"}},
		{"RequestType": "SecurityInfo"},
		{"RequestType": "ProfileList"},
		{"RequestType": "CertificateList"},
		{"RequestType": "InstalledApplicationList"},
		{"RequestType": "InstallApplication", "Identifier": "com.example.app", "Configuration": map[string]any{"ServerURL": "https://app.example"}},
		{"RequestType": "ManagedApplicationList"},
		{"RequestType": "ManagedApplicationConfiguration", "Identifiers": []string{"com.example.app"}},
		{"RequestType": "Settings", "Settings": []map[string]any{{"Item": "ApplicationAttributes", "Identifier": "com.example.app", "Attributes": map[string]any{"VPNUUID": "6B1C2C52-0F05-4A3E-9D1B-5C9A3A3F4B10", "AssociatedDomains": []string{"applinks:contoso.com"}, "Removable": false}}}},
		{"RequestType": "ManagedApplicationAttributes", "Identifiers": []string{"com.example.app"}},
		{"RequestType": "InstallMedia", "MediaType": "Book", "iTunesStoreID": 1234567},
		{"RequestType": "ManagedMediaList"},
		{"RequestType": "RemoveMedia", "MediaType": "Book", "iTunesStoreID": "1234567"},
		{"RequestType": "ManagedApplicationFeedback", "Identifiers": []string{"com.example.app"}, "DeleteFeedback": true},
		{"RequestType": "RemoveApplication", "Identifier": "com.example.app"},
		{"RequestType": "DeviceLock", "Message": "Return to IT"},
		{"RequestType": "ClearPasscode", "UnlockToken": e.UnlockToken},
		{"RequestType": "Settings", "Settings": []map[string]any{{"Item": "DeviceName", "DeviceName": "QA iPad 7"}}},
		{"RequestType": "AvailableOSUpdates"},
		{"RequestType": "DeclarativeManagement"},
		{"RequestType": "ActivationLockBypassCode"},
		{"RequestType": "ClearActivationLockBypassCode"},
		{"RequestType": "EnableLostMode", "Message": "Return to IT", "PhoneNumber": "+1 555 0100", "Footnote": "Contoso"},
		{"RequestType": "DeviceLocation"},
		{"RequestType": "PlayLostModeSound"},
		{"RequestType": "DisableLostMode"},
		{"RequestType": "ScheduleOSUpdate", "Updates": []map[string]any{{"InstallAction": "DownloadOnly"}, {"ProductKey": "NoSuchUpdate", "InstallAction": "InstallASAP"}}},
		{"RequestType": "OSUpdateStatus"},
		{"RequestType": "RestartDevice"},
		{"RequestType": "ShutDownDevice"},
	}
	for _, c := range commands {
		rt := c["RequestType"].(string)
		raw, err := plist.Marshal(map[string]any{"Command": c})
		if err != nil {
			t.Fatal(err)
		}
		res := srv.Run(dev, raw)
		if res.Status != mdm.StatusAcknowledged {
			t.Errorf("%s: %s %+v", rt, res.Status, res.ErrorChain)
			continue
		}
		var dict map[string]any
		if err := plist.Unmarshal([]byte(res.ResultPlist), &dict); err != nil {
			t.Fatalf("%s: result plist: %v", rt, err)
		}
		for _, k := range protocolKeys {
			delete(dict, k)
		}
		s, ok := schema.Command(rt)
		if !ok {
			t.Fatalf("no schema for %s", rt)
		}
		for _, p := range s.ValidateFor("iOS", "18.1", s.ResponseKeys, dict, "") {
			t.Errorf("%s: %s", rt, p)
		}
	}
	if dev.Name() != "QA iPad 7" {
		t.Errorf("Settings DeviceName did not rename the supervised device: %q", dev.Name())
	}
	// Unknown and forbidden commands get error chains.
	unknown := srv.Run(dev, `<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>FancyNewThing</string></dict></dict></plist>`)
	if unknown.Status != mdm.StatusError || len(unknown.ErrorChain) == 0 || unknown.ErrorChain[0].ErrorCode != 12021 || unknown.ErrorChain[0].ErrorDomain != "MCMDMErrorDomain" {
		t.Errorf("unknown command: %+v", unknown)
	}
	plain := srv.NewDevice() // unsupervised
	srv.Enroll(plain)
	if r := srv.Run(plain, map[string]any{"RequestType": "RestartDevice"}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
		t.Errorf("supervised-only command on an unsupervised device: %+v", r)
	}
	// EraseDevice really wipes: the device must enroll again.
	if r := srv.Run(dev, map[string]any{"RequestType": "EraseDevice"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("EraseDevice: %+v", r)
	}
	if dev.IsEnrolled() || len(dev.Identities()) != 0 {
		t.Fatal("the device kept its enrollment after EraseDevice")
	}
	srv.Enroll(dev)
}

func TestBehaviours(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()

	dev.FailWith("ProfileList", device.ChainItem("MCProfileErrorDomain", 1004, "Made to fail"))
	if r := srv.Run(dev, &mdm.ProfileList{}); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != 1004 {
		t.Errorf("FailWith: %+v", r)
	}
	dev.FailWith("ProfileList")
	if r := srv.Run(dev, &mdm.ProfileList{}); r.Status != mdm.StatusAcknowledged {
		t.Errorf("FailWith cleared: %+v", r)
	}

	dev.SetLocked(true)
	uuid := srv.Enqueue(map[string]any{"RequestType": "InstallApplication", "Identifier": "com.example.locked"}, id)
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := srv.Client().GetCommand(ctx, uuid, 0); st.Results[0].Status != mdm.StatusNotNow {
		t.Errorf("locked device: %+v", st.Results[0])
	}
	dev.SetLocked(false)
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if st := srv.WaitResult(uuid, 5*time.Second); st.Results[0].Status != mdm.StatusAcknowledged {
		t.Errorf("after unlock: %+v", st.Results[0])
	}

	dev.DelayAck("SecurityInfo", 150*time.Millisecond)
	start := time.Now()
	srv.Run(dev, &mdm.SecurityInfo{})
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("DelayAck: answered after %s", took)
	}
	dev.DelayAck("SecurityInfo", 0)

	dev.SetOffline(true)
	before := len(dev.Transcript())
	uuid = srv.Enqueue(&mdm.SecurityInfo{}, id)
	if _, err := dev.Connect(ctx); err == nil {
		t.Error("an offline device connected")
	}
	if st, _ := srv.Client().GetCommand(ctx, uuid, 0); st.Results[0].Status != "Pending" {
		t.Errorf("an offline device answered: %+v", st.Results[0])
	}
	if len(dev.Transcript()) != before {
		t.Error("an offline device recorded an exchange")
	}
	dev.SetOffline(false)
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}

	old, _ := srv.Server().Store().GetEnrollment(ctx, id)
	if err := dev.RotatePushToken(ctx); err != nil {
		t.Fatal(err)
	}
	now, _ := srv.Server().Store().GetEnrollment(ctx, id)
	if string(now.PushToken) == string(old.PushToken) || string(now.PushToken) != string(dev.Hardware().PushToken) {
		t.Error("RotatePushToken did not reach the server")
	}
}
