package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

// SignatureHeader carries the base64 HMAC-SHA256 of the request body, keyed
// by the configured secret, as NanoMDM's webhook sends it (v0.9.0 added
// signing). A receiver recomputes it over the exact bytes it read.
const SignatureHeader = "X-Hmac-Signature"

// Event is one webhook event in MicroMDM's format, the one NanoMDM's
// microwebhook also sends: a topic ("mdm.Authenticate", "mdm.Connect"…), an
// ID, when it happened, and either a check-in or an acknowledge payload with
// the device's raw plist (base64 in JSON, as []byte marshals).
type Event struct {
	Topic     string    `json:"topic"`
	EventID   string    `json:"event_id"`
	CreatedAt time.Time `json:"created_at"`

	AcknowledgeEvent *AcknowledgeEvent `json:"acknowledge_event,omitempty"`
	CheckinEvent     *CheckinEvent     `json:"checkin_event,omitempty"`

	// enrollment is the normalized enrollment ID (mdm.ResolvedID.ID) the
	// event belongs to: the key of its delivery order. Not on the wire, as
	// neither MicroMDM nor NanoMDM send it.
	enrollment string
}

// Enrollment is the normalized enrollment ID the event belongs to (the ID
// the REST API uses), for matching in Wait.
func (e Event) Enrollment() string { return e.enrollment }

// CheckinEvent is the payload of a check-in topic. UDID is set for device
// enrollments, EnrollmentID for User Enrollments (as NanoMDM adds it);
// url_params are the query parameters of the check-in URL (MicroMDM sends
// null when there are none, so the key is always present).
type CheckinEvent struct {
	UDID         string            `json:"udid,omitempty"`
	EnrollmentID string            `json:"enrollment_id,omitempty"`
	Params       map[string]string `json:"url_params"`
	RawPayload   []byte            `json:"raw_payload"`
}

// AcknowledgeEvent is the payload of mdm.Connect: a command result (or Idle).
type AcknowledgeEvent struct {
	UDID         string            `json:"udid,omitempty"`
	EnrollmentID string            `json:"enrollment_id,omitempty"`
	Status       string            `json:"status"`
	CommandUUID  string            `json:"command_uuid,omitempty"`
	Params       map[string]string `json:"url_params,omitempty"`
	RawPayload   []byte            `json:"raw_payload"`
}

// TopicConnect is the topic of every command-endpoint exchange (results and Idle).
const TopicConnect = "mdm.Connect"

// Topic returns the MicroMDM topic of a check-in MessageType ("mdm." + it).
func Topic(messageType string) string { return "mdm." + messageType }

// Sign returns the value of SignatureHeader for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret, in constant time.
func Verify(secret, body []byte, sig string) bool {
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// eventFromEntry builds the event of a transcript entry: only successful
// (2xx) check-in and command exchanges are events. The raw request is decoded
// again (it was decoded once already on the request path, so it decodes) to
// read the UDID and EnrollmentID the wire format carries; ok is false for an
// entry that is not an event.
func eventFromEntry(e *store.TranscriptEntry, now time.Time) (ev Event, ok bool, err error) {
	if e == nil || e.Status < 200 || e.Status > 299 || len(e.Request) == 0 {
		return Event{}, false, nil
	}
	created := e.Time
	if created.IsZero() {
		created = now
	}
	switch e.Kind {
	case "checkin":
		msg, err := mdm.DecodeCheckin(e.Request)
		if err != nil {
			return Event{}, false, fmt.Errorf("decoding the recorded %s check-in: %w", e.MessageType, err)
		}
		ids := msg.IDs()
		return Event{
			Topic: Topic(msg.Type()), EventID: newEventID(), CreatedAt: created.UTC(),
			CheckinEvent: &CheckinEvent{UDID: ids.UDID, EnrollmentID: ids.EnrollmentID, RawPayload: e.Request, Params: urlParams(e.Path)},
			enrollment:   resolvedOr(ids, e.EnrollmentID),
		}, true, nil
	case "command":
		res, err := mdm.DecodeCommandResults(e.Request)
		if err != nil {
			return Event{}, false, fmt.Errorf("decoding the recorded command result: %w", err)
		}
		return Event{
			Topic: TopicConnect, EventID: newEventID(), CreatedAt: created.UTC(),
			AcknowledgeEvent: &AcknowledgeEvent{
				UDID: res.UDID, EnrollmentID: res.EnrollmentID, Status: res.Status,
				CommandUUID: res.CommandUUID, RawPayload: e.Request, Params: urlParams(e.Path),
			},
			enrollment: resolvedOr(res.Enrollment, e.EnrollmentID),
		}, true, nil
	}
	return Event{}, false, nil
}

// urlParams are the query parameters of the recorded request path (the
// enrollment ticket a program put in the profile's CheckInURL, say), first
// value of each, as MicroMDM sends them; nil when there are none.
func urlParams(path string) map[string]string {
	_, raw, ok := strings.Cut(path, "?")
	if !ok {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil || len(q) == 0 {
		return nil
	}
	out := make(map[string]string, len(q))
	for k, v := range q {
		out[k] = v[0]
	}
	return out
}

func resolvedOr(ids mdm.Enrollment, fallback string) string {
	if fallback != "" {
		return fallback
	}
	if r, err := ids.Resolve(); err == nil {
		return r.ID
	}
	return ""
}

// newEventID is a random UUID, as MicroMDM's event IDs are.
func newEventID() string { return uuid.NewString() }
