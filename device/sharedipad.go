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

// ErrNotSharedIPad is a user sign-in on a device that is not a Shared iPad.
var ErrNotSharedIPad = errors.New("device: not a Shared iPad (enroll through ADE with a multi-user profile, or build it WithSharedIPad)")

// ErrNoUserLoggedIn is a user-channel operation with no user signed in.
var ErrNoUserLoggedIn = errors.New("device: no Shared iPad user is signed in")

// sharedUser is a user who has signed in on the Shared iPad.
type sharedUser struct {
	// ShortName is the Managed Apple Account.
	ShortName  string `json:"short_name"`
	LongName   string `json:"long_name,omitempty"`
	Token      []byte `json:"token"`
	PushMagic  string `json:"push_magic"`
	DataToSync bool   `json:"data_to_sync,omitempty"`
}

// SharedUser is a user resident on a Shared iPad.
type SharedUser struct {
	ManagedAppleID, FullName string
	LoggedIn, DataToSync     bool
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

// Users lists the users resident on the Shared iPad, in the order they
// first signed in.
func (d *Device) Users() []SharedUser {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]SharedUser, 0, len(d.st.users))
	for _, u := range d.st.users {
		out = append(out, SharedUser{ManagedAppleID: u.ShortName, FullName: u.LongName, LoggedIn: u.ShortName == d.st.currentUser, DataToSync: u.DataToSync})
	}
	return out
}

// SetUserDataToSync marks a resident user as having data not yet synced to
// iCloud (what makes DeleteUser refuse without ForceDeletion).
func (d *Device) SetUserDataToSync(managedAppleID string, pending bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.st.user(managedAppleID)
	if u == nil {
		return fmt.Errorf("device: no user %q on this Shared iPad", managedAppleID)
	}
	u.DataToSync = pending
	return nil
}

func (st *state) user(shortName string) *sharedUser {
	for _, u := range st.users {
		if u.ShortName == shortName {
			return u
		}
	}
	return nil
}

// userIDs are the identifier keys of a Shared iPad user's channel.
func (d *Device) userIDs(shortName string) mdm.Enrollment {
	return mdm.Enrollment{UDID: d.hw.UDID, UserID: mdm.SharedIPadUserID, UserShortName: shortName}
}

// LogIn signs a user in with their Managed Apple Account, as at the Shared
// iPad's login window: a new user is created on the device (at most 32),
// and the user's channel is opened with a TokenUpdate that has its own push
// token and magic. Another user must log out first. When the server
// refuses the TokenUpdate, the user is not signed in.
func (d *Device) LogIn(ctx context.Context, managedAppleID, fullName string) error {
	d.op.Lock()
	defer d.op.Unlock()
	managedAppleID = strings.TrimSpace(managedAppleID)
	if managedAppleID == "" {
		return errors.New("device: LogIn needs the user's Managed Apple Account")
	}
	d.mu.RLock()
	shared, e, current := d.sharedIPad, d.st.enrollment, d.st.currentUser
	known := d.st.user(managedAppleID) != nil
	resident := len(d.st.users)
	d.mu.RUnlock()
	switch {
	case !shared:
		return ErrNotSharedIPad
	case e == nil:
		return ErrNotEnrolled
	case current != "":
		return fmt.Errorf("device: %s is signed in; LogOut first", current)
	case !known && resident >= maxResidentUsers:
		return fmt.Errorf("device: the Shared iPad already has its %d resident users; delete one first", maxResidentUsers)
	}
	u := &sharedUser{ShortName: managedAppleID, LongName: fullName}
	sum := sha256.Sum256([]byte("mockmdm shared ipad user " + d.hw.UDID + " " + managedAppleID))
	u.Token = sum[:]
	u.PushMagic = strings.ToUpper(hex.EncodeToString(sum[:16]))
	var m mdm.TokenUpdate
	m.MessageType = mdm.MessageTokenUpdate
	m.Enrollment = d.userIDs(managedAppleID)
	m.Topic = e.mdm.Topic
	m.Token, m.PushMagic = u.Token, u.PushMagic
	body, err := encodePlist(m)
	if err != nil {
		return err
	}
	if err := d.checkin(ctx, &e.mdm, e.identity, mdm.MessageTokenUpdate, body); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.st.user(managedAppleID); old != nil {
		old.LongName = fullName
	} else {
		d.st.users = append(d.st.users, u)
	}
	d.st.currentUser = managedAppleID
	d.log.Info("Shared iPad user signed in", "user", managedAppleID)
	return nil
}

// LogOut signs the current user out, as the user does from Control
// Center; the user stays resident. The device tells the server nothing.
func (d *Device) LogOut() {
	d.mu.Lock()
	d.st.currentUser = ""
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
	d.mu.RUnlock()
	if user == "" {
		return &ConnectResult{}, ErrNoUserLoggedIn
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

func handleUserList(_ context.Context, d *Device, _ *Command) Response {
	users := []any{}
	for _, u := range d.Users() {
		users = append(users, map[string]any{
			"UserName":      u.ManagedAppleID,
			"IsLoggedIn":    u.LoggedIn,
			"HasDataToSync": u.DataToSync,
			"DataQuota":     int64(sharedIPadQuotaMB) << 20,
			"DataUsed":      int64(0),
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
	var targets []*sharedUser
	if all {
		targets = slices.Clone(d.st.users)
	} else if u := d.st.user(name); u != nil {
		targets = []*sharedUser{u}
	} else {
		return Failed(ChainItem(DomainMDM, ErrCodeUserNotFound, "The user was not found."),
			detail("no user %q is resident on this Shared iPad", name))
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
	st.users = slices.DeleteFunc(st.users, func(u *sharedUser) bool { return u.ShortName == shortName })
	delete(st.declarative, shortName)
	for _, p := range slices.Clone(st.profiles) {
		if p.User == shortName {
			st.removeProfile(p)
		}
	}
}

// userChannelRefused is what a user channel gets for a 401.
func userChannelRefused(step, url string, r *reply) error {
	return serverError(step, http.MethodPut, url, r, "the server refused the Shared iPad user's channel")
}
