package device_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/mdm/schema"
	"github.com/mockmdm/mockmdm/server/mdmtest"
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
