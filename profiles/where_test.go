package profiles

import (
	"strings"
	"testing"
)

// TestNotAPlistSaysWhere: a profile the plist decoder refuses is refused
// with the line and key path where it goes wrong.
func TestNotAPlistSaysWhere(t *testing.T) {
	head := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n<key>PayloadContent</key>\n<array>\n<dict>\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown element", head + "<key>PayloadType</key>\n<strng>com.apple.mdm</strng>\n</dict></array></dict></plist>",
			"line 8, at PayloadContent[0].PayloadType: <strng> is not a property-list element"},
		{"bad integer", head + "<key>PayloadType</key><string>x</string>\n<key>PayloadVersion</key>\n<integer>one</integer>\n</dict></array></dict></plist>",
			`line 9, at PayloadContent[0].PayloadVersion: <integer> "one" is not a whole number`},
		{"second payload", head + "</dict>\n<dict>\n<key>PayloadVersion</key>\n<real>x</real>\n</dict></array></dict></plist>",
			`line 10, at PayloadContent[1].PayloadVersion: <real> "x" is not a number`},
		{"bad nesting", head + "<key>PayloadType</key>\n<string>x</dict>\n</array></dict></plist>",
			"line 8, at PayloadContent[0].PayloadType: XML syntax error: element <string> closed by </dict>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || statusOf(err) != 400 {
				t.Fatalf("got %v\nwant it to say %q", err, tc.want)
			}
		})
	}
}
