package certs_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
)

const machineInfoPlist = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>UDID</key><string>00008030-0000000000000001</string><key>SERIAL</key><string>C02TEST00001</string>
<key>PRODUCT</key><string>iPad13,1</string><key>VERSION</key><string>22A3354</string><key>OS_VERSION</key><string>18.0</string>
<key>LANGUAGE</key><string>en</string><key>MDM_CAN_REQUEST_SOFTWARE_UPDATE</key><true/></dict></plist>`

func TestAppleDeviceVerifierModes(t *testing.T) {
	apple, err := certs.NewAppleDeviceCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewAppleDeviceCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := apple.IssueDevice("C02TEST00001", "00008030-0000000000000001", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good, err := certs.SignMachineInfo([]byte(machineInfoPlist), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ocert, okey, _ := other.IssueDevice("C02TEST00001", "00008030-0000000000000001", time.Hour)
	foreign, _ := certs.SignMachineInfo([]byte(machineInfoPlist), ocert, okey)
	tampered := append([]byte(nil), good...)
	// Flip a byte inside the attached plist (the UDID's last digit).
	for i := range tampered {
		if i+1 < len(tampered) && string(tampered[i:i+2]) == "01" {
			tampered[i+1] = '2'
			break
		}
	}
	roots := []*certs.AppleDeviceCA{apple}
	_ = roots
	tests := []struct {
		name string
		mode certs.MachineInfoVerify
		der  []byte
		want error
	}{
		{"off accepts garbage", certs.VerifyOff, []byte("garbage"), nil},
		{"signature accepts foreign CA", certs.VerifySignature, foreign, nil},
		{"signature refuses bare plist", certs.VerifySignature, []byte(machineInfoPlist), certs.ErrMachineInfoNotCMS},
		{"signature refuses tampered", certs.VerifySignature, tampered, certs.ErrMachineInfoSignature},
		{"strict accepts the Apple device CA", certs.VerifyStrict, good, nil},
		{"strict refuses foreign CA", certs.VerifyStrict, foreign, certs.ErrMachineInfoUntrusted},
		{"strict refuses empty", certs.VerifyStrict, nil, certs.ErrMachineInfoNotCMS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := certs.NewAppleDeviceVerifier(tc.mode, []*x509.Certificate{apple.Certificate()}, nil)
			_, err := v.Verify(tc.der)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			var ce *certs.Error
			if !errors.As(err, &ce) || ce.HTTPStatus() != 400 {
				t.Fatalf("error %v is not a 400 *certs.Error", err)
			}
		})
	}
	// The signed form decodes back to the same MachineInfo.
	m, err := mdm.ParseSignedMachineInfo(good)
	if err != nil {
		t.Fatal(err)
	}
	if m.Serial != "C02TEST00001" || !m.MDMCanRequestSoftwareUpdate || string(m.Raw) != machineInfoPlist {
		t.Fatalf("decoded %+v", m)
	}
	// A signing time outside the signer's validity is refused in strict mode.
	late := certs.NewAppleDeviceVerifier(certs.VerifyStrict, []*x509.Certificate{apple.Certificate()}, func() time.Time { return time.Now().Add(-48 * time.Hour) })
	if _, err := late.Verify(good); !errors.Is(err, certs.ErrMachineInfoSigningTime) {
		t.Fatalf("signed in the future: %v", err)
	}
}
