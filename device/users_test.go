package device_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestSharedIPad: a Shared iPad's users sign in, each on a channel of
// their own that the server records and sends commands to; a profile
// installed on a user's channel is that user's alone; the device channel
// lists, logs out and deletes users under Apple's rules (not the signed-in
// user, not one with data to sync unless forced, DeleteAllUsers keeping
// those it may not delete); each command's Shared iPad channel rules hold;
// Save/Load keep the users.
func TestSharedIPad(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithSharedIPad(true))
	srv.Enroll(dev)
	ctx := context.Background()
	errCode := func(what string, status string, chain []api.ErrorChainItem, want int) {
		t.Helper()
		if status != mdm.StatusError || len(chain) == 0 || chain[0].ErrorCode != int64(want) {
			t.Errorf("%s: status %s chain %+v, want Error %d", what, status, chain, want)
		}
	}
	userList := func() []any {
		t.Helper()
		status, dict := runDict(t, srv, dev, map[string]any{"RequestType": "UserList"})
		if status != mdm.StatusAcknowledged {
			t.Fatalf("UserList: %s", status)
		}
		s, _ := schema.Command("UserList")
		if probs := s.ValidateFor("iOS", "18.1", s.ResponseKeys, map[string]any{"Users": dict["Users"]}, ""); len(probs) > 0 {
			t.Errorf("UserList breaks Apple's schema: %v", probs)
		}
		users, _ := dict["Users"].([]any)
		return users
	}

	_, info := runDict(t, srv, dev, map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"IsMultiUser", "MaximumResidentUsers", "ResidentUsers", "QuotaSize", "EstimatedResidentUsers"}})
	qr, _ := info["QueryResponses"].(map[string]any)
	if qr["IsMultiUser"] != true || qr["MaximumResidentUsers"] != uint64(32) || qr["ResidentUsers"] != uint64(0) || qr["QuotaSize"] == nil || qr["EstimatedResidentUsers"] == nil {
		t.Errorf("DeviceInformation on a Shared iPad: %v", qr)
	}
	if users := userList(); len(users) != 0 {
		t.Errorf("UserList before any sign-in: %v", users)
	}
	if _, err := dev.ConnectUser(ctx); !errors.Is(err, device.ErrNoUserLoggedIn) {
		t.Errorf("ConnectUser with nobody signed in: %v", err)
	}

	// Ann signs in: the server records her channel.
	if err := dev.LogIn(ctx, "ann@example.org", "Ann Example"); err != nil {
		t.Fatal(err)
	}
	if e, err := srv.Client().GetEnrollment(ctx, dev.UDID()+":ann@example.org"); err != nil || e.Type != string(mdm.SharedIPad) || e.UserShortName != "ann@example.org" || e.Channel != "user" {
		t.Errorf("the server's record of Ann's channel: %+v, %v", e, err)
	}
	if err := dev.LogIn(ctx, "bob@example.org", "Bob"); err == nil {
		t.Error("a second user signed in while Ann is")
	}

	// A profile on Ann's channel is hers alone.
	annProfile := restrictionsProfile(t, "com.example.ann", map[string]any{"allowCamera": false})
	if r := srv.RunUser(dev, &mdm.InstallProfile{Payload: annProfile}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallProfile on Ann's channel: %+v", r)
	}
	userProfiles := profileIDs(t, srv.RunUser(dev, &mdm.ProfileList{}).ResultPlist)
	deviceProfiles := profileIDs(t, srv.Run(dev, &mdm.ProfileList{}).ResultPlist)
	if len(userProfiles) != 1 || userProfiles[0] != "com.example.ann" {
		t.Errorf("Ann's ProfileList: %v", userProfiles)
	}
	for _, id := range deviceProfiles {
		if id == "com.example.ann" {
			t.Errorf("the device channel lists Ann's profile: %v", deviceProfiles)
		}
	}

	// Channel rules: UserList is for the device channel only; a command
	// Apple forbids on Shared iPad is refused on both.
	r := srv.RunUser(dev, map[string]any{"RequestType": "UserList"})
	errCode("UserList on the user channel", r.Status, r.ErrorChain, device.ErrCodeSharedIPad)
	r = srv.Run(dev, map[string]any{"RequestType": "ClearRestrictionsPassword"})
	errCode("ClearRestrictionsPassword on a Shared iPad", r.Status, r.ErrorChain, device.ErrCodeSharedIPad)

	users := userList()
	if len(users) != 1 || users[0].(map[string]any)["UserName"] != "ann@example.org" || users[0].(map[string]any)["IsLoggedIn"] != true {
		t.Errorf("UserList with Ann signed in: %v", users)
	}
	r = srv.Run(dev, map[string]any{"RequestType": "DeleteUser", "UserName": "ann@example.org"})
	errCode("DeleteUser of the signed-in user", r.Status, r.ErrorChain, device.ErrCodeUserLoggedIn)
	if r := srv.Run(dev, map[string]any{"RequestType": "LogOutUser"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("LogOutUser: %+v", r)
	}
	if u := dev.Users(); len(u) != 1 || u[0].LoggedIn {
		t.Errorf("after LogOutUser: %+v", u)
	}

	// Bob and Carol sign in and out; Bob has data to sync.
	for _, name := range []string{"bob@example.org", "carol@example.org"} {
		if err := dev.LogIn(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
		dev.LogOut()
	}
	if err := dev.SetUserDataToSync("bob@example.org", true); err != nil {
		t.Fatal(err)
	}
	r = srv.Run(dev, map[string]any{"RequestType": "DeleteUser", "UserName": "bob@example.org"})
	errCode("DeleteUser of a user with data to sync", r.Status, r.ErrorChain, device.ErrCodeUserDataToSync)
	r = srv.Run(dev, map[string]any{"RequestType": "DeleteUser", "UserName": "nobody@example.org"})
	errCode("DeleteUser of an unknown user", r.Status, r.ErrorChain, device.ErrCodeUserNotFound)
	if r := srv.Run(dev, map[string]any{"RequestType": "DeleteUser"}); r.Status != mdm.StatusCommandFormatError {
		t.Errorf("DeleteUser without UserName: %+v", r)
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "DeleteUser", "UserName": "bob@example.org", "ForceDeletion": true}); r.Status != mdm.StatusAcknowledged {
		t.Errorf("DeleteUser with ForceDeletion: %+v", r)
	}

	// Save/Load keeps the users; DeleteAllUsers then deletes those it may.
	back := saveAndLoad(t, srv, dev)
	if !back.SharedIPad() || len(back.Users()) != 2 {
		t.Fatalf("loaded: shared %v, users %+v", back.SharedIPad(), back.Users())
	}
	if err := back.SetUserDataToSync("ann@example.org", true); err != nil {
		t.Fatal(err)
	}
	r = srv.Run(back, map[string]any{"RequestType": "DeleteUser", "DeleteAllUsers": true})
	errCode("DeleteAllUsers with Ann's data to sync", r.Status, r.ErrorChain, device.ErrCodeUserDataToSync)
	if u := back.Users(); len(u) != 1 || u[0].ShortName != "ann@example.org" {
		t.Errorf("after DeleteAllUsers: %+v", u)
	}
	if r := srv.Run(back, map[string]any{"RequestType": "DeleteUser", "DeleteAllUsers": true, "ForceDeletion": true}); r.Status != mdm.StatusAcknowledged {
		t.Errorf("DeleteAllUsers forced: %+v", r)
	}
	if u := back.Users(); len(u) != 0 {
		t.Errorf("users left: %+v", u)
	}
	for _, p := range back.InstalledProfiles() {
		if p.User != "" {
			t.Errorf("a deleted user's profile is still installed: %s (%s)", p.Identifier, p.User)
		}
	}
}

// TestNotSharedIPad: an ordinary iPad has no users to sign in, answers the
// Shared iPad commands as unknown, and reports IsMultiUser false.
func TestNotSharedIPad(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	srv.Enroll(dev)
	if err := dev.LogIn(context.Background(), "ann@example.org", ""); !errors.Is(err, device.ErrNotSharedIPad) {
		t.Errorf("LogIn on an ordinary iPad: %v", err)
	}
	for _, rt := range []string{"UserList", "LogOutUser", "DeleteUser"} {
		r := srv.Run(dev, map[string]any{"RequestType": rt, "UserName": "x"})
		if r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeUnknownCommand {
			t.Errorf("%s on an ordinary iPad: %+v", rt, r)
		}
	}
	_, info := runDict(t, srv, dev, map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"IsMultiUser", "MaximumResidentUsers"}})
	qr, _ := info["QueryResponses"].(map[string]any)
	if qr["IsMultiUser"] != false {
		t.Errorf("IsMultiUser: %v", qr)
	}
	if _, ok := qr["MaximumResidentUsers"]; ok {
		t.Errorf("MaximumResidentUsers on an ordinary iPad: %v", qr)
	}
}

// profileIDs are the PayloadIdentifiers a ProfileList result lists.
func profileIDs(t *testing.T, result string) []string {
	t.Helper()
	var dict struct {
		ProfileList []struct{ PayloadIdentifier string }
	}
	if err := plist.Unmarshal([]byte(result), &dict); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range dict.ProfileList {
		ids = append(ids, p.PayloadIdentifier)
	}
	return ids
}

// TestMacUserChannel: a Mac's local user opens a user channel with the
// user's GUID, short and long name; the server records it (UDID:GUID) and
// sends it commands, whose profiles are the user's own; UserList on the
// device channel (supervised) lists the user as macOS reports users. A
// mobile-account user first sends UserAuthenticate: with the server's
// default a 410 leaves the user logged in without a channel; with
// -user-authenticate allow the zero-length challenge lets the channel
// open.
func TestMacUserChannel(t *testing.T) {
	ctx := context.Background()
	srv, mac := macWithAnn(t)
	users := mac.Users()
	if len(users) != 1 || users[0].UserID == mdm.SharedIPadUserID || len(users[0].UserID) != 36 || users[0].EnrollmentID != mac.UDID()+":"+users[0].UserID {
		t.Fatalf("users: %+v", users)
	}
	e, err := srv.Client().GetEnrollment(ctx, users[0].EnrollmentID)
	if err != nil || e.Type != string(mdm.User) || e.UserShortName != "ann" || e.UserLongName != "Ann Example" {
		t.Fatalf("the server's record of Ann's channel: %+v, %v", e, err)
	}
	p := restrictionsProfile(t, "com.example.ann.mac", map[string]any{"allowCamera": false})
	if r := srv.RunUser(mac, &mdm.InstallProfile{Payload: p}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("InstallProfile on Ann's channel: %+v", r)
	}
	if ids := profileIDs(t, srv.RunUser(mac, &mdm.ProfileList{}).ResultPlist); len(ids) != 1 || ids[0] != "com.example.ann.mac" {
		t.Errorf("Ann's ProfileList: %v", ids)
	}
	status, dict := runDict(t, srv, mac, map[string]any{"RequestType": "UserList"})
	list, _ := dict["Users"].([]any)
	if status != mdm.StatusAcknowledged || len(list) != 1 {
		t.Fatalf("UserList on a Mac: %s %v", status, dict)
	}
	u := list[0].(map[string]any)
	if u["UserName"] != "ann" || u["FullName"] != "Ann Example" || u["UserGUID"] != users[0].UserID || u["IsLoggedIn"] != true || u["UID"] == nil {
		t.Errorf("a Mac's UserList entry: %v", u)
	}
	if _, quota := u["DataQuota"]; quota {
		t.Errorf("a Mac reports a Shared iPad's quota: %v", u)
	}
	s, _ := schema.Command("UserList")
	if probs := s.ValidateFor("macOS", "15.1", s.ResponseKeys, map[string]any{"Users": list}, ""); len(probs) > 0 {
		t.Errorf("a Mac's UserList breaks Apple's schema: %v", probs)
	}

	// A mobile-account user: declined by default (410), no channel.
	mac.LogOut()
	if err := mac.LogInMobileUser(ctx, "net", "Network User"); !errors.Is(err, device.ErrUserNotManaged) {
		t.Fatalf("mobile user with the default UserAuthenticate policy: %v", err)
	}
	if _, err := mac.ConnectUser(ctx); !errors.Is(err, device.ErrUserNotManaged) {
		t.Errorf("ConnectUser for a declined user: %v", err)
	}
	found := false
	for _, x := range mac.Transcript() {
		found = found || (x.Step == mdm.MessageUserAuthenticate && x.StatusCode == 410)
	}
	if !found {
		t.Error("no UserAuthenticate answered 410 in the device's transcript")
	}

	// The same with -user-authenticate allow: the channel opens.
	allow := mdmtest.NewServer(t, mdmtest.WithServerOptions(server.WithUserAuthenticate(checkin.UserAuthAllow)))
	mac2 := allow.NewDevice(device.WithModel(device.Mac))
	allow.Enroll(mac2)
	if err := mac2.LogInMobileUser(ctx, "net", "Network User"); err != nil {
		t.Fatalf("mobile user with UserAuthenticate allowed: %v", err)
	}
	if r := allow.RunUser(mac2, &mdm.ProfileList{}); r.Status != mdm.StatusAcknowledged {
		t.Errorf("ProfileList on the mobile user's channel: %+v", r)
	}
	if err := srv.NewDevice(device.WithModel(device.IPhone)).LogInMobileUser(ctx, "x", ""); err == nil {
		t.Error("UserAuthenticate from an iPhone")
	}
}

// TestUserChannelPushes: a command queued for a logged-in user's channel
// pushes to that channel's token; the device, listening on it, wakes and
// answers on the user's channel without a ConnectUser from the test.
func TestUserChannelPushes(t *testing.T) {
	srv := mdmtest.NewServer(t)
	for _, tc := range []struct {
		name string
		dev  *device.Device
	}{
		{"Shared iPad", srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithSharedIPad(true))},
		{"Mac", srv.NewDevice(device.WithModel(device.Mac))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.Enroll(tc.dev)
			if err := tc.dev.ListenForUserPushes(context.Background(), srv.APNsURL(), srv.APNsDialOptions()); !errors.Is(err, device.ErrNoUserLoggedIn) {
				t.Errorf("listening with nobody logged in: %v", err)
			}
			if err := tc.dev.LogIn(context.Background(), "ann@example.org", "Ann"); err != nil {
				t.Fatal(err)
			}
			srv.ListenForUserPushes(tc.dev)
			id := tc.dev.Users()[0].EnrollmentID
			uuid := srv.Enqueue(&mdm.ProfileList{}, id) // pushes by default
			st := srv.WaitResult(uuid, 10*time.Second)
			if len(st.Results) != 1 || st.Results[0].Status != mdm.StatusAcknowledged || st.Results[0].EnrollmentID != id {
				t.Errorf("the pushed command on the user's channel: %+v", st)
			}
		})
	}
}

// TestUserPushListenerFollowsLogins: the user channel's listener subscribes
// again after its stream fails; on a LogOut it drops the stream, and it
// follows the next user to log in; a push APNs kept for a logged-out user
// wakes that user's channel when the user logs in again.
func TestUserPushListenerFollowsLogins(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithSharedIPad(true))
	srv.Enroll(dev)
	ctx := context.Background()
	mock := srv.Server().MockAPNs()
	user := func(name string) device.User {
		t.Helper()
		for _, u := range dev.Users() {
			if u.ShortName == name {
				return u
			}
		}
		t.Fatalf("no user %s on the device", name)
		return device.User{}
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	answered := func(uuid, id string) {
		t.Helper()
		st := srv.WaitResult(uuid, 10*time.Second)
		if len(st.Results) != 1 || st.Results[0].Status != mdm.StatusAcknowledged || st.Results[0].EnrollmentID != id {
			t.Fatalf("command %s for %s: %+v", uuid, id, st.Results)
		}
	}

	if err := dev.LogIn(ctx, "ann@example.org", "Ann"); err != nil {
		t.Fatal(err)
	}
	srv.ListenForUserPushes(dev)
	ann := user("ann@example.org")

	mock.Reset() // every stream fails
	waitUntil("the user's channel to subscribe again", func() bool { return mock.Connected(ann.PushToken) })
	answered(srv.Enqueue(&mdm.ProfileList{}, ann.EnrollmentID), ann.EnrollmentID)

	dev.LogOut()
	waitUntil("the logged-out user's stream to close", func() bool { return !mock.Connected(ann.PushToken) })
	kept := srv.Enqueue(&mdm.ProfileList{}, ann.EnrollmentID)
	waitUntil("APNs to keep the push for the logged-out user", func() bool { _, ok := mock.Pending(ann.PushToken); return ok })

	if err := dev.LogIn(ctx, "bob@example.org", "Bob"); err != nil {
		t.Fatal(err)
	}
	bob := user("bob@example.org")
	waitUntil("the listener to follow Bob", func() bool { return mock.Connected(bob.PushToken) })
	answered(srv.Enqueue(&mdm.ProfileList{}, bob.EnrollmentID), bob.EnrollmentID)
	if st, err := srv.Client().GetCommand(ctx, kept, 0); err != nil || st.Done {
		t.Fatalf("Ann's command while she was logged out: %+v, %v", st, err)
	}

	dev.LogOut()
	if err := dev.LogIn(ctx, "ann@example.org", "Ann"); err != nil {
		t.Fatal(err)
	}
	answered(kept, ann.EnrollmentID) // the kept push woke Ann's channel
}

// macWithAnn is a supervised Mac enrolled in a new server, its local user
// ann logged in (and given a user channel).
func macWithAnn(t *testing.T) (*mdmtest.Server, *device.Device) {
	t.Helper()
	srv := mdmtest.NewServer(t)
	mac := srv.NewDevice(device.WithModel(device.Mac), device.WithSupervised(true))
	srv.Enroll(mac)
	if err := mac.LogIn(context.Background(), "ann", "Ann Example"); err != nil {
		t.Fatal(err)
	}
	return srv, mac
}
