package ade

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Profile is an ADE profile under Apple's JSON names ("Define a Profile").
type Profile struct {
	ProfileName               string   `json:"profile_name"`
	ProfileUUID               string   `json:"profile_uuid,omitempty"`
	URL                       string   `json:"url"`
	ConfigurationWebURL       string   `json:"configuration_web_url,omitempty"`
	IsSupervised              *bool    `json:"is_supervised,omitempty"`
	IsMandatory               *bool    `json:"is_mandatory,omitempty"`
	IsMDMRemovable            *bool    `json:"is_mdm_removable,omitempty"`
	AwaitDeviceConfigured     *bool    `json:"await_device_configured,omitempty"`
	AutoAdvanceSetup          *bool    `json:"auto_advance_setup,omitempty"`
	IsMultiUser               *bool    `json:"is_multi_user,omitempty"`
	AllowPairing              *bool    `json:"allow_pairing,omitempty"`
	IsReturnToService         *bool    `json:"is_return_to_service,omitempty"`
	DoNotUseProfileFromBackup *bool    `json:"do_not_use_profile_from_backup,omitempty"`
	SkipSetupItems            []string `json:"skip_setup_items,omitempty"`
	AnchorCerts               []string `json:"anchor_certs,omitempty"`
	SupervisingHostCerts      []string `json:"supervising_host_certs,omitempty"`
	Department                string   `json:"department,omitempty"`
	Language                  string   `json:"language,omitempty"`
	Region                    string   `json:"region,omitempty"`
	OrgMagic                  string   `json:"org_magic,omitempty"`
	SupportPhoneNumber        string   `json:"support_phone_number,omitempty"`
	SupportEmailAddress       string   `json:"support_email_address,omitempty"`
	Devices                   []string `json:"devices,omitempty"`
}

// ParseProfile decodes and validates a profile as Apple's "Define a
// Profile" does: 400 MALFORMED_REQUEST_BODY for what is not a JSON object of
// the documented keys, CONFIG_NAME_*, CONFIG_URL_*, FLAGS_INVALID,
// DEPARTMENT_INVALID, MAGIC_INVALID, SUPPORT_*_INVALID; and (mockmdm's
// stricter rule, with Apple-style code SKIP_SETUP_ITEMS_INVALID) any
// skip_setup_items value that is not a key of Apple's SkipKeys schema.
func ParseProfile(body []byte) (*Profile, error) {
	var p Profile
	if err := decodeKnown(body, &p, "a JSON object of Apple's profile keys"); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// checkLocale is Apple's LOCALE_INVALID ("the locale fields combination is
// invalid or unsupported", the Define a Profile page) on the form the
// Profile schema gives the two fields (as NanoDEP v0.7.0's godep has it): a
// language is a two-letter ISO 639-1 or three-letter ISO 639-2 code in
// lower case ("en", "haw"), a region a two-letter capitalised ISO 3166-1
// code ("US"). mockmdm checks the form, not that the code is assigned.
func checkLocale(language, region string) error {
	letters := func(s string, lo, hi byte) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < lo || s[i] > hi {
				return false
			}
		}
		return true
	}
	if language != "" && (len(language) < 2 || len(language) > 3 || !letters(language, 'a', 'z')) {
		return apiErr(http.StatusBadRequest, "LOCALE_INVALID", "language %q is not a two-letter ISO 639-1 or three-letter ISO 639-2 code in lower case (e.g. en, haw)", truncate(language, 20))
	}
	if region != "" && (len(region) != 2 || !letters(region, 'A', 'Z')) {
		return apiErr(http.StatusBadRequest, "LOCALE_INVALID", "region %q is not a two-letter capitalised ISO 3166-1 code (e.g. US, GB)", truncate(region, 20))
	}
	return nil
}

func (p *Profile) validate() error {
	switch n := utf8.RuneCountInString(p.ProfileName); {
	case p.ProfileName == "":
		return apiErr(http.StatusBadRequest, "CONFIG_NAME_REQUIRED", "profile_name is required")
	case n > 125 || strings.TrimSpace(p.ProfileName) == "":
		return apiErr(http.StatusBadRequest, "CONFIG_NAME_INVALID", "profile_name must be 1–125 characters (it is %d)", n)
	}
	if p.URL == "" {
		return apiErr(http.StatusBadRequest, "CONFIG_URL_REQUIRED", "url (the MDM server's enrollment URL) is required")
	}
	for name, v := range map[string]string{"url": p.URL, "configuration_web_url": p.ConfigurationWebURL} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if len(v) > 2000 || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return apiErr(http.StatusBadRequest, "CONFIG_URL_INVALID", "%s %q must be an absolute http(s) URL of at most 2000 characters", name, truncate(v, 80))
		}
	}
	supervised := p.IsSupervised != nil && *p.IsSupervised
	if p.IsMDMRemovable != nil && !*p.IsMDMRemovable && !supervised {
		return apiErr(http.StatusBadRequest, "FLAGS_INVALID", "is_mdm_removable can be false only when is_supervised is true")
	}
	if p.IsMultiUser != nil && *p.IsMultiUser && !supervised {
		return apiErr(http.StatusBadRequest, "FLAGS_INVALID", "is_multi_user (Shared iPad) needs is_supervised true")
	}
	for _, f := range []struct {
		code, name, v string
		max           int
	}{
		{"DEPARTMENT_INVALID", "department", p.Department, 125},
		{"MAGIC_INVALID", "org_magic", p.OrgMagic, 256},
		{"SUPPORT_EMAIL_INVALID", "support_email_address", p.SupportEmailAddress, 250},
		{"SUPPORT_PHONE_INVALID", "support_phone_number", p.SupportPhoneNumber, 50},
	} {
		if utf8.RuneCountInString(f.v) > f.max {
			return apiErr(http.StatusBadRequest, f.code, "%s is longer than %d characters", f.name, f.max)
		}
	}
	if err := checkLocale(p.Language, p.Region); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, k := range p.SkipSetupItems {
		if !skipSetupItems[k] {
			return apiErr(http.StatusBadRequest, "SKIP_SETUP_ITEMS_INVALID", "skip_setup_items has %q, which is not one of Apple's skip keys (e.g. AppleID, Biometric, Location, Passcode, Privacy, Restore, Siri, TOS)", truncate(k, 40))
		}
		if seen[k] {
			return apiErr(http.StatusBadRequest, "SKIP_SETUP_ITEMS_INVALID", "skip_setup_items lists %q twice", k)
		}
		seen[k] = true
	}
	for name, list := range map[string][]string{"anchor_certs": p.AnchorCerts, "supervising_host_certs": p.SupervisingHostCerts} {
		for i, c := range list {
			if _, err := base64.StdEncoding.DecodeString(c); err != nil || c == "" {
				return apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "%s[%d] is not base64 DER", name, i)
			}
		}
	}
	return nil
}

type profileRecord struct {
	Profile Profile   `json:"profile"`
	Created time.Time `json:"created"`
}

func (s *Service) getProfile(ctx context.Context, uuid string) (*Profile, error) {
	if uuid == "" || len(uuid) > 64 {
		return nil, nil
	}
	rec, err := getJSON[profileRecord](ctx, s, KindProfile, strings.ToUpper(uuid))
	if err != nil || rec == nil {
		return nil, err
	}
	return &rec.Profile, nil
}

// DefineResponse is Apple's answer to POST /profile and the assign call.
type DefineResponse struct {
	ProfileUUID string            `json:"profile_uuid"`
	Devices     map[string]string `json:"devices"`
	// RetryAfterSeconds is set when a device was THROTTLED and the client
	// speaks protocol version 10 or later.
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// DefineProfile stores p under a new profile_uuid and assigns it to the
// serials it lists.
func (s *Service) DefineProfile(ctx context.Context, p *Profile) (*DefineResponse, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if len(p.Devices) > 1000 {
		return nil, apiErr(http.StatusBadRequest, "DEVICE_ID_LIMIT_EXCEEDED", "the profile lists %d devices; Apple takes at most 1000", len(p.Devices))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *p
	cp.ProfileUUID = newUUID()
	serials := cp.Devices
	cp.Devices = nil
	if err := s.putJSON(ctx, KindProfile, cp.ProfileUUID, profileRecord{Profile: cp, Created: s.now().UTC()}); err != nil {
		return nil, err
	}
	res, err := s.assignLocked(ctx, cp.ProfileUUID, serials)
	if err != nil {
		return nil, err
	}
	return &DefineResponse{ProfileUUID: cp.ProfileUUID, Devices: res}, nil
}

// assignLocked assigns profile uuid to serials; s.mu held.
func (s *Service) assignLocked(ctx context.Context, uuid string, serials []string) (map[string]string, error) {
	now := s.now().UTC()
	return s.updateOwned(ctx, serials, "modified", func(rec *deviceRecord) bool {
		rec.ProfileUUID, rec.ProfileStatus, rec.ProfileAssignTime = uuid, "assigned", &now
		return true
	})
}

// AssignProfile assigns an existing profile to serials.
func (s *Service) AssignProfile(ctx context.Context, uuid string, serials []string) (*DefineResponse, error) {
	return s.assignProfile(ctx, uuid, serials, 0)
}

// assignProfile is Assign a Profile for a client speaking protocol version
// (0: none given): under quirk throttle_assign_seconds, Apple's throttling
// ("With X-Server-Protocol-Version 9 and later, the server may throttle
// profile assignment on a per-device basis … THROTTLED instead of SUCCESS.
// With … 10 and later, the response also includes retry_after_seconds",
// Apple's "Assign a Profile" page in the apple-docs.everest.mt mirror)
// answers every device THROTTLED and assigns nothing.
func (s *Service) assignProfile(ctx context.Context, uuid string, serials []string, version int) (*DefineResponse, error) {
	if uuid == "" {
		return nil, apiErr(http.StatusBadRequest, "PROFILE_UUID_REQUIRED", "profile_uuid is required")
	}
	if err := checkSerials(serials); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.getProfile(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, apiErr(http.StatusNotFound, "NOT_FOUND", "no profile %s: define it with POST /profile first", truncate(uuid, 64))
	}
	if version >= 9 {
		st, err := s.loadState(ctx)
		if err != nil {
			return nil, err
		}
		if wait := st.Quirks.ThrottleAssignSeconds; wait > 0 {
			res := &DefineResponse{ProfileUUID: p.ProfileUUID, Devices: map[string]string{}}
			for _, serial := range serials {
				res.Devices[serial] = "THROTTLED"
			}
			if version >= 10 {
				res.RetryAfterSeconds = wait
			}
			return res, nil
		}
	}
	res, err := s.assignLocked(ctx, p.ProfileUUID, serials)
	if err != nil {
		return nil, err
	}
	return &DefineResponse{ProfileUUID: p.ProfileUUID, Devices: res}, nil
}

// RemoveProfile clears the profile of serials (optionally only when it is uuid).
func (s *Service) RemoveProfile(ctx context.Context, uuid string, serials []string) (map[string]string, error) {
	if err := checkSerials(serials); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateOwned(ctx, serials, "modified", func(rec *deviceRecord) bool {
		if rec.ProfileUUID == "" || (uuid != "" && !strings.EqualFold(rec.ProfileUUID, uuid)) {
			return false // not assigned this profile: Apple answers NOT_ACCESSIBLE
		}
		rec.ProfileUUID, rec.ProfileStatus, rec.ProfileAssignTime, rec.ProfilePushTime = "", "removed", nil, nil
		return true
	})
}

// ActivationProfile is what the mock Apple activation service tells a
// device: its assigned ADE profile, with the profile's keys.
func (s *Service) ActivationProfile(ctx context.Context, serial string) (*Profile, error) {
	if serial == "" {
		return nil, apiErr(http.StatusBadRequest, "SERIAL_NUMBER_REQUIRED", "serial_number is required")
	}
	rec, err := s.lookup(ctx, serial)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, apiErr(http.StatusNotFound, "NOT_FOUND", "serial %s is not owned by the organisation: buy it first (POST /v1/ade/devices)", truncate(serial, 64))
	}
	if rec.ProfileUUID == "" {
		return nil, apiErr(http.StatusNotFound, "NO_PROFILE", "serial %s has no ADE profile assigned: define one and assign it (POST /profile, PUT /profile/devices)", rec.SerialNumber)
	}
	p, err := s.getProfile(ctx, rec.ProfileUUID)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, apiErr(http.StatusNotFound, "NO_PROFILE", "serial %s names profile %s, which no longer exists", rec.SerialNumber, rec.ProfileUUID)
	}
	// The device has now downloaded its profile: Apple reports "pushed".
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	rec.ProfileStatus, rec.ProfilePushTime = "pushed", &now
	if err := s.touch(ctx, st, rec, "modified"); err != nil {
		return nil, err
	}
	if err := s.saveState(ctx, st); err != nil {
		return nil, err
	}
	out := *p
	if out.IsMDMRemovable == nil {
		t := true // Apple's default
		out.IsMDMRemovable = &t
	}
	return &out, nil
}
