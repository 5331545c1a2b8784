package enroll

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"go.mozilla.org/pkcs7"
)

func signForTest(t testing.TB, content []byte) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "device"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	out, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeMachineInfo(t *testing.T) {
	good, _ := plist.Marshal(map[string]string{"PRODUCT": "iPad13,18", "VERSION": "22A3354", "OS_VERSION": "18.0", "LANGUAGE": "en"})
	signed := signForTest(t, good)
	mi, err := decodeMachineInfo(signed)
	if err != nil || mi.Product != "iPad13,18" || mi.UDID != "" || mi.Serial != "" {
		t.Fatalf("decode = %+v, %v", mi, err)
	}
	noProduct, _ := plist.Marshal(map[string]string{"VERSION": "1"})
	tampered := append([]byte(nil), signed...)
	i := strings.Index(string(tampered), "iPad13,18")
	tampered[i] = 'X'
	for name, b := range map[string][]byte{
		"empty":       nil,
		"bare plist":  good,
		"no PRODUCT":  signForTest(t, noProduct),
		"not a plist": signForTest(t, []byte("hello")),
		"tampered":    tampered,
		"truncated":   signed[:len(signed)/2],
		"garbage":     []byte{0x30, 0x03, 0x02, 0x01, 0x01},
	} {
		if _, err := decodeMachineInfo(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else if e, ok := ErrorOf(err); !ok || e.Status != 400 {
			t.Errorf("%s: %v, want a 400", name, err)
		}
	}
}

func TestParseBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER a.b-c_d~e+f/g==": "a.b-c_d~e+f/g==", "Bearer  abc": "abc",
		"Bearer": "", "Bearer ": "", "Basic abc": "", "Bearer a b": "", "Bearer a=b": "", "Bearerabc": "", "": "",
	} {
		if got, _ := ParseBearer(h); got != want {
			t.Errorf("ParseBearer(%q) = %q, want %q", h, got, want)
		}
	}
}
