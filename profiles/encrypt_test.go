package profiles

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"
)

// otherDevice is a second RSA identity, not the one profiles are
// encrypted to.
func otherDevice(t testing.TB) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "another device"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	pk := getPKI(t)
	profile := mustBuild(t, testOptions(pk.root))
	orig, err := Parse(profile)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := Encrypt(profile, pk.signer)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(enc)
	if err != nil {
		t.Fatalf("the encrypted profile does not parse: %v", err)
	}
	if !p.IsEncrypted() || len(p.Payloads) != 0 || p.Top["IsEncrypted"] != true || p.Top["PayloadIdentifier"] != orig.Top["PayloadIdentifier"] {
		t.Fatalf("encrypted profile top: %v", p.Top)
	}
	if bytes.Contains(enc, []byte("com.apple.mdm")) {
		t.Fatal("a payload type is readable in the encrypted profile")
	}
	rs, err := p.Recipients()
	if err != nil || len(rs) != 1 || rs[0].Serial.Cmp(pk.signer.SerialNumber) != 0 || rs[0].Issuer.CommonName != pk.inter.Subject.CommonName {
		t.Fatalf("recipients %v %v", rs, err)
	}

	// Signed after encryption, as a server sends it: Decrypt reads both.
	for name, in := range map[string][]byte{"unsigned": enc, "signed": mustSign(t, enc)} {
		dec, err := Decrypt(in, pk.signer, pk.signerKey)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := Parse(dec)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Payloads, orig.Payloads) {
			t.Fatalf("%s: payloads changed by the round trip", name)
		}
		if _, ok := back.Top["IsEncrypted"]; ok {
			t.Fatalf("%s: IsEncrypted kept after decryption", name)
		}
	}
}

func TestDecryptRefusals(t *testing.T) {
	pk := getPKI(t)
	profile := mustBuild(t, testOptions(pk.root))
	enc, err := Encrypt(profile, pk.signer)
	if err != nil {
		t.Fatal(err)
	}
	other, otherKey := otherDevice(t)
	swapped := func(mutate func(top map[string]any)) []byte {
		var top map[string]any
		if err := plist.Unmarshal(enc, &top); err != nil {
			t.Fatal(err)
		}
		mutate(top)
		b, _ := plist.MarshalIndent(top, "\t")
		return b
	}
	for _, tc := range []struct {
		name    string
		profile []byte
		cert    *x509.Certificate
		key     any
		want    string
	}{
		{"another device's identity", enc, other, otherKey, "encrypted to [issuer"},
		{"key of another certificate", enc, pk.signer, otherKey, "does not belong to the certificate"},
		{"not encrypted", profile, pk.signer, pk.signerKey, "not encrypted"},
		{"content is a string", swapped(func(m map[string]any) { m["EncryptedPayloadContent"] = "secret" }), pk.signer, pk.signerKey, "must be data"},
		{"content is garbage", swapped(func(m map[string]any) { m["EncryptedPayloadContent"] = []byte{0x30, 0x03, 1, 2, 3} }), pk.signer, pk.signerKey, "EncryptedPayloadContent"},
		{"content is SignedData", swapped(func(m map[string]any) { m["EncryptedPayloadContent"] = mustSign(t, profile) }), pk.signer, pk.signerKey, "not EnvelopedData"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decrypt(tc.profile, tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if statusOf(err) != 400 {
				t.Fatalf("status %d", statusOf(err))
			}
		})
	}
}

// TestOpenSSLDecryptsEncryptedProfile: OpenSSL's CMS code opens what
// Encrypt makes, and Decrypt opens what openssl encrypts.
func TestOpenSSLDecryptsEncryptedProfile(t *testing.T) {
	openssl := lookPath(t, "openssl")
	pk := getPKI(t)
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(pk.signerKey)
	writePEM(t, dir+"/key.pem", "PRIVATE KEY", keyDER)
	writePEM(t, dir+"/cert.pem", "CERTIFICATE", pk.signer.Raw)
	profile := mustBuild(t, testOptions(pk.root))
	orig, _ := Parse(profile)
	enc, err := Encrypt(profile, pk.signer)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Parse(enc)
	writeFile(t, dir, "content.der", p.Top["EncryptedPayloadContent"].([]byte))
	out, err := exec.Command(openssl, "cms", "-decrypt", "-inform", "DER", "-in", dir+"/content.der",
		"-recip", dir+"/cert.pem", "-inkey", dir+"/key.pem").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl cms -decrypt: %v\n%s", err, out)
	}
	var items []map[string]any
	if err := plist.Unmarshal(out, &items); err != nil || len(items) != len(orig.Payloads) || items[0]["PayloadUUID"] != orig.Payloads[0].UUID() {
		t.Fatalf("openssl decrypted %d payloads (%v):\n%.300s", len(items), err, out)
	}

	// The other way: openssl encrypts a PayloadContent array, Decrypt opens it.
	arr, _ := plist.MarshalIndent([]any{map[string]any(orig.Payloads[0])}, "\t")
	writeFile(t, dir, "arr.plist", arr)
	if out, err := exec.Command(openssl, "cms", "-encrypt", "-aes256", "-binary", "-outform", "DER", "-in", dir+"/arr.plist",
		"-out", dir+"/arr.der", dir+"/cert.pem").CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -encrypt: %v\n%s", err, out)
	}
	der, err := os.ReadFile(dir + "/arr.der")
	if err != nil {
		t.Fatal(err)
	}
	top := map[string]any{}
	for k, v := range orig.Top {
		if k != "PayloadContent" {
			top[k] = v
		}
	}
	top["IsEncrypted"], top["EncryptedPayloadContent"] = true, der
	in, _ := plist.MarshalIndent(top, "\t")
	dec, err := Decrypt(in, pk.signer, pk.signerKey)
	if err != nil {
		t.Fatalf("Decrypt of openssl's EnvelopedData: %v", err)
	}
	back, err := Parse(dec)
	if err != nil || len(back.Payloads) != 1 || back.Payloads[0].UUID() != orig.Payloads[0].UUID() {
		t.Fatalf("%v %+v", err, back)
	}
}

// FuzzDecrypt: no input makes Parse, Recipients or Decrypt panic or hang;
// whatever decrypts parses as a profile.
func FuzzDecrypt(f *testing.F) {
	pk := getPKI(f)
	profile := mustBuild(f, testOptions(pk.root))
	enc, err := Encrypt(profile, pk.signer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(mustSign(f, enc))
	p, _ := Parse(enc)
	f.Add(p.Top["EncryptedPayloadContent"].([]byte))
	f.Add([]byte("<plist><dict><key>IsEncrypted</key><true/><key>EncryptedPayloadContent</key><data>MAA=</data></dict></plist>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := Parse(data); err == nil && p.IsEncrypted() {
			_, _ = p.Recipients()
		}
		dec, err := Decrypt(data, pk.signer, pk.signerKey)
		if err != nil {
			return
		}
		if _, err := Parse(dec); err != nil {
			t.Fatalf("decrypted profile does not parse: %v", err)
		}
	})
}
