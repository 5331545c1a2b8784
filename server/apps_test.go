package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/api/handlers"
	"github.com/mockmdm/mockmdm/apps"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

const (
	outlookID      = "com.microsoft.Office.Outlook"
	outlookStoreID = 951937596
)

// enrollProgram enrolls a virtual device the way an enrollment program
// does: a ticket carrying the program's decision, the profile the server
// issues for it, installed by the device over the server's handler.
func enrollProgram(t *testing.T, ctx context.Context, s *Server, m store.Management, seed int64, setup func(*device.Device)) (*device.Device, string) {
	t.Helper()
	tk, err := s.Programs().IssueTicket(ctx, m, "")
	if err != nil {
		t.Fatal(err)
	}
	profile, err := s.issuer.EnrollmentProfile(ctx, enroll.ProfileRequest{Ticket: tk.ID, Mode: m.Mode, ManagedAppleID: m.ManagedAppleID})
	if err != nil {
		t.Fatal(err)
	}
	trust := x509.NewCertPool()
	trust.AddCert(s.PKI().CA.Cert)
	dev := device.New(handlerDoer{s.Handler()}, device.WithTrust(trust), device.WithSeed(seed))
	if setup != nil {
		setup(dev)
	}
	res, err := dev.Install(ctx, profile)
	if err != nil || !res.Enrolled {
		t.Fatalf("enroll: %+v %v", res, err)
	}
	id := dev.UDID()
	if res.UserEnrollment {
		id = dev.EnrollmentID()
	}
	e, err := s.Store().GetEnrollment(ctx, id)
	if err != nil || e.Management.Mode != m.Mode || e.Management.Ownership != m.Ownership {
		t.Fatalf("enrollment %s: %+v %v", id, e, err)
	}
	return dev, id
}

func appsJSON[T any](t *testing.T, s *Server, method, path string, body any, want int) T {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	var hdr []string
	if body != nil {
		hdr = []string{"Content-Type", "application/json"}
	}
	rec := do(t, s, method, path, s.PKI().APIKey, b, hdr...)
	if rec.Code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, rec.Code, want, rec.Body.String())
	}
	var v T
	if want != http.StatusNoContent {
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, rec.Body.String())
		}
	}
	return v
}

// TestAppsLicensingScenario is seed 002's licensing case end to end: Adele
// has a corporate iPhone (device enrollment) and a personal iPad enrolled
// with User Enrollment, on which she had installed Outlook from the App
// Store before enrolling. Apps are assigned to user groups with ownership
// filters, synced, and answered by the two virtual devices.
func TestAppsLicensingScenario(t *testing.T) {
	s := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := s.Programs()
	for _, g := range []enroll.Group{{Name: "all-users", Kind: enroll.GroupUsers}, {Name: "ipads", Kind: enroll.GroupDevices}} {
		if err := p.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	const upn = "adele@contoso.com"
	if err := p.PutUser(ctx, enroll.User{UPN: upn, Password: "P@ssw0rd!", ManagedAppleID: "adele@appleid.contoso.com", Groups: []string{"all-users"}}); err != nil {
		t.Fatal(err)
	}
	corp, corpID := enrollProgram(t, ctx, s, store.Management{Program: store.ProgramCompanyPortal, Mode: store.ModeDevice,
		Ownership: store.OwnershipCorporate, User: upn}, 101, nil)
	byod, ueID := enrollProgram(t, ctx, s, store.Management{Program: store.ProgramCompanyPortal, Mode: store.ModeUserEnrollment,
		Ownership: store.OwnershipPersonal, User: upn, ManagedAppleID: "adele@appleid.contoso.com"}, 102, func(d *device.Device) {
		d.AddUserInstalledApps(device.UserApp{Identifier: outlookID, Name: "Microsoft Outlook", Version: "4.2420.0", ITunesStoreID: outlookStoreID})
	})

	// Hostile catalog input first: nothing of it is stored.
	for _, bad := range []struct {
		app  apps.App
		want string
	}{
		{apps.App{Name: "X", Kind: apps.KindVPP, ITunesStoreID: 1, Licensing: "site"}, `licensing "site"`},
		{apps.App{Name: "X", Kind: apps.KindVPP, ITunesStoreID: 1, Licensing: "user",
			Assignments: []apps.Assignment{{Group: "ipads", Intent: apps.IntentRequired}}}, "device group"},
		{apps.App{Name: "X", Kind: apps.KindVPP, ITunesStoreID: 1, Licensing: "user",
			Assignments: []apps.Assignment{{Group: "nobody", Intent: apps.IntentRequired}}}, "does not exist"},
		{apps.App{Name: "X", Kind: apps.KindVPP, ITunesStoreID: 1, Licensing: "user",
			Assignments: []apps.Assignment{{Group: "all-users", Intent: apps.IntentRequired, Filter: `device.deviceOwnership == "Corporate"`}}}, "use -eq or -ne"},
	} {
		body := appsJSON[api.ErrorBody](t, s, "PUT", "/v1/apps/bad", bad.app, http.StatusBadRequest)
		if !strings.Contains(body.Error, bad.want) {
			t.Errorf("refusal %q does not say %q", body.Error, bad.want)
		}
	}
	appsJSON[api.ErrorBody](t, s, "GET", "/v1/apps/bad", nil, http.StatusNotFound)
	appsJSON[api.ErrorBody](t, s, "GET", "/v1/apps/unknown/status", nil, http.StatusNotFound)

	corpFilter := []apps.Assignment{{Group: "all-users", Intent: apps.IntentRequired, Filter: `(device.deviceOwnership -eq "Corporate")`}}
	personalFilter := []apps.Assignment{{Group: "all-users", Intent: apps.IntentRequired, Filter: `(device.deviceOwnership -eq "Personal")`}}
	all := []apps.Assignment{{Group: "all-users", Intent: apps.IntentRequired}}
	catalog := []apps.App{
		// Seed 002's working set-up: device licenses to corporate devices,
		// user licenses to personal ones, by filter.
		{ID: "teams-device", Name: "Teams", Kind: apps.KindVPP, ITunesStoreID: 1113153706, Licensing: apps.LicenseDevice, Assignments: corpFilter},
		{ID: "teams-user", Name: "Teams", Kind: apps.KindVPP, ITunesStoreID: 1113153706, Licensing: apps.LicenseUser, Assignments: personalFilter},
		// The broken one: a device license reaching a User Enrollment.
		{ID: "edge-device", Name: "Edge", Kind: apps.KindVPP, ITunesStoreID: 1288723196, Licensing: apps.LicenseDevice, Assignments: all},
		{ID: "expenses", Name: "Expenses", Kind: apps.KindLOB, BundleID: "com.contoso.expenses",
			ManifestURL: "https://apps.contoso.com/expenses/manifest.plist", Assignments: corpFilter},
		{ID: "intranet", Name: "Intranet", Kind: apps.KindWebLink, URL: "https://intranet.contoso.com", Assignments: all},
		{ID: "outlook", Name: "Outlook", Kind: apps.KindVPP, ITunesStoreID: outlookStoreID, Licensing: apps.LicenseUser, Assignments: personalFilter},
	}
	for _, a := range catalog {
		appsJSON[apps.App](t, s, "PUT", "/v1/apps/"+a.ID, a, http.StatusOK)
	}
	if list := appsJSON[handlers.AppList](t, s, "GET", "/v1/apps", nil, http.StatusOK); len(list.Apps) != len(catalog) {
		t.Fatalf("catalog lists %d apps, want %d", len(list.Apps), len(catalog))
	}

	rep := appsJSON[apps.SyncReport](t, s, "POST", "/v1/apps/sync", nil, http.StatusOK)
	// corp: teams-device, edge-device, expenses, intranet; UE: teams-user, intranet, outlook.
	if rep.Queued != 7 || rep.Failed != 1 || rep.Excluded != 4 {
		t.Errorf("sync report %+v, want 7 queued, 1 failed (edge-device on the UE), 4 excluded", rep)
	}
	// The device-licensed app was never queued for the User Enrollment.
	items, err := s.Store().QueueItems(ctx, ueID)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if strings.Contains(string(it.Command), "1288723196") {
			t.Errorf("the device-licensed Edge was queued for the User Enrollment: %s", it.CommandUUID)
		}
	}
	for _, d := range []*device.Device{corp, byod} {
		if _, err := d.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}

	status := func(appID, enrollmentID string) apps.Status {
		t.Helper()
		list := appsJSON[handlers.AppStatusList](t, s, "GET", "/v1/apps/"+appID+"/status", nil, http.StatusOK)
		for _, st := range list.Statuses {
			if st.EnrollmentID == enrollmentID {
				return st
			}
		}
		t.Fatalf("no status of %s on %s in %+v", appID, enrollmentID, list)
		return apps.Status{}
	}
	want := []struct {
		app, enrollment, state, code string
	}{
		{"teams-user", ueID, apps.StateInstalled, ""},
		{"teams-user", corpID, apps.StateExcluded, ""},
		{"teams-device", corpID, apps.StateInstalled, ""},
		{"teams-device", ueID, apps.StateExcluded, ""},
		{"edge-device", ueID, apps.StateFailed, apps.ErrorLicenseMismatch},
		{"edge-device", corpID, apps.StateInstalled, ""},
		{"expenses", ueID, apps.StateExcluded, ""},
		{"expenses", corpID, apps.StateInstalled, ""},
		{"intranet", ueID, apps.StateInstalled, ""},
		{"intranet", corpID, apps.StateInstalled, ""},
		{"outlook", ueID, apps.StateFailed, "12033"},
	}
	for _, w := range want {
		st := status(w.app, w.enrollment)
		if st.State != w.state || st.ErrorCode != w.code {
			t.Errorf("%s on %s: %s %q (%s), want %s %q", w.app, w.enrollment, st.State, st.ErrorCode, st.Reason, w.state, w.code)
		}
	}
	if st := status("edge-device", ueID); st.CommandUUID != "" || !strings.Contains(st.Reason, "user license") {
		t.Errorf("the licensing failure %+v was queued, or does not say why", st)
	}
	if st := status("outlook", ueID); st.RejectionReason != "ManagementChangeNotSupported" || st.DeviceState != "UserInstalledApp" {
		t.Errorf("the pre-installed Outlook: %+v", st)
	}

	// The user-installed Outlook stays unmanaged on the device, and the
	// device reports it in InstalledApplicationList, not as managed.
	if byod.IsAppManaged(outlookID) {
		t.Error("the user's own Outlook was taken over on a User Enrollment")
	}
	if !byod.IsAppManaged("com.example.app1113153706") {
		t.Error("the user-licensed Teams is not managed on the User Enrollment")
	}
	res := runCommand(t, ctx, s, byod, ueID, map[string]any{"RequestType": "InstalledApplicationList"})
	if !strings.Contains(res, outlookID) {
		t.Errorf("InstalledApplicationList does not list the user's Outlook:\n%s", res)
	}
	managed := runCommand(t, ctx, s, byod, ueID, map[string]any{"RequestType": "ManagedApplicationList"})
	if strings.Contains(managed, outlookID) {
		t.Errorf("ManagedApplicationList lists the user's Outlook:\n%s", managed)
	}

	// A second sync queues nothing again.
	if rep := appsJSON[apps.SyncReport](t, s, "POST", "/v1/apps/sync", nil, http.StatusOK); rep.Queued != 0 || rep.Failed != 0 {
		t.Errorf("second sync %+v, want nothing queued or failed again", rep)
	}

	// The User Enrollment cannot be wiped, only retired.
	body := appsJSON[api.ErrorBody](t, s, "POST", "/v1/commands", map[string]any{"enrollment_ids": []string{ueID}, "command": map[string]any{"RequestType": "EraseDevice"}}, http.StatusForbidden)
	if !strings.Contains(body.Error, "EraseDevice is forbidden for User Enrollment (apple-schema mdm/commands/device.erase.yaml: supportedOS.iOS.userenrollment.mode forbidden)") {
		t.Errorf("refusal %q", body.Error)
	}
	ret := appsJSON[handlers.Retirement](t, s, "POST", "/v1/enrollments/"+ueID+"/retire", nil, http.StatusAccepted)
	e, _ := s.Store().GetEnrollment(ctx, ueID)
	if ret.ProfileIdentifier != s.enrollmentProfileID(e) || !strings.HasSuffix(ret.ProfileIdentifier, "."+e.Management.Ticket) {
		t.Errorf("retire removes %q, not the enrollment profile the device installed", ret.ProfileIdentifier)
	}
	if got := byod.Enrollment().ProfileIdentifier; got != ret.ProfileIdentifier {
		t.Errorf("retire removes %q; the device's enrollment profile is %q", ret.ProfileIdentifier, got)
	}
	// The device carries it out: it acknowledges, removes its MDM profile
	// and checks out.
	cres, err := byod.Connect(ctx)
	if err != nil || !cres.Unenrolled || byod.IsEnrolled() {
		t.Fatalf("retirement on the device: %+v, %v; still enrolled %v", cres, err, byod.IsEnrolled())
	}
	if e, _ := s.Store().GetEnrollment(ctx, ueID); !e.CheckedOut {
		t.Errorf("the retired User Enrollment did not check out: %+v", e)
	}
}

// runCommand queues a raw command for id, lets dev answer, and returns the
// result plist.
func runCommand(t *testing.T, ctx context.Context, s *Server, dev *device.Device, id string, command map[string]any) string {
	t.Helper()
	out := appsJSON[api.EnqueueResponse](t, s, "POST", "/v1/commands", map[string]any{"enrollment_ids": []string{id}, "raw_plist": plistOf(t, map[string]any{"Command": command}), "push": false}, http.StatusCreated)
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	st := appsJSON[api.CommandStatus](t, s, "GET", "/v1/commands/"+out.CommandUUID, nil, http.StatusOK)
	if !st.Done || st.Results[0].Status != "Acknowledged" {
		t.Fatalf("%v: %+v", command["RequestType"], st)
	}
	return st.Results[0].ResultPlist
}

func plistOf(t *testing.T, v any) string {
	t.Helper()
	b, err := mdm.MarshalPlist(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
