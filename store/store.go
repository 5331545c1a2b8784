// Package store holds the record types and the small interfaces through which
// mockmdm keeps state, and the one not-found convention (ErrNotFound).
//
// Backends: store/memory (tests, mdmtest) and store/sqlite (the embedded
// default). Both pass the battery in store/storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (possibly wrapped) when a record does not exist.
var ErrNotFound = errors.New("not found")

// Enrollment is one enrollment channel as the server knows it.
// Binding is what the device endpoints check on every request: which
// identity certificate an enrollment is bound to, and whether it checked
// out. Stores read it without copying the whole record.
type Binding struct {
	ID         string
	CertHash   string
	CheckedOut bool
}

type Enrollment struct {
	// ID is the normalized enrollment ID (mdm.ResolvedID.ID).
	ID string `json:"id"`
	// Type is an mdm.EnrollType string (Device, User, UserEnrollmentDevice…).
	Type string `json:"type"`
	// DeviceID is the ID of the device channel this channel belongs to.
	DeviceID string `json:"device_id"`

	UDID             string `json:"udid,omitempty"`
	EnrollmentID     string `json:"enrollment_id,omitempty"`
	UserID           string `json:"user_id,omitempty"`
	UserShortName    string `json:"user_short_name,omitempty"`
	UserLongName     string `json:"user_long_name,omitempty"`
	EnrollmentUserID string `json:"enrollment_user_id,omitempty"`

	SerialNumber string `json:"serial_number,omitempty"`
	Model        string `json:"model,omitempty"`
	ModelName    string `json:"model_name,omitempty"`
	ProductName  string `json:"product_name,omitempty"`
	DeviceName   string `json:"device_name,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	BuildVersion string `json:"build_version,omitempty"`
	IMEI         string `json:"imei,omitempty"`
	MEID         string `json:"meid,omitempty"`

	Topic                 string `json:"topic,omitempty"`
	PushToken             []byte `json:"push_token,omitempty"`
	PushMagic             string `json:"push_magic,omitempty"`
	UnlockToken           []byte `json:"unlock_token,omitempty"`
	AwaitingConfiguration bool   `json:"awaiting_configuration"`
	BootstrapToken        []byte `json:"bootstrap_token,omitempty"`

	// CertHash is the lowercase hex SHA-256 of the identity certificate's DER
	// bound to the device channel at Authenticate (empty on user channels).
	CertHash string `json:"cert_hash,omitempty"`
	// CertNotAfter is when that identity certificate expires.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`

	// Enrolled is true from the first TokenUpdate until CheckOut or a new Authenticate.
	Enrolled bool `json:"enrolled"`
	// CheckedOut is true once the device sent CheckOut.
	CheckedOut bool `json:"checked_out"`

	AuthenticatedAt time.Time `json:"authenticated_at,omitzero"`
	EnrolledAt      time.Time `json:"enrolled_at,omitzero"`
	LastSeen        time.Time `json:"last_seen,omitzero"`

	// Management is how the enrollment came about (program, ownership,
	// user affinity…) and so what it allows; zero for a plain profile
	// enrollment that no enrollment program prepared.
	Management Management `json:"management"`
}

// Enrollment programs: the path that produced an enrollment profile.
const (
	ProgramProfile       = "profile"        // the plain /enroll profile download
	ProgramADE           = "ade"            // Automated Device Enrollment
	ProgramConfigurator  = "configurator"   // Apple Configurator (USB)
	ProgramCompanyPortal = "company-portal" // BYOD through the Company Portal
	ProgramWeb           = "web"            // web-based device enrollment
	ProgramAccountDriven = "account-driven" // account-driven user enrollment
)

// Enrollment modes: what the device enrolled as.
const (
	ModeDevice         = "device"          // device enrollment: the whole device is managed
	ModeUserEnrollment = "user-enrollment" // User Enrollment: a managed partition only
)

// Ownership values.
const (
	OwnershipCorporate = "corporate"
	OwnershipPersonal  = "personal"
)

// Management is what an enrollment program decided for an enrollment. The
// program writes it into an enrollment ticket when it serves the profile;
// the check-in service copies it onto the enrollment at Authenticate.
type Management struct {
	// Ticket is the enrollment ticket the device's profile carried.
	Ticket string `json:"ticket,omitempty"`
	// Program is one of the Program constants ("" = not recorded).
	Program string `json:"program,omitempty"`
	// Mode is ModeDevice or ModeUserEnrollment.
	Mode string `json:"mode,omitempty"`
	// Ownership is OwnershipCorporate or OwnershipPersonal.
	Ownership  string `json:"ownership,omitempty"`
	Supervised bool   `json:"supervised,omitempty"`
	// User is the organisation user the device is affiliated with
	// (user@contoso.com); empty without user affinity.
	User string `json:"user,omitempty"`
	// ManagedAppleID is the Managed Apple ID of a User Enrollment.
	ManagedAppleID string `json:"managed_apple_id,omitempty"`
	// AuthMethod is how the user authenticated: company-portal,
	// setup-assistant, setup-assistant-modern, web, account-driven or none.
	AuthMethod string `json:"auth_method,omitempty"`
	// TypeProfile names the enrollment type profile or ADE profile applied.
	TypeProfile string `json:"type_profile,omitempty"`
	// DEM is true when a device enrollment manager account enrolled it.
	DEM bool `json:"dem,omitempty"`
	// Locked is true while the device waits for a Company Portal sign-in
	// (ADE with Company Portal authentication).
	Locked bool `json:"locked,omitempty"`
	// Registered is true once the device is registered with the
	// organisation's directory (the Company Portal sign-in completes it).
	Registered bool `json:"registered,omitempty"`
	// CompliantInMDM and CompliantInDirectory are the two compliance views
	// seed 000 describes: after Setup Assistant with modern authentication
	// the device is compliant in the MDM but not yet in the directory.
	CompliantInMDM       bool `json:"compliant_in_mdm,omitempty"`
	CompliantInDirectory bool `json:"compliant_in_directory,omitempty"`
}

// Enrollments keeps enrollment records.
type Enrollments interface {
	// PutEnrollment creates or replaces the record with e.ID.
	PutEnrollment(ctx context.Context, e *Enrollment) error
	// GetEnrollment returns the record or ErrNotFound.
	GetEnrollment(ctx context.Context, id string) (*Enrollment, error)
	// ListEnrollments returns every record, ordered by ID.
	ListEnrollments(ctx context.Context) ([]*Enrollment, error)
	// EnrollmentByCertHash returns the device channel bound to the identity
	// certificate hash, or ErrNotFound.
	EnrollmentByCertHash(ctx context.Context, hash string) (*Enrollment, error)
	// TouchEnrollment sets LastSeen (cheap: it runs on every request).
	TouchEnrollment(ctx context.Context, id string, at time.Time) error
}

// Command statuses in the queue. A queued command is Pending until the device
// answers; NotNow keeps it queued; the others are final.
const (
	CommandPending            = "Pending"
	CommandNotNow             = "NotNow"
	CommandAcknowledged       = "Acknowledged"
	CommandError              = "Error"
	CommandCommandFormatError = "CommandFormatError"
)

// IsFinal reports whether a queue status is an answer that ends the command.
func IsFinal(status string) bool {
	return status == CommandAcknowledged || status == CommandError || status == CommandCommandFormatError
}

// Command is a command the API accepted.
type Command struct {
	UUID        string    `json:"command_uuid"`
	RequestType string    `json:"request_type"`
	Raw         []byte    `json:"-"` // the plist sent to the device
	CreatedAt   time.Time `json:"created_at"`
}

// QueueItem is one command for one enrollment and where it stands.
type QueueItem struct {
	EnrollmentID string    `json:"enrollment_id"`
	CommandUUID  string    `json:"command_uuid"`
	RequestType  string    `json:"request_type"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Result is the raw plist of the device's last answer (including NotNow).
	Result []byte `json:"-"`
	// Command is the command's raw plist.
	Command []byte `json:"-"`
}

// Queue is the per-enrollment FIFO of commands.
type Queue interface {
	// Enqueue adds cmd to the end of each enrollment's queue, atomically and
	// durably: once it returns nil the command survives a crash.
	Enqueue(ctx context.Context, cmd *Command, enrollmentIDs ...string) error
	// NextCommand returns the oldest command for id that is Pending, or also
	// NotNow when skipNotNow is false; ErrNotFound when there is none.
	NextCommand(ctx context.Context, id string, skipNotNow bool) (*QueueItem, error)
	// SaveResult records a device's answer (status is an mdm Status other
	// than Idle) with its raw plist; ErrNotFound if the command is not queued
	// for id. A final answer is kept and the command leaves the queue.
	SaveResult(ctx context.Context, id, commandUUID, status string, raw []byte, at time.Time) error
	// QueueItems lists the commands for id that have no final answer yet, oldest first.
	QueueItems(ctx context.Context, id string) ([]*QueueItem, error)
	// CommandItems lists every enrollment's item for one command (queued or answered);
	// ErrNotFound if no such command.
	CommandItems(ctx context.Context, commandUUID string) ([]*QueueItem, error)
	// ClearQueue drops the unanswered commands of id (Apple's Authenticate resets the queue).
	ClearQueue(ctx context.Context, id string) error
}

// TranscriptEntry is one exchange with a device or client.
type TranscriptEntry struct {
	Seq          int64     `json:"seq"`
	Time         time.Time `json:"time"`
	EnrollmentID string    `json:"enrollment_id,omitempty"`
	RequestID    string    `json:"request_id,omitempty"`
	// Kind is the endpoint family: checkin, command, scep, enroll.
	Kind string `json:"kind"`
	// MessageType is the check-in MessageType or command Status/RequestType.
	MessageType string `json:"message_type,omitempty"`
	CommandUUID string `json:"command_uuid,omitempty"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	Status      int    `json:"http_status"`
	// Note says why a request was refused, or which rule fired.
	Note string `json:"note,omitempty"`
	// Signature is the request's Mdm-Signature header (base64 CMS), kept so
	// the transcript can say who signed the message and whether it verified.
	Signature string `json:"signature,omitempty"`
	Request   []byte `json:"-"`
	Response  []byte `json:"-"`
}

// Transcripts keeps the transcript of every exchange.
type Transcripts interface {
	// AppendTranscript stores entries, assigning Seq in order.
	AppendTranscript(ctx context.Context, entries ...*TranscriptEntry) error
	// Transcript returns an enrollment's entries with Seq > afterSeq, oldest
	// first, at most limit (0: no limit). The empty ID means every entry.
	Transcript(ctx context.Context, enrollmentID string, afterSeq int64, limit int) ([]*TranscriptEntry, error)
}

// Challenges keeps one-time SCEP challenges.
type Challenges interface {
	// PutChallenge stores a one-time challenge valid until expires.
	PutChallenge(ctx context.Context, challenge string, expires time.Time) error
	// ConsumeChallenge deletes the challenge and reports whether it existed
	// and was unexpired at now. It succeeds at most once per challenge.
	ConsumeChallenge(ctx context.Context, challenge string, now time.Time) (bool, error)
}

// Document is one small JSON record of an enrollment program (ADE state,
// the organisation directory, enrollment tickets…), kept by kind and ID so
// that each program owns its own record shapes without a migration each.
type Document struct {
	Kind      string    `json:"kind"`
	ID        string    `json:"id"`
	Data      []byte    `json:"data"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Documents keeps Document records.
type Documents interface {
	// PutDocument creates or replaces the document kind/id.
	PutDocument(ctx context.Context, kind, id string, data []byte) error
	// GetDocument returns the document's data or ErrNotFound.
	GetDocument(ctx context.Context, kind, id string) ([]byte, error)
	// ListDocuments returns the documents of one kind, ordered by ID.
	ListDocuments(ctx context.Context, kind string) ([]*Document, error)
	// DeleteDocument deletes the document; deleting a missing one is not an error.
	DeleteDocument(ctx context.Context, kind, id string) error
}

// Store is everything a backend provides.
type Store interface {
	Enrollments
	Queue
	Transcripts
	Challenges
	Documents
	// Reset deletes all state (enrollments, queue, results, transcript, challenges, documents).
	Reset(ctx context.Context) error
	Close() error
}
