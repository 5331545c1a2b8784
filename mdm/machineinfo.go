package mdm

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/micromdm/plist"
	"go.mozilla.org/pkcs7"

	"github.com/mockmdm/mockmdm/internal/plistguard"
)

// MachineInfo is what a device sends when it fetches its enrollment profile
// during Automated Device Enrollment (Apple: other/machineinfo.yaml): the
// body of the POST to the DEP profile's url, or the x-apple-aspen-deviceinfo
// header on the first load of its configuration_web_url. It arrives as a CMS
// SignedData with the plist attached, signed by the device's Apple-issued
// identity; ParseSignedMachineInfo decodes it and keeps both forms, so a
// verifier (certs.AppleDeviceVerifier) can check the signature afterwards.
type MachineInfo struct {
	UDID                        string `plist:"UDID"`
	Serial                      string `plist:"SERIAL"`
	Product                     string `plist:"PRODUCT"`
	Version                     string `plist:"VERSION"`
	OSVersion                   string `plist:"OS_VERSION,omitempty"`
	SupplementalBuildVersion    string `plist:"SUPPLEMENTAL_BUILD_VERSION,omitempty"`
	SupplementalOSVersionExtra  string `plist:"SUPPLEMENTAL_OS_VERSION_EXTRA,omitempty"`
	IMEI                        string `plist:"IMEI,omitempty"`
	MEID                        string `plist:"MEID,omitempty"`
	Language                    string `plist:"LANGUAGE,omitempty"`
	MDMCanRequestSoftwareUpdate bool   `plist:"MDM_CAN_REQUEST_SOFTWARE_UPDATE,omitempty"`
	PairingToken                []byte `plist:"PAIRING_TOKEN,omitempty"`
	SoftwareUpdateDeviceID      string `plist:"SOFTWARE_UPDATE_DEVICE_ID,omitempty"`
	// DeviceName is not in Apple's MachineInfo schema but is among the
	// device attributes of the legacy Profile Service request (PROTOCOL.md
	// §7.3), which shares the shape; kept when a client sends it.
	DeviceName string `plist:"DEVICE_NAME,omitempty"`

	// Raw is the plist exactly as received (the CMS content).
	Raw []byte `plist:"-"`
	// Signed is the CMS SignedData it came in (nil for a bare plist).
	Signed []byte `plist:"-"`
}

// MachineInfoHeader is the header a device adds to the first request of a
// configuration_web_url web view: base64 of the CMS-signed MachineInfo.
const MachineInfoHeader = "x-apple-aspen-deviceinfo"

// MaxMachineInfoSize bounds a MachineInfo body: a real one is a few
// kilobytes with the device's certificate chain; anything near this is not
// a MachineInfo.
const MaxMachineInfoSize = 64 << 10

// ErrMachineInfoNotSigned is matched (errors.Is) by the ParseError for a
// body that is not a CMS SignedData (for instance a bare plist).
var ErrMachineInfoNotSigned = errors.New("MachineInfo is not a CMS SignedData")

// ParseMachineInfo decodes a MachineInfo plist and checks its required keys
// (UDID, SERIAL, PRODUCT, VERSION). OS_VERSION is required by Apple from
// iOS 17 / macOS 14 only, so it is not required here.
func ParseMachineInfo(raw []byte) (*MachineInfo, error) { return parseMachineInfo(raw, false) }

// ParseUserEnrollmentMachineInfo decodes the MachineInfo of a User
// Enrollment (account-driven): UDID and SERIAL are forbidden there
// (apple-schema other/machineinfo.yaml, userenrollment mode forbidden), so
// it requires PRODUCT and VERSION and refuses device identifiers.
func ParseUserEnrollmentMachineInfo(raw []byte) (*MachineInfo, error) {
	return parseMachineInfo(raw, true)
}

func parseMachineInfo(raw []byte, userEnrollment bool) (*MachineInfo, error) {
	if len(raw) == 0 {
		return nil, parseErrorf("", "MachineInfo is empty")
	}
	if len(raw) > MaxMachineInfoSize {
		return nil, parseErrorf("", "MachineInfo is %d bytes; at most %d are accepted", len(raw), MaxMachineInfoSize)
	}
	if err := plistguard.Check(raw); err != nil {
		return nil, &ParseError{Reason: "MachineInfo is not a usable plist", Err: err}
	}
	var m MachineInfo
	if err := plist.Unmarshal(raw, &m); err != nil {
		return nil, &ParseError{Reason: "MachineInfo is not a plist dictionary with Apple's MachineInfo keys", Err: err}
	}
	required := []struct{ key, val string }{{"UDID", m.UDID}, {"SERIAL", m.Serial}, {"PRODUCT", m.Product}, {"VERSION", m.Version}}
	if userEnrollment {
		for _, f := range required[:2] {
			if f.val != "" {
				return nil, parseErrorf(f.key, "a User Enrollment's MachineInfo must not carry %s (forbidden for User Enrollment in Apple's MachineInfo schema)", f.key)
			}
		}
		required = required[2:]
	}
	for _, f := range required {
		if strings.TrimSpace(f.val) == "" {
			return nil, parseErrorf(f.key, "required MachineInfo key is missing or empty")
		}
	}
	m.Raw = raw
	return &m, nil
}

// ParseSignedMachineInfo decodes the DER CMS SignedData a device posts and
// the MachineInfo plist attached to it. It does not verify the signature:
// that is the verifier's job, whose mode may be off.
func ParseSignedMachineInfo(der []byte) (*MachineInfo, error) { return parseSigned(der, false) }

// ParseSignedUserEnrollmentMachineInfo is ParseSignedMachineInfo for a
// User Enrollment (no UDID or SERIAL).
func ParseSignedUserEnrollmentMachineInfo(der []byte) (*MachineInfo, error) {
	return parseSigned(der, true)
}

func parseSigned(der []byte, userEnrollment bool) (*MachineInfo, error) {
	if len(der) == 0 {
		return nil, &ParseError{Reason: "the body is empty: POST the CMS-signed MachineInfo (application/pkcs7-signature)", Err: ErrMachineInfoNotSigned}
	}
	if len(der) > MaxMachineInfoSize {
		return nil, parseErrorf("", "signed MachineInfo is %d bytes; at most %d are accepted", len(der), MaxMachineInfoSize)
	}
	p7, err := parsePKCS7(der)
	if err != nil {
		return nil, &ParseError{Reason: "the body is not a DER CMS SignedData (a device signs its MachineInfo)", Err: errors.Join(ErrMachineInfoNotSigned, err)}
	}
	if len(p7.Content) == 0 {
		return nil, &ParseError{Reason: "the CMS SignedData carries no content: MachineInfo must be attached, not detached", Err: ErrMachineInfoNotSigned}
	}
	m, err := parseMachineInfo(p7.Content, userEnrollment)
	if err != nil {
		return nil, err
	}
	m.Signed = der
	return m, nil
}

// ParseMachineInfoHeader decodes the x-apple-aspen-deviceinfo header value
// (standard base64, padded or not, of the signed MachineInfo).
func ParseMachineInfoHeader(value string) (*MachineInfo, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return nil, parseErrorf(MachineInfoHeader, "header is empty")
	}
	if len(v) > base64.StdEncoding.EncodedLen(MaxMachineInfoSize) {
		return nil, parseErrorf(MachineInfoHeader, "header is %d characters; at most %d are accepted", len(v), base64.StdEncoding.EncodedLen(MaxMachineInfoSize))
	}
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		der, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
	}
	if err != nil {
		return nil, &ParseError{Field: MachineInfoHeader, Reason: "header is not base64 of a CMS-signed MachineInfo", Err: err}
	}
	return ParseSignedMachineInfo(der)
}

// parsePKCS7 is pkcs7.Parse with a recover: the ASN.1 walker of an
// external library must not take a request down on hostile bytes.
func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, errors.New("malformed ASN.1")
		}
	}()
	return pkcs7.Parse(der)
}
