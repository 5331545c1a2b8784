package handlers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

func TestInfo(t *testing.T) {
	e := newEnv(t)
	info := decode[api.ServerInfo](t, e.do(req{method: "GET", path: "/v1/info"}), 200)
	if info.Version != "test" || info.EnrollmentURL != "https://mdm.test/enroll" || info.Topic != "com.apple.mgmt.External.test" {
		t.Errorf("info = %+v", info)
	}
}

func TestRequireKey(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"bearer", map[string]string{"Authorization": "Bearer " + testKey}, 200},
		{"bearer lower-case scheme", map[string]string{"Authorization": "bearer " + testKey}, 200},
		{"x-api-key", map[string]string{"X-API-Key": testKey}, 200},
		{"bearer wins over a wrong x-api-key", map[string]string{"Authorization": "Bearer " + testKey, "X-API-Key": "nope"}, 200},
		{"missing", nil, 401},
		{"basic scheme", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+testKey))}, 401},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, 401},
		{"wrong", map[string]string{"Authorization": "Bearer " + testKey + "x"}, 401},
		{"prefix of key", map[string]string{"X-API-Key": testKey[:5]}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(req{method: "GET", path: "/v1/info", noKey: true, headers: tc.headers})
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 401 {
				body := decode[api.ErrorBody](t, rec, 401)
				if body.Status != 401 || body.Error == "" {
					t.Errorf("body %+v", body)
				}
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	if strings.Contains(e.logs.String(), testKey) {
		t.Error("the API key appears in the log")
	}
	rec := e.do(req{method: "GET", path: "/v1/info", noKey: true})
	if !strings.Contains(rec.Body.String(), "Authorization: Bearer") || !strings.Contains(rec.Body.String(), "X-API-Key") {
		t.Errorf("missing-key error does not say how to pass the key: %s", rec.Body)
	}
	rec = e.do(req{method: "GET", path: "/v1/info", noKey: true, headers: map[string]string{"X-API-Key": "wrong"}})
	if !strings.Contains(rec.Body.String(), "API key not accepted") {
		t.Errorf("wrong-key error: %s", rec.Body)
	}
	defer func() {
		if recover() == nil {
			t.Error("RequireKey with an empty key did not panic")
		}
	}()
	e.api.RequireKey("", http.NotFoundHandler())
}

func TestEnrollments(t *testing.T) {
	e := newEnv(t)
	list := decode[api.EnrollmentList](t, e.do(req{method: "GET", path: "/v1/enrollments"}), 200)
	if list.Enrollments == nil || len(list.Enrollments) != 0 {
		t.Fatalf("empty store: %+v, want an empty (not null) list", list)
	}
	e.seed()
	rec := e.do(req{method: "GET", path: "/v1/enrollments"})
	list = decode[api.EnrollmentList](t, rec, 200)
	if len(list.Enrollments) != 5 {
		t.Fatalf("%d enrollments, want 5", len(list.Enrollments))
	}
	// No secret is ever shown, in any encoding.
	body := rec.Body.String()
	for _, secret := range []string{
		string(secretPushToken), base64.StdEncoding.EncodeToString(secretPushToken), secretPushMagic,
		string(secretUnlockToken), base64.StdEncoding.EncodeToString(secretUnlockToken),
		string(secretBootstrap), base64.StdEncoding.EncodeToString(secretBootstrap),
		"push_token\"", "push_magic", "unlock_token", "bootstrap_token",
	} {
		if strings.Contains(body, secret) {
			t.Errorf("enrollment list shows %q", secret)
		}
	}
	byID := map[string]api.Enrollment{}
	for _, en := range list.Enrollments {
		byID[en.ID] = en
	}
	for _, tc := range []struct {
		id, state, channel, words string
		push                      bool
	}{
		{idEnrolled, api.StateEnrolled, "device", "device enrollment", true},
		{idCheckedOut, api.StateCheckedOut, "device", "device enrollment", false},
		{idAuthOnly, api.StateAuthenticated, "device", "device enrollment", false},
		{idBYOD, api.StateEnrolled, "device", "user enrollment (BYOD)", true},
		{idBYODUser, api.StateEnrolled, "user", "user enrollment (BYOD, macOS user channel)", false},
	} {
		got := byID[tc.id]
		if got.State != tc.state || got.Channel != tc.channel || got.EnrollmentType != tc.words || got.PushTokenPresent != tc.push {
			t.Errorf("%s: state %q channel %q type %q push %v; want %q %q %q %v", tc.id,
				got.State, got.Channel, got.EnrollmentType, got.PushTokenPresent, tc.state, tc.channel, tc.words, tc.push)
		}
	}

	one := decode[api.Enrollment](t, e.do(req{method: "GET", path: "/v1/enrollments/" + idEnrolled}), 200)
	if one.SerialNumber != "C02TEST0001" || one.Model != "iPad13,1" || one.OSVersion != "17.4" || one.DeviceName != "QA iPad" {
		t.Errorf("device details: %+v", one)
	}
	if one.IdentityCertSHA256 != strings.Repeat("ab", 32) || !one.IdentityNotAfter.Equal(testNow.Add(365*24*time.Hour)) {
		t.Errorf("identity: %q %v", one.IdentityCertSHA256, one.IdentityNotAfter)
	}
	if !one.EnrolledAt.Equal(testNow.Add(-time.Hour)) || !one.LastSeen.Equal(testNow) {
		t.Errorf("times: %+v", one)
	}
	// A user channel ID carries a colon; it must route and round-trip.
	user := decode[api.Enrollment](t, e.do(req{method: "GET", path: "/v1/enrollments/" + idBYODUser}), 200)
	if user.DeviceID != idBYOD || user.EnrollmentUserID != "USER-1" {
		t.Errorf("user channel: %+v", user)
	}
	rec = e.do(req{method: "GET", path: "/v1/enrollments/NOPE"})
	if b := decode[api.ErrorBody](t, rec, 404); !strings.Contains(b.Error, `"NOPE"`) {
		t.Errorf("404 does not name the ID: %s", b.Error)
	}
}

func TestEnqueueTypedAndGetCommand(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	rec := e.do(req{method: "POST", path: "/v1/commands", body: `{
		"enrollment_ids": ["` + idEnrolled + `", "` + idBYOD + `"],
		"command_uuid": "MY-UUID-1",
		"command": {"RequestType": "DeviceInformation", "Queries": ["DeviceName", "BatteryLevel"]}}`})
	out := decode[api.EnqueueResponse](t, rec, 201)
	if out.CommandUUID != "MY-UUID-1" || out.RequestType != "DeviceInformation" || len(out.EnrollmentIDs) != 2 {
		t.Fatalf("enqueue answer %+v", out)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/commands/MY-UUID-1" {
		t.Errorf("Location %q", loc)
	}
	// The stored command is the plist a device will receive.
	items, err := e.st.CommandItems(ctx, "MY-UUID-1")
	if err != nil || len(items) != 2 {
		t.Fatalf("store: %v %v", items, err)
	}
	cmd, err := mdm.DecodeCommand(items[0].Command)
	if err != nil || cmd.CommandUUID != "MY-UUID-1" || cmd.RequestType != "DeviceInformation" {
		t.Fatalf("stored command does not decode: %+v %v\n%s", cmd, err, items[0].Command)
	}

	// The queue shows it, pending.
	q := decode[api.Queue](t, e.do(req{method: "GET", path: "/v1/enrollments/" + idEnrolled + "/queue"}), 200)
	if q.EnrollmentID != idEnrolled || len(q.Items) != 1 || q.Items[0].CommandUUID != "MY-UUID-1" ||
		q.Items[0].Status != store.CommandPending || q.Items[0].RequestType != "DeviceInformation" || !q.Items[0].CreatedAt.Equal(testNow) {
		t.Fatalf("queue %+v", q)
	}

	st := decode[api.CommandStatus](t, e.do(req{method: "GET", path: "/v1/commands/MY-UUID-1"}), 200)
	if st.Done || len(st.Results) != 2 || st.Results[0].Status != "Pending" || st.RequestType != "DeviceInformation" || !st.CreatedAt.Equal(testNow) {
		t.Fatalf("before answers: %+v", st)
	}

	// One answers Acknowledged, the other Error with an ErrorChain.
	at := testNow.Add(time.Minute)
	if err := e.st.SaveResult(ctx, idEnrolled, "MY-UUID-1", "Acknowledged", []byte(resultPlist(idEnrolled, "MY-UUID-1")), at); err != nil {
		t.Fatal(err)
	}
	st = decode[api.CommandStatus](t, e.do(req{method: "GET", path: "/v1/commands/MY-UUID-1"}), 200)
	if st.Done {
		t.Fatal("done with one target unanswered")
	}
	if err := e.st.SaveResult(ctx, idBYOD, "MY-UUID-1", "Error", []byte(errorPlist(idBYOD, "MY-UUID-1")), at); err != nil {
		t.Fatal(err)
	}
	rec = e.do(req{method: "GET", path: "/v1/commands/MY-UUID-1"})
	st = decode[api.CommandStatus](t, rec, 200)
	if !st.Done {
		t.Fatalf("not done after both answered: %+v", st)
	}
	byID := map[string]api.CommandResult{}
	for _, r := range st.Results {
		byID[r.EnrollmentID] = r
	}
	ack := byID[idEnrolled]
	if ack.Status != "Acknowledged" || !ack.UpdatedAt.Equal(at) || !strings.Contains(ack.ResultPlist, "<key>QueryResponses</key>") {
		t.Errorf("ack result %+v", ack)
	}
	var result struct {
		CommandUUID    string
		Status         string
		QueryResponses map[string]json.RawMessage
	}
	if err := json.Unmarshal(ack.Result, &result); err != nil {
		t.Fatalf("result JSON %s: %v", ack.Result, err)
	}
	qr := result.QueryResponses
	for key, want := range map[string]string{
		"DeviceName":              `"QA iPad"`,
		"BatteryLevel":            `0.5`,
		"AvailableDeviceCapacity": `9007199254740993`, // exact past 2^53
		"IsSupervised":            `true`,
		"PushToken":               `"AAEC"`,
		"LastCloudBackupDate":     `"2024-01-02T03:04:05Z"`,
		"Languages":               `["en","fr"]`,
	} {
		if string(qr[key]) != want {
			t.Errorf("QueryResponses.%s = %s, want %s", key, qr[key], want)
		}
	}
	if result.Status != "Acknowledged" || result.CommandUUID != "MY-UUID-1" {
		t.Errorf("result top level: %+v", result)
	}
	fail := byID[idBYOD]
	if fail.Status != "Error" || len(fail.ErrorChain) != 1 || fail.ErrorChain[0].ErrorCode != 12021 ||
		fail.ErrorChain[0].ErrorDomain != "MCMDMErrorDomain" || fail.ErrorChain[0].LocalizedDescription != "Unknown command" {
		t.Errorf("error result %+v", fail)
	}
	// The answered command left the queue.
	q = decode[api.Queue](t, e.do(req{method: "GET", path: "/v1/enrollments/" + idEnrolled + "/queue"}), 200)
	if len(q.Items) != 0 {
		t.Errorf("queue after a final answer: %+v", q.Items)
	}
}

func TestEnqueueGeneratesUUID(t *testing.T) {
	e := newEnv(t)
	e.seed()
	out := decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands",
		body: `{"enrollment_ids":["` + idEnrolled + `"],"command":{"RequestType":"SecurityInfo"}}`}), 201)
	if out.CommandUUID != "GEN-UUID-0001" || out.RequestType != "SecurityInfo" {
		t.Fatalf("%+v", out)
	}
	// The default generator writes upper-case v4 UUIDs, as Apple's tools do.
	a := New(e.st, nil)
	u := a.newUUID()
	if len(u) != 36 || strings.ToUpper(u) != u || u[14] != '4' {
		t.Errorf("default UUID %q", u)
	}
}

func TestEnqueueRawPlist(t *testing.T) {
	e := newEnv(t)
	e.seed()
	const withoutUUID = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Command</key><dict>
<key>RequestType</key><string>Settings</string>
<key>Settings</key><array><dict><key>Item</key><string>DeviceName</string><key>DeviceName</key><string>Renamed</string></dict></array>
</dict></dict></plist>`
	body, _ := json.Marshal(map[string]any{"enrollment_ids": []string{idEnrolled}, "raw_plist": withoutUUID})
	out := decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: string(body)}), 201)
	if out.CommandUUID != "GEN-UUID-0001" || out.RequestType != "Settings" {
		t.Fatalf("%+v", out)
	}
	items, _ := e.st.CommandItems(context.Background(), out.CommandUUID)
	if len(items) != 1 || !strings.Contains(string(items[0].Command), "Renamed") || !strings.Contains(string(items[0].Command), "GEN-UUID-0001") {
		t.Fatalf("stored raw command: %s", items[0].Command)
	}

	// command_uuid fills a raw plist that has none.
	body, _ = json.Marshal(map[string]any{"enrollment_ids": []string{idEnrolled}, "raw_plist": withoutUUID, "command_uuid": "CHOSEN-1"})
	out = decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: string(body)}), 201)
	if out.CommandUUID != "CHOSEN-1" {
		t.Fatalf("%+v", out)
	}

	// A raw plist with its own CommandUUID is queued exactly as given.
	withUUID := strings.Replace(withoutUUID, "<dict><key>Command</key>", "<dict><key>CommandUUID</key><string>RAW-UUID-7</string><key>Command</key>", 1)
	body, _ = json.Marshal(map[string]any{"enrollment_ids": []string{idEnrolled}, "raw_plist": withUUID})
	out = decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: string(body)}), 201)
	if out.CommandUUID != "RAW-UUID-7" {
		t.Fatalf("%+v", out)
	}
	items, _ = e.st.CommandItems(context.Background(), "RAW-UUID-7")
	if string(items[0].Command) != withUUID {
		t.Errorf("raw plist was not stored byte for byte")
	}
}

func TestEnqueueManyTargetsAndHook(t *testing.T) {
	var hooked []string
	var hookedCmd *store.Command
	e := newEnv(t, WithOnEnqueue(func(_ context.Context, cmd *store.Command, ids []string) {
		hookedCmd, hooked = cmd, ids
	}))
	ctx := context.Background()
	// More targets than are looked up one by one, so the listing path runs.
	var ids []string
	for i := range lookupOneByOne + 8 {
		id := "DEV-" + strings.Repeat("0", 3) + string(rune('A'+i%26)) + string(rune('a'+i/26))
		ids = append(ids, id)
		if err := e.st.PutEnrollment(ctx, &store.Enrollment{ID: id, Type: "Device", DeviceID: id, UDID: id, Enrolled: true}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(api.EnqueueRequest{EnrollmentIDs: ids, Command: json.RawMessage(`{"RequestType":"ProfileList"}`)})
	out := decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: string(b)}), 201)
	if len(out.EnrollmentIDs) != len(ids) {
		t.Fatalf("%d IDs", len(out.EnrollmentIDs))
	}
	if hookedCmd == nil || hookedCmd.UUID != out.CommandUUID || hookedCmd.RequestType != "ProfileList" || len(hooked) != len(ids) {
		t.Fatalf("hook saw %+v %v", hookedCmd, hooked)
	}
	// One unknown among many: 404 naming it, nothing queued.
	b, _ = json.Marshal(api.EnqueueRequest{EnrollmentIDs: append(ids, "GHOST"), Command: json.RawMessage(`{"RequestType":"ProfileList"}`)})
	rec := e.do(req{method: "POST", path: "/v1/commands", body: string(b)})
	if eb := decode[api.ErrorBody](t, rec, 404); !strings.Contains(eb.Error, `"GHOST"`) {
		t.Errorf("404 does not name the unknown ID: %s", eb.Error)
	}
	q, _ := e.st.QueueItems(ctx, ids[0])
	if len(q) != 1 {
		t.Errorf("a refused enqueue queued something: %d items", len(q))
	}
}

func TestTranscript(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	checkinBody := `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string><key>UDID</key><string>` + idEnrolled + `</string>
<key>Topic</key><string>com.apple.mgmt.External.test</string></dict></plist>`
	entries := []*store.TranscriptEntry{
		{Time: testNow, EnrollmentID: idEnrolled, RequestID: "r1", Kind: "checkin", MessageType: "Authenticate",
			Method: "PUT", Path: "/checkin", Status: 200, Request: []byte(checkinBody)},
		{Time: testNow, EnrollmentID: idBYOD, Kind: "checkin", MessageType: "TokenUpdate", Method: "PUT", Path: "/checkin", Status: 200,
			Request: []byte("<plist><dict><key>MessageType</key><string>TokenUpdate</string></dict></plist>")},
		{Time: testNow, EnrollmentID: idEnrolled, Kind: "command", MessageType: "Idle", Method: "PUT", Path: "/mdm", Status: 200,
			Request: []byte("plain text, not a plist"), Response: []byte("<plist><dict/></plist>")},
		{Time: testNow, EnrollmentID: idEnrolled, Kind: "scep", Method: "POST", Path: "/scep", Status: 200,
			Request: []byte{0x30, 0x82, 0xff, 0xfe}, Response: []byte("bplist00\x00\x01")},
		{Time: testNow, EnrollmentID: "NEVER-ENROLLED", Kind: "checkin", Method: "PUT", Path: "/checkin", Status: 403, Note: "no identity"},
	}
	if err := e.st.AppendTranscript(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	tr := decode[api.Transcript](t, e.do(req{method: "GET", path: "/v1/enrollments/" + idEnrolled + "/transcript"}), 200)
	if len(tr.Entries) != 3 {
		t.Fatalf("%d entries for %s, want 3", len(tr.Entries), idEnrolled)
	}
	first := tr.Entries[0]
	if first.Kind != "checkin" || first.MessageType != "Authenticate" || first.HTTPStatus != 200 || first.RequestID != "r1" || first.RequestPlist != checkinBody {
		t.Errorf("first entry %+v", first)
	}
	var dec map[string]string
	if err := json.Unmarshal(first.RequestDecoded, &dec); err != nil || dec["MessageType"] != "Authenticate" || dec["UDID"] != idEnrolled {
		t.Errorf("request_decoded %s: %v", first.RequestDecoded, err)
	}
	if tr.Entries[1].RequestDecoded != nil || tr.Entries[1].RequestPlist != "plain text, not a plist" || tr.Entries[1].Response != "<plist><dict/></plist>" {
		t.Errorf("text entry %+v", tr.Entries[1])
	}
	if bin := tr.Entries[2]; bin.RequestPlist != "" || len(bin.RequestBase64) != 4 || len(bin.ResponseBase64) != 10 || bin.RequestDecoded != nil {
		t.Errorf("binary entry %+v", bin)
	}

	// Paging: after and limit.
	tr = decode[api.Transcript](t, e.do(req{method: "GET", path: "/v1/transcript?limit=2"}), 200)
	if len(tr.Entries) != 2 || tr.Entries[0].Seq >= tr.Entries[1].Seq {
		t.Fatalf("limit=2: %+v", tr.Entries)
	}
	next := decode[api.Transcript](t, e.do(req{method: "GET", path: "/v1/transcript?after=" + itoa(tr.Entries[1].Seq)}), 200)
	if len(next.Entries) != 3 || next.Entries[0].Seq <= tr.Entries[1].Seq {
		t.Fatalf("after: %+v", next.Entries)
	}
	// A refused device that never enrolled still has its entries shown.
	tr = decode[api.Transcript](t, e.do(req{method: "GET", path: "/v1/enrollments/NEVER-ENROLLED/transcript"}), 200)
	if len(tr.Entries) != 1 || tr.Entries[0].Note != "no identity" {
		t.Errorf("refused device: %+v", tr.Entries)
	}
	// An enrolled device with nothing recorded yet: an empty list, not null.
	rec := e.do(req{method: "GET", path: "/v1/enrollments/" + idAuthOnly + "/transcript"})
	if tr := decode[api.Transcript](t, rec, 200); tr.Entries == nil || len(tr.Entries) != 0 {
		t.Errorf("quiet device: %s", rec.Body)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestMintChallenge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, body string
		ttl        time.Duration
	}{
		{"no body", "", time.Hour},
		{"empty object", "{}", time.Hour},
		{"ttl", `{"ttl":"15m"}`, 15 * time.Minute},
		{"thirty days", `{"ttl":"720h"}`, 720 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := decode[api.Challenge](t, e.do(req{method: "POST", path: "/v1/scep/challenges", body: tc.body}), 201)
			if len(c.Challenge) != 32 || strings.Trim(c.Challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				t.Errorf("challenge %q is not 32 URL-safe characters", c.Challenge)
			}
			if !c.ExpiresAt.Equal(testNow.Add(tc.ttl)) {
				t.Errorf("expires %v, want %v", c.ExpiresAt, testNow.Add(tc.ttl))
			}
			// It is stored and works exactly once, until it expires.
			if ok, err := e.st.ConsumeChallenge(ctx, c.Challenge, testNow.Add(tc.ttl-time.Second)); !ok || err != nil {
				t.Errorf("minted challenge not accepted: %v %v", ok, err)
			}
			if ok, _ := e.st.ConsumeChallenge(ctx, c.Challenge, testNow); ok {
				t.Error("challenge accepted twice")
			}
		})
	}
	a := decode[api.Challenge](t, e.do(req{method: "POST", path: "/v1/scep/challenges"}), 201)
	b := decode[api.Challenge](t, e.do(req{method: "POST", path: "/v1/scep/challenges"}), 201)
	if a.Challenge == b.Challenge {
		t.Error("two challenges are equal")
	}
}

func TestReset(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.enqueue("RESET-ME", idEnrolled)
	out := decode[api.ResetResponse](t, e.do(req{method: "POST", path: "/v1/reset"}), 200)
	if !out.Reset {
		t.Fatal("reset:false")
	}
	list := decode[api.EnrollmentList](t, e.do(req{method: "GET", path: "/v1/enrollments"}), 200)
	if len(list.Enrollments) != 0 {
		t.Errorf("%d enrollments after reset", len(list.Enrollments))
	}
	decode[api.ErrorBody](t, e.do(req{method: "GET", path: "/v1/commands/RESET-ME"}), 404)
}

// failingStore fails every call, as a backend whose disk is gone would.
type failingStore struct{ Store }

var errDisk = errors.New("sqlite: disk I/O error at /var/lib/mockmdm/secret-path.db")

func (failingStore) ListEnrollments(context.Context) ([]*store.Enrollment, error) {
	return nil, errDisk
}
func (failingStore) GetEnrollment(context.Context, string) (*store.Enrollment, error) {
	return nil, errDisk
}
func (failingStore) CommandItems(context.Context, string) ([]*store.QueueItem, error) {
	return nil, errDisk
}
func (failingStore) Transcript(context.Context, string, int64, int) ([]*store.TranscriptEntry, error) {
	return nil, errDisk
}
func (failingStore) PutChallenge(context.Context, string, time.Time) error { return errDisk }
func (failingStore) Reset(context.Context) error                           { return errDisk }

func TestStoreErrorIs500WithoutDetail(t *testing.T) {
	e := newEnv(t)
	e.api.store = failingStore{e.st}
	for _, r := range []req{
		{method: "GET", path: "/v1/enrollments"},
		{method: "GET", path: "/v1/enrollments/x"},
		{method: "GET", path: "/v1/enrollments/x/queue"},
		{method: "GET", path: "/v1/enrollments/x/transcript"},
		{method: "GET", path: "/v1/transcript"},
		{method: "GET", path: "/v1/commands/x"},
		{method: "POST", path: "/v1/commands", body: `{"enrollment_ids":["x"],"command":{"RequestType":"SecurityInfo"}}`},
		{method: "POST", path: "/v1/scep/challenges"},
		{method: "POST", path: "/v1/reset"},
	} {
		rec := e.do(r)
		body := decode[api.ErrorBody](t, rec, 500)
		if !strings.HasPrefix(body.Error, "internal error") || strings.Contains(rec.Body.String(), "secret-path") {
			t.Errorf("%s %s: body %s", r.method, r.path, rec.Body)
		}
	}
	if !strings.Contains(e.logs.String(), "secret-path") {
		t.Error("the log does not have the store error's detail")
	}
}
