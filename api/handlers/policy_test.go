package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/store"
)

// Enrollments the policy tests target: what each program recorded.
const (
	idUE         = "UE-ENROLLMENT"    // User Enrollment, personal (Company Portal)
	idPersonalDE = "PERSONAL-DEVICE"  // device enrollment, personal ("Secure entire device")
	idCorpDE     = "CORPORATE-DEVICE" // device enrollment, corporate, unsupervised
	idSupervised = "ADE-SUPERVISED"   // ADE, supervised
)

func (e *env) seedPolicy() {
	e.t.Helper()
	base := func(id, typ string, m store.Management) *store.Enrollment {
		return &store.Enrollment{ID: id, Type: typ, DeviceID: id, ProductName: "iPhone15,2", Model: "iPhone15,2",
			OSVersion: "17.4", Enrolled: true, Management: m}
	}
	for _, r := range []*store.Enrollment{
		base(idUE, "UserEnrollmentDevice", store.Management{Program: store.ProgramCompanyPortal, Mode: store.ModeUserEnrollment,
			Ownership: store.OwnershipPersonal, User: "adele@contoso.com", Ticket: "T-UE"}),
		base(idPersonalDE, "Device", store.Management{Program: store.ProgramCompanyPortal, Mode: store.ModeDevice, Ownership: store.OwnershipPersonal}),
		base(idCorpDE, "Device", store.Management{Program: store.ProgramCompanyPortal, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate}),
		base("PLAIN-PROFILE", "Device", store.Management{Program: store.ProgramProfile, Mode: store.ModeDevice}),
		base(idSupervised, "Device", store.Management{Program: store.ProgramADE, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate, Supervised: true}),
	} {
		if err := e.st.PutEnrollment(context.Background(), r); err != nil {
			e.t.Fatal(err)
		}
	}
}

func enqueueBody(t *testing.T, command map[string]any, ids ...string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"enrollment_ids": ids, "command": command, "push": false})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rawEnqueueBody(t *testing.T, command map[string]any, ids ...string) string {
	t.Helper()
	raw, err := mdm.MarshalPlist(map[string]any{"Command": command})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"enrollment_ids": ids, "raw_plist": string(raw), "push": false})
	return string(b)
}

// assertNothingQueued checks that no target has anything in its queue.
func (e *env) assertNothingQueued(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		items, err := e.st.QueueItems(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(items) != 0 {
			e.t.Errorf("%s has %d queued commands after a refusal: %+v", id, len(items), items[0])
		}
	}
}

// profileWith is a profile holding one payload of each given type, with the
// keys its schema requires.
func profileWith(t *testing.T, payloads ...map[string]any) []byte {
	t.Helper()
	content := make([]any, 0, len(payloads))
	for i, p := range payloads {
		p["PayloadVersion"] = 1
		p["PayloadIdentifier"] = "com.example.policy." + p["PayloadType"].(string)
		p["PayloadUUID"] = "7E3D0C52-0000-4000-8000-00000000000" + string(rune('0'+i))
		content = append(content, p)
	}
	raw, err := mdm.MarshalPlist(map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "com.example.policy",
		"PayloadUUID": "7E3D0C52-0000-4000-8000-0000000000FF", "PayloadDisplayName": "policy test",
		"PayloadContent": content,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestPolicyRefusesWhatTheEnrollmentForbids(t *testing.T) {
	webClip := map[string]any{"PayloadType": "com.apple.webClip.managed", "URL": "https://intranet.contoso.com", "Label": "Intranet"}
	// VPN is userenrollment.mode forbidden on iOS (com.apple.vpn.managed.yaml).
	vpn := map[string]any{"PayloadType": "com.apple.vpn.managed", "UserDefinedName": "Corp VPN", "VPNType": "IKEv2",
		"IKEv2": map[string]any{"RemoteAddress": "vpn.contoso.com", "RemoteIdentifier": "vpn.contoso.com", "LocalIdentifier": "client", "AuthenticationMethod": "None"}}
	// App Lock needs supervision (com.apple.app.lock.yaml).
	appLock := map[string]any{"PayloadType": "com.apple.app.lock", "App": map[string]any{"Identifier": "com.example.kiosk"}}

	tests := []struct {
		name     string
		command  map[string]any
		targets  []string
		wantCode int
		// wantIn are phrases the refusal must contain (rule and source).
		wantIn []string
	}{
		{"EraseDevice on a User Enrollment", map[string]any{"RequestType": "EraseDevice"}, []string{idUE}, 403,
			[]string{"EraseDevice is forbidden for User Enrollment", "apple-schema mdm/commands/device.erase.yaml: supportedOS.iOS.userenrollment.mode forbidden", "retire"}},
		{"all or nothing: one UE target refuses the lot", map[string]any{"RequestType": "EraseDevice"}, []string{idCorpDE, idUE, idPersonalDE}, 403,
			[]string{idUE + " is a User Enrollment", "nothing was queued"}},
		{"ClearPasscode on a User Enrollment", map[string]any{"RequestType": "ClearPasscode", "UnlockToken": []byte{1}}, []string{idUE}, 403,
			[]string{"ClearPasscode is forbidden for User Enrollment", "passcode.clear.yaml"}},
		{"supervised-only command on an unsupervised device", map[string]any{"RequestType": "RestartDevice"}, []string{idCorpDE}, 403,
			[]string{"RestartDevice needs a supervised device", idCorpDE + " is not supervised", "apple-schema mdm/commands/device.restart.yaml: supportedOS.iOS.supervised true"}},
		{"a payload User Enrollment forbids", map[string]any{"RequestType": "InstallProfile", "Payload": profileWith(t, webClip, vpn)}, []string{idUE}, 403,
			[]string{"InstallProfile: payload com.apple.vpn.managed at PayloadContent[1] is forbidden for User Enrollment", "apple-schema mdm/profiles/com.apple.vpn.managed.yaml: supportedOS.iOS.userenrollment.mode forbidden"}},
		{"a supervised-only payload on an unsupervised device", map[string]any{"RequestType": "InstallProfile", "Payload": profileWith(t, appLock)}, []string{idPersonalDE}, 403,
			[]string{"com.apple.app.lock", "needs a supervised device", "com.apple.app.lock.yaml: supportedOS.iOS.supervised true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.seedPolicy()
			rec := e.do(req{method: "POST", path: "/v1/commands", body: rawEnqueueBody(t, tc.command, tc.targets...)})
			body := decode[api.ErrorBody](t, rec, tc.wantCode)
			for _, w := range tc.wantIn {
				if !strings.Contains(body.Error, w) {
					t.Errorf("refusal %q\ndoes not say %q", body.Error, w)
				}
			}
			e.assertNothingQueued(idUE, idPersonalDE, idCorpDE, idSupervised)
		})
	}
}

func TestPolicyAllowsWhatTheEnrollmentAllows(t *testing.T) {
	webClip := map[string]any{"PayloadType": "com.apple.webClip.managed", "URL": "https://intranet.contoso.com", "Label": "Intranet"}
	appLock := map[string]any{"PayloadType": "com.apple.app.lock", "App": map[string]any{"Identifier": "com.example.kiosk"}}
	tests := []struct {
		name    string
		command map[string]any
		targets []string
	}{
		// Seed 002, comment 16: wipe is there for a personal device that
		// chose "Secure entire device"; a corporate one may be wiped too.
		{"EraseDevice on personal and corporate device enrollments", map[string]any{"RequestType": "EraseDevice"}, []string{idPersonalDE, idCorpDE}},
		{"DeviceLock on a User Enrollment", map[string]any{"RequestType": "DeviceLock"}, []string{idUE}},
		{"RestartDevice on a supervised ADE device", map[string]any{"RequestType": "RestartDevice"}, []string{idSupervised}},
		{"a web clip on a User Enrollment", map[string]any{"RequestType": "InstallProfile", "Payload": profileWith(t, webClip)}, []string{idUE}},
		{"App Lock on a supervised device", map[string]any{"RequestType": "InstallProfile", "Payload": profileWith(t, appLock)}, []string{idSupervised}},
		{"a command no schema knows", map[string]any{"RequestType": "MockmdmCustom"}, []string{idUE}},
		// A plain /enroll enrollment records no supervision: not refused.
		{"RestartDevice on an enrollment no program recorded", map[string]any{"RequestType": "RestartDevice"}, []string{idEnrolled, "PLAIN-PROFILE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.seed()
			e.seedPolicy()
			decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: rawEnqueueBody(t, tc.command, tc.targets...)}), http.StatusCreated)
		})
	}
}

// TestPolicyRequiresADE finds a command whose iOS rule is requiresdep and
// checks that a non-ADE enrollment is refused it, when the schemas have one.
func TestPolicyRequiresADE(t *testing.T) {
	var rt string
	for _, n := range schema.Names(schema.KindCommand) {
		s, _ := schema.Command(n)
		eff := s.EffectivePath("iOS")
		if eff.Supported() && eff.RequiresDEP != nil && *eff.RequiresDEP && (eff.Supervised == nil || !*eff.Supervised) &&
			(eff.UserEnrollment == nil || eff.UserEnrollment.Mode != "forbidden") {
			rt = n
			break
		}
	}
	e := newEnv(t)
	e.seedPolicy()
	if rt == "" {
		// Every requiresdep command also needs supervision: check the rule on a record that is supervised but not ADE.
		for _, n := range schema.Names(schema.KindCommand) {
			s, _ := schema.Command(n)
			eff := s.EffectivePath("iOS")
			if eff.Supported() && eff.RequiresDEP != nil && *eff.RequiresDEP {
				rt = n
				break
			}
		}
	}
	if rt == "" {
		t.Skip("no iOS command in Apple's schemas says requiresdep: true")
	}
	if err := e.st.PutEnrollment(context.Background(), &store.Enrollment{ID: "CONFIGURATOR", Type: "Device", DeviceID: "CONFIGURATOR",
		ProductName: "iPad13,1", Enrolled: true, Management: store.Management{Program: store.ProgramConfigurator, Mode: store.ModeDevice, Supervised: true}}); err != nil {
		t.Fatal(err)
	}
	body := decode[api.ErrorBody](t, e.do(req{method: "POST", path: "/v1/commands", body: rawEnqueueBody(t, map[string]any{"RequestType": rt}, "CONFIGURATOR")}), 403)
	if !strings.Contains(body.Error, "Automated Device Enrollment") || !strings.Contains(body.Error, "requiresdep true") {
		t.Errorf("%s refusal %q names neither the rule nor its source", rt, body.Error)
	}
	e.assertNothingQueued("CONFIGURATOR")
	decode[api.EnqueueResponse](t, e.do(req{method: "POST", path: "/v1/commands", body: rawEnqueueBody(t, map[string]any{"RequestType": rt}, idSupervised)}), http.StatusCreated)
}

func TestRetire(t *testing.T) {
	e := newEnv(t, WithRetire(func(en *store.Enrollment) string { return "com.example.enroll." + en.Management.Ticket }, nil))
	e.mux.Handle("POST /v1/enrollments/{id}/retire", e.api.RequireKey(testKey, e.api.Retire()))
	e.seedPolicy()
	// Without a document store it is not configured.
	decode[api.ErrorBody](t, e.do(req{method: "POST", path: "/v1/enrollments/" + idUE + "/retire"}), http.StatusNotImplemented)

	e = newEnv(t)
	e.api.retireProfileID = func(en *store.Enrollment) string { return "com.example.enroll." + en.Management.Ticket }
	e.api.docs = e.st
	e.mux.Handle("POST /v1/enrollments/{id}/retire", e.api.RequireKey(testKey, e.api.Retire()))
	e.seed()
	e.seedPolicy()
	ctx := context.Background()

	out := decode[Retirement](t, e.do(req{method: "POST", path: "/v1/enrollments/" + idUE + "/retire", body: `{"push":false}`}), http.StatusAccepted)
	if out.EnrollmentID != idUE || out.ProfileIdentifier != "com.example.enroll.T-UE" || out.Mode != store.ModeUserEnrollment || out.CommandUUID == "" {
		t.Fatalf("retire answer %+v", out)
	}
	items, err := e.st.QueueItems(ctx, idUE)
	if err != nil || len(items) != 1 || items[0].RequestType != "RemoveProfile" {
		t.Fatalf("queue after retire: %+v %v", items, err)
	}
	if !strings.Contains(string(items[0].Command), "<string>com.example.enroll.T-UE</string>") {
		t.Errorf("RemoveProfile does not name the enrollment profile:\n%s", items[0].Command)
	}
	rec, err := e.st.GetDocument(ctx, DocRetirement, idUE)
	if err != nil || !strings.Contains(string(rec), out.CommandUUID) {
		t.Errorf("retirement record %s %v", rec, err)
	}
	// A user channel retires its device channel.
	out = decode[Retirement](t, e.do(req{method: "POST", path: "/v1/enrollments/" + idBYODUser + "/retire"}), http.StatusAccepted)
	if out.EnrollmentID != idBYOD {
		t.Errorf("retiring the user channel retired %s, want the device channel %s", out.EnrollmentID, idBYOD)
	}
	// Hostile and impossible requests.
	decode[api.ErrorBody](t, e.do(req{method: "POST", path: "/v1/enrollments/NOPE/retire"}), http.StatusNotFound)
	decode[api.ErrorBody](t, e.do(req{method: "POST", path: "/v1/enrollments/" + idCheckedOut + "/retire"}), http.StatusConflict)
	decode[api.ErrorBody](t, e.do(req{method: "POST", path: "/v1/enrollments/" + idUE + "/retire", body: `{"force":true}`}), http.StatusBadRequest)
}
