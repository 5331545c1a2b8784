package device

import (
	"context"
	"net/http"
	"slices"

	"github.com/mockmdm/mockmdm/mdm"
)

// GetToken asks the server for a token with the GetToken check-in (iOS 17,
// macOS 14 and later), as a device does before a Managed Apple Account
// sign-in (serviceType com.apple.maid) or to pair a watch
// (com.apple.watch.pairing, with TokenParameters SecurityToken, PhoneUDID
// and WatchUDID), and returns the answer's TokenData. The server must have
// listed com.apple.mdm.token in the profile's ServerCapabilities, as
// Apple's devices require; a refusal is a *ServerError.
func (d *Device) GetToken(ctx context.Context, serviceType string, params map[string]any) ([]byte, error) {
	d.op.Lock()
	defer d.op.Unlock()
	e, err := d.enrolled()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(e.mdm.ServerCapabilities, "com.apple.mdm.token") {
		return nil, &ExchangeError{Step: "GetToken", URL: checkInURL(&e.mdm), Reason: "the enrollment profile's ServerCapabilities do not list com.apple.mdm.token, so a device does not send GetToken"}
	}
	var m mdm.GetToken
	m.MessageType = mdm.MessageGetToken
	m.Enrollment = d.ids(e.userEnrollment)
	m.TokenServiceType = serviceType
	m.TokenParameters = params
	r, url, err := d.sendCheckin(ctx, e, mdm.MessageGetToken, m)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, serverError(mdm.MessageGetToken, http.MethodPut, url, r, "the server refused the token request")
	}
	var answer struct{ TokenData []byte }
	if !decodeXMLPlist(r.body, &answer) || len(answer.TokenData) == 0 {
		return nil, &ExchangeError{Step: "GetToken", URL: url, Reason: "the answer is not a plist with TokenData"}
	}
	return answer.TokenData, nil
}
