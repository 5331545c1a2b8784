package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/store"
)

// fakeABM is the DEPDefiner and the activation service: the lead swaps in
// the ade package.
type fakeABM struct {
	mu       sync.Mutex
	profiles map[string]enroll.DEPProfile // uuid → profile
	assigned map[string]string            // serial → uuid
}

func (f *fakeABM) DefineAndAssign(_ context.Context, p enroll.DEPProfile, serials []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "UUID-" + p.ProfileName
	f.profiles[id] = p
	for _, s := range serials {
		f.assigned[s] = id
	}
	return id, nil
}

func (f *fakeABM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Serial string `json:"serial_number"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.assigned[req.Serial]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"reason":"not assigned"}`))
		return
	}
	p := f.profiles[id]
	out, _ := json.Marshal(struct {
		enroll.DEPProfile
		ProfileUUID string `json:"profile_uuid"`
	}{p, id})
	_, _ = w.Write(out)
}

type adeEnv struct {
	s     *Server
	abm   *fakeABM
	apple *certs.AppleDeviceCA
	doer  handlerDoer
}

var (
	appleOnce sync.Once
	appleCA   *certs.AppleDeviceCA
)

func newADEEnv(t *testing.T, mode certs.MachineInfoVerify) *adeEnv {
	t.Helper()
	appleOnce.Do(func() {
		var err error
		if appleCA, err = certs.NewAppleDeviceCA(24 * time.Hour); err != nil {
			panic(err)
		}
	})
	abm := &fakeABM{profiles: map[string]enroll.DEPProfile{}, assigned: map[string]string{}}
	s := newTestServer(t, WithADEFlow(ADEFlowConfig{Definer: abm, AppleDeviceCA: appleCA.Certificate(), Verify: mode}))
	mux := http.NewServeMux()
	mux.Handle("/activation", abm)
	mux.Handle("/", s.Handler())
	ctx := context.Background()
	for _, u := range []enroll.User{
		{UPN: "user@contoso.com", Password: "Passw0rd!"},
		{UPN: "mfa@contoso.com", Password: "Passw0rd!", MFACode: "123456"},
		{UPN: "expired@contoso.com", Password: "OldPassw0rd", PasswordExpired: true},
		{UPN: "dem@contoso.com", Password: "Passw0rd!", DEM: true},
	} {
		if err := s.Programs().PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return &adeEnv{s: s, abm: abm, apple: appleCA, doer: handlerDoer{mux}}
}

func (e *adeEnv) api(t *testing.T, method, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return do(t, e.s, method, path, e.s.PKI().APIKey, b, "Content-Type", "application/json")
}

func (e *adeEnv) profile(t *testing.T, p enroll.ADEProfile) {
	t.Helper()
	if rec := e.api(t, http.MethodPut, "/v1/ade/profiles/"+p.Name, p); rec.Code != 200 {
		t.Fatalf("PUT ADE profile: %d %s", rec.Code, rec.Body)
	}
}

func (e *adeEnv) management(t *testing.T, dev *device.Device) store.Management {
	t.Helper()
	rec := e.api(t, http.MethodGet, "/v1/enrollments/"+dev.UDID(), nil)
	if rec.Code != 200 {
		t.Fatalf("GET enrollment: %d %s", rec.Code, rec.Body)
	}
	var got struct {
		Management            store.Management `json:"management"`
		AwaitingConfiguration bool             `json:"awaiting_configuration"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	got.Management.Ticket = ""
	return got.Management
}

func (e *adeEnv) device(seed int64) *device.Device {
	return device.New(e.doer, device.WithSeed(seed))
}

func TestADEPaths(t *testing.T) {
	ctx := context.Background()
	user := &device.SignIn{UPN: "user@contoso.com", Password: "Passw0rd!"}
	base := store.Management{Program: store.ProgramADE, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate, Supervised: true}
	with := func(f func(*store.Management)) store.Management { m := base; f(&m); return m }
	tests := []struct {
		name       string
		profile    enroll.ADEProfile
		user       *device.SignIn
		want       store.Management
		register   bool
		registered store.Management
	}{
		{"company portal", enroll.ADEProfile{UserAffinity: true, AuthMethod: enroll.AuthCompanyPortal, Supervised: true}, nil,
			with(func(m *store.Management) { m.AuthMethod, m.Locked = enroll.AuthCompanyPortal, true }), true,
			with(func(m *store.Management) {
				m.AuthMethod, m.User, m.Registered, m.CompliantInMDM, m.CompliantInDirectory = enroll.AuthCompanyPortal, "user@contoso.com", true, true, true
			})},
		{"setup assistant legacy with company portal", enroll.ADEProfile{UserAffinity: true, AuthMethod: enroll.AuthSetupAssistant, InstallCompanyPortal: true, Supervised: true}, user,
			with(func(m *store.Management) {
				m.AuthMethod, m.User, m.Locked, m.CompliantInMDM = enroll.AuthSetupAssistant, "user@contoso.com", true, true
			}), true,
			with(func(m *store.Management) {
				m.AuthMethod, m.User, m.Registered, m.CompliantInMDM, m.CompliantInDirectory = enroll.AuthSetupAssistant, "user@contoso.com", true, true, true
			})},
		{"setup assistant legacy without company portal", enroll.ADEProfile{UserAffinity: true, AuthMethod: enroll.AuthSetupAssistant, Supervised: true}, user,
			with(func(m *store.Management) {
				m.AuthMethod, m.User, m.CompliantInMDM = enroll.AuthSetupAssistant, "user@contoso.com", true
			}), false, store.Management{}},
		{"setup assistant modern", enroll.ADEProfile{UserAffinity: true, AuthMethod: enroll.AuthModern, Supervised: true},
			&device.SignIn{UPN: "mfa@contoso.com", Password: "Passw0rd!", MFACode: "123456"},
			with(func(m *store.Management) {
				m.AuthMethod, m.User, m.CompliantInMDM = enroll.AuthModern, "mfa@contoso.com", true
			}), true,
			with(func(m *store.Management) {
				m.AuthMethod, m.User, m.Registered, m.CompliantInMDM, m.CompliantInDirectory = enroll.AuthModern, "mfa@contoso.com", true, true, true
			})},
		{"modern with expired password", enroll.ADEProfile{UserAffinity: true, AuthMethod: enroll.AuthModern, Supervised: true},
			&device.SignIn{UPN: "expired@contoso.com", Password: "OldPassw0rd", NewPassword: "NewPassw0rd!"},
			with(func(m *store.Management) {
				m.AuthMethod, m.User, m.CompliantInMDM = enroll.AuthModern, "expired@contoso.com", true
			}), false, store.Management{}},
		{"no user affinity", enroll.ADEProfile{Supervised: true}, nil,
			with(func(m *store.Management) { m.AuthMethod, m.CompliantInMDM = enroll.AuthNone, true }), false, store.Management{}},
		{"shared iPad", enroll.ADEProfile{SharedIPad: true}, nil,
			with(func(m *store.Management) { m.AuthMethod, m.CompliantInMDM = enroll.AuthNone, true }), false, store.Management{}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newADEEnv(t, certs.VerifyStrict)
			dev := env.device(int64(1000 + i))
			tc.profile.Name = "p" + string(rune('a'+i))
			tc.profile.Serials = []string{dev.SerialNumber()}
			env.profile(t, tc.profile)
			act, err := dev.Activate(ctx, "https://albert.apple.test/activation", device.ActivateOptions{AppleDeviceCA: env.apple, User: tc.user})
			if err != nil {
				t.Fatalf("Activate: %v", err)
			}
			if !act.Install.Enrolled || !dev.Supervised() {
				t.Fatalf("enrolled %v supervised %v", act.Install.Enrolled, dev.Supervised())
			}
			tc.want.TypeProfile = tc.profile.Name
			if got := env.management(t, dev); got != tc.want {
				t.Fatalf("management\n got %+v\nwant %+v", got, tc.want)
			}
			if dev.SharedIPad() != tc.profile.SharedIPad {
				t.Fatalf("the device is a Shared iPad: %v; the profile says %v", dev.SharedIPad(), tc.profile.SharedIPad)
			}
			if tc.profile.SharedIPad {
				// A student signs in: the server gets the user's channel.
				if err := dev.LogIn(ctx, "student@contoso.com", "Student"); err != nil {
					t.Fatalf("LogIn: %v", err)
				}
				rec := env.api(t, http.MethodGet, "/v1/enrollments/"+dev.UDID()+":student@contoso.com", nil)
				if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"type":"SharedIPad"`) {
					t.Fatalf("the student's channel: %d %s", rec.Code, rec.Body)
				}
			}
			if !tc.register {
				return
			}
			regUser := tc.want.User
			if regUser == "" {
				regUser = "user@contoso.com"
			}
			c := enroll.Credentials{UPN: regUser, Password: "Passw0rd!"}
			if regUser == "mfa@contoso.com" {
				c.MFACode = "123456"
			}
			if _, err := env.s.Programs().Register(ctx, dev.UDID(), c); err != nil {
				t.Fatalf("Register: %v", err)
			}
			tc.registered.TypeProfile = tc.profile.Name
			if got := env.management(t, dev); got != tc.registered {
				t.Fatalf("after Register\n got %+v\nwant %+v", got, tc.registered)
			}
		})
	}
}

func TestADEAwaitDeviceConfigured(t *testing.T) {
	ctx := context.Background()
	env := newADEEnv(t, certs.VerifySignature)
	auto, manual := env.device(2001), env.device(2002)
	env.profile(t, enroll.ADEProfile{Name: "auto", Supervised: true, AwaitDeviceConfigured: true, AutoDeviceConfigured: true, Serials: []string{auto.SerialNumber()}})
	env.profile(t, enroll.ADEProfile{Name: "held", Supervised: true, AwaitDeviceConfigured: true, Serials: []string{manual.SerialNumber()}})

	act, err := auto.Activate(ctx, "https://albert.apple.test/activation", device.ActivateOptions{AppleDeviceCA: env.apple})
	if err != nil || !act.DeviceConfigured {
		t.Fatalf("automatic DeviceConfigured: %+v, %v", act, err)
	}
	_, err = manual.Activate(ctx, "https://albert.apple.test/activation", device.ActivateOptions{AppleDeviceCA: env.apple, AwaitSessions: 2})
	if !errors.Is(err, device.ErrAwaitingConfiguration) || !strings.Contains(err.Error(), "DeviceConfigured") {
		t.Fatalf("held device: %v, want ErrAwaitingConfiguration", err)
	}
	rec := env.api(t, http.MethodGet, "/v1/ade/awaiting", nil)
	var aw []enroll.Awaiting
	_ = json.Unmarshal(rec.Body.Bytes(), &aw)
	if len(aw) != 1 || aw[0].EnrollmentID != manual.UDID() || aw[0].Since.IsZero() {
		t.Fatalf("awaiting = %s", rec.Body)
	}
	// The admin releases it with DeviceConfigured; the next session ends Setup Assistant.
	raw := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceConfigured</string></dict></dict></plist>`
	if rec := env.api(t, http.MethodPost, "/v1/commands", map[string]any{"enrollment_ids": []string{manual.UDID()}, "raw_plist": raw, "push": false}); rec.Code >= 300 {
		t.Fatalf("enqueue DeviceConfigured: %d %s", rec.Code, rec.Body)
	}
	res, err := manual.Connect(ctx)
	if err != nil || len(res.Commands) != 1 {
		t.Fatalf("connect: %+v %v", res, err)
	}
}

// TestADEMacAccountConfiguration: a Mac that enrolled through ADE, held in
// Setup Assistant, gets AccountConfiguration (ADE-only in Apple's schema)
// and then DeviceConfigured: its admin and primary accounts become its
// users, SecurityInfo says EnrolledViaDEP, and the primary user logs in on
// a channel of its own.
func TestADEMacAccountConfiguration(t *testing.T) {
	ctx := context.Background()
	env := newADEEnv(t, certs.VerifySignature)
	mac := device.New(env.doer, device.WithSeed(2101), device.WithModel(device.Mac))
	env.profile(t, enroll.ADEProfile{Name: "mac", Supervised: true, AwaitDeviceConfigured: true, Serials: []string{mac.SerialNumber()}})
	if _, err := mac.Activate(ctx, "https://albert.apple.test/activation", device.ActivateOptions{AppleDeviceCA: env.apple, AwaitSessions: 1}); !errors.Is(err, device.ErrAwaitingConfiguration) {
		t.Fatalf("Activate: %v, want ErrAwaitingConfiguration", err)
	}
	enqueue := func(command string) {
		t.Helper()
		raw := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict>` + command + `</dict></dict></plist>`
		if rec := env.api(t, http.MethodPost, "/v1/commands", map[string]any{"enrollment_ids": []string{mac.UDID()}, "raw_plist": raw, "push": false}); rec.Code >= 300 {
			t.Fatalf("enqueue: %d %s", rec.Code, rec.Body)
		}
	}
	enqueue(`<key>RequestType</key><string>AccountConfiguration</string>` +
		`<key>AutoSetupAdminAccounts</key><array><dict><key>shortName</key><string>itadmin</string><key>fullName</key><string>IT Admin</string><key>hidden</key><true/></dict></array>` +
		`<key>PrimaryAccountUserName</key><string>ann</string><key>PrimaryAccountFullName</key><string>Ann Example</string>`)
	enqueue(`<key>RequestType</key><string>DeviceConfigured</string>`)
	enqueue(`<key>RequestType</key><string>SecurityInfo</string>`)
	res, err := mac.Connect(ctx)
	if err != nil || len(res.Commands) != 3 {
		t.Fatalf("connect: %+v %v", res, err)
	}
	for _, c := range res.Commands {
		if c.Status != "Acknowledged" {
			t.Errorf("%s: %s %+v", c.RequestType, c.Status, c.ErrorChain)
		}
	}
	if !bytes.Contains(res.Commands[2].Result, []byte("<key>EnrolledViaDEP</key><true/>")) {
		t.Errorf("SecurityInfo does not say EnrolledViaDEP:\n%s", res.Commands[2].Result)
	}
	users := mac.Users()
	if len(users) != 2 || users[0].ShortName != "itadmin" || users[1].ShortName != "ann" || users[1].FullName != "Ann Example" {
		t.Fatalf("users: %+v", users)
	}
	if err := mac.LogIn(ctx, "ann", "Ann Example"); err != nil {
		t.Fatalf("the primary account logs in: %v", err)
	}
	// The account existed before its channel: logging in gives it the
	// channel's push token, which ListenForUserPushes subscribes with.
	if u := mac.Users()[1]; len(u.PushToken) == 0 || !u.LoggedIn {
		t.Errorf("the primary account after its login: %+v", u)
	}
	if rec := env.api(t, http.MethodGet, "/v1/enrollments/"+mac.Users()[1].EnrollmentID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"user_long_name":"Ann Example"`) {
		t.Errorf("ann's channel: %d %s", rec.Code, rec.Body)
	}
}

func TestADEConfigurator(t *testing.T) {
	ctx := context.Background()
	env := newADEEnv(t, certs.VerifyStrict)
	dev, other := env.device(3001), env.device(3002)
	for _, p := range []enroll.ConfiguratorProfile{
		{Name: "affinity", UserAffinity: true, AuthMethod: enroll.AuthSetupAssistant, Supervised: true, Serials: []string{dev.SerialNumber()}},
		{Name: "direct", Supervised: true},
	} {
		if rec := env.api(t, http.MethodPut, "/v1/configurator/profiles/"+p.Name, p); rec.Code != 200 {
			t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
		}
	}
	// Not in the imported list: refused, nothing issued.
	if rec := env.api(t, http.MethodPost, "/v1/configurator/profiles/affinity/export", map[string]string{"serial": other.SerialNumber(), "upn": "user@contoso.com", "password": "Passw0rd!"}); rec.Code != 403 {
		t.Fatalf("foreign serial: %d %s", rec.Code, rec.Body)
	}
	// DEM accounts are refused.
	if rec := env.api(t, http.MethodPost, "/v1/configurator/profiles/affinity/export", map[string]string{"serial": dev.SerialNumber(), "upn": "dem@contoso.com", "password": "Passw0rd!"}); rec.Code != 403 || !strings.Contains(rec.Body.String(), "dem_not_allowed") {
		t.Fatalf("DEM: %d %s", rec.Code, rec.Body)
	}
	rec := env.api(t, http.MethodPost, "/v1/configurator/profiles/affinity/export", map[string]string{"serial": dev.SerialNumber(), "upn": "user@contoso.com", "password": "Passw0rd!"})
	if rec.Code != 200 {
		t.Fatalf("export: %d %s", rec.Code, rec.Body)
	}
	if _, err := dev.InstallConfiguratorProfile(ctx, rec.Body.Bytes(), true); err != nil {
		t.Fatal(err)
	}
	want := store.Management{Program: store.ProgramConfigurator, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate, Supervised: true,
		User: "user@contoso.com", AuthMethod: enroll.AuthSetupAssistant, TypeProfile: "affinity", CompliantInMDM: true}
	if got := env.management(t, dev); got != want {
		t.Fatalf("affinity\n got %+v\nwant %+v", got, want)
	}
	rec = env.api(t, http.MethodPost, "/v1/configurator/profiles/direct/export", nil)
	if rec.Code != 200 {
		t.Fatalf("direct export: %d %s", rec.Code, rec.Body)
	}
	if _, err := other.InstallConfiguratorProfile(ctx, rec.Body.Bytes(), true); err != nil {
		t.Fatal(err)
	}
	want = store.Management{Program: store.ProgramConfigurator, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate, Supervised: true,
		AuthMethod: enroll.AuthNone, TypeProfile: "direct", CompliantInMDM: true}
	if got := env.management(t, other); got != want {
		t.Fatalf("direct\n got %+v\nwant %+v", got, want)
	}
}

func TestADEBadInput(t *testing.T) {
	ctx := context.Background()
	env := newADEEnv(t, certs.VerifyStrict)
	dev := env.device(4001)
	env.profile(t, enroll.ADEProfile{Name: "none", Supervised: true, Serials: []string{dev.SerialNumber()}})
	env.profile(t, enroll.ADEProfile{Name: "legacy", UserAffinity: true, AuthMethod: enroll.AuthSetupAssistant, Serials: []string{dev.SerialNumber()}})
	env.profile(t, enroll.ADEProfile{Name: "modern", UserAffinity: true, AuthMethod: enroll.AuthModern, Serials: []string{dev.SerialNumber()}})
	good, err := dev.SignedMachineInfo(env.apple)
	if err != nil {
		t.Fatal(err)
	}
	foreignCA, _ := certs.NewAppleDeviceCA(time.Hour)
	foreign, _ := dev.SignedMachineInfo(foreignCA)
	bare, _ := dev.MachineInfo()
	stranger := env.device(4002)
	strangerMI, _ := stranger.SignedMachineInfo(env.apple)
	post := func(path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
		return do(t, env.s, http.MethodPost, path, "", body, append([]string{"Content-Type", "application/pkcs7-signature"}, hdr...)...)
	}
	cases := []struct {
		name, path string
		body       []byte
		hdr        []string
		status     int
		code       string
	}{
		{"not signed", "/ade/enroll/none", bare, nil, 400, "machine_info_signature"},
		{"other CA in strict mode", "/ade/enroll/none", foreign, nil, 400, "machine_info_signature"},
		{"garbage", "/ade/enroll/none", []byte("\x30\x03garbage"), nil, 400, "machine_info_signature"},
		{"unknown serial", "/ade/enroll/none", strangerMI, nil, 403, "unknown_serial"},
		{"unknown profile", "/ade/enroll/nope", good, nil, 404, "no_ade_profile"},
		{"no credentials", "/ade/enroll/legacy", good, nil, 401, "credentials_required"},
		{"wrong credentials", "/ade/enroll/legacy", good, []string{"Authorization", "Basic dXNlckBjb250b3NvLmNvbTp3cm9uZw=="}, 401, "wrong_password"},
		{"DEM account", "/ade/enroll/legacy", good, []string{"Authorization", "Basic ZGVtQGNvbnRvc28uY29tOlBhc3N3MHJkIQ=="}, 403, "dem_not_allowed"},
		{"modern refused at url", "/ade/enroll/modern", good, nil, 403, "use_configuration_web_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(tc.path, tc.body, tc.hdr...)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.code) {
				t.Fatalf("%d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic realm=") {
				t.Fatalf("401 without a Basic challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// MFA failure on the web page: the page says so, no profile.
	_, err = dev.Activate(ctx, "https://albert.apple.test/activation", device.ActivateOptions{AppleDeviceCA: env.apple, User: &device.SignIn{UPN: "mfa@contoso.com", Password: "Passw0rd!", MFACode: "000000"}})
	var se *device.ServerError
	if !errors.As(err, &se) || se.StatusCode != 401 || !strings.Contains(se.Error(), "verification code") {
		t.Fatalf("MFA failure: %v", err)
	}
	// Nothing half-created: no enrollment, no ticket.
	rec := env.api(t, http.MethodGet, "/v1/enrollments", nil)
	if bytes.Contains(rec.Body.Bytes(), []byte(dev.UDID())) {
		t.Fatalf("refused device enrolled: %s", rec.Body)
	}
	if docs, _ := env.s.Store().ListDocuments(ctx, "enrollment-ticket"); len(docs) != 0 {
		t.Fatalf("%d tickets left behind", len(docs))
	}
}
