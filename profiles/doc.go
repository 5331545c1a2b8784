// Package profiles builds, signs and decodes Apple configuration profiles
// (.mobileconfig files): the device-enrollment profile a device installs to
// enroll, its CMS signature, and a decoder that an inspector and the virtual
// devices share.
//
// Every key and value type written here follows Apple's profile schemas
// (shared/apple-schema/mdm/profiles: TopLevel, CommonPayloadKeys,
// com.apple.mdm, com.apple.security.scep, com.apple.security.root); a test
// reads those files and checks each profile built against them.
//
// Parse reads bytes that come from outside (an upload to the inspector, a
// profile a virtual device downloads), so it bounds its input, refuses
// property lists whose shape would make the plist decoder allocate without
// limit or recurse forever, and answers every malformed input with an error
// whose HTTPStatus is a 4xx and whose message says what is wrong.
package profiles

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

// ContentType is what a .mobileconfig is served as. The ADE web view and
// Safari on iOS hand a download to the profile installer only for this type.
const ContentType = "application/x-apple-aspen-config"

// MaxProfileSize is the largest input Parse accepts (4 MiB). Real enrollment
// profiles are a few KiB; a profile that embeds many certificates stays well
// under this.
const MaxProfileSize = 4 << 20

// badRequest is an error a client caused, answered with 400.
func badRequest(format string, args ...any) error {
	return httperr.New(http.StatusBadRequest, format, args...)
}

// problems collects every rule an input breaks, so that one error names all
// of them instead of making the caller fix them one round trip at a time.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// err is nil when nothing was added, else a 400 that lists every problem.
func (p problems) err(what string) error {
	if len(p) == 0 {
		return nil
	}
	return badRequest("%s: %s", what, strings.Join(p, "; "))
}
