package profiles

import (
	"math"
	"slices"
)

// Payload is one dictionary of a profile's PayloadContent, as decoded:
// strings, int64/uint64 integers, float64 reals, bools, []byte data,
// time.Time dates, []any arrays and map[string]any dictionaries.
type Payload map[string]any

// Type is PayloadType ("" when absent or not a string).
func (p Payload) Type() string { return p.String("PayloadType") }

// UUID is PayloadUUID.
func (p Payload) UUID() string { return p.String("PayloadUUID") }

// Identifier is PayloadIdentifier.
func (p Payload) Identifier() string { return p.String("PayloadIdentifier") }

// String is the string at key, or "" when absent or of another type.
func (p Payload) String(key string) string {
	s, _ := p[key].(string)
	return s
}

// Bool is the boolean at key, or false when absent or of another type.
func (p Payload) Bool(key string) bool {
	b, _ := p[key].(bool)
	return b
}

// Int is the integer at key; ok is false when absent, of another type or
// beyond int64.
func (p Payload) Int(key string) (int64, bool) { return asInt(p[key]) }

// Data is the <data> at key, or nil when absent or of another type.
func (p Payload) Data(key string) []byte {
	b, _ := p[key].([]byte)
	return b
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint32:
		return int64(n), true
	}
	return 0, false
}

// MDMPayload is the com.apple.mdm payload as a device reads it.
type MDMPayload struct {
	IdentityCertificateUUID, Topic, ServerURL, CheckInURL string
	SignMessage, CheckOutWhenRemoved, UseDevelopmentAPNS  bool
	// AccessRights is 0 when the key is absent.
	AccessRights                                           int
	ServerCapabilities                                     []string
	EnrollmentMode, AssignedManagedAppleID, ManagedAppleID string
}

// SCEPPayload is the com.apple.security.scep payload as a device reads it.
// Keys the profile leaves out take Apple's documented defaults: Keysize
// 1024, Key Type "RSA", Key Usage 0.
type SCEPPayload struct {
	// UUID is the payload's PayloadUUID, which an MDM payload's
	// IdentityCertificateUUID names.
	UUID                 string
	URL, Name, Challenge string
	Subject              [][][]string
	Keysize              int
	KeyType              string
	KeyUsage             int
	CAFingerprint        []byte
}

// fields reads typed keys out of a dictionary and remembers every key whose
// type is wrong or that is required and missing.
type fields struct {
	d    map[string]any
	path string // prefix for messages, e.g. "PayloadContent."
	p    *problems
}

func (f fields) present(key string, required bool) (any, bool) {
	v, ok := f.d[key]
	if !ok && required {
		f.p.addf("%s%s is required", f.path, key)
	}
	return v, ok
}

func (f fields) wrongType(key string, v any, want string) {
	f.p.addf("%s%s is %s; it must be %s", f.path, key, withArticle(typeName(v)), withArticle(want))
}

func (f fields) str(key string, required bool) string {
	v, ok := f.present(key, required)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		f.wrongType(key, v, "string")
	} else if required && s == "" {
		f.p.addf("%s%s is empty", f.path, key)
	}
	return s
}

func (f fields) boolean(key string) bool {
	v, ok := f.present(key, false)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		f.wrongType(key, v, "boolean")
	}
	return b
}

func (f fields) integer(key string, def int) int {
	v, ok := f.present(key, false)
	if !ok {
		return def
	}
	n, isInt := asInt(v)
	if !isInt {
		if typeName(v) == "integer" {
			f.p.addf("%s%s is out of range", f.path, key)
		} else {
			f.wrongType(key, v, "integer")
		}
		return def
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		f.p.addf("%s%s %d is out of range", f.path, key, n)
		return def
	}
	return int(n)
}

func (f fields) data(key string) []byte {
	v, ok := f.present(key, false)
	if !ok {
		return nil
	}
	b, isData := v.([]byte)
	if !isData {
		f.wrongType(key, v, "data")
	}
	return b
}

func (f fields) strings(key string) []string {
	v, ok := f.present(key, false)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		f.wrongType(key, v, "array")
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, item := range arr {
		s, isStr := item.(string)
		if !isStr {
			f.p.addf("%s%s[%d] is %s; it must be a string", f.path, key, i, withArticle(typeName(item)))
			continue
		}
		out = append(out, s)
	}
	return out
}

// MDM decodes p as a com.apple.mdm payload, checking that the required keys
// are there and that every key it reads has the schema's type. It does not
// judge the values; see MDMPayload.Validate. Errors carry 400.
func (p Payload) MDM() (*MDMPayload, error) {
	if t := p.Type(); t != PayloadTypeMDM {
		return nil, badRequest("payload %q is of type %q, not %s", p.Identifier(), t, PayloadTypeMDM)
	}
	var pr problems
	f := fields{d: p, p: &pr}
	m := &MDMPayload{
		IdentityCertificateUUID: f.str("IdentityCertificateUUID", true),
		Topic:                   f.str("Topic", true),
		ServerURL:               f.str("ServerURL", true),
		CheckInURL:              f.str("CheckInURL", false),
		SignMessage:             f.boolean("SignMessage"),
		CheckOutWhenRemoved:     f.boolean("CheckOutWhenRemoved"),
		UseDevelopmentAPNS:      f.boolean("UseDevelopmentAPNS"),
		AccessRights:            f.integer("AccessRights", 0),
		ServerCapabilities:      f.strings("ServerCapabilities"),
		EnrollmentMode:          f.str("EnrollmentMode", false),
		AssignedManagedAppleID:  f.str("AssignedManagedAppleID", false),
		ManagedAppleID:          f.str("ManagedAppleID", false),
	}
	if err := pr.err("the " + PayloadTypeMDM + " payload is malformed"); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate applies the rules a device applies before it enrolls: https
// URLs, the topic prefix, the AccessRights rules (when the key is set),
// known capabilities and enrollment modes. Errors carry 400.
func (m *MDMPayload) Validate() error { return m.validate(false) }

// ValidateAllowHTTP is Validate but accepts http:// server URLs, for
// virtual devices in a plain-HTTP test harness (a real device refuses them).
func (m *MDMPayload) ValidateAllowHTTP() error { return m.validate(true) }

func (m *MDMPayload) validate(allowHTTP bool) error {
	var p problems
	if m.IdentityCertificateUUID == "" {
		p.addf("IdentityCertificateUUID is required")
	}
	schemes := mdmURLSchemes(allowHTTP)
	checkURL(&p, "ServerURL", m.ServerURL, schemes...)
	if m.CheckInURL != "" {
		checkURL(&p, "CheckInURL", m.CheckInURL, schemes...)
	}
	checkTopic(&p, m.Topic)
	if m.AccessRights != 0 {
		checkAccessRights(&p, m.AccessRights)
	}
	checkCapabilities(&p, m.ServerCapabilities)
	checkEnrollmentMode(&p, m.EnrollmentMode)
	return p.err("the " + PayloadTypeMDM + " payload breaks the schema's rules")
}

// SCEP decodes p as a com.apple.security.scep payload, checking required
// keys and types (including the [name, value] shape of Subject) and filling
// in Apple's defaults for absent keys. Errors carry 400.
func (p Payload) SCEP() (*SCEPPayload, error) {
	if t := p.Type(); t != PayloadTypeSCEP {
		return nil, badRequest("payload %q is of type %q, not %s", p.Identifier(), t, PayloadTypeSCEP)
	}
	var pr problems
	content, ok := p["PayloadContent"].(map[string]any)
	if !ok {
		if v, present := p["PayloadContent"]; present {
			pr.addf("PayloadContent is %s; it must be a dictionary", withArticle(typeName(v)))
		} else {
			pr.addf("PayloadContent is required")
		}
		return nil, pr.err("the " + PayloadTypeSCEP + " payload is malformed")
	}
	f := fields{d: content, path: "PayloadContent.", p: &pr}
	s := &SCEPPayload{
		UUID:          p.UUID(),
		URL:           f.str("URL", true),
		Name:          f.str("Name", false),
		Challenge:     f.str("Challenge", false),
		Subject:       f.subject("Subject"),
		Keysize:       f.integer("Keysize", 1024),
		KeyType:       f.str("Key Type", false),
		KeyUsage:      f.integer("Key Usage", 0),
		CAFingerprint: f.data("CAFingerprint"),
	}
	if s.KeyType == "" {
		s.KeyType = "RSA"
	}
	if err := pr.err("the " + PayloadTypeSCEP + " payload is malformed"); err != nil {
		return nil, err
	}
	return s, nil
}

func (f fields) subject(key string) [][][]string {
	v, ok := f.present(key, false)
	if !ok {
		return nil
	}
	rdns, isArr := v.([]any)
	if !isArr {
		f.wrongType(key, v, "array")
		return nil
	}
	out := make([][][]string, 0, len(rdns))
	for i, rdnV := range rdns {
		rdn, isArr := rdnV.([]any)
		if !isArr {
			f.p.addf("%s%s[%d] is %s; it must be an array of [name, value] pairs", f.path, key, i, withArticle(typeName(rdnV)))
			continue
		}
		pairs := make([][]string, 0, len(rdn))
		for j, pairV := range rdn {
			pair, isArr := pairV.([]any)
			if !isArr || len(pair) != 2 {
				f.p.addf("%s%s[%d][%d] must be an array of exactly two strings [name, value]", f.path, key, i, j)
				continue
			}
			name, ok1 := pair[0].(string)
			value, ok2 := pair[1].(string)
			if !ok1 || !ok2 {
				f.p.addf("%s%s[%d][%d] must hold two strings", f.path, key, i, j)
				continue
			}
			pairs = append(pairs, []string{name, value})
		}
		out = append(out, pairs)
	}
	return out
}

// Validate applies the schema's value rules: an http(s) URL, Keysize 1024,
// 2048 or 4096, Key Type RSA, Key Usage 0, 1, 4 or 5, well-formed Subject
// names. Errors carry 400.
func (s *SCEPPayload) Validate() error {
	var p problems
	checkURL(&p, "URL", s.URL, "https", "http")
	if !slices.Contains(scepKeysizes, s.Keysize) {
		p.addf("Keysize %d must be 1024, 2048 or 4096", s.Keysize)
	}
	if s.KeyType != "RSA" {
		p.addf("Key Type %q must be RSA", s.KeyType)
	}
	if !slices.Contains(scepKeyUsages, s.KeyUsage) {
		p.addf("Key Usage %d must be 0, 1 (signing), 4 (encryption) or 5 (both)", s.KeyUsage)
	}
	checkSubject(&p, s.Subject)
	return p.err("the " + PayloadTypeSCEP + " payload breaks the schema's rules")
}
