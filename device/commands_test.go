package device

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
)

// protocolKeys are the keys of every result, outside a command's schema.
var protocolKeys = []string{"UDID", "EnrollmentID", "CommandUUID", "Status", "RequestType", "ErrorChain"}

// checkResult decodes a result as a server does and checks its response
// keys against Apple's schema for os/version.
func checkResult(t *testing.T, os, version string, h HandledCommand) map[string]any {
	t.Helper()
	res, err := mdm.DecodeCommandResults(h.Result)
	if err != nil {
		t.Fatalf("%s result does not decode: %v", h.RequestType, err)
	}
	if res.CommandUUID != h.CommandUUID || res.Status != h.Status || res.RequestType != h.RequestType {
		t.Errorf("%s result header %+v", h.RequestType, res)
	}
	dict := resultDict(t, h.Result)
	keys := map[string]any{}
	for k, v := range dict {
		if !slices.Contains(protocolKeys, k) {
			keys[k] = v
		}
	}
	if s, ok := schema.Command(h.RequestType); ok && len(keys) > 0 {
		if probs := s.ValidateFor(os, version, s.ResponseKeys, keys, ""); len(probs) > 0 {
			t.Errorf("%s result breaks Apple's schema: %v", h.RequestType, probs)
		}
	}
	if h.Status == mdm.StatusError || h.Status == mdm.StatusCommandFormatError {
		if len(res.ErrorChain) == 0 {
			t.Errorf("%s: %s without ErrorChain", h.RequestType, h.Status)
		}
	}
	return dict
}

func byUUID(res *ConnectResult) map[string]HandledCommand {
	m := map[string]HandledCommand{}
	for _, c := range res.Commands {
		m[c.CommandUUID] = c
	}
	return m
}

func TestConnectAnswersCommands(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options(), WithModel(IPhone), WithName("QA iPhone"))
	enrollID := f.options().Identifier
	inert := inertProfile(t, "com.example.inert")
	unknown := &mdm.Command{CommandUUID: "unknown-1", RequestType: "FancyNewThing", Raw: []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>CommandUUID</key><string>unknown-1</string>
<key>Command</key><dict><key>RequestType</key><string>FancyNewThing</string></dict></dict></plist>`)}

	ids := f.enqueue(
		&mdm.DeviceInformation{Queries: []string{"DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ProductName",
			"SerialNumber", "UDID", "IsSupervised", "DeviceCapacity", "AvailableDeviceCapacity", "BatteryLevel",
			"WiFiMAC", "BluetoothMAC", "IMEI", "NoSuchQuery", "IsAppleSilicon"}},
		&mdm.SecurityInfo{},
		&mdm.ProfileList{},
		&mdm.InstallProfile{Payload: inert},
		&mdm.ProfileList{ManagedOnly: true},
		&mdm.RemoveProfile{Identifier: "com.example.inert"},
		&mdm.RemoveProfile{Identifier: "com.example.nothing"},
		&mdm.RemoveProfile{Identifier: enrollID + ".mdm"}, // a payload, not a profile
		&mdm.InstalledApplicationList{},
		&mdm.DeviceLock{Message: "Return to IT"},
		&mdm.RestartDevice{},
		&mdm.InstallProfile{Payload: []byte("this is not a profile")},
	)
	f.enqueueRaw(unknown)
	erase := f.enqueue(&mdm.EraseDevice{})[0]
	after := f.enqueue(&mdm.SecurityInfo{})[0] // never reached: the device erased

	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := byUUID(res)
	if len(res.Commands) != len(ids)+2 {
		t.Fatalf("answered %d commands, want %d", len(res.Commands), len(ids)+2)
	}
	for _, c := range res.Commands {
		checkResult(t, "iOS", "18.1", c)
	}
	status := func(id, want string) HandledCommand {
		t.Helper()
		c := got[id]
		if c.Status != want {
			t.Errorf("%s: status %s, want %s (%+v)", id, c.Status, want, c.ErrorChain)
		}
		return c
	}

	qr := resultDict(t, status(ids[0], mdm.StatusAcknowledged).Result)["QueryResponses"].(map[string]any)
	hw := d.Hardware()
	want := map[string]any{
		"DeviceName": "QA iPhone", "OSVersion": "18.1", "BuildVersion": "22B83", "ModelName": "iPhone", "Model": "MQ0G3LL",
		"ProductName": "iPhone15,2", "SerialNumber": d.SerialNumber(), "UDID": d.UDID(), "IsSupervised": false,
		"WiFiMAC": hw.WiFiMAC, "BluetoothMAC": hw.BluetoothMAC, "IMEI": hw.IMEI, "BatteryLevel": hw.BatteryLevel,
	}
	for k, v := range want {
		if !reflect.DeepEqual(qr[k], v) {
			t.Errorf("QueryResponses[%s] = %#v, want %#v", k, qr[k], v)
		}
	}
	if c, ok := qr["DeviceCapacity"].(float64); !ok || c <= 100 || c >= 128 {
		t.Errorf("DeviceCapacity %#v for a 128 GB iPhone", qr["DeviceCapacity"])
	}
	if a, ok := qr["AvailableDeviceCapacity"].(float64); !ok || a <= 0 || a >= qr["DeviceCapacity"].(float64) {
		t.Errorf("AvailableDeviceCapacity %#v", qr["AvailableDeviceCapacity"])
	}
	for _, k := range []string{"NoSuchQuery", "IsAppleSilicon"} {
		if _, ok := qr[k]; ok {
			t.Errorf("answered %s, which an iPhone does not know", k)
		}
	}

	sec := resultDict(t, status(ids[1], mdm.StatusAcknowledged).Result)["SecurityInfo"].(map[string]any)
	if sec["HardwareEncryptionCaps"] != uint64(3) || sec["PasscodePresent"] != false {
		t.Errorf("SecurityInfo %v", sec)
	}
	if _, ok := sec["FDE_Enabled"]; ok {
		t.Error("an iPhone reported FileVault state")
	}

	list := resultDict(t, status(ids[2], mdm.StatusAcknowledged).Result)["ProfileList"].([]any)
	if len(list) != 1 {
		t.Fatalf("ProfileList %v", list)
	}
	item := list[0].(map[string]any)
	if item["PayloadIdentifier"] != enrollID || item["IsManaged"] != false || len(item["PayloadContent"].([]any)) != 3 || len(item["SignerCertificates"].([]any)) != 1 {
		t.Errorf("enrollment profile item %v", item)
	}

	status(ids[3], mdm.StatusAcknowledged)
	managed := resultDict(t, status(ids[4], mdm.StatusAcknowledged).Result)["ProfileList"].([]any)
	if len(managed) != 1 || managed[0].(map[string]any)["PayloadIdentifier"] != "com.example.inert" || managed[0].(map[string]any)["IsManaged"] != true {
		t.Errorf("ManagedOnly ProfileList after InstallProfile: %v", managed)
	}
	status(ids[5], mdm.StatusAcknowledged)
	// An iPhone's "not installed" signature (commands.go).
	if c := status(ids[6], mdm.StatusError).ErrorChain[0]; c.ErrorCode != 12075 || c.ErrorDomain != "MDMErrorDomain" ||
		c.USEnglishDescription != "The profile \u201ccom.example.nothing\u201d is not installed." {
		t.Errorf("RemoveProfile of an unknown profile: %+v", c)
	}
	if c := status(ids[7], mdm.StatusError); c.ErrorChain[0].ErrorCode != ErrCodeProfileNotInstalled {
		t.Errorf("RemoveProfile of a payload identifier: %+v", c.ErrorChain)
	}

	apps := resultDict(t, status(ids[8], mdm.StatusAcknowledged).Result)["InstalledApplicationList"].([]any)
	if len(apps) != 3 || apps[0].(map[string]any)["Identifier"] != "com.apple.Keynote" {
		t.Errorf("InstalledApplicationList %v", apps)
	}
	if lock := resultDict(t, status(ids[9], mdm.StatusAcknowledged).Result); lock["MessageResult"] != "Success" {
		t.Errorf("DeviceLock MessageResult %v", lock["MessageResult"])
	}
	// As unsupervised iPhones are on record answering it (MicroMDM issues
	// 573 and 970), and the device's reason after.
	if c := status(ids[10], mdm.StatusError); len(c.ErrorChain) != 2 || c.ErrorChain[0].ErrorCode != 12021 || c.ErrorChain[0].ErrorDomain != "MCMDMErrorDomain" ||
		c.ErrorChain[0].USEnglishDescription != "\u201cRestartDevice\u201d is not a valid request type." || !strings.Contains(c.ErrorChain[1].USEnglishDescription, "not supervised") {
		t.Errorf("RestartDevice on an unsupervised iPhone: %+v", c.ErrorChain)
	}
	if c := status(ids[11], mdm.StatusError); c.ErrorChain[0].ErrorDomain != DomainProfile || c.ErrorChain[0].ErrorCode != ErrCodeProfileMalformed {
		t.Errorf("InstallProfile of garbage: %+v", c.ErrorChain)
	}
	const notValid = "\u201cFancyNewThing\u201d is not a valid request type."
	wantUnknown := []mdm.ErrorChainItem{{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: notValid, USEnglishDescription: notValid}}
	if c := status("unknown-1", mdm.StatusError); !reflect.DeepEqual(c.ErrorChain, wantUnknown) || c.RequestType != "FancyNewThing" {
		t.Errorf("unknown command: %+v", c)
	}
	status(erase, mdm.StatusAcknowledged)
	if _, ok := got[after]; ok {
		t.Error("the device answered a command after EraseDevice")
	}
	if !res.Erased || d.IsEnrolled() || len(d.Identities()) != 0 || len(d.InstalledProfiles()) != 0 || len(d.TrustedRoots()) != 0 || d.Locked() {
		t.Errorf("after EraseDevice: erased=%v enrolled=%v", res.Erased, d.IsEnrolled())
	}
	if d.Erasures() != 1 || d.UDID() != New(f.srv.Client(), WithSeed(42), WithModel(IPhone)).UDID() {
		t.Error("erase changed the hardware or was not counted")
	}

	// Every report reached the server signed by the identity, as the
	// connect content type.
	reps := f.reportsSnapshot()
	if len(reps) != len(res.Commands)+1 || reps[0].res.Status != mdm.StatusIdle {
		t.Fatalf("%d reports", len(reps))
	}
	for _, r := range reps {
		if !r.signed || r.contentType != connectContentType || r.res.UDID != d.UDID() {
			t.Errorf("report %s: signed=%v ct=%q", r.res.CommandUUID, r.signed, r.contentType)
		}
	}
}

func TestRestartSupervised(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options(), WithSupervised(true))
	ids := f.enqueue(&mdm.RestartDevice{}, &mdm.SecurityInfo{})
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commands) != 1 || res.Commands[0].CommandUUID != ids[0] || res.Commands[0].Status != mdm.StatusAcknowledged || d.Restarts() != 1 {
		t.Fatalf("restart session: %+v, restarts %d", res.Commands, d.Restarts())
	}
	// After the restart the next session gets the rest.
	res, err = d.Connect(ctx(t))
	if err != nil || len(res.Commands) != 1 || res.Commands[0].CommandUUID != ids[1] {
		t.Fatalf("next session: %+v %v", res, err)
	}
	qr := f.enqueue(&mdm.DeviceInformation{Queries: []string{"IsSupervised"}})
	res, _ = d.Connect(ctx(t))
	if v := resultDict(t, byUUID(res)[qr[0]].Result)["QueryResponses"].(map[string]any)["IsSupervised"]; v != true {
		t.Errorf("IsSupervised %v", v)
	}
}

func TestMacDeviceInformation(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options(), WithModel(Mac))
	queries := []string{"DeviceName", "Model", "ModelName", "ProductName", "SerialNumber", "UDID", "EthernetMAC", "IsAppleSilicon", "IMEI", "HostName", "LocalHostName"}
	id := f.enqueue(&mdm.DeviceInformation{Queries: queries}, &mdm.SecurityInfo{})
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := byUUID(res)
	qr := checkResult(t, "macOS", "15.1", got[id[0]])["QueryResponses"].(map[string]any)
	if qr["UDID"] != d.UDID() || qr["IsAppleSilicon"] != true || qr["EthernetMAC"] != d.Hardware().EthernetMAC || qr["ProductName"] != "Mac14,2" {
		t.Errorf("Mac QueryResponses %v", qr)
	}
	if _, ok := qr["IMEI"]; ok {
		t.Error("a Mac answered IMEI")
	}
	sec := checkResult(t, "macOS", "15.1", got[id[1]])["SecurityInfo"].(map[string]any)
	if sec["FDE_Enabled"] != false || sec["SystemIntegrityProtectionEnabled"] != true {
		t.Errorf("Mac SecurityInfo %v", sec)
	}
	auth := f.checkinsSnapshot()[0].msg.(*mdm.Authenticate)
	if auth.DeviceName == "" || auth.Model != "Mac14,2" || auth.ModelName != "MacBook Air" {
		t.Errorf("a Mac Authenticate must carry DeviceName, Model, ModelName: %+v", auth)
	}
	s, _ := schema.Checkin("Authenticate")
	probs := s.ValidateFor("macOS", "15.1", s.PayloadKeys, dictOf(t, auth.RawBytes()), "")
	for _, p := range probs {
		if p.Path != "EnrollmentID" {
			t.Errorf("Mac Authenticate breaks Apple's schema: %v", p)
		}
	}
}

func TestAccessRights(t *testing.T) {
	f := newFakeMDM(t, false)
	o := f.options()
	o.AccessRights = profiles.AccessDeviceInfo | profiles.AccessProfileInspection
	d := f.enrolled(o)
	ids := f.enqueue(&mdm.DeviceInformation{Queries: []string{"DeviceName", "WiFiMAC"}}, &mdm.SecurityInfo{}, &mdm.ProfileList{})
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := byUUID(res)
	qr := resultDict(t, got[ids[0]].Result)["QueryResponses"].(map[string]any)
	if _, ok := qr["WiFiMAC"]; ok || qr["DeviceName"] == nil {
		t.Errorf("without the network-information right: %v", qr)
	}
	if c := got[ids[1]]; c.Status != mdm.StatusError || c.ErrorChain[0].ErrorCode != ErrCodeInsufficientRights {
		t.Errorf("SecurityInfo without the security right: %+v", c)
	}
	if got[ids[2]].Status != mdm.StatusAcknowledged {
		t.Errorf("ProfileList with the inspection right: %+v", got[ids[2]])
	}
}

func TestNotNow(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options())
	d.SetNotNow("DeviceInformation", 1)
	ids := f.enqueue(&mdm.DeviceInformation{Queries: []string{"DeviceName"}}, &mdm.SecurityInfo{})
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commands) != 2 || res.Commands[0].Status != mdm.StatusNotNow || res.Commands[1].Status != mdm.StatusAcknowledged || len(res.Reoffered) != 0 {
		t.Fatalf("first session: %+v", res)
	}
	checkResult(t, "iOS", "18.1", res.Commands[0])
	res, err = d.Connect(ctx(t))
	if err != nil || len(res.Commands) != 1 || res.Commands[0].CommandUUID != ids[0] || res.Commands[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("second session: %+v %v", res, err)
	}

	// "" applies to any type, counted down across types.
	d.SetNotNow("", 2)
	f.enqueue(&mdm.SecurityInfo{}, &mdm.ProfileList{}, &mdm.InstalledApplicationList{})
	res, _ = d.Connect(ctx(t))
	var st []string
	for _, c := range res.Commands {
		st = append(st, c.Status)
	}
	if !slices.Equal(st, []string{"NotNow", "NotNow", "Acknowledged"}) {
		t.Fatalf("any-type NotNow: %v", st)
	}
	d.SetNotNow("", 0)
	if res, _ = d.Connect(ctx(t)); len(res.Commands) != 2 {
		t.Fatalf("after clearing: %d commands", len(res.Commands))
	}
}

// TestNotNowReoffered: a server that re-offers a NotNow'd command in the
// same session is reported, and the session still ends.
func TestNotNowReoffered(t *testing.T) {
	f := newFakeMDM(t, false)
	f.resendNotNow = true
	d := f.enrolled(f.options())
	d.SetNotNow("SecurityInfo", 2)
	id := f.enqueue(&mdm.SecurityInfo{})[0]
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Reoffered, []string{id, id}) || len(res.Commands) != 3 || res.Commands[2].Status != mdm.StatusAcknowledged {
		t.Fatalf("reoffered %v, commands %+v", res.Reoffered, res.Commands)
	}
}

func TestConnectServerAnswers(t *testing.T) {
	for _, tt := range []struct {
		name       string
		status     int
		unenrolled bool
	}{
		{"401 unenrolls", 401, true},
		{"403 unrecognized device unenrolls", 403, true},
		{"500 keeps the enrollment", 500, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMDM(t, false)
			d := f.enrolled(f.options())
			f.mu.Lock()
			f.status["connect"] = tt.status
			f.mu.Unlock()
			res, err := d.Connect(ctx(t))
			var se *ServerError
			if !errors.As(err, &se) || se.StatusCode != tt.status || se.HTTPStatus() != 502 {
				t.Fatalf("error %v", err)
			}
			if errors.Is(err, ErrUnenrolled) != tt.unenrolled || res.Unenrolled != tt.unenrolled || d.IsEnrolled() == tt.unenrolled {
				t.Fatalf("unenrolled: err=%v result=%v enrolled=%v", errors.Is(err, ErrUnenrolled), res.Unenrolled, d.IsEnrolled())
			}
		})
	}
}

func TestConnectMalformedCommands(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options())
	f.enqueueRaw(&mdm.Command{CommandUUID: "no-type", Raw: []byte(`<?xml version="1.0"?><plist version="1.0"><dict>
<key>CommandUUID</key><string>no-type</string><key>Command</key><dict><key>Queries</key><array/></dict></dict></plist>`)})
	f.enqueueRaw(&mdm.Command{CommandUUID: "bad-queries", Raw: []byte(`<?xml version="1.0"?><plist version="1.0"><dict>
<key>CommandUUID</key><string>bad-queries</string><key>Command</key><dict><key>RequestType</key><string>DeviceInformation</string>
<key>Queries</key><string>UDID</string></dict></dict></plist>`)})
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commands) != 2 {
		t.Fatalf("%+v", res.Commands)
	}
	for _, c := range res.Commands {
		if c.Status != mdm.StatusCommandFormatError {
			t.Errorf("%s: %s", c.CommandUUID, c.Status)
		}
		checkResult(t, "iOS", "18.1", c)
	}

	// A body that is no command at all ends the session with an error.
	f.enqueueRaw(&mdm.Command{CommandUUID: "garbage", Raw: []byte("<html>oops</html>")})
	_, err = d.Connect(ctx(t))
	var ee *ExchangeError
	if !errors.As(err, &ee) || ee.Step != "connect" {
		t.Fatalf("garbage command: %v", err)
	}
}

// TestResultsPythonPlistlib reads the device's messages with Python's
// plistlib, an oracle written by others, and checks the plist types that
// servers are strict about.
func TestResultsPythonPlistlib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: ", err)
	}
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options())
	f.enqueue(&mdm.DeviceInformation{Queries: []string{"DeviceCapacity", "BatteryLevel", "IsSupervised", "DeviceName"}})
	f.enqueueRaw(&mdm.Command{CommandUUID: "u", Raw: []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>CommandUUID</key><string>u</string><key>Command</key><dict><key>RequestType</key><string>Nope</string></dict></dict></plist>`)})
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"info.plist":  res.Commands[0].Result,
		"error.plist": res.Commands[1].Result,
		"token.plist": f.checkinsSnapshot()[1].msg.RawBytes(),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := `
import json, plistlib, sys, os
d = sys.argv[1]
load = lambda n: plistlib.load(open(os.path.join(d, n), "rb"))
info, err, tok = load("info.plist"), load("error.plist"), load("token.plist")
q = info["QueryResponses"]
print(json.dumps({
  "DeviceCapacity": type(q["DeviceCapacity"]).__name__,
  "BatteryLevel": type(q["BatteryLevel"]).__name__,
  "IsSupervised": type(q["IsSupervised"]).__name__,
  "DeviceName": type(q["DeviceName"]).__name__,
  "ErrorCode": type(err["ErrorChain"][0]["ErrorCode"]).__name__,
  "Token": type(tok["Token"]).__name__,
  "TokenLen": len(tok["Token"]),
  "PushMagic": type(tok["PushMagic"]).__name__,
}))`
	out, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
	var types map[string]any
	if err := json.Unmarshal(out, &types); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]any{"DeviceCapacity": "float", "BatteryLevel": "float", "IsSupervised": "bool", "DeviceName": "str",
		"ErrorCode": "int", "Token": "bytes", "TokenLen": float64(32), "PushMagic": "str"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("plistlib types %v, want %v", types, want)
	}
}

// TestConcurrentUse: accessors run while sessions run, and two sessions
// started together run one after the other (go test -race checks the rest).
func TestConcurrentUse(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options())
	for range 10 {
		f.enqueue(&mdm.DeviceInformation{Queries: []string{"DeviceName"}}, &mdm.ProfileList{})
	}
	var wg sync.WaitGroup
	results := make([]*ConnectResult, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := d.Connect(ctx(t))
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	for range 50 {
		_ = d.Transcript()
		_ = d.InstalledProfiles()
		_, _ = d.IdentityTLSCertificate()
		_ = d.Enrollment()
		d.SetNotNow("Nothing", 1)
	}
	wg.Wait()
	if n := len(results[0].Commands) + len(results[1].Commands); n != 20 {
		t.Fatalf("answered %d commands in two sessions, want 20", n)
	}
}

// TestHandlerRegistry: handlers are added, replaced and removed without
// touching the loop; a broken handler costs its command, not the session.
func TestHandlerRegistry(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options())
	d.Handle("Settings", func(_ context.Context, _ *Device, cmd *Command) Response {
		return Acknowledged(map[string]any{"Settings": []any{map[string]any{"Item": "DeviceName", "Status": "Acknowledged"}}})
	})
	d.Handle("SecurityInfo", nil) // removed: now unknown
	d.Handle("ProfileList", func(context.Context, *Device, *Command) Response { panic("boom") })
	d.Handle("DeviceLock", func(context.Context, *Device, *Command) Response {
		return Acknowledged(map[string]any{"MessageResult": map[string]any{"bad": nil}})
	})
	raw := func(id, rt string) *mdm.Command {
		return &mdm.Command{CommandUUID: id, Raw: []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>CommandUUID</key><string>` + id +
			`</string><key>Command</key><dict><key>RequestType</key><string>` + rt + `</string></dict></dict></plist>`)}
	}
	for _, c := range []*mdm.Command{raw("s", "Settings"), raw("sec", "SecurityInfo"), raw("pl", "ProfileList"), raw("lock", "DeviceLock")} {
		f.enqueueRaw(c)
	}
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := byUUID(res)
	if got["s"].Status != mdm.StatusAcknowledged || resultDict(t, got["s"].Result)["Settings"] == nil {
		t.Errorf("custom handler: %+v", got["s"])
	}
	if got["sec"].ErrorChain[0].ErrorCode != ErrCodeUnknownCommand {
		t.Errorf("removed handler: %+v", got["sec"])
	}
	for _, id := range []string{"pl", "lock"} {
		if c := got[id]; c.Status != mdm.StatusError || c.ErrorChain[0].ErrorDomain != DomainDevice {
			t.Errorf("%s: broken handler answered %+v", id, c)
		}
	}
}

// TestRemoveEnrollmentProfileUnenrolls: RemoveProfile of the enrollment
// profile is how a server retires a device: it acknowledges, the session
// ends, and the device checks out and drops its enrollment.
func TestRemoveEnrollmentProfileUnenrolls(t *testing.T) {
	f := newFakeMDM(t, false)
	o := f.options()
	o.CheckOutWhenRemoved = true
	d := f.enrolled(o, WithModel(IPhone))
	ids := f.enqueue(&mdm.RemoveProfile{Identifier: o.Identifier}, &mdm.SecurityInfo{})
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commands) != 1 || res.Commands[0].CommandUUID != ids[0] || res.Commands[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("answered %+v, want only the RemoveProfile, acknowledged", res.Commands)
	}
	if !res.Unenrolled || d.IsEnrolled() {
		t.Fatalf("Unenrolled %v, still enrolled %v", res.Unenrolled, d.IsEnrolled())
	}
	cs := f.checkinsSnapshot()
	if last := cs[len(cs)-1]; last.msg.Type() != mdm.MessageCheckOut {
		t.Errorf("last check-in %s, want CheckOut", last.msg.Type())
	}
	if _, err := d.Connect(ctx(t)); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("Connect after retirement: %v, want ErrNotEnrolled", err)
	}
}
