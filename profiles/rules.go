package profiles

import (
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Values and rules from Apple's com.apple.mdm and com.apple.security.scep
// schemas. The builder and the typed views' Validate methods share them, so a
// profile this package builds passes the same checks a virtual device applies
// to a profile it downloads.

// TopicPrefix is the prefix every MDM push topic has (com.apple.mdm: Topic).
const TopicPrefix = "com.apple.mgmt."

// Payload types this package builds and decodes.
const (
	PayloadTypeConfiguration = "Configuration"
	PayloadTypeMDM           = "com.apple.mdm"
	PayloadTypeSCEP          = "com.apple.security.scep"
	PayloadTypeRoot          = "com.apple.security.root"
)

// Server capabilities the com.apple.mdm schema defines (ServerCapabilities).
const (
	CapabilityPerUserConnections = "com.apple.mdm.per-user-connections"
	CapabilityBootstrapToken     = "com.apple.mdm.bootstraptoken"
	CapabilityToken              = "com.apple.mdm.token"
)

// Enrollment modes (com.apple.mdm: EnrollmentMode) of account-driven enrollment.
const (
	EnrollmentModeBYOD = "BYOD" // account-driven User Enrollment
	EnrollmentModeADDE = "ADDE" // account-driven Device Enrollment
)

// AccessRights bits (com.apple.mdm: AccessRights).
const (
	AccessProfileInspection      = 1
	AccessProfileInstall         = 2
	AccessDeviceLock             = 4
	AccessDeviceErase            = 8
	AccessDeviceInfo             = 16
	AccessNetworkInfo            = 32
	AccessProvisioningInspection = 64
	AccessProvisioningInstall    = 128
	AccessAppInspection          = 256
	AccessRestrictionQueries     = 512
	AccessSecurityQueries        = 1024
	AccessSettings               = 2048
	AccessAppManagement          = 4096
	// AccessAll is every right the schema defines (8191).
	AccessAll = 8191
)

var (
	knownCapabilities   = []string{CapabilityPerUserConnections, CapabilityBootstrapToken, CapabilityToken}
	knownEnrollmentMode = []string{EnrollmentModeBYOD, EnrollmentModeADDE}
	scepKeysizes        = []int{1024, 2048, 4096}
	scepKeyUsages       = []int{0, 1, 4, 5}
	scepSubjectShort    = []string{"C", "L", "ST", "O", "OU", "CN"}
)

// checkURL adds a problem unless s is an absolute URL with a host whose
// scheme is one of schemes.
// mdmURLSchemes is what ServerURL and CheckInURL may use: https only, as
// Apple's schema says, unless a plain-HTTP test harness asks for http too.
func mdmURLSchemes(allowHTTP bool) []string {
	if allowHTTP {
		return []string{"https", "http"}
	}
	return []string{"https"}
}

func checkURL(p *problems, key, s string, schemes ...string) {
	if s == "" {
		p.addf("%s is required", key)
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		p.addf("%s %q is not a URL: %v", key, s, err)
		return
	}
	if !slices.Contains(schemes, u.Scheme) {
		p.addf("%s %q must use %s (Apple devices refuse other schemes here)", key, s, strings.Join(schemes, " or "))
		return
	}
	if u.Host == "" {
		p.addf("%s %q has no host", key, s)
	}
}

func checkTopic(p *problems, topic string) {
	switch {
	case topic == "":
		p.addf("Topic is required: it is the UID of the push certificate's subject")
	case !strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix):
		p.addf("Topic %q must begin with %q followed by the push certificate's topic (com.apple.mdm schema)", topic, TopicPrefix)
	case strings.IndexFunc(topic, unicode.IsSpace) >= 0:
		p.addf("Topic %q must not contain white space", topic)
	}
}

// checkAccessRights applies the com.apple.mdm rules: not 0, 2 needs 1, 128
// needs 64, and no bit beyond 4096.
func checkAccessRights(p *problems, ar int) {
	switch {
	case ar == 0:
		p.addf("AccessRights must not be 0 (com.apple.mdm schema: \"Don't set to '0'\"); %d grants every right", AccessAll)
	case ar < 0 || ar > AccessAll:
		p.addf("AccessRights %d is out of range: it is a bitmask of 1…4096, at most %d", ar, AccessAll)
	default:
		if ar&AccessProfileInstall != 0 && ar&AccessProfileInspection == 0 {
			p.addf("AccessRights %d has 2 (install/remove profiles) without 1 (inspect profiles); the schema requires 1 with 2", ar)
		}
		if ar&AccessProvisioningInstall != 0 && ar&AccessProvisioningInspection == 0 {
			p.addf("AccessRights %d has 128 (install/remove provisioning profiles) without 64 (inspect them); the schema requires 64 with 128", ar)
		}
	}
}

func checkCapabilities(p *problems, caps []string) {
	for i, c := range caps {
		if !slices.Contains(knownCapabilities, c) {
			p.addf("ServerCapabilities[%d] %q is not one the schema defines (%s)", i, c, strings.Join(knownCapabilities, ", "))
		}
		if slices.Contains(caps[:i], c) {
			p.addf("ServerCapabilities lists %q twice; the schema asks for a unique array", c)
		}
	}
}

func checkEnrollmentMode(p *problems, mode string) {
	if mode != "" && !slices.Contains(knownEnrollmentMode, mode) {
		p.addf("EnrollmentMode %q must be %s or %s", mode, EnrollmentModeBYOD, EnrollmentModeADDE)
	}
}

// checkSubject checks a SCEP Subject: an array of RDNs, each an array of
// [name, value] pairs, name being C, L, ST, O, OU, CN or a dotted OID.
func checkSubject(p *problems, subject [][][]string) {
	for i, rdn := range subject {
		if len(rdn) == 0 {
			p.addf("Subject[%d] is empty: each element is a list of [name, value] pairs", i)
		}
		for j, pair := range rdn {
			if len(pair) != 2 {
				p.addf("Subject[%d][%d] has %d strings; each pair is exactly [name, value]", i, j, len(pair))
				continue
			}
			if !slices.Contains(scepSubjectShort, pair[0]) && !isDottedOID(pair[0]) {
				p.addf("Subject[%d][%d] name %q is neither one of %s nor a dotted OID", i, j, pair[0], strings.Join(scepSubjectShort, ", "))
			}
		}
	}
}

func isDottedOID(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, part := range parts {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
}

func checkIdentifier(p *problems, key, id string) {
	switch {
	case id == "":
		p.addf("%s is required (a reverse-DNS name such as com.example.mdm.enroll): a device replaces an installed profile with the same identifier", key)
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		p.addf("%s %q must not contain white space or control characters", key, id)
	}
}

// checkText refuses strings XML 1.0 cannot carry: invalid UTF-8 and control
// characters other than tab and line breaks. The encoder would otherwise
// replace them silently, and the device would see a different value.
func checkText(p *problems, key, s string) {
	if !utf8.ValidString(s) {
		p.addf("%s is not valid UTF-8", key)
		return
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
	}); i >= 0 {
		p.addf("%s contains the control character %U at byte %d, which a property list cannot carry", key, []rune(s[i:])[0], i)
	}
}
