package device

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mockmdm/mockmdm/mdm"
)

// User channels: a Shared iPad's users and a Mac's users each get an MDM
// channel of their own when they log in.
//
// Shared iPad: an iPad enrolled through ADE with a profile whose
// is_multi_user is true (or built WithSharedIPad) serves several users, one
// at a time. Each user signs in with a Managed Apple Account; the first
// sign-in creates the user on the device, and each sign-in opens the user's
// own MDM channel with a TokenUpdate that carries UserID
// FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF and the account as UserShortName.
// ConnectUser runs that channel's command session. The device channel
// answers UserList, LogOutUser and DeleteUser, and DeviceInformation
// reports IsMultiUser and the resident-user figures.
//
// Sources: the schemas mdm/checkin/tokenupdate.yaml (UserID, UserShortName
// "the Managed Apple Account identifier of the user on Shared iPad";
// UserLongName is macOS only), mdm/commands/user.list.yaml, user.logout.yaml
// and user.delete.yaml (ForceDeletion; DeleteAllUsers from iOS 14, which
// leaves the users with data to sync and errs unless forced), and
// information.device.yaml (MaximumResidentUsers is always 32 from iOS 13.4;
// QuotaSize in megabytes; EstimatedResidentUsers from the space and the
// quota). Each command's sharedipad rules — Shared iPad only, forbidden on
// Shared iPad, device or user channel — are applied by the dispatcher
// (gate). What a device answers when DeleteUser names the signed-in user,
// an unknown user or one with data to sync is not published; the error
// codes below are mockmdm's own in Apple's domain.
//
// Mac: a user who logs in opens the user channel with a TokenUpdate that
// carries the user's GUID as UserID, the short name and the full name
// (UserLongName, macOS only). A local user does so at once. A network or
// mobile-account user (LogInMobileUser) first sends UserAuthenticate, as
// Apple's "UserAuthenticate" page describes: a 410 means the server will
// not manage the user, who stays logged in without a channel for the
// session; a zero-length DigestChallenge means no AuthToken is needed and
// the TokenUpdate follows. A non-empty challenge needs the user's password
// digested, which a virtual device does not do: it stops with an error
// that says so. Both platforms need com.apple.mdm.per-user-connections in
// the profile's ServerCapabilities, as Apple's devices do. One user is
// logged in at a time on a virtual Mac too (no fast user switching).

// Error codes of the Shared iPad commands (mockmdm's own).
const (
	ErrCodeSharedIPad     = 12073 // a command Apple's schema forbids on a Shared iPad, or on this channel
	ErrCodeUserNotFound   = 12075 // DeleteUser: no such user on the device
	ErrCodeUserLoggedIn   = 12076 // DeleteUser: the user is signed in
	ErrCodeUserDataToSync = 12077 // DeleteUser: the user has data to sync and ForceDeletion is false
)

// maxResidentUsers is MaximumResidentUsers: 32 from iOS 13.4.
const maxResidentUsers = 32

// sharedIPadQuotaMB is each user's quota (QuotaSize, in megabytes).
const sharedIPadQuotaMB = 4096

// ErrNotSharedIPad is a user sign-in on an iPhone or iPad that is not a
// Shared iPad.
var ErrNotSharedIPad = errors.New("device: not a Shared iPad (enroll through ADE with a multi-user profile, or build it WithSharedIPad); only a Shared iPad or a Mac has user channels")

// ErrNoUserLoggedIn is a user-channel operation with no user logged in.
var ErrNoUserLoggedIn = errors.New("device: no user is logged in")

// ErrUserNotManaged is a Mac mobile-account login the server declined with
// 410 to UserAuthenticate: the user is logged in, without a channel.
var ErrUserNotManaged = errors.New("device: the server declined to manage this user (410 to UserAuthenticate); the user is logged in without an MDM channel")

// userRecord is a user who has logged in on the device.
type userRecord struct {
	// ShortName is the Managed Apple Account on a Shared iPad, the short
	// name on a Mac.
	ShortName string `json:"short_name"`
	LongName  string `json:"long_name,omitempty"`
	// UserID is FFFFFFFF-… on a Shared iPad, the user's GUID on a Mac.
	UserID     string `json:"user_id,omitempty"`
	UID        int    `json:"uid,omitempty"`
	Mobile     bool   `json:"mobile,omitempty"`
	Token      []byte `json:"token"`
	PushMagic  string `json:"push_magic"`
	DataToSync bool   `json:"data_to_sync,omitempty"`
	// Unmanaged: the server declined the user (410); no channel.
	Unmanaged bool `json:"unmanaged,omitempty"`
	// Hidden: an administrator account AccountConfiguration made hidden.
	Hidden bool `json:"hidden,omitempty"`
}

// User is a user of a Shared iPad or a Mac.
type User struct {
	// ShortName is the Managed Apple Account on a Shared iPad, the short
	// name on a Mac.
	ShortName, FullName string
	// UserID is what the user channel sends as UserID; EnrollmentID is what
	// the server knows the channel by (UDID:account on a Shared iPad,
	// UDID:GUID on a Mac); empty for a user the server declined.
	UserID, EnrollmentID string
	// PushToken is the user channel's APNs token, what ListenForUserPushes
	// subscribes with; nil for a user the server declined.
	PushToken            []byte
	LoggedIn, DataToSync bool
	// Mobile is a Mac network or mobile-account user.
	Mobile bool
}

func init() {
	moreHandlers["UserList"] = handleUserList
	moreHandlers["LogOutUser"] = handleLogOutUser
	moreHandlers["DeleteUser"] = handleDeleteUser
}

// WithSharedIPad makes the device a Shared iPad (as an ADE profile with
// is_multi_user does); it needs an iPad model and supervision to mean
// anything, as on Apple's devices.
func WithSharedIPad(shared bool) Option { return func(d *Device) { d.sharedIPad = shared } }

// SharedIPad reports whether the device is a Shared iPad.
func (d *Device) SharedIPad() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.sharedIPad
}

// Users lists the device's users (a Shared iPad's resident users, a Mac's
// users who logged in), in the order they first logged in.
func (d *Device) Users() []User {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]User, 0, len(d.st.users))
	for _, u := range d.st.users {
		v := User{ShortName: u.ShortName, FullName: u.LongName, UserID: u.UserID, LoggedIn: u.ShortName == d.st.currentUser, DataToSync: u.DataToSync, Mobile: u.Mobile}
		if !u.Unmanaged {
			v.EnrollmentID = d.hw.UDID + ":" + u.channelKey()
			v.PushToken = slices.Clone(u.Token)
		}
		out = append(out, v)
	}
	return out
}

// channelKey is what follows UDID: in the server's enrollment ID of the
// user's channel (mdm.Enrollment.Resolve).
func (u *userRecord) channelKey() string {
	if u.UserID == mdm.SharedIPadUserID || u.UserID == "" {
		return u.ShortName
	}
	return u.UserID
}

// SetUserDataToSync marks a resident user as having data not yet synced to
// iCloud (what makes DeleteUser refuse without ForceDeletion).
func (d *Device) SetUserDataToSync(managedAppleID string, pending bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.st.user(managedAppleID)
	if u == nil {
		return fmt.Errorf("device: no user %q on this device", managedAppleID)
	}
	u.DataToSync = pending
	return nil
}

func (st *state) user(shortName string) *userRecord {
	for _, u := range st.users {
		if u.ShortName == shortName {
			return u
		}
	}
	return nil
}

// userIDs are the identifier keys of a user's channel: on a Shared iPad
// the FFFFFFFF-… UserID and the account, on a Mac the GUID, short name and
// full name.
func (d *Device) userIDs(shortName string) mdm.Enrollment {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if u := d.st.user(shortName); u != nil {
		return d.channelIDs(u)
	}
	return d.channelIDs(&userRecord{ShortName: shortName})
}

// channelIDs are the identifier keys of u's channel (see userIDs).
func (d *Device) channelIDs(u *userRecord) mdm.Enrollment {
	if u.UserID == "" || u.UserID == mdm.SharedIPadUserID {
		return mdm.Enrollment{UDID: d.hw.UDID, UserID: mdm.SharedIPadUserID, UserShortName: u.ShortName}
	}
	return mdm.Enrollment{UDID: d.hw.UDID, UserID: u.UserID, UserShortName: u.ShortName, UserLongName: u.LongName}
}

// macUserGUID is a Mac user's GeneratedUID, the same for a name on a
// device. It takes no lock (it reads only the hardware identifiers, which
// never change), so a caller may hold d.mu.
func (d *Device) macUserGUID(shortName string) string {
	sum := sha256.Sum256([]byte("mockmdm mac user " + d.hw.UDID + " " + shortName))
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16]))
}

// LogIn logs a user in. On a Shared iPad the name is the user's Managed
// Apple Account, as at its login window: a new user is created on the
// device (at most 32), and the user's channel is opened with a TokenUpdate
// that has its own push token and magic. On a Mac it is a local user's
// short name, and the channel opens the same way with the user's GUID.
// Another user must log out first. When the server refuses the
// TokenUpdate, the user is not logged in.
func (d *Device) LogIn(ctx context.Context, name, fullName string) error {
	return d.logIn(ctx, name, fullName, false)
}

// LogInMobileUser logs a Mac network or mobile-account user in: the device
// sends UserAuthenticate first. A 410 logs the user in without a channel
// and returns ErrUserNotManaged.
func (d *Device) LogInMobileUser(ctx context.Context, shortName, fullName string) error {
	if !d.model.IsMac() {
		return errors.New("device: UserAuthenticate is macOS only; a Shared iPad user logs in with LogIn")
	}
	return d.logIn(ctx, shortName, fullName, true)
}

func (d *Device) logIn(ctx context.Context, name, fullName string, mobile bool) error {
	d.op.Lock()
	defer d.op.Unlock()
	name = strings.TrimSpace(name)
	if name == "" {
		return errors.New("device: LogIn needs the user's name (a Managed Apple Account on a Shared iPad)")
	}
	mac := d.model.IsMac()
	d.mu.RLock()
	shared, e, current := d.sharedIPad, d.st.enrollment, d.st.currentUser
	known := d.st.user(name)
	resident := len(d.st.users)
	d.mu.RUnlock()
	switch {
	case !shared && !mac:
		return ErrNotSharedIPad
	case e == nil:
		return ErrNotEnrolled
	case e.userEnrollment:
		return errors.New("device: a User Enrollment has no user channels of this kind")
	case !slices.Contains(e.mdm.ServerCapabilities, "com.apple.mdm.per-user-connections"):
		return errors.New("device: the enrollment profile's ServerCapabilities do not list com.apple.mdm.per-user-connections, so the device opens no user channel")
	case current != "":
		return fmt.Errorf("device: %s is logged in; LogOut first", current)
	case known == nil && shared && resident >= maxResidentUsers:
		return fmt.Errorf("device: the Shared iPad already has its %d resident users; delete one first", maxResidentUsers)
	}
	u := &userRecord{ShortName: name, LongName: fullName, UserID: mdm.SharedIPadUserID, Mobile: mobile}
	if mac {
		u.UserID = d.macUserGUID(name)
		u.UID = 501 + resident
		if known != nil {
			u.UID = known.UID
		}
	}
	sum := sha256.Sum256([]byte("mockmdm user channel " + d.hw.UDID + " " + name))
	u.Token = sum[:]
	u.PushMagic = strings.ToUpper(hex.EncodeToString(sum[:16]))
	commit := func(unmanaged bool) {
		d.mu.Lock()
		defer d.mu.Unlock()
		u.Unmanaged = unmanaged
		if old := d.st.user(name); old != nil {
			// A user made without a channel (AccountConfiguration's) gets
			// the channel's token and magic now.
			old.LongName, old.Unmanaged, old.Token, old.PushMagic = fullName, unmanaged, u.Token, u.PushMagic
		} else {
			d.st.users = append(d.st.users, u)
		}
		d.st.currentUser = name
	}
	ids := d.channelIDs(u)
	if mobile {
		declined, err := d.userAuthenticate(ctx, e, ids)
		if err != nil {
			return err
		}
		if declined {
			commit(true)
			return ErrUserNotManaged
		}
	}
	var m mdm.TokenUpdate
	m.MessageType = mdm.MessageTokenUpdate
	m.Enrollment = ids
	m.Topic = e.mdm.Topic
	m.Token, m.PushMagic = u.Token, u.PushMagic
	body, err := encodePlist(m)
	if err != nil {
		return err
	}
	if err := d.checkin(ctx, &e.mdm, e.identity, mdm.MessageTokenUpdate, body); err != nil {
		return err
	}
	commit(false)
	d.log.Info("user logged in", "user", name, "user_id", u.UserID)
	return nil
}

// userAuthenticate runs the first round of UserAuthenticate: declined is
// true for a 410; a zero-length DigestChallenge lets the login go on.
func (d *Device) userAuthenticate(ctx context.Context, e *enrollment, ids mdm.Enrollment) (declined bool, err error) {
	r, url, err := d.sendCheckin(ctx, e, mdm.MessageUserAuthenticate, struct {
		MessageType, UDID, UserID string
	}{mdm.MessageUserAuthenticate, ids.UDID, ids.UserID})
	if err != nil {
		return false, err
	}
	switch r.status {
	case http.StatusGone:
		return true, nil
	case http.StatusOK:
	default:
		return false, serverError(mdm.MessageUserAuthenticate, http.MethodPut, url, r, "the server refused UserAuthenticate")
	}
	var answer struct{ DigestChallenge *string }
	if !decodeXMLPlist(r.body, &answer) || answer.DigestChallenge == nil {
		return false, &ExchangeError{Step: mdm.MessageUserAuthenticate, URL: url, Reason: "the answer is neither 410 nor a plist with DigestChallenge"}
	}
	if *answer.DigestChallenge != "" {
		return false, &ExchangeError{Step: mdm.MessageUserAuthenticate, URL: url, Reason: "the server sent a non-empty DigestChallenge; answering it needs the user's password digested, which a virtual device does not do"}
	}
	return false, nil
}

// LogOut signs the current user out, as the user does from Control
// Center; the user stays resident. The device tells the server nothing,
// and ListenForUserPushes drops the user's APNs stream.
func (d *Device) LogOut() {
	d.mu.Lock()
	d.st.currentUser = ""
	d.userPush.dropLocked()
	d.mu.Unlock()
}

// ConnectUser runs one command session on the signed-in user's channel:
// Idle with the user's identifiers, then an answer to each command. The
// commands go through the same registry and Apple's rules for the user
// channel; profiles installed here are the user's own. A 401 ends the
// session with a *ServerError and leaves the device enrolled.
func (d *Device) ConnectUser(ctx context.Context) (*ConnectResult, error) {
	d.mu.RLock()
	user := d.st.currentUser
	unmanaged := user != "" && d.st.user(user).Unmanaged
	d.mu.RUnlock()
	switch {
	case user == "":
		return &ConnectResult{}, ErrNoUserLoggedIn
	case unmanaged:
		return &ConnectResult{}, ErrUserNotManaged
	}
	return d.connect(ctx, user)
}

// residentUserFigures are DeviceInformation's Shared iPad values.
func (d *Device) residentUserFigures(capacityGB float64) map[string]any {
	d.mu.RLock()
	shared, resident := d.sharedIPad, len(d.st.users)
	d.mu.RUnlock()
	if !shared {
		return nil
	}
	estimated := int(capacityGB * 1024 / sharedIPadQuotaMB)
	if estimated > maxResidentUsers {
		estimated = maxResidentUsers
	}
	return map[string]any{
		"MaximumResidentUsers":   maxResidentUsers,
		"EstimatedResidentUsers": estimated,
		"QuotaSize":              sharedIPadQuotaMB,
		"ResidentUsers":          resident,
	}
}

// handleUserList lists the users; the schema prunes what each OS does not
// report (a Shared iPad's quota, a Mac's GUID and UID).
func handleUserList(_ context.Context, d *Device, _ *Command) Response {
	d.mu.RLock()
	defer d.mu.RUnlock()
	users := []any{}
	for _, u := range d.st.users {
		users = append(users, map[string]any{
			"UserName":       u.ShortName,
			"FullName":       u.LongName,
			"UID":            u.UID,
			"UserGUID":       u.UserID,
			"IsLoggedIn":     u.ShortName == d.st.currentUser,
			"HasDataToSync":  u.DataToSync,
			"DataQuota":      int64(sharedIPadQuotaMB) << 20,
			"DataUsed":       int64(0),
			"MobileAccount":  u.Mobile,
			"HasSecureToken": !u.Mobile,
		})
	}
	return Acknowledged(map[string]any{"Users": users})
}

// handleLogOutUser signs the current user out once the acknowledgement is
// sent; with nobody signed in there is nothing to do.
func handleLogOutUser(_ context.Context, d *Device, _ *Command) Response {
	r := Acknowledged(nil)
	r.AfterSend = d.LogOut
	return r
}

func handleDeleteUser(_ context.Context, d *Device, cmd *Command) Response {
	name, err := optString(cmd.Params, "UserName")
	if err != nil {
		return formatError("%v", err)
	}
	force, err := optBool(cmd.Params, "ForceDeletion")
	if err != nil {
		return formatError("%v", err)
	}
	all, err := optBool(cmd.Params, "DeleteAllUsers")
	if err != nil {
		return formatError("%v", err)
	}
	if !all && name == "" {
		return formatError("DeleteUser needs UserName unless DeleteAllUsers is true")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var targets []*userRecord
	if all {
		targets = slices.Clone(d.st.users)
	} else if u := d.st.user(name); u != nil {
		targets = []*userRecord{u}
	} else {
		return Failed(ChainItem(DomainMDM, ErrCodeUserNotFound, "The user was not found."),
			detail("no user %q is on this device", name))
	}
	var kept []string
	var firstErr Response
	for _, u := range targets {
		var refusal Response
		switch {
		case u.ShortName == d.st.currentUser:
			refusal = Failed(ChainItem(DomainMDM, ErrCodeUserLoggedIn, "The user is logged in."),
				detail("%s is signed in; log the user out first", u.ShortName))
		case u.DataToSync && !force:
			refusal = Failed(ChainItem(DomainMDM, ErrCodeUserDataToSync, "The user has data to sync."),
				detail("%s has data not yet synced; send ForceDeletion to delete it anyway", u.ShortName))
		default:
			d.st.deleteUser(u.ShortName)
			continue
		}
		kept = append(kept, u.ShortName)
		if firstErr.Status == "" {
			firstErr = refusal
		}
	}
	if len(kept) > 0 {
		if all {
			firstErr.ErrorChain = append(firstErr.ErrorChain, detail("not deleted: %s", strings.Join(kept, ", ")))
		}
		return firstErr
	}
	return Acknowledged(nil)
}

// deleteUser removes a resident user and the profiles their channel
// installed.
func (st *state) deleteUser(shortName string) {
	st.users = slices.DeleteFunc(st.users, func(u *userRecord) bool { return u.ShortName == shortName })
	delete(st.declarative, shortName)
	for _, p := range slices.Clone(st.profiles) {
		if p.User == shortName {
			st.removeProfile(p)
		}
	}
	// What the user's declarations put in the keychain goes with them.
	st.roots = slices.DeleteFunc(st.roots, func(r trustedRoot) bool { return r.user == shortName && r.declaration != "" })
	st.identities = slices.DeleteFunc(st.identities, func(id *identity) bool { return id.user == shortName && id.declaration != "" })
}

// userChannelRefused is what a user channel gets for a 401.
func userChannelRefused(step, url string, r *reply) error {
	return serverError(step, http.MethodPut, url, r, "the server refused the user's channel")
}
