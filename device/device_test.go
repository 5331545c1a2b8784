package device

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/profiles"
)

func TestHardwareDeterministic(t *testing.T) {
	doer := http.DefaultClient
	a, b := New(doer, WithSeed(7)), New(doer, WithSeed(7))
	if a.UDID() != b.UDID() || a.SerialNumber() != b.SerialNumber() || a.EnrollmentID() != b.EnrollmentID() ||
		!bytes.Equal(a.Hardware().PushToken, b.Hardware().PushToken) || a.Hardware().PushMagic != b.Hardware().PushMagic {
		t.Fatal("the same seed gave different identifiers")
	}
	c := New(doer, WithSeed(8))
	if c.UDID() == a.UDID() || c.SerialNumber() == a.SerialNumber() || c.EnrollmentID() == a.EnrollmentID() {
		t.Fatal("different seeds gave the same identifiers")
	}

	hex40 := regexp.MustCompile(`^[0-9a-f]{40}$`)
	serial := regexp.MustCompile(`^[0-9A-Z]{12}$`)
	uuidUpper := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	mac := regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	for _, m := range []Model{IPad, IPhone, Mac} {
		d := New(doer, WithSeed(99), WithModel(m))
		hw := d.Hardware()
		if m.IsMac() {
			if !uuidUpper.MatchString(hw.UDID) {
				t.Errorf("%s UDID %q is not an uppercase UUID", m.ProductName, hw.UDID)
			}
		} else if !hex40.MatchString(hw.UDID) {
			t.Errorf("%s UDID %q is not 40 lowercase hex", m.ProductName, hw.UDID)
		}
		if !serial.MatchString(hw.SerialNumber) {
			t.Errorf("serial %q", hw.SerialNumber)
		}
		if !hex40.MatchString(hw.EnrollmentID) {
			t.Errorf("EnrollmentID %q", hw.EnrollmentID)
		}
		if len(hw.PushToken) != 32 || !uuidUpper.MatchString(hw.PushMagic) {
			t.Errorf("push token %d bytes, magic %q", len(hw.PushToken), hw.PushMagic)
		}
		if !mac.MatchString(hw.WiFiMAC) || !mac.MatchString(hw.BluetoothMAC) {
			t.Errorf("MACs %q %q", hw.WiFiMAC, hw.BluetoothMAC)
		}
		if m.Cellular != (hw.IMEI != "") {
			t.Errorf("%s: IMEI %q", m.ProductName, hw.IMEI)
		}
		if hw.IMEI != "" {
			digits := strings.ReplaceAll(hw.IMEI, " ", "")
			if len(digits) != 15 || luhnCheck(digits[:14]) != int(digits[14]-'0') {
				t.Errorf("IMEI %q has no valid Luhn check digit", hw.IMEI)
			}
		}
		if v, b := d.OS(); v != m.OSVersion || b != m.BuildVersion {
			t.Errorf("OS %s %s", v, b)
		}
	}
	if got := luhnCheck("49015420323751"); got != 8 { // a published IMEI example: 490154203237518
		t.Errorf("luhnCheck = %d, want 8", got)
	}
}

func TestNewMisusePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil doer":   func() { New(nil) },
		"bad model":  func() { New(http.DefaultClient, WithModel(Model{Family: "Toaster", ProductName: "x", ModelName: "y"})) },
		"tiny key":   func() { New(http.DefaultClient, WithKeySize(512)) },
		"empty OS":   func() { New(http.DefaultClient, WithOS("", "")) },
		"no timeout": func() { New(http.DefaultClient, WithRequestTimeout(0)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestEnrollSigned is the whole enrollment: download, verify, SCEP,
// Authenticate then TokenUpdate, each signed with the new identity.
func TestEnrollSigned(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.newDevice(WithModel(IPhone))
	res, err := d.EnrollFromURL(ctx(t), f.serve(f.signedProfile(f.options())))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Signed || !res.Verified || res.VerifyError != nil {
		t.Fatalf("signed=%v verified=%v err=%v", res.Signed, res.Verified, res.VerifyError)
	}
	if !res.Signer.Equal(f.pki.signer) {
		t.Fatalf("signer %q, want the test signer", res.Signer.Subject)
	}
	if !res.Enrolled || res.UserEnrollment || !d.IsEnrolled() {
		t.Fatalf("enrolled=%v ue=%v", res.Enrolled, res.UserEnrollment)
	}
	if len(res.Roots) != 1 || !res.Roots[0].Equal(f.pki.ca.Cert) || len(d.TrustedRoots()) != 1 {
		t.Fatalf("roots %v", res.Roots)
	}
	// Apple's order: root, SCEP, MDM.
	var types []string
	for _, p := range res.Profile.Payloads {
		types = append(types, p.Type)
	}
	if want := "com.apple.security.root,com.apple.security.scep,com.apple.mdm"; strings.Join(types, ",") != want {
		t.Fatalf("payload order %v", types)
	}

	// The identity chains to the CA, carries the payload's subject and
	// fits TLS client authentication.
	ident := d.Enrollment().Identity
	roots := x509.NewCertPool()
	roots.AddCert(f.pki.ca.Cert)
	if _, err := ident.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("identity does not chain to the CA: %v", err)
	}
	if ident.Subject.CommonName != "virtual device" || len(ident.Subject.Organization) != 1 || ident.Subject.Organization[0] != "Example" {
		t.Fatalf("identity subject %q", ident.Subject)
	}
	if tc, ok := d.IdentityTLSCertificate(); !ok || !tc.Leaf.Equal(ident) {
		t.Fatal("IdentityTLSCertificate is not the MDM identity")
	}

	got := f.checkinsSnapshot()
	if len(got) != 2 || got[0].msg.Type() != mdm.MessageAuthenticate || got[1].msg.Type() != mdm.MessageTokenUpdate {
		t.Fatalf("check-ins %v, want Authenticate then TokenUpdate", got)
	}
	authSchema, _ := schema.Checkin("Authenticate")
	tuSchema, _ := schema.Checkin("TokenUpdate")
	for i, c := range got {
		if !c.signed || certs.Hash(c.signer) != certs.Hash(ident) {
			t.Errorf("%s not signed with the identity", c.msg.Type())
		}
		if c.contentType != checkinContentType {
			t.Errorf("%s Content-Type %q", c.msg.Type(), c.contentType)
		}
		if c.msg.IDs().UDID != d.UDID() || c.msg.IDs().EnrollmentID != "" {
			t.Errorf("%s identifiers %+v", c.msg.Type(), c.msg.IDs())
		}
		s := []*schema.Schema{authSchema, tuSchema}[i]
		if probs := schemaProblems(s, s.PayloadKeys, dictOf(t, c.msg.RawBytes())); len(probs) > 0 {
			t.Errorf("%s breaks Apple's schema: %v", c.msg.Type(), probs)
		}
	}
	auth := got[0].msg.(*mdm.Authenticate)
	if auth.SerialNumber != d.SerialNumber() || auth.IMEI != d.Hardware().IMEI || auth.ProductName != "iPhone15,2" ||
		auth.OSVersion != "18.1" || auth.BuildVersion != "22B83" || auth.Topic != f.options().Topic {
		t.Errorf("Authenticate %+v", auth)
	}
	tu := got[1].msg.(*mdm.TokenUpdate)
	if !bytes.Equal(tu.Token, d.Hardware().PushToken) || tu.PushMagic != d.Hardware().PushMagic {
		t.Errorf("TokenUpdate token/magic %x %q", tu.Token, tu.PushMagic)
	}

	// The transcript shows the steps in order, with the exact bytes.
	var steps []string
	for _, ex := range d.Transcript() {
		if len(steps) == 0 || steps[len(steps)-1] != ex.Step {
			steps = append(steps, ex.Step)
		}
	}
	if want := "profile download,SCEP,Authenticate,TokenUpdate"; strings.Join(steps, ",") != want {
		t.Errorf("transcript steps %v", steps)
	}
	for _, ex := range d.Transcript() {
		if ex.Step == "Authenticate" && !bytes.Equal(ex.Request, auth.RawBytes()) {
			t.Error("transcript Authenticate bytes differ from what the server received")
		}
	}
}

// TestEnrollMutualTLS: with SignMessage false the device signs nothing and
// the TLS Doer presents the identity, already during Authenticate.
func TestEnrollMutualTLS(t *testing.T) {
	f := newFakeMDM(t, true)
	var d *Device
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.GetClientCertificate = func(i *tls.CertificateRequestInfo) (*tls.Certificate, error) { return d.GetClientCertificate(i) }
	tr.DisableKeepAlives = true
	d = New(&http.Client{Transport: tr}, WithSeed(3), WithKeySize(1024))
	o := f.options()
	o.SignMessage = false
	if _, err := d.EnrollFromURL(ctx(t), f.serve(f.signedProfile(o))); err != nil {
		t.Fatal(err)
	}
	f.enqueue(&mdm.SecurityInfo{})
	if _, err := d.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	ident := d.Enrollment().Identity
	for _, c := range f.checkinsSnapshot() {
		if c.signed || c.signer == nil || !c.signer.Equal(ident) {
			t.Errorf("%s: signed=%v, TLS identity %v", c.msg.Type(), c.signed, c.signer != nil)
		}
	}
	reps := f.reportsSnapshot()
	if len(reps) != 2 {
		t.Fatalf("%d reports", len(reps))
	}
	for _, r := range reps {
		if r.signed || r.signer == nil || !r.signer.Equal(ident) || r.contentType != connectContentType {
			t.Errorf("%s report: signed=%v ct=%q", r.res.Status, r.signed, r.contentType)
		}
	}
}

func TestUserEnrollment(t *testing.T) {
	f := newFakeMDM(t, false)
	o := f.options()
	o.EnrollmentMode = profiles.EnrollmentModeBYOD
	o.AssignedManagedAppleID = "user@example.com"
	o.AccessRights = 0
	d := f.enrolled(o, WithModel(IPhone))
	if e := d.Enrollment(); e == nil || !e.UserEnrollment {
		t.Fatal("not a User Enrollment")
	}
	for _, c := range f.checkinsSnapshot() {
		raw := string(c.msg.RawBytes())
		if c.msg.IDs().EnrollmentID != d.EnrollmentID() || c.msg.IDs().UDID != "" {
			t.Errorf("%s identifiers %+v", c.msg.Type(), c.msg.IDs())
		}
		for _, forbidden := range []string{"<key>UDID</key>", "<key>SerialNumber</key>", "<key>IMEI</key>", d.UDID(), d.SerialNumber()} {
			if strings.Contains(raw, forbidden) {
				t.Errorf("%s of a User Enrollment contains %q", c.msg.Type(), forbidden)
			}
		}
	}
	ids := f.enqueue(
		&mdm.DeviceInformation{Queries: []string{"UDID", "SerialNumber", "IMEI", "WiFiMAC", "BluetoothMAC", "DeviceName", "OSVersion", "ProductName"}},
		&mdm.EraseDevice{},
	)
	res, err := d.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commands) != 2 {
		t.Fatalf("%d commands", len(res.Commands))
	}
	qr := resultDict(t, res.Commands[0].Result)["QueryResponses"].(map[string]any)
	for _, k := range []string{"UDID", "SerialNumber", "IMEI", "WiFiMAC", "BluetoothMAC"} {
		if _, ok := qr[k]; ok {
			t.Errorf("User Enrollment answered %s", k)
		}
	}
	for _, k := range []string{"DeviceName", "OSVersion", "ProductName"} {
		if _, ok := qr[k]; !ok {
			t.Errorf("User Enrollment did not answer %s", k)
		}
	}
	if c := res.Commands[1]; c.CommandUUID != ids[1] || c.Status != mdm.StatusError || c.ErrorChain[0].ErrorCode != ErrCodeUserEnrollment {
		t.Errorf("EraseDevice on a User Enrollment: %+v", c)
	}
	for _, r := range f.reportsSnapshot() {
		if r.res.EnrollmentID != d.EnrollmentID() || r.res.UDID != "" {
			t.Errorf("report identifiers %+v", r.res.Enrollment)
		}
	}
	if !d.IsEnrolled() {
		t.Error("a refused EraseDevice erased the device")
	}
}

// schemaProblems validates an iOS 18.1 message against Apple's schema.
// Apple's errata make UDID and EnrollmentID each optional (a device
// enrollment never sends EnrollmentID, a User Enrollment never UDID), which
// the schema files still mark required.
func schemaProblems(s *schema.Schema, keys []schema.Key, dict map[string]any) []schema.Problem {
	var out []schema.Problem
	for _, p := range s.ValidateFor("iOS", "18.1", keys, dict, "") {
		if p.Rule == schema.RuleMissingRequired && (p.Path == "UDID" || p.Path == "EnrollmentID") {
			continue
		}
		out = append(out, p)
	}
	return out
}

// dictOf decodes a plist dictionary.
func dictOf(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := plist.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUnenroll(t *testing.T) {
	for _, checkOut := range []bool{true, false} {
		t.Run(map[bool]string{true: "CheckOutWhenRemoved", false: "silent"}[checkOut], func(t *testing.T) {
			f := newFakeMDM(t, false)
			o := f.options()
			o.CheckOutWhenRemoved = checkOut
			d := f.enrolled(o)
			if err := d.Unenroll(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if d.IsEnrolled() || len(d.InstalledProfiles()) != 0 || len(d.Identities()) != 0 || len(d.TrustedRoots()) != 0 {
				t.Fatal("the enrollment profile and what it installed are still there")
			}
			got := f.checkinsSnapshot()
			sentCheckOut := len(got) == 3 && got[2].msg.Type() == mdm.MessageCheckOut && got[2].signed
			if sentCheckOut != checkOut {
				t.Fatalf("CheckOut sent=%v, want %v (%d check-ins)", sentCheckOut, checkOut, len(got))
			}
			if err := d.Unenroll(ctx(t)); !errors.Is(err, ErrNotEnrolled) {
				t.Fatalf("second Unenroll: %v", err)
			}
			if _, err := d.Connect(ctx(t)); !errors.Is(err, ErrNotEnrolled) {
				t.Fatalf("Connect after Unenroll: %v", err)
			}
		})
	}
}

func TestUnenrollRemovesManagedProfiles(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options())
	manual, managed := inertProfile(t, "com.example.manual"), inertProfile(t, "com.example.managed")
	if _, err := d.Install(ctx(t), manual); err != nil {
		t.Fatal(err)
	}
	f.enqueue(&mdm.InstallProfile{Payload: managed})
	if _, err := d.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(d.InstalledProfiles()); n != 3 {
		t.Fatalf("%d profiles before Unenroll", n)
	}
	if err := d.Unenroll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	ps := d.InstalledProfiles()
	if len(ps) != 1 || ps[0].Identifier != "com.example.manual" {
		t.Fatalf("after Unenroll: %+v", ps)
	}
}

// inertProfile is an unsigned profile with a root payload (the untrusted
// CA) and a Wi-Fi payload the virtual device keeps inert.
func inertProfile(t testing.TB, identifier string) []byte {
	t.Helper()
	return inertProfileWith(t, identifier, getPKI(t).otherCA.Cert.Raw)
}

func inertProfileWith(t testing.TB, identifier string, rootDER []byte) []byte {
	t.Helper()
	p := map[string]any{
		"PayloadType":        "Configuration",
		"PayloadVersion":     1,
		"PayloadIdentifier":  identifier,
		"PayloadUUID":        strings.ToUpper(formatUUID([]byte(identifier + "................"))),
		"PayloadDisplayName": "Inert " + identifier,
		"PayloadContent": []any{
			map[string]any{
				"PayloadType": "com.apple.wifi.managed", "PayloadVersion": 1,
				"PayloadIdentifier": identifier + ".wifi", "PayloadUUID": "6F9AF2B4-3B3D-4E0F-8C5B-1A2B3C4D5E6F",
				"SSID_STR": "Example", "EncryptionType": "WPA2",
			},
			map[string]any{
				"PayloadType": "com.apple.security.root", "PayloadVersion": 1,
				"PayloadIdentifier": identifier + ".root", "PayloadUUID": "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D",
				"PayloadContent": rootDER,
			},
		},
	}
	b, err := plist.MarshalIndent(p, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTranscriptLimit(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options(), WithTranscriptLimit(2))
	tr := d.Transcript()
	if len(tr) != 2 || tr[0].Step != "Authenticate" || tr[1].Step != "TokenUpdate" || tr[1].StatusCode != 200 {
		t.Fatalf("transcript %+v", tr)
	}
	if d := f.enrolled(f.options(), WithTranscriptLimit(0)); len(d.Transcript()) != 0 {
		t.Fatal("WithTranscriptLimit(0) still records")
	}
}

// TestOSVersionGatesCommands: the schema's "introduced" versions apply to
// the device's OS version, whatever the order of the options.
func TestOSVersionGatesCommands(t *testing.T) {
	d := New(http.DefaultClient, WithOS("9.3", "13E233"), WithModel(IPhone))
	if v, b := d.OS(); v != "9.3" || b != "13E233" {
		t.Fatalf("OS %s %s", v, b)
	}
	// RestartDevice arrived in iOS 10.3: an iOS 9.3 device does not know it.
	d = New(http.DefaultClient, WithModel(IPhone), WithOS("9.3", "13E233"), WithSupervised(true))
	c, err := mdm.NewCommand("r", &mdm.RestartDevice{})
	if err != nil {
		t.Fatal(err)
	}
	cmd, _, err := parseCommand(c.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.dispatch(ctx(t), cmd); r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != ErrCodeUnknownCommand {
		t.Fatalf("RestartDevice on iOS 9.3: %+v", r)
	}
}
