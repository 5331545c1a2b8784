package mdm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/micromdm/plist"
)

// Status values a device reports on the command endpoint.
const (
	StatusIdle               = "Idle"
	StatusAcknowledged       = "Acknowledged"
	StatusError              = "Error"
	StatusCommandFormatError = "CommandFormatError"
	StatusNotNow             = "NotNow"
)

// ErrorChainItem is one element of a result's ErrorChain.
type ErrorChainItem struct {
	ErrorCode            int    `json:"ErrorCode"`
	ErrorDomain          string `json:"ErrorDomain"`
	LocalizedDescription string `json:"LocalizedDescription"`
	USEnglishDescription string `json:"USEnglishDescription,omitempty" plist:",omitempty"`
}

// CommandResults is what a device sends to the command endpoint: a status,
// the command it answers, and the command's response keys at top level.
type CommandResults struct {
	Enrollment
	CommandUUID string           `plist:",omitempty"`
	Status      string           `plist:",omitempty"`
	RequestType string           `plist:",omitempty"`
	ErrorChain  []ErrorChainItem `plist:",omitempty"`
	Raw         []byte           `plist:"-"`
}

// DecodeCommandResults decodes a command-endpoint body and checks its Status
// and CommandUUID. The result keeps raw.
func DecodeCommandResults(raw []byte) (*CommandResults, error) {
	r, ok := fastCommandResults(raw)
	if !ok {
		r = new(CommandResults)
		if err := unmarshal(raw, r); err != nil {
			return nil, err
		}
	}
	r.Raw = raw
	if _, err := r.Resolve(); err != nil {
		return nil, err
	}
	switch r.Status {
	case StatusIdle:
	case StatusAcknowledged, StatusError, StatusCommandFormatError, StatusNotNow:
		if r.CommandUUID == "" {
			return nil, parseErrorf("CommandUUID", "a %s result must name the CommandUUID it answers", r.Status)
		}
	case "":
		return nil, parseErrorf("Status", "missing: a command-endpoint message must carry Status (Idle, Acknowledged, Error, CommandFormatError or NotNow)")
	default:
		return nil, parseErrorf("Status", "%s is not one of Idle, Acknowledged, Error, CommandFormatError, NotNow", quote(r.Status))
	}
	return r, nil
}

// Command is a command as the server sends it: a CommandUUID and a Command
// dictionary that names its RequestType.
type Command struct {
	CommandUUID string
	RequestType string
	// Raw is the complete plist sent to the device.
	Raw []byte
}

// DecodeCommand decodes a command plist (as a device receives it).
func DecodeCommand(raw []byte) (*Command, error) {
	var c struct {
		CommandUUID string
		Command     map[string]any
	}
	if err := unmarshal(raw, &c); err != nil {
		return nil, err
	}
	if c.CommandUUID == "" {
		return nil, parseErrorf("CommandUUID", "missing: every command needs a unique CommandUUID")
	}
	if c.Command == nil {
		return nil, parseErrorf("Command", "missing: the command plist must have a Command dictionary")
	}
	rt, _ := c.Command["RequestType"].(string)
	if rt == "" {
		return nil, parseErrorf("Command.RequestType", "missing: the Command dictionary must name its RequestType")
	}
	return &Command{CommandUUID: c.CommandUUID, RequestType: rt, Raw: raw}, nil
}

// CommandFromPlist accepts a raw command plist from a user (the API's "raw"
// form). The CommandUUID may be absent, in which case newUUID supplies one.
func CommandFromPlist(raw []byte, newUUID func() string) (*Command, error) {
	var c struct {
		CommandUUID string
		Command     map[string]any
	}
	if err := unmarshal(raw, &c); err != nil {
		return nil, err
	}
	if c.Command == nil {
		return nil, parseErrorf("Command", "missing: a raw command is a plist dictionary with CommandUUID (optional) and a Command dictionary holding RequestType")
	}
	rt, _ := c.Command["RequestType"].(string)
	if rt == "" {
		return nil, parseErrorf("Command.RequestType", "missing: the Command dictionary must name its RequestType")
	}
	if c.CommandUUID != "" {
		return &Command{CommandUUID: c.CommandUUID, RequestType: rt, Raw: raw}, nil
	}
	return marshalCommand(newUUID(), c.Command)
}

func marshalCommand(uuid string, payload any) (*Command, error) {
	var buf bytes.Buffer
	enc := plist.NewEncoder(&buf)
	enc.Indent("\t")
	if err := enc.Encode(struct {
		CommandUUID string
		Command     any
	}{uuid, payload}); err != nil {
		return nil, fmt.Errorf("mdm: encoding command: %w", err)
	}
	c, err := DecodeCommand(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("mdm: encoded command does not decode: %w", err)
	}
	return c, nil
}

// CommandRequest is a typed command (the Command dictionary).
type CommandRequest interface {
	requestType() string
	validate() error
}

// NewCommand encodes a typed command with the given CommandUUID.
func NewCommand(uuid string, req CommandRequest) (*Command, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	// Every typed request has a RequestType field; fill it so callers need not.
	v := reflect.ValueOf(req).Elem()
	v.FieldByName("RequestType").SetString(req.requestType())
	// The plist encoder wants the struct itself, not a pointer in an interface.
	return marshalCommand(uuid, v.Interface())
}

// RequestTypeOf is the RequestType a typed request stands for
// (&DeclarativeManagementCommand{} → "DeclarativeManagement").
func RequestTypeOf(req CommandRequest) string { return req.requestType() }

// DeviceInformation asks for device attributes by query name.
type DeviceInformation struct {
	RequestType            string
	Queries                []string
	DeviceAttestationNonce []byte `plist:",omitempty" json:",omitempty"`
}

// SecurityInfo asks for the device's security state.
type SecurityInfo struct{ RequestType string }

// ProfileList asks for the installed configuration profiles.
type ProfileList struct {
	RequestType string
	ManagedOnly bool `plist:",omitempty" json:",omitempty"`
}

// InstallProfile installs a .mobileconfig (Payload is its raw bytes).
type InstallProfile struct {
	RequestType string
	Payload     []byte
}

// RemoveProfile removes an installed profile by its PayloadIdentifier.
type RemoveProfile struct {
	RequestType string
	Identifier  string
}

// InstalledApplicationList asks for installed apps.
type InstalledApplicationList struct {
	RequestType     string
	Identifiers     []string `plist:",omitempty" json:",omitempty"`
	ManagedAppsOnly bool     `plist:",omitempty" json:",omitempty"`
}

// DeviceLock locks the device, optionally with a message.
type DeviceLock struct {
	RequestType string
	Message     string `plist:",omitempty" json:",omitempty"`
	PhoneNumber string `plist:",omitempty" json:",omitempty"`
	PIN         string `plist:",omitempty" json:",omitempty"`
}

// EraseDevice wipes the device.
type EraseDevice struct {
	RequestType            string
	PIN                    string `plist:",omitempty" json:",omitempty"`
	PreserveDataPlan       bool   `plist:",omitempty" json:",omitempty"`
	DisallowProximitySetup bool   `plist:",omitempty" json:",omitempty"`
}

// RestartDevice restarts a supervised device.
type RestartDevice struct {
	RequestType string
	NotifyUser  bool `plist:",omitempty" json:",omitempty"`
}

// ActivationLockBypassCode asks a supervised device for its Activation
// Lock bypass code (the response's ActivationLockBypassCode; empty once
// cleared or 15 days after supervision).
type ActivationLockBypassCode struct {
	RequestType string
}

// ClearActivationLockBypassCode removes the bypass code from a supervised
// device.
type ClearActivationLockBypassCode struct {
	RequestType string
}

// Restrictions asks for the restrictions the device enforces (the
// response's GlobalRestrictions) and, with ProfileRestrictions, each
// profile's own.
type Restrictions struct {
	RequestType         string
	ProfileRestrictions bool `plist:",omitempty" json:",omitempty"`
}

// DeclarativeManagementCommand is the DeclarativeManagement command: it
// makes the device sync its declarations through the DeclarativeManagement
// check-in (the check-in message is DeclarativeManagement); Data, when
// given, is the SyncTokens JSON (base64 in typed JSON).
type DeclarativeManagementCommand struct {
	RequestType string
	Data        []byte `plist:",omitempty" json:",omitempty"`
}

// UserList asks a Shared iPad for its resident users.
type UserList struct {
	RequestType string
}

// LogOutUser signs the current user of a Shared iPad out.
type LogOutUser struct {
	RequestType string
}

// DeleteUser deletes a user from a Shared iPad: UserName, or every user
// with DeleteAllUsers; ForceDeletion deletes users with data to sync too.
type DeleteUser struct {
	RequestType    string
	UserName       string `plist:",omitempty" json:",omitempty"`
	ForceDeletion  bool   `plist:",omitempty" json:",omitempty"`
	DeleteAllUsers bool   `plist:",omitempty" json:",omitempty"`
}

func (c *DeviceInformation) requestType() string { return "DeviceInformation" }
func (c *DeviceInformation) validate() error {
	if len(c.Queries) == 0 {
		return parseErrorf("Queries", "DeviceInformation needs at least one query name, e.g. [\"DeviceName\",\"OSVersion\",\"SerialNumber\"]")
	}
	if len(c.DeviceAttestationNonce) > 32 {
		return parseErrorf("DeviceAttestationNonce", "at most 32 bytes, got %d", len(c.DeviceAttestationNonce))
	}
	return nil
}
func (c *SecurityInfo) requestType() string { return "SecurityInfo" }
func (c *SecurityInfo) validate() error     { return nil }
func (c *ProfileList) requestType() string  { return "ProfileList" }
func (c *ProfileList) validate() error      { return nil }
func (c *InstallProfile) requestType() string {
	return "InstallProfile"
}
func (c *InstallProfile) validate() error {
	if len(c.Payload) == 0 {
		return parseErrorf("Payload", "InstallProfile needs the profile bytes, base64-encoded in JSON")
	}
	return nil
}
func (c *RemoveProfile) requestType() string { return "RemoveProfile" }
func (c *RemoveProfile) validate() error {
	if c.Identifier == "" {
		return parseErrorf("Identifier", "RemoveProfile needs the PayloadIdentifier of the profile to remove")
	}
	return nil
}
func (c *InstalledApplicationList) requestType() string { return "InstalledApplicationList" }
func (c *InstalledApplicationList) validate() error     { return nil }
func (c *DeviceLock) requestType() string               { return "DeviceLock" }
func (c *DeviceLock) validate() error                   { return nil }
func (c *EraseDevice) requestType() string              { return "EraseDevice" }
func (c *EraseDevice) validate() error                  { return nil }
func (c *RestartDevice) requestType() string            { return "RestartDevice" }
func (c *RestartDevice) validate() error                { return nil }
func (c *ActivationLockBypassCode) requestType() string { return "ActivationLockBypassCode" }
func (c *ActivationLockBypassCode) validate() error     { return nil }
func (c *ClearActivationLockBypassCode) requestType() string {
	return "ClearActivationLockBypassCode"
}
func (c *ClearActivationLockBypassCode) validate() error    { return nil }
func (c *Restrictions) requestType() string                 { return "Restrictions" }
func (c *Restrictions) validate() error                     { return nil }
func (c *DeclarativeManagementCommand) requestType() string { return "DeclarativeManagement" }
func (c *DeclarativeManagementCommand) validate() error     { return nil }
func (c *UserList) requestType() string                     { return "UserList" }
func (c *UserList) validate() error                         { return nil }
func (c *LogOutUser) requestType() string                   { return "LogOutUser" }
func (c *LogOutUser) validate() error                       { return nil }
func (c *DeleteUser) requestType() string                   { return "DeleteUser" }
func (c *DeleteUser) validate() error {
	if c.UserName == "" && !c.DeleteAllUsers {
		return parseErrorf("UserName", "DeleteUser needs the UserName to delete, or DeleteAllUsers true")
	}
	return nil
}

// typedCommands maps a RequestType to a constructor of its typed request.
var typedCommands = map[string]func() CommandRequest{
	"DeviceInformation":        func() CommandRequest { return new(DeviceInformation) },
	"SecurityInfo":             func() CommandRequest { return new(SecurityInfo) },
	"ProfileList":              func() CommandRequest { return new(ProfileList) },
	"InstallProfile":           func() CommandRequest { return new(InstallProfile) },
	"RemoveProfile":            func() CommandRequest { return new(RemoveProfile) },
	"InstalledApplicationList": func() CommandRequest { return new(InstalledApplicationList) },
	"DeviceLock":               func() CommandRequest { return new(DeviceLock) },
	"EraseDevice":              func() CommandRequest { return new(EraseDevice) },
	"RestartDevice":            func() CommandRequest { return new(RestartDevice) },
	"ActivationLockBypassCode": func() CommandRequest { return new(ActivationLockBypassCode) },
	"Restrictions":             func() CommandRequest { return new(Restrictions) },
	"UserList":                 func() CommandRequest { return new(UserList) },
	"DeclarativeManagement":    func() CommandRequest { return new(DeclarativeManagementCommand) },
	"LogOutUser":               func() CommandRequest { return new(LogOutUser) },
	"DeleteUser":               func() CommandRequest { return new(DeleteUser) },
	"ClearActivationLockBypassCode": func() CommandRequest {
		return new(ClearActivationLockBypassCode)
	},
}

// TypedRequestTypes lists the RequestTypes that can be given as typed JSON.
func TypedRequestTypes() []string {
	out := make([]string, 0, len(typedCommands))
	for k := range typedCommands {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CommandFromJSON decodes a typed command given as JSON whose keys are
// Apple's key names, e.g. {"RequestType":"DeviceInformation","Queries":["UDID"]}.
// Unknown keys are refused, so a typo does not silently send a different command.
func CommandFromJSON(data []byte, uuid string) (*Command, error) {
	var head struct{ RequestType string }
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &ParseError{Field: "command", Reason: "not valid JSON", Err: err}
	}
	ctor, ok := typedCommands[head.RequestType]
	if !ok {
		if head.RequestType == "" {
			return nil, parseErrorf("command.RequestType", "missing: name the command, one of %s (or send any command as a raw plist)", strings.Join(TypedRequestTypes(), ", "))
		}
		return nil, parseErrorf("command.RequestType", "%s has no typed JSON form; typed commands are %s; send it as a raw plist instead", quote(head.RequestType), strings.Join(TypedRequestTypes(), ", "))
	}
	req := ctor()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return nil, &ParseError{Field: "command", Reason: "does not fit " + head.RequestType, Err: err}
	}
	return NewCommand(uuid, req)
}

// MarshalPlist encodes v as an XML property list.
func MarshalPlist(v any) ([]byte, error) {
	b, err := plist.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("mdm: encoding plist: %w", err)
	}
	return b, nil
}
