package schema

import (
	"fmt"
	"testing"

	"github.com/micromdm/plist"
)

// enrollmentProfile is an enrollment profile as a server would serve it: a
// SCEP payload and an MDM payload, with two mistakes in the SCEP payload.
const enrollmentProfile = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadType</key><string>Configuration</string>
	<key>PayloadVersion</key><integer>1</integer>
	<key>PayloadIdentifier</key><string>com.example.enroll</string>
	<key>PayloadUUID</key><string>0C6C8F2A-4E7B-4F58-9A2D-3B1E5C7D9F01</string>
	<key>PayloadDisplayName</key><string>Enrollment</string>
	<key>PayloadRemovalDisallowed</key><false/>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadType</key><string>com.apple.security.scep</string>
			<key>PayloadVersion</key><integer>1</integer>
			<key>PayloadIdentifier</key><string>com.example.enroll.scep</string>
			<key>PayloadUUID</key><string>7A9E5C1B-2D3F-4E5A-8B6C-9D0E1F2A3B4C</string>
			<key>PayloadContent</key>
			<dict>
				<key>URL</key><string>https://mdm.example.com/scep</string>
				<key>Challenge</key><string>secret</string>
				<key>Keysize</key><string>2048</string>
				<key>Key Type</key><string>RSA</string>
				<key>Key Usage</key><integer>5</integer>
				<key>Retries</key><integer>-1</integer>
				<key>Subject</key>
				<array><array><array><string>CN</string><string>device</string></array></array></array>
			</dict>
		</dict>
		<dict>
			<key>PayloadType</key><string>com.apple.mdm</string>
			<key>PayloadVersion</key><integer>1</integer>
			<key>PayloadIdentifier</key><string>com.example.enroll.mdm</string>
			<key>PayloadUUID</key><string>2F1A5B4E-9C1D-4A53-9B8E-1C2D3E4F5A6B</string>
			<key>IdentityCertificateUUID</key><string>7A9E5C1B-2D3F-4E5A-8B6C-9D0E1F2A3B4C</string>
			<key>Topic</key><string>com.apple.mgmt.External.5b1e5d1f</string>
			<key>ServerURL</key><string>https://mdm.example.com/mdm</string>
			<key>AccessRights</key><integer>8191</integer>
			<key>SignMessage</key><true/>
			<key>ServerCapabilities</key>
			<array><string>com.apple.mdm.per-user-connections</string></array>
		</dict>
	</array>
</dict>
</plist>`

// TestValidateDecodedPlist runs values as github.com/micromdm/plist decodes
// them (uint64 and int64 integers, nested []any / map[string]any) through
// the validator, the way the profile linter will.
func TestValidateDecodedPlist(t *testing.T) {
	var prof map[string]any
	if err := plist.Unmarshal([]byte(enrollmentProfile), &prof); err != nil {
		t.Fatal(err)
	}
	top, _ := Profile("Configuration")
	problems := ValidateDict(top.PayloadKeys, prof, "")
	content, _ := prof["PayloadContent"].([]any)
	if len(content) != 2 {
		t.Fatalf("PayloadContent has %d entries", len(content))
	}
	for i, p := range content {
		payload := p.(map[string]any)
		typ, _ := payload["PayloadType"].(string)
		s, ok := Profile(typ)
		if !ok {
			t.Fatalf("no schema for %s", typ)
		}
		keys := append(append([]Key(nil), CommonPayloadKeys()...), s.PayloadKeys...)
		problems = append(problems, ValidateDict(keys, payload, fmt.Sprintf("PayloadContent[%d]", i))...)
	}
	if _, ok := content[1].(map[string]any)["AccessRights"].(uint64); !ok {
		t.Errorf("AccessRights decoded as %T; the type mapping this package assumes is off", content[1].(map[string]any)["AccessRights"])
	}
	check(t, problems, []want{
		{"PayloadContent[0].PayloadContent.Keysize", RuleWrongType},
	})
	// Retries -1 decodes as int64 and is a fine <integer>; the profile has
	// no range for it. The report names the exact place.
	if len(problems) == 1 && problems[0].String() != `PayloadContent[0].PayloadContent.Keysize: expected <integer>, got <string> "2048" (wrong-type)` {
		t.Errorf("message: %s", problems[0])
	}
}
