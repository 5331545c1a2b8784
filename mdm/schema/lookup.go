package schema

import "strings"

// Lookup finds a schema by kind (a Kind constant) and name (see
// Schema.Name). Other formats are matched case-insensitively and also by file
// name; errors also by file name ("softwareupdate.required"); the profile
// "Configuration" is TopLevel.
func Lookup(kind, name string) (*Schema, bool) {
	db := data()
	if s, ok := db.byKind[kind][name]; ok {
		return s, true
	}
	if kind == KindOther {
		name = strings.ToLower(name)
	}
	s, ok := db.aliases[kind][name]
	return s, ok
}

// Names lists the names of a kind's schemas, sorted.
func Names(kind string) []string {
	return append([]string(nil), data().names[kind]...)
}

// All lists every schema file, sorted by File. A payload type described in
// several files (com.apple.MCX) appears once per file here.
func All() []*Schema {
	return append([]*Schema(nil), data().all...)
}

// Profile finds a profile payload schema by PayloadType, e.g.
// "com.apple.mdm", or "Configuration" for the top level of a profile.
func Profile(payloadType string) (*Schema, bool) { return Lookup(KindProfile, payloadType) }

// ProfileVariants lists every file describing a payload type: one for most,
// several for com.apple.MCX and com.apple.extensiblesso.
func ProfileVariants(payloadType string) []*Schema {
	return append([]*Schema(nil), data().variants[payloadType]...)
}

// CommonPayloadKeys are the keys every profile payload has (PayloadType,
// PayloadIdentifier, PayloadUUID, …). Payload schemas do not repeat them, so
// a validator checks a payload against these plus the payload's own keys.
func CommonPayloadKeys() []Key {
	s, ok := Lookup(KindProfile, "CommonPayloadKeys")
	if !ok {
		return nil
	}
	return s.PayloadKeys
}

// Command finds an MDM command schema by RequestType, e.g.
// "DeviceInformation".
func Command(requestType string) (*Schema, bool) { return Lookup(KindCommand, requestType) }

// Checkin finds a check-in message schema by MessageType, e.g.
// "Authenticate".
func Checkin(messageType string) (*Schema, bool) { return Lookup(KindCheckin, messageType) }

// Error finds a structured error document schema by code
// ("com.apple.softwareupdate.required") or file name.
func Error(code string) (*Schema, bool) { return Lookup(KindError, code) }

// Other finds one of the other data formats by payload type or file name,
// ignoring case: "MachineInfo"/"machineinfo", "SkipKeys", "ManifestURL", …
func Other(name string) (*Schema, bool) { return Lookup(KindOther, name) }

// Declaration finds a declarative-management declaration schema by type,
// e.g. "com.apple.configuration.passcode.settings".
func Declaration(declarationType string) (*Schema, bool) {
	return Lookup(KindDeclaration, declarationType)
}

// StatusItem finds a declarative-management status item schema by type,
// e.g. "device.identifier.udid".
func StatusItem(statusItemType string) (*Schema, bool) { return Lookup(KindStatus, statusItemType) }

// ProfileTypes lists the profile payload types, sorted, without the two
// pseudo types Apple's files use for shared keys ("TopLevel",
// "CommonPayloadKeys").
func ProfileTypes() []string {
	var out []string
	for _, n := range data().names[KindProfile] {
		if n != "TopLevel" && n != "CommonPayloadKeys" {
			out = append(out, n)
		}
	}
	return out
}

// CommandTypes lists the command request types, sorted.
func CommandTypes() []string { return Names(KindCommand) }
