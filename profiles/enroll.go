package profiles

import (
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/micromdm/plist"
)

// EnrollmentOptions describes a device-enrollment .mobileconfig: a root CA
// payload (com.apple.security.root), a SCEP payload (com.apple.security.scep)
// and an MDM payload (com.apple.mdm) whose IdentityCertificateUUID is the SCEP
// payload's PayloadUUID. Certificate payloads come first because the device
// installs payloads in order and the MDM payload needs the identity.
type EnrollmentOptions struct {
	// Identifier is the top-level PayloadIdentifier, e.g.
	// "com.example.mockmdm.enroll"; inner payloads get Identifier+".root",
	// ".scep" and ".mdm".
	Identifier string
	// DisplayName, Organization and Description are shown by the installer;
	// each is omitted when empty. Organization is also set on every payload.
	DisplayName, Organization, Description string

	// ServerURL (required) and CheckInURL (optional) are https URLs; Topic
	// is the push topic, "com.apple.mgmt.…".
	ServerURL, CheckInURL, Topic string
	// SignMessage makes the device send Mdm-Signature instead of relying on
	// the TLS client certificate.
	SignMessage bool
	// AccessRights is the rights bitmask (AccessAll grants everything). 0 is
	// an error, except for a User Enrollment (ManagedAppleID set or
	// EnrollmentMode BYOD), where the device ignores the key and 0 omits it.
	AccessRights        int
	CheckOutWhenRemoved bool
	// ServerCapabilities are com.apple.mdm.* capability strings.
	ServerCapabilities []string
	UseDevelopmentAPNS bool

	// RootCA may be nil: then no root payload is written.
	RootCA *x509.Certificate

	// SCEPURL (required, http or https: SCEP is exempt from ATS) is where the
	// device gets its identity; SCEPChallenge and SCEPName are optional.
	SCEPURL, SCEPChallenge, SCEPName string
	// SCEPSubject is the identity's subject as RDNs of [name, value] pairs,
	// e.g. [][][]string{{{"O", "Example"}}, {{"CN", "device"}}}.
	SCEPSubject [][][]string
	// SCEPKeysize is 1024, 2048 or 4096; 0 means 2048 (Apple's own default
	// is 1024, which nothing should use any more).
	SCEPKeysize int
	// SCEPKeyUsage is 1 (signing), 4 (encryption) or 5 (both); 0 means 5.
	SCEPKeyUsage int
	// SCEPCAFingerprint, if set, is written as CAFingerprint: the digest of
	// the SCEP CA certificate the device should insist on.
	SCEPCAFingerprint []byte

	// User Enrollment / account-driven fields, omitted when empty.
	EnrollmentMode, AssignedManagedAppleID, ManagedAppleID string

	// AllowInsecureURLs accepts http:// for ServerURL and CheckInURL. Real
	// devices refuse such a profile; virtual devices in a test harness that
	// serves plain HTTP accept it when told to.
	AllowInsecureURLs bool

	// UUIDSeed, if set, derives every PayloadUUID deterministically from it
	// (UUIDv5, SHA-1 based), so a rebuilt profile replaces the installed one
	// payload for payload and golden files stay stable; else UUIDs are random.
	UUIDSeed string
}

// isUserEnrollment reports whether the profile enrolls a personal device as
// a User Enrollment, where the device ignores AccessRights.
func (o *EnrollmentOptions) isUserEnrollment() bool {
	return o.ManagedAppleID != "" || o.EnrollmentMode == EnrollmentModeBYOD
}

func (o *EnrollmentOptions) validate() error {
	var p problems
	checkIdentifier(&p, "Identifier", o.Identifier)
	schemes := mdmURLSchemes(o.AllowInsecureURLs)
	checkURL(&p, "ServerURL", o.ServerURL, schemes...)
	if o.CheckInURL != "" {
		checkURL(&p, "CheckInURL", o.CheckInURL, schemes...)
	}
	checkTopic(&p, o.Topic)
	if o.AccessRights != 0 || !o.isUserEnrollment() {
		checkAccessRights(&p, o.AccessRights)
	}
	checkCapabilities(&p, o.ServerCapabilities)
	checkEnrollmentMode(&p, o.EnrollmentMode)
	if o.AssignedManagedAppleID != "" && o.EnrollmentMode == "" {
		p.addf("AssignedManagedAppleID is only used by account-driven enrollment: set EnrollmentMode (%s or %s) too", EnrollmentModeBYOD, EnrollmentModeADDE)
	}
	checkURL(&p, "SCEPURL", o.SCEPURL, "https", "http")
	if o.SCEPKeysize != 0 && !slices.Contains(scepKeysizes, o.SCEPKeysize) {
		p.addf("SCEPKeysize %d must be 1024, 2048 or 4096", o.SCEPKeysize)
	}
	if o.SCEPKeyUsage != 0 && !slices.Contains(scepKeyUsages, o.SCEPKeyUsage) {
		p.addf("SCEPKeyUsage %d must be 1 (signing), 4 (encryption) or 5 (both)", o.SCEPKeyUsage)
	}
	checkSubject(&p, o.SCEPSubject)
	text := map[string]string{
		"DisplayName": o.DisplayName, "Organization": o.Organization, "Description": o.Description,
		"SCEPChallenge": o.SCEPChallenge, "SCEPName": o.SCEPName, "EnrollmentMode": o.EnrollmentMode,
		"AssignedManagedAppleID": o.AssignedManagedAppleID, "ManagedAppleID": o.ManagedAppleID, "Topic": o.Topic,
	}
	for i, rdn := range o.SCEPSubject {
		for j, pair := range rdn {
			for k, s := range pair {
				text[fmt.Sprintf("SCEPSubject[%d][%d][%d]", i, j, k)] = s
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(text)) {
		checkText(&p, key, text[key])
	}
	if o.RootCA != nil && len(o.RootCA.Raw) == 0 {
		p.addf("RootCA has no DER bytes (Raw is empty): pass a certificate from x509.ParseCertificate")
	}
	return p.err("enrollment profile options are invalid")
}

// payloadHeader holds the keys every payload carries (CommonPayloadKeys).
type payloadHeader struct {
	PayloadType         string
	PayloadVersion      int
	PayloadIdentifier   string
	PayloadUUID         string
	PayloadDisplayName  string `plist:",omitempty"`
	PayloadDescription  string `plist:",omitempty"`
	PayloadOrganization string `plist:",omitempty"`
}

// topLevel is the profile itself (TopLevel schema).
type topLevel struct {
	PayloadType         string
	PayloadVersion      int
	PayloadIdentifier   string
	PayloadUUID         string
	PayloadDisplayName  string `plist:",omitempty"`
	PayloadDescription  string `plist:",omitempty"`
	PayloadOrganization string `plist:",omitempty"`
	PayloadContent      []any
}

// rootPayload is com.apple.security.root: PayloadContent is the DER cert.
type rootPayload struct {
	payloadHeader
	PayloadContent []byte
}

// scepContent is the PayloadContent dictionary of com.apple.security.scep.
// Apple spells two keys with spaces.
type scepContent struct {
	URL           string
	Name          string       `plist:",omitempty"`
	Subject       [][][]string `plist:",omitempty"`
	Challenge     string       `plist:",omitempty"`
	Keysize       int
	KeyType       string `plist:"Key Type"`
	KeyUsage      int    `plist:"Key Usage"`
	CAFingerprint []byte `plist:",omitempty"`
}

type scepPayload struct {
	payloadHeader
	PayloadContent scepContent
}

type mdmPayload struct {
	payloadHeader
	IdentityCertificateUUID string
	Topic                   string
	ServerURL               string
	CheckInURL              string `plist:",omitempty"`
	SignMessage             bool
	AccessRights            int `plist:",omitempty"`
	CheckOutWhenRemoved     bool
	ServerCapabilities      []string `plist:",omitempty"`
	UseDevelopmentAPNS      bool
	EnrollmentMode          string `plist:",omitempty"`
	AssignedManagedAppleID  string `plist:",omitempty"`
	ManagedAppleID          string `plist:",omitempty"`
}

// uuidNamespace scopes the deterministic payload UUIDs to this package, so a
// seed here never collides with a UUIDv5 someone else derives from it.
var uuidNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/mockmdm/mockmdm/profiles"))

// payloadUUID returns the PayloadUUID for role ("profile", "root", …): a
// UUIDv5 of seed and role when seed is set, else a random UUIDv4. Upper case,
// as Apple's tools write them.
func payloadUUID(seed, role string) (string, error) {
	if seed != "" {
		return strings.ToUpper(uuid.NewSHA1(uuidNamespace, []byte(seed+"\x00"+role)).String()), nil
	}
	u, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("profiles: random payload UUID: %w", err)
	}
	return strings.ToUpper(u.String()), nil
}

// BuildEnrollment returns the enrollment profile o describes as an indented
// XML property list, unsigned (see Sign). It checks its inputs first and
// answers a 400 that lists every broken rule: https URLs, the topic prefix,
// the AccessRights rules of the com.apple.mdm schema, SCEP key size and usage.
func BuildEnrollment(o EnrollmentOptions) ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, role := range []string{"profile", "root", "scep", "mdm"} {
		id, err := payloadUUID(o.UUIDSeed, role)
		if err != nil {
			return nil, err
		}
		ids[role] = id
	}
	header := func(typ, role, name string) payloadHeader {
		return payloadHeader{
			PayloadType:         typ,
			PayloadVersion:      1,
			PayloadIdentifier:   o.Identifier + "." + role,
			PayloadUUID:         ids[role],
			PayloadDisplayName:  name,
			PayloadOrganization: o.Organization,
		}
	}

	var content []any
	if o.RootCA != nil {
		name := "Root certificate"
		if cn := o.RootCA.Subject.CommonName; cn != "" {
			name += ": " + cn
		}
		content = append(content, rootPayload{
			payloadHeader:  header(PayloadTypeRoot, "root", name),
			PayloadContent: o.RootCA.Raw,
		})
	}

	keysize, usage := o.SCEPKeysize, o.SCEPKeyUsage
	if keysize == 0 {
		keysize = 2048
	}
	if usage == 0 {
		usage = 5
	}
	content = append(content, scepPayload{
		payloadHeader: header(PayloadTypeSCEP, "scep", "Device identity (SCEP)"),
		PayloadContent: scepContent{
			URL:           o.SCEPURL,
			Name:          o.SCEPName,
			Subject:       o.SCEPSubject,
			Challenge:     o.SCEPChallenge,
			Keysize:       keysize,
			KeyType:       "RSA",
			KeyUsage:      usage,
			CAFingerprint: o.SCEPCAFingerprint,
		},
	})

	content = append(content, mdmPayload{
		payloadHeader:           header(PayloadTypeMDM, "mdm", "Device management"),
		IdentityCertificateUUID: ids["scep"],
		Topic:                   o.Topic,
		ServerURL:               o.ServerURL,
		CheckInURL:              o.CheckInURL,
		SignMessage:             o.SignMessage,
		AccessRights:            o.AccessRights,
		CheckOutWhenRemoved:     o.CheckOutWhenRemoved,
		ServerCapabilities:      o.ServerCapabilities,
		UseDevelopmentAPNS:      o.UseDevelopmentAPNS,
		EnrollmentMode:          o.EnrollmentMode,
		AssignedManagedAppleID:  o.AssignedManagedAppleID,
		ManagedAppleID:          o.ManagedAppleID,
	})

	out, err := plist.MarshalIndent(topLevel{
		PayloadType:         PayloadTypeConfiguration,
		PayloadVersion:      1,
		PayloadIdentifier:   o.Identifier,
		PayloadUUID:         ids["profile"],
		PayloadDisplayName:  o.DisplayName,
		PayloadDescription:  o.Description,
		PayloadOrganization: o.Organization,
		PayloadContent:      content,
	}, "\t")
	if err != nil {
		return nil, fmt.Errorf("profiles: encode enrollment profile: %w", err)
	}
	return out, nil
}
