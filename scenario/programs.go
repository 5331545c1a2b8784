package scenario

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/server"
)

// The enrollment programs of seeds 000 and 002 as enrollment paths. Each
// drives the virtual device through the server's device-facing endpoints
// exactly as the device package's entry points do; the scenario sets up
// what the program needs (directory, ADE and Configurator profiles) with
// api steps, and asserts the outcome on enrollment.management.*.

// Sign-in parameters shared by the paths that ask a user.
var (
	paramUser        = Param{Name: "user", Doc: "the organisation user who signs in (user@contoso.com)"}
	paramPassword    = Param{Name: "password", Doc: "the user's password"}
	paramMFA         = Param{Name: "mfa_code", Doc: "the MFA code, for a user who has one"}
	paramNewPassword = Param{Name: "new_password", Doc: "the new password, for a user whose password has expired"}
)

func required(p Param) Param { p.Required = true; return p }

func init() {
	RegisterPathParams("ade", []Param{
		{Name: "profile", Doc: "the ADE enrollment profile (PUT /v1/ade/profiles/NAME) to assign the device to: the path buys the device into the simulated Apple Business Manager and adds its serial to the profile; without it the scenario has assigned the device itself"},
		paramUser, paramPassword, paramMFA, paramNewPassword,
	}, adePath)
	RegisterPathParams("configurator", []Param{
		{Name: "profile", Required: true, Doc: "the Apple Configurator profile (PUT /v1/configurator/profiles/NAME) to export and install over USB"},
		paramUser, paramPassword,
		{Name: "supervised", Values: []string{"true", "false"}, Doc: "whether Apple Configurator supervises the device while installing (default true)"},
	}, configuratorPath)
	RegisterPathParams("company-portal", []Param{
		required(paramUser), required(paramPassword),
		{Name: "ownership", Values: []string{"corporate", "personal"}, Doc: `the answer to "who owns this device" (user choice profiles)`},
		{Name: "scope", Values: []string{"device", "work"}, Doc: `for a personal device: "secure entire device" (device) or "work-related apps and data only" (work)`},
		paramMFA, paramNewPassword,
	}, companyPortalPath)
	RegisterPathParams("web", []Param{required(paramUser), required(paramPassword), paramMFA, paramNewPassword}, webPath)
	RegisterPathParams("account-driven", []Param{
		required(paramUser), required(paramPassword),
		{Name: "managed_apple_id", Doc: "what the person types in Settings (default: user)"},
		paramMFA, paramNewPassword,
	}, accountDrivenPath)
}

func credentials(p map[string]string) device.Credentials {
	return device.Credentials{UPN: p["user"], Password: p["password"], MFACode: p["mfa_code"], NewPassword: p["new_password"]}
}

// call is a REST call with the runner's key, for paths that set up what
// the device needs (the ABM assignment, a device identity, an export).
func (env *PathEnv) call(ctx context.Context, method, path string, in any, out any) ([]byte, error) {
	r := &run{target: &Target{BaseURL: env.BaseURL, APIKey: env.APIKey, HTTP: env.HTTP}}
	var body []byte
	ct := ""
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
		ct = "application/json"
	}
	resp, err := r.callRaw(ctx, method, path, ct, body)
	if err != nil {
		return nil, err
	}
	if resp.status < 200 || resp.status > 299 {
		return nil, &APIError{Method: method, Path: path, Status: resp.status, Message: clipAnswer(decodeAnswer(resp.body))}
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return nil, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return resp.body, nil
}

// APIError is a REST call of a path's set-up that the server refused.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: the server answered %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// adePath is Automated Device Enrollment: optionally assign the device to
// an ADE profile in the simulated ABM, give it an Apple identity, and let
// it activate at the mock activation service, answering the sign-in its
// profile asks for (Setup Assistant legacy or modern authentication).
func adePath(ctx context.Context, env *PathEnv) (string, error) {
	dev := env.Device
	if name := env.Params["profile"]; name != "" {
		if err := assignADE(ctx, env, name); err != nil {
			return "", err
		}
	}
	opts := device.ActivateOptions{AppleDeviceCA: env.AppleDeviceCA}
	if opts.AppleDeviceCA == nil {
		if err := fetchAppleIdentity(ctx, env); err != nil {
			return "", err
		}
	}
	if env.Params["user"] != "" {
		c := credentials(env.Params)
		opts.User = &device.SignIn{UPN: c.UPN, Password: c.Password, MFACode: c.MFACode, NewPassword: c.NewPassword}
	}
	act, err := dev.Activate(ctx, env.BaseURL+server.PathADEActivation, opts)
	if err != nil {
		return "", err
	}
	if act.Install == nil || !act.Install.Enrolled {
		return "", errors.New("the device installed its ADE profile but did not enroll")
	}
	return dev.UDID(), nil
}

// assignADE buys the device into the organisation in the simulated ABM
// (a second purchase of a serial is harmless) and adds its serial to the
// ADE profile, which defines and assigns it there, as an administrator
// does in ABM and the MDM console.
func assignADE(ctx context.Context, env *PathEnv, name string) error {
	dev := env.Device
	family, osName := "iPhone", "iOS"
	switch {
	case dev.Model().IsMac():
		family, osName = "Mac", "OSX"
	case dev.Model().Family == "iPad":
		family, osName = "iPad", "iPadOS"
	}
	buy := map[string]string{"serial_number": dev.SerialNumber(), "model": dev.Model().ProductName, "device_family": family, "os": osName}
	if _, err := env.call(ctx, http.MethodPost, "/v1/ade/devices", buy, nil); err != nil {
		return fmt.Errorf("buying %s into the simulated Apple Business Manager: %w", dev.SerialNumber(), err)
	}
	p := "/v1/ade/profiles/" + url.PathEscape(name)
	var prof map[string]any
	if _, err := env.call(ctx, http.MethodGet, p, nil, &prof); err != nil {
		return fmt.Errorf("ADE profile %q (define it first with an api step: PUT %s): %w", name, p, err)
	}
	serials, _ := prof["serials"].([]any)
	prof["serials"] = append(serials, dev.SerialNumber())
	delete(prof, "dep_profile_uuid")
	delete(prof, "updated_at")
	if _, err := env.call(ctx, http.MethodPut, p, prof, nil); err != nil {
		return fmt.Errorf("assigning %s to ADE profile %q: %w", dev.SerialNumber(), name, err)
	}
	return nil
}

// fetchAppleIdentity asks a running server for an identity from its mock
// Apple device CA, which the device then signs its MachineInfo with.
func fetchAppleIdentity(ctx context.Context, env *PathEnv) error {
	dev := env.Device
	var id server.DeviceIdentity
	if _, err := env.call(ctx, http.MethodPost, server.PathADEDeviceIdentities,
		server.DeviceIdentityRequest{SerialNumber: dev.SerialNumber(), UDID: dev.UDID()}, &id); err != nil {
		return fmt.Errorf("getting the device's Apple identity: %w", err)
	}
	cb, _ := pem.Decode([]byte(id.Certificate))
	kb, _ := pem.Decode([]byte(id.PrivateKey))
	if cb == nil || kb == nil {
		return errors.New("the server's device identity is not a PEM certificate and key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fmt.Errorf("the server's device certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return fmt.Errorf("the server's device key: %w", err)
	}
	return dev.SetAppleIdentity(cert, key)
}

// configuratorPath is Apple Configurator: the profile exported for the
// device (its serial, and the user's credentials for Setup Assistant
// authentication) is installed over USB, supervising the device.
func configuratorPath(ctx context.Context, env *PathEnv) (string, error) {
	dev := env.Device
	x := map[string]string{"serial": dev.SerialNumber()}
	if env.Params["user"] != "" {
		x["upn"], x["password"] = env.Params["user"], env.Params["password"]
	}
	p := "/v1/configurator/profiles/" + url.PathEscape(env.Params["profile"]) + "/export"
	profile, err := env.call(ctx, http.MethodPost, p, x, nil)
	if err != nil {
		return "", fmt.Errorf("exporting the Apple Configurator profile: %w", err)
	}
	res, err := dev.InstallConfiguratorProfile(ctx, profile, env.Params["supervised"] != "false")
	if err != nil {
		return "", err
	}
	if !res.Enrolled {
		return "", errors.New("the device installed the exported profile but did not enroll")
	}
	return dev.UDID(), nil
}

// byodID is how the server knows a BYOD enrollment: the EnrollmentID of
// a User Enrollment, else the UDID.
func byodID(dev *device.Device, res *device.BYODResult) (string, error) {
	if res == nil || res.InstallResult == nil || !res.Enrolled {
		return "", errors.New("the device installed the profile but did not enroll")
	}
	if res.UserEnrollment {
		return dev.EnrollmentID(), nil
	}
	return dev.UDID(), nil
}

// companyPortalPath is the Company Portal app (seed 002): sign in, answer
// who owns the device and what to secure, install the profile.
func companyPortalPath(ctx context.Context, env *PathEnv) (string, error) {
	choice := device.Choice{Ownership: env.Params["ownership"], Scope: env.Params["scope"]}
	res, err := env.Device.CompanyPortalEnroll(ctx, env.BaseURL, credentials(env.Params), choice)
	if err != nil {
		return "", err
	}
	return byodID(env.Device, res)
}

// webPath is web-based device enrollment in Safari (iOS 15+).
func webPath(ctx context.Context, env *PathEnv) (string, error) {
	res, err := env.Device.WebEnroll(ctx, env.BaseURL, credentials(env.Params))
	if err != nil {
		return "", err
	}
	return byodID(env.Device, res)
}

// accountDrivenPath is account-driven User Enrollment: the person types
// their Managed Apple ID in Settings; discovery, sign-in and the profile
// follow.
func accountDrivenPath(ctx context.Context, env *PathEnv) (string, error) {
	id := env.Params["managed_apple_id"]
	if id == "" {
		id = env.Params["user"]
	}
	res, err := env.Device.AccountDrivenEnroll(ctx, env.BaseURL, id, credentials(env.Params))
	if err != nil {
		return "", err
	}
	return byodID(env.Device, res)
}

// ---- register --------------------------------------------------------------

// registerParams are the register step's "with:".
var registerParams = []Param{required(paramUser), required(paramPassword), paramMFA, paramNewPassword}

// registerAction is the Company Portal sign-in on an enrolled device,
// which completes user affinity and registers it with the organisation
// (seed 000: after ADE with Company Portal or modern authentication).
type registerAction struct {
	device string
	params map[string]string
	want   *errorWant
}

func (p *parser) registerStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, "with", "error"); err != nil {
		return nil, err
	}
	a := &registerAction{}
	var err error
	if a.device, err = p.deviceRef(m[KindRegister].value, field); err != nil {
		return nil, err
	}
	if a.params, err = p.withParams(m, field, "the register step", func() ([]Param, bool) { return registerParams, true }); err != nil {
		return nil, err
	}
	a.want, err = p.optErrorWant(m, field)
	return a, err
}

func (a *registerAction) summary() string {
	s := fmt.Sprintf("%s signs in to the Company Portal as %s", a.device, a.params["user"])
	if a.want != nil {
		s += ", expecting it to fail (" + a.want.String() + ")"
	}
	return s
}

func (a *registerAction) run(ctx context.Context, r *run) error {
	ds := r.devices[a.device]
	m, err := ds.dev.RegisterCompanyPortal(ctx, r.target.BaseURL, credentials(a.params))
	if a.want != nil {
		return a.want.check("Company Portal sign-in of "+a.device, err)
	}
	if err != nil {
		return fmt.Errorf("Company Portal sign-in of %s: %w", a.device, err)
	}
	var parts []string
	for _, k := range []string{"user", "registered", "locked"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	r.notef("%s registered: %s", a.device, strings.Join(parts, " "))
	return nil
}
