// Package api holds the JSON wire types of the mockmdm REST API (served by
// api/handlers under /v1, described by docs/openapi.yaml) and a Go client
// for it. It imports only the standard library, so a test suite can drive a
// mockmdm server without pulling in the server.
package api

import (
	"encoding/json"
	"time"
)

// ServerInfo is the static description of a server (GET /v1/info): where a
// device enrolls and which push topic the server speaks for.
type ServerInfo struct {
	Version       string `json:"version"`
	EnrollmentURL string `json:"enrollment_url"`
	CAURL         string `json:"ca_url"`
	SCEPURL       string `json:"scep_url,omitempty"`
	ServerURL     string `json:"server_url,omitempty"`
	CheckInURL    string `json:"checkin_url,omitempty"`
	Topic         string `json:"topic"`
	// APNsURL is the base URL of the mock APNs on this server.
	APNsURL string `json:"apns_url,omitempty"`
}

// Enrollment states.
const (
	// StateAuthenticated: the device sent Authenticate but no TokenUpdate yet.
	StateAuthenticated = "authenticated"
	// StateEnrolled: a TokenUpdate completed the enrollment.
	StateEnrolled = "enrolled"
	// StateCheckedOut: the device sent CheckOut (the MDM profile was removed).
	StateCheckedOut = "checked_out"
)

// Enrollment is one enrollment channel as the API shows it. Secrets the
// server holds for it (push token and magic, unlock token, bootstrap token)
// are never shown; PushTokenPresent says whether the server can push.
type Enrollment struct {
	// ID is the enrollment ID used in every other API call.
	ID string `json:"id"`
	// Type is the channel type: Device, User, SharedIPad,
	// UserEnrollmentDevice or UserEnrollment.
	Type string `json:"type"`
	// EnrollmentType says Type in words, e.g. "user enrollment (BYOD)".
	EnrollmentType string `json:"enrollment_type"`
	// Channel is "device" or "user".
	Channel string `json:"channel"`
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
	PushTokenPresent      bool   `json:"push_token_present"`
	AwaitingConfiguration bool   `json:"awaiting_configuration"`

	// State is one of StateAuthenticated, StateEnrolled, StateCheckedOut.
	State      string `json:"state"`
	Enrolled   bool   `json:"enrolled"`
	CheckedOut bool   `json:"checked_out"`

	AuthenticatedAt time.Time `json:"authenticated_at,omitzero"`
	EnrolledAt      time.Time `json:"enrolled_at,omitzero"`
	LastSeen        time.Time `json:"last_seen,omitzero"`

	// IdentityCertSHA256 is the lowercase hex SHA-256 of the identity
	// certificate bound to the device channel (empty on user channels).
	IdentityCertSHA256 string    `json:"identity_cert_sha256,omitempty"`
	IdentityNotAfter   time.Time `json:"identity_not_after,omitzero"`

	// Management is how the enrollment came about and what it allows.
	Management Management `json:"management"`
}

// Management is what an enrollment program decided for an enrollment.
type Management struct {
	// Ticket is the enrollment ticket its profile carried.
	Ticket string `json:"ticket,omitempty"`
	// Program: profile, ade, configurator, company-portal, web or account-driven.
	Program string `json:"program,omitempty"`
	// Mode: device or user-enrollment.
	Mode string `json:"mode,omitempty"`
	// Ownership: corporate or personal.
	Ownership  string `json:"ownership,omitempty"`
	Supervised bool   `json:"supervised"`
	// User is the affiliated organisation user (user affinity).
	User           string `json:"user,omitempty"`
	ManagedAppleID string `json:"managed_apple_id,omitempty"`
	// AuthMethod: company-portal, setup-assistant, setup-assistant-modern, web, account-driven or none.
	AuthMethod  string `json:"auth_method,omitempty"`
	TypeProfile string `json:"type_profile,omitempty"`
	DEM         bool   `json:"dem"`
	// Locked: waiting for the Company Portal sign-in.
	Locked bool `json:"locked"`
	// Registered in the organisation's directory.
	Registered           bool `json:"registered"`
	CompliantInMDM       bool `json:"compliant_in_mdm"`
	CompliantInDirectory bool `json:"compliant_in_directory"`
}

// EnrollmentList is the body of GET /v1/enrollments.
type EnrollmentList struct {
	Enrollments []Enrollment `json:"enrollments"`
}

// EnqueueRequest is the body of POST /v1/commands. Exactly one of Command
// (typed JSON with Apple's key names) and RawPlist (a whole command plist)
// must be set.
type EnqueueRequest struct {
	EnrollmentIDs []string `json:"enrollment_ids"`
	// Command is the Command dictionary as JSON, e.g.
	// {"RequestType":"DeviceInformation","Queries":["DeviceName"]}.
	Command json.RawMessage `json:"command,omitempty"`
	// RawPlist is a complete command plist (CommandUUID optional, Command
	// dictionary with RequestType), for commands with no typed form.
	RawPlist string `json:"raw_plist,omitempty"`
	// CommandUUID chooses the command's UUID; the server makes one if empty.
	CommandUUID string `json:"command_uuid,omitempty"`
	// Push wakes the enrollments through APNs once the command is queued
	// (default true); false only queues it, for a test that wakes the
	// device itself.
	Push *bool `json:"push,omitempty"`
	// EncryptProfile encrypts an InstallProfile's Payload (an unsigned
	// profile) to the identity certificate the target enrollment
	// authenticated with: its payloads go in EncryptedPayloadContent, as
	// Apple's profile format allows. Each device has its own identity, so
	// it takes exactly one enrollment.
	EncryptProfile bool `json:"encrypt_profile,omitempty"`
}

// EnqueueResponse is the answer to POST /v1/commands.
type EnqueueResponse struct {
	CommandUUID   string   `json:"command_uuid"`
	RequestType   string   `json:"request_type"`
	EnrollmentIDs []string `json:"enrollment_ids"`
	// Push is what APNs answered for each enrollment (absent when the
	// request said "push": false). A failed push does not undo the
	// enqueue: the command waits for the device's next connect.
	Push []PushResult `json:"push,omitempty"`
	// Lint is what the profile linter found in an InstallProfile's Payload
	// (absent for other commands, and when it found nothing). It does not
	// stop the enqueue: a test may well mean to send a broken profile.
	Lint []LintFinding `json:"lint,omitempty"`
}

// PushRequest is the body of POST /v1/push.
type PushRequest struct {
	EnrollmentIDs []string `json:"enrollment_ids"`
}

// PushResult is what happened to one enrollment's push.
type PushResult struct {
	EnrollmentID string `json:"enrollment_id"`
	// Pushed is true when APNs accepted the push (200).
	Pushed bool `json:"pushed"`
	// APNsStatus is APNs's HTTP status (0: no answer, or not sent).
	APNsStatus int    `json:"apns_status,omitempty"`
	APNsID     string `json:"apns_id,omitempty"`
	// Reason is APNs's reason code (BadDeviceToken, Unregistered…).
	Reason string `json:"reason,omitempty"`
	// Error says what went wrong and what to do, when Pushed is false.
	Error string `json:"error,omitempty"`
}

// PushResponse is the answer to POST /v1/push.
type PushResponse struct {
	Results []PushResult `json:"results"`
}

// Push certificate states.
const (
	PushCertValid        = "valid"
	PushCertExpiringSoon = "expiring_soon"
	PushCertExpired      = "expired"
)

// PushCertStatus describes the push certificate the server pushes with.
type PushCertStatus struct {
	Topic     string    `json:"topic"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// DaysLeft is whole days until NotAfter (negative once expired).
	DaysLeft int `json:"days_left"`
	// State is valid, expiring_soon (under 30 days) or expired.
	State string `json:"state"`
	// Source is "mock" (made by mockmdm) or "uploaded".
	Source string `json:"source"`
	// PushURL is where pushes go: the in-process mock APNs, Apple, or a URL.
	PushURL string `json:"push_url"`
	// Warnings say what needs attention: expiry, enrollments under
	// another topic (they never receive pushes from this certificate).
	Warnings []string `json:"warnings,omitempty"`
}

// ADETokenStatus is GET /v1/ade/token: the uploaded ADE server token.
type ADETokenStatus struct {
	// State is active, expiring-soon or expired.
	State       string    `json:"state"`
	DaysLeft    int       `json:"days_left"`
	Expiry      time.Time `json:"access_token_expiry"`
	ConsumerKey string    `json:"consumer_key"`
	UploadedAt  string    `json:"uploaded_at"`
}

// PushCertUpload is the body of PUT /v1/push/certificate: a certificate
// and key as PEM, or a PKCS#12 file (base64 in JSON), with the password
// that decrypts the PKCS#12 or an encrypted PEM key.
type PushCertUpload struct {
	CertificatePEM string `json:"certificate_pem,omitempty"`
	KeyPEM         string `json:"key_pem,omitempty"`
	PKCS12         []byte `json:"pkcs12,omitempty"`
	Password       string `json:"password,omitempty"`
	// Force accepts a certificate whose topic differs from the one devices
	// enrolled under (they will never receive its pushes: they must enroll
	// again); without it such an upload is refused.
	Force bool `json:"force,omitempty"`
}

// PortalRequest is the body of POST /v1/push/portal/certificates: what an
// admin uploads to Apple's Push Certificates Portal.
type PortalRequest struct {
	// Request is the MDM-vendor-signed push certificate request: the
	// base64 plist with PushCertRequestCSR, PushCertCertificateChain and
	// PushCertSignature.
	Request string `json:"request"`
	// RenewTopic renews the certificate of this topic (the new certificate
	// keeps it); empty creates a certificate with a new topic.
	RenewTopic string `json:"renew_topic,omitempty"`
}

// PortalResponse is the certificate the portal issued.
type PortalResponse struct {
	CertificatePEM string    `json:"certificate_pem"`
	Topic          string    `json:"topic"`
	Renewed        bool      `json:"renewed"`
	NotAfter       time.Time `json:"not_after"`
}

// VendorCertRequest is the body of POST /v1/push/portal/vendor-certificate.
type VendorCertRequest struct {
	Name string `json:"name"`
}

// VendorCertResponse is a mock MDM vendor (CSR signing) certificate and
// its key, issued by the mock Apple push CA, for signing push requests.
type VendorCertResponse struct {
	CertificatePEM string `json:"certificate_pem"`
	KeyPEM         string `json:"key_pem"`
}

// APNsStats is what the in-process mock APNs did.
type APNsStats struct {
	Registered   int              `json:"registered"`
	Connected    int              `json:"connected"`
	Pending      int              `json:"pending"`
	Accepted     int64            `json:"accepted"`
	Delivered    int64            `json:"delivered"`
	Acknowledged int64            `json:"acknowledged"`
	Coalesced    int64            `json:"coalesced"`
	Expired      int64            `json:"expired"`
	Dropped      int64            `json:"dropped"`
	Refused      map[string]int64 `json:"refused"`
	// Runtime is the server process's memory, with ?runtime=true (it runs
	// a garbage collection first, so the figures are live memory).
	Runtime *RuntimeStats `json:"runtime,omitempty"`
}

// RuntimeStats is the Go runtime's view of the server process.
type RuntimeStats struct {
	Goroutines      int    `json:"goroutines"`
	HeapInuseBytes  uint64 `json:"heap_inuse_bytes"`
	StackInuseBytes uint64 `json:"stack_inuse_bytes"`
}

// APNsFault is the body of POST /v1/apns/faults: make pushes to one
// enrollment (or one token) answer Reason for Times pushes (0: until
// cleared), or, with Ratio, that share of all pushes.
type APNsFault struct {
	EnrollmentID string  `json:"enrollment_id,omitempty"`
	Token        string  `json:"token,omitempty"`
	Reason       string  `json:"reason"`
	Times        int     `json:"times,omitempty"`
	Ratio        float64 `json:"ratio,omitempty"`
}

// ErrorChainItem is one element of a device's ErrorChain, with Apple's key names.
type ErrorChainItem struct {
	ErrorCode            int64  `json:"ErrorCode"`
	ErrorDomain          string `json:"ErrorDomain"`
	LocalizedDescription string `json:"LocalizedDescription,omitempty"`
	USEnglishDescription string `json:"USEnglishDescription,omitempty"`
}

// CommandResult is where one command stands for one enrollment.
type CommandResult struct {
	EnrollmentID string `json:"enrollment_id"`
	// Status is Pending, NotNow, Acknowledged, Error or CommandFormatError.
	Status    string    `json:"status"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Result is the device's last answer converted to JSON: dictionaries
	// become objects, data base64 strings, dates RFC 3339 strings.
	Result json.RawMessage `json:"result,omitempty"`
	// ResultPlist is the device's last answer as it was sent (XML).
	ResultPlist string `json:"result_plist,omitempty"`
	// ResultBase64 holds an answer that is not UTF-8 text (a binary plist).
	ResultBase64 []byte           `json:"result_base64,omitempty"`
	ErrorChain   []ErrorChainItem `json:"error_chain,omitempty"`
}

// CommandStatus is the body of GET /v1/commands/{uuid}.
type CommandStatus struct {
	CommandUUID string    `json:"command_uuid"`
	RequestType string    `json:"request_type"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	// Done is true when every target enrollment gave a final answer.
	Done    bool            `json:"done"`
	Results []CommandResult `json:"results"`
}

// QueueItem is one unanswered command in an enrollment's queue.
type QueueItem struct {
	CommandUUID string    `json:"command_uuid"`
	RequestType string    `json:"request_type"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// Queue is the body of GET /v1/enrollments/{id}/queue: the commands that
// have no final answer yet, oldest first.
type Queue struct {
	EnrollmentID string      `json:"enrollment_id"`
	Items        []QueueItem `json:"items"`
}

// TranscriptEntry is one recorded exchange with a device or client.
type TranscriptEntry struct {
	Seq          int64     `json:"seq"`
	Time         time.Time `json:"time"`
	EnrollmentID string    `json:"enrollment_id,omitempty"`
	RequestID    string    `json:"request_id,omitempty"`
	// Kind is the endpoint family: checkin, command, scep, enroll.
	Kind        string `json:"kind"`
	MessageType string `json:"message_type,omitempty"`
	CommandUUID string `json:"command_uuid,omitempty"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	HTTPStatus  int    `json:"http_status"`
	// Note says why a request was refused, or which rule fired.
	Note string `json:"note,omitempty"`
	// RequestPlist is the request body when it is text (normally an XML plist).
	RequestPlist string `json:"request_plist,omitempty"`
	// RequestBase64 is the request body when it is not UTF-8 text.
	RequestBase64 []byte `json:"request_base64,omitempty"`
	// Response is the response body when it is text.
	Response string `json:"response,omitempty"`
	// ResponseBase64 is the response body when it is not UTF-8 text.
	ResponseBase64 []byte `json:"response_base64,omitempty"`
	// RequestDecoded is the request plist converted to JSON, when it is one.
	RequestDecoded json.RawMessage `json:"request_decoded,omitempty"`
}

// Transcript is the body of GET /v1/transcript and
// GET /v1/enrollments/{id}/transcript.
type Transcript struct {
	Entries []TranscriptEntry `json:"entries"`
}

// MintChallengeRequest is the optional body of POST /v1/scep/challenges.
type MintChallengeRequest struct {
	// TTL is a Go duration ("1h", "15m"); default 1h, at most 720h (30 days).
	TTL string `json:"ttl,omitempty"`
}

// Challenge is a one-time SCEP challenge password.
type Challenge struct {
	Challenge string    `json:"challenge"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ResetResponse is the answer to POST /v1/reset.
type ResetResponse struct {
	Reset bool `json:"reset"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// LintFinding is one way a profile breaks Apple's profile schemas or the
// rules of the device it is linted for (see profiles.Finding).
type LintFinding struct {
	// Severity is "error" (a device refuses the profile, or the value is
	// broken) or "warning" (the device ignores part of it).
	Severity string `json:"severity"`
	// Rule is a stable identifier: unknown-key, wrong-type,
	// missing-required, not-in-rangelist, out-of-range, pattern,
	// repetition, too-deep, unknown-payload-type, platform,
	// user-enrollment, supervised-only, duplicate-uuid or encrypted.
	Rule              string `json:"rule"`
	PayloadType       string `json:"payload_type,omitempty"`
	PayloadIdentifier string `json:"payload_identifier,omitempty"`
	// Path locates the value, e.g. "PayloadContent[2].ServerURL".
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// ProfileLintResponse is the answer to POST /v1/profiles/lint.
type ProfileLintResponse struct {
	// Signed: the profile is CMS SignedData whose signature matches its
	// content (a signature that does not match is refused with 400).
	Signed bool `json:"signed"`
	// Verified: the signer chains to this server's test CA.
	Verified bool `json:"verified"`
	// VerifyError says why a signed profile is not Verified.
	VerifyError string `json:"verify_error,omitempty"`
	// Signer is the signer certificate's subject.
	Signer string `json:"signer,omitempty"`
	// Errors counts the findings of severity "error".
	Errors   int           `json:"errors"`
	Findings []LintFinding `json:"findings"`
}

// Declaration is a declarative device management declaration (Apple's
// object: Type, Identifier, ServerToken, Payload).
type Declaration struct {
	Type        string         `json:"Type"`
	Identifier  string         `json:"Identifier,omitempty"`
	ServerToken string         `json:"ServerToken,omitempty"`
	Payload     map[string]any `json:"Payload"`
}

// EnrollmentDeclarations is an enrollment's declarations and the status its
// device last reported (GET /v1/enrollments/{id}/declarations).
type EnrollmentDeclarations struct {
	EnrollmentID      string             `json:"enrollment_id"`
	Identifiers       []string           `json:"identifiers"`
	DeclarationsToken string             `json:"declarations_token"`
	Declarations      []Declaration      `json:"declarations"`
	Status            *DeclarativeStatus `json:"status"`
}

// DeclarativeStatus is what a device reported through the status endpoint.
type DeclarativeStatus struct {
	ReceivedAt time.Time `json:"received_at"`
	// Report is the last report as sent; StatusItems every report's
	// StatusItems merged.
	Report      json.RawMessage `json:"report"`
	StatusItems map[string]any  `json:"status_items"`
	Errors      []any           `json:"errors"`
}

// DeclarationAssignment answers POST /v1/declaration-assignments.
type DeclarationAssignment struct {
	Assigned          int    `json:"assigned"`
	DeclarationsToken string `json:"declarations_token"`
}

// HostedFile answers PUT /v1/hosted-profiles/{name} and
// PUT /v1/hosted-data/{name}: a file the server hosts for devices to
// download.
type HostedFile struct {
	Name string `json:"name"`
	// URL is where devices download it: what a declarative legacy
	// configuration's ProfileURL, or an asset's Reference.DataURL, gives.
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
	// SHA256 is the hex SHA-256 of the file: an asset's
	// Reference.Hash-SHA-256.
	SHA256 string `json:"sha256"`
	// For a profile: its PayloadIdentifier and whether it is signed.
	PayloadIdentifier string `json:"payload_identifier,omitempty"`
	Signed            bool   `json:"signed,omitempty"`
}
