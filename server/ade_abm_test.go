package server

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/micromdm/nanodep/client"
	"github.com/micromdm/nanodep/godep"
	"github.com/micromdm/nanodep/tokenpki"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/store"
)

type nanodepStore struct {
	tokens *client.OAuth1Tokens
	base   string
}

func (d *nanodepStore) RetrieveAuthTokens(context.Context, string) (*client.OAuth1Tokens, error) {
	return d.tokens, nil
}

func (d *nanodepStore) RetrieveConfig(context.Context, string) (*client.Config, error) {
	return &client.Config{BaseURL: d.base}, nil
}

// TestADEWithTheSimulatedABM runs Automated Device Enrollment through the
// whole server with nothing faked: the organisation buys the device in the
// simulated Apple Business Manager, an ADE enrollment profile defines and
// assigns its DEP profile there, NanoDEP — a DEP client nobody here wrote,
// holding a token issued for its own certificate — sees the assignment
// through Apple's API at the server's root, and the virtual device
// activates through the mock activation service and enrolls.
func TestADEWithTheSimulatedABM(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	key := s.PKI().APIKey
	admin := func(method, path string, body []byte, contentType string) []byte {
		t.Helper()
		rec := do(t, s, method, path, key, body, "Content-Type", contentType)
		if rec.Code >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}

	dev := device.New(handlerDoer{s.Handler()}, device.WithSeed(4242))
	serial := dev.SerialNumber()
	admin(http.MethodPost, "/v1/ade/devices", []byte(`{"serial_number":"`+serial+`","model":"iPad Pro","os":"iPadOS"}`), "application/json")
	prof, _ := json.Marshal(enroll.ADEProfile{Name: "corp", Supervised: true, Serials: []string{serial}})
	admin(http.MethodPut, "/v1/ade/profiles/corp", prof, "application/json")

	// NanoDEP, with a token we issued for its certificate.
	nkey, ncert, err := tokenpki.SelfSignedRSAKeypair("nanodep", 30)
	if err != nil {
		t.Fatal(err)
	}
	p7m := admin(http.MethodPost, "/v1/ade/tokens", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ncert.Raw}), "application/x-pem-file")
	js, err := tokenpki.DecryptTokenJSON(p7m, ncert, nkey)
	if err != nil {
		t.Fatalf("NanoDEP cannot decrypt the token issued for its certificate: %v", err)
	}
	var toks client.OAuth1Tokens
	if err := json.Unmarshal(js, &toks); err != nil || !toks.Valid() {
		t.Fatalf("token %s: %v", js, err)
	}
	dep := godep.NewClient(&nanodepStore{tokens: &toks, base: srv.URL + "/"})
	got, err := dep.FetchDevices(ctx, "mockmdm")
	if err != nil {
		t.Fatalf("NanoDEP fetch through the server's root: %v", err)
	}
	var uuid string
	for _, d := range got.Devices {
		if d.SerialNumber == serial {
			if d.ProfileUuid != nil {
				uuid = *d.ProfileUuid
			}
		}
	}
	if uuid == "" {
		t.Fatalf("NanoDEP does not see %s with a profile: %+v", serial, got.Devices)
	}
	p, err := dep.GetProfile(ctx, "mockmdm", uuid)
	if err != nil || p.Url == nil || !strings.HasSuffix(*p.Url, "/ade/enroll/corp") || p.IsSupervised == nil || !*p.IsSupervised {
		t.Fatalf("NanoDEP reads the profile the MDM defined: %+v, %v", p, err)
	}

	act, err := dev.Activate(ctx, s.URL(PathADEActivation), device.ActivateOptions{AppleDeviceCA: s.PKI().AppleDeviceCA})
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if !act.Install.Enrolled || !dev.Supervised() {
		t.Fatalf("enrolled %v, supervised %v", act.Install.Enrolled, dev.Supervised())
	}
	e, err := s.Store().GetEnrollment(ctx, dev.UDID())
	if err != nil {
		t.Fatal(err)
	}
	m := e.Management
	if m.Program != store.ProgramADE || m.Ownership != store.OwnershipCorporate || !m.Supervised || m.AuthMethod != enroll.AuthNone || m.TypeProfile != "corp" {
		t.Errorf("management %+v", m)
	}
	if body := admin(http.MethodGet, "/v1/ade/devices", nil, "application/json"); !bytes.Contains(body, []byte(`"pushed"`)) {
		t.Errorf("the simulated ABM did not record the profile as pushed: %s", body)
	}
}
