package device

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/profiles"
)

// Doer sends an HTTP request. It is the device's only way out: an
// *http.Client, an adapter that calls an http.Handler in-process, a TLS
// client that presents IdentityTLSCertificate, a recorder or a fault
// injector. It has the same method set as certs.Doer.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

const (
	// maxResponse bounds every response body the device reads. The largest
	// legitimate ones are profiles (profiles.MaxProfileSize) and commands
	// carrying one (InstallProfile).
	maxResponse = 4 << 20
	// defaultRequestTimeout bounds one exchange when the caller's context
	// has no deadline, so an unresponsive server fails a step instead of
	// hanging it.
	defaultRequestTimeout = 60 * time.Second
	// defaultTranscriptLimit is how many exchanges a device remembers.
	defaultTranscriptLimit = 1000
	// minKeySize and maxKeySize bound the identity key (WithKeySize and
	// the SCEP payload's Keysize).
	minKeySize, maxKeySize = 1024, 4096
	// defaultMinKeySize is the smallest key the device generates when
	// WithKeySize is not given: Apple's SCEP default (1024) is too weak
	// for anything but tests.
	defaultMinKeySize = 2048
)

// Device is one virtual Apple device. Its methods are safe for concurrent
// use; operations that talk to a server (Install, EnrollFromURL, Connect,
// Unenroll) run one at a time, like on a real device.
type Device struct {
	doer            Doer
	log             *slog.Logger
	now             func() time.Time
	fakeClock       bool
	seed            int64
	model           Model
	osVersion       string
	build           string
	osGiven         bool // WithOS was applied; WithModel keeps it
	name            string
	supervised      bool
	sharedIPad      bool // a Shared iPad (users.go)
	trust           *x509.CertPool
	requireVerified bool
	keySize         int
	requestTimeout  time.Duration
	allowHTTP       bool
	// appleDiscovery is the mock Apple service-discovery lookup (byod.go).
	appleDiscovery  string
	transcriptLimit int
	hw              Hardware
	// genKey makes identity keys; tests swap in a pool of ready keys.
	genKey func(bits int) (*rsa.PrivateKey, error)

	// op serializes the operations that talk to a server.
	op sync.Mutex
	// mu guards everything below. It is never held during an exchange.
	mu         sync.RWMutex
	st         state
	transcript []Exchange
	handlers   map[string]CommandHandler
	// replaced names the request types whose built-in handler Handle
	// replaced or removed: Presign answers only built-in queries.
	replaced  map[string]bool
	beh       behaviours
	presigned presigned
	// devicePush is the APNs subscription ListenForPushes holds, dropped
	// when the device's token, enrollment or network changes; userPush is
	// ListenForUserPushes', dropped also when the user logs in or out.
	devicePush, userPush pushHold
}

// state is everything about a device that changes: what a persistence
// layer would save and an erase clears (except behaviours, which belong to
// the test driving the device, not to the device).
type state struct {
	roots      []trustedRoot
	identities []*identity
	profiles   []*ProfileInfo
	enrollment *enrollment
	// pending is the identity of an enrollment in progress: a TLS Doer
	// presents it during Authenticate and TokenUpdate, before the
	// enrollment is committed.
	pending *identity
	locked  bool
	// restarts and erasures count what the server made the device do.
	restarts, erasures int
	// apps are the apps the server installed, by bundle identifier.
	apps map[string]*managedApp
	// notNow maps a RequestType ("" = any) to how many more times the
	// device answers NotNow.
	notNow map[string]int
	// bypassCodeCleared: ClearActivationLockBypassCode removed the
	// Activation Lock bypass code (activationlock.go); an erase makes a new one.
	bypassCodeCleared bool
	// account is an account-driven enrollment's user authentication
	// (accountauth.go): nil for other enrollments.
	account *accountAuth
	// lostMode is MDM Lost Mode (lostmode.go): nil when off.
	lostMode *lostMode
	// downloaded are the OS updates downloaded and not installed
	// (osupdate.go), by product key.
	downloaded []string
	// enforced is the update a declaration enforces, pending until its
	// deadline (swenforcement.go).
	enforced *enforcedUpdate
	// books are the books the server installed (media.go).
	books []*book
	// users are a Shared iPad's or a Mac's users, currentUser the one
	// logged in (users.go).
	users       []*userRecord
	currentUser string
	// declarative is each channel's declarative management state, by
	// Shared iPad user ("" the device channel; declarative.go).
	declarative map[string]*declarativeState
	// recoveryLock is the Recovery Lock password's hash ("" when none);
	// remoteDesktop is Remote Desktop's state (macos.go).
	recoveryLock  string
	remoteDesktop bool
	// provisioning are the installed provisioning profiles (provisioning.go).
	provisioning []*provisioningProfile
	// lastESIMServerURL is the last RefreshCellularPlans' URL.
	lastESIMServerURL string
}

type trustedRoot struct {
	cert      *x509.Certificate
	profileID string
	// user is the channel of the profile that installed it ("" the
	// device's): one identifier may be installed on several channels.
	user string
	// declaration and asset are the certificate configuration that
	// installed it and its asset (declaredcerts.go); "" for a profile's.
	declaration, asset string
}

// identity is a certificate and key in the keychain, installed by a SCEP
// payload.
type identity struct {
	payloadUUID string
	profileID   string
	user        string // the installing profile's channel, as trustedRoot's
	cert        *x509.Certificate
	key         *rsa.PrivateKey
	// declaration and asset are the identity configuration that got it
	// and its SCEP or PKCS #12 asset, assetSHA256 that asset's data then
	// (declaredcerts.go); "" for a profile's.
	declaration, asset, assetSHA256 string
}

// enrollment is the device's MDM enrollment.
type enrollment struct {
	profileID      string
	mdm            profiles.MDMPayload
	identity       *identity
	userEnrollment bool
	enrolledAt     time.Time
	// viaADE: the enrollment came through Automated Device Enrollment
	// (Activate), which commands whose schema says requiresdep need.
	viaADE bool
}

// Option configures New.
type Option func(*Device)

// WithSeed fixes every identifier of the device (see Hardware). Without it
// the seed is random; Seed reports it either way.
func WithSeed(seed int64) Option { return func(d *Device) { d.seed = seed } }

// WithModel sets the hardware (default IPad) and, unless WithOS is given,
// the model's OS version.
func WithModel(m Model) Option {
	return func(d *Device) {
		d.model = m
		if !d.osGiven {
			d.osVersion, d.build = m.OSVersion, m.BuildVersion
		}
	}
}

// WithOS sets the OS version and build, e.g. "18.1", "22B83" (default: the
// model's).
func WithOS(version, build string) Option {
	return func(d *Device) { d.osVersion, d.build, d.osGiven = version, build, true }
}

// WithName sets the device name (default: model name and the end of the
// serial number).
func WithName(name string) Option { return func(d *Device) { d.name = name } }

// WithSupervised makes the device supervised (as ADE or Apple Configurator
// would), which supervised-only commands such as RestartDevice need.
func WithSupervised(supervised bool) Option { return func(d *Device) { d.supervised = supervised } }

// WithTrust sets the roots the device trusts to call a signed profile
// "verified". Without it no profile is verified (the signature is still
// checked). Roots installed by profiles do not count, as on iOS.
func WithTrust(roots *x509.CertPool) Option { return func(d *Device) { d.trust = roots } }

// WithRequireVerified makes Install refuse a signed profile that is not
// verified and an unsigned one, where a real device lets the user install
// it marked "Not Verified" (the default, which installs and reports
// InstallResult.Verified false).
func WithRequireVerified(require bool) Option {
	return func(d *Device) { d.requireVerified = require }
}

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(d *Device) { d.log = l } }

// WithClock sets the device clock (transcript times, profile chain checks).
// A device on a fake clock signs Mdm-Signature without a signing time,
// since the signing-time attribute is stamped from the wall clock and a
// server on the same fake clock would find it outside the identity's
// validity.
func WithClock(now func() time.Time) Option {
	return func(d *Device) { d.now, d.fakeClock = now, now != nil }
}

// WithKeySize sets the identity key size, overriding the SCEP payload's
// Keysize (1024–4096; small keys make tests fast). Default: the payload's
// Keysize, but at least 2048.
func WithKeySize(bits int) Option { return func(d *Device) { d.keySize = bits } }

// WithRequestTimeout bounds each exchange when the caller's context has no
// deadline (default 60 s).
func WithRequestTimeout(t time.Duration) Option { return func(d *Device) { d.requestTimeout = t } }

// WithAllowHTTP accepts an MDM payload whose ServerURL or CheckInURL is
// http://, as a plain-HTTP test harness serves. A real device refuses it,
// so the default is false.
func WithAllowHTTP(allow bool) Option { return func(d *Device) { d.allowHTTP = allow } }

// WithAppleServiceDiscovery sets where the device asks Apple for an
// organisation's registered service discovery URL when the user's domain
// does not serve /.well-known/com.apple.remotemanagement (Apple-hosted
// discovery, iOS 18.2 and later): a mockmdm server's /ade/discovery.
// Without it, AccountDrivenEnroll stops at the failed well-known request.
func WithAppleServiceDiscovery(url string) Option {
	return func(d *Device) { d.appleDiscovery = url }
}

// WithTranscriptLimit sets how many exchanges Transcript keeps, oldest
// dropped first (default 1000).
func WithTranscriptLimit(n int) Option { return func(d *Device) { d.transcriptLimit = n } }

// New returns a factory-fresh device that reaches servers through doer.
// Misuse (nil doer, an invalid model, a key size out of range) panics.
func New(doer Doer, opts ...Option) *Device {
	if doer == nil {
		panic("device.New: nil Doer")
	}
	d := &Device{
		doer:            doer,
		seed:            randomSeed(),
		model:           IPad,
		osVersion:       IPad.OSVersion,
		build:           IPad.BuildVersion,
		requestTimeout:  defaultRequestTimeout,
		transcriptLimit: defaultTranscriptLimit,
	}
	for _, o := range opts {
		o(d)
	}
	if err := d.model.validate(); err != nil {
		panic(err.Error())
	}
	if d.osVersion == "" || d.build == "" {
		panic("device.New: WithOS needs a version and a build")
	}
	if d.keySize != 0 && (d.keySize < minKeySize || d.keySize > maxKeySize) {
		panic(fmt.Sprintf("device.New: WithKeySize(%d) is outside %d–%d", d.keySize, minKeySize, maxKeySize))
	}
	if d.requestTimeout <= 0 {
		panic("device.New: WithRequestTimeout needs a positive duration")
	}
	if d.transcriptLimit < 0 {
		panic("device.New: WithTranscriptLimit needs a limit ≥ 0")
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.hw = deriveHardware(d.seed, d.model)
	if d.name == "" {
		d.name = d.model.ModelName + " (" + d.hw.SerialNumber[8:] + ")"
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "device", "udid", d.hw.UDID, "serial", d.hw.SerialNumber)
	if d.genKey == nil {
		d.genKey = func(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }
	}
	d.handlers = builtinHandlers()
	d.replaced = map[string]bool{}
	d.st.notNow = map[string]int{}
	return d
}

// Seed is the seed every identifier derives from.
func (d *Device) Seed() int64 { return d.seed }

// UDID is the device's UDID (sent on device enrollments only).
func (d *Device) UDID() string { return d.hw.UDID }

// SerialNumber is the device's serial number.
func (d *Device) SerialNumber() string { return d.hw.SerialNumber }

// EnrollmentID is the identifier the device sends instead of its UDID in a
// User Enrollment.
func (d *Device) EnrollmentID() string { return d.hw.EnrollmentID }

// Hardware returns the device's fixed identifiers.
func (d *Device) Hardware() Hardware {
	d.mu.RLock()
	defer d.mu.RUnlock()
	h := d.hw
	h.PushToken = slices.Clone(h.PushToken)
	return h
}

// Model is the device's hardware model.
func (d *Device) Model() Model { return d.model }

// Name is the device name (DeviceInformation DeviceName).
func (d *Device) Name() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.name
}

// OS returns the OS version and build (an installed OS update changes them).
func (d *Device) OS() (version, build string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.osVersion, d.build
}

// Supervised reports whether the device is supervised.
func (d *Device) Supervised() bool { return d.supervised }

// Locked reports whether a DeviceLock command locked the device.
func (d *Device) Locked() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.locked
}

// Restarts and Erasures count the RestartDevice and EraseDevice commands
// the device carried out.
func (d *Device) Restarts() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.restarts
}

// Erasures counts the EraseDevice commands the device carried out.
func (d *Device) Erasures() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.erasures
}

// EnrollmentInfo describes the device's MDM enrollment.
type EnrollmentInfo struct {
	// ProfileIdentifier is the PayloadIdentifier of the enrollment profile.
	ProfileIdentifier string
	ServerURL         string
	// CheckInURL is where check-ins go: the payload's CheckInURL, else ServerURL.
	CheckInURL          string
	Topic               string
	SignMessage         bool
	CheckOutWhenRemoved bool
	AccessRights        int
	// UserEnrollment is set for a User Enrollment (BYOD): the device sends
	// EnrollmentID and never its UDID or serial number.
	UserEnrollment bool
	// Identity is the certificate the device authenticates with.
	Identity   *x509.Certificate
	EnrolledAt time.Time
}

// IsEnrolled reports whether the device is enrolled in an MDM server.
func (d *Device) IsEnrolled() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.enrollment != nil
}

// Enrollment describes the MDM enrollment, or returns nil when there is none.
func (d *Device) Enrollment() *EnrollmentInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.st.enrollment
	if e == nil {
		return nil
	}
	return &EnrollmentInfo{
		ProfileIdentifier:   e.profileID,
		ServerURL:           e.mdm.ServerURL,
		CheckInURL:          checkInURL(&e.mdm),
		Topic:               e.mdm.Topic,
		SignMessage:         e.mdm.SignMessage,
		CheckOutWhenRemoved: e.mdm.CheckOutWhenRemoved,
		AccessRights:        e.mdm.AccessRights,
		UserEnrollment:      e.userEnrollment,
		Identity:            e.identity.cert,
		EnrolledAt:          e.enrolledAt,
	}
}

// IdentityTLSCertificate returns the MDM identity (the certificate the MDM
// payload's IdentityCertificateUUID names, with its key) for a Doer that
// authenticates by TLS client certificate, as a device does when the
// profile leaves SignMessage false. During an enrollment it is already the
// new identity, so that Authenticate carries it. ok is false when the
// device has none.
func (d *Device) IdentityTLSCertificate() (cert tls.Certificate, ok bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	id := d.st.pending
	if id == nil && d.st.enrollment != nil {
		id = d.st.enrollment.identity
	}
	if id == nil {
		return tls.Certificate{}, false
	}
	return tls.Certificate{Certificate: [][]byte{id.cert.Raw}, PrivateKey: id.key, Leaf: id.cert}, true
}

// GetClientCertificate fits tls.Config.GetClientCertificate: it presents
// the MDM identity when the device has one and no certificate otherwise.
// A TLS Doer built on it must not reuse a connection opened before the
// identity existed (set DisableKeepAlives, or one transport per phase).
func (d *Device) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c, ok := d.IdentityTLSCertificate()
	if !ok {
		return &tls.Certificate{}, nil
	}
	return &c, nil
}

// TrustedRoots lists the root certificates that installed profiles and
// certificate declarations added to the keychain.
func (d *Device) TrustedRoots() []*x509.Certificate {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]*x509.Certificate, 0, len(d.st.roots))
	for _, r := range d.st.roots {
		out = append(out, r.cert)
	}
	return out
}

// Identities lists the identity certificates in the keychain.
func (d *Device) Identities() []*x509.Certificate {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]*x509.Certificate, 0, len(d.st.identities))
	for _, id := range d.st.identities {
		out = append(out, id.cert)
	}
	return out
}

// InstalledProfiles lists the installed profiles in installation order.
func (d *Device) InstalledProfiles() []ProfileInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]ProfileInfo, 0, len(d.st.profiles))
	for _, p := range d.st.profiles {
		out = append(out, p.clone())
	}
	return out
}

// SetNotNow makes the device answer NotNow to the next times commands of
// requestType ("" = any type), as a locked or busy device does. times 0
// clears the behaviour.
func (d *Device) SetNotNow(requestType string, times int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if times <= 0 {
		delete(d.st.notNow, requestType)
		return
	}
	d.st.notNow[requestType] = times
}

// checkInURL is where check-ins go: CheckInURL, else ServerURL.
func checkInURL(m *profiles.MDMPayload) string {
	if m.CheckInURL != "" {
		return m.CheckInURL
	}
	return m.ServerURL
}

// enrolled is the device's current enrollment, or ErrNotEnrolled. The
// caller holds d.op, so it stays current for the operation.
func (d *Device) enrolled() (*enrollment, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.st.enrollment == nil {
		return nil, ErrNotEnrolled
	}
	return d.st.enrollment, nil
}
