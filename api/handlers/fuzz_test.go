package handlers

import (
	"github.com/mockmdm/mockmdm/internal/plistguard"

	"bytes"
	"encoding/json"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store/memory"
)

// FuzzBuildCommand feeds arbitrary enqueue bodies through the envelope
// decoder and command builder: an error must be a 4xx, and a success must
// be a command plist a device can decode, with the UUID it was given.
func FuzzBuildCommand(f *testing.F) {
	f.Add([]byte(`{"enrollment_ids":["A"],"command":{"RequestType":"DeviceInformation","Queries":["UDID"]}}`))
	f.Add([]byte(`{"enrollment_ids":["A"],"command_uuid":"U-1","command":{"RequestType":"InstallProfile","Payload":"AAEC"}}`))
	f.Add([]byte(`{"enrollment_ids":["A","B"],"raw_plist":"<plist version=\"1.0\"><dict><key>Command</key><dict><key>RequestType</key><string>X</string></dict></dict></plist>"}`))
	f.Add([]byte(`{"enrollment_ids":["A"],"raw_plist":"<plist><dict><key>CommandUUID</key><integer>1</integer></dict></plist>"}`))
	f.Add([]byte(`{"enrollment_ids":[],"command":null}`))
	f.Add([]byte(`{"command":[1,{"a":"b"}],"raw_plist":"bplist00"}`))
	a := New(memory.New(), nil, WithNewUUID(func() string { return "FUZZ-UUID" }))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.EnqueueRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&req) != nil {
			return
		}
		cmd, ids, err := a.buildCommand(&req)
		if err != nil {
			if s := httperr.StatusOf(err); s < 400 || s > 499 {
				t.Fatalf("status %d for %q: %v", s, body, err)
			}
			return
		}
		if len(ids) == 0 || len(ids) > MaxEnqueueIDs {
			t.Fatalf("%d IDs accepted", len(ids))
		}
		got, err := mdm.DecodeCommand(cmd.Raw)
		if err != nil {
			t.Fatalf("built command does not decode: %v\n%s", err, cmd.Raw)
		}
		if got.CommandUUID != cmd.CommandUUID || got.RequestType != cmd.RequestType {
			t.Fatalf("built %+v, decodes as %+v", cmd, got)
		}
		if req.CommandUUID != "" && cmd.CommandUUID != req.CommandUUID {
			t.Fatalf("asked for UUID %q, got %q", req.CommandUUID, cmd.CommandUUID)
		}
		if checkCommandUUID("x", cmd.CommandUUID) != nil {
			t.Fatalf("UUID %q accepted", cmd.CommandUUID)
		}
	})
}

// FuzzPlistToJSON: any bytes (a stored device answer or transcript body)
// either convert to valid JSON or give an error; never a panic.
func FuzzPlistToJSON(f *testing.F) {
	f.Add([]byte(resultPlist("U", "C")))
	f.Add([]byte(errorPlist("U", "C")))
	f.Add([]byte(`<plist><array><real>nan</real><real>-inf</real><date>2024-01-01T00:00:00Z</date></array></plist>`))
	f.Add([]byte(`<plist><dict><key>a</key><data>!!!</data></dict></plist>`))
	f.Add([]byte("bplist00\x00"))
	f.Add([]byte(`<plist><dict><key>k</key>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := plistToJSON(b)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON %q from %q", out, b)
		}
	})
}

// FuzzParseWait: the wait parameter is accepted only within its bounds.
func FuzzParseWait(f *testing.F) {
	for _, s := range []string{"30s", "2.5", "-1", "NaN", "1e300", "0x1p4", "120", "2m0.000000001s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseWait(s)
		if err == nil && (d < 0 || d > maxWait) {
			t.Fatalf("parseWait(%q) = %v", s, d)
		}
		if err != nil && httperr.StatusOf(err) != 400 {
			t.Fatalf("parseWait(%q): status %d", s, httperr.StatusOf(err))
		}
	})
}

// TestPlistToJSONValues checks the conversion rules one value at a time.
func TestPlistToJSONValues(t *testing.T) {
	wrap := func(v string) []byte { return []byte(`<plist version="1.0">` + v + `</plist>`) }
	for in, want := range map[string]string{
		`<string>a&lt;b</string>`:                              `"a\u003cb"`,
		`<integer>-42</integer>`:                               `-42`,
		`<integer>18446744073709551615</integer>`:              `18446744073709551615`,
		`<real>1.5</real>`:                                     `1.5`,
		`<false/>`:                                             `false`,
		`<data>aGVsbG8=</data>`:                                `"aGVsbG8="`,
		`<date>2024-06-01T12:00:00Z</date>`:                    `"2024-06-01T12:00:00Z"`,
		`<dict><key>b</key><dict/><key>a</key><array/></dict>`: `{"a":[],"b":{}}`,
	} {
		got, err := plistToJSON(wrap(in))
		if err != nil || string(got) != want {
			t.Errorf("%s → %s, %v; want %s", in, got, err, want)
		}
	}
	// Non-finite reals have no JSON number; they become strings.
	if v := jsonValue([]any{nan(), inf(1), inf(-1), float32(2)}); !equalJSON(t, v, `["NaN","+Inf","-Inf",2]`) {
		t.Errorf("non-finite reals: %v", v)
	}
	if _, err := plistToJSON([]byte("bplist00\x00\x00")); err == nil {
		t.Error("binary plist decoded")
	}
	deep := wrap(string(bytes.Repeat([]byte("<array>"), 200)) + string(bytes.Repeat([]byte("</array>"), 200)))
	if _, err := plistToJSON(deep); err == nil {
		t.Error("200-deep plist decoded")
	}
	many := wrap("<array>" + string(bytes.Repeat([]byte("<true/>"), plistguard.MaxElements+1)) + "</array>")
	if _, err := plistToJSON(many); err == nil {
		t.Error("plist with too many elements decoded")
	}
}

func nan() float64         { var z float64; return z / z }
func inf(sign int) float64 { var z float64; return float64(sign) / z }

func equalJSON(t *testing.T, v any, want string) bool {
	t.Helper()
	b, err := json.Marshal(v)
	return err == nil && string(b) == want
}
