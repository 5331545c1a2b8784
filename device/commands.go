package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/internal/plistguard"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
)

// Error domains and codes of the ErrorChain items the device sends.
//
// Apple says domain and code are for diagnostics only; a server should
// judge a result by its Status. Servers branch on them all the same — a
// production MDM server takes a RemoveProfile answered "not found" as the
// profile gone — so where a device's own answer is on public record, the
// virtual device sends it:
//
//   - 12021 (MCMDMErrorDomain) “RestartDevice” is not a valid request
//     type., for a command the device does not know and for a
//     supervised-only one on an unsupervised device: iPhones answered
//     RestartDevice, a supervised-only command, so in MicroMDM's issues 573
//     and 970 (the second quotes the whole answer), and the maintainers
//     point to supervision as the cause — that the devices were
//     unsupervised is their reading, and mockmdm's;
//   - 1000 "not properly formatted" (MCProfileErrorDomain);
//   - RemoveProfile of a profile that is not installed: MDMClientError 89
//     "Profile with identifier '…' not found." from a Mac and
//     MDMErrorDomain 12075 "The profile “…” is not installed." from an
//     iPhone;
//   - InstallProfile over a profile the user installed: MDMClientError 96
//     "Cannot replace profile '…' because it was not installed by the MDM
//     server.";
//   - SetRecoveryLock without the current password: MDMClientError 70
//     "Existing recovery lock password not provided", and with a wrong one
//     ROSLockoutServiceDaemonErrorDomain 8 "The provided recovery password
//     failed to validate.".
//
// These are the signatures Fleet, an open-source MDM server, recognises in
// device answers (its IsProfileNotFoundError and
// IsRecoveryLockPasswordMismatchError list them as known; 96 is in its
// profile-status tests). Fleet's change that added 12075 (pull request
// 43872) quotes an iPhone's answer; its quote marks arrived garbled, and
// “ ” is mockmdm's reading of them. MDMClientError is the domain of
// macOS's mdmclient, so a virtual Mac sends 89 and 96; an iPhone or iPad
// sends 12075 and, for 96's case, the generic installation failure
// (mockmdm's, as nothing is on record).
//
// The other codes are mockmdm's own choices, kept in Apple's domains and
// number ranges, since no public source lists what a device sends in those
// cases. The second item of a chain, in DomainDevice, says in words what
// the virtual device found.
const (
	DomainMDM          = "MCMDMErrorDomain"
	DomainProfile      = "MCProfileErrorDomain"
	DomainInstallation = "MCInstallationErrorDomain"
	// DomainMDMClient is macOS mdmclient's domain; DomainMDMErrors the
	// one of the "not installed" answer to RemoveProfile.
	DomainMDMClient = "MDMClientError"
	DomainMDMErrors = "MDMErrorDomain"
	// DomainRecoveryLockout is the Recovery Lock service's domain.
	DomainRecoveryLockout = "ROSLockoutServiceDaemonErrorDomain"
	// DomainDevice carries the virtual device's detailed reason.
	DomainDevice = "mockmdm.DeviceErrorDomain"

	ErrCodeUnknownCommand       = 12021 // the device does not know the RequestType (or not on its OS)
	ErrCodeInsufficientRights   = 12000 // the profile's AccessRights do not cover the command
	ErrCodeMalformedCommand     = 12001 // a request key is missing or of the wrong type
	ErrCodeUserEnrollment       = 12071 // a command User Enrollment forbids
	ErrCodeRequiresADE          = 12074 // an ADE-only command on a device that did not enroll through ADE (mockmdm's own)
	ErrCodeProfileMalformed     = 1000  // InstallProfile: the profile does not decode
	ErrCodeMacProfileNotFound   = 89    // RemoveProfile on a Mac: no profile with that identifier (DomainMDMClient)
	ErrCodeProfileNotInstalled  = 12075 // RemoveProfile on an iPhone or iPad: no profile with that identifier (DomainMDMErrors)
	ErrCodeNotInstalledByMDM    = 96    // InstallProfile on a Mac over a profile the user installed (DomainMDMClient)
	ErrCodeProfileNotRemovable  = 1012  // RemoveProfile: a profile the user installed
	ErrCodeProfileOfDeclaration = 1013  // RemoveProfile, InstallProfile: a profile a legacy configuration installed (mockmdm's)
	ErrCodeInstallFailed        = 4001  // InstallProfile: a payload failed to install
)

// Codes earlier versions sent where a device's own answer is now known.
const (
	// Deprecated: the old value, 12070, is no longer sent. A
	// supervised-only command on an unsupervised device is answered
	// ErrCodeUnknownCommand, as devices do.
	ErrCodeNotSupervised = ErrCodeUnknownCommand
	// Deprecated: the old value, 1011 in MCProfileErrorDomain, is no longer
	// sent. A virtual iPhone or iPad answers ErrCodeProfileNotInstalled
	// (DomainMDMErrors), a Mac ErrCodeMacProfileNotFound (DomainMDMClient).
	ErrCodeProfileNotFound = ErrCodeProfileNotInstalled
	// Deprecated: the old value, 12078 in MCMDMErrorDomain, is no longer
	// sent. Use ErrCodeRecoveryLockMismatch (DomainRecoveryLockout).
	ErrCodeWrongPassword = ErrCodeRecoveryLockMismatch
)

// maxCommandsPerSession stops a connect session with a server that never
// answers with an empty body.
const maxCommandsPerSession = 1000

// Command is a command the server sent, as a handler sees it.
type Command struct {
	UUID        string
	RequestType string
	// Params is the Command dictionary as decoded (RequestType included):
	// strings, int64/uint64, float64, bool, []byte, time.Time, []any and
	// map[string]any. A handler must check every type it reads.
	Params map[string]any
	// Raw is the command plist exactly as received.
	Raw []byte
	// UserEnrollment and AccessRights describe the enrollment the command
	// came through (AccessRights 0: the profile set none).
	UserEnrollment bool
	AccessRights   int
	// User is the Shared iPad user (Managed Apple Account) whose user
	// channel the command came through; empty on the device channel.
	User string
}

// Response is a handler's answer to a command.
type Response struct {
	// Status is mdm.StatusAcknowledged, StatusError, StatusCommandFormatError
	// or StatusNotNow.
	Status     string
	ErrorChain []mdm.ErrorChainItem
	// Keys are the command's response keys, sent at the top level of the
	// result. They are pruned by Apple's schema for the device's OS (see
	// the package doc).
	Keys map[string]any
	// AfterSend, if set, runs once the result has been sent (EraseDevice
	// wipes the device then), whatever the server answers.
	AfterSend func()
	// EndSession ends the session once the result has been sent, as a
	// device that erases or restarts does; the server's answer is ignored.
	EndSession bool
}

// CommandHandler answers one command. It runs inside Connect, which holds
// the device's operation lock: it may use the device's accessors but must
// not call Install, EnrollFromURL, Connect or Unenroll.
type CommandHandler func(ctx context.Context, d *Device, cmd *Command) Response

// Handle registers h for requestType, replacing the built-in handler if
// there is one; a nil h removes it, so the device answers "Unknown command".
func (d *Device) Handle(requestType string, h CommandHandler) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h == nil {
		delete(d.handlers, requestType)
		d.replaced[requestType] = true
		return
	}
	d.handlers[requestType] = h
	d.replaced[requestType] = true
}

// Acknowledged is a successful Response with response keys (may be nil).
func Acknowledged(keys map[string]any) Response {
	return Response{Status: mdm.StatusAcknowledged, Keys: keys}
}

// Failed is an Error Response with its chain, top-level error first.
func Failed(chain ...mdm.ErrorChainItem) Response {
	return Response{Status: mdm.StatusError, ErrorChain: chain}
}

// ChainItem is an ErrorChain item whose descriptions are both desc.
func ChainItem(domain string, code int, desc string) mdm.ErrorChainItem {
	return mdm.ErrorChainItem{ErrorCode: code, ErrorDomain: domain, LocalizedDescription: desc, USEnglishDescription: desc}
}

// detail is the second chain item: the virtual device's reason in words.
func detail(format string, args ...any) mdm.ErrorChainItem {
	return ChainItem(DomainDevice, 1, fmt.Sprintf(format, args...))
}

// notValid is 12021 as a device words it: “RestartDevice” is not a valid
// request type.
func notValid(requestType string) mdm.ErrorChainItem {
	return ChainItem(DomainMDM, ErrCodeUnknownCommand, fmt.Sprintf("\u201c%s\u201d is not a valid request type.", requestType))
}

func unknownCommand(requestType string) Response {
	return Failed(notValid(requestType))
}

// formatError answers a command whose request keys are wrong.
func formatError(format string, args ...any) Response {
	return Response{
		Status: mdm.StatusCommandFormatError,
		ErrorChain: []mdm.ErrorChainItem{
			ChainItem(DomainMDM, ErrCodeMalformedCommand, "The command is malformed."),
			detail(format, args...),
		},
	}
}

// dispatch answers one command: NotNow behaviour first, then the registry,
// then the schema's rules for the command, then its handler, whose keys
// are pruned by the schema.
func (d *Device) dispatch(ctx context.Context, cmd *Command) (resp Response) {
	d.mu.Lock()
	h := d.handlers[cmd.RequestType]
	notNow := false
	for _, k := range []string{cmd.RequestType, ""} {
		if n := d.st.notNow[k]; n > 0 {
			if n == 1 {
				delete(d.st.notNow, k)
			} else {
				d.st.notNow[k] = n - 1
			}
			notNow = true
			break
		}
	}
	d.mu.Unlock()
	if notNow {
		return Response{Status: mdm.StatusNotNow}
	}
	if r, ok := d.behave(ctx, cmd.RequestType); !ok {
		return r
	}
	if h == nil {
		return unknownCommand(cmd.RequestType)
	}
	return d.answer(ctx, h, cmd)
}

// answer runs h for cmd within the rules of Apple's schema: the gate first,
// then the handler (a panic becomes an Error), then pruning of the keys
// the OS does not report. It changes nothing on the device itself; the
// handler may.
func (d *Device) answer(ctx context.Context, h CommandHandler, cmd *Command) (resp Response) {
	s, known := schema.Command(cmd.RequestType)
	if known {
		if r, refused := d.gate(s, cmd); refused {
			return r
		}
	}
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("command handler panicked", "request_type", cmd.RequestType, "panic", p)
			resp = Failed(commandFailed(), detail("the virtual device's %s handler failed: %v", cmd.RequestType, p))
		}
	}()
	resp = h(ctx, d, cmd)
	if resp.Status == "" {
		resp.Status = mdm.StatusAcknowledged
	}
	if known && resp.Keys != nil {
		d.prune(s, s.ResponseKeys, resp.Keys, cmd.UserEnrollment)
	}
	return resp
}

// gate applies the rules the command's schema states for the device's OS.
func (d *Device) gate(s *schema.Schema, cmd *Command) (Response, bool) {
	os := d.model.schemaOS()
	sup := s.EffectivePath(os)
	version, _ := d.OS()
	shared := sup.SharedIPad != nil && d.SharedIPad() // only commands with Shared iPad rules ask
	switch {
	case !sup.AvailableIn(version):
		return unknownCommand(cmd.RequestType), true
	case sup.SharedIPad != nil && sup.SharedIPad.Mode == "required" && !shared:
		return Failed(notValid(cmd.RequestType),
			detail("Apple's schema makes %s a Shared iPad command and this device is not a Shared iPad", s.Name())), true
	case shared && sup.SharedIPad != nil && sup.SharedIPad.Mode == "forbidden":
		return Failed(ChainItem(DomainMDM, ErrCodeSharedIPad, "The command is not allowed on a Shared iPad."),
			detail("Apple's schema forbids %s on Shared iPad", s.Name())), true
	case shared && sup.SharedIPad != nil && !channelAllowed(sup.SharedIPad, cmd.User != ""):
		return Failed(ChainItem(DomainMDM, ErrCodeSharedIPad, "The command is not allowed on this channel."),
			detail("Apple's schema does not allow %s on a Shared iPad's %s channel", s.Name(), channelName(cmd.User != ""))), true
	case sup.RequiresDEP != nil && *sup.RequiresDEP && !d.enrolledViaADE():
		return Failed(ChainItem(DomainMDM, ErrCodeRequiresADE, "The command requires a device enrolled through Automated Device Enrollment."),
			detail("Apple's schema makes %s ADE-only and this device did not enroll through ADE", s.Name())), true
	case cmd.UserEnrollment && sup.UserEnrollment != nil && sup.UserEnrollment.Mode == "forbidden":
		return Failed(ChainItem(DomainMDM, ErrCodeUserEnrollment, "The command is not allowed on a User Enrollment."),
			detail("Apple's schema forbids %s under User Enrollment", s.Name())), true
	case sup.Supervised != nil && *sup.Supervised && !d.supervised:
		// What iPhones are on record answering RestartDevice with (the
		// list at the top of this file).
		return Failed(notValid(cmd.RequestType),
			detail("%s is supervised-only on %s and this device is not supervised", s.Name(), os)), true
	case !cmd.UserEnrollment && !hasRight(cmd.AccessRights, sup.AccessRights):
		return Failed(ChainItem(DomainMDM, ErrCodeInsufficientRights, "The MDM server does not have the rights to perform this command."),
			detail("%s needs the %s access right, which the profile's AccessRights %d does not grant", s.Name(), sup.AccessRights, cmd.AccessRights)), true
	}
	return Response{}, false
}

// channelAllowed reports whether a Shared iPad rule lets a command through
// on the user channel (user) or the device channel; an unstated channel is
// allowed.
func channelAllowed(r *schema.ModeRule, user bool) bool {
	allowed := r.DeviceChannel
	if user {
		allowed = r.UserChannel
	}
	return allowed == nil || *allowed
}

func channelName(user bool) string {
	if user {
		return "user"
	}
	return "device"
}

// accessRightBits maps the schema's access-right names to AccessRights bits.
var accessRightBits = map[string]int{
	"AllowInspection":                      1,
	"AllowInstallationRemoval":             2,
	"AllowPasscodeRemovalAndLock":          4,
	"DeviceLockAndRemovePasscode":          4,
	"AllowDeviceErase":                     8,
	"AllowQueryDeviceInformation":          16,
	"AllowQueryNetworkInformation":         32,
	"AllowProvisioningInspection":          64,
	"AllowProvisioningInstallationRemoval": 128,
	"AllowQueryApplications":               256,
	"QueryInstalledApps":                   256,
	"AllowQueryRestrictions":               512,
	"AllowQuerySecurity":                   1024,
	"AllowSettings":                        2048,
	"AllowAppInstallation":                 4096,
}

// hasRight reports whether rights grant the named right. Names that are no
// single right ("None", "n/a", "Special Case") pass, and so does a profile
// without AccessRights (0), which a device enrollment should not have.
func hasRight(rights int, name string) bool {
	bit, ok := accessRightBits[name]
	return !ok || rights == 0 || rights&bit != 0
}

// prune deletes from dict the keys the schema says the device's OS (at its
// version) does not have or User Enrollment forbids, recursing into
// dictionaries and arrays of dictionaries. Keys the schema does not name
// are left alone.
func (d *Device) prune(s *schema.Schema, keys []schema.Key, dict map[string]any, ue bool) {
	os := d.model.schemaOS()
	version, _ := d.OS()
	for name, v := range dict {
		k := schema.FindKey(keys, name)
		if k == nil {
			continue
		}
		eff := s.Effective(os, k)
		if !eff.AvailableIn(version) || (ue && eff.UserEnrollment != nil && eff.UserEnrollment.Mode == "forbidden") {
			delete(dict, name)
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			d.prune(s, k.Subkeys, v, ue)
		case []any:
			if len(k.Subkeys) != 1 {
				continue
			}
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					d.prune(s, k.Subkeys[0].Subkeys, m, ue)
				}
			}
		}
	}
}

// Bounds on a command plist from the server, checked before decoding it:
// the plist decoder recurses per level of nesting.
const (
	maxCommandDepth    = 64
	maxCommandElements = 1 << 20
)

// parseCommand decodes a command the server sent. It accepts only XML
// property lists (what the protocol specifies), bounded in nesting and
// size, and never panics. When the command is malformed but names a
// CommandUUID, uuid is returned with the error so the device can answer
// CommandFormatError.
func parseCommand(raw []byte) (cmd *Command, uuid string, err error) {
	defer func() {
		if p := recover(); p != nil {
			cmd, err = nil, fmt.Errorf("the command plist broke the decoder: %v", p)
		}
	}()
	if bytes.HasPrefix(raw, []byte("bplist")) {
		return nil, "", errors.New("the command is a binary property list; the protocol sends XML")
	}
	if err := checkXMLNesting(raw); err != nil {
		return nil, "", err
	}
	// One decode for a well-formed command; anything else takes the
	// passes below, which say what is wrong and keep the UUID if they can.
	var one struct {
		CommandUUID string
		Command     map[string]any
	}
	if plist.Unmarshal(raw, &one) == nil && one.CommandUUID != "" {
		if rt, _ := one.Command["RequestType"].(string); rt != "" {
			return &Command{UUID: one.CommandUUID, RequestType: rt, Params: one.Command, Raw: raw}, one.CommandUUID, nil
		}
	}
	var head struct{ CommandUUID any }
	if plist.Unmarshal(raw, &head) == nil {
		uuid, _ = head.CommandUUID.(string)
	}
	c, err := mdm.DecodeCommand(raw)
	if err != nil {
		return nil, uuid, err
	}
	var full struct{ Command map[string]any }
	if err := plist.Unmarshal(raw, &full); err != nil {
		return nil, uuid, err
	}
	return &Command{UUID: c.CommandUUID, RequestType: c.RequestType, Params: full.Command, Raw: raw}, c.CommandUUID, nil
}

// checkXMLNesting refuses XML nested deeper than maxCommandDepth or with
// more than maxCommandElements elements, with plistguard's byte scanner
// (which counts no less than a tokenizer and does not recurse). Syntax
// errors are left to the plist decoder.
func checkXMLNesting(raw []byte) error {
	switch deep, many := plistguard.ExceedsXML(raw, maxCommandDepth, maxCommandElements); {
	case deep:
		return fmt.Errorf("the command plist nests more than %d levels", maxCommandDepth)
	case many:
		return fmt.Errorf("the command plist has more than %d elements", maxCommandElements)
	}
	return nil
}

// encodeResult builds the result plist: the mdm.CommandResults fields
// (identifiers, CommandUUID, Status, RequestType, ErrorChain) with the
// response keys at the top level beside them.
func encodeResult(ids mdm.Enrollment, uuid, requestType string, r Response) (out []byte, err error) {
	defer func() {
		// The encoder panics on values it cannot take (a nil inside a
		// handler's map); that is the handler's bug, not the session's end.
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("encoding the %s result: %v", requestType, p)
		}
	}()
	base := mdm.CommandResults{
		Enrollment:  ids,
		CommandUUID: uuid,
		Status:      r.Status,
		RequestType: requestType,
		ErrorChain:  r.ErrorChain,
	}
	if len(r.Keys) == 0 {
		return plist.Marshal(base)
	}
	if len(r.ErrorChain) == 0 {
		// The protocol keys beside the response keys in one map, encoded
		// once: what the passes below make, key for key.
		dict := make(map[string]any, len(r.Keys)+8)
		for k, v := range r.Keys {
			if v != nil {
				dict[k] = v
			}
		}
		for k, v := range map[string]string{
			"UDID": ids.UDID, "UserID": ids.UserID, "UserShortName": ids.UserShortName, "UserLongName": ids.UserLongName,
			"EnrollmentID": ids.EnrollmentID, "EnrollmentUserID": ids.EnrollmentUserID,
			"CommandUUID": uuid, "Status": r.Status, "RequestType": requestType,
		} {
			if v != "" {
				dict[k] = v // a handler cannot overwrite the protocol keys
			}
		}
		return plist.Marshal(dict)
	}
	b, err := plist.Marshal(base)
	if err != nil {
		return nil, err
	}
	var dict map[string]any
	if err := plist.Unmarshal(b, &dict); err != nil {
		return nil, err
	}
	for k, v := range r.Keys {
		if _, taken := dict[k]; taken || v == nil {
			continue // a handler cannot overwrite the protocol keys
		}
		dict[k] = v
	}
	return plist.Marshal(dict)
}

// stringList reads an array of strings.
func stringList(v any) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// optBool reads an optional boolean: absent is false, another type is an error.
func optBool(params map[string]any, key string) (bool, error) {
	v, ok := params[key]
	if !ok {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s must be a boolean", key)
	}
	return b, nil
}

// optString reads an optional string.
func optString(params map[string]any, key string) (string, error) {
	v, ok := params[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s must be a string", key)
	}
	return s, nil
}

// commandFailed heads the chain of a command the virtual device itself
// failed to carry out (a handler bug, a result it could not encode).
func commandFailed() mdm.ErrorChainItem {
	return ChainItem(DomainDevice, 2, "The virtual device failed to carry out the command.")
}

// enrolledViaADE reports whether the current enrollment came through
// Automated Device Enrollment.
func (d *Device) enrolledViaADE() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.enrollment != nil && d.st.enrollment.viaADE
}
