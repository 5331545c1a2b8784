// Package apps is the app catalog of the enrollment programs, as seed 002's
// comments describe it: volume-purchase (VPP) store apps with device or
// user licensing, line-of-business apps with a manifest URL, and web links;
// assigned to user groups, each assignment required or available and
// optionally filtered on the device's ownership
// (device.deviceOwnership -eq "Corporate"). Sync turns assignments into
// installs for each enrolled device of each user in the group, and keeps an
// install status per app and device.
//
// The licensing rule that seed 002 reports — a device enrolled with User
// Enrollment given a device-licensed app fails with 0x87D13BA9 — is decided
// here at sync time and recorded, never sent: 0x87D13BA9 is the code Intune
// shows for it in seed 002's comments ("Apps do not get enrolled and fail
// with an error code: 0x87D13BA9"; "Intune shows 0x87D13BA9 as the reason
// the apps did not install"), and the post itself says that User
// Enrollment "must rely on Apple Volume Purchase Program (VPP) with user
// licenses". It is Intune's code, not one an Apple device sends.
package apps

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// App kinds.
const (
	KindVPP     = "vpp"      // a volume-purchase App Store app
	KindLOB     = "lob"      // a line-of-business app, installed from its manifest URL
	KindWebLink = "web-link" // a web link, installed as a web clip
)

// Licensing of a VPP app.
const (
	LicenseDevice = "device"
	LicenseUser   = "user"
)

// Assignment intents.
const (
	IntentRequired  = "required"  // installed without the user asking
	IntentAvailable = "available" // offered in the Company Portal; the user installs it
)

// Group kinds as the directory names them (enroll.GroupUsers/GroupDevices).
const (
	GroupUsers   = "user"
	GroupDevices = "device"
)

// ErrorLicenseMismatch is Intune's code, reported in seed 002's comments,
// for a device-licensed app assigned to a User Enrollment device.
const ErrorLicenseMismatch = "0x87D13BA9"

// App is one catalog entry.
type App struct {
	// ID names the app in the API (letters, digits, '.', '-', '_').
	ID   string `json:"id"`
	Name string `json:"name"`
	// Kind is KindVPP, KindLOB or KindWebLink.
	Kind string `json:"kind"`
	// BundleID is the app's bundle identifier on the device (VPP, LOB).
	BundleID string `json:"bundle_id,omitempty"`
	// ITunesStoreID is a VPP app's App Store ID.
	ITunesStoreID int64 `json:"itunes_store_id,omitempty"`
	// Licensing is a VPP app's license type: LicenseDevice or LicenseUser.
	Licensing string `json:"licensing,omitempty"`
	// ManifestURL is a LOB app's https manifest.
	ManifestURL string `json:"manifest_url,omitempty"`
	// URL is a web link's address.
	URL         string       `json:"url,omitempty"`
	Assignments []Assignment `json:"assignments"`
}

// Assignment assigns an app to a user group.
type Assignment struct {
	Group string `json:"group"`
	// Intent is IntentRequired or IntentAvailable.
	Intent string `json:"intent"`
	// Filter is an ownership rule (ParseFilter); empty for none.
	Filter string `json:"filter,omitempty"`
}

// Install states of one app on one device.
const (
	StatePending   = "pending"   // the install command is queued
	StateInstalled = "installed" // the device acknowledged it
	StateFailed    = "failed"    // the device answered with an error, or the rule failed it at sync
	StateAvailable = "available" // offered, not pushed (available intent)
	StateExcluded  = "excluded"  // the assignment's filter keeps it off this device
)

// Status is one app's install status on one enrollment.
type Status struct {
	EnrollmentID string `json:"enrollment_id"`
	User         string `json:"user,omitempty"`
	Ownership    string `json:"ownership,omitempty"`
	Mode         string `json:"mode,omitempty"`
	State        string `json:"state"`
	// CommandUUID is the install command queued for it.
	CommandUUID string `json:"command_uuid,omitempty"`
	RequestType string `json:"request_type,omitempty"`
	// ErrorCode is the failure: ErrorLicenseMismatch, or the device's
	// first ErrorChain code ("12033").
	ErrorCode string `json:"error_code,omitempty"`
	// Reason says why it is in this state, in words.
	Reason string `json:"reason,omitempty"`
	// DeviceState and RejectionReason are the device's InstallApplication
	// response keys, when it sent them.
	DeviceState     string    `json:"device_state,omitempty"`
	RejectionReason string    `json:"rejection_reason,omitempty"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// Document kinds this package keeps.
const (
	docApp    = "app"
	docStatus = "app-status"
)

// Store is what the catalog keeps and reads.
type Store interface {
	store.Documents
	ListEnrollments(ctx context.Context) ([]*store.Enrollment, error)
	CommandItems(ctx context.Context, commandUUID string) ([]*store.QueueItem, error)
}

// Directory answers group questions from the organisation directory.
type Directory interface {
	// GroupKind returns GroupUsers or GroupDevices, or an error carrying
	// 404 when there is no such group.
	GroupKind(ctx context.Context, name string) (string, error)
	// GroupMembers returns the sign-in names (UPNs) of the group's users.
	GroupMembers(ctx context.Context, name string) ([]string, error)
}

// Enqueuer queues a command the catalog built for enrollments.
type Enqueuer interface {
	Enqueue(ctx context.Context, cmd *mdm.Command, ids ...string) error
}

// Service is the app catalog over a Store and a Directory.
type Service struct {
	st      Store
	dir     Directory
	log     *slog.Logger
	now     func() time.Time
	newUUID func() string
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock.
func WithClock(now func() time.Time) Option {
	return func(s *Service) {
		if now != nil {
			s.now = now
		}
	}
}

// WithNewUUID sets how command UUIDs are made.
func WithNewUUID(f func() string) Option {
	return func(s *Service) {
		if f != nil {
			s.newUUID = f
		}
	}
}

// New returns the catalog; it panics on a nil store or directory.
func New(st Store, dir Directory, opts ...Option) *Service {
	if st == nil || dir == nil {
		panic("apps.New: nil store or directory")
	}
	s := &Service{st: st, dir: dir, now: time.Now, newUUID: randomUUID}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func invalid(format string, args ...any) error {
	return httperr.New(http.StatusBadRequest, format, args...)
}

// Bounds on a catalog entry.
const (
	maxIDLen          = 128
	maxFieldLen       = 2048
	maxAssignments    = 100
	maxStatusPerApp   = 100_000
	webClipIdentifier = "com.github.mockmdm.webclip."
)

// Check validates an app's fields, without its assignments' groups.
func (a *App) Check() error {
	if a.ID == "" || len(a.ID) > maxIDLen || strings.IndexFunc(a.ID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) >= 0 {
		return invalid("app id %q: use 1 to %d letters, digits, '.', '-' or '_'", short(a.ID), maxIDLen)
	}
	if a.ID == "sync" {
		return invalid("app id \"sync\" is taken by POST /v1/apps/sync; choose another")
	}
	for _, f := range []struct{ name, v string }{{"name", a.Name}, {"bundle_id", a.BundleID}, {"manifest_url", a.ManifestURL}, {"url", a.URL}} {
		if len(f.v) > maxFieldLen {
			return invalid("app %s: %s is %d bytes long; at most %d", a.ID, f.name, len(f.v), maxFieldLen)
		}
	}
	if strings.TrimSpace(a.Name) == "" {
		return invalid("app %s: name is required", a.ID)
	}
	switch a.Kind {
	case KindVPP:
		if a.ITunesStoreID <= 0 {
			return invalid("app %s: a VPP app needs its App Store ID, itunes_store_id (a positive integer)", a.ID)
		}
		switch a.Licensing {
		case LicenseDevice, LicenseUser:
		case "":
			return invalid("app %s: a VPP app needs licensing, %q or %q", a.ID, LicenseDevice, LicenseUser)
		default:
			return invalid("app %s: licensing %q is not %q or %q", a.ID, short(a.Licensing), LicenseDevice, LicenseUser)
		}
		if a.ManifestURL != "" || a.URL != "" {
			return invalid("app %s: a VPP app has no manifest_url or url", a.ID)
		}
	case KindLOB:
		if u, err := url.Parse(a.ManifestURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return invalid("app %s: a line-of-business app needs manifest_url, an https URL (Apple's InstallApplication requires https)", a.ID)
		}
		if a.Licensing != "" || a.ITunesStoreID != 0 || a.URL != "" {
			return invalid("app %s: a line-of-business app has no licensing, itunes_store_id or url", a.ID)
		}
	case KindWebLink:
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalid("app %s: a web link needs url, an absolute http(s) URL", a.ID)
		}
		if a.Licensing != "" || a.ITunesStoreID != 0 || a.ManifestURL != "" || a.BundleID != "" {
			return invalid("app %s: a web link has only a url", a.ID)
		}
	default:
		return invalid("app %s: kind %q is not %q, %q or %q", a.ID, short(a.Kind), KindVPP, KindLOB, KindWebLink)
	}
	if len(a.Assignments) > maxAssignments {
		return invalid("app %s: %d assignments; at most %d", a.ID, len(a.Assignments), maxAssignments)
	}
	for i, as := range a.Assignments {
		switch as.Intent {
		case IntentRequired, IntentAvailable:
		default:
			return invalid("app %s: assignments[%d].intent %q is not %q or %q", a.ID, i, short(as.Intent), IntentRequired, IntentAvailable)
		}
		if _, _, err := ParseFilter(as.Filter); err != nil {
			return invalid("app %s: assignments[%d]: %v", a.ID, i, err)
		}
		if strings.TrimSpace(as.Group) == "" {
			return invalid("app %s: assignments[%d].group is required", a.ID, i)
		}
	}
	// The install command must build and pass Apple's schema.
	if _, err := a.command("CHECK"); err != nil {
		return invalid("app %s: %v", a.ID, err)
	}
	return nil
}

// PutApp creates or replaces an app. Its assignments must name user
// groups: apps, like enrollment type profiles, are assigned to users
// (seed 002: "The assignment must be a user group").
func (s *Service) PutApp(ctx context.Context, a App) error {
	if err := a.Check(); err != nil {
		return err
	}
	for i, as := range a.Assignments {
		kind, err := s.dir.GroupKind(ctx, as.Group)
		if err != nil {
			if httperr.StatusOf(err) == http.StatusNotFound {
				return invalid("app %s: assignments[%d]: group %q does not exist in the directory", a.ID, i, short(as.Group))
			}
			return err
		}
		if kind != GroupUsers {
			return invalid("app %s: assignments[%d]: %q is a device group; apps are assigned to user groups only, with an ownership filter to pick devices", a.ID, i, as.Group)
		}
	}
	if a.Assignments == nil {
		a.Assignments = []Assignment{}
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.st.PutDocument(ctx, docApp, a.ID, b)
}

// App returns an app, or a 404 error.
func (s *Service) App(ctx context.Context, id string) (*App, error) {
	b, err := s.st.GetDocument(ctx, docApp, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, httperr.New(http.StatusNotFound, "no app %q in the catalog (GET /v1/apps lists them)", short(id))
	}
	if err != nil {
		return nil, err
	}
	var a App
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Apps lists the catalog by ID.
func (s *Service) Apps(ctx context.Context) ([]App, error) {
	docs, err := s.st.ListDocuments(ctx, docApp)
	if err != nil {
		return nil, err
	}
	out := make([]App, 0, len(docs))
	for _, d := range docs {
		var a App
		if err := json.Unmarshal(d.Data, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// DeleteApp removes an app and its statuses (installed apps stay on the devices).
func (s *Service) DeleteApp(ctx context.Context, id string) error {
	if _, err := s.App(ctx, id); err != nil {
		return err
	}
	if err := s.st.DeleteDocument(ctx, docStatus, id); err != nil {
		return err
	}
	return s.st.DeleteDocument(ctx, docApp, id)
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func randomUUID() string { return strings.ToUpper(uuid.NewString()) }

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
