package device

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/profiles"
)

// Payload types the device acts on besides profiles.PayloadType*.
const (
	payloadTypePKCS1  = "com.apple.security.pkcs1"
	payloadTypePEM    = "com.apple.security.pem"
	payloadTypePKCS12 = "com.apple.security.pkcs12"
	payloadTypeACME   = "com.apple.security.acme"
)

// ProfileInfo describes an installed profile.
type ProfileInfo struct {
	Identifier, UUID, DisplayName, Organization, Description string
	Version                                                  int
	RemovalDisallowed                                        bool
	// Signed is set for a CMS-signed profile, Verified when its signer
	// chains to the roots given by WithTrust.
	Signed, Verified bool
	Signer           *x509.Certificate
	// Encrypted is set for a profile whose payloads came in
	// EncryptedPayloadContent; Raw then holds them decrypted.
	Encrypted bool
	// Declaration is the legacy configuration that installed the profile
	// (apply.go), at ServerToken DeclarationToken; empty otherwise.
	Declaration, DeclarationToken string
	// Managed is set for a profile the MDM server installed (InstallProfile);
	// only those can it remove.
	Managed bool
	// Enrollment is set for the profile holding the MDM payload.
	Enrollment bool
	// User is the Shared iPad user (Managed Apple Account) whose user
	// channel installed the profile; empty for the device's own profiles.
	// Each channel lists and removes only its own.
	User        string
	Payloads    []PayloadInfo
	InstalledAt time.Time
	// Raw is the profile as installed (decrypted, if it was encrypted).
	Raw []byte
}

func (p *ProfileInfo) clone() ProfileInfo {
	c := *p
	c.Payloads = slices.Clone(p.Payloads)
	return c
}

// PayloadInfo describes one installed payload.
type PayloadInfo struct {
	Type, Identifier, UUID, DisplayName, Description, Organization string
	Version                                                        int
	// Inert is set for a payload the virtual device keeps as installed but
	// that has no effect on it (Wi-Fi, restrictions, …).
	Inert bool
}

// InstallResult says what installing a profile did.
type InstallResult struct {
	Profile ProfileInfo
	// Signed, Verified and Signer repeat Profile's; VerifyError says why a
	// profile is not verified (unsigned, no trust configured, a signer that
	// does not chain).
	Signed, Verified bool
	Signer           *x509.Certificate
	VerifyError      error
	// Replaced is set when the profile replaced an installed one with the
	// same PayloadIdentifier.
	Replaced bool
	// Roots are the certificates added to the keychain's trusted roots.
	Roots []*x509.Certificate
	// Identities are the certificates the SCEP payloads obtained.
	Identities []*x509.Certificate
	// Enrolled is set when the profile's MDM payload enrolled the device;
	// UserEnrollment when that enrollment is a User Enrollment.
	Enrolled, UserEnrollment bool
}

// Install installs a profile (.mobileconfig bytes, signed or not) the way a
// user does on a device, in Apple's order: certificate payloads (root,
// pkcs1, pem) into the keychain's trusted roots first, then SCEP payloads
// (each enrolls for an identity), then the rest (kept, inert), and the MDM
// payload last, which enrolls: Authenticate, then TokenUpdate, to
// CheckInURL (else ServerURL).
//
// A signed profile's signature must verify (else *ProfileError); whether
// its signer chains to the WithTrust roots is reported in the result
// (Verified, VerifyError) and, with WithRequireVerified, refused.
// Everything is checked before anything is installed, and a failure at any
// step (SCEP, a non-200 check-in) leaves the device as it was, never half
// enrolled.
func (d *Device) Install(ctx context.Context, profile []byte) (*InstallResult, error) {
	d.op.Lock()
	defer d.op.Unlock()
	return d.install(ctx, profile, false)
}

// EnrollFromURL downloads a profile with GET (as Safari does from an
// enrollment page), checks that the server serves it as
// profiles.ContentType, and installs it.
func (d *Device) EnrollFromURL(ctx context.Context, url string) (*InstallResult, error) {
	d.op.Lock()
	defer d.op.Unlock()
	const step = "profile download"
	r, err := d.send(ctx, step, http.MethodGet, url, "", nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, serverError(step, http.MethodGet, url, r, "")
	}
	ct := r.header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != profiles.ContentType {
		return nil, serverError(step, http.MethodGet, url, r,
			fmt.Sprintf("served as Content-Type %q; a device hands a download to the profile installer only when it is %s", ct, profiles.ContentType))
	}
	return d.install(ctx, r.body, false)
}

// installPlan is a checked profile: everything install will do, decided
// before it does any of it.
type installPlan struct {
	info    *ProfileInfo
	result  *InstallResult
	roots   []*x509.Certificate
	sceps   []*profiles.SCEPPayload
	mdm     *profiles.MDMPayload
	ue      bool
	replace *ProfileInfo
}

// install is Install without the operation lock; InstallProfile uses it
// with managed set.
func (d *Device) install(ctx context.Context, raw []byte, managed bool) (*InstallResult, error) {
	return d.installFor(ctx, raw, managed, "", nil)
}

// installFor is install on the channel of user (a Shared iPad user; "" is
// the device channel); from is the legacy configuration installing it
// (apply.go), nil for InstallProfile and the user.
func (d *Device) installFor(ctx context.Context, raw []byte, managed bool, user string, from *heldDeclaration) (*InstallResult, error) {
	p, err := profiles.Parse(raw)
	if err != nil {
		return nil, &ProfileError{Reason: "it cannot be decoded", Err: err}
	}
	encrypted := p.IsEncrypted()
	if encrypted {
		if p, err = d.decrypt(p); err != nil {
			return nil, err
		}
	}
	plan, err := d.plan(p, managed, user, from)
	if err != nil {
		return nil, err
	}
	plan.info.Encrypted = encrypted
	id := plan.info.Identifier
	log := d.log.With("profile", id)

	// Side effects start here; none is visible until the commit below.
	var idents []*identity
	for _, s := range plan.sceps {
		ident, err := d.scepEnroll(ctx, id, s)
		if err != nil {
			log.Warn("SCEP enrollment failed", "url", s.URL, "err", err)
			return nil, err
		}
		idents = append(idents, ident)
		plan.result.Identities = append(plan.result.Identities, ident.cert)
	}
	var enr *enrollment
	if plan.mdm != nil {
		var mdmIdent *identity
		for _, ident := range idents {
			if ident.payloadUUID == plan.mdm.IdentityCertificateUUID {
				mdmIdent = ident
			}
		}
		if err := d.enroll(ctx, plan.mdm, mdmIdent, plan.ue); err != nil {
			log.Warn("MDM enrollment failed", "err", err)
			return nil, err
		}
		enr = &enrollment{profileID: id, mdm: *plan.mdm, identity: mdmIdent, userEnrollment: plan.ue, enrolledAt: d.now()}
		plan.result.Enrolled, plan.result.UserEnrollment = true, plan.ue
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if plan.replace != nil {
		d.st.removeProfile(plan.replace)
	}
	for _, c := range plan.roots {
		d.st.roots = append(d.st.roots, trustedRoot{cert: c, profileID: id, user: user})
	}
	for _, ident := range idents {
		ident.user = user
	}
	d.st.identities = append(d.st.identities, idents...)
	plan.info.InstalledAt = d.now()
	d.st.profiles = append(d.st.profiles, plan.info)
	if enr != nil {
		d.st.enrollment = enr
	}
	plan.result.Profile = plan.info.clone()
	log.Info("profile installed", "signed", plan.info.Signed, "verified", plan.info.Verified, "enrolled", enr != nil, "managed", managed)
	return plan.result, nil
}

// decrypt opens a profile whose payloads are in EncryptedPayloadContent
// with the identity it is encrypted to: the MDM identity, to which a
// server encrypts the profiles it sends, or any other the device holds.
// What it returns is the profile as the device installs it: the payloads
// decrypted, with the signature of the profile that was sent.
func (d *Device) decrypt(p *profiles.Parsed) (*profiles.Parsed, error) {
	fail := func(reason string, err error) error {
		return &ProfileError{Identifier: profiles.Payload(p.Top).Identifier(), Reason: reason, Err: err}
	}
	var ident *identity
	d.mu.RLock()
	for _, id := range d.st.identities {
		if p.EncryptedTo(id.cert) {
			ident = id
			break
		}
	}
	d.mu.RUnlock()
	if ident == nil {
		rs, err := p.Recipients()
		if err != nil {
			return nil, fail("its EncryptedPayloadContent cannot be read", err)
		}
		to := make([]string, len(rs))
		for i, r := range rs {
			to[i] = r.String()
		}
		return nil, fail(fmt.Sprintf("it is encrypted to %s, and the device holds no identity with that issuer and serial number", strings.Join(to, "; ")), nil)
	}
	plain, err := profiles.Decrypt(p.Raw, ident.cert, ident.key)
	if err != nil {
		return nil, fail("its EncryptedPayloadContent cannot be decrypted", err)
	}
	q, err := profiles.Parse(plain)
	if err != nil {
		return nil, fail("its decrypted payloads cannot be decoded", err)
	}
	q.Signed, q.Signer, q.Certificates = p.Signed, p.Signer, p.Certificates
	return q, nil
}

// plan checks a parsed profile against the rules a device applies and the
// device's state, and decides what installing it does.
func (d *Device) plan(p *profiles.Parsed, managed bool, user string, from *heldDeclaration) (*installPlan, error) {
	top := profiles.Payload(p.Top)
	info := &ProfileInfo{
		Identifier:        top.Identifier(),
		UUID:              top.UUID(),
		DisplayName:       top.String("PayloadDisplayName"),
		Organization:      top.String("PayloadOrganization"),
		Description:       top.String("PayloadDescription"),
		RemovalDisallowed: top.Bool("PayloadRemovalDisallowed"),
		Signed:            p.Signed,
		Signer:            p.Signer,
		Managed:           managed,
		User:              user,
		Raw:               p.Raw,
	}
	if from != nil {
		info.Declaration, info.DeclarationToken = from.Identifier, from.ServerToken
	}
	if v, ok := top.Int("PayloadVersion"); ok {
		info.Version = int(v)
	}
	fail := func(reason string, err error) error {
		return &ProfileError{Identifier: info.Identifier, Reason: reason, Err: err}
	}

	var problems []string
	if t := top.Type(); t != profiles.PayloadTypeConfiguration {
		problems = append(problems, fmt.Sprintf("top-level PayloadType is %q; a profile's is %q", t, profiles.PayloadTypeConfiguration))
	}
	if info.Identifier == "" {
		problems = append(problems, "top-level PayloadIdentifier is missing or not a string")
	}
	if info.UUID == "" {
		problems = append(problems, "top-level PayloadUUID is missing or not a string")
	}
	if top.Bool("IsEncrypted") {
		return nil, fail("IsEncrypted is true but the profile has no EncryptedPayloadContent", nil)
	}
	seen := map[string]bool{}
	for i, pl := range p.Payloads {
		where := fmt.Sprintf("PayloadContent[%d]", i)
		if pl.Type() == "" {
			problems = append(problems, where+" has no PayloadType string")
		}
		if pl.Identifier() == "" {
			problems = append(problems, where+" has no PayloadIdentifier string")
		}
		switch u := pl.UUID(); {
		case u == "":
			problems = append(problems, where+" has no PayloadUUID string")
		case seen[u]:
			problems = append(problems, where+" repeats PayloadUUID "+u)
		default:
			seen[u] = true
		}
	}
	if len(problems) > 0 {
		return nil, fail("it breaks the profile format", errors.New(strings.Join(problems, "; ")))
	}

	res := &InstallResult{Signed: p.Signed, Signer: p.Signer}
	switch {
	case !p.Signed:
		res.VerifyError = errors.New("the profile is not signed")
	case d.trust == nil:
		res.VerifyError = errors.New("the device trusts no roots for profile signers (WithTrust)")
	default:
		if err := p.VerifyChain(d.trust, d.now()); err != nil {
			res.VerifyError = err
		} else {
			res.Verified = true
		}
	}
	info.Verified = res.Verified
	if d.requireVerified && !res.Verified {
		return nil, fail("the device requires verified profiles", fmt.Errorf("%w: %w", ErrUntrustedProfile, res.VerifyError))
	}

	plan := &installPlan{info: info, result: res}
	var certPayloads, scepPayloads, otherPayloads, mdmPayloads []PayloadInfo
	scepUUIDs := map[string]bool{}
	otherIdentity := map[string]string{} // identity payloads the device cannot run: UUID → type
	for _, pl := range p.Payloads {
		pi := PayloadInfo{
			Type: pl.Type(), Identifier: pl.Identifier(), UUID: pl.UUID(),
			DisplayName: pl.String("PayloadDisplayName"), Description: pl.String("PayloadDescription"),
			Organization: pl.String("PayloadOrganization"),
		}
		if v, ok := pl.Int("PayloadVersion"); ok {
			pi.Version = int(v)
		}
		switch pi.Type {
		case profiles.PayloadTypeRoot, payloadTypePKCS1, payloadTypePEM:
			cs, err := payloadCertificates(pl)
			if err != nil {
				return nil, fail(fmt.Sprintf("certificate payload %q is unusable", pi.Identifier), err)
			}
			plan.roots = append(plan.roots, cs...)
			certPayloads = append(certPayloads, pi)
		case profiles.PayloadTypeSCEP:
			s, err := pl.SCEP()
			if err == nil {
				err = s.Validate()
			}
			if err != nil {
				return nil, fail(fmt.Sprintf("SCEP payload %q is unusable", pi.Identifier), err)
			}
			plan.sceps = append(plan.sceps, s)
			scepUUIDs[s.UUID] = true
			scepPayloads = append(scepPayloads, pi)
		case profiles.PayloadTypeMDM:
			m, err := pl.MDM()
			if err == nil {
				if d.allowHTTP {
					err = m.ValidateAllowHTTP()
				} else {
					err = m.Validate()
				}
			}
			if err != nil {
				return nil, fail(fmt.Sprintf("MDM payload %q is unusable", pi.Identifier), err)
			}
			plan.mdm = m
			mdmPayloads = append(mdmPayloads, pi)
		default:
			if pi.Type == payloadTypePKCS12 || pi.Type == payloadTypeACME {
				otherIdentity[pi.UUID] = pi.Type
			}
			pi.Inert = true
			otherPayloads = append(otherPayloads, pi)
		}
	}
	// Apple's order: certificates, identities, the rest, MDM last.
	info.Payloads = slices.Concat(certPayloads, scepPayloads, otherPayloads, mdmPayloads)

	if len(mdmPayloads) > 1 {
		return nil, fail(fmt.Sprintf("it has %d MDM payloads; a profile may have one", len(mdmPayloads)), nil)
	}
	if m := plan.mdm; m != nil {
		info.Enrollment = true
		plan.ue = m.EnrollmentMode == profiles.EnrollmentModeBYOD || m.ManagedAppleID != ""
		if managed {
			return nil, fail("an MDM payload cannot be installed with the InstallProfile command", nil)
		}
		if !scepUUIDs[m.IdentityCertificateUUID] {
			if t, ok := otherIdentity[m.IdentityCertificateUUID]; ok {
				return nil, fail(fmt.Sprintf("the MDM identity is a %s payload, which the virtual device cannot run; use a SCEP payload", t), nil)
			}
			return nil, fail(fmt.Sprintf("the MDM payload's IdentityCertificateUUID %q names no SCEP payload in this profile", m.IdentityCertificateUUID), nil)
		}
	}

	d.mu.RLock()
	defer d.mu.RUnlock()
	if plan.mdm != nil && d.st.enrollment != nil {
		return nil, fail("the device already has an MDM payload", ErrAlreadyEnrolled)
	}
	for _, old := range d.st.profiles {
		if old.Identifier != info.Identifier || old.User != user {
			continue
		}
		switch {
		case old.Enrollment:
			return nil, fail("it would replace the installed enrollment profile with the same PayloadIdentifier; Unenroll first", ErrAlreadyEnrolled)
		case old.Managed != managed:
			err := fail("a profile with the same PayloadIdentifier was installed by "+installer(old.Managed)+" and cannot be replaced by "+installer(managed), nil)
			if managed {
				err.(*ProfileError).owner = ownerUser
			}
			return nil, err
		// Nor does InstallProfile take over a configuration's profile.
		case from == nil && old.Declaration != "":
			err := fail(fmt.Sprintf("the profile %s was installed by the legacy configuration %s, which owns it; InstallProfile does not replace it", old.Identifier, old.Declaration), nil)
			err.(*ProfileError).owner = ownerDeclaration
			return nil, err
		// A legacy configuration does not take over a profile that
		// InstallProfile, the user or another configuration installed.
		case from != nil && old.Declaration == "":
			return nil, fail(fmt.Sprintf("the profile %s is already installed, not by a legacy configuration (InstallProfile, or the user); a legacy configuration does not replace it", old.Identifier), nil)
		case from != nil && old.Declaration != from.Identifier:
			return nil, fail(fmt.Sprintf("the profile %s is already installed by the legacy configuration %s", old.Identifier, old.Declaration), nil)
		}
		plan.replace = old
		res.Replaced = true
	}
	res.Roots = plan.roots
	return plan, nil
}

func installer(managed bool) string {
	if managed {
		return "the MDM server"
	}
	return "the user"
}

// payloadCertificates decodes the certificate(s) of a root, pkcs1 or pem
// payload: DER in PayloadContent, PEM for com.apple.security.pem.
func payloadCertificates(pl profiles.Payload) ([]*x509.Certificate, error) {
	data := pl.Data("PayloadContent")
	if len(data) == 0 {
		return nil, errors.New("PayloadContent must be <data> holding the certificate")
	}
	if pl.Type() != payloadTypePEM {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("PayloadContent is not a DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a PEM CERTIFICATE block does not parse: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("PayloadContent holds no PEM CERTIFICATE block")
	}
	return out, nil
}

// scepEnroll runs one SCEP payload: a new RSA key, a CSR with the payload's
// subject and challenge, and the identity the CA returns.
func (d *Device) scepEnroll(ctx context.Context, profileID string, s *profiles.SCEPPayload) (*identity, error) {
	bits := d.keySize
	if bits == 0 {
		bits = max(s.Keysize, defaultMinKeySize)
	}
	subject, err := subjectName(s.Subject)
	if err != nil {
		return nil, &ProfileError{Identifier: profileID, Reason: "the SCEP payload's Subject is unusable", Err: err}
	}
	key, err := d.genKey(bits)
	if err != nil {
		return nil, fmt.Errorf("device: generating a %d-bit identity key: %w", bits, err)
	}
	cert, err := certs.SCEPEnroll(withStep(ctx, "SCEP"), recorder{d}, certs.SCEPRequest{
		URL:           s.URL,
		Challenge:     s.Challenge,
		Subject:       subject,
		Key:           key,
		CAFingerprint: s.CAFingerprint,
	})
	if err != nil {
		return nil, &ExchangeError{Step: "SCEP", URL: s.URL, Reason: "the SCEP server issued no identity", Err: err}
	}
	return &identity{payloadUUID: s.UUID, profileID: profileID, cert: cert, key: key}, nil
}

// Attribute OIDs of the short names the SCEP payload's Subject may use.
var subjectOIDs = map[string]asn1.ObjectIdentifier{
	"C":  {2, 5, 4, 6},
	"L":  {2, 5, 4, 7},
	"ST": {2, 5, 4, 8},
	"O":  {2, 5, 4, 10},
	"OU": {2, 5, 4, 11},
	"CN": {2, 5, 4, 3},
}

// subjectName turns the payload's Subject (RDNs of [name, value] pairs,
// name a short name or a dotted OID) into a distinguished name that keeps
// the payload's order.
func subjectName(rdns [][][]string) (pkix.Name, error) {
	var n pkix.Name
	for _, rdn := range rdns {
		for _, pair := range rdn {
			if len(pair) != 2 {
				return pkix.Name{}, fmt.Errorf("subject entry %q is not a [name, value] pair", pair)
			}
			oid, ok := subjectOIDs[pair[0]]
			if !ok {
				var err error
				if oid, err = parseOID(pair[0]); err != nil {
					return pkix.Name{}, fmt.Errorf("subject attribute %q is neither C, L, ST, O, OU, CN nor a dotted OID", pair[0])
				}
			}
			n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oid, Value: pair[1]})
		}
	}
	return n, nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, errors.New("too few arcs")
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("arc %q", p)
		}
		oid[i] = v
	}
	return oid, nil
}

// removeProfile removes p and what it installed: its roots, its identities
// (those of its identifier on its channel — the same identifier may be
// installed on another) and, for the enrollment profile, the enrollment
// itself.
func (st *state) removeProfile(p *ProfileInfo) {
	st.profiles = slices.DeleteFunc(st.profiles, func(q *ProfileInfo) bool { return q == p })
	st.roots = slices.DeleteFunc(st.roots, func(r trustedRoot) bool { return r.profileID == p.Identifier && r.user == p.User })
	st.identities = slices.DeleteFunc(st.identities, func(id *identity) bool { return id.profileID == p.Identifier && id.user == p.User })
	if p.Enrollment && st.enrollment != nil && st.enrollment.profileID == p.Identifier {
		st.enrollment = nil
	}
}

// dropEnrollment removes the enrollment profile and, as on a real device,
// every profile the MDM server installed.
func (st *state) dropEnrollment() {
	for _, p := range slices.Clone(st.profiles) {
		if p.Enrollment || p.Managed {
			st.removeProfile(p)
		}
	}
	st.enrollment = nil
	st.account = nil
	// The declarations came with the enrollment, and what they installed
	// goes with them: a new one syncs afresh.
	st.declarative = nil
	st.enforced = nil
	st.roots = slices.DeleteFunc(st.roots, func(r trustedRoot) bool { return r.declaration != "" })
	st.identities = slices.DeleteFunc(st.identities, func(id *identity) bool { return id.declaration != "" })
	maps.DeleteFunc(st.apps, func(_ string, a *managedApp) bool { return a.declaration != "" })
}

// findProfile returns the profile with identifier that user's channel
// ("" the device's) installed, or nil.
func (st *state) findProfile(identifier, user string) *ProfileInfo {
	for _, p := range st.profiles {
		if p.Identifier == identifier && p.User == user {
			return p
		}
	}
	return nil
}
