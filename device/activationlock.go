package device

import (
	"context"
	"crypto/sha256"
	"strconv"
	"time"

	"github.com/micromdm/nanodep/albc"
)

// A supervised device makes an Activation Lock bypass code when it is set
// up, and a new one each time it is erased (and not restored). It hands
// the code to its MDM server when asked (ActivationLockBypassCode), for 15
// days after supervision. ClearActivationLockBypassCode removes it. The MDM
// server keeps the code; it sends its PBKDF2 hash to Apple as the escrow
// key of an Activation Lock request, and it uses the code to unlock the
// device later. The dispatcher already refuses both commands on an
// unsupervised device, in User Enrollment and on Shared iPad, as Apple's
// schema says.
//
// Sources: the schemas mdm/commands/device.activationlock.bypasscode.yaml and
// device.activationlock.clearbypasscode.yaml (the 15 days, the response key);
// Apple's "Activation Lock Bypass Code" and "Creating and using bypass codes"
// pages (when a device makes a new code; a server keeps a code "until it
// receives a different, nonempty code from the device", so an empty code
// is an answer). The code's form — 16 bytes written in a 32-letter alphabet
// with dashes — is NanoDEP's albc package, which this device uses rather
// than a copy of it.

// bypassCodeLifetime is how long after supervision the device still hands
// out its bypass code.
const bypassCodeLifetime = 15 * 24 * time.Hour

func init() {
	moreHandlers["ActivationLockBypassCode"] = handleActivationLockBypassCode
	moreHandlers["ClearActivationLockBypassCode"] = handleClearActivationLockBypassCode
}

// ActivationLockBypassCode is the device's current bypass code in its
// dash-separated form ("" once cleared): what the device answers
// ActivationLockBypassCode with, inside its 15 days.
func (d *Device) ActivationLockBypassCode() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.bypassCodeLocked()
}

// bypassCodeLocked derives the code from the device's seed-fixed UDID and
// how many times it was erased, so the same device has the same code until
// an erase gives it a new one. d.mu held.
func (d *Device) bypassCodeLocked() string {
	if !d.supervised || d.st.bypassCodeCleared {
		return ""
	}
	sum := sha256.Sum256([]byte("mockmdm activation lock bypass code " + d.hw.UDID + " " + strconv.Itoa(d.st.erasures)))
	bc, err := albc.NewFromBytes(sum[:16])
	if err != nil {
		return ""
	}
	code, err := bc.Code()
	if err != nil {
		return ""
	}
	return code
}

// handleActivationLockBypassCode answers the code while it is available:
// within bypassCodeLifetime of the enrollment that supervised the device.
func handleActivationLockBypassCode(_ context.Context, d *Device, _ *Command) Response {
	d.mu.RLock()
	defer d.mu.RUnlock()
	code := d.bypassCodeLocked()
	if e := d.st.enrollment; e != nil && !e.enrolledAt.IsZero() && d.now().Sub(e.enrolledAt) > bypassCodeLifetime {
		code = ""
	}
	return Acknowledged(map[string]any{"ActivationLockBypassCode": code})
}

func handleClearActivationLockBypassCode(_ context.Context, d *Device, _ *Command) Response {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.bypassCodeCleared = true
	return Acknowledged(nil)
}
