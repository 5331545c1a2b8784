package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/enroll"
)

// TestADEDeviceIdentity: a virtual device outside the server's process
// takes an identity from POST /v1/ade/device-identities and activates
// against a server whose MachineInfo verification is strict (the signer
// must chain to the mock Apple device CA); without it, it is refused.
func TestADEDeviceIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newTestServer(t, WithADEFlow(ADEFlowConfig{Verify: certs.VerifyStrict}))
	key := s.PKI().APIKey
	admin := func(method, path string, body any) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		rec := do(t, s, method, path, key, b, "Content-Type", "application/json")
		if rec.Code >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	dev := device.New(handlerDoer{s.Handler()}, device.WithSeed(5150))
	admin(http.MethodPost, "/v1/ade/devices", map[string]string{"serial_number": dev.SerialNumber(), "os": "iPadOS"})
	admin(http.MethodPut, "/v1/ade/profiles/strict", enroll.ADEProfile{Name: "strict", Supervised: true, Serials: []string{dev.SerialNumber()}})

	// Unsigned (no CA, no identity): strict mode refuses it.
	_, err := dev.Activate(ctx, s.URL(PathADEActivation), device.ActivateOptions{})
	var se *device.ServerError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("unsigned MachineInfo in strict mode: %v", err)
	}

	var id DeviceIdentity
	if err := json.Unmarshal(admin(http.MethodPost, PathADEDeviceIdentities, DeviceIdentityRequest{SerialNumber: dev.SerialNumber(), UDID: dev.UDID(), Validity: "2h"}), &id); err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode([]byte(id.Certificate))
	kb, _ := pem.Decode([]byte(id.PrivateKey))
	if cb == nil || kb == nil || cb.Type != "CERTIFICATE" || kb.Type != "PRIVATE KEY" {
		t.Fatalf("identity is not PEM: %+v", id)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.PKI().AppleDeviceCA.Certificate())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the identity does not chain to the mock Apple device CA: %v", err)
	}
	if cert.Subject.CommonName != dev.UDID() || cert.Subject.SerialNumber != dev.SerialNumber() || cert.NotAfter.After(time.Now().Add(3*time.Hour)) {
		t.Fatalf("identity subject %v, not after %s", cert.Subject, cert.NotAfter)
	}
	if err := dev.SetAppleIdentity(cert, k); err != nil {
		t.Fatal(err)
	}
	act, err := dev.Activate(ctx, s.URL(PathADEActivation), device.ActivateOptions{})
	if err != nil || !act.Install.Enrolled {
		t.Fatalf("activation with the issued identity: %+v, %v", act, err)
	}
	if err := dev.SetAppleIdentity(cert, nil); err == nil {
		t.Error("an identity without its key was taken")
	}
}

// TestADEDeviceIdentityBadInput: every mistake is a 4xx that says what to
// send; nothing needs the API key less.
func TestADEDeviceIdentityBadInput(t *testing.T) {
	s := newTestServer(t)
	key := s.PKI().APIKey
	for _, tc := range []struct {
		name, key, body string
		status          int
		msg             string
	}{
		{"no API key", "", `{"serial_number":"A","udid":"B"}`, 401, ""},
		{"wrong API key", "nope", `{"serial_number":"A","udid":"B"}`, 401, ""},
		{"empty body", key, ``, 400, "must be JSON"},
		{"not JSON", key, `serial=A`, 400, "must be JSON"},
		{"unknown field", key, `{"serial_number":"A","udid":"B","colour":"red"}`, 400, "colour"},
		{"missing udid", key, `{"serial_number":"A"}`, 400, "give both serial_number and udid"},
		{"blank serial", key, `{"serial_number":"  ","udid":"B"}`, 400, "give both"},
		{"newline in udid", key, `{"serial_number":"A","udid":"B\nC"}`, 400, "not a device identifier"},
		{"long serial", key, `{"serial_number":"` + strings.Repeat("S", 65) + `","udid":"B"}`, 400, "not a device identifier"},
		{"bad validity", key, `{"serial_number":"A","udid":"B","validity":"forever"}`, 400, "validity"},
		{"negative validity", key, `{"serial_number":"A","udid":"B","validity":"-1h"}`, 400, "validity"},
		{"validity too long", key, `{"serial_number":"A","udid":"B","validity":"9000h"}`, 400, "validity"},
		{"too large", key, `{"serial_number":"` + strings.Repeat("S", 5000) + `"}`, 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, s, http.MethodPost, PathADEDeviceIdentities, tc.key, []byte(tc.body), "Content-Type", "application/json")
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.msg) {
				t.Fatalf("%d %s, want %d containing %q", rec.Code, rec.Body, tc.status, tc.msg)
			}
		})
	}
	if rec := do(t, s, http.MethodGet, PathADEDeviceIdentities, key, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}
