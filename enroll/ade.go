package enroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// Authentication methods of an ADE enrollment profile (seed 000), and
// "none" for an enrollment without user affinity.
const (
	AuthCompanyPortal  = "company-portal"
	AuthSetupAssistant = "setup-assistant"
	AuthModern         = "setup-assistant-modern"
	AuthNone           = "none"
)

// Document kinds of the ADE flow.
const (
	kindADEProfile = "ade-enrollment-profile"
	kindWebSession = "ade-web-session"
)

// ADEProfile is the MDM side's ADE enrollment profile — what Intune calls an
// enrollment profile: how devices assigned to it enroll. Saving one defines
// the DEP profile Apple hands the devices (through DEPDefiner) and assigns
// its serials.
type ADEProfile struct {
	Name string `json:"name"`
	// UserAffinity associates a user with the device; without it (kiosk,
	// shared devices) no user is prompted and the Company Portal is unused.
	UserAffinity bool `json:"user_affinity"`
	// AuthMethod is AuthCompanyPortal, AuthSetupAssistant or AuthModern
	// with user affinity; AuthNone (or empty) without.
	AuthMethod string `json:"auth_method"`
	// InstallCompanyPortal installs the Company Portal during enrollment;
	// with Setup Assistant (legacy) it locks the device until the user
	// signs in to it, which registers the device (seed 000).
	InstallCompanyPortal bool `json:"install_company_portal,omitempty"`
	Supervised           bool `json:"supervised"`
	Mandatory            bool `json:"mandatory"`
	Removable            bool `json:"removable"`
	// AwaitDeviceConfigured holds the device in Setup Assistant until the
	// server sends DeviceConfigured; AutoDeviceConfigured makes the server
	// send it as soon as the device reports AwaitingConfiguration.
	AwaitDeviceConfigured bool     `json:"await_device_configured"`
	AutoDeviceConfigured  bool     `json:"auto_device_configured,omitempty"`
	SharedIPad            bool     `json:"shared_ipad,omitempty"`
	SkipSetupItems        []string `json:"skip_setup_items,omitempty"`
	Department            string   `json:"department,omitempty"`
	SupportPhone          string   `json:"support_phone_number,omitempty"`
	// Serials are the devices assigned to the profile.
	Serials []string `json:"serials"`
	// DEPProfileUUID is what Apple's profile define returned.
	DEPProfileUUID string    `json:"dep_profile_uuid,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// DEPProfile is the profile defined with Apple's ADE API, with Apple's keys
// (the ade package validates it as Apple does).
type DEPProfile struct {
	ProfileName           string   `json:"profile_name"`
	URL                   string   `json:"url"`
	ConfigurationWebURL   string   `json:"configuration_web_url,omitempty"`
	IsSupervised          bool     `json:"is_supervised"`
	IsMandatory           bool     `json:"is_mandatory"`
	IsMDMRemovable        bool     `json:"is_mdm_removable"`
	AwaitDeviceConfigured bool     `json:"await_device_configured"`
	IsMultiUser           bool     `json:"is_multi_user,omitempty"`
	Department            string   `json:"department,omitempty"`
	SupportPhoneNumber    string   `json:"support_phone_number,omitempty"`
	SkipSetupItems        []string `json:"skip_setup_items,omitempty"`
	AnchorCerts           []string `json:"anchor_certs,omitempty"`
}

// DEPDefiner defines a DEP profile in the (simulated) Apple Business
// Manager and assigns it to serials; the server adapts the ade package.
type DEPDefiner interface {
	DefineAndAssign(ctx context.Context, profile DEPProfile, serials []string) (profileUUID string, err error)
}

// ADE is the MDM side of Automated Device Enrollment: the ADE enrollment
// profiles and the device-facing endpoints their DEP profiles point at.
type ADE struct {
	svc      *Service
	definer  DEPDefiner
	profiles Profiles
	verify   *certs.AppleDeviceVerifier
	base     string
	realm    string
	log      *slog.Logger
	anchors  []string
	webTTL   time.Duration
}

// ADEOption configures an ADE.
type ADEOption func(*ADE)

// WithADELogger sets the logger (nil: the service's).
func WithADELogger(l *slog.Logger) ADEOption { return func(a *ADE) { a.log = l } }

// WithAnchorCerts sets the DEP profile's anchor_certs (base64 DER), which
// pin the TLS trust of url for a real device.
func WithAnchorCerts(b64 []string) ADEOption { return func(a *ADE) { a.anchors = b64 } }

// WithBasicRealm sets the realm of the Setup Assistant (legacy) prompt.
func WithBasicRealm(realm string) ADEOption { return func(a *ADE) { a.realm = realm } }

// NewADE returns the ADE flow over svc. baseURL is the server's public URL
// (the DEP profile's url is baseURL/ade/enroll/{profile}); verify decides
// how MachineInfo signatures are checked.
func NewADE(svc *Service, definer DEPDefiner, p Profiles, verify *certs.AppleDeviceVerifier, baseURL string, opts ...ADEOption) *ADE {
	if svc == nil || definer == nil || p == nil || verify == nil || baseURL == "" {
		panic("enroll.NewADE: nil service, definer, profiles or verifier, or empty base URL")
	}
	a := &ADE{svc: svc, definer: definer, profiles: p, verify: verify, base: strings.TrimRight(baseURL, "/"), realm: "mockmdm Setup Assistant", webTTL: 30 * time.Minute}
	for _, o := range opts {
		o(a)
	}
	if a.log == nil {
		a.log = svc.log
	}
	return a
}

// Paths of the device-facing ADE endpoints.
const (
	PathADEEnroll = "/ade/enroll/"
	PathADEWeb    = "/ade/web/"
)

// EnrollURL and WebURL are a profile's DEP url and configuration_web_url.
func (a *ADE) EnrollURL(profile string) string { return a.base + PathADEEnroll + profile }
func (a *ADE) WebURL(profile string) string    { return a.base + PathADEWeb + profile }

func (p *ADEProfile) normalize() error {
	var err error
	if p.Name, err = profileName("ADE enrollment profile", p.Name); err != nil {
		return err
	}
	if !p.UserAffinity {
		if p.AuthMethod != "" && p.AuthMethod != AuthNone {
			return invalid("ADE profile %s: auth_method %q needs user_affinity; without user affinity no user authenticates", p.Name, p.AuthMethod)
		}
		p.AuthMethod = AuthNone
		if p.InstallCompanyPortal {
			return invalid("ADE profile %s: install_company_portal needs user_affinity (seed 000: no Company Portal without user affinity)", p.Name)
		}
	} else {
		switch p.AuthMethod {
		case AuthCompanyPortal, AuthModern:
			p.InstallCompanyPortal = true // both install it (seed 000)
		case AuthSetupAssistant:
		default:
			return invalid("ADE profile %s: auth_method %q must be %q, %q or %q with user affinity", p.Name, p.AuthMethod, AuthCompanyPortal, AuthSetupAssistant, AuthModern)
		}
		if p.SharedIPad {
			return invalid("ADE profile %s: Shared iPad enrolls without user affinity", p.Name)
		}
	}
	if p.AutoDeviceConfigured && !p.AwaitDeviceConfigured {
		return invalid("ADE profile %s: auto_device_configured needs await_device_configured", p.Name)
	}
	if p.SharedIPad {
		p.Supervised = true // Shared iPad requires supervision
	}
	p.Serials, err = profileSerials("ADE profile "+p.Name, p.Serials)
	return err
}

// DEPProfile is the DEP profile an ADE enrollment profile defines.
func (a *ADE) DEPProfile(p *ADEProfile) DEPProfile {
	d := DEPProfile{
		ProfileName: p.Name, URL: a.EnrollURL(p.Name),
		IsSupervised: p.Supervised, IsMandatory: p.Mandatory, IsMDMRemovable: p.Removable,
		AwaitDeviceConfigured: p.AwaitDeviceConfigured, IsMultiUser: p.SharedIPad,
		Department: p.Department, SupportPhoneNumber: p.SupportPhone,
		SkipSetupItems: p.SkipSetupItems, AnchorCerts: a.anchors,
	}
	if p.AuthMethod == AuthModern {
		d.ConfigurationWebURL = a.WebURL(p.Name)
	}
	return d
}

// PutProfile validates an ADE enrollment profile, defines its DEP profile
// and assigns its serials, then saves it. A refusal by the definer saves
// nothing.
func (a *ADE) PutProfile(ctx context.Context, p ADEProfile) (*ADEProfile, error) {
	if err := p.normalize(); err != nil {
		return nil, err
	}
	uuid, err := a.definer.DefineAndAssign(ctx, a.DEPProfile(&p), p.Serials)
	if err != nil {
		return nil, err
	}
	p.DEPProfileUUID = uuid
	p.UpdatedAt = a.svc.now().UTC()
	if err := a.svc.put(ctx, kindADEProfile, p.Name, p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Profile returns an ADE enrollment profile.
func (a *ADE) Profile(ctx context.Context, name string) (*ADEProfile, error) {
	return getDoc[ADEProfile](ctx, a.svc, kindADEProfile, name,
		refuse(http.StatusNotFound, CodeNoADEProfile, "no ADE enrollment profile %q on this server", name))
}

// Profiles lists the ADE enrollment profiles by name.
func (a *ADE) Profiles(ctx context.Context) ([]ADEProfile, error) {
	return list[ADEProfile](ctx, a.svc, kindADEProfile)
}

// management is what a profile decides for a device, before any user.
func (p *ADEProfile) management() store.Management {
	return store.Management{
		Program: store.ProgramADE, Mode: store.ModeDevice, Ownership: store.OwnershipCorporate,
		Supervised: p.Supervised, AuthMethod: p.AuthMethod, TypeProfile: p.Name,
	}
}

// machineInfo reads and verifies a device's MachineInfo and checks that
// its serial is assigned to the profile.
func (a *ADE) machineInfo(ctx context.Context, p *ADEProfile, der []byte) (*mdm.MachineInfo, error) {
	if _, err := a.verify.Verify(der); err != nil {
		return nil, err
	}
	m, err := mdm.ParseSignedMachineInfo(der)
	if err != nil && a.verify.Mode() == certs.VerifyOff && errors.Is(err, mdm.ErrMachineInfoNotSigned) {
		m, err = mdm.ParseMachineInfo(der) // off: a bare plist will do
	}
	if err != nil {
		return nil, err
	}
	if !slices.Contains(p.Serials, strings.ToUpper(m.Serial)) {
		return nil, refuse(http.StatusForbidden, CodeUnknownSerial, "serial %s is not assigned to ADE enrollment profile %s; assign it (PUT /v1/ade/profiles/%s)", m.Serial, p.Name, p.Name)
	}
	return m, nil
}

// issue records the decision as a ticket and builds the profile for it.
func (a *ADE) issue(ctx context.Context, m store.Management, serial string) ([]byte, error) {
	t, err := a.svc.IssueTicket(ctx, m, serial)
	if err != nil {
		return nil, err
	}
	b, err := a.profiles.EnrollmentProfile(ctx, ProfileRequest{Ticket: t.ID, Mode: store.ModeDevice})
	if err != nil {
		_ = a.svc.docs.DeleteDocument(ctx, kindTicket, t.ID)
		return nil, err
	}
	return b, nil
}

// serveEnroll is the DEP profile's url: POST the CMS-signed MachineInfo,
// get the enrollment profile.
func (a *ADE) serveEnroll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := a.Profile(ctx, r.PathValue("profile"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	der, err := readMachineInfoBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	mi, err := a.machineInfo(ctx, p, der)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := p.management()
	switch p.AuthMethod {
	case AuthNone:
		m.CompliantInMDM = true
	case AuthCompanyPortal:
		// Enrolled without the user; locked until the Company Portal
		// sign-in (Register) sets affinity and registers the device.
		m.Locked = true
	case AuthSetupAssistant:
		upn, pw, ok := r.BasicAuth()
		if !ok {
			a.challenge(w, r, refuse(http.StatusUnauthorized, CodeCredentialsRequired, "ADE profile %s authenticates the user in Setup Assistant: send the user's work account and password (HTTP Basic)", p.Name))
			return
		}
		u, err := a.svc.SignIn(ctx, Credentials{UPN: upn, Password: pw})
		if err != nil {
			if StatusOf(err) == http.StatusUnauthorized {
				a.challenge(w, r, err)
				return
			}
			a.fail(w, r, err)
			return
		}
		if err := a.svc.Restrict(ctx, store.ProgramADE, u, store.OwnershipCorporate); err != nil {
			a.fail(w, r, err)
			return
		}
		m.User, m.CompliantInMDM = u.UPN, true
		m.Locked = p.InstallCompanyPortal // the Company Portal locks the device until sign-in
	case AuthModern:
		a.fail(w, r, refuse(http.StatusForbidden, CodeUseWebAuth, "ADE profile %s uses Setup Assistant with modern authentication: load its configuration_web_url (%s) instead", p.Name, a.WebURL(p.Name)))
		return
	}
	body, err := a.issue(ctx, m, mi.Serial)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(ctx, "ADE enrollment profile served", "profile", p.Name, "serial", mi.Serial, "auth", p.AuthMethod, "user", m.User)
	w.Header().Set("Content-Type", profiles.ContentType)
	_, _ = w.Write(body)
}

// StatusOf is the HTTP status an error carries (500 when none).
func StatusOf(err error) int { return httperr.StatusOf(err) }

// challenge answers 401 with the Basic challenge Setup Assistant prompts on.
func (a *ADE) challenge(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", a.realm))
	a.fail(w, r, err)
}

// adeError is the JSON body of a refused ADE request, in the shape of
// Apple's enrollment errors (code, description).
type adeError struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

func (a *ADE) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := StatusOf(err)
	code := "internal_error"
	var e *Error
	var ce *certs.Error
	var pe *mdm.ParseError
	switch {
	case errors.As(err, &e):
		code = e.Code
	case errors.As(err, &ce):
		code = "machine_info_signature"
	case errors.As(err, &pe):
		code = "machine_info_invalid"
	case status < 500:
		code = "bad_request"
	}
	if status >= 500 {
		a.log.ErrorContext(r.Context(), "ADE request failed", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(adeError{Code: code, Description: httperr.ReasonOf(err)})
}

// readMachineInfoBody reads a body bounded to a MachineInfo's size.
func readMachineInfoBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, mdm.MaxMachineInfoSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, httperr.New(http.StatusRequestEntityTooLarge, "body is larger than %d bytes; a MachineInfo is a few kilobytes", mdm.MaxMachineInfoSize)
		}
		return nil, httperr.Wrap(http.StatusBadRequest, err, "reading the body")
	}
	return b, nil
}

// AutoDeviceConfigured reports whether the server should send
// DeviceConfigured to e now: an ADE enrollment awaiting configuration whose
// profile asks for it automatically.
func (a *ADE) AutoDeviceConfigured(ctx context.Context, e *store.Enrollment) bool {
	if !e.AwaitingConfiguration || e.Management.Program != store.ProgramADE || e.Management.TypeProfile == "" {
		return false
	}
	p, err := a.Profile(ctx, e.Management.TypeProfile)
	return err == nil && p.AutoDeviceConfigured
}

// Awaiting is an enrollment held in Setup Assistant.
type Awaiting struct {
	EnrollmentID string    `json:"enrollment_id"`
	SerialNumber string    `json:"serial_number,omitempty"`
	Profile      string    `json:"profile,omitempty"`
	Since        time.Time `json:"since"`
}

// AwaitingConfiguration lists the enrollments that reported
// AwaitingConfiguration and have not been released, with since when (their
// enrollment time: the TokenUpdate that reported it).
func (a *ADE) AwaitingConfiguration(ctx context.Context) ([]Awaiting, error) {
	es, err := a.svc.docs.ListEnrollments(ctx)
	if err != nil {
		return nil, err
	}
	out := []Awaiting{}
	for _, e := range es {
		if e.AwaitingConfiguration && e.Enrolled {
			out = append(out, Awaiting{EnrollmentID: e.ID, SerialNumber: e.SerialNumber, Profile: e.Management.TypeProfile, Since: e.EnrolledAt})
		}
	}
	return out, nil
}
