package device

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/mdm"
)

// parseCommandPasses is parseCommand before its one-decode path: the
// oracle the one pass is held to.
func parseCommandPasses(raw []byte) (*Command, string, error) {
	var head struct{ CommandUUID any }
	uuid := ""
	if plist.Unmarshal(raw, &head) == nil {
		uuid, _ = head.CommandUUID.(string)
	}
	c, err := mdm.DecodeCommand(raw)
	if err != nil {
		return nil, uuid, err
	}
	var full struct{ Command map[string]any }
	if err := plist.Unmarshal(raw, &full); err != nil {
		return nil, uuid, err
	}
	return &Command{UUID: c.CommandUUID, RequestType: c.RequestType, Params: full.Command, Raw: raw}, c.CommandUUID, nil
}

// encodeResultPasses is encodeResult's encode, decode, merge, encode: the
// oracle its single encoding is held to.
func encodeResultPasses(ids mdm.Enrollment, uuid, requestType string, r Response) ([]byte, error) {
	base := mdm.CommandResults{Enrollment: ids, CommandUUID: uuid, Status: r.Status, RequestType: requestType, ErrorChain: r.ErrorChain}
	b, err := plist.Marshal(base)
	if err != nil || len(r.Keys) == 0 {
		return b, err
	}
	var dict map[string]any
	if err := plist.Unmarshal(b, &dict); err != nil {
		return nil, err
	}
	for k, v := range r.Keys {
		if _, taken := dict[k]; taken || v == nil {
			continue
		}
		dict[k] = v
	}
	return plist.Marshal(dict)
}

func checkParseCommand(t *testing.T, raw []byte) {
	t.Helper()
	if checkXMLNesting(raw) != nil || bytes.HasPrefix(raw, []byte("bplist")) {
		return
	}
	got, gotUUID, gotErr := parseCommand(raw)
	want, wantUUID, wantErr := parseCommandPasses(raw)
	if (gotErr == nil) != (wantErr == nil) || gotUUID != wantUUID {
		t.Fatalf("one pass: %v %q, passes: %v %q\n%q", gotErr, gotUUID, wantErr, wantUUID, raw)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("one pass %+v != passes %+v\n%q", got, want, raw)
	}
}

// TestParseCommandOnePass: what the server sends decodes in one pass to
// what the three passes gave; everything else takes the passes.
func TestParseCommandOnePass(t *testing.T) {
	for _, c := range []map[string]any{
		{"RequestType": "SecurityInfo"},
		{"RequestType": "DeviceInformation", "Queries": []string{"UDID", "OSVersion"}},
		{"RequestType": "InstallProfile", "Payload": []byte("<plist/>")},
		{"RequestType": 7},
		{"RequestType": ""},
		{},
	} {
		for _, uuid := range []any{"u-1", "", 42} {
			raw, err := plist.Marshal(map[string]any{"CommandUUID": uuid, "Command": c})
			if err != nil {
				t.Fatal(err)
			}
			checkParseCommand(t, raw)
		}
	}
	for _, raw := range []string{`<plist version="1.0"><dict><key>CommandUUID</key><string>x</string></dict></plist>`, `<plist>`, ``, `<plist version="1.0"><array/></plist>`} {
		checkParseCommand(t, []byte(raw))
	}
}

func FuzzParseCommandOnePass(f *testing.F) {
	for _, c := range []string{
		`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>SecurityInfo</string></dict><key>CommandUUID</key><string>u</string></dict></plist>`,
		`<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><integer>1</integer></dict><key>CommandUUID</key><string>u</string></dict></plist>`,
		`<plist version="1.0"><dict><key>Command</key><string>x</string><key>CommandUUID</key><true/></dict></plist>`,
	} {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkParseCommand(t, raw) })
}

// TestEncodeResultOneEncoding: the result bytes are the ones the encode,
// decode, merge, encode passes made, for every shape of response.
func TestEncodeResultOneEncoding(t *testing.T) {
	chain := []mdm.ErrorChainItem{{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "no"}}
	for name, tc := range map[string]struct {
		ids mdm.Enrollment
		r   Response
	}{
		"no keys":                          {mdm.Enrollment{UDID: "U"}, Response{Status: mdm.StatusAcknowledged}},
		"keys":                             {mdm.Enrollment{UDID: "U"}, Response{Status: mdm.StatusAcknowledged, Keys: map[string]any{"SecurityInfo": map[string]any{"A": 1, "B": true, "C": []any{"x"}}}}},
		"keys and user ids":                {mdm.Enrollment{EnrollmentID: "E", EnrollmentUserID: "EU", UserShortName: "s"}, Response{Status: mdm.StatusAcknowledged, Keys: map[string]any{"X": 1.5}}},
		"handler claims UDID":              {mdm.Enrollment{UDID: "U"}, Response{Status: mdm.StatusAcknowledged, Keys: map[string]any{"UDID": "forged", "Status": "Idle", "Other": "kept"}}},
		"handler sets a free protocol key": {mdm.Enrollment{UDID: "U"}, Response{Status: mdm.StatusAcknowledged, Keys: map[string]any{"UserID": "set"}}},
		"nil value":                        {mdm.Enrollment{UDID: "U"}, Response{Status: mdm.StatusAcknowledged, Keys: map[string]any{"Gone": nil, "Here": "x"}}},
		"error chain and keys":             {mdm.Enrollment{UDID: "U"}, Response{Status: mdm.StatusError, ErrorChain: chain, Keys: map[string]any{"X": "y"}}},
		"error chain":                      {mdm.Enrollment{UDID: "U"}, Response{Status: mdm.StatusError, ErrorChain: chain}},
	} {
		got, err := encodeResult(tc.ids, "C-1", "SecurityInfo", tc.r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := encodeResultPasses(tc.ids, "C-1", "SecurityInfo", tc.r)
		if err != nil {
			t.Fatalf("%s: oracle: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: one encoding differs from the passes:\n%s\n---\n%s", name, got, want)
		}
	}
}
