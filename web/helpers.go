package web

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// enrollmentView shows a record the way the API does, without its secrets
// (push token and magic, unlock and bootstrap tokens).
func enrollmentView(e *store.Enrollment) api.Enrollment {
	out := api.Enrollment{
		ID: e.ID, Type: e.Type, DeviceID: e.DeviceID, Channel: "user",
		UDID: e.UDID, EnrollmentID: e.EnrollmentID, UserID: e.UserID,
		UserShortName: e.UserShortName, UserLongName: e.UserLongName, EnrollmentUserID: e.EnrollmentUserID,
		SerialNumber: e.SerialNumber, Model: e.Model, ModelName: e.ModelName, ProductName: e.ProductName,
		DeviceName: e.DeviceName, OSVersion: e.OSVersion, BuildVersion: e.BuildVersion, IMEI: e.IMEI, MEID: e.MEID,
		Topic: e.Topic, PushTokenPresent: len(e.PushToken) > 0 && e.PushMagic != "",
		AwaitingConfiguration: e.AwaitingConfiguration,
		Enrolled:              e.Enrolled, CheckedOut: e.CheckedOut,
		AuthenticatedAt: e.AuthenticatedAt, EnrolledAt: e.EnrolledAt, LastSeen: e.LastSeen,
		IdentityCertSHA256: e.CertHash, IdentityNotAfter: e.CertNotAfter,
	}
	if mdm.EnrollType(e.Type).IsDeviceChannel() {
		out.Channel = "device"
	}
	switch {
	case e.CheckedOut:
		out.State = api.StateCheckedOut
	case e.Enrolled:
		out.State = api.StateEnrolled
	default:
		out.State = api.StateAuthenticated
	}
	return out
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// quote shows a client's value in a message, bounded and escaped.
func quote(s string) string { return strconv.Quote(truncate(s, 80)) }

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
