package ade

import (
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Apple's "Activation Lock a Device" (POST /device/activationlock) lets an
// MDM server lock a device the organisation owns to the organisation,
// optionally with an escrow key (the hash of a bypass code the server made)
// and a lost message. The answer is always 200 with a response_status per
// device; only a malformed body, the User-Agent and the session are refused
// with an error status. What mockmdm records is the lock itself, so a test
// can read it back (GET /v1/ade/devices/{serial}/activation-lock) and turn it
// off again as an ABM administrator would (DELETE on the same path).
//
// Sources: the endpoint, its body and its 400 codes from Apple's "Activation
// Lock a Device" page (developer.apple.com/documentation/devicemanagement/
// activation-lock-devices); the request and response objects as NanoDEP
// v0.7.0's godep generates them from Apple's schema; the response_status
// values as Apple's page lists them, quoted by two independent DEP clients
// (petarov's and appiron's). Which devices Apple answers
// DEVICE_NOT_SUPPORTED for is not documented: mockmdm answers it for Apple
// TV, which has no Activation Lock (Apple Platform Deployment, "Activation
// Lock on Apple devices", names iPhone, iPad, Mac, Apple Watch and Apple
// Vision Pro).

// Activation Lock response statuses, as Apple lists them.
const (
	LockSuccess            = "SUCCESS"
	LockNotAccessible      = "NOT_ACCESSIBLE"
	LockOrgNotSupported    = "ORG_NOT_SUPPORTED"
	LockDeviceNotSupported = "DEVICE_NOT_SUPPORTED"
	LockAlreadyLocked      = "DEVICE_ALREADY_LOCKED"
	LockFailed             = "FAILED"
)

// lockFailures are the statuses quirk activation_lock_status may force.
var lockFailures = []string{LockNotAccessible, LockOrgNotSupported, LockDeviceNotSupported, LockAlreadyLocked, LockFailed}

// ActivationLock is the organisation's Activation Lock on a device.
type ActivationLock struct {
	SerialNumber string    `json:"serial_number"`
	Locked       bool      `json:"locked"`
	EscrowKey    string    `json:"escrow_key,omitempty"`
	LostMessage  string    `json:"lost_message,omitempty"`
	LockedAt     time.Time `json:"locked_at,omitzero"`
	// EscrowKeyForm says whether EscrowKey looks like what Apple's bypass
	// code page describes, a hex SHA-256 PBKDF2 hash (64 hex digits), so a
	// tester sees a client that sends the bypass code itself instead.
	EscrowKeyForm string `json:"escrow_key_form,omitempty"`
}

// ActivationLockRequest is the body of POST /device/activationlock.
type ActivationLockRequest struct {
	Device      string  `json:"device"`
	EscrowKey   *string `json:"escrow_key,omitempty"`
	LostMessage *string `json:"lost_message,omitempty"`
}

// ActivationLockStatus is Apple's ActivationLockStatusResponse.
type ActivationLockStatus struct {
	SerialNumber   string `json:"serial_number"`
	ResponseStatus string `json:"response_status"`
}

// maxLockField bounds the escrow key and the lost message: Apple states no
// limit, and a stored lock should not be the size of a request body.
const maxLockField = 4096

// ParseActivationLockRequest decodes and checks a POST
// /device/activationlock body.
func ParseActivationLockRequest(body []byte) (*ActivationLockRequest, error) {
	var req ActivationLockRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Device) == "" {
		return nil, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", `"device" (the serial number to lock) is required`)
	}
	for name, v := range map[string]*string{"escrow_key": req.EscrowKey, "lost_message": req.LostMessage} {
		if v != nil && len(*v) > maxLockField {
			return nil, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "%s is %d bytes; mockmdm keeps at most %d", name, len(*v), maxLockField)
		}
	}
	return &req, nil
}

func (s *Service) handleActivationLock(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	req, err := ParseActivationLockRequest(body)
	if err != nil {
		return nil, err
	}
	return s.LockDevice(ctx, req)
}

// LockDevice is Apple's Activation Lock request: SUCCESS locks an owned,
// unlocked device that supports Activation Lock; every other outcome is a
// status, not an error, as Apple answers.
func (s *Service) LockDevice(ctx context.Context, req *ActivationLockRequest) (*ActivationLockStatus, error) {
	out := &ActivationLockStatus{SerialNumber: req.Device}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	if q := st.Quirks.ActivationLockStatus; q != "" {
		out.ResponseStatus = q
		return out, nil
	}
	rec, err := s.lookup(ctx, req.Device)
	if err != nil {
		return nil, err
	}
	switch {
	case rec == nil:
		out.ResponseStatus = LockNotAccessible
	case rec.DeviceFamily == "AppleTV":
		out.ResponseStatus = LockDeviceNotSupported
	case rec.Lock != nil:
		out.ResponseStatus = LockAlreadyLocked
	default:
		lock := &deviceLock{LockedAt: s.now().UTC()}
		if req.EscrowKey != nil {
			lock.EscrowKey = *req.EscrowKey
		}
		if req.LostMessage != nil {
			lock.LostMessage = *req.LostMessage
		}
		rec.Lock = lock
		if err := s.putJSON(ctx, KindDevice, rec.SerialNumber, rec); err != nil {
			return nil, err
		}
		out.ResponseStatus = LockSuccess
	}
	return out, nil
}

// deviceLock is the lock as a device document keeps it.
type deviceLock struct {
	EscrowKey   string    `json:"escrow_key,omitempty"`
	LostMessage string    `json:"lost_message,omitempty"`
	LockedAt    time.Time `json:"locked_at"`
}

// DeviceActivationLock returns the organisation's lock on an owned device
// (Locked false when there is none); 404 for a serial it does not own.
func (s *Service) DeviceActivationLock(ctx context.Context, serial string) (*ActivationLock, error) {
	rec, err := s.lookup(ctx, serial)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, apiErr(http.StatusNotFound, "NOT_FOUND", "the organisation does not own a device with serial %q (buy it: POST /v1/ade/devices)", truncate(serial, 70))
	}
	out := &ActivationLock{SerialNumber: rec.SerialNumber}
	if l := rec.Lock; l != nil {
		out.Locked, out.EscrowKey, out.LostMessage, out.LockedAt = true, l.EscrowKey, l.LostMessage, l.LockedAt
		out.EscrowKeyForm = escrowKeyForm(l.EscrowKey)
	}
	return out, nil
}

// TurnOffActivationLock removes the organisation's lock from an owned
// device, as an ABM administrator's "Turn off Activation Lock" does.
func (s *Service) TurnOffActivationLock(ctx context.Context, serial string) (*ActivationLock, error) {
	s.mu.Lock()
	rec, err := s.lookup(ctx, serial)
	if err == nil && rec != nil && rec.Lock != nil {
		rec.Lock = nil
		err = s.putJSON(ctx, KindDevice, rec.SerialNumber, rec)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.DeviceActivationLock(ctx, serial)
}

// escrowKeyForm classifies an escrow key: "none", "hash" (64 hex digits:
// a hex SHA-256 PBKDF2 output) or "other".
func escrowKeyForm(k string) string {
	if k == "" {
		return "none"
	}
	if len(k) == 64 {
		if _, err := hex.DecodeString(k); err == nil {
			return "hash"
		}
	}
	return "other"
}

// checkLockQuirk validates quirk activation_lock_status.
func checkLockQuirk(v string) error {
	if v == "" || slices.Contains(lockFailures, v) {
		return nil
	}
	return apiErr(http.StatusBadRequest, "QUIRK_INVALID", "activation_lock_status %q is not one of %s (or empty: answer as the device's state says)", truncate(v, 40), strings.Join(lockFailures, ", "))
}

// adminLock serves GET and DELETE /devices/{serial}/activation-lock: op
// reads or turns off the lock, and the answer is the lock's state.
func adminLock(op func(context.Context, string) (*ActivationLock, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l, err := op(r.Context(), r.PathValue("serial"))
		if err != nil {
			writeJSONErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, l)
	}
}
