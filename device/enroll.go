package device

import (
	"context"
	"fmt"
	"net/http"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
)

// ids are the identifier keys of the device channel: the UDID for a device
// enrollment, the EnrollmentID (and nothing else) for a User Enrollment.
func (d *Device) ids(userEnrollment bool) mdm.Enrollment {
	if userEnrollment {
		return mdm.Enrollment{EnrollmentID: d.hw.EnrollmentID}
	}
	return mdm.Enrollment{UDID: d.hw.UDID}
}

// authenticateMessage is the Authenticate check-in. Which keys it carries
// follows Apple's schema: DeviceName, Model and ModelName only on macOS
// (where they are required), SerialNumber and IMEI never in a User
// Enrollment.
func (d *Device) authenticateMessage(topic string, ue bool) ([]byte, error) {
	var m mdm.Authenticate
	m.MessageType = mdm.MessageAuthenticate
	m.Enrollment = d.ids(ue)
	m.Topic = topic
	m.OSVersion, m.BuildVersion = d.OS()
	m.ProductName = d.model.ProductName
	if d.model.IsMac() {
		m.DeviceName, m.Model, m.ModelName = d.name, d.model.Model, d.model.ModelName
	}
	if !ue {
		m.SerialNumber = d.hw.SerialNumber
		m.IMEI = d.hw.IMEI
	}
	return encodePlist(m)
}

// tokenUpdateMessage is the TokenUpdate check-in with the push token and
// magic from the seed.
func (d *Device) tokenUpdateMessage(topic string, ue bool) ([]byte, error) {
	var m mdm.TokenUpdate
	m.MessageType = mdm.MessageTokenUpdate
	m.Enrollment = d.ids(ue)
	m.Topic = topic
	d.mu.RLock()
	m.Token = d.hw.PushToken
	d.mu.RUnlock()
	m.PushMagic = d.hw.PushMagic
	m.AwaitingConfiguration = d.awaitingConfiguration() // ADE: held in Setup Assistant (ade.go)
	// iOS devices send an UnlockToken (for ClearPasscode) on device
	// enrollments; Apple's schema forbids it under User Enrollment.
	if !ue && !d.model.IsMac() {
		m.UnlockToken = d.unlockToken()
	}
	return encodePlist(m)
}

func (d *Device) checkOutMessage(topic string, ue bool) ([]byte, error) {
	var m mdm.CheckOut
	m.MessageType = mdm.MessageCheckOut
	m.Enrollment = d.ids(ue)
	m.Topic = topic
	return encodePlist(m)
}

func encodePlist(v any) ([]byte, error) {
	b, err := plist.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("device: encoding a message: %w", err)
	}
	return b, nil
}

// enroll runs the check-ins of a new enrollment: Authenticate, then
// TokenUpdate. Any answer but 200 fails the enrollment with a *ServerError.
// While it runs, IdentityTLSCertificate returns id.
func (d *Device) enroll(ctx context.Context, m *profiles.MDMPayload, id *identity, ue bool) error {
	d.mu.Lock()
	d.st.pending = id
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.st.pending = nil
		d.mu.Unlock()
	}()
	auth, err := d.authenticateMessage(m.Topic, ue)
	if err != nil {
		return err
	}
	if err := d.checkin(ctx, m, id, mdm.MessageAuthenticate, auth); err != nil {
		return err
	}
	tu, err := d.tokenUpdateMessage(m.Topic, ue)
	if err != nil {
		return err
	}
	return d.checkin(ctx, m, id, mdm.MessageTokenUpdate, tu)
}

// sendCheckin encodes msg and sends it to the enrollment's check-in URL,
// signed when the profile asks for it, and returns the reply whatever its
// status, with the URL it went to.
func (d *Device) sendCheckin(ctx context.Context, e *enrollment, step string, msg any) (*reply, string, error) {
	body, err := encodePlist(msg)
	if err != nil {
		return nil, "", err
	}
	var signer *identity
	if e.mdm.SignMessage {
		signer = e.identity
	}
	url := checkInURL(&e.mdm)
	r, err := d.sendMDM(ctx, step, http.MethodPut, url, checkinContentType, body, signer)
	return r, url, err
}

// checkin sends one check-in message and requires a 200.
func (d *Device) checkin(ctx context.Context, m *profiles.MDMPayload, id *identity, messageType string, body []byte) error {
	url := checkInURL(m)
	var signer *identity
	if m.SignMessage {
		signer = id
	}
	r, err := d.sendMDM(ctx, messageType, http.MethodPut, url, checkinContentType, body, signer)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return serverError(messageType, http.MethodPut, url, r, "the server refused the check-in")
	}
	return nil
}

// Unenroll removes the MDM profile, as a user does in Settings, and with it
// every profile the server installed. When the profile set
// CheckOutWhenRemoved, the device first sends CheckOut; like a real device
// it does not care how the server answers (the Transcript shows it), so
// the device is unenrolled either way and only ErrNotEnrolled is returned.
func (d *Device) Unenroll(ctx context.Context) error {
	d.op.Lock()
	defer d.op.Unlock()
	return d.unenroll(ctx, "the user removed the MDM profile")
}

// unenroll is Unenroll without the operation lock, for callers that hold it.
func (d *Device) unenroll(ctx context.Context, why string) error {
	e, err := d.enrolled()
	if err != nil {
		return err
	}
	if e.mdm.CheckOutWhenRemoved {
		body, err := d.checkOutMessage(e.mdm.Topic, e.userEnrollment)
		if err == nil {
			err = d.checkin(ctx, &e.mdm, e.identity, mdm.MessageCheckOut, body)
		}
		if err != nil {
			d.log.Warn("CheckOut failed; unenrolling anyway", "err", err)
		}
	}
	d.mu.Lock()
	d.st.dropEnrollment()
	d.dropPushStreamLocked()
	d.mu.Unlock()
	d.log.Info("unenrolled", "profile", e.profileID, "why", why)
	return nil
}

// UnenrollSilently drops the enrollment, and the profiles the server
// installed, without telling the server: a device whose MDM profile
// vanishes without CheckOut (wiped offline, restored from a backup). The
// server still believes it is enrolled.
func (d *Device) UnenrollSilently() {
	d.op.Lock()
	defer d.op.Unlock()
	d.mu.Lock()
	d.st.dropEnrollment()
	d.dropPushStreamLocked()
	d.mu.Unlock()
}
