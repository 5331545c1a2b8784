package mdm

import "strings"

// SharedIPadUserID is the UserID a Shared iPad sends on its user channel;
// such a channel is keyed by UserShortName instead.
const SharedIPadUserID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

// Enrollment carries the identifier keys that any check-in or command request
// can hold. Which of them are present tells the enrollment type and channel.
type Enrollment struct {
	UDID             string `plist:",omitempty"`
	UserID           string `plist:",omitempty"`
	UserShortName    string `plist:",omitempty"`
	UserLongName     string `plist:",omitempty"`
	EnrollmentID     string `plist:",omitempty"`
	EnrollmentUserID string `plist:",omitempty"`
}

// EnrollType names the kind of enrollment and channel a request speaks for.
type EnrollType string

const (
	// Device is the device channel of a device enrollment (profile, ADE, ADDE).
	Device EnrollType = "Device"
	// User is the macOS user channel of a device enrollment.
	User EnrollType = "User"
	// SharedIPad is a Shared iPad user channel.
	SharedIPad EnrollType = "SharedIPad"
	// UserEnrollmentDevice is the device channel of a User Enrollment (BYOD).
	UserEnrollmentDevice EnrollType = "UserEnrollmentDevice"
	// UserEnrollment is the macOS user channel of a User Enrollment.
	UserEnrollment EnrollType = "UserEnrollment"
)

// IsDeviceChannel reports whether t is a device channel.
func (t EnrollType) IsDeviceChannel() bool { return t == Device || t == UserEnrollmentDevice }

// IsUserEnrollment reports whether t belongs to a User Enrollment (BYOD).
func (t EnrollType) IsUserEnrollment() bool {
	return t == UserEnrollmentDevice || t == UserEnrollment
}

// ResolvedID is where a request is addressed: its normalized ID, its type,
// and the ID of the device channel it belongs to (its own ID for a device
// channel). Identity certificates are bound to the device channel ID.
type ResolvedID struct {
	ID       string
	Type     EnrollType
	DeviceID string
}

// Resolve works out the enrollment a request speaks for, following Apple's
// rules: UDID means a device enrollment, EnrollmentID a User Enrollment, and
// a user identifier on top of either means its user channel.
func (e Enrollment) Resolve() (ResolvedID, error) {
	udid := strings.TrimSpace(e.UDID)
	switch {
	case udid != "":
		if e.UserID == "" {
			return ResolvedID{ID: udid, Type: Device, DeviceID: udid}, nil
		}
		if strings.EqualFold(e.UserID, SharedIPadUserID) {
			if e.UserShortName == "" {
				return ResolvedID{}, parseErrorf("UserShortName", "a Shared iPad user channel (UserID %s) must carry UserShortName", SharedIPadUserID)
			}
			return ResolvedID{ID: udid + ":" + e.UserShortName, Type: SharedIPad, DeviceID: udid}, nil
		}
		return ResolvedID{ID: udid + ":" + e.UserID, Type: User, DeviceID: udid}, nil
	case e.EnrollmentID != "":
		if e.EnrollmentUserID == "" {
			return ResolvedID{ID: e.EnrollmentID, Type: UserEnrollmentDevice, DeviceID: e.EnrollmentID}, nil
		}
		return ResolvedID{ID: e.EnrollmentID + ":" + e.EnrollmentUserID, Type: UserEnrollment, DeviceID: e.EnrollmentID}, nil
	}
	return ResolvedID{}, parseErrorf("UDID", "the message carries neither UDID (device enrollment) nor EnrollmentID (User Enrollment), so it speaks for no enrollment")
}
