package schema

import (
	"strings"
)

// Schema kinds: the directory of Apple's release a schema comes from.
const (
	KindProfile     = "profile"      // mdm/profiles: configuration-profile payloads
	KindCommand     = "command"      // mdm/commands: MDM commands and their results
	KindCheckin     = "checkin"      // mdm/checkin: check-in messages
	KindError       = "error"        // mdm/errors: structured 403 error documents
	KindOther       = "other"        // other: MachineInfo, SkipKeys, manifest URLs, …
	KindDeclaration = "declaration"  // declarative/declarations (except credentials)
	KindStatus      = "status"       // declarative/status: status items
	KindDDMProtocol = "ddm-protocol" // declarative/protocol: tokens, declaration items, status report
	KindCredential  = "credential"   // declarative/declarations/assets/credentials
)

// Schema is one schema file of Apple's release: a profile payload, a command,
// a check-in message and so on.
type Schema struct {
	// Kind is one of the Kind constants.
	Kind string
	// File is the source path relative to the release root, e.g.
	// "mdm/profiles/com.apple.mdm.yaml". For a profile payload type that
	// Apple describes in several files (com.apple.MCX), the merged schema's
	// File lists them, comma-separated.
	File string

	PayloadType     string // profiles, other
	RequestType     string // commands, check-in messages, DDM protocol
	DeclarationType string // declarations
	StatusItemType  string // status items
	CredentialType  string // credential asset data
	Apply           string // declarations: how several configurations combine
	Beta            bool

	// SupportedOS is the payload-level support per OS name ("iOS", "macOS",
	// "tvOS", "visionOS", "watchOS"). An OS that is not listed is not
	// supported. Keys inherit it; see Effective.
	SupportedOS map[string]OSSupport

	// PayloadKeys are a profile payload's keys, a command's request keys
	// (under "Command"), a check-in message's keys, an error document's keys.
	PayloadKeys []Key
	// ResponseKeys are a command's result keys (top level of the device's
	// report).
	ResponseKeys []Key

	name string // the name it is looked up by
}

// Name is the identifier the schema is looked up by: the payload type,
// request type, declaration type, status item type, credential type or error
// code.
func (s *Schema) Name() string { return s.name }

// Key is one key of a schema: a dictionary entry, or (as the single subkey of
// an <array>) the description of the array's elements.
type Key struct {
	// Name is the key as it appears in the plist. "ANY", or "ANY" followed by
	// a description ("ANY app identifier"), stands for every key of a
	// dictionary that no other subkey names; see Wildcard.
	Name string
	// Type is "<string>", "<integer>", "<real>", "<boolean>", "<date>",
	// "<data>", "<array>", "<dictionary>" or "<any>".
	Type string
	// Presence is "required", "optional" or "" (not stated: optional).
	Presence string
	// Format is a regular expression a <string> value must match.
	Format string
	// ValueType names the string format ("uuid", "url", …) where Apple gives
	// one (valuetype, or the deprecated subtype).
	ValueType string
	// RangeList lists the allowed values: string, int64, float64 or bool,
	// following Type.
	RangeList []any
	// Range bounds a number.
	Range *Range
	// Repetition bounds how many elements an array holds; it is set on the
	// element key (the array's single subkey).
	Repetition *Range
	// Default is the value the device assumes when the key is absent.
	Default any
	// CombineType says how a declaration key combines across declarations.
	CombineType string
	// AssetTypes lists the asset types a declaration key may reference.
	AssetTypes []string
	// Subkeys describe a <dictionary>'s entries or, as a single key, an
	// <array>'s elements. An <array> with several subkeys holds elements
	// that each match one of them (Settings items). A scalar with subkeys
	// may only take one of the subkey names as its value (DeviceInformation
	// query names), each with its own SupportedOS.
	Subkeys []Key
	// SupportedOS holds only what this key changes relative to its parents.
	SupportedOS map[string]OSSupport
}

// Required reports whether the key must be present.
func (k *Key) Required() bool { return k.Presence == "required" }

// Wildcard reports whether the key stands for any dictionary key ("ANY",
// "ANY restriction name", …).
func (k *Key) Wildcard() bool { return k.Name == "ANY" || strings.HasPrefix(k.Name, "ANY ") }

// Range is an inclusive numeric bound; a nil end is open.
type Range struct {
	Min, Max *float64
}

// OSSupport is Apple's supportedOS entry for one OS.
type OSSupport struct {
	// Introduced is the first OS version, "n/a" when unsupported, "all" for
	// every version. Deprecated and Removed are versions too.
	Introduced, Deprecated, Removed string
	// AccessRights names the MDM access right a command or query needs
	// ("AllowQueryDeviceInformation", "None", "n/a", "Special Case", …).
	AccessRights string

	Supervised         *bool // only on supervised devices
	RequiresDEP        *bool // only on devices enrolled through ADE
	UserApprovedMDM    *bool // only with user-approved MDM enrollment
	AllowManualInstall *bool // a user may install the profile by hand
	Multiple           *bool // several payloads of this type may be installed
	DeviceChannel      *bool // allowed on the device channel (macOS)
	UserChannel        *bool // allowed on the user channel (macOS)
	AlwaysSkippable    *bool // SkipKeys: the pane is always skipped

	SharedIPad     *ModeRule // iOS Shared iPad rules, including its user channel
	UserEnrollment *ModeRule // rules under User Enrollment

	AllowedEnrollments []string // DDM: "supervised", "device", "user", "local"
	AllowedScopes      []string // DDM: "system", "user"
}

// ModeRule is how a payload or key behaves under Shared iPad or User
// Enrollment.
type ModeRule struct {
	// Mode is "allowed", "required", "forbidden" or "ignored".
	Mode string
	// Behavior describes special behaviour in words.
	Behavior      string
	DeviceChannel *bool
	UserChannel   *bool
	AllowedScopes []string
}

// Provenance says what the embedded data was generated from.
type Provenance struct {
	// Path is the -src directory as given to the generator (relative to
	// mdm/schema).
	Path string
	// SHA256 is the digest of the input files (see internal/schemagen).
	SHA256 string
	// OSVersions is the release README's table: "iOS" → "18.1", …
	OSVersions map[string]string
	// Files counts the input files per kind.
	Files map[string]int
	// Generator names the program that wrote the data.
	Generator string
}

// Source reports what the embedded data was generated from.
func Source() Provenance {
	p := data().source
	p.OSVersions = copyMap(p.OSVersions)
	p.Files = copyMap(p.Files)
	return p
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
