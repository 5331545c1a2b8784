package device

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strings"
)

// Model describes the hardware a virtual device claims to be. The presets
// IPad, IPhone and Mac are real models; a caller may describe another.
type Model struct {
	// Family is "iPhone", "iPad" or "Mac". It decides the identifier
	// formats (a Mac's UDID is an uppercase UUID, an iPhone's or iPad's 40
	// lowercase hex digits) and whether the device is a phone.
	Family string
	// ProductName is the hardware identifier, e.g. "iPad13,18".
	ProductName string
	// ModelName is the marketing family, e.g. "iPad" or "MacBook Air".
	ModelName string
	// Description is the full marketing name, e.g. "iPad (10th generation)".
	Description string
	// Model is the part number without region suffix, e.g. "MPQ03LL"
	// (DeviceInformation Model; on a Mac, the hardware identifier).
	Model string
	// ModelNumber is the part number with region, e.g. "MPQ03LL/A".
	ModelNumber string
	// OSName is what the device calls its OS: "iOS", "iPadOS" or "macOS".
	OSName string
	// OSVersion and BuildVersion are the defaults WithOS overrides.
	OSVersion, BuildVersion string
	// Cellular devices have an IMEI and a modem.
	Cellular bool
	// CapacityGB is the storage size as sold (DeviceCapacity reports what
	// the OS sees, a little less).
	CapacityGB float64
}

// Presets of real models, with the OS releases of the schema snapshot
// (iOS/iPadOS 18.1 build 22B83, macOS 15.1 build 24B83).
var (
	IPad = Model{
		Family: "iPad", ProductName: "iPad13,18", ModelName: "iPad", Description: "iPad (10th generation)",
		Model: "MPQ03LL", ModelNumber: "MPQ03LL/A", OSName: "iPadOS", OSVersion: "18.1", BuildVersion: "22B83",
		CapacityGB: 64,
	}
	IPhone = Model{
		Family: "iPhone", ProductName: "iPhone15,2", ModelName: "iPhone", Description: "iPhone 14 Pro",
		Model: "MQ0G3LL", ModelNumber: "MQ0G3LL/A", OSName: "iOS", OSVersion: "18.1", BuildVersion: "22B83",
		Cellular: true, CapacityGB: 128,
	}
	Mac = Model{
		Family: "Mac", ProductName: "Mac14,2", ModelName: "MacBook Air", Description: "MacBook Air (M2, 2022)",
		Model: "Mac14,2", ModelNumber: "Z15S000CT", OSName: "macOS", OSVersion: "15.1", BuildVersion: "24B83",
		CapacityGB: 256,
	}
)

// IsMac reports whether the model runs macOS.
func (m Model) IsMac() bool { return m.Family == "Mac" }

// schemaOS is the OS name Apple's schemas use for this model: iPadOS is
// described as iOS.
func (m Model) schemaOS() string {
	if m.IsMac() {
		return "macOS"
	}
	return "iOS"
}

func (m Model) validate() error {
	switch m.Family {
	case "iPhone", "iPad", "Mac":
	default:
		return fmt.Errorf("device: Model.Family %q must be iPhone, iPad or Mac", m.Family)
	}
	if m.ProductName == "" || m.ModelName == "" {
		return fmt.Errorf("device: Model needs ProductName and ModelName")
	}
	return nil
}

// Hardware is what a device is born with: identifiers that never change,
// not even when it is erased. All of it derives from the seed.
type Hardware struct {
	// UDID: 40 lowercase hex digits (iPhone, iPad) or an uppercase UUID (Mac).
	UDID string
	// SerialNumber: 12 uppercase letters and digits.
	SerialNumber string
	// EnrollmentID identifies a User Enrollment instead of the UDID: 40
	// lowercase hex digits.
	EnrollmentID string
	// IMEI is set on cellular models, formatted as iOS reports it
	// ("35 123456 123456 7", with a valid Luhn check digit).
	IMEI string
	// WiFiMAC, BluetoothMAC and (Mac only) EthernetMAC are lowercase,
	// colon-separated, locally administered addresses.
	WiFiMAC, BluetoothMAC, EthernetMAC string
	// PushToken is the 32-byte APNs token sent in TokenUpdate.
	PushToken []byte
	// PushMagic is the uppercase UUID string sent in TokenUpdate; a push
	// for this device carries it.
	PushMagic string
	// AvailableFraction is how full the storage is not (0.3–0.8), and
	// BatteryLevel the charge (0.2–1.0), both fixed by the seed.
	AvailableFraction, BatteryLevel float64
}

// deriveHardware computes everything a device is born with from seed. The
// order of draws is part of the format: changing it changes every device.
func deriveHardware(seed int64, m Model) Hardware {
	r := mrand.New(mrand.NewPCG(uint64(seed), 0x6d6f636b6d646d)) // "mockmdm"
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := 0; i < n; i += 8 {
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], r.Uint64())
			copy(b[i:], w[:])
		}
		return b
	}
	var h Hardware
	udid := randBytes(20)
	if m.IsMac() {
		h.UDID = strings.ToUpper(formatUUID(udid[:16]))
	} else {
		h.UDID = hex.EncodeToString(udid)
	}
	const serialAlphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ" // no I or O, as on Apple labels
	var sn [12]byte
	for i := range sn {
		sn[i] = serialAlphabet[r.IntN(len(serialAlphabet))]
	}
	h.SerialNumber = string(sn[:])
	h.EnrollmentID = hex.EncodeToString(randBytes(20))
	imei := make([]byte, 14)
	imei[0], imei[1] = '3', '5' // a GSMA reporting body prefix, as on Apple phones
	for i := 2; i < 14; i++ {
		imei[i] = byte('0' + r.IntN(10))
	}
	if m.Cellular {
		full := string(imei) + string(byte('0'+luhnCheck(string(imei))))
		h.IMEI = full[:2] + " " + full[2:8] + " " + full[8:14] + " " + full[14:]
	}
	h.WiFiMAC = formatMAC(randBytes(6))
	h.BluetoothMAC = formatMAC(randBytes(6))
	eth := formatMAC(randBytes(6))
	if m.IsMac() {
		h.EthernetMAC = eth
	}
	h.PushToken = randBytes(32)
	h.PushMagic = strings.ToUpper(formatUUID(randBytes(16)))
	h.AvailableFraction = 0.3 + float64(r.IntN(51))/100
	h.BatteryLevel = 0.2 + float64(r.IntN(81))/100
	return h
}

// formatUUID formats 16 bytes as a version-4 UUID string (lowercase).
func formatUUID(b []byte) string {
	u := make([]byte, 16)
	copy(u, b)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	s := hex.EncodeToString(u)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// formatMAC formats 6 bytes as a unicast, locally administered MAC address,
// so that a virtual device never claims a real vendor's address.
func formatMAC(b []byte) string {
	b[0] = b[0]&0xfc | 0x02
	parts := make([]string, 6)
	for i := range parts {
		parts[i] = hex.EncodeToString(b[i : i+1])
	}
	return strings.Join(parts, ":")
}

// luhnCheck returns the Luhn check digit for the decimal string s.
func luhnCheck(s string) int {
	sum := 0
	double := true // the rightmost payload digit is doubled
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10 - sum%10) % 10
}

// randomSeed draws a seed for a device created without WithSeed.
func randomSeed() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("device: no randomness: " + err.Error())
	}
	return int64(binary.LittleEndian.Uint64(b[:]) >> 1)
}
