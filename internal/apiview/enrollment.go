// Package apiview turns store records into the REST API's wire types, so
// that the API and the dashboard show a record the same way — and both
// without its secrets — from one piece of code.
package apiview

import (
	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// Enrollment shows a record without its secrets (push token and magic,
// unlock and bootstrap tokens): what GET /v1/enrollments answers and the
// dashboard renders.
func Enrollment(e *store.Enrollment) api.Enrollment {
	t := mdm.EnrollType(e.Type)
	out := api.Enrollment{
		ID:             e.ID,
		Type:           e.Type,
		EnrollmentType: EnrollmentTypeWords(t),
		Channel:        "user",
		DeviceID:       e.DeviceID,

		UDID:             e.UDID,
		EnrollmentID:     e.EnrollmentID,
		UserID:           e.UserID,
		UserShortName:    e.UserShortName,
		UserLongName:     e.UserLongName,
		EnrollmentUserID: e.EnrollmentUserID,

		SerialNumber: e.SerialNumber,
		Model:        e.Model,
		ModelName:    e.ModelName,
		ProductName:  e.ProductName,
		DeviceName:   e.DeviceName,
		OSVersion:    e.OSVersion,
		BuildVersion: e.BuildVersion,
		IMEI:         e.IMEI,
		MEID:         e.MEID,

		Topic:                 e.Topic,
		PushTokenPresent:      len(e.PushToken) > 0 && e.PushMagic != "",
		AwaitingConfiguration: e.AwaitingConfiguration,

		Enrolled:   e.Enrolled,
		CheckedOut: e.CheckedOut,

		AuthenticatedAt: e.AuthenticatedAt,
		EnrolledAt:      e.EnrolledAt,
		LastSeen:        e.LastSeen,

		IdentityCertSHA256: e.CertHash,
		Management:         api.Management(e.Management),
		IdentityNotAfter:   e.CertNotAfter,
	}
	if t.IsDeviceChannel() {
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

// EnrollmentTypeWords says an enrollment type the way a person would.
func EnrollmentTypeWords(t mdm.EnrollType) string {
	switch t {
	case mdm.Device:
		return "device enrollment"
	case mdm.User:
		return "device enrollment (macOS user channel)"
	case mdm.SharedIPad:
		return "Shared iPad user"
	case mdm.UserEnrollmentDevice:
		return "user enrollment (BYOD)"
	case mdm.UserEnrollment:
		return "user enrollment (BYOD, macOS user channel)"
	}
	return "unknown (" + string(t) + ")"
}
