package mdm

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/captures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func plistDoc(body string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` + body + `</dict></plist>`)
}

func TestDecodeCheckinCaptures(t *testing.T) {
	raw := readTestdata(t, "authenticate_ios.plist")
	m, err := DecodeCheckin(raw)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := m.(*Authenticate)
	if !ok {
		t.Fatalf("got %T", m)
	}
	if a.SerialNumber != "F2LXK1ABCD12" || a.ProductName != "iPhone15,2" || !strings.HasPrefix(a.Topic, "com.apple.mgmt.") {
		t.Errorf("fields not decoded: %+v", a)
	}
	if string(a.RawBytes()) != string(raw) {
		t.Error("Raw is not the exact input")
	}
	id, err := a.IDs().Resolve()
	if err != nil || id.Type != Device || id.ID != a.UDID || id.DeviceID != a.UDID {
		t.Errorf("resolve = %+v, %v", id, err)
	}

	m, err = DecodeCheckin(readTestdata(t, "tokenupdate_ue.plist"))
	if err != nil {
		t.Fatal(err)
	}
	tu := m.(*TokenUpdate)
	if len(tu.Token) != 32 || tu.PushMagic == "" {
		t.Errorf("token update: %+v", tu)
	}
	id, _ = tu.IDs().Resolve()
	if id.Type != UserEnrollmentDevice || id.ID != tu.EnrollmentID {
		t.Errorf("UE resolve = %+v", id)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name string
		in   Enrollment
		want ResolvedID
		err  bool
	}{
		{"device", Enrollment{UDID: "u1"}, ResolvedID{"u1", Device, "u1"}, false},
		{"mac user", Enrollment{UDID: "u1", UserID: "U-2"}, ResolvedID{"u1:U-2", User, "u1"}, false},
		{"shared ipad", Enrollment{UDID: "u1", UserID: SharedIPadUserID, UserShortName: "a@b.c"}, ResolvedID{"u1:a@b.c", SharedIPad, "u1"}, false},
		{"shared ipad without short name", Enrollment{UDID: "u1", UserID: SharedIPadUserID}, ResolvedID{}, true},
		{"user enrollment", Enrollment{EnrollmentID: "e1"}, ResolvedID{"e1", UserEnrollmentDevice, "e1"}, false},
		{"user enrollment user channel", Enrollment{EnrollmentID: "e1", EnrollmentUserID: "eu"}, ResolvedID{"e1:eu", UserEnrollment, "e1"}, false},
		{"nothing", Enrollment{}, ResolvedID{}, true},
		{"blank udid", Enrollment{UDID: "  "}, ResolvedID{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Resolve()
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v want %+v", got, tt.want)
			}
		})
	}
}

// statusOf mirrors internal/httperr.StatusOf without importing it (mdm is a leaf).
func statusOf(err error) int {
	var s interface{ HTTPStatus() int }
	if errors.As(err, &s) {
		return s.HTTPStatus()
	}
	return 500
}

func TestDecodeCheckinHostile(t *testing.T) {
	const topic = `<key>Topic</key><string>com.apple.mgmt.External.x</string>`
	tests := []struct {
		name, body, want string
	}{
		{"empty", "", "empty body"},
		{"not xml", "hello", "not a valid property list"},
		{"json", `{"MessageType":"Authenticate"}`, "not a valid property list"},
		{"truncated", `<?xml version="1.0"?><plist version="1.0"><dict><key>MessageType</key>`, "not a valid property list"},
		{"array top", `<?xml version="1.0"?><plist version="1.0"><array/></plist>`, "dictionary"},
		{"no message type", string(plistDoc(`<key>UDID</key><string>u</string>`)), "MessageType: missing"},
		{"message type int", string(plistDoc(`<key>MessageType</key><integer>3</integer>`)), "MessageType: must be a string"},
		{"unknown type", string(plistDoc(`<key>MessageType</key><string>Hello</string><key>UDID</key><string>u</string>`)), "unknown check-in MessageType"},
		{"no ids", string(plistDoc(`<key>MessageType</key><string>Authenticate</string>` + topic)), "neither UDID"},
		{"no topic", string(plistDoc(`<key>MessageType</key><string>Authenticate</string><key>UDID</key><string>u</string>`)), "Topic"},
		{"udid wrong type", string(plistDoc(`<key>MessageType</key><string>Authenticate</string><key>UDID</key><integer>1</integer>` + topic)), "UDID: must be <string>, got <integer>"},
		{"token as string", string(plistDoc(`<key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>u</string><key>Token</key><string>abc</string><key>PushMagic</key><string>m</string>` + topic)), "Token: must be <data>, got <string>"},
		{"token missing", string(plistDoc(`<key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>u</string><key>PushMagic</key><string>m</string>` + topic)), "Token"},
		{"push magic missing", string(plistDoc(`<key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>u</string><key>Token</key><data>AAAA</data>` + topic)), "PushMagic"},
		{"authenticate on user channel", string(plistDoc(`<key>MessageType</key><string>Authenticate</string><key>UDID</key><string>u</string><key>UserID</key><string>x</string>` + topic)), "device channel"},
		{"both udid and enrollment id", string(plistDoc(`<key>MessageType</key><string>Authenticate</string><key>UDID</key><string>u</string><key>EnrollmentID</key><string>e</string>` + topic)), "both UDID and EnrollmentID"},
		{"dm without endpoint", string(plistDoc(`<key>MessageType</key><string>DeclarativeManagement</string><key>UDID</key><string>u</string>`)), "Endpoint"},
		{"gettoken without type", string(plistDoc(`<key>MessageType</key><string>GetToken</string><key>UDID</key><string>u</string>`)), "TokenServiceType"},
		{"checkout without topic", string(plistDoc(`<key>MessageType</key><string>CheckOut</string><key>UDID</key><string>u</string>`)), "Topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCheckin([]byte(tt.body))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if s := statusOf(err); s != 400 {
				t.Errorf("status %d, want 400", s)
			}
		})
	}
}

func TestDecodeCheckinAllTypes(t *testing.T) {
	const ids = `<key>UDID</key><string>u</string>`
	bodies := map[string]string{
		MessageAuthenticate:          `<key>Topic</key><string>t</string>`,
		MessageTokenUpdate:           `<key>Topic</key><string>t</string><key>Token</key><data>AAAA</data><key>PushMagic</key><string>m</string><key>AwaitingConfiguration</key><true/>`,
		MessageCheckOut:              `<key>Topic</key><string>t</string>`,
		MessageSetBootstrapToken:     `<key>BootstrapToken</key><data>AAAA</data>`,
		MessageGetBootstrapToken:     ``,
		MessageUserAuthenticate:      `<key>UserID</key><string>x</string>`,
		MessageDeclarativeManagement: `<key>Endpoint</key><string>tokens</string>`,
		MessageGetToken:              `<key>TokenServiceType</key><string>com.apple.maid</string>`,
	}
	for _, mt := range CheckinMessageTypes {
		body, ok := bodies[mt]
		if !ok {
			t.Fatalf("no sample for %s", mt)
		}
		if mt == MessageUserAuthenticate {
			body = `<key>UserID</key><string>x</string>`
		}
		m, err := DecodeCheckin(plistDoc(`<key>MessageType</key><string>` + mt + `</string>` + ids + body))
		if err != nil {
			t.Errorf("%s: %v", mt, err)
			continue
		}
		if m.Type() != mt {
			t.Errorf("%s decoded as %s", mt, m.Type())
		}
	}
}

func TestDecodeCommandResults(t *testing.T) {
	r, err := DecodeCommandResults(readTestdata(t, "result_deviceinformation.plist"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusAcknowledged || r.CommandUUID != "0001_DeviceInformation" || r.UDID == "" {
		t.Errorf("%+v", r)
	}
	errChain := plistDoc(`<key>UDID</key><string>u</string><key>Status</key><string>Error</string><key>CommandUUID</key><string>c</string>
<key>ErrorChain</key><array><dict><key>ErrorCode</key><integer>12021</integer><key>ErrorDomain</key><string>MCMDMErrorDomain</string><key>LocalizedDescription</key><string>Unknown command</string></dict></array>`)
	r, err = DecodeCommandResults(errChain)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ErrorChain) != 1 || r.ErrorChain[0].ErrorCode != 12021 {
		t.Errorf("error chain: %+v", r.ErrorChain)
	}

	hostile := []struct{ name, body, want string }{
		{"no status", string(plistDoc(`<key>UDID</key><string>u</string>`)), "Status: missing"},
		{"bad status", string(plistDoc(`<key>UDID</key><string>u</string><key>Status</key><string>Done</string>`)), "not one of"},
		{"ack without uuid", string(plistDoc(`<key>UDID</key><string>u</string><key>Status</key><string>Acknowledged</string>`)), "CommandUUID"},
		{"no ids", string(plistDoc(`<key>Status</key><string>Idle</string>`)), "neither UDID"},
		{"status wrong type", string(plistDoc(`<key>UDID</key><string>u</string><key>Status</key><true/>`)), "Status: must be <string>"},
		{"error chain wrong type", string(plistDoc(`<key>UDID</key><string>u</string><key>Status</key><string>Error</string><key>CommandUUID</key><string>c</string><key>ErrorChain</key><string>x</string>`)), "ErrorChain: must be <array>"},
		{"garbage", "\x00\x01bplist00garbage", "not a valid property list"},
	}
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCommandResults([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) || statusOf(err) != 400 {
				t.Errorf("err = %v (status %d), want 400 mentioning %q", err, statusOf(err), tt.want)
			}
		})
	}
}

func TestTypedCommands(t *testing.T) {
	for _, rt := range TypedRequestTypes() {
		body := `{"RequestType":"` + rt + `"}`
		switch rt {
		case "DeviceInformation":
			body = `{"RequestType":"DeviceInformation","Queries":["DeviceName","OSVersion"]}`
		case "InstallProfile":
			body = `{"RequestType":"InstallProfile","Payload":"PD94bWw+"}`
		case "RemoveProfile":
			body = `{"RequestType":"RemoveProfile","Identifier":"com.example.p"}`
		case "DeleteUser":
			body = `{"RequestType":"DeleteUser","UserName":"ann@example.org","ForceDeletion":true}`
		}
		c, err := CommandFromJSON([]byte(body), "uuid-"+rt)
		if err != nil {
			t.Errorf("%s: %v", rt, err)
			continue
		}
		if c.RequestType != rt || c.CommandUUID != "uuid-"+rt {
			t.Errorf("%s: %+v", rt, c)
		}
		back, err := DecodeCommand(c.Raw)
		if err != nil || back.RequestType != rt {
			t.Errorf("%s: round trip: %v %+v", rt, err, back)
		}
	}
	c, err := CommandFromJSON([]byte(`{"RequestType":"InstallProfile","Payload":"PD94bWw+"}`), "u")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(c.Raw), "<data>") {
		t.Errorf("InstallProfile Payload must be <data>:\n%s", c.Raw)
	}

	hostile := []struct{ name, body, want string }{
		{"not json", `{`, "not valid JSON"},
		{"no request type", `{}`, "missing"},
		{"unknown type", `{"RequestType":"Nope"}`, "has no typed JSON form"},
		{"unknown key", `{"RequestType":"SecurityInfo","Bogus":1}`, "unknown field"},
		{"queries wrong type", `{"RequestType":"DeviceInformation","Queries":"UDID"}`, "does not fit"},
		{"no queries", `{"RequestType":"DeviceInformation"}`, "at least one query"},
		{"payload not base64", `{"RequestType":"InstallProfile","Payload":"***"}`, "does not fit"},
		{"empty payload", `{"RequestType":"InstallProfile"}`, "profile bytes"},
		{"no identifier", `{"RequestType":"RemoveProfile"}`, "PayloadIdentifier"},
		{"delete no user", `{"RequestType":"DeleteUser","ForceDeletion":true}`, "DeleteAllUsers"},
		{"restrictions flag wrong type", `{"RequestType":"Restrictions","ProfileRestrictions":"yes"}`, "does not fit"},
		{"nonce too long", `{"RequestType":"DeviceInformation","Queries":["UDID"],"DeviceAttestationNonce":"` + strings.Repeat("QUFB", 12) + `"}`, "at most 32 bytes"},
	}
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CommandFromJSON([]byte(tt.body), "u")
			if err == nil || !strings.Contains(err.Error(), tt.want) || statusOf(err) != 400 {
				t.Errorf("err = %v, want 400 mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCommandFromPlist(t *testing.T) {
	raw := plistDoc(`<key>Command</key><dict><key>RequestType</key><string>Restrictions</string></dict>`)
	c, err := CommandFromPlist(raw, func() string { return "NEW" })
	if err != nil {
		t.Fatal(err)
	}
	if c.CommandUUID != "NEW" || c.RequestType != "Restrictions" {
		t.Errorf("%+v", c)
	}
	raw = plistDoc(`<key>CommandUUID</key><string>MINE</string><key>Command</key><dict><key>RequestType</key><string>Restrictions</string></dict>`)
	c, err = CommandFromPlist(raw, func() string { return "NEW" })
	if err != nil || c.CommandUUID != "MINE" || string(c.Raw) != string(raw) {
		t.Errorf("%+v %v", c, err)
	}
	for _, bad := range []string{"", "x", string(plistDoc(``)), string(plistDoc(`<key>Command</key><dict/>`)), string(plistDoc(`<key>Command</key><string>x</string>`))} {
		if _, err := CommandFromPlist([]byte(bad), func() string { return "N" }); err == nil || statusOf(err) != 400 {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

// selfContainingBinaryPlist is a binary plist whose root array contains
// itself: the plist library recurses on it until the process dies, so the
// decoders must refuse it before decoding.
func selfContainingBinaryPlist() []byte {
	b := append([]byte("bplist00"), 0xA1, 0x00, 0x08)
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 1, 1
	trailer[15] = 1  // one object
	trailer[23] = 0  // root is object 0
	trailer[31] = 10 // offset table at byte 10
	return append(b, trailer...)
}

func TestHostileBinaryPlists(t *testing.T) {
	for name, decode := range map[string]func([]byte) error{
		"checkin": func(b []byte) error { _, err := DecodeCheckin(b); return err },
		"results": func(b []byte) error { _, err := DecodeCommandResults(b); return err },
		"command": func(b []byte) error { _, err := DecodeCommand(b); return err },
	} {
		err := decode(selfContainingBinaryPlist())
		if err == nil || statusOf(err) != 400 || !strings.Contains(err.Error(), "refused property list") {
			t.Errorf("%s: err = %v", name, err)
		}
		deep := strings.Repeat("<array>", 5000)
		if err := decode([]byte(`<?xml version="1.0"?><plist version="1.0">` + deep + `</plist>`)); err == nil || statusOf(err) != 400 {
			t.Errorf("%s deep XML: err = %v", name, err)
		}
	}
}
