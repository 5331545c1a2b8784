package profiles

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Oracles nobody here wrote: OpenSSL's CMS code checks the signatures this
// package makes (and makes one it must read), Python's plistlib reads the
// XML it writes.

func lookPath(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	return path
}

func TestOpenSSLVerifiesSignedProfile(t *testing.T) {
	openssl := lookPath(t, "openssl")
	pk := getPKI(t)
	dir := t.TempDir()
	profile := mustBuild(t, testOptions(pk.root))
	signed := mustSign(t, profile)
	writePEM(t, dir+"/ca.pem", "CERTIFICATE", pk.root.Raw)
	writeFile(t, dir, "signed.mobileconfig", signed)

	verify := func(in string) (stdout, stderr []byte, err error) {
		cmd := exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-CAfile", dir+"/ca.pem", "-in", in)
		var errBuf bytes.Buffer
		cmd.Stderr = &errBuf
		out, err := cmd.Output()
		return out, errBuf.Bytes(), err
	}
	out, stderr, err := verify(dir + "/signed.mobileconfig")
	if err != nil {
		t.Fatalf("openssl cms -verify rejected the signed profile: %v\n%s", err, stderr)
	}
	if !bytes.Equal(out, profile) {
		t.Errorf("openssl cms -verify output is not exactly the profile:\n%q", out)
	}

	// One byte of the content changed: OpenSSL must refuse, and so must Parse.
	i := bytes.Index(signed, []byte("Example Org"))
	if i < 0 {
		t.Fatal("profile text not found in the CMS")
	}
	tampered := bytes.Clone(signed)
	tampered[i] = 'e'
	writeFile(t, dir, "tampered.mobileconfig", tampered)
	if out, _, err := verify(dir + "/tampered.mobileconfig"); err == nil {
		t.Errorf("openssl cms -verify accepted a tampered profile and printed %d bytes", len(out))
	}
	if _, err := Parse(tampered); err == nil || !strings.Contains(err.Error(), "changed after it was signed") {
		t.Errorf("Parse(tampered) = %v", err)
	}

	// Against an unrelated root OpenSSL must refuse too.
	writePEM(t, dir+"/other.pem", "CERTIFICATE", pk.otherRoot.Raw)
	cmd := exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-CAfile", dir+"/other.pem", "-in", dir+"/signed.mobileconfig", "-out", dir+"/out")
	if err := cmd.Run(); err == nil {
		t.Error("openssl cms -verify accepted the profile against an unrelated root")
	}
}

// TestParseOpenSSLSignedProfile reads a profile that OpenSSL signed, the way
// `security cms -S` or another MDM would hand one over.
func TestParseOpenSSLSignedProfile(t *testing.T) {
	openssl := lookPath(t, "openssl")
	pk := getPKI(t)
	dir := t.TempDir()
	profile := mustBuild(t, testOptions(nil))
	writeFile(t, dir, "profile.mobileconfig", profile)
	writePEM(t, dir+"/signer.pem", "CERTIFICATE", pk.signer.Raw)
	writePEM(t, dir+"/inter.pem", "CERTIFICATE", pk.inter.Raw)
	keyDER, err := x509.MarshalPKCS8PrivateKey(pk.signerKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir+"/signer.key", "PRIVATE KEY", keyDER)
	// -stream makes OpenSSL write BER with indefinite lengths, as some
	// signing tools do; without it the output is DER.
	for name, extra := range map[string][]string{"DER": nil, "BER streamed": {"-stream"}} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"cms", "-sign", "-binary", "-nodetach", "-md", "sha256", "-outform", "DER",
				"-signer", dir + "/signer.pem", "-inkey", dir + "/signer.key", "-certfile", dir + "/inter.pem",
				"-in", dir + "/profile.mobileconfig"}, extra...)
			cmd := exec.Command(openssl, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			signed, err := cmd.Output()
			if err != nil {
				t.Fatalf("openssl cms -sign: %v\n%s", err, stderr.String())
			}
			if extra != nil && !bytes.HasPrefix(signed, []byte{0x30, 0x80}) {
				t.Logf("openssl -stream output starts % x, not indefinite-length BER", signed[:2])
			}
			p, err := Parse(signed)
			if err != nil {
				t.Fatalf("Parse(openssl-signed): %v", err)
			}
			if !p.Signed || !p.Signer.Equal(pk.signer) || !bytes.Equal(p.Content, profile) {
				t.Errorf("Signed=%v signer=%v content equal=%v", p.Signed, p.Signer.Subject, bytes.Equal(p.Content, profile))
			}
			if err := p.VerifyChain(pool(pk.root), time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPythonPlistlibReadsProfile(t *testing.T) {
	python := lookPath(t, "python3")
	pk := getPKI(t)
	o := testOptions(pk.root)
	o.SCEPCAFingerprint = []byte{0xca, 0xfe}
	path := writeFile(t, t.TempDir(), "enroll.mobileconfig", mustBuild(t, o))
	const script = `
import plistlib, sys
d = plistlib.load(open(sys.argv[1], "rb"))
def check(cond, what):
    if not cond:
        sys.exit("plistlib: " + what)
check(isinstance(d, dict), "top level is not a dict")
check(d["PayloadType"] == "Configuration", "PayloadType")
check(type(d["PayloadVersion"]) is int and d["PayloadVersion"] == 1, "PayloadVersion is not integer 1")
check(d["PayloadIdentifier"] == "com.example.mockmdm.enroll", "PayloadIdentifier")
pc = d["PayloadContent"]
check(isinstance(pc, list) and len(pc) == 3, "PayloadContent is not a list of 3")
by = {p["PayloadType"]: p for p in pc}
for p in pc:
    check(type(p["PayloadVersion"]) is int and p["PayloadVersion"] == 1, "inner PayloadVersion")
    check(isinstance(p["PayloadUUID"], str), "inner PayloadUUID")
root = by["com.apple.security.root"]
check(isinstance(root["PayloadContent"], bytes) and root["PayloadContent"].hex() == sys.argv[2], "root PayloadContent is not the CA DER")
scep = by["com.apple.security.scep"]["PayloadContent"]
check(isinstance(scep, dict), "SCEP PayloadContent is not a dict")
check(scep["Key Type"] == "RSA", "Key Type")
check(type(scep["Keysize"]) is int and scep["Keysize"] == 2048, "Keysize")
check(type(scep["Key Usage"]) is int and scep["Key Usage"] == 5, "Key Usage")
check(scep["CAFingerprint"] == b"\xca\xfe", "CAFingerprint")
check(scep["Subject"] == [[["O", "Example Org"]], [["CN", "mockmdm device"]]], "Subject")
mdm = by["com.apple.mdm"]
check(mdm["IdentityCertificateUUID"] == by["com.apple.security.scep"]["PayloadUUID"], "IdentityCertificateUUID")
check(type(mdm["AccessRights"]) is int and mdm["AccessRights"] == 8191, "AccessRights")
check(mdm["SignMessage"] is True and mdm["CheckOutWhenRemoved"] is True and mdm["UseDevelopmentAPNS"] is False, "booleans")
check(mdm["ServerCapabilities"] == ["com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"], "ServerCapabilities")
check(mdm["ServerURL"].startswith("https://") and mdm["Topic"].startswith("com.apple.mgmt."), "ServerURL/Topic")
print("ok")
`
	cmd := exec.Command(python, "-c", script, path, hex.EncodeToString(pk.root.Raw))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("python3 plistlib check failed: %v\n%s", err, out)
	}
}

// TestPythonBinaryPlistParses makes a binary property list with plistlib
// (the format macOS tools may write) and checks Parse reads it the same.
func TestPythonBinaryPlistParses(t *testing.T) {
	python := lookPath(t, "python3")
	dir := t.TempDir()
	xmlPath := writeFile(t, dir, "enroll.mobileconfig", mustBuild(t, testOptions(getPKI(t).root)))
	const script = `
import plistlib, sys
d = plistlib.load(open(sys.argv[1], "rb"))
sys.stdout.buffer.write(plistlib.dumps(d, fmt=plistlib.FMT_BINARY))
`
	bin, err := exec.Command(python, "-c", script, xmlPath).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	if !bytes.HasPrefix(bin, []byte("bplist00")) {
		t.Fatalf("python3 did not write a binary plist: %q", bin[:min(len(bin), 16)])
	}
	fromBin, err := Parse(bin)
	if err != nil {
		t.Fatalf("Parse(binary plist): %v", err)
	}
	fromXML, err := Parse(mustBuild(t, testOptions(getPKI(t).root)))
	if err != nil {
		t.Fatal(err)
	}
	if len(fromBin.Payloads) != 3 {
		t.Fatalf("binary plist: %d payloads", len(fromBin.Payloads))
	}
	m, err := fromBin.PayloadsOfType(PayloadTypeMDM)[0].MDM()
	if err != nil {
		t.Fatal(err)
	}
	if m.AccessRights != AccessAll || !m.SignMessage || len(m.ServerCapabilities) != 2 {
		t.Errorf("binary plist MDM payload = %+v", m)
	}
	s, err := fromBin.PayloadsOfType(PayloadTypeSCEP)[0].SCEP()
	if err != nil {
		t.Fatal(err)
	}
	if s.Keysize != 2048 || s.KeyUsage != 5 || s.KeyType != "RSA" || len(s.Subject) != 2 {
		t.Errorf("binary plist SCEP payload = %+v", s)
	}
	if fromBin.Top["PayloadIdentifier"] != fromXML.Top["PayloadIdentifier"] {
		t.Error("binary and XML decode to different identifiers")
	}
	if !bytes.Equal(fromBin.PayloadsOfType(PayloadTypeRoot)[0].Data("PayloadContent"), getPKI(t).root.Raw) {
		t.Error("binary plist root payload data differs")
	}
}
