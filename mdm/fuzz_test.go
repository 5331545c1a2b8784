package mdm

import "testing"

func FuzzDecodeCheckin(f *testing.F) {
	for _, name := range []string{"authenticate_ios.plist", "tokenupdate_ue.plist"} {
		f.Add(readTestdata(f, name))
	}
	f.Add(plistDoc(`<key>MessageType</key><string>GetToken</string><key>UDID</key><string>u</string><key>TokenServiceType</key><string>x</string><key>TokenParameters</key><dict><key>a</key><data>AA==</data></dict>`))
	f.Add([]byte("bplist00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := DecodeCheckin(raw)
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("error without 400 status: %v", err)
			}
			return
		}
		if _, err := m.IDs().Resolve(); err != nil {
			t.Fatalf("decoded message does not resolve: %v", err)
		}
	})
}

func FuzzDecodeCommandResults(f *testing.F) {
	f.Add(readTestdata(f, "result_deviceinformation.plist"))
	f.Add(plistDoc(`<key>UDID</key><string>u</string><key>Status</key><string>Idle</string>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := DecodeCommandResults(raw)
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("error without 400 status: %v", err)
			}
			return
		}
		if r.Status != StatusIdle && r.CommandUUID == "" {
			t.Fatal("non-Idle result without CommandUUID accepted")
		}
	})
}

func FuzzCommandFromJSON(f *testing.F) {
	f.Add([]byte(`{"RequestType":"DeviceInformation","Queries":["UDID"]}`))
	f.Add([]byte(`{"RequestType":"InstallProfile","Payload":"AAAA"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := CommandFromJSON(raw, "U")
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("error without 400 status: %v", err)
			}
			return
		}
		if _, err := DecodeCommand(c.Raw); err != nil {
			t.Fatalf("encoded command does not decode: %v", err)
		}
	})
}
