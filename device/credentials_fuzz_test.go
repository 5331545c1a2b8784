package device

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// selfSigned is a small certificate for the credential tests.
func selfSigned(tb testing.TB) []byte {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz seed"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// TestCredentialAssetDataRefused: asset data a server sends that is not
// what its type says is refused with a reason, never taken.
func TestCredentialAssetDataRefused(t *testing.T) {
	der := selfSigned(t)
	for _, tc := range []struct {
		assetType string
		data      string
		want      string
	}{
		{certificateAssetType, "", "not a certificate"},
		{certificateAssetType, "hello", "not a certificate"},
		{certificateAssetType, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), `"PRIVATE KEY", not CERTIFICATE`},
		{certificateAssetType, "-----BEGIN CERTIFICATE-----\n!!!\n", "does not decode"},
		{certificateAssetType, string(der) + strings.Repeat("x", maxCredentialAsset), "at most"},
		{scepAssetType, "", "not a JSON object"},
		{scepAssetType, "[]", "not a JSON object"},
		{scepAssetType, "null", "not a JSON object"},
		{scepAssetType, `{"URL":"https://x"} {}`, "more than one JSON value"},
		{scepAssetType, `{"Challenge":"x"}`, `"URL" is missing`},
		{scepAssetType, `{"URL":5}`, "URL"},
		{scepAssetType, `{"URL":"https://x","Keysize":"big"}`, "Keysize"},
		{scepAssetType, `{"URL":"https://x","CAFingerprint":"%%%"}`, "not base64"},
		{scepAssetType, `{"URL":"https://x","Subject":[[["CN"]]]}`, "Subject"},
		{scepAssetType, `{"URL":"https://x","Subject":[[["XX","y"]]]}`, "Subject is unusable"},
		{scepAssetType, `{"URL":"https://x","Subject":[[[1,2]]]}`, "Subject"},
		{scepAssetType, `{"URL":"https://x","Unknown":1}`, "Unknown"},
		{scepAssetType, `{"URL":"https://x","Key Type":"EC"}`, "always RSA"},
		{identityAssetType, `{"Password":"x"}`, `"Identity" is missing`},
		{identityAssetType, `{"Identity":"AAEC"}`, `"Password" is missing`},
		{identityAssetType, `{"Identity":"%%%","Password":"x"}`, "not base64"},

		{identityAssetType, "MIIB", "not a JSON object"},
		{scepAssetType, `{"URL":"https://x","Keysize":3000}`, "Keysize"},
		{scepAssetType, `{"URL":"https://x","Subject":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, ""},
	} {
		err := checkAssetData(tc.assetType, []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %.40q: %v, want an error mentioning %q", tc.assetType, tc.data, err, tc.want)
		}
	}
	// A PKCS #12 is opened when the identity is made, not at download.
	if _, _, err := parseIdentityCredential([]byte(`{"Identity":"AAECAwQ=","Password":"x"}`)); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Errorf("a PKCS #12 of five bytes: %v, want it refused as not opening", err)
	}
	for _, ok := range []struct{ assetType, data string }{
		{certificateAssetType, string(der)},
		{certificateAssetType, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))},
		{scepAssetType, `{"URL":"https://x","Subject":[[["CN","a"]],[["O","b"],["2.5.4.11","c"]]],"Keysize":2048,"CAFingerprint":"AAEC"}`},
	} {
		if err := checkAssetData(ok.assetType, []byte(ok.data)); err != nil {
			t.Errorf("%s %.40q refused: %v", ok.assetType, ok.data, err)
		}
	}
}

// FuzzCredentialAssetData: whatever a server sends as a certificate, SCEP
// or PKCS #12 identity asset's data is taken or refused, never a panic; a
// SCEP credential taken has a URL and a usable subject.
func FuzzCredentialAssetData(f *testing.F) {
	der := selfSigned(f)
	f.Add(false, der)
	f.Add(false, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	f.Add(true, []byte(`{"URL":"https://x","Subject":[[["CN","a"]]],"Challenge":"c","Keysize":1024,"CAFingerprint":"AAEC"}`))
	f.Add(true, []byte(`{"URL":"https://x","SubjectAltName":{"dNSName":["a"]},"Retries":3}`))
	f.Add(true, []byte(`{"Identity":"MIIBAA==","Password":"x"}`))
	f.Fuzz(func(t *testing.T, scep bool, data []byte) {
		if !scep {
			_ = checkAssetData(certificateAssetType, data)
			_, _, _ = parseIdentityCredential(data)
			return
		}
		c, err := parseSCEPCredential(data)
		if err != nil {
			return
		}
		if c.URL == "" {
			t.Fatalf("a credential without a URL was taken: %q", data)
		}
		if _, err := subjectName(c.Subject); err != nil {
			t.Fatalf("a credential with an unusable subject was taken: %v", err)
		}
	})
}

// countingOffline is a Doer that reaches no server and counts the tries.
type countingOffline struct{ n *int }

func (c countingOffline) Do(*http.Request) (*http.Response, error) {
	*c.n++
	return nil, errors.New("offline")
}

// TestIdentityRetries: a SCEP enrollment that never reached a server is
// tried again at the next sync (no credential hash kept); one the server
// refused with this credential is not asked again, and at most
// maxIdentitiesPerSync identities are tried at one sync.
func TestIdentityRetries(t *testing.T) {
	tries := 0
	d := New(countingOffline{&tries}, WithSeed(3), WithKeySize(1024))
	cred := []byte(`{"URL":"https://scep.example.com/scep","Challenge":"c"}`)
	var ds []*heldDeclaration
	statuses := map[string]declStatus{}
	assets := map[string]heldAsset{}
	for i := range maxIdentitiesPerSync + 2 {
		conf, asset := fmt.Sprintf("conf.%02d", i), fmt.Sprintf("asset.%02d", i)
		ds = append(ds,
			&heldDeclaration{Kind: "configuration", Type: identityConfigurationType, Identifier: conf, Payload: map[string]any{"CredentialAssetReference": asset}},
			&heldDeclaration{Kind: "asset", Type: scepAssetType, Identifier: asset})
		statuses[conf] = declStatus{active: true, valid: "valid"}
		assets[asset] = heldAsset{SHA256: fmt.Sprintf("sha-%d", i), Data: cred}
	}
	failures := d.applyDeclaredIdentities(context.Background(), "", ds, statuses, assets, nil)
	deferred := 0
	for id, f := range failures {
		if f.CredentialSHA256 != "" {
			t.Errorf("%s: an enrollment that reached no server keeps its credential's hash: %+v", id, f)
		}
		if strings.Contains(f.Error, "left to the next") {
			deferred++
		}
	}
	if len(failures) != maxIdentitiesPerSync+2 || deferred != 2 {
		t.Errorf("%d failures, %d deferred; want %d, 2", len(failures), deferred, maxIdentitiesPerSync+2)
	}
	// One the server refused with this very credential is not asked again.
	before := tries
	prev := map[string]applyFailure{"conf.00": {Code: "Error.ConfigurationCannotBeApplied", Error: "refused", CredentialSHA256: "sha-0"}}
	again := d.applyDeclaredIdentities(context.Background(), "", ds[:2], statuses, assets, prev)
	if tries != before || again["conf.00"].Error != "refused" {
		t.Errorf("a refused credential was asked again (%d requests) or its failure not kept: %+v", tries-before, again)
	}
}
