package handlers

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/api"
)

// TestHostileInputs sends requests a careless or hostile client might:
// each must get the right 4xx and a JSON error that names the problem,
// never a 5xx.
func TestHostileInputs(t *testing.T) {
	e := newEnv(t, WithMaxBody(256<<10))
	e.seed()
	e.enqueue("TAKEN-UUID", idEnrolled)

	typed := func(ids string, cmd string) string {
		return `{"enrollment_ids":` + ids + `,"command":` + cmd + `}`
	}
	devInfo := `{"RequestType":"DeviceInformation","Queries":["DeviceName"]}`
	one := `["` + idEnrolled + `"]`
	tooMany := func() string {
		ids := make([]string, MaxEnqueueIDs+1)
		for i := range ids {
			ids[i] = "D" + itoa(int64(i))
		}
		b, _ := json.Marshal(map[string]any{"enrollment_ids": ids, "command": json.RawMessage(devInfo)})
		return string(b)
	}
	rawPlist := func(p string) string {
		b, _ := json.Marshal(map[string]any{"enrollment_ids": []string{idEnrolled}, "raw_plist": p})
		return string(b)
	}
	deep := `<?xml version="1.0"?><plist version="1.0">` + strings.Repeat("<array>", 500) + strings.Repeat("</array>", 500) + `</plist>`

	cases := []struct {
		name string
		r    req
		want int
		// says is a fragment the error must contain (case-insensitive).
		says string
	}{
		{"missing key", req{method: "GET", path: "/v1/enrollments", noKey: true}, 401, "API key missing"},
		{"wrong key", req{method: "GET", path: "/v1/enrollments", noKey: true, headers: map[string]string{"Authorization": "Bearer guess"}}, 401, "not accepted"},
		{"wrong key in X-API-Key", req{method: "POST", path: "/v1/reset", noKey: true, headers: map[string]string{"X-API-Key": "guess"}}, 401, "not accepted"},
		{"bad JSON", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids": [`}, 400, "truncated"},
		{"not JSON at all", req{method: "POST", path: "/v1/commands", body: `enrollment_ids=x`}, 400, "not valid JSON"},
		{"empty body", req{method: "POST", path: "/v1/commands", contentType: "application/json"}, 400, "empty"},
		{"JSON array instead of object", req{method: "POST", path: "/v1/commands", body: `[1,2]`}, 400, "must be a JSON object"},
		{"two JSON objects", req{method: "POST", path: "/v1/commands", body: typed(one, devInfo) + `{}`}, 400, "after the JSON object"},
		{"unknown field", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":["x"],"comand":{}}`}, 400, `unknown field "comand"`},
		{"enrollment_ids wrong type", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":"` + idEnrolled + `","command":` + devInfo + `}`}, 400, `"enrollment_ids" must be an array`},
		{"both command and raw_plist", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":` + one + `,"command":` + devInfo + `,"raw_plist":"<plist/>"}`}, 400, "not both"},
		{"neither command nor raw_plist", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":` + one + `}`}, 400, "command is missing"},
		{"command null", req{method: "POST", path: "/v1/commands", body: typed(one, `null`)}, 400, "command is missing"},
		{"no enrollment_ids", req{method: "POST", path: "/v1/commands", body: `{"command":` + devInfo + `}`}, 400, "enrollment_ids"},
		{"empty enrollment ID", req{method: "POST", path: "/v1/commands", body: typed(`[""]`, devInfo)}, 400, `[0] is empty`},
		{"duplicate enrollment ID", req{method: "POST", path: "/v1/commands", body: typed(`["`+idEnrolled+`","`+idEnrolled+`"]`, devInfo)}, 400, "twice"},
		{"unknown RequestType", req{method: "POST", path: "/v1/commands", body: typed(one, `{"RequestType":"MakeCoffee"}`)}, 400, "MakeCoffee"},
		{"missing RequestType", req{method: "POST", path: "/v1/commands", body: typed(one, `{"Queries":["x"]}`)}, 400, "RequestType"},
		{"typed command wrong-typed field", req{method: "POST", path: "/v1/commands", body: typed(one, `{"RequestType":"DeviceInformation","Queries":"DeviceName"}`)}, 400, "Queries"},
		{"typed command unknown key", req{method: "POST", path: "/v1/commands", body: typed(one, `{"RequestType":"DeviceInformation","Queries":["x"],"Querys":["y"]}`)}, 400, "Querys"},
		{"typed command fails its rule", req{method: "POST", path: "/v1/commands", body: typed(one, `{"RequestType":"DeviceInformation","Queries":[]}`)}, 400, "Queries"},
		{"InstallProfile payload not base64", req{method: "POST", path: "/v1/commands", body: typed(one, `{"RequestType":"InstallProfile","Payload":"not base64!"}`)}, 400, "InstallProfile"},
		{"command is a string", req{method: "POST", path: "/v1/commands", body: typed(one, `"DeviceInformation"`)}, 400, "command"},
		{"raw_plist not a plist", req{method: "POST", path: "/v1/commands", body: rawPlist("RequestType=DeviceLock")}, 400, "raw_plist"},
		{"raw_plist without Command", req{method: "POST", path: "/v1/commands", body: rawPlist(`<plist version="1.0"><dict><key>CommandUUID</key><string>X</string></dict></plist>`)}, 400, "Command"},
		{"raw_plist without RequestType", req{method: "POST", path: "/v1/commands", body: rawPlist(`<plist version="1.0"><dict><key>Command</key><dict/></dict></plist>`)}, 400, "RequestType"},
		{"raw_plist binary", req{method: "POST", path: "/v1/commands", body: rawPlist("bplist00\u0001\u0002")}, 400, "binary"},
		{"raw_plist nested 500 deep", req{method: "POST", path: "/v1/commands", body: rawPlist(deep)}, 400, "nested more than"},
		{"raw_plist UUID differs from command_uuid", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":` + one + `,"command_uuid":"A","raw_plist":"<plist version=\"1.0\"><dict><key>CommandUUID</key><string>B</string><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>"}`}, 400, "differs"},
		{"command_uuid with a slash", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":` + one + `,"command_uuid":"../x","command":` + devInfo + `}`}, 400, "command_uuid"},
		{"unknown enrollment", req{method: "POST", path: "/v1/commands", body: typed(`["`+idEnrolled+`","GHOST-1","GHOST-2"]`, devInfo)}, 404, `"GHOST-1", "GHOST-2"`},
		{"checked-out enrollment", req{method: "POST", path: "/v1/commands", body: typed(`["`+idCheckedOut+`"]`, devInfo)}, 409, "checked out"},
		{"too many IDs", req{method: "POST", path: "/v1/commands", body: tooMany()}, 400, "at most 10000"},
		{"oversized body", req{method: "POST", path: "/v1/commands", body: typed(one, `{"RequestType":"InstallProfile","Payload":"`+strings.Repeat("A", 300<<10)+`"}`)}, 413, "larger than the limit"},
		{"wrong content type", req{method: "POST", path: "/v1/commands", body: typed(one, devInfo), contentType: "text/plain"}, 415, "not JSON"},
		{"missing content type", req{method: "POST", path: "/v1/commands", body: typed(one, devInfo), headers: map[string]string{"Content-Type": ""}}, 415, "Content-Type missing"},
		{"form content type", req{method: "POST", path: "/v1/commands", body: typed(one, devInfo), contentType: "application/x-www-form-urlencoded"}, 415, "not JSON"},
		{"duplicate command UUID", req{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":` + one + `,"command_uuid":"TAKEN-UUID","command":` + devInfo + `}`}, 409, "already exists"},
		{"bad wait value", req{method: "GET", path: "/v1/commands/TAKEN-UUID?wait=soon"}, 400, "wait="},
		{"negative wait", req{method: "GET", path: "/v1/commands/TAKEN-UUID?wait=-5s"}, 400, "wait="},
		{"wait too long", req{method: "GET", path: "/v1/commands/TAKEN-UUID?wait=10m"}, 400, "2m0s"},
		{"wait NaN", req{method: "GET", path: "/v1/commands/TAKEN-UUID?wait=NaN"}, 400, "wait="},
		{"wait seconds too many", req{method: "GET", path: "/v1/commands/TAKEN-UUID?wait=121"}, 400, "wait="},
		{"unknown command UUID", req{method: "GET", path: "/v1/commands/NO-SUCH-UUID"}, 404, "NO-SUCH-UUID"},
		{"unknown command UUID with wait", req{method: "GET", path: "/v1/commands/NO-SUCH-UUID?wait=5s"}, 404, "NO-SUCH-UUID"},
		{"bad limit", req{method: "GET", path: "/v1/transcript?limit=abc"}, 400, "limit="},
		{"limit zero", req{method: "GET", path: "/v1/transcript?limit=0"}, 400, "limit="},
		{"limit too big", req{method: "GET", path: "/v1/transcript?limit=5001"}, 400, "5000"},
		{"negative after", req{method: "GET", path: "/v1/enrollments/" + idEnrolled + "/transcript?after=-1"}, 400, "after="},
		{"after not a number", req{method: "GET", path: "/v1/transcript?after=1e3"}, 400, "after="},
		{"unknown enrollment", req{method: "GET", path: "/v1/enrollments/GHOST"}, 404, `"GHOST"`},
		{"queue of unknown enrollment", req{method: "GET", path: "/v1/enrollments/GHOST/queue"}, 404, `"GHOST"`},
		{"transcript of unknown enrollment", req{method: "GET", path: "/v1/enrollments/GHOST/transcript"}, 404, `"GHOST"`},
		{"challenge ttl not a duration", req{method: "POST", path: "/v1/scep/challenges", body: `{"ttl":"tomorrow"}`}, 400, "ttl"},
		{"challenge ttl too long", req{method: "POST", path: "/v1/scep/challenges", body: `{"ttl":"721h"}`}, 400, "30 days"},
		{"challenge ttl zero", req{method: "POST", path: "/v1/scep/challenges", body: `{"ttl":"0s"}`}, 400, "ttl"},
		{"challenge ttl as number", req{method: "POST", path: "/v1/scep/challenges", body: `{"ttl":3600}`}, 400, `"ttl" must be a string`},
		{"challenge unknown field", req{method: "POST", path: "/v1/scep/challenges", body: `{"TTL":"1h","uses":3}`}, 400, `"uses"`},
		{"challenge body wrong content type", req{method: "POST", path: "/v1/scep/challenges", body: `{"ttl":"1h"}`, contentType: "text/plain"}, 415, "not JSON"},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(tc.r)
			body := decode[api.ErrorBody](t, rec, tc.want)
			t.Logf("%d %s", rec.Code, body.Error)
			if body.Status != tc.want {
				t.Errorf("body status %d, want %d", body.Status, tc.want)
			}
			if !strings.Contains(strings.ToLower(body.Error), strings.ToLower(tc.says)) {
				t.Errorf("error %q does not say %q", body.Error, tc.says)
			}
		})
	}
	// Nothing hostile got queued: the enrolled device still has only the seed command.
	q := decode[api.Queue](t, e.do(req{method: "GET", path: "/v1/enrollments/" + idEnrolled + "/queue"}), 200)
	if len(q.Items) != 1 || q.Items[0].CommandUUID != "TAKEN-UUID" {
		t.Errorf("queue after hostile requests: %+v", q.Items)
	}
}
