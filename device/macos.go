package device

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Mac security commands: SetRecoveryLock and VerifyRecoveryLock (Apple
// silicon), EnableRemoteDesktop and DisableRemoteDesktop, and the Intel-only
// firmware password commands, which a virtual Mac — an Apple silicon Mac,
// as DeviceInformation's IsAppleSilicon says — refuses. SecurityInfo's
// IsRecoveryLockEnabled and RemoteDesktopEnabled follow the state. The
// dispatcher already applies each command's schema rules (macOS only,
// device channel, supervision for Remote Desktop, the access right).
//
// Sources: the schemas mdm/commands/passcode.recovery.set.yaml
// (NewPassword required, an empty one clears; CurrentPassword required when
// a password is set; "Apple Silicon devices only"),
// passcode.recovery.verify.yaml (Password; PasswordVerified),
// remotedesktop.enable.yaml and .disable.yaml, passcode.firmware.set.yaml
// and .verify.yaml ("not available on Apple silicon"), and
// information.security.yaml (IsRecoveryLockEnabled, RemoteDesktopEnabled).

// Error codes of the Mac security commands.
const (
	// SetRecoveryLock while a password is set: CurrentPassword missing
	// (DomainMDMClient) or not that password (DomainRecoveryLockout) —
	// what macOS answers with, on public record (commands.go).
	ErrCodeRecoveryLockNoCurrent = 70
	ErrCodeRecoveryLockMismatch  = 8
	// SetFirmwarePassword, VerifyFirmwarePassword on an Apple silicon Mac:
	// what a Mac sends is not published, so this code is mockmdm's own.
	ErrCodeNotOnAppleSilicon = 12079
)

func init() {
	moreHandlers["SetRecoveryLock"] = handleSetRecoveryLock
	moreHandlers["VerifyRecoveryLock"] = handleVerifyRecoveryLock
	moreHandlers["EnableRemoteDesktop"] = remoteDesktop(true)
	moreHandlers["DisableRemoteDesktop"] = remoteDesktop(false)
	moreHandlers["SetFirmwarePassword"] = handleFirmwarePassword
	moreHandlers["VerifyFirmwarePassword"] = handleFirmwarePassword
}

// passwordHash is what the device keeps of a Recovery Lock password (its
// saved file never holds the password itself).
func passwordHash(udid, password string) string {
	sum := sha256.Sum256([]byte("mockmdm recovery lock " + udid + "\x00" + password))
	return hex.EncodeToString(sum[:])
}

// RecoveryLock reports whether a Recovery Lock password is set.
func (d *Device) RecoveryLock() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.recoveryLock != ""
}

// RemoteDesktop reports whether Remote Desktop is on.
func (d *Device) RemoteDesktop() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.remoteDesktop
}

func handleSetRecoveryLock(_ context.Context, d *Device, cmd *Command) Response {
	newPassword, ok := cmd.Params["NewPassword"].(string)
	if !ok {
		return formatError("NewPassword must be a string (an empty one clears the Recovery Lock password)")
	}
	current, err := optString(cmd.Params, "CurrentPassword")
	if err != nil {
		return formatError("%v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch set := d.st.recoveryLock; {
	case set == "":
	case current == "":
		return Failed(ChainItem(DomainMDMClient, ErrCodeRecoveryLockNoCurrent, "Existing recovery lock password not provided"),
			detail("a Recovery Lock password is set, so SetRecoveryLock needs it as CurrentPassword"))
	case subtle.ConstantTimeCompare([]byte(set), []byte(passwordHash(d.hw.UDID, current))) != 1:
		return Failed(ChainItem(DomainRecoveryLockout, ErrCodeRecoveryLockMismatch, "The provided recovery password failed to validate."),
			detail("a Recovery Lock password is set and CurrentPassword does not match it"))
	}
	d.st.recoveryLock = ""
	if newPassword != "" {
		d.st.recoveryLock = passwordHash(d.hw.UDID, newPassword)
	}
	return Acknowledged(nil)
}

func handleVerifyRecoveryLock(_ context.Context, d *Device, cmd *Command) Response {
	password, ok := cmd.Params["Password"].(string)
	if !ok {
		return formatError("Password must be a string")
	}
	d.mu.RLock()
	set := d.st.recoveryLock
	d.mu.RUnlock()
	verified := set != "" && subtle.ConstantTimeCompare([]byte(set), []byte(passwordHash(d.hw.UDID, password))) == 1
	return Acknowledged(map[string]any{"PasswordVerified": verified})
}

func remoteDesktop(on bool) CommandHandler {
	return func(_ context.Context, d *Device, _ *Command) Response {
		d.mu.Lock()
		d.st.remoteDesktop = on
		d.mu.Unlock()
		return Acknowledged(nil)
	}
}

func handleFirmwarePassword(_ context.Context, _ *Device, cmd *Command) Response {
	return Failed(ChainItem(DomainMDM, ErrCodeNotOnAppleSilicon, "The command is not supported on this Mac."),
		detail("%s is not available on Apple silicon, and a virtual Mac is an Apple silicon Mac", cmd.RequestType))
}
