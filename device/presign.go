package device

import (
	"context"
	"errors"
	"fmt"
)

// readOnlyQueries are the built-in handlers that only read the device:
// Presign may run them ahead of the command without changing anything.
var readOnlyQueries = map[string]bool{
	"DeviceInformation": true,
	"SecurityInfo":      true,
	"ProfileList":       true,
	"CertificateList":   true,
}

// presigned holds the signatures Presign made ahead, for one identity.
type presigned struct {
	id   *identity
	sigs map[string]string // body → Mdm-Signature
}

// SignedMessage is a message body and its Mdm-Signature.
type SignedMessage struct {
	Body      []byte
	Signature string
}

// MaxPresigned is the most commands one Presign call answers ahead: what
// it prepares is held in memory until the next call.
const MaxPresigned = 63

// Presign signs now what the device's next Connect would send if nothing
// changes in between: its Idle and, for each given command, its answer —
// only for the built-in read-only queries (DeviceInformation, SecurityInfo,
// ProfileList, CertificateList) with no NotNow or behaviour set for them.
// Connect then sends a prepared signature for a byte-identical body under
// the same identity, and signs anything else itself: what reaches the
// server is exactly what live signing would have sent, with a signing time
// a little earlier.
//
// It exists for load generators: signing costs the client an RSA private-key
// operation per message (about a millisecond at 2048 bits), which on a
// client with one core caps the rate at which it can reach a server and so
// leaves the server idle between requests. Each call replaces what the
// previous one prepared. It returns the messages it signed, Idle first.
func (d *Device) Presign(ctx context.Context, cmds ...Command) ([]SignedMessage, error) {
	if len(cmds) > MaxPresigned {
		return nil, fmt.Errorf("device: Presign takes at most %d commands", MaxPresigned)
	}
	d.op.Lock()
	defer d.op.Unlock()
	e, err := d.enrolled()
	if err != nil {
		return nil, err
	}
	if !e.mdm.SignMessage || e.identity == nil {
		return nil, errors.New("device: the enrollment's profile does not ask for signed messages (SignMessage)")
	}
	ids := d.ids(e.userEnrollment)
	bodies := make([][]byte, 0, len(cmds)+1)
	idle, err := idleBody(ids)
	if err != nil {
		return nil, err
	}
	bodies = append(bodies, idle)
	for i := range cmds {
		cmd := cmds[i]
		cmd.UserEnrollment, cmd.AccessRights = e.userEnrollment, e.mdm.AccessRights
		h, ok := d.presignable(cmd.RequestType)
		if !ok {
			continue
		}
		resp := d.answer(ctx, h, &cmd)
		body, err := encodeResult(ids, cmd.UUID, cmd.RequestType, resp)
		if err != nil {
			continue // Connect will meet the same failure and sign what it sends instead
		}
		bodies = append(bodies, body)
	}
	sigs := make(map[string]string, len(bodies))
	out := make([]SignedMessage, 0, len(bodies))
	for _, b := range bodies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sig, err := d.signNow(b, e.identity)
		if err != nil {
			return nil, fmt.Errorf("device: presigning: %w", err)
		}
		sigs[string(b)] = sig
		out = append(out, SignedMessage{Body: b, Signature: sig})
	}
	d.mu.Lock()
	d.presigned = presigned{id: e.identity, sigs: sigs}
	d.mu.Unlock()
	return out, nil
}

// presignable returns the handler Presign may run ahead for requestType:
// a built-in read-only query that NotNow, a behaviour or a lock would not
// change the answer of.
func (d *Device) presignable(requestType string) (CommandHandler, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	h := d.handlers[requestType]
	switch {
	case h == nil, !readOnlyQueries[requestType], d.replaced[requestType]:
		return nil, false
	case d.st.notNow[requestType] > 0 || d.st.notNow[""] > 0:
		return nil, false
	case d.beh.delay[requestType] > 0 || d.beh.delay[""] > 0:
		return nil, false
	}
	if _, fail := d.beh.failWith[requestType]; fail {
		return nil, false
	}
	if _, fail := d.beh.failWith[""]; fail {
		return nil, false
	}
	if d.beh.locked && needsUnlock[requestType] {
		return nil, false
	}
	return h, true
}

// presignedFor is the signature Presign prepared for body under id.
func (d *Device) presignedFor(body []byte, id *identity) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.presigned.id != id || d.presigned.sigs == nil {
		return "", false
	}
	sig, ok := d.presigned.sigs[string(body)]
	return sig, ok
}
