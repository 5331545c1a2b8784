package enroll

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// Document kinds of the sign-in sessions.
const (
	kindSession = "enrollment-session"
)

// Session purposes: a Company Portal (app or page) sign-in, a web-based
// device enrollment sign-in, and the bearer token of account-driven
// enrollment. A token of one purpose never opens another's door.
const (
	PurposePortal        = "portal"
	PurposeWeb           = "web"
	PurposeAccountDriven = "account-driven"
)

// sessionTTL is how long a sign-in lasts: long enough to answer the two
// questions and download the profile, short enough that a token found in
// a log is useless soon after.
const sessionTTL = 15 * time.Minute

// CodeBadSession is a missing, unknown, expired or foreign session token.
const CodeBadSession = "bad_session"

// CodeWrongPath refuses an enrollment path that the user's enrollment
// type profile does not use (the Company Portal for a web-based profile…).
const CodeWrongPath = "wrong_enrollment_path"

// Session is a signed-in user of an enrollment path: a short-lived random
// token bound to the user and to one purpose.
type Session struct {
	Token     string    `json:"token"`
	UPN       string    `json:"upn"`
	Purpose   string    `json:"purpose"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// pathTypes are the enrollment types each path serves: the Company Portal
// asks for User, Device and user-choice enrollments; the web page for
// web-based enrollment; the account-driven flow for its own type.
var pathTypes = map[string][]string{
	PurposePortal:        {TypeUserEnrollment, TypeDeviceEnrollment, TypeUserChoice},
	PurposeWeb:           {TypeWeb},
	PurposeAccountDriven: {TypeAccountDriven},
}

var pathNames = map[string]string{
	PurposePortal:        "the Company Portal",
	PurposeWeb:           "web-based device enrollment (/enroll/web)",
	PurposeAccountDriven: "account-driven enrollment (Settings → General → VPN & Device Management → Sign in to Work or School Account)",
}

var typePath = map[string]string{
	TypeUserEnrollment:   PurposePortal,
	TypeDeviceEnrollment: PurposePortal,
	TypeUserChoice:       PurposePortal,
	TypeWeb:              PurposeWeb,
	TypeAccountDriven:    PurposeAccountDriven,
}

// StartSession signs the user in for an enrollment path and checks, before
// anything is issued, that an enrollment type profile applies to the user
// and that it is one this path serves: a user with no profile or on the
// wrong path learns it at sign-in, with nothing left behind.
func (s *Service) StartSession(ctx context.Context, purpose string, c Credentials) (*Session, *User, error) {
	if _, ok := pathTypes[purpose]; !ok {
		return nil, nil, invalid("unknown enrollment path %q", purpose)
	}
	u, err := s.SignIn(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.profileForPath(ctx, u, purpose); err != nil {
		return nil, nil, err
	}
	now := s.now().UTC()
	ttl := sessionTTL
	if purpose == PurposeAccountDriven {
		ttl = s.accountTokenTTL // the device keeps using it after enrolling
	}
	sess := &Session{Token: randomToken(), UPN: u.UPN, Purpose: purpose, IssuedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.put(ctx, kindSession, sess.Token, sess); err != nil {
		return nil, nil, err
	}
	return sess, u, nil
}

// profileForPath is the user's enrollment type profile, refused when the
// path does not serve its type.
func (s *Service) profileForPath(ctx context.Context, u *User, purpose string) (*TypeProfile, error) {
	p, err := s.TypeProfileFor(ctx, u)
	if err != nil {
		return nil, err
	}
	for _, t := range pathTypes[purpose] {
		if p.Type == t {
			return p, nil
		}
	}
	return nil, refuse(http.StatusForbidden, CodeWrongPath, "%s enrolls with %q (%s, enrollment type profile %q), not through %s; use %s",
		u.UPN, p.Type, TypeNames[p.Type], p.Name, pathNames[purpose], pathNames[typePath[p.Type]])
}

// Session returns the signed-in user of a token of the given purpose; an
// unknown, expired, or other-purpose token is CodeBadSession (401), and so
// is a user deleted or disabled since.
func (s *Service) Session(ctx context.Context, purpose, token string) (*Session, *User, error) {
	if token == "" {
		return nil, nil, refuse(http.StatusUnauthorized, CodeBadSession, "sign in first: no session token was given")
	}
	var sess Session
	if err := s.get(ctx, kindSession, token, &sess); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, refuse(http.StatusUnauthorized, CodeBadSession, "the session token is unknown (signed out, or the server was reset): sign in again")
		}
		return nil, nil, err
	}
	if sess.Purpose != purpose {
		return nil, nil, refuse(http.StatusUnauthorized, CodeBadSession, "this token was issued for %s, not %s: sign in again here", pathNames[sess.Purpose], pathNames[purpose])
	}
	if !s.now().UTC().Before(sess.ExpiresAt) {
		_ = s.docs.DeleteDocument(ctx, kindSession, token)
		return nil, nil, refuse(http.StatusUnauthorized, CodeBadSession, "the session expired at %s: sign in again", sess.ExpiresAt.Format(time.RFC3339))
	}
	u, err := s.User(ctx, sess.UPN)
	if err != nil {
		return nil, nil, refuse(http.StatusUnauthorized, CodeBadSession, "the account %s no longer exists: sign in again", sess.UPN)
	}
	if u.Disabled {
		return nil, nil, refuse(http.StatusForbidden, CodeUserDisabled, "the account %s is disabled; ask the administrator", u.UPN)
	}
	return &sess, u, nil
}

// Options is what the Company Portal shows a signed-in user before the
// choice: the organisation, the enrollment type profile that applies and
// whether the two questions are asked.
type Options struct {
	Company     string `json:"company"`
	User        string `json:"user"`
	TypeProfile string `json:"type_profile"`
	Type        string `json:"type"`
	TypeName    string `json:"type_name"`
	// AskOwnership is true for "Determine based on user choice": "I own
	// this device" / "{company} owns this device", then for a personal
	// device "Secure entire device" / "Secure work-related apps and data only".
	AskOwnership bool `json:"ask_ownership"`
	// OwnershipChoices and ScopeChoices are the answers with their wording.
	OwnershipChoices []Answer `json:"ownership_choices,omitempty"`
	ScopeChoices     []Answer `json:"scope_choices,omitempty"`
	// BlockPersonal is the enrollment restriction, shown up front.
	BlockPersonal bool `json:"block_personal,omitempty"`
}

// Answer is one answer to a Company Portal question, as the user sees it.
type Answer struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// Options returns the user's enrollment options on an enrollment path.
func (s *Service) Options(ctx context.Context, purpose string, u *User) (*Options, error) {
	p, err := s.profileForPath(ctx, u, purpose)
	if err != nil {
		return nil, err
	}
	st, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	o := &Options{Company: st.Company, User: u.UPN, TypeProfile: p.Name, Type: p.Type, TypeName: TypeNames[p.Type], BlockPersonal: st.BlockPersonal}
	if p.Type == TypeUserChoice {
		o.AskOwnership = true
		o.OwnershipChoices = OwnershipAnswers(st.Company)
		o.ScopeChoices = ScopeAnswers()
	}
	return o, nil
}

// OwnershipAnswers is seed 002's first question.
func OwnershipAnswers(company string) []Answer {
	return []Answer{
		{store.OwnershipPersonal, "I own this device"},
		{store.OwnershipCorporate, company + " owns this device"},
	}
}

// ScopeAnswers is seed 002's second question, for a personal device.
func ScopeAnswers() []Answer {
	return []Answer{
		{ScopeDevice, "Secure entire device"},
		{ScopeWork, "Secure work-related apps and data only"},
	}
}

// Prepare decides an enrollment for a signed-in user on an enrollment
// path and issues its ticket: the user's enrollment type profile and
// choice (Decide), the restrictions (Restrict), a Managed Apple ID for a
// User Enrollment — every refusal before the ticket is written, so a
// refused choice leaves nothing behind. It returns the ticket and the
// profile request that carries it.
func (s *Service) Prepare(ctx context.Context, purpose string, u *User, c Choice) (*Ticket, ProfileRequest, error) {
	p, err := s.profileForPath(ctx, u, purpose)
	if err != nil {
		return nil, ProfileRequest{}, err
	}
	if p.Type != TypeUserChoice && (c.Ownership != "" || c.Scope != "") {
		// The choice is not asked: an answer anyway is a client mistake
		// worth naming rather than silently ignoring.
		return nil, ProfileRequest{}, refuse(http.StatusBadRequest, CodeBadChoice, "enrollment type profile %q (%s) does not let the user choose; send no ownership or scope", p.Name, TypeNames[p.Type])
	}
	out, err := Decide(p.Type, c)
	if err != nil {
		return nil, ProfileRequest{}, err
	}
	program, auth := store.ProgramCompanyPortal, "company-portal"
	switch purpose {
	case PurposeWeb:
		program, auth = store.ProgramWeb, "web"
	case PurposeAccountDriven:
		program, auth = store.ProgramAccountDriven, "account-driven"
	}
	if err := s.Restrict(ctx, program, u, out.Ownership); err != nil {
		return nil, ProfileRequest{}, err
	}
	m := store.Management{
		Program: program, Mode: out.Mode, Ownership: out.Ownership, User: u.UPN,
		AuthMethod: auth, TypeProfile: p.Name, DEM: u.DEM,
	}
	req := ProfileRequest{Mode: out.Mode}
	if out.Mode == store.ModeUserEnrollment {
		if strings.TrimSpace(u.ManagedAppleID) == "" {
			return nil, ProfileRequest{}, refuse(http.StatusForbidden, CodeNoManagedAppleID, "User Enrollment needs a Managed Apple ID, and %s has none; the administrator sets managed_apple_id on the user (PUT /v1/directory/users/%s)", u.UPN, u.UPN)
		}
		m.ManagedAppleID = u.ManagedAppleID
		req.ManagedAppleID = u.ManagedAppleID
		if purpose == PurposeAccountDriven {
			req.EnrollmentMode = profiles.EnrollmentModeBYOD
		}
	}
	t, err := s.IssueTicket(ctx, m, "")
	if err != nil {
		return nil, ProfileRequest{}, err
	}
	req.Ticket = t.ID
	return t, req, nil
}

// Tickets lists the enrollment tickets issued and not yet reset away.
func (s *Service) Tickets(ctx context.Context) ([]Ticket, error) {
	return list[Ticket](ctx, s, kindTicket)
}

// Sessions lists the live and expired sign-in sessions (tokens redacted),
// so a test can check that a refused sign-in left none behind.
func (s *Service) Sessions(ctx context.Context) ([]Session, error) {
	ss, err := list[Session](ctx, s, kindSession)
	for i := range ss {
		ss[i].Token = redact(ss[i].Token)
	}
	return ss, err
}

func redact(tok string) string {
	if len(tok) <= 6 {
		return "…"
	}
	return tok[:6] + "…"
}

// randomToken is 256 random bits, lower-case base32: safe in a URL query,
// a cookie and a Bearer header alike.
func randomToken() string { return randomID() + randomID() }
