package mdm_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
)

const machineInfoXML = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>UDID</key><string>U1</string><key>SERIAL</key><string>S1</string>
<key>PRODUCT</key><string>iPhone15,2</string><key>VERSION</key><string>22A3354</string><key>IMEI</key><string>35 000000 000000 1</string>
<key>DEVICE_NAME</key><string>Alex's iPhone</string><key>PAIRING_TOKEN</key><data>AAEC</data></dict></plist>`

func signedMachineInfo(t testing.TB, plist string) []byte {
	t.Helper()
	ca, err := certs.NewAppleDeviceCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.IssueDevice("S1", "U1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := certs.SignMachineInfo([]byte(plist), c, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseMachineInfo(t *testing.T) {
	der := signedMachineInfo(t, machineInfoXML)
	m, err := mdm.ParseMachineInfoHeader(base64.StdEncoding.EncodeToString(der))
	if err != nil {
		t.Fatal(err)
	}
	if m.UDID != "U1" || m.Serial != "S1" || m.Product != "iPhone15,2" || m.IMEI == "" || m.DeviceName != "Alex's iPhone" || len(m.PairingToken) != 3 {
		t.Fatalf("decoded %+v", m)
	}
	if string(m.Raw) != machineInfoXML || len(m.Signed) != len(der) {
		t.Fatal("Raw or Signed not kept")
	}
	// The unpadded base64 form is accepted too.
	if _, err := mdm.ParseMachineInfoHeader(base64.RawStdEncoding.EncodeToString(der)); err != nil {
		t.Fatalf("unpadded header: %v", err)
	}

	missingSerial := strings.Replace(machineInfoXML, "<key>SERIAL</key><string>S1</string>", "", 1)
	hostile := []struct {
		name, field string
		der         []byte
		notSigned   bool
	}{
		{"empty", "", nil, true},
		{"garbage", "", []byte("\x30\x82\xff\xffgarbage"), true},
		{"bare plist", "", []byte(machineInfoXML), true},
		{"missing SERIAL", "SERIAL", signedMachineInfo(t, missingSerial), false},
		{"not a plist inside", "", signedMachineInfo(t, "hello"), false},
		{"huge", "", make([]byte, mdm.MaxMachineInfoSize+1), false},
	}
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mdm.ParseSignedMachineInfo(tc.der)
			var pe *mdm.ParseError
			if !errors.As(err, &pe) || pe.HTTPStatus() != 400 {
				t.Fatalf("err = %v, want a 400 *mdm.ParseError", err)
			}
			if pe.Field != tc.field {
				t.Fatalf("field %q, want %q (%v)", pe.Field, tc.field, err)
			}
			if errors.Is(err, mdm.ErrMachineInfoNotSigned) != tc.notSigned {
				t.Fatalf("ErrMachineInfoNotSigned = %v, want %v: %v", !tc.notSigned, tc.notSigned, err)
			}
		})
	}
	for _, h := range []string{"", "!!!not base64!!!", strings.Repeat("A", 200000)} {
		if _, err := mdm.ParseMachineInfoHeader(h); err == nil {
			t.Fatalf("header %.20q accepted", h)
		}
	}
}

// FuzzParseSignedMachineInfo feeds hostile bytes to the MachineInfo decoder:
// it must answer with a value or an error, never panic or hang.
func FuzzParseSignedMachineInfo(f *testing.F) {
	f.Add(signedMachineInfo(f, machineInfoXML))
	f.Add([]byte(machineInfoXML))
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := mdm.ParseSignedMachineInfo(b)
		if err == nil && (m.UDID == "" || m.Serial == "" || m.Signed == nil) {
			t.Fatalf("accepted without required keys: %+v", m)
		}
		_, _ = mdm.ParseMachineInfo(b)
		_, _ = mdm.ParseMachineInfoHeader(base64.StdEncoding.EncodeToString(b))
	})
}

// TestUserEnrollmentMachineInfo: a User Enrollment's MachineInfo carries no
// UDID or SERIAL (forbidden there by Apple's schema), and one that does is
// refused by name; the device-enrollment parser requires both.
func TestUserEnrollmentMachineInfo(t *testing.T) {
	ue := []byte(`<plist version="1.0"><dict><key>PRODUCT</key><string>iPhone14,2</string><key>VERSION</key><string>22B83</string></dict></plist>`)
	if m, err := mdm.ParseUserEnrollmentMachineInfo(ue); err != nil || m.Product != "iPhone14,2" {
		t.Fatalf("User Enrollment MachineInfo: %+v, %v", m, err)
	}
	if _, err := mdm.ParseMachineInfo(ue); err == nil || !strings.Contains(err.Error(), "UDID") {
		t.Errorf("device MachineInfo without UDID: %v", err)
	}
	withUDID := []byte(`<plist version="1.0"><dict><key>UDID</key><string>x</string><key>PRODUCT</key><string>iPhone14,2</string><key>VERSION</key><string>22B83</string></dict></plist>`)
	if _, err := mdm.ParseUserEnrollmentMachineInfo(withUDID); err == nil || !strings.Contains(err.Error(), "forbidden for User Enrollment") {
		t.Errorf("User Enrollment MachineInfo with a UDID: %v", err)
	}
}
