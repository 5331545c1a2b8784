package device

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
)

// offline is a Doer with no network: fuzzed inputs never leave the process.
type offline struct{}

func (offline) Do(*http.Request) (*http.Response, error) { return nil, errors.New("offline") }

// fuzzKeyPEM is a throwaway 1024-bit test key. The fuzz targets use it
// instead of the package's test CA because every fuzzing worker runs their
// setup, and RSA key generation under coverage instrumentation takes long
// enough to stall the fuzzer.
const fuzzKeyPEM = `-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQD9KjtYkPpNtIGgI4Z78EfCzRBd4FquUoT0OzRtY1LRODrVDmoK
4rlwnbM5PIaulcuu4A/MHAeswMUBRgU3SyE+qeLrCRr0o8j65054nc17TesBGwxC
xNwt/RSAFdVCN/W5L3b4PrCihjPiv0VoN4wbvwfdfu6Y7qy9vIjq83HwOQIDAQAB
AoGAH3atM3+pLBkf9xgTMboWIRa9Tv2AJ6Qn0/a7uFCczVXQsgP9l+a/p0hiKt3j
2zTQwKYmMHbXWVgH4/Wg1lNnCRRqY8LFBtXAg4FZ5fvtFiMtop8BB3cnXnJVDiK/
1/OtzsNGlW1cVj+5vempnB43fBsymSUQT37/wHODUE7MxLUCQQD/s5F6d/wEaW7h
pZTaaDXPvJAIbJo45enRXW6TGE3O81aURBCajj/B2m06DbUroUX1ae8U3o2cAmYc
nhhUrNy/AkEA/XXnxj5X/TaVzRqYFaWDVuaRHJEPWX117zIqkRo3x8eAlpFUtMS0
S5gshsXNhC6mzyhvGcZ6y+pyLMueOObZBwJBAPKTivbRLv+MekmNCRrt8+bgrw+e
3+wMiXY6mfToAKDNDxzXOZ02R9wC+M4zROVgOPsqBUsaGuOfDvolLVXfLAcCQQCy
WdkyIoR/5X0bym7iLIlzCONrmpeWfTYTjtVtLWm65qORT8qvOQs1dms+msm3DazL
cMRc+tFF1D9rTgyUNbzZAkEAqnHP1rHz3IiqbYXXV/PSXTPCwnZe7Nyx8r/TjVx/
rRcAdiyIfQt9D4W1WpqcVdQNd1pznsYrthUNPPsWbmVIVQ==
-----END RSA PRIVATE KEY-----`

// fuzzIdentity is fuzzKeyPEM with a self-signed CA certificate.
func fuzzIdentity(tb testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	tb.Helper()
	b, _ := pem.Decode([]byte(fuzzKeyPEM))
	if b == nil {
		tb.Fatal("fuzzKeyPEM does not decode")
	}
	key, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return key, cert
}

// withReadyKey makes the device use key instead of generating one: RSA key
// generation under the fuzzer's coverage instrumentation takes seconds.
func withReadyKey(key *rsa.PrivateKey) Option {
	return func(d *Device) { d.genKey = func(int) (*rsa.PrivateKey, error) { return key, nil } }
}

// typedError reports whether err is one of the package's error types.
func typedError(err error) bool {
	var pe *ProfileError
	var se *ServerError
	var ee *ExchangeError
	var st *stateError
	return errors.As(err, &pe) || errors.As(err, &se) || errors.As(err, &ee) || errors.As(err, &st)
}

// FuzzInstall: any bytes given as a profile yield a result or a typed
// error, never a panic, and a failure leaves the device as it was.
func FuzzInstall(f *testing.F) {
	key, cert := fuzzIdentity(f)
	f.Add(inertProfileWith(f, "com.example.fuzz", cert.Raw))
	raw, err := profiles.BuildEnrollment(profiles.EnrollmentOptions{
		Identifier: "com.example.fuzz.enroll", ServerURL: "https://mdm.example/mdm", Topic: "com.apple.mgmt.External.4b7f1c2e-6a51-4f0e-9f55-0d3f7c9a1b22",
		AccessRights: profiles.AccessAll, SCEPURL: "https://mdm.example/scep", SCEPKeysize: 1024,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	signed, err := profiles.Sign(raw, cert, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	f.Add([]byte("<plist><dict><key>PayloadContent</key><array><dict/></array></dict></plist>"))
	f.Add([]byte{0x30, 0x80, 0x06})
	f.Add([]byte("bplist00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(offline{}, WithSeed(1), WithKeySize(1024), WithTrust(pool), withReadyKey(key))
		res, err := d.Install(context.Background(), b)
		if err == nil {
			if res == nil {
				t.Fatal("nil result without error")
			}
			return
		}
		if !typedError(err) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if d.IsEnrolled() || len(d.InstalledProfiles()) != 0 || len(d.Identities()) != 0 || len(d.TrustedRoots()) != 0 {
			t.Fatal("a failed install left state behind")
		}
	})
}

// FuzzCommand: any bytes a server sends as a command are either refused
// with an error or answered with a result a server can decode.
func FuzzCommand(f *testing.F) {
	key, _ := fuzzIdentity(f)
	for i, req := range []mdm.CommandRequest{
		&mdm.DeviceInformation{Queries: []string{"UDID", "DeviceName", "WiFiMAC"}},
		&mdm.SecurityInfo{}, &mdm.ProfileList{ManagedOnly: true},
		&mdm.InstallProfile{Payload: []byte("<plist><dict/></plist>")},
		&mdm.RemoveProfile{Identifier: "x"}, &mdm.InstalledApplicationList{Identifiers: []string{"com.apple.Pages"}},
		&mdm.DeviceLock{Message: "hi"}, &mdm.EraseDevice{}, &mdm.RestartDevice{},
		&mdm.Restrictions{ProfileRestrictions: true},
	} {
		c, err := mdm.NewCommand("seed-"+string(rune('a'+i)), req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.Raw)
	}
	f.Add([]byte(`<plist><dict><key>CommandUUID</key><string>u</string><key>Command</key><dict><key>RequestType</key><string>DeviceInformation</string><key>Queries</key><array><integer>1</integer></array></dict></dict></plist>`))
	f.Add([]byte(`<plist><dict><key>CommandUUID</key><string>u</string><key>Command</key><dict><key>RequestType</key><string>Mystery</string></dict></dict></plist>`))
	f.Add([]byte("bplist00garbage"))
	f.Add([]byte(`<plist><dict><key>CommandUUID</key><string>u</string><key>Command</key><dict><key>RequestType</key><string>DeleteUser</string><key>DeleteAllUsers</key><true/><key>ForceDeletion</key><string>yes</string></dict></dict></plist>`))
	f.Add([]byte(`<plist><dict><key>CommandUUID</key><string>uu</string><key>Command</key><dict><key>RequestType</key><string>UserList</string></dict></dict></plist>`))
	f.Add([]byte(`<plist><dict><key>CommandUUID</key><string>p</string><key>Command</key><dict><key>RequestType</key><string>InstallProvisioningProfile</string><key>ProvisioningProfile</key><data>MIIBAAYJKoZIhvcNAQcCoA==</data></dict></dict></plist>`))
	f.Add([]byte(`<plist><dict><key>CommandUUID</key><string>r</string><key>Command</key><dict><key>RequestType</key><string>SetRecoveryLock</string><key>NewPassword</key><string>x</string></dict></dict></plist>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cmd, uuid, err := parseCommand(raw)
		if err != nil {
			return
		}
		if uuid == "" || cmd.UUID != uuid || cmd.RequestType == "" {
			t.Fatalf("decoded command without UUID or type: %+v", cmd)
		}
		// Half the inputs meet a supervised Shared iPad, so its commands
		// are reached too.
		shared := len(raw)%2 == 0
		d := New(offline{}, WithSeed(2), WithKeySize(1024), withReadyKey(key), WithSupervised(shared), WithSharedIPad(shared))
		resp := d.dispatch(context.Background(), cmd)
		body, err := encodeResult(d.ids(false), uuid, cmd.RequestType, resp)
		if err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
		if _, err := mdm.DecodeCommandResults(body); err != nil {
			t.Fatalf("result does not decode: %v\n%s", err, body)
		}
	})
}
