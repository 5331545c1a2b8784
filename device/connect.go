package device

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/mdm"
)

// HandledCommand is one command the device answered in a session.
type HandledCommand struct {
	CommandUUID string
	RequestType string
	// Status is what the device answered.
	Status     string
	ErrorChain []mdm.ErrorChainItem
	// Result is the exact result body sent.
	Result []byte
}

// ConnectResult is what a connect session did.
type ConnectResult struct {
	// Commands are the commands answered, in order.
	Commands []HandledCommand
	// Reoffered lists CommandUUIDs the server sent again in this session
	// after the device had answered them NotNow. Apple's servers must not
	// (it makes a busy device loop), so this is a finding about the server.
	Reoffered []string
	// Erased is set when an EraseDevice command wiped the device.
	Erased bool
	// Unenrolled is set when the server made the device drop its enrollment
	// (HTTP 401, 403 com.apple.unrecognized.device, or RemoveProfile of the
	// enrollment profile).
	Unenrolled bool
}

// Connect runs one command session, as a device does when a push wakes it:
// it sends Status Idle to ServerURL, then answers each command the server
// returns, until the server answers with an empty body. Every request is
// signed with Mdm-Signature when the profile set SignMessage.
//
// The server decides what comes next: the device never resends a command
// it answered NotNow (it answers the next one it is given). A 401 means the
// server unenrolled the device, which then drops its enrollment and
// returns a *ServerError matching ErrUnenrolled; the result is returned
// with the commands handled so far whatever the error.
func (d *Device) Connect(ctx context.Context) (*ConnectResult, error) {
	return d.connect(ctx, "")
}

// connect is Connect on the channel of user (a Shared iPad user; "" is the
// device channel).
func (d *Device) connect(ctx context.Context, user string) (*ConnectResult, error) {
	d.op.Lock()
	defer d.op.Unlock()
	d.mu.RLock()
	e := d.st.enrollment
	d.mu.RUnlock()
	res := &ConnectResult{}
	if e == nil {
		return res, ErrNotEnrolled
	}
	const step = "connect"
	url := e.mdm.ServerURL
	ids := d.ids(e.userEnrollment)
	if user != "" {
		ids = d.userIDs(user)
	}
	var signer *identity
	if e.mdm.SignMessage {
		signer = e.identity
	}
	body, err := idleBody(ids)
	if err != nil {
		return res, err
	}
	notNow := map[string]bool{}
	var after func()
	end := false
	d.mu.RLock()
	erasures := d.st.erasures
	d.mu.RUnlock()
	for n := 0; ; n++ {
		if n > maxCommandsPerSession {
			return res, &ExchangeError{Step: step, URL: url, Reason: fmt.Sprintf("the server sent more than %d commands in one session without ever answering with an empty body", maxCommandsPerSession)}
		}
		r, err := d.sendMDM(ctx, step, http.MethodPut, url, connectContentType, body, signer)
		if after != nil {
			after()
			after = nil
		}
		if end {
			// The result that ends the session was sent (or tried); what
			// the server answers no longer matters.
			d.mu.RLock()
			res.Erased = d.st.erasures > erasures
			res.Unenrolled = !res.Erased && d.st.enrollment == nil
			d.mu.RUnlock()
			return res, err
		}
		if err != nil {
			return res, err
		}
		if user != "" && (r.status == http.StatusUnauthorized || unrecognizedDevice(r)) {
			return res, userChannelRefused(step, url, r)
		}
		if r.status == http.StatusUnauthorized || unrecognizedDevice(r) {
			d.mu.Lock()
			d.st.dropEnrollment()
			d.dropPushStreamLocked()
			d.mu.Unlock()
			res.Unenrolled = true
			d.log.Info("the server unenrolled the device", "status", r.status)
			se := serverError(step, http.MethodPut, url, r, "the device removed its MDM profile, as Apple devices do on this answer")
			se.Unenrolled = true
			return res, se
		}
		if r.status != http.StatusOK {
			return res, serverError(step, http.MethodPut, url, r, "")
		}
		if len(bytes.TrimSpace(r.body)) == 0 {
			return res, nil
		}
		cmd, uuid, err := parseCommand(r.body)
		var resp Response
		var requestType string
		switch {
		case err == nil:
			requestType = cmd.RequestType
			if notNow[cmd.UUID] {
				res.Reoffered = append(res.Reoffered, cmd.UUID)
			}
			cmd.UserEnrollment, cmd.AccessRights, cmd.User = e.userEnrollment, e.mdm.AccessRights, user
			resp = d.dispatch(ctx, cmd)
		case uuid != "":
			resp = formatError("the command does not decode: %v", err)
		default:
			return res, &ExchangeError{Step: step, URL: url, Reason: "the server answered with neither an empty body nor a command the device can answer", Err: err}
		}
		if resp.Status == mdm.StatusNotNow {
			notNow[uuid] = true
		}
		body, err = encodeResult(ids, uuid, requestType, resp)
		if err != nil {
			d.log.Error("encoding a result", "err", err)
			resp = Failed(commandFailed(), detail("%v", err))
			if body, err = encodeResult(ids, uuid, requestType, resp); err != nil {
				return res, err
			}
		}
		res.Commands = append(res.Commands, HandledCommand{
			CommandUUID: uuid, RequestType: requestType, Status: resp.Status,
			ErrorChain: slices.Clone(resp.ErrorChain), Result: body,
		})
		after, end = resp.AfterSend, resp.EndSession
	}
}

// unrecognizedDevice reports a 403 whose structured error (iOS 17+) is
// com.apple.unrecognized.device, Apple's replacement for a bare 401.
func unrecognizedDevice(r *reply) bool {
	if r.status != http.StatusForbidden {
		return false
	}
	var doc struct {
		Code string `json:"code" plist:"code"`
	}
	if json.Unmarshal(r.body, &doc) != nil && !decodeXMLPlist(r.body, &doc) {
		return false
	}
	return doc.Code == "com.apple.unrecognized.device"
}

// decodeXMLPlist decodes an XML property list from a server into v, within
// the nesting bounds of commands; binary plists (whose decoder follows
// object references a hostile server can make cyclic) are refused.
func decodeXMLPlist(b []byte, v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if bytes.HasPrefix(b, []byte("bplist")) || checkXMLNesting(b) != nil {
		return false
	}
	return plist.Unmarshal(b, v) == nil
}

// idleBody is the Idle a connect starts with.
func idleBody(ids mdm.Enrollment) ([]byte, error) {
	return encodePlist(mdm.CommandResults{Enrollment: ids, Status: mdm.StatusIdle})
}
