// Package push speaks the provider side of the Apple Push Notification
// service for MDM: the wire vocabulary of APNs (headers, reasons and their
// HTTP statuses, the MDM payload), and a Provider that sends MDM wake-ups
// over HTTP/2 with certificate authentication to Apple (production or
// development) or to the mock APNs in push/mockapns.
package push

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// Base URLs of APNs. An MDM push goes to BaseURL + "/3/device/" + the
// lowercase hex of the device's 32-byte Token.
const (
	// ProductionURL is Apple's production APNs (identity.apple.com only
	// issues production MDM push certificates).
	ProductionURL = "https://api.push.apple.com"
	// DevelopmentURL is Apple's development APNs, used only when the MDM
	// payload sets UseDevelopmentAPNS.
	DevelopmentURL = "https://api.sandbox.push.apple.com"
)

// PathPrefix is the path of the device endpoint, before the hex token.
const PathPrefix = "/3/device/"

// APNs request and response headers.
const (
	HeaderID         = "apns-id"
	HeaderTopic      = "apns-topic"
	HeaderPushType   = "apns-push-type"
	HeaderExpiration = "apns-expiration"
	HeaderPriority   = "apns-priority"
	HeaderCollapseID = "apns-collapse-id"
)

// PushTypeMDM is the apns-push-type of an MDM wake-up.
const PushTypeMDM = "mdm"

// MaxPayload is the largest notification body APNs accepts (4 KB).
const MaxPayload = 4096

// TokenLen is the length in bytes of an APNs device token.
const TokenLen = 32

// Reasons APNs gives in the JSON body of an error response
// ({"reason":"…","timestamp":…}); Status maps each to its HTTP status.
const (
	ReasonBadCollapseID            = "BadCollapseId"
	ReasonBadDeviceToken           = "BadDeviceToken"
	ReasonBadExpirationDate        = "BadExpirationDate"
	ReasonBadMessageID             = "BadMessageId"
	ReasonBadPriority              = "BadPriority"
	ReasonBadTopic                 = "BadTopic"
	ReasonDeviceTokenNotForTopic   = "DeviceTokenNotForTopic"
	ReasonDuplicateHeaders         = "DuplicateHeaders"
	ReasonIdleTimeout              = "IdleTimeout"
	ReasonInvalidPushType          = "InvalidPushType"
	ReasonMissingDeviceToken       = "MissingDeviceToken"
	ReasonMissingTopic             = "MissingTopic"
	ReasonPayloadEmpty             = "PayloadEmpty"
	ReasonTopicDisallowed          = "TopicDisallowed"
	ReasonBadCertificate           = "BadCertificate"
	ReasonBadCertificateEnv        = "BadCertificateEnvironment"
	ReasonExpiredProviderToken     = "ExpiredProviderToken"
	ReasonForbidden                = "Forbidden"
	ReasonInvalidProviderToken     = "InvalidProviderToken"
	ReasonMissingProviderToken     = "MissingProviderToken"
	ReasonBadPath                  = "BadPath"
	ReasonMethodNotAllowed         = "MethodNotAllowed"
	ReasonExpiredToken             = "ExpiredToken"
	ReasonUnregistered             = "Unregistered"
	ReasonPayloadTooLarge          = "PayloadTooLarge"
	ReasonTooManyProviderTokenUpds = "TooManyProviderTokenUpdates"
	ReasonTooManyRequests          = "TooManyRequests"
	ReasonInternalServerError      = "InternalServerError"
	ReasonServiceUnavailable       = "ServiceUnavailable"
	ReasonShutdown                 = "Shutdown"
)

var reasonStatus = map[string]int{
	ReasonBadCollapseID:            http.StatusBadRequest,
	ReasonBadDeviceToken:           http.StatusBadRequest,
	ReasonBadExpirationDate:        http.StatusBadRequest,
	ReasonBadMessageID:             http.StatusBadRequest,
	ReasonBadPriority:              http.StatusBadRequest,
	ReasonBadTopic:                 http.StatusBadRequest,
	ReasonDeviceTokenNotForTopic:   http.StatusBadRequest,
	ReasonDuplicateHeaders:         http.StatusBadRequest,
	ReasonIdleTimeout:              http.StatusBadRequest,
	ReasonInvalidPushType:          http.StatusBadRequest,
	ReasonMissingDeviceToken:       http.StatusBadRequest,
	ReasonMissingTopic:             http.StatusBadRequest,
	ReasonPayloadEmpty:             http.StatusBadRequest,
	ReasonTopicDisallowed:          http.StatusBadRequest,
	ReasonBadCertificate:           http.StatusForbidden,
	ReasonBadCertificateEnv:        http.StatusForbidden,
	ReasonExpiredProviderToken:     http.StatusForbidden,
	ReasonForbidden:                http.StatusForbidden,
	ReasonInvalidProviderToken:     http.StatusForbidden,
	ReasonMissingProviderToken:     http.StatusForbidden,
	ReasonBadPath:                  http.StatusNotFound,
	ReasonMethodNotAllowed:         http.StatusMethodNotAllowed,
	ReasonExpiredToken:             http.StatusGone,
	ReasonUnregistered:             http.StatusGone,
	ReasonPayloadTooLarge:          http.StatusRequestEntityTooLarge,
	ReasonTooManyProviderTokenUpds: http.StatusTooManyRequests,
	ReasonTooManyRequests:          http.StatusTooManyRequests,
	ReasonInternalServerError:      http.StatusInternalServerError,
	ReasonServiceUnavailable:       http.StatusServiceUnavailable,
	ReasonShutdown:                 http.StatusServiceUnavailable,
}

// Status is the HTTP status APNs answers with reason, and whether reason is
// one APNs documents.
func Status(reason string) (int, bool) {
	s, ok := reasonStatus[reason]
	return s, ok
}

// Reasons lists every reason APNs documents, for validation and docs.
func Reasons() []string {
	out := make([]string, 0, len(reasonStatus))
	for r := range reasonStatus {
		out = append(out, r)
	}
	return out
}

// ErrorBody is the JSON body of an APNs error response. Timestamp (ms since
// the epoch) is set with Unregistered and ExpiredToken: the last time APNs
// knew the token was valid for the topic.
type ErrorBody struct {
	Reason    string `json:"reason"`
	Timestamp int64  `json:"timestamp,omitempty"`
}

// MDMPayload is the body of an MDM wake-up: {"mdm":"<PushMagic>"}.
type MDMPayload struct {
	MDM string `json:"mdm"`
}

// EncodeMDMPayload returns {"mdm":"<pushMagic>"} exactly.
func EncodeMDMPayload(pushMagic string) []byte {
	b, _ := json.Marshal(MDMPayload{MDM: pushMagic})
	return b
}

// TokenHex is the token as it goes in the APNs path: lowercase hex.
func TokenHex(token []byte) string { return hex.EncodeToString(token) }
