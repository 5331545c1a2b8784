package device

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
)

// DEPProfile is the cloud configuration the Apple activation service hands
// a device assigned to an ADE profile (Apple's keys).
type DEPProfile struct {
	ProfileName           string   `json:"profile_name"`
	ProfileUUID           string   `json:"profile_uuid"`
	URL                   string   `json:"url"`
	ConfigurationWebURL   string   `json:"configuration_web_url"`
	IsSupervised          bool     `json:"is_supervised"`
	IsMandatory           bool     `json:"is_mandatory"`
	IsMDMRemovable        bool     `json:"is_mdm_removable"`
	AwaitDeviceConfigured bool     `json:"await_device_configured"`
	IsMultiUser           bool     `json:"is_multi_user"`
	SkipSetupItems        []string `json:"skip_setup_items"`
	AnchorCerts           []string `json:"anchor_certs"`
}

// SignIn is what the user types when Setup Assistant asks: the Basic
// prompt of Setup Assistant (legacy), or the identity provider's page of
// configuration_web_url (with the MFA code and a new password when asked).
type SignIn struct {
	UPN, Password, MFACode, NewPassword string
}

// ActivateOptions configure Activate.
type ActivateOptions struct {
	// AppleDeviceCA issues the device's mock Apple identity, which signs
	// MachineInfo; nil signs with the identity SetAppleIdentity gave, or
	// sends the MachineInfo unsigned (a server in "off" mode accepts it,
	// others refuse it).
	AppleDeviceCA *certs.AppleDeviceCA
	// User answers the sign-in prompts; nil answers none.
	User *SignIn
	// AwaitSessions is how many command sessions the device runs waiting
	// for DeviceConfigured before it gives up (default 3).
	AwaitSessions int
}

// Activation is what Activate did.
type Activation struct {
	Profile DEPProfile
	Install *InstallResult
	// AwaitedConfiguration is set when the profile held the device in
	// Setup Assistant; DeviceConfigured tells whether the server released it.
	AwaitedConfiguration bool
	DeviceConfigured     bool
}

// ErrAwaitingConfiguration is matched by the error of an activation whose
// DeviceConfigured never came: the device is enrolled but stuck in Setup
// Assistant.
var ErrAwaitingConfiguration = errors.New("device: still in Setup Assistant: the server never sent DeviceConfigured")

// adeFlags is the per-device Setup Assistant state; kept beside Device so
// that the core type stays as it is.
var adeFlags sync.Map // *Device → *adeState

type adeState struct {
	mu         sync.Mutex
	awaiting   bool
	configured bool
}

func (d *Device) ade() *adeState {
	v, _ := adeFlags.LoadOrStore(d, &adeState{})
	return v.(*adeState)
}

// awaitingConfiguration is what TokenUpdate reports as AwaitingConfiguration.
func (d *Device) awaitingConfiguration() bool {
	v, ok := adeFlags.Load(d)
	if !ok {
		return false
	}
	s := v.(*adeState)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.awaiting
}

// MachineInfo is the device's MachineInfo plist (Apple's keys).
func (d *Device) MachineInfo() ([]byte, error) {
	version, build := d.OS()
	return encodePlist(mdm.MachineInfo{
		UDID: d.hw.UDID, Serial: d.hw.SerialNumber, Product: d.model.ProductName,
		Version: build, OSVersion: version, IMEI: d.hw.IMEI, Language: "en",
		MDMCanRequestSoftwareUpdate: true,
	})
}

// SignedMachineInfo is the MachineInfo signed with a fresh identity from
// the mock Apple device CA, as the device posts it; with no CA, it is
// signed with the identity SetAppleIdentity gave, or left unsigned.
func (d *Device) SignedMachineInfo(ca *certs.AppleDeviceCA) ([]byte, error) {
	mi, err := d.MachineInfo()
	if err != nil {
		return nil, err
	}
	if ca == nil {
		// A ready-made identity (SetAppleIdentity), else unsigned.
		if signed, ok, err := d.signWithAppleIdentity(mi); ok {
			return signed, err
		}
		return mi, nil
	}
	cert, key, err := ca.IssueDevice(d.hw.SerialNumber, d.hw.UDID, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	return certs.SignMachineInfo(mi, cert, key)
}

// Activate runs Automated Device Enrollment as Setup Assistant does: it
// asks the activation service (activationURL) for the DEP profile assigned
// to its serial, honours it (supervision, await_device_configured), gets
// the enrollment profile — from url with its signed MachineInfo (answering
// a Basic prompt with opts.User), or through configuration_web_url (the
// x-apple-aspen-deviceinfo header, then the sign-in form, until a response
// comes as application/x-apple-aspen-config) — installs it, and, when the
// profile awaits configuration, runs command sessions until DeviceConfigured
// arrives or gives up with ErrAwaitingConfiguration.
func (d *Device) Activate(ctx context.Context, activationURL string, opts ActivateOptions) (*Activation, error) {
	if opts.AwaitSessions <= 0 {
		opts.AwaitSessions = 3
	}
	act, err := d.activate(ctx, activationURL, opts)
	if err != nil || !act.AwaitedConfiguration {
		return act, err
	}
	st := d.ade()
	for range opts.AwaitSessions {
		if _, err := d.Connect(ctx); err != nil {
			return act, err
		}
		st.mu.Lock()
		done := st.configured
		st.mu.Unlock()
		if done {
			act.DeviceConfigured = true
			return act, d.releasedTokenUpdate(ctx)
		}
	}
	return act, fmt.Errorf("%w after %d command sessions (the ADE profile sets await_device_configured; send DeviceConfigured, or let the profile send it automatically)", ErrAwaitingConfiguration, opts.AwaitSessions)
}

func (d *Device) activate(ctx context.Context, activationURL string, opts ActivateOptions) (*Activation, error) {
	d.op.Lock()
	defer d.op.Unlock()
	const step = "activation"
	body, _ := json.Marshal(map[string]string{"serial_number": d.hw.SerialNumber})
	r, err := d.send(ctx, step, http.MethodPost, activationURL, "application/json", body, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, serverError(step, http.MethodPost, activationURL, r, "the activation service has no ADE profile for this device")
	}
	act := &Activation{}
	if err := json.Unmarshal(r.body, &act.Profile); err != nil {
		return nil, &ExchangeError{Step: step, URL: activationURL, Reason: "the activation service's answer is not a DEP profile", Err: err}
	}
	p := act.Profile
	if p.URL == "" && p.ConfigurationWebURL == "" {
		return nil, &ExchangeError{Step: step, URL: activationURL, Reason: "the DEP profile has neither url nor configuration_web_url"}
	}
	signed, err := d.SignedMachineInfo(opts.AppleDeviceCA)
	if err != nil {
		return nil, err
	}
	var profile []byte
	if p.ConfigurationWebURL != "" {
		profile, err = d.webAuth(ctx, p.ConfigurationWebURL, signed, opts.User)
	} else {
		profile, err = d.postMachineInfo(ctx, p.URL, signed, opts.User)
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.supervised = p.IsSupervised
	// Shared iPad is iPadOS only; an iPhone ignores is_multi_user.
	d.sharedIPad = p.IsMultiUser && d.model.Family == "iPad"
	d.mu.Unlock()
	st := d.ade()
	st.mu.Lock()
	st.awaiting, st.configured = p.AwaitDeviceConfigured, false
	st.mu.Unlock()
	if p.AwaitDeviceConfigured {
		d.Handle("DeviceConfigured", func(context.Context, *Device, *Command) Response {
			st.mu.Lock()
			st.awaiting, st.configured = false, true
			st.mu.Unlock()
			return Acknowledged(nil)
		})
	}
	res, err := d.install(ctx, profile, false)
	if err != nil {
		st.mu.Lock()
		st.awaiting = false
		st.mu.Unlock()
		return nil, err
	}
	d.mu.Lock()
	if e := d.st.enrollment; e != nil && res.Enrolled {
		e.viaADE = true
	}
	d.mu.Unlock()
	act.Install, act.AwaitedConfiguration = res, p.AwaitDeviceConfigured
	return act, nil
}

// InstallConfiguratorProfile installs a profile exported by Apple
// Configurator over USB: the bytes directly, no download.
func (d *Device) InstallConfiguratorProfile(ctx context.Context, profile []byte, supervised bool) (*InstallResult, error) {
	d.mu.Lock()
	d.supervised = supervised
	d.mu.Unlock()
	return d.Install(ctx, profile)
}

// releasedTokenUpdate reports AwaitingConfiguration false once Setup
// Assistant is released, so the server's record stops showing it.
func (d *Device) releasedTokenUpdate(ctx context.Context) error {
	d.op.Lock()
	defer d.op.Unlock()
	e, err := d.enrolled()
	if err != nil {
		return err
	}
	tu, err := d.tokenUpdateMessage(e.mdm.Topic, e.userEnrollment)
	if err != nil {
		return err
	}
	return d.checkin(ctx, &e.mdm, e.identity, mdm.MessageTokenUpdate, tu)
}

func (d *Device) postMachineInfo(ctx context.Context, u string, signed []byte, user *SignIn) ([]byte, error) {
	const step = "ADE profile"
	r, err := d.sendHeaders(ctx, step, http.MethodPost, u, "application/pkcs7-signature", signed, nil)
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(r.header.Get("WWW-Authenticate")), "basic") {
		if user == nil {
			return nil, serverError(step, http.MethodPost, u, r, "Setup Assistant asks for the user's credentials and none were given")
		}
		h := http.Header{}
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user.UPN+":"+user.Password)))
		if r, err = d.sendHeaders(ctx, step, http.MethodPost, u, "application/pkcs7-signature", signed, h); err != nil {
			return nil, err
		}
	}
	if r.status != http.StatusOK {
		return nil, serverError(step, http.MethodPost, u, r, "the MDM server refused the device's MachineInfo")
	}
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != profiles.ContentType {
		return nil, serverError(step, http.MethodPost, u, r, "the answer is not "+profiles.ContentType)
	}
	return r.body, nil
}

var (
	formAction = regexp.MustCompile(`(?is)<form[^>]*\baction="([^"]*)"`)
	inputTag   = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	attr       = regexp.MustCompile(`(?is)\b(name|value|type)="([^"]*)"`)
	errorText  = regexp.MustCompile(`(?is)<p[^>]*id="error"[^>]*>(.*?)</p>`)
)

// webAuth drives configuration_web_url as the Setup Assistant web view
// does: the first load carries x-apple-aspen-deviceinfo; the user fills in
// the page's form; the response whose MIME type is
// application/x-apple-aspen-config ends the web view and is the profile.
func (d *Device) webAuth(ctx context.Context, u string, signed []byte, user *SignIn) ([]byte, error) {
	const step = "configuration_web_url"
	h := http.Header{}
	h.Set(mdm.MachineInfoHeader, base64.StdEncoding.EncodeToString(signed))
	r, err := d.sendHeaders(ctx, step, http.MethodGet, u, "", nil, h)
	if err != nil {
		return nil, err
	}
	for range 3 { // a page may come back with an error to correct
		if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt == profiles.ContentType && r.status == http.StatusOK {
			return r.body, nil
		}
		if r.status >= 400 && !bytes.Contains(r.body, []byte("<form")) {
			return nil, serverError(step, http.MethodGet, u, r, "the web view shows an error")
		}
		if user == nil {
			return nil, serverError(step, http.MethodGet, u, r, "the web view asks the user to sign in and no user was given")
		}
		if m := errorText.FindSubmatch(r.body); m != nil && r.status != http.StatusOK {
			return nil, serverError(step, http.MethodPost, u, r, "sign-in refused: "+html.UnescapeString(string(m[1])))
		}
		action, form, err := readForm(u, r.body)
		if err != nil {
			return nil, &ExchangeError{Step: step, URL: u, Reason: "the page has no usable sign-in form", Err: err}
		}
		form.Set("upn", user.UPN)
		form.Set("password", user.Password)
		form.Set("mfa_code", user.MFACode)
		form.Set("new_password", user.NewPassword)
		if r, err = d.sendHeaders(ctx, step, http.MethodPost, action, "application/x-www-form-urlencoded", []byte(form.Encode()), nil); err != nil {
			return nil, err
		}
	}
	return nil, serverError(step, http.MethodPost, u, r, "the web view never answered with a profile")
}

// readForm reads the page's form: its action (resolved against base) and
// its hidden inputs, as a browser would submit them.
func readForm(base string, page []byte) (string, url.Values, error) {
	m := formAction.FindSubmatch(page)
	if m == nil {
		return "", nil, errors.New("no <form action>")
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	a, err := b.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return "", nil, err
	}
	vals := url.Values{}
	for _, tag := range inputTag.FindAll(page, -1) {
		var name, value, typ string
		for _, kv := range attr.FindAllSubmatch(tag, -1) {
			switch strings.ToLower(string(kv[1])) {
			case "name":
				name = html.UnescapeString(string(kv[2]))
			case "value":
				value = html.UnescapeString(string(kv[2]))
			case "type":
				typ = strings.ToLower(string(kv[2]))
			}
		}
		if name != "" && typ == "hidden" {
			vals.Set(name, value)
		}
	}
	return a.String(), vals, nil
}

// sendHeaders is send with extra request headers (Basic credentials, the
// MachineInfo header) and no Mdm-Signature.
func (d *Device) sendHeaders(ctx context.Context, step, method, u, ctype string, body []byte, h http.Header) (*reply, error) {
	ctx = withStep(ctx, step)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &ExchangeError{Step: step, URL: u, Reason: "the URL cannot be requested", Err: err}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := recorder{d}.Do(req)
	if err != nil {
		return nil, &ExchangeError{Step: step, URL: u, Err: err}
	}
	b, _ := io.ReadAll(resp.Body)
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}
