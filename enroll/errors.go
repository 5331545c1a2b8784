package enroll

import (
	"fmt"
	"net/http"
)

// Error codes: stable, machine-readable names of the rule that refused a
// request; the page and the API both show them with the message.
const (
	CodeUnknownUser          = "unknown_user"
	CodeWrongPassword        = "wrong_password"
	CodeMFARequired          = "mfa_required"
	CodeMFAFailed            = "mfa_failed"
	CodePasswordExpired      = "password_expired"
	CodeWeakPassword         = "weak_password"
	CodeUserDisabled         = "user_disabled"
	CodeNoTypeProfile        = "no_enrollment_type_profile"
	CodeDeviceGroup          = "device_group_assignment"
	CodeUnknownGroup         = "unknown_group"
	CodeChoiceRequired       = "choice_required"
	CodeBadChoice            = "bad_choice"
	CodePersonalBlocked      = "personal_devices_blocked"
	CodeDEMNotAllowed        = "dem_not_allowed"
	CodeNoManagedAppleID     = "no_managed_apple_id"
	CodeBadTicket            = "bad_ticket"
	CodeInvalid              = "invalid"
	CodeUserEnrollmentSwitch = "user_enrollment_switch"
)

// Error is a refusal by an enrollment rule: an HTTP status, the code of the
// rule that fired and a message a person can act on.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message + " (" + e.Code + ")" }

// HTTPStatus makes Error an httperr status carrier.
func (e *Error) HTTPStatus() int { return e.Status }

func refuse(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return refuse(http.StatusBadRequest, CodeInvalid, format, args...)
}

// Error codes of the ADE and Apple Configurator flows.
const (
	CodeNoADEProfile        = "no_ade_profile"
	CodeUnknownSerial       = "unknown_serial"
	CodeCredentialsRequired = "credentials_required"
	CodeUseWebAuth          = "use_configuration_web_url"
	CodeBadWebSession       = "bad_web_session"
	CodeNoConfigurator      = "no_configurator_profile"
)
