package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// TopicPrefix starts every MDM push topic: the Apple Push Certificates Portal
// issues MDM push certificates whose UID is "com.apple.mgmt.External.<uuid>",
// and devices refuse a profile whose Topic lacks this prefix.
const TopicPrefix = "com.apple.mgmt."

const externalTopicPrefix = TopicPrefix + "External."

// oidUID is the userid attribute (RFC 4519) in which Apple puts the topic.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// NewTopic returns a fresh topic shaped like one Apple issues:
// "com.apple.mgmt.External." followed by a random lowercase UUID.
func NewTopic() string {
	return externalTopicPrefix + uuid.NewString()
}

// NewMockPushCert issues a stand-in for an APNs MDM push certificate, signed
// by issuer (mockmdm's mock "Apple" push CA) with a fresh 2048-bit key. Its
// subject is the one Apple's portal produces — UID=<topic>, CN=APSP:<uuid>,
// C=US — so code that reads the topic from a real push certificate reads it
// from this one too. EKU is clientAuth: the certificate authenticates the
// provider to APNs (here, to the mock APNs) in a TLS handshake.
func NewMockPushCert(issuer *CA, topic string, validity time.Duration) (*x509.Certificate, *rsa.PrivateKey, error) {
	// Refuse a bad topic before the slow part, making the key.
	if err := checkTopic(topic); err != nil {
		return nil, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, leafKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate push key: %w", err)
	}
	cert, err := issuePushCert(issuer, topic, &key.PublicKey, validity)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// issuePushCert is the one description of an APNs MDM push certificate that
// mockmdm issues, whoever made the key: NewMockPushCert (mockmdm makes it)
// and IssuePushCert (the customer's CSR brings it) both end here, so a
// certificate from either path reads the same to TopicFromCert, to the mock
// APNs and to a person comparing it with one from Apple.
func issuePushCert(issuer *CA, topic string, pub crypto.PublicKey, validity time.Duration) (*x509.Certificate, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			Country:    []string{"US"},
			CommonName: "APSP:" + topicUUID(topic),
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: topic}},
		},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	return issuer.issue(tmpl, pub, time.Now(), validity)
}

// topicUUID is the part of a topic after "com.apple.mgmt.External." (or,
// for a topic of another shape, after its last dot): what Apple puts after
// "APSP:" in the common name.
func topicUUID(topic string) string {
	if rest, ok := strings.CutPrefix(topic, externalTopicPrefix); ok && rest != "" {
		return rest
	}
	return topic[strings.LastIndexByte(topic, '.')+1:]
}

func checkTopic(topic string) error {
	if !strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix) {
		return newError(ErrBadTopic, nil, "push topic %q must start with %q and name a topic after it (e.g. %s<uuid>)", topic, TopicPrefix, externalTopicPrefix)
	}
	return nil
}

// TopicFromCert returns the push topic of an APNs MDM push certificate: the
// value of its subject UID attribute, which must start "com.apple.mgmt.".
// The error (an *Error, HTTP 400) says whether the attribute is missing or
// has the wrong prefix — the usual sign that someone uploaded a TLS or
// identity certificate instead of the push certificate.
func TopicFromCert(c *x509.Certificate) (string, error) {
	if c == nil {
		return "", newError(ErrNoTopic, nil, "no push certificate given")
	}
	for _, atv := range c.Subject.Names {
		if !atv.Type.Equal(oidUID) {
			continue
		}
		topic, ok := atv.Value.(string)
		if !ok {
			return "", newError(ErrNoTopic, nil, "certificate %q has a UID attribute that is not a string (%T)", nameString(c.Subject), atv.Value)
		}
		if err := checkTopic(topic); err != nil {
			return "", newError(ErrBadTopic, nil, "certificate %q: UID %q is not an MDM push topic (it must start with %q); is this an APNs MDM push certificate?", nameString(c.Subject), topic, TopicPrefix)
		}
		return topic, nil
	}
	return "", newError(ErrNoTopic, nil, "certificate %q has no UID attribute (OID 0.9.2342.19200300.100.1.1) carrying the push topic; is this an APNs MDM push certificate?", nameString(c.Subject))
}

// readableAttributes are subject attributes pkix.Name.String prints only as
// an OID and hex (0.9.2342.19200300.100.1.1=#13…), which hides the topic
// a person is looking for; nameString prints them by name.
var readableAttributes = []struct {
	oid   asn1.ObjectIdentifier
	label string
}{
	{oidUID, "UID"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, "emailAddress"},
}

// nameString is n as pkix.Name.String writes it, but with UID and
// emailAddress spelled out: "CN=APSP:<uuid>,C=US,UID=com.apple.mgmt.…".
func nameString(n pkix.Name) string {
	var spelled []string
	filter := func(atvs []pkix.AttributeTypeAndValue) []pkix.AttributeTypeAndValue {
		kept := make([]pkix.AttributeTypeAndValue, 0, len(atvs))
	next:
		for _, atv := range atvs {
			for _, r := range readableAttributes {
				if s, ok := atv.Value.(string); ok && atv.Type.Equal(r.oid) {
					spelled = append(spelled, r.label+"="+s)
					continue next
				}
			}
			kept = append(kept, atv)
		}
		return kept
	}
	// String prints ExtraNames when set, else the parsed Names.
	if n.ExtraNames != nil {
		n.ExtraNames = filter(n.ExtraNames)
	} else {
		n.Names = filter(n.Names)
	}
	if base := n.String(); base != "" {
		spelled = append([]string{base}, spelled...)
	}
	return strings.Join(spelled, ",")
}
