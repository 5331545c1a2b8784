package device_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// TestDeclaredCertificates: security.certificate configurations put their
// certificate assets' certificates (PEM and DER) in the keychain —
// CertificateList and TrustedRoots show them, security.certificate.list
// (passing Apple's schema) names the asset that installed each — while
// data that is not a certificate fails the asset with
// Error.AssetCannotBeDeserialized, and a configuration whose asset failed or
// is not a certificate asset fails. Save/Load keep the certificates; they
// leave with their configuration.
func TestDeclaredCertificates(t *testing.T) {
	ctx := t.Context()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPhone), device.WithOS("18.1", "22B83"))
	srv.Enroll(dev)
	pemCA, err := certs.NewCA("Declared PEM Root", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	derCA, err := certs.NewCA("Declared DER Root", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	host := func(name, contentType string, data []byte) map[string]any {
		t.Helper()
		h, err := c.HostData(ctx, name, contentType, data)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"DataURL": h.URL, "ContentType": contentType, "Size": h.Size, "Hash-SHA-256": h.SHA256}
	}
	asset := func(id string, ref map[string]any) api.Declaration {
		return api.Declaration{Type: "com.apple.asset.credential.certificate", Identifier: id, Payload: map[string]any{"Reference": ref}}
	}
	conf := func(id, ref string) api.Declaration {
		return api.Declaration{Type: "com.apple.configuration.security.certificate", Identifier: id, Payload: map[string]any{"CredentialAssetReference": ref}}
	}
	decls := []api.Declaration{
		asset("asset.pem", host("root.pem", "application/pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pemCA.Cert.Raw}))),
		asset("asset.der", host("root.der", "application/pkcs1", derCA.Cert.Raw)),
		asset("asset.junk", host("junk.pem", "application/pem", []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))),
		{Type: "com.apple.asset.data", Identifier: "asset.data", Payload: map[string]any{"Reference": host("note.txt", "text/plain", []byte("hello"))}},
		conf("conf.pem", "asset.pem"),
		conf("conf.der", "asset.der"),
		conf("conf.junk", "asset.junk"),
		conf("conf.data", "asset.data"),
		{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status", Payload: map[string]any{"StatusItems": []any{map[string]any{"Name": "security.certificate.list"}}}},
		{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"conf.pem", "conf.der", "conf.junk", "conf.data", "conf.status"}}},
	}
	got := assignAndReport(t, srv, dev, decls...)

	list, _ := got.Status.StatusItems["security"].(map[string]any)["certificate"].(map[string]any)["list"].([]any)
	for _, e := range list { // JSON carries <data> as base64
		e := e.(map[string]any)
		der, err := base64.StdEncoding.DecodeString(e["data"].(string))
		if err != nil {
			t.Fatal(err)
		}
		e["data"] = der
	}
	s, _ := schema.StatusItem("security.certificate.list")
	if probs := s.ValidateFor("iOS", "18.1", s.PayloadKeys, map[string]any{"security.certificate.list": schema.FromJSON(list)}, ""); len(probs) > 0 {
		t.Errorf("security.certificate.list breaks Apple's schema: %v", probs)
	}
	declared := map[string]string{} // subject → the asset that installed it
	for _, e := range list {
		e := e.(map[string]any)
		if a, ok := e["declaration-identifier"].(string); ok {
			declared[e["subject-summary"].(string)] = a
		}
	}
	if declared["Declared PEM Root"] != "asset.pem" || declared["Declared DER Root"] != "asset.der" || len(declared) != 2 {
		t.Errorf("declared certificates in security.certificate.list: %v, want the PEM and DER roots named by their assets", declared)
	}

	byID := map[string]map[string]any{}
	items := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)
	for _, kind := range []string{"assets", "configurations"} {
		for _, x := range items[kind].([]any) {
			x := x.(map[string]any)
			byID[x["identifier"].(string)] = x
		}
	}
	code := func(id string) string {
		r, _ := byID[id]["reasons"].([]any)
		if len(r) == 0 {
			return ""
		}
		return r[0].(map[string]any)["code"].(string)
	}
	for id, want := range map[string]string{
		"asset.pem": "", "conf.pem": "", "conf.der": "",
		"asset.junk": "Error.AssetCannotBeDeserialized",
		"conf.junk":  "Error.ConfigurationCannotBeApplied",
		"conf.data":  "Error.ConfigurationCannotBeApplied",
	} {
		if got := code(id); got != want || (want == "") != (byID[id]["active"] == true) {
			t.Errorf("%s: %v, want reason %q", id, byID[id], want)
		}
	}

	r := srv.Run(dev, map[string]any{"RequestType": "CertificateList"})
	var res struct{ CertificateList []struct{ CommonName string } }
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatalf("CertificateList: %+v %v", r, err)
	}
	var names []string
	for _, c := range res.CertificateList {
		names = append(names, c.CommonName)
	}
	if all := strings.Join(names, ", "); !strings.Contains(all, "Declared PEM Root") || !strings.Contains(all, "Declared DER Root") {
		t.Errorf("CertificateList: %s", all)
	}

	path := filepath.Join(t.TempDir(), "iphone.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	holds := func(d *device.Device, want *certs.CA) bool {
		for _, c := range d.TrustedRoots() {
			if bytes.Equal(c.Raw, want.Cert.Raw) {
				return true
			}
		}
		return false
	}
	if !holds(back, pemCA) || !holds(back, derCA) {
		t.Error("Save/Load lost a declared certificate")
	}

	// conf.pem goes: its certificate leaves; conf.der stays.
	if _, err := c.PutDeclaration(ctx, api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.der", Payload: map[string]any{"StandardConfigurations": []any{"conf.der"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetDeclarations(ctx, back.UDID(), "asset.der", "conf.der", "act.der"); err != nil {
		t.Fatal(err)
	}
	if r := srv.Run(back, &mdm.DeclarativeManagementCommand{}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeclarativeManagement: %+v", r)
	}
	if holds(back, pemCA) || !holds(back, derCA) {
		t.Errorf("after conf.pem went: PEM root held %v (want false), DER root held %v (want true)", holds(back, pemCA), holds(back, derCA))
	}
	// The declarations, and what they installed, leave with the enrollment.
	if err := back.Unenroll(ctx); err != nil {
		t.Fatal(err)
	}
	if holds(back, derCA) {
		t.Error("a declared certificate outlived the enrollment")
	}
}

// TestDeclaredSCEPIdentity: a security.identity configuration with a SCEP
// credential asset gets the device an identity from that SCEP server (a
// one-time challenge, so really enrolled once): it is in the keychain and
// in security.certificate.list with its asset, survives a sync and
// Save/Load without enrolling again, and leaves with its configuration. A
// credential that is not Apple's SCEP document fails the asset; a PKCS #12
// identity asset fails its configuration (not run by a virtual device), as
// does a challenge the SCEP server refuses.
func TestDeclaredSCEPIdentity(t *testing.T) {
	ctx := t.Context()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPhone), device.WithOS("18.1", "22B83"), device.WithKeySize(1024))
	srv.Enroll(dev)
	ch, err := c.MintChallenge(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	scepURL := srv.Server().URL("/scep")
	credential := func(challenge string) []byte {
		b, err := json.Marshal(map[string]any{"URL": scepURL, "Challenge": challenge, "Keysize": 1024,
			"Subject": [][][]string{{{"O", "Example"}}, {{"CN", "declared identity"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	host := func(name string, data []byte) map[string]any {
		t.Helper()
		h, err := c.HostData(ctx, name, "application/json", data)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"DataURL": h.URL, "ContentType": "application/json", "Size": h.Size, "Hash-SHA-256": h.SHA256}
	}
	asset := func(typ, id string, ref map[string]any) api.Declaration {
		return api.Declaration{Type: typ, Identifier: id, Payload: map[string]any{"Reference": ref}}
	}
	conf := func(id, ref string) api.Declaration {
		return api.Declaration{Type: "com.apple.configuration.security.identity", Identifier: id, Payload: map[string]any{"CredentialAssetReference": ref}}
	}
	got := assignAndReport(t, srv, dev,
		asset("com.apple.asset.credential.scep", "asset.scep", host("scep.json", credential(ch.Challenge))),
		asset("com.apple.asset.credential.scep", "asset.notscep", host("notscep.json", []byte(`{"Challenge": "x"}`))),
		asset("com.apple.asset.credential.scep", "asset.refused", host("refused.json", credential("not-the-challenge"))),
		asset("com.apple.asset.credential.acme", "asset.acme", host("acme.json", []byte(`{"DirectoryURL":"https://acme.example.com/dir","ClientIdentifier":"x","KeySize":2048,"KeyType":"RSA","HardwareBound":false}`))),
		conf("conf.scep", "asset.scep"), conf("conf.notscep", "asset.notscep"), conf("conf.refused", "asset.refused"), conf("conf.acme", "asset.acme"),
		api.Declaration{Type: "com.apple.configuration.management.status-subscriptions", Identifier: "conf.status", Payload: map[string]any{"StatusItems": []any{map[string]any{"Name": "security.certificate.list"}}}},
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"conf.scep", "conf.notscep", "conf.refused", "conf.acme", "conf.status"}}})

	declared := func(d *device.Device) []string {
		var out []string
		for _, c := range d.Identities() {
			if c.Subject.CommonName == "declared identity" {
				out = append(out, c.SerialNumber.String())
			}
		}
		return out
	}
	ids := declared(dev)
	if len(ids) != 1 {
		t.Fatalf("declared identities: %v, want one", ids)
	}
	var listed bool
	for _, e := range got.Status.StatusItems["security"].(map[string]any)["certificate"].(map[string]any)["list"].([]any) {
		e := e.(map[string]any)
		if e["subject-summary"] == "declared identity" {
			listed = e["is-identity"] == true && e["declaration-identifier"] == "asset.scep"
		}
	}
	if !listed {
		t.Error("security.certificate.list does not list the declared identity with its asset")
	}
	status := map[string]map[string]any{}
	items := got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)
	for _, kind := range []string{"assets", "configurations"} {
		for _, x := range items[kind].([]any) {
			x := x.(map[string]any)
			status[x["identifier"].(string)] = x
		}
	}
	reason := func(id string) string {
		r, _ := status[id]["reasons"].([]any)
		if len(r) == 0 {
			return ""
		}
		m := r[0].(map[string]any)
		return m["code"].(string) + ": " + m["description"].(string)
	}
	for id, want := range map[string]string{
		"conf.scep":     "",
		"asset.notscep": "Error.AssetCannotBeDeserialized",
		"conf.notscep":  "Error.ConfigurationCannotBeApplied: the configuration could not be applied: the asset asset.notscep could not be used",
		"conf.refused":  "Error.ConfigurationCannotBeApplied: the configuration could not be applied: SCEP enrollment",
		"conf.acme":     "Error.ConfigurationCannotBeApplied: the configuration could not be applied: the asset asset.acme is a com.apple.asset.credential.acme",
	} {
		if r := reason(id); (want == "" && r != "") || !strings.HasPrefix(r, want) || (id != "conf.acme") == strings.Contains(r, "does not run ACME") {
			t.Errorf("%s: %q, want %q… (ACME named only for the ACME asset)", id, r, want)
		}
	}

	// Nothing new: no second enrollment (the challenge was one-time, so a
	// second one would fail the configuration), and the refused one is not
	// asked again with the same credential.
	scepAsks := func() int {
		n := 0
		for _, x := range dev.Transcript() {
			if x.Step == "SCEP" && x.Method == http.MethodPost {
				n++
			}
		}
		return n
	}
	before := scepAsks()
	if err := dev.SyncDeclarations(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if after := scepAsks(); after != before {
		t.Errorf("a sync with nothing new made %d SCEP requests; want none (one enrolled, one refused with this credential)", after-before)
	}
	if r := reason("conf.refused"); r == "" {
		t.Error("the refused configuration's failure was not kept")
	}
	path := filepath.Join(t.TempDir(), "iphone.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	if err := back.SyncDeclarations(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if again := declared(back); len(again) != 1 || again[0] != ids[0] {
		t.Errorf("after a sync and Save/Load: %v, want the same identity %v", again, ids)
	}
	if list, _, _ := back.Declarations(""); !slices.ContainsFunc(list, func(s device.DeclarationStatus) bool { return s.Identifier == "conf.scep" && s.Active }) {
		t.Errorf("conf.scep is no longer active: %+v", list)
	}

	// The asset's data changes (a new challenge): the device enrolls again
	// and holds the new identity only.
	ch2, err := c.MintChallenge(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutDeclaration(ctx, asset("com.apple.asset.credential.scep", "asset.scep", host("scep2.json", credential(ch2.Challenge)))); err != nil {
		t.Fatal(err)
	}
	if err := back.SyncDeclarations(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if renewed := declared(back); len(renewed) != 1 || renewed[0] == ids[0] {
		t.Errorf("after the credential changed: %v, want one new identity (not %v)", renewed, ids)
	}

	// Its configuration gone, the identity goes.
	if _, err := c.PutDeclaration(ctx, api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.none", Payload: map[string]any{"StandardConfigurations": []any{"conf.status"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetDeclarations(ctx, back.UDID(), "conf.status", "act.none"); err != nil {
		t.Fatal(err)
	}
	if err := back.SyncDeclarations(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if left := declared(back); len(left) != 0 {
		t.Errorf("the identity outlived its configuration: %v", left)
	}
}

// TestDeclaredCertificatesLeaveWithTheUser: a Shared iPad user's declared
// certificate goes when the user is deleted.
func TestDeclaredCertificatesLeaveWithTheUser(t *testing.T) {
	ctx := t.Context()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true), device.WithSharedIPad(true))
	srv.Enroll(dev)
	ca, err := certs.NewCA("Ann's Root", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.HostData(ctx, "ann.der", "application/pkcs1", ca.Cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	assignAndReportUser(t, srv, dev, "ann@example.org",
		api.Declaration{Type: "com.apple.asset.credential.certificate", Identifier: "asset.ann", Payload: map[string]any{"Reference": map[string]any{"DataURL": h.URL}}},
		api.Declaration{Type: "com.apple.configuration.security.certificate", Identifier: "conf.ann", Payload: map[string]any{"CredentialAssetReference": "asset.ann"}},
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act.ann", Payload: map[string]any{"StandardConfigurations": []any{"conf.ann"}}})
	holds := func() bool {
		return slices.ContainsFunc(dev.TrustedRoots(), func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, ca.Cert.Raw) })
	}
	if !holds() {
		t.Fatal("the user's declared certificate was not installed")
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "LogOutUser"}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("LogOutUser: %+v", r)
	}
	if r := srv.Run(dev, map[string]any{"RequestType": "DeleteUser", "UserName": "ann@example.org", "ForceDeletion": true}); r.Status != mdm.StatusAcknowledged {
		t.Fatalf("DeleteUser: %+v", r)
	}
	if holds() {
		t.Error("the deleted user's declared certificate stayed in the keychain")
	}
}

// TestCredentialDataBounded: a server's many large certificate assets
// cannot make a channel keep more than a bounded amount of credential data
// (the saved file Load reads stays small enough): past the bound, assets
// fail with Error.AssetCannotBeDownloaded, and the device still saves and
// loads.
func TestCredentialDataBounded(t *testing.T) {
	ctx := t.Context()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPhone))
	srv.Enroll(dev)
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var decls []api.Declaration
	var confs []any
	const n = 24 // of 60 KB each: more than a channel keeps
	for i := range n {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: fmt.Sprintf("big %d", i)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: bytes.Repeat([]byte{4}, 60000)}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.HostData(ctx, fmt.Sprintf("big%d.der", i), "application/pkcs1", der)
		if err != nil {
			t.Fatal(err)
		}
		a, conf := fmt.Sprintf("asset.%02d", i), fmt.Sprintf("conf.%02d", i)
		decls = append(decls,
			api.Declaration{Type: "com.apple.asset.credential.certificate", Identifier: a, Payload: map[string]any{"Reference": map[string]any{"DataURL": h.URL}}},
			api.Declaration{Type: "com.apple.configuration.security.certificate", Identifier: conf, Payload: map[string]any{"CredentialAssetReference": a}})
		confs = append(confs, conf)
	}
	decls = append(decls, api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": confs}})
	got := assignAndReport(t, srv, dev, decls...)
	refused := 0
	for _, a := range got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["assets"].([]any) {
		r, _ := a.(map[string]any)["reasons"].([]any)
		if len(r) == 1 && r[0].(map[string]any)["code"] == "Error.AssetCannotBeDownloaded" {
			refused++
		}
	}
	if refused == 0 || refused == n {
		t.Errorf("%d of %d 60 KB certificate assets refused; want those past the channel's bound", refused, n)
	}
	path := filepath.Join(t.TempDir(), "iphone.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust())); err != nil {
		t.Errorf("the saved device does not load: %v", err)
	}
}

// TestDeclaredPKCS12Identity: a security.identity configuration with a
// PKCS #12 identity asset (Apple's IdentityCredential: the Identity base64,
// its Password) puts the identity, key included, in the keychain; a wrong
// password fails the asset with Error.AssetCannotBeDeserialized.
func TestDeclaredPKCS12Identity(t *testing.T) {
	ctx := t.Context()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.Mac))
	srv.Enroll(dev)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "PKCS12 identity"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p12, err := pkcs12.Modern.Encode(key, cert, nil, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	credential := func(password string) []byte {
		b, err := json.Marshal(map[string]any{"Identity": p12, "Password": password}) // []byte: base64, as JSON carries <data>
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	host := func(name string, data []byte) map[string]any {
		h, err := c.HostData(ctx, name, "application/json", data)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"DataURL": h.URL, "ContentType": "application/json"}
	}
	got := assignAndReport(t, srv, dev,
		api.Declaration{Type: "com.apple.asset.credential.identity", Identifier: "asset.good", Payload: map[string]any{"Reference": host("good.json", credential("s3cret"))}},
		api.Declaration{Type: "com.apple.asset.credential.identity", Identifier: "asset.wrong", Payload: map[string]any{"Reference": host("wrong.json", credential("guess"))}},
		api.Declaration{Type: "com.apple.configuration.security.identity", Identifier: "conf.good", Payload: map[string]any{"CredentialAssetReference": "asset.good"}},
		api.Declaration{Type: "com.apple.configuration.security.identity", Identifier: "conf.wrong", Payload: map[string]any{"CredentialAssetReference": "asset.wrong"}},
		api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": []any{"conf.good", "conf.wrong"}}})
	if !slices.ContainsFunc(dev.Identities(), func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, der) }) {
		t.Error("the PKCS #12 identity is not in the keychain")
	}
	for _, a := range got.Status.StatusItems["management"].(map[string]any)["declarations"].(map[string]any)["assets"].([]any) {
		a := a.(map[string]any)
		r, _ := a["reasons"].([]any)
		switch a["identifier"] {
		case "asset.good":
			if a["active"] != true || len(r) != 0 {
				t.Errorf("asset.good: %v", a)
			}
		case "asset.wrong":
			if len(r) != 1 || r[0].(map[string]any)["code"] != "Error.AssetCannotBeDeserialized" {
				t.Errorf("asset.wrong (a wrong password): %v", a)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "mac.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := device.Load(path, srv.Doer(), device.WithTrust(srv.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(back.Identities(), func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, der) }) {
		t.Error("Save/Load lost the PKCS #12 identity")
	}
}

// TestDeclaredIdentitiesPerSync: of ten PKCS #12 identity configurations,
// a sync makes eight identities and leaves the rest, saying so, to the
// next, which makes them.
func TestDeclaredIdentitiesPerSync(t *testing.T) {
	ctx := t.Context()
	srv := mdmtest.NewServer(t)
	c := srv.Client()
	dev := srv.NewDevice(device.WithModel(device.IPhone))
	srv.Enroll(dev)
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var decls []api.Declaration
	var confs []any
	const n = 10
	for i := range n {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(100 + i)), Subject: pkix.Name{CommonName: fmt.Sprintf("batch %d", i)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		p12, err := pkcs12.Modern.Encode(key, cert, nil, "pw")
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(map[string]any{"Identity": p12, "Password": "pw"})
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.HostData(ctx, fmt.Sprintf("id%d.json", i), "application/json", data)
		if err != nil {
			t.Fatal(err)
		}
		a, conf := fmt.Sprintf("asset.%02d", i), fmt.Sprintf("conf.%02d", i)
		decls = append(decls,
			api.Declaration{Type: "com.apple.asset.credential.identity", Identifier: a, Payload: map[string]any{"Reference": map[string]any{"DataURL": h.URL}}},
			api.Declaration{Type: "com.apple.configuration.security.identity", Identifier: conf, Payload: map[string]any{"CredentialAssetReference": a}})
		confs = append(confs, conf)
	}
	decls = append(decls, api.Declaration{Type: "com.apple.activation.simple", Identifier: "act", Payload: map[string]any{"StandardConfigurations": confs}})
	batch := func() int {
		k := 0
		for _, c := range dev.Identities() {
			if strings.HasPrefix(c.Subject.CommonName, "batch ") {
				k++
			}
		}
		return k
	}
	assignAndReport(t, srv, dev, decls...)
	if got := batch(); got != 8 {
		t.Errorf("after the first sync: %d identities, want 8", got)
	}
	list, _, _ := dev.Declarations("")
	left := 0
	for _, s := range list {
		if strings.Contains(s.Reason, "left to the next") {
			left++
		}
	}
	if left != 2 {
		t.Errorf("%d configurations say they are left to the next sync, want 2", left)
	}
	if err := dev.SyncDeclarations(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got := batch(); got != n {
		t.Errorf("after the second sync: %d identities, want %d", got, n)
	}
}
