package device

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strings"
	"time"
)

// MDM Lost Mode on a supervised iPhone or iPad: EnableLostMode shows a
// message and/or phone number (and a footnote) on the Lock screen;
// DeviceLocation then answers where the device is; PlayLostModeSound plays
// a sound; DisableLostMode ends it. An erase ends it too. The dispatcher
// already refuses these commands where Apple's schema does (unsupervised,
// User Enrollment, macOS).
//
// Sources: the schemas mdm/commands/device.lostmode.enable.yaml (a
// Message or PhoneNumber must be given), device.lostmode.location.yaml
// (the response keys: Latitude, Longitude, HorizontalAccuracy,
// VerticalAccuracy, Altitude, Speed, Course as reals, Timestamp as an RFC
// 3339 string; "if it is in MDM lost mode"), device.lostmode.playsound.yaml
// and device.lostmode.disable.yaml. What a device answers to DeviceLocation
// or PlayLostModeSound outside Lost Mode is not published; the virtual
// device answers Error with ErrCodeNotInLostMode, a code of mockmdm's own.

// ErrCodeNotInLostMode: DeviceLocation or PlayLostModeSound while the
// device is not in Lost Mode (mockmdm's own code in Apple's domain).
const ErrCodeNotInLostMode = 12072

// lostMode is the Lost Mode the server set.
type lostMode struct {
	Message     string    `json:"message,omitempty"`
	PhoneNumber string    `json:"phone_number,omitempty"`
	Footnote    string    `json:"footnote,omitempty"`
	Since       time.Time `json:"since"`
	SoundPlays  int       `json:"sound_plays,omitempty"`
}

func init() {
	moreHandlers["EnableLostMode"] = handleEnableLostMode
	moreHandlers["DisableLostMode"] = handleDisableLostMode
	moreHandlers["DeviceLocation"] = handleDeviceLocation
	moreHandlers["PlayLostModeSound"] = handlePlayLostModeSound
}

// LostMode reports whether the device is in MDM Lost Mode and what its
// Lock screen shows, and how many times the server made it play the sound.
func (d *Device) LostMode() (on bool, message, phoneNumber, footnote string, soundPlays int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if l := d.st.lostMode; l != nil {
		return true, l.Message, l.PhoneNumber, l.Footnote, l.SoundPlays
	}
	return false, "", "", "", 0
}

func handleEnableLostMode(_ context.Context, d *Device, cmd *Command) Response {
	var fields [3]string
	for i, k := range []string{"Message", "PhoneNumber", "Footnote"} {
		v, present := cmd.Params[k]
		if !present {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return formatError("%s must be a string", k)
		}
		fields[i] = s
	}
	if strings.TrimSpace(fields[0]) == "" && strings.TrimSpace(fields[1]) == "" {
		return formatError("EnableLostMode needs a Message or a PhoneNumber for the Lock screen")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.lostMode = &lostMode{Message: fields[0], PhoneNumber: fields[1], Footnote: fields[2], Since: d.now().UTC()}
	d.st.locked = true // the Lock screen shows the message
	return Acknowledged(nil)
}

func handleDisableLostMode(_ context.Context, d *Device, _ *Command) Response {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.lostMode = nil
	return Acknowledged(nil)
}

func notInLostMode(rt string) Response {
	return Failed(ChainItem(DomainMDM, ErrCodeNotInLostMode, "The device is not in Lost Mode."),
		detail("%s needs the device in MDM Lost Mode: send EnableLostMode first", rt))
}

// handleDeviceLocation answers a fixed place per device (from its UDID, so
// a test sees the same one every run), stamped now.
func handleDeviceLocation(_ context.Context, d *Device, _ *Command) Response {
	d.mu.RLock()
	on := d.st.lostMode != nil
	d.mu.RUnlock()
	if !on {
		return notInLostMode("DeviceLocation")
	}
	sum := sha256.Sum256([]byte("mockmdm location " + d.hw.UDID))
	frac := func(i int) float64 {
		return float64(binary.BigEndian.Uint32(sum[4*i:])) / math.MaxUint32
	}
	round := func(v float64, places float64) float64 { p := math.Pow(10, places); return math.Round(v*p) / p }
	return Acknowledged(map[string]any{
		"Latitude":           round(-60+120*frac(0), 6),
		"Longitude":          round(-180+360*frac(1), 6),
		"HorizontalAccuracy": round(5+60*frac(2), 1),
		"VerticalAccuracy":   round(3+20*frac(3), 1),
		"Altitude":           round(400*frac(4), 1),
		"Speed":              -1.0, // unknown, as the schema allows
		"Course":             -1.0,
		"Timestamp":          d.now().UTC().Format(time.RFC3339),
	})
}

func handlePlayLostModeSound(_ context.Context, d *Device, _ *Command) Response {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.lostMode == nil {
		return notInLostMode("PlayLostModeSound")
	}
	d.st.lostMode.SoundPlays++
	return Acknowledged(nil)
}
