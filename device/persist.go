package device

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/profiles"
)

// savedVersion is the version of the file Save writes.
const savedVersion = 1

// maxSavedSize bounds a saved device file Load reads.
const maxSavedSize = 64 << 20

// maxSavedBody is how much of each transcript body a saved file keeps.
const maxSavedBody = 64 << 10

// clipBody is b cut to maxSavedBody bytes, marked as cut.
func clipBody(b []byte) []byte {
	if len(b) <= maxSavedBody {
		return b
	}
	return append(b[:maxSavedBody:maxSavedBody], fmt.Sprintf("… (%d bytes in all; the saved file keeps the first %d)", len(b), maxSavedBody)...)
}

// saved is a device as Save writes it: what it is (seed, model, OS,
// hardware) and what it has (keychain, profiles, enrollment, apps).
// Behaviours are the test's, not the device's, and are not saved.
type saved struct {
	Version    int              `json:"version"`
	Seed       int64            `json:"seed"`
	Model      Model            `json:"model"`
	OSVersion  string           `json:"os_version"`
	Build      string           `json:"build"`
	Name       string           `json:"name"`
	Supervised bool             `json:"supervised"`
	Hardware   Hardware         `json:"hardware"`
	Roots      []savedRoot      `json:"roots,omitempty"`
	Identities []savedIdentity  `json:"identities,omitempty"`
	Profiles   []savedProfile   `json:"profiles,omitempty"`
	Enrollment *savedEnrollment `json:"enrollment,omitempty"`
	Apps       []savedApp       `json:"apps,omitempty"`
	Transcript []Exchange       `json:"transcript,omitempty"`
	Restarts   int              `json:"restarts,omitempty"`
	Erasures   int              `json:"erasures,omitempty"`
	// BypassCodeCleared: the Activation Lock bypass code was cleared.
	BypassCodeCleared bool `json:"bypass_code_cleared,omitempty"`
	// Account is an account-driven enrollment's access token and the
	// credentials it signs in again with (test credentials, kept as
	// private as the identity keys beside them).
	Account *savedAccount `json:"account,omitempty"`
	// LostMode is MDM Lost Mode while it is on.
	LostMode *lostMode `json:"lost_mode,omitempty"`
	// DownloadedUpdates are OS updates downloaded and not installed.
	DownloadedUpdates []string `json:"downloaded_updates,omitempty"`
	// Books are the books the server installed.
	Books []book `json:"books,omitempty"`
	// SharedIPad, Users and CurrentUser are a Shared iPad's mode, its
	// resident users and the one signed in.
	SharedIPad  bool         `json:"shared_ipad,omitempty"`
	Users       []userRecord `json:"shared_ipad_users,omitempty"`
	CurrentUser string       `json:"current_user,omitempty"`
	// Declarative is each channel's synced declarations ("" the device's).
	Declarative map[string]*declarativeState `json:"declarative,omitempty"`
	// RecoveryLock is the Recovery Lock password's hash; RemoteDesktop
	// whether Remote Desktop is on (a Mac's).
	RecoveryLock  string `json:"recovery_lock_hash,omitempty"`
	RemoteDesktop bool   `json:"remote_desktop,omitempty"`
	// ProvisioningProfiles are the installed provisioning profiles.
	ProvisioningProfiles []provisioningProfile `json:"provisioning_profiles,omitempty"`
}

type savedAccount struct {
	Token       string      `json:"access_token"`
	Credentials Credentials `json:"credentials"`
}

type savedRoot struct {
	CertPEM   string `json:"cert_pem"`
	ProfileID string `json:"profile_id"`
	User      string `json:"user,omitempty"`
	// Declaration and Asset: a certificate configuration's (declaredcerts.go).
	Declaration string `json:"declaration,omitempty"`
	Asset       string `json:"asset,omitempty"`
}

type savedIdentity struct {
	PayloadUUID string `json:"payload_uuid"`
	ProfileID   string `json:"profile_id"`
	User        string `json:"user,omitempty"`
	// Declaration, Asset and AssetSHA256: an identity configuration's
	// (declaredcerts.go).
	Declaration string `json:"declaration,omitempty"`
	Asset       string `json:"asset,omitempty"`
	AssetSHA256 string `json:"asset_sha256,omitempty"`
	CertPEM     string `json:"cert_pem"`
	KeyPEM      string `json:"key_pem"`
}

type savedProfile struct {
	Info      ProfileInfo `json:"info"`
	SignerPEM string      `json:"signer_pem,omitempty"`
}

type savedEnrollment struct {
	ProfileID      string              `json:"profile_id"`
	MDM            profiles.MDMPayload `json:"mdm"`
	IdentityUUID   string              `json:"identity_payload_uuid"`
	UserEnrollment bool                `json:"user_enrollment"`
	EnrolledAt     time.Time           `json:"enrolled_at"`
	ViaADE         bool                `json:"via_ade,omitempty"`
}

type savedApp struct {
	ID        string    `json:"id"`
	StoreID   int64     `json:"store_id,omitempty"`
	Manifest  string    `json:"manifest_url,omitempty"`
	Flags     int64     `json:"management_flags,omitempty"`
	Installed time.Time `json:"installed"`
	// Configuration and Feedback are property lists (JSON would lose
	// their data and date types).
	Configuration []byte `json:"configuration_plist,omitempty"`
	Attributes    []byte `json:"attributes_plist,omitempty"`
	Feedback      []byte `json:"feedback_plist,omitempty"`
	// Declaration is the app.managed configuration that installed it.
	Declaration string `json:"declaration,omitempty"`
}

func certPEM(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// Save writes the device to path (JSON, mode 0600, replaced atomically), so
// that a QA script can come back to the same device later with Load. The
// file holds the identity keys: keep it as private as the device.
func (d *Device) Save(path string) error {
	d.op.Lock()
	defer d.op.Unlock()
	d.mu.RLock()
	s := saved{
		Version: savedVersion, Seed: d.seed, Model: d.model, OSVersion: d.osVersion, Build: d.build,
		Name: d.name, Supervised: d.supervised, Hardware: d.hw,
		Restarts: d.st.restarts, Erasures: d.st.erasures, BypassCodeCleared: d.st.bypassCodeCleared,
		SharedIPad: d.sharedIPad, CurrentUser: d.st.currentUser, Declarative: d.st.declarative,
		RecoveryLock: d.st.recoveryLock, RemoteDesktop: d.st.remoteDesktop,
	}
	for _, p := range d.st.provisioning {
		s.ProvisioningProfiles = append(s.ProvisioningProfiles, *p)
	}
	for _, u := range d.st.users {
		s.Users = append(s.Users, *u)
	}
	if a := d.st.account; a != nil {
		s.Account = &savedAccount{Token: a.token, Credentials: a.creds}
	}
	if l := d.st.lostMode; l != nil {
		lm := *l
		s.LostMode = &lm
	}
	s.DownloadedUpdates = slices.Clone(d.st.downloaded)
	for _, b := range d.st.books {
		s.Books = append(s.Books, *b)
	}
	for _, r := range d.st.roots {
		s.Roots = append(s.Roots, savedRoot{CertPEM: certPEM(r.cert), ProfileID: r.profileID, User: r.user, Declaration: r.declaration, Asset: r.asset})
	}
	for _, id := range d.st.identities {
		der, err := x509.MarshalPKCS8PrivateKey(id.key)
		if err != nil {
			d.mu.RUnlock()
			return fmt.Errorf("device: saving identity key: %w", err)
		}
		s.Identities = append(s.Identities, savedIdentity{
			PayloadUUID: id.payloadUUID, ProfileID: id.profileID, User: id.user, CertPEM: certPEM(id.cert),
			Declaration: id.declaration, Asset: id.asset, AssetSHA256: id.assetSHA256,
			KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		})
	}
	for _, p := range d.st.profiles {
		info := p.clone()
		signer := certPEM(info.Signer)
		info.Signer = nil
		s.Profiles = append(s.Profiles, savedProfile{Info: info, SignerPEM: signer})
	}
	if e := d.st.enrollment; e != nil {
		s.Enrollment = &savedEnrollment{ProfileID: e.profileID, MDM: e.mdm, UserEnrollment: e.userEnrollment, EnrolledAt: e.enrolledAt, ViaADE: e.viaADE}
		if e.identity != nil {
			s.Enrollment.IdentityUUID = e.identity.payloadUUID
		}
	}
	for _, a := range d.st.apps {
		sa := savedApp{ID: a.id, StoreID: a.storeID, Manifest: a.manifest, Flags: a.flags, Installed: a.installed, Declaration: a.declaration}
		for _, f := range []struct {
			dict map[string]any
			to   *[]byte
		}{{a.config, &sa.Configuration}, {a.attrs, &sa.Attributes}, {a.feedback, &sa.Feedback}} {
			if f.dict == nil {
				continue
			}
			b, err := plist.Marshal(f.dict)
			if err != nil {
				d.mu.RUnlock()
				return fmt.Errorf("device: saving app %s: %w", a.id, err)
			}
			*f.to = b
		}
		s.Apps = append(s.Apps, sa)
	}
	s.Transcript = append([]Exchange(nil), d.transcript...)
	d.mu.RUnlock()
	// Bodies are kept whole in memory (up to 4 MiB each); a saved file
	// keeps the first maxSavedBody bytes of each, so that a device that
	// downloaded a few large files still saves to a file Load reads.
	for i := range s.Transcript {
		s.Transcript[i].Request = clipBody(s.Transcript[i].Request)
		s.Transcript[i].Response = clipBody(s.Transcript[i].Response)
	}

	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("device: encoding %s: %w", path, err)
	}
	if len(b) > maxSavedSize { // a file Load would refuse is not written
		return fmt.Errorf("device: saving %s: the device is %d bytes encoded, more than a saved device can be (%d)", path, len(b), maxSavedSize)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".device-*")
	if err != nil {
		return fmt.Errorf("device: saving %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(b)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
	}
	if err != nil {
		return fmt.Errorf("device: saving %s: %w", path, err)
	}
	return nil
}

// LoadError is a saved device file that cannot be read back.
type LoadError struct {
	Path   string
	Reason string
	Err    error
}

func (e *LoadError) Error() string {
	msg := "device file " + e.Path + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *LoadError) Unwrap() error { return e.Err }

// HTTPStatus is 400: the file given is at fault.
func (e *LoadError) HTTPStatus() int { return http.StatusBadRequest }

// Load reads a device saved with Save. opts apply on top (a new Doer's
// logger, clock, trust…); the device's identity comes from the file.
func Load(path string, doer Doer, opts ...Option) (*Device, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &LoadError{Path: path, Reason: "cannot be read", Err: err}
	}
	if fi.Size() > maxSavedSize {
		return nil, &LoadError{Path: path, Reason: fmt.Sprintf("is %d bytes, more than a saved device can be (%d)", fi.Size(), maxSavedSize)}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &LoadError{Path: path, Reason: "cannot be read", Err: err}
	}
	return decodeSaved(path, b, doer, opts...)
}

func decodeSaved(path string, b []byte, doer Doer, opts ...Option) (*Device, error) {
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, &LoadError{Path: path, Reason: "is not a saved device (JSON)", Err: err}
	}
	if s.Version != savedVersion {
		return nil, &LoadError{Path: path, Reason: fmt.Sprintf("has version %d; this build reads version %d", s.Version, savedVersion)}
	}
	if err := s.Model.validate(); err != nil {
		return nil, &LoadError{Path: path, Reason: "has an unusable model", Err: err}
	}
	if s.Hardware.UDID == "" || s.Hardware.SerialNumber == "" || len(s.Hardware.PushToken) == 0 {
		return nil, &LoadError{Path: path, Reason: "has no hardware identifiers (UDID, serial number, push token)"}
	}
	base := []Option{WithSeed(s.Seed), WithModel(s.Model), WithOS(s.OSVersion, s.Build), WithName(s.Name), WithSupervised(s.Supervised), WithSharedIPad(s.SharedIPad)}
	d, err := newChecked(doer, append(base, opts...)...)
	if err != nil {
		return nil, &LoadError{Path: path, Reason: "describes a device that cannot be built", Err: err}
	}
	st := state{restarts: s.Restarts, erasures: s.Erasures, bypassCodeCleared: s.BypassCodeCleared}
	if a := s.Account; a != nil {
		st.account = &accountAuth{token: a.Token, creds: a.Credentials}
	}
	st.lostMode = s.LostMode
	st.downloaded = s.DownloadedUpdates
	for i := range s.Users {
		st.users = append(st.users, &s.Users[i])
	}
	st.currentUser = s.CurrentUser
	st.declarative = s.Declarative
	st.recoveryLock, st.remoteDesktop = s.RecoveryLock, s.RemoteDesktop
	for i := range s.ProvisioningProfiles {
		st.provisioning = append(st.provisioning, &s.ProvisioningProfiles[i])
	}
	for i := range s.Books {
		st.books = append(st.books, &s.Books[i])
	}
	for i, r := range s.Roots {
		c, err := parseCertPEM(r.CertPEM)
		if err != nil {
			return nil, &LoadError{Path: path, Reason: fmt.Sprintf("roots[%d]", i), Err: err}
		}
		st.roots = append(st.roots, trustedRoot{cert: c, profileID: r.ProfileID, user: r.User, declaration: r.Declaration, asset: r.Asset})
	}
	for i, id := range s.Identities {
		c, err := parseCertPEM(id.CertPEM)
		if err != nil {
			return nil, &LoadError{Path: path, Reason: fmt.Sprintf("identities[%d] certificate", i), Err: err}
		}
		key, err := parseKeyPEM(id.KeyPEM)
		if err != nil {
			return nil, &LoadError{Path: path, Reason: fmt.Sprintf("identities[%d] key", i), Err: err}
		}
		if !key.PublicKey.Equal(c.PublicKey) {
			return nil, &LoadError{Path: path, Reason: fmt.Sprintf("identities[%d]: the key does not belong to the certificate", i)}
		}
		st.identities = append(st.identities, &identity{payloadUUID: id.PayloadUUID, profileID: id.ProfileID, user: id.User, cert: c, key: key,
			declaration: id.Declaration, asset: id.Asset, assetSHA256: id.AssetSHA256})
	}
	for i, p := range s.Profiles {
		info := p.Info
		if p.SignerPEM != "" {
			c, err := parseCertPEM(p.SignerPEM)
			if err != nil {
				return nil, &LoadError{Path: path, Reason: fmt.Sprintf("profiles[%d] signer", i), Err: err}
			}
			info.Signer = c
		}
		st.profiles = append(st.profiles, &info)
	}
	st.channelsOfOldFiles()
	if e := s.Enrollment; e != nil {
		en := &enrollment{profileID: e.ProfileID, mdm: e.MDM, userEnrollment: e.UserEnrollment, enrolledAt: e.EnrolledAt, viaADE: e.ViaADE}
		for _, id := range st.identities {
			if id.payloadUUID == e.IdentityUUID {
				en.identity = id
			}
		}
		if en.identity == nil {
			return nil, &LoadError{Path: path, Reason: fmt.Sprintf("the enrollment's identity (payload %s) is not in the keychain", e.IdentityUUID)}
		}
		st.enrollment = en
	}
	for _, a := range s.Apps {
		if st.apps == nil {
			st.apps = map[string]*managedApp{}
		}
		app := &managedApp{id: a.ID, storeID: a.StoreID, manifest: a.Manifest, flags: a.Flags, installed: a.Installed, externalID: a.StoreID, declaration: a.Declaration}
		for _, f := range []struct {
			raw []byte
			to  *map[string]any
		}{{a.Configuration, &app.config}, {a.Attributes, &app.attrs}, {a.Feedback, &app.feedback}} {
			if len(f.raw) == 0 {
				continue
			}
			if err := plist.Unmarshal(f.raw, f.to); err != nil {
				return nil, &LoadError{Path: path, Reason: fmt.Sprintf("app %s has a configuration or feedback that is not a property list", a.ID), Err: err}
			}
		}
		st.apps[a.ID] = app
	}
	d.mu.Lock()
	d.hw = s.Hardware
	d.st = st
	d.transcript = s.Transcript
	if n := len(d.transcript) - d.transcriptLimit; d.transcriptLimit > 0 && n > 0 {
		d.transcript = d.transcript[n:]
	}
	d.mu.Unlock()
	return d, nil
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKeyPEM(s string) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is %T, not RSA", k)
	}
	return rk, nil
}

// newChecked is New for options read from a file: New panics on misuse (a
// programming error), but a file's values are input, so its complaint
// becomes an error.
func newChecked(doer Doer, opts ...Option) (d *Device, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("%v", p)
		}
	}()
	return New(doer, opts...), nil
}

// channelsOfOldFiles gives the roots and identities a file saved before
// they recorded their channel the channel of the profile that brought them:
// the device's when a device-channel profile has that identifier, else the
// one user channel whose profile does (with several, the device's, as
// before).
func (st *state) channelsOfOldFiles() {
	channelOf := func(profileID string) string {
		var users []string
		for _, p := range st.profiles {
			if p.Identifier != profileID {
				continue
			}
			if p.User == "" {
				return ""
			}
			users = append(users, p.User)
		}
		if len(users) == 1 {
			return users[0]
		}
		return ""
	}
	for i := range st.roots {
		if st.roots[i].user == "" && st.roots[i].declaration == "" {
			st.roots[i].user = channelOf(st.roots[i].profileID)
		}
	}
	for _, id := range st.identities {
		if id.user == "" && id.declaration == "" {
			id.user = channelOf(id.profileID)
		}
	}
}
