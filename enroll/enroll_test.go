package enroll_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/enroll"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

func newService(t *testing.T, opts ...enroll.Option) (*enroll.Service, *memory.Store) {
	t.Helper()
	st := memory.New()
	s := enroll.New(st, opts...)
	data, err := os.ReadFile("../testdata/directory/contoso.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LoadConfig(context.Background(), "contoso.yaml", data); err != nil {
		t.Fatal(err)
	}
	return s, st
}

func code(err error) string {
	if e, ok := enroll.ErrorOf(err); ok {
		return e.Code
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestSignIn(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		c      enroll.Credentials
		code   string
		status int
	}{
		{"ok", enroll.Credentials{UPN: "User@Contoso.com", Password: "Passw0rd!"}, "", 0},
		{"unknown user", enroll.Credentials{UPN: "ghost@contoso.com", Password: "x"}, enroll.CodeUnknownUser, 401},
		{"empty user", enroll.Credentials{Password: "x"}, enroll.CodeUnknownUser, 401},
		{"wrong password", enroll.Credentials{UPN: "user@contoso.com", Password: "nope"}, enroll.CodeWrongPassword, 401},
		{"mfa missing", enroll.Credentials{UPN: "mfa@contoso.com", Password: "Passw0rd!"}, enroll.CodeMFARequired, 401},
		{"mfa wrong", enroll.Credentials{UPN: "mfa@contoso.com", Password: "Passw0rd!", MFACode: "000000"}, enroll.CodeMFAFailed, 401},
		{"mfa ok", enroll.Credentials{UPN: "mfa@contoso.com", Password: "Passw0rd!", MFACode: "123456"}, "", 0},
		{"expired", enroll.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd"}, enroll.CodePasswordExpired, 401},
		{"expired weak new", enroll.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd", NewPassword: "short"}, enroll.CodeWeakPassword, 400},
		{"expired changed", enroll.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd", NewPassword: "NewPassw0rd!"}, "", 0},
		{"old password after change", enroll.Credentials{UPN: "expired@contoso.com", Password: "OldPassw0rd"}, enroll.CodeWrongPassword, 401},
		{"new password works", enroll.Credentials{UPN: "expired@contoso.com", Password: "NewPassw0rd!"}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := s.SignIn(ctx, tc.c)
			if got := code(err); got != tc.code {
				t.Fatalf("SignIn code = %q (%v), want %q", got, err, tc.code)
			}
			if err != nil {
				if st := httperr.StatusOf(err); st != tc.status {
					t.Errorf("status %d, want %d", st, tc.status)
				}
				if !strings.Contains(err.Error(), "@") && tc.code != enroll.CodeUnknownUser {
					t.Errorf("message %q does not name the account", err)
				}
				return
			}
			if u == nil || !strings.EqualFold(u.UPN, tc.c.UPN) {
				t.Errorf("signed in %+v", u)
			}
		})
	}
}

// TestDecide is seed 002's table of enrollment types and choices.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		typ       string
		choice    enroll.Choice
		mode, own string
		code      string
	}{
		{enroll.TypeUserEnrollment, enroll.Choice{}, store.ModeUserEnrollment, store.OwnershipPersonal, ""},
		{enroll.TypeDeviceEnrollment, enroll.Choice{}, store.ModeDevice, store.OwnershipCorporate, ""},
		{enroll.TypeWeb, enroll.Choice{}, store.ModeDevice, store.OwnershipCorporate, ""},
		{enroll.TypeAccountDriven, enroll.Choice{}, store.ModeUserEnrollment, store.OwnershipPersonal, ""},
		{enroll.TypeUserChoice, enroll.Choice{Ownership: "corporate"}, store.ModeDevice, store.OwnershipCorporate, ""},
		{enroll.TypeUserChoice, enroll.Choice{Ownership: "personal", Scope: "device"}, store.ModeDevice, store.OwnershipPersonal, ""},
		{enroll.TypeUserChoice, enroll.Choice{Ownership: "personal", Scope: "work"}, store.ModeUserEnrollment, store.OwnershipPersonal, ""},
		{enroll.TypeUserChoice, enroll.Choice{}, "", "", enroll.CodeChoiceRequired},
		{enroll.TypeUserChoice, enroll.Choice{Ownership: "personal"}, "", "", enroll.CodeChoiceRequired},
		{enroll.TypeUserChoice, enroll.Choice{Ownership: "mine"}, "", "", enroll.CodeBadChoice},
		{enroll.TypeUserChoice, enroll.Choice{Ownership: "personal", Scope: "all"}, "", "", enroll.CodeBadChoice},
		{"bogus", enroll.Choice{}, "", "", enroll.CodeInvalid},
	} {
		out, err := enroll.Decide(tc.typ, tc.choice)
		if code(err) != tc.code || out.Mode != tc.mode || out.Ownership != tc.own {
			t.Errorf("Decide(%s, %+v) = %+v, %v; want %s %s %q", tc.typ, tc.choice, out, err, tc.mode, tc.own, tc.code)
		}
	}
}

func TestTypeProfiles(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	u, _ := s.User(ctx, "chooser@contoso.com")
	p, err := s.TypeProfileFor(ctx, u)
	if err != nil || p.Name != "BYOD user choice" {
		t.Fatalf("TypeProfileFor chooser = %+v, %v", p, err)
	}
	// A higher-priority profile on a second group of the same user wins.
	u.Groups = append(u.Groups, "byod-users")
	if err := s.PutUser(ctx, *u); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTypeProfile(ctx, enroll.TypeProfile{Name: "BYOD user enrollment", Type: enroll.TypeUserEnrollment, Groups: []string{"byod-users"}, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTypeProfile(ctx, enroll.TypeProfile{Name: "BYOD user choice", Type: enroll.TypeUserChoice, Groups: []string{"byod-choice"}, Priority: 5}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.TypeProfileFor(ctx, u); p.Name != "BYOD user enrollment" {
		t.Errorf("after reprioritising, %s applies, want BYOD user enrollment", p.Name)
	}
	nobody, _ := s.User(ctx, "nobody@contoso.com")
	if _, err := s.TypeProfileFor(ctx, nobody); code(err) != enroll.CodeNoTypeProfile || httperr.StatusOf(err) != http.StatusForbidden {
		t.Errorf("user without a profile: %v", err)
	}
	err = s.PutTypeProfile(ctx, enroll.TypeProfile{Name: "iPads", Type: enroll.TypeDeviceEnrollment, Groups: []string{"corporate-ipads"}, Priority: 9})
	if code(err) != enroll.CodeDeviceGroup || !strings.Contains(err.Error(), "user groups only") {
		t.Errorf("assignment to a device group: %v", err)
	}
	if ps, _ := s.TypeProfiles(ctx); len(ps) != 4 {
		t.Errorf("the refused profile was stored: %d profiles", len(ps))
	}
	for _, bad := range []enroll.TypeProfile{
		{Name: "", Type: enroll.TypeWeb, Priority: 1},
		{Name: "x", Type: "nonsense", Priority: 1},
		{Name: "x", Type: enroll.TypeWeb, Priority: 0},
		{Name: "x", Type: enroll.TypeWeb, Priority: 1, Groups: []string{"missing"}},
	} {
		if err := s.PutTypeProfile(ctx, bad); httperr.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("PutTypeProfile(%+v) = %v, want a 400", bad, err)
		}
	}
}

func TestRestrict(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	dem, _ := s.User(ctx, "dem@contoso.com")
	if err := s.Restrict(ctx, store.ProgramCompanyPortal, dem, store.OwnershipPersonal); err != nil {
		t.Errorf("DEM for BYOD: %v", err)
	}
	for _, p := range []string{store.ProgramADE, store.ProgramConfigurator} {
		if err := s.Restrict(ctx, p, dem, store.OwnershipCorporate); code(err) != enroll.CodeDEMNotAllowed {
			t.Errorf("DEM for %s: %v, want %s", p, err, enroll.CodeDEMNotAllowed)
		}
	}
	if err := s.PutSettings(ctx, enroll.Settings{BlockPersonal: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Restrict(ctx, store.ProgramCompanyPortal, nil, store.OwnershipPersonal); code(err) != enroll.CodePersonalBlocked || !strings.Contains(err.Error(), "Contoso") {
		t.Errorf("blocked personal: %v", err)
	}
	if err := s.Restrict(ctx, store.ProgramCompanyPortal, nil, store.OwnershipCorporate); err != nil {
		t.Errorf("corporate while personal blocked: %v", err)
	}
}

func TestAdmit(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, _ := newService(t, enroll.WithClock(clock), enroll.WithTicketTTL(time.Hour))
	ctx := context.Background()
	m := store.Management{Program: store.ProgramCompanyPortal, Mode: store.ModeDevice, Ownership: store.OwnershipPersonal, User: "user@contoso.com", AuthMethod: "company-portal"}
	tk, err := s.IssueTicket(ctx, m, "SERIAL1")
	if err != nil {
		t.Fatal(err)
	}
	q := func(id string) url.Values { return url.Values{enroll.TicketParam: {id}} }

	plain := &store.Enrollment{ID: "UDID-0", UDID: "UDID-0"}
	if err := s.Admit(ctx, url.Values{}, plain); err != nil || plain.Management.Program != store.ProgramProfile || plain.Management.Mode != store.ModeDevice {
		t.Errorf("no ticket: %+v, %v", plain.Management, err)
	}
	for _, tc := range []struct {
		name string
		q    url.Values
		e    store.Enrollment
		want string
	}{
		{"unknown ticket", q("nope"), store.Enrollment{ID: "A", UDID: "A"}, "unknown"},
		{"user enrollment with a device ticket", q(tk.ID), store.Enrollment{ID: "B", EnrollmentID: "B"}, "User Enrollment"},
		{"wrong serial", q(tk.ID), store.Enrollment{ID: "C", UDID: "C", SerialNumber: "OTHER"}, "serial SERIAL1"},
	} {
		e := tc.e
		err := s.Admit(ctx, tc.q, &e)
		if code(err) != enroll.CodeBadTicket || !strings.Contains(err.Error(), tc.want) || httperr.StatusOf(err) != http.StatusForbidden {
			t.Errorf("%s: %v, want a 403 %s naming %q", tc.name, err, enroll.CodeBadTicket, tc.want)
		}
	}
	e := &store.Enrollment{ID: "UDID-1", UDID: "UDID-1", SerialNumber: "serial1"}
	if err := s.Admit(ctx, q(tk.ID), e); err != nil {
		t.Fatal(err)
	}
	if e.Management.User != "user@contoso.com" || e.Management.Ticket != tk.ID || e.Management.Ownership != store.OwnershipPersonal {
		t.Errorf("admitted %+v", e.Management)
	}
	if err := s.Admit(ctx, q(tk.ID), &store.Enrollment{ID: "UDID-1", UDID: "UDID-1"}); err != nil {
		t.Errorf("the same device authenticating again: %v", err)
	}
	if err := s.Admit(ctx, q(tk.ID), &store.Enrollment{ID: "UDID-2", UDID: "UDID-2"}); !strings.Contains(fmtErr(err), "already enrolled UDID-1") {
		t.Errorf("a second device with the same ticket: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if err := s.Admit(ctx, q(tk.ID), &store.Enrollment{ID: "UDID-1", UDID: "UDID-1"}); !strings.Contains(fmtErr(err), "expired") {
		t.Errorf("expired ticket: %v", err)
	}
	if got := enroll.TicketURL("https://h/checkin", "ab c"); got != "https://h/checkin?ticket=ab+c" {
		t.Errorf("TicketURL = %s", got)
	}
	if got := enroll.TicketURL("https://h/checkin?x=1", "t"); got != "https://h/checkin?x=1&ticket=t" {
		t.Errorf("TicketURL = %s", got)
	}
}

func TestRegister(t *testing.T) {
	s, st := newService(t)
	ctx := context.Background()
	put := func(id string, m store.Management, enrolled bool) {
		if err := st.PutEnrollment(ctx, &store.Enrollment{ID: id, UDID: id, Enrolled: enrolled, Management: m}); err != nil {
			t.Fatal(err)
		}
	}
	put("ADE-CP", store.Management{Program: store.ProgramADE, AuthMethod: "company-portal", Ownership: "corporate", Locked: true}, true)
	put("ADE-NONE", store.Management{Program: store.ProgramADE, AuthMethod: "none", Ownership: "corporate"}, true)
	put("MODERN", store.Management{Program: store.ProgramADE, AuthMethod: "setup-assistant-modern", User: "user@contoso.com", CompliantInMDM: true}, true)
	put("PENDING", store.Management{Program: store.ProgramADE, AuthMethod: "company-portal"}, false)
	good := enroll.Credentials{UPN: "user@contoso.com", Password: "Passw0rd!"}

	e, err := s.Register(ctx, "ADE-CP", good)
	if err != nil || !e.Management.Registered || e.Management.Locked || e.Management.User != "user@contoso.com" {
		t.Fatalf("Register ADE-CP = %+v, %v", e, err)
	}
	if e, err := s.Register(ctx, "MODERN", good); err != nil || !e.Management.CompliantInDirectory {
		t.Errorf("Register MODERN = %+v, %v", e, err)
	}
	if _, err := s.Register(ctx, "MODERN", enroll.Credentials{UPN: "web@contoso.com", Password: "Passw0rd!"}); !strings.Contains(fmtErr(err), "belongs to user@contoso.com") {
		t.Errorf("another user on an affiliated device: %v", err)
	}
	if _, err := s.Register(ctx, "ADE-NONE", good); !strings.Contains(fmtErr(err), "without user affinity") {
		t.Errorf("no affinity: %v", err)
	}
	if _, err := s.Register(ctx, "PENDING", good); httperr.StatusOf(err) != http.StatusConflict {
		t.Errorf("not enrolled: %v", err)
	}
	if _, err := s.Register(ctx, "ADE-CP", enroll.Credentials{UPN: "user@contoso.com", Password: "bad"}); code(err) != enroll.CodeWrongPassword {
		t.Errorf("bad password: %v", err)
	}
	if _, err := s.Register(ctx, "GHOST", good); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown enrollment: %v", err)
	}
	if e, err := s.SetOwnership(ctx, "ADE-NONE", store.OwnershipPersonal); err != nil || e.Management.Ownership != "personal" {
		t.Errorf("SetOwnership: %+v %v", e, err)
	}
	if _, err := s.SetOwnership(ctx, "ADE-NONE", "yours"); httperr.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("SetOwnership bad value: %v", err)
	}
}

func TestConfigErrorsNameTheLine(t *testing.T) {
	s := enroll.New(memory.New())
	ctx := context.Background()
	for _, tc := range []struct{ name, data, want string }{
		{"not yaml", "users: [", "bad.yaml"},
		{"unknown key", "userz: []\n", "userz"},
		{"wrong type", "users: 3\n", "bad.yaml"},
		{"bad user", "groups:\n  - {name: g}\nusers:\n  - upn: notanaddress\n    password: x\n", "bad.yaml:4: users[0]"},
		{"device group", "groups:\n  - {name: d, kind: device}\nenrollment_type_profiles:\n  - {name: p, type: web, priority: 1, groups: [d]}\n", "bad.yaml:4: enrollment_type_profiles[0]"},
		{"unknown type", "enrollment_type_profiles:\n  - {name: p, type: nope, priority: 1}\n", "not one of"},
	} {
		err := s.LoadConfig(ctx, "bad.yaml", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// FuzzParseConfig: a config file is untrusted input; parsing must never
// panic, and what parses must re-apply without panicking either.
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile("../testdata/directory/contoso.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("users: [{upn: a@b.c, password: x, groups: [g]}]\ngroups: [{name: g}]\n"))
	f.Add([]byte("enrollment_type_profiles: [{name: p, type: web, priority: 1}]"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		if _, _, err := enroll.ParseConfig("fuzz.yaml", data); err != nil {
			return
		}
		s := enroll.New(memory.New())
		_ = s.LoadConfig(context.Background(), "fuzz.yaml", data)
	})
}
