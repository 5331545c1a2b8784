package mdm

import (
	"errors"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/internal/plistguard"
)

// Check-in MessageType values (Apple's mdm/checkin schemas).
const (
	MessageAuthenticate          = "Authenticate"
	MessageTokenUpdate           = "TokenUpdate"
	MessageCheckOut              = "CheckOut"
	MessageSetBootstrapToken     = "SetBootstrapToken"
	MessageGetBootstrapToken     = "GetBootstrapToken"
	MessageUserAuthenticate      = "UserAuthenticate"
	MessageDeclarativeManagement = "DeclarativeManagement"
	MessageGetToken              = "GetToken"
)

// CheckinMessageTypes lists every check-in MessageType this package decodes.
var CheckinMessageTypes = []string{
	MessageAuthenticate, MessageTokenUpdate, MessageCheckOut,
	MessageSetBootstrapToken, MessageGetBootstrapToken, MessageUserAuthenticate,
	MessageDeclarativeManagement, MessageGetToken,
}

// CheckinMessage is implemented by every decoded check-in message.
type CheckinMessage interface {
	// Type is the message's MessageType.
	Type() string
	// IDs is the message's enrollment identifiers.
	IDs() Enrollment
	// RawBytes is the exact body the message was decoded from.
	RawBytes() []byte
}

// checkinHeader is embedded in every check-in message type.
type checkinHeader struct {
	Enrollment
	MessageType string
	Raw         []byte `plist:"-"`
}

func (h *checkinHeader) Type() string      { return h.MessageType }
func (h *checkinHeader) IDs() Enrollment   { return h.Enrollment }
func (h *checkinHeader) RawBytes() []byte  { return h.Raw }
func (h *checkinHeader) setRaw(raw []byte) { h.Raw = raw }

// Authenticate is the first check-in of an enrollment (Apple: Authenticate).
// It identifies the device; it proves nothing by itself.
type Authenticate struct {
	checkinHeader
	Topic        string
	BuildVersion string `plist:",omitempty"`
	DeviceName   string `plist:",omitempty"`
	IMEI         string `plist:",omitempty"`
	MEID         string `plist:",omitempty"`
	Model        string `plist:",omitempty"`
	ModelName    string `plist:",omitempty"`
	OSVersion    string `plist:",omitempty"`
	ProductName  string `plist:",omitempty"`
	SerialNumber string `plist:",omitempty"`
}

// TokenUpdate carries the push token and magic (Apple: TokenUpdate). The
// first one after Authenticate completes the enrollment.
type TokenUpdate struct {
	checkinHeader
	Topic                 string
	Token                 []byte
	PushMagic             string
	UnlockToken           []byte `plist:",omitempty"`
	AwaitingConfiguration bool   `plist:",omitempty"`
	NotOnConsole          bool   `plist:",omitempty"`
}

// CheckOut says the MDM profile was removed (Apple: CheckOut).
type CheckOut struct {
	checkinHeader
	Topic string
}

// SetBootstrapToken escrows (or, empty, deletes) a macOS bootstrap token.
type SetBootstrapToken struct {
	checkinHeader
	BootstrapToken        []byte `plist:",omitempty"`
	AwaitingConfiguration bool   `plist:",omitempty"`
}

// GetBootstrapToken asks for the escrowed bootstrap token.
type GetBootstrapToken struct {
	checkinHeader
	AwaitingConfiguration bool `plist:",omitempty"`
}

// BootstrapTokenResponse answers GetBootstrapToken.
type BootstrapTokenResponse struct {
	BootstrapToken []byte
}

// UserAuthenticate asks the server whether to manage a macOS user.
type UserAuthenticate struct {
	checkinHeader
	DigestResponse string `plist:",omitempty"`
}

// DeclarativeManagement is a declarative-management request riding on the
// check-in endpoint.
type DeclarativeManagement struct {
	checkinHeader
	Endpoint string
	Data     []byte `plist:",omitempty"`
}

// GetToken asks the server for a token of a named service.
type GetToken struct {
	checkinHeader
	TokenServiceType string
	TokenParameters  map[string]any `plist:",omitempty"`
}

type rawSetter interface{ setRaw([]byte) }

// DecodeCheckin decodes a check-in body into its typed message, checking the
// keys every message of its type must carry. The returned message keeps raw.
func DecodeCheckin(raw []byte) (CheckinMessage, error) {
	var head struct{ MessageType any }
	if err := unmarshal(raw, &head); err != nil {
		return nil, err
	}
	mt, ok := head.MessageType.(string)
	if !ok || mt == "" {
		if head.MessageType == nil {
			return nil, parseErrorf("MessageType", "missing: every check-in message names its MessageType")
		}
		return nil, parseErrorf("MessageType", "must be a string, got %T", head.MessageType)
	}
	var msg interface {
		CheckinMessage
		rawSetter
	}
	switch mt {
	case MessageAuthenticate:
		msg = new(Authenticate)
	case MessageTokenUpdate:
		msg = new(TokenUpdate)
	case MessageCheckOut:
		msg = new(CheckOut)
	case MessageSetBootstrapToken:
		msg = new(SetBootstrapToken)
	case MessageGetBootstrapToken:
		msg = new(GetBootstrapToken)
	case MessageUserAuthenticate:
		msg = new(UserAuthenticate)
	case MessageDeclarativeManagement:
		msg = new(DeclarativeManagement)
	case MessageGetToken:
		msg = new(GetToken)
	default:
		return nil, &UnknownMessageTypeError{MessageType: mt}
	}
	if err := unmarshal(raw, msg); err != nil {
		return nil, err
	}
	msg.setRaw(raw)
	if err := validateCheckin(msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// UnknownMessageTypeError is a check-in whose MessageType no schema defines.
type UnknownMessageTypeError struct{ MessageType string }

func (e *UnknownMessageTypeError) Error() string {
	return "unknown check-in MessageType " + quote(e.MessageType) + "; known types: Authenticate, TokenUpdate, CheckOut, SetBootstrapToken, GetBootstrapToken, UserAuthenticate, DeclarativeManagement, GetToken"
}

// HTTPStatus is 400.
func (e *UnknownMessageTypeError) HTTPStatus() int { return 400 }

func validateCheckin(m CheckinMessage) error {
	if _, err := m.IDs().Resolve(); err != nil {
		return err
	}
	switch v := m.(type) {
	case *Authenticate:
		if v.Topic == "" {
			return parseErrorf("Topic", "Authenticate must carry the push Topic")
		}
		if v.UDID != "" && v.EnrollmentID != "" {
			return parseErrorf("EnrollmentID", "Authenticate carries both UDID and EnrollmentID; a device enrollment sends UDID, a User Enrollment EnrollmentID")
		}
		if v.UserID != "" || v.EnrollmentUserID != "" {
			return parseErrorf("UserID", "Authenticate is only sent on the device channel, but this one names a user")
		}
	case *TokenUpdate:
		if v.Topic == "" {
			return parseErrorf("Topic", "TokenUpdate must carry the push Topic")
		}
		if len(v.Token) == 0 {
			return parseErrorf("Token", "TokenUpdate must carry the push Token as <data>")
		}
		if v.PushMagic == "" {
			return parseErrorf("PushMagic", "TokenUpdate must carry PushMagic")
		}
	case *CheckOut:
		if v.Topic == "" {
			return parseErrorf("Topic", "CheckOut must carry the push Topic")
		}
	case *DeclarativeManagement:
		if v.Endpoint == "" {
			return parseErrorf("Endpoint", "DeclarativeManagement must name its Endpoint (tokens, declaration-items, status, declaration/…)")
		}
	case *GetToken:
		if v.TokenServiceType == "" {
			return parseErrorf("TokenServiceType", "GetToken must name its TokenServiceType")
		}
	}
	return nil
}

// unmarshal decodes a plist, turning the decoder's errors into ParseErrors.
func unmarshal(raw []byte, v any) error {
	if len(raw) == 0 {
		return &ParseError{Reason: "empty body: expected an XML property list"}
	}
	// The plist library trusts a binary plist's own length fields and
	// references; a few hostile bytes could crash the process.
	if err := plistguard.Check(raw); err != nil {
		return &ParseError{Reason: "refused property list", Err: err}
	}
	if err := plist.Unmarshal(raw, v); err != nil {
		var te plist.UnmarshalTypeError
		if errors.As(err, &te) {
			if pe := typeMismatch(raw, v); pe != nil {
				return pe
			}
			return &ParseError{Reason: "a key has the wrong type (" + te.Error() + ")"}
		}
		return &ParseError{Reason: "not a valid property list", Err: err}
	}
	return nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "\"" + s + "\""
}
