package enroll

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
)

// Account-driven enrollment (PROTOCOL.md §6): discovery at the user's
// domain, the 401 that sends the device to our sign-in page, the bearer
// token the sign-in hands back, and the profile for the token.

// Discovery is the service discovery document served at PathWellKnown.
// Keys, from Apple's "Discover Authentication Servers" (GET
// .well-known/com.apple.remotemanagement) and its WellKnown /
// WellKnown.AvailableServer objects, as summarised in
// /work/shared/docs/PROTOCOL.md §6 step 2: Servers (array, required) of
// {Version (string, required: "mdm-byod" for User Enrollment, "mdm-adde"
// for account-driven device enrollment), BaseURL (string, required)}.
type Discovery struct {
	Servers []DiscoveryServer `json:"Servers"`
}

// DiscoveryServer is one WellKnown.AvailableServer.
type DiscoveryServer struct {
	Version string `json:"Version"`
	BaseURL string `json:"BaseURL"`
}

// Discovery versions.
const (
	VersionBYOD = "mdm-byod"
	VersionADDE = "mdm-adde"
)

// WellKnownKeys is the discovery document's key list with each key's JSON
// type and whether it is required, for validating what we serve (copied
// from the sources named on Discovery; the product never reads them).
var WellKnownKeys = map[string]struct {
	Type     string
	Required bool
	Values   []string
}{
	"Servers":         {"array", true, nil},
	"Servers.Version": {"string", true, []string{VersionBYOD, VersionADDE}},
	"Servers.BaseURL": {"string", true, nil},
}

// WellKnownFailed is Apple's com.apple.well-known.failed error document
// (ADM mdm/errors/well-known.failed.yaml): code (required, the one value),
// description (for the device's log), message (for the user).
type WellKnownFailed struct {
	Code        string `json:"code"`
	Description string `json:"description,omitempty"`
	Message     string `json:"message,omitempty"`
}

// WellKnownFailedCode is the only value of WellKnownFailed.Code.
const WellKnownFailedCode = "com.apple.well-known.failed"

// modelFamilies are the model-family values a device sends at discovery.
var modelFamilies = []string{"AppleTV", "iPad", "iPhone", "Mac", "RealityDevice", "Watch"}

type accountDriven struct {
	s         *Service
	profiles  Profiles
	baseURL   string
	signinURL string
	secure    bool
}

func (a *accountDriven) routes() []Route {
	return []Route{
		{http.MethodGet, PathWellKnown, http.HandlerFunc(a.discover)},
		{http.MethodPost, PathAccountDriven, http.HandlerFunc(a.enroll)},
		{http.MethodGet, PathAccountDrivenIn, http.HandlerFunc(a.signInPage)},
		{http.MethodPost, PathAccountDrivenIn, http.HandlerFunc(a.signIn)},
	}
}

// UserByIdentifier finds the user a device names at discovery: the
// identifier the person typed is their Managed Apple ID or their UPN.
func (s *Service) UserByIdentifier(ctx context.Context, id string) (*User, error) {
	id = strings.TrimSpace(id)
	if u, err := s.User(ctx, id); err == nil {
		return u, nil
	}
	us, err := s.Users(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		if u.ManagedAppleID != "" && strings.EqualFold(u.ManagedAppleID, id) {
			return &u, nil
		}
	}
	return nil, refuse(http.StatusForbidden, CodeUnknownUser, "no user %q (UPN or Managed Apple ID) in the organisation's directory", id)
}

// Discover decides the discovery answer for a user identifier and model
// family: the BaseURL for a user whose enrollment type profile is
// account-driven, else the refusal.
func (s *Service) Discover(ctx context.Context, userID, family, baseURL string) (*Discovery, error) {
	if strings.TrimSpace(userID) == "" {
		return nil, refuse(http.StatusForbidden, CodeInvalid, "the user-identifier query parameter is missing")
	}
	switch {
	case family == "":
		return nil, refuse(http.StatusForbidden, CodeInvalid, "the model-family query parameter is missing")
	case !slices.Contains(modelFamilies, family):
		return nil, refuse(http.StatusForbidden, CodeInvalid, "model-family %q is not one of %s", family, strings.Join(modelFamilies, ", "))
	case family == "AppleTV" || family == "Watch":
		return nil, refuse(http.StatusForbidden, CodeInvalid, "account-driven User Enrollment is not available on %s", family)
	}
	u, err := s.UserByIdentifier(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, refuse(http.StatusForbidden, CodeUserDisabled, "the account %s is disabled", u.UPN)
	}
	if _, err := s.profileForPath(ctx, u, PurposeAccountDriven); err != nil {
		return nil, err
	}
	return &Discovery{Servers: []DiscoveryServer{{Version: VersionBYOD, BaseURL: baseURL}}}, nil
}

func (a *accountDriven) discover(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := a.s.Discover(r.Context(), q.Get("user-identifier"), q.Get("model-family"), a.baseURL)
	if err != nil {
		st := httpStatus(err)
		if st >= 500 {
			writeError(w, err)
			return
		}
		e := asError(err)
		a.s.log.InfoContext(r.Context(), "account-driven discovery refused", "user", q.Get("user-identifier"), "code", e.Code)
		// Apple's structured refusal: always a 403 with the document.
		writeJSON(w, http.StatusForbidden, WellKnownFailed{Code: WellKnownFailedCode, Description: e.Code + ": " + e.Message, Message: e.Message})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// challenge answers 401 with the header that sends the device to the
// sign-in page (Apple's simple authentication flow). A bad or expired
// token gets exactly this too: a 401 without it would unenroll the device.
func (a *accountDriven) challenge(w http.ResponseWriter, why string) {
	w.Header().Set("WWW-Authenticate", challengeFor(a.signinURL))
	writeJSON(w, http.StatusUnauthorized, Error{Code: CodeBadSession, Message: why})
}

// challengeFor is the WWW-Authenticate value of Apple's simple
// authentication flow for a sign-in page.
func challengeFor(signinURL string) string {
	return fmt.Sprintf(`Bearer method="apple-as-web", url="%s"`, signinURL)
}

// AccountChallenge is the WWW-Authenticate value that sends an
// account-driven device to sign its user in again ("" before DeviceRoutes).
func (s *Service) AccountChallenge() string { return s.accountChallenge }

// VerifyAccountBearer accepts the access token an account-driven
// enrollment's device sends with its MDM requests when it is an unexpired
// account-driven sign-in of the enrollment's user upn.
func (s *Service) VerifyAccountBearer(ctx context.Context, upn, token string) error {
	_, u, err := s.Session(ctx, PurposeAccountDriven, token)
	if err != nil {
		return err
	}
	if !strings.EqualFold(u.UPN, upn) {
		return refuse(http.StatusUnauthorized, CodeBadSession, "the token is %s's, but the enrollment is %s's", u.UPN, upn)
	}
	return nil
}

// enroll is POST BaseURL: the CMS-signed MachineInfo, with or without the
// bearer token.
func (a *accountDriven) enroll(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := decodeMachineInfo(body); err != nil {
		writeError(w, err)
		return
	}
	tok := bearerOf(r)
	if tok == "" {
		why := "sign in to enroll: no bearer token"
		if r.Header.Get("Authorization") != "" {
			why = "the Authorization header is not \"Bearer <token>\": sign in again"
		}
		a.challenge(w, why)
		return
	}
	_, u, err := a.s.Session(r.Context(), PurposeAccountDriven, tok)
	if err != nil {
		if e, ok := ErrorOf(err); ok && e.Code == CodeBadSession {
			a.challenge(w, e.Message)
			return
		}
		writeError(w, err)
		return
	}
	t, req, err := a.s.Prepare(r.Context(), PurposeAccountDriven, u, Choice{})
	if err != nil {
		a.s.log.InfoContext(r.Context(), "account-driven enrollment refused", "upn", u.UPN, "err", err)
		writeError(w, err)
		return
	}
	profile, err := a.profiles.EnrollmentProfile(r.Context(), req)
	if err != nil {
		_ = a.s.docs.DeleteDocument(r.Context(), kindTicket, t.ID)
		a.s.log.ErrorContext(r.Context(), "building an account-driven profile", "err", err)
		writeError(w, err)
		return
	}
	serveProfile(w, profile, t.ID)
}

func (a *accountDriven) signInPage(w http.ResponseWriter, r *http.Request) {
	st, _ := a.s.Settings(r.Context())
	render(w, http.StatusOK, "signin", page{Title: "Sign in to " + st.Company, Action: PathAccountDrivenIn, CSRF: csrfToken(w, r, a.secure), Company: st.Company})
}

// CallbackURL is where the sign-in page sends the device with its token.
const CallbackURL = "apple-remotemanagement-user-login://authentication-results"

func (a *accountDriven) signIn(w http.ResponseWriter, r *http.Request) {
	st, _ := a.s.Settings(r.Context())
	p := page{Title: "Sign in to " + st.Company, Action: PathAccountDrivenIn, Company: st.Company}
	sess, ok := a.s.signInForm(w, r, p, a.secure, PurposeAccountDriven, func(sess *Session, u *User) error {
		if strings.TrimSpace(u.ManagedAppleID) != "" {
			return nil
		}
		// Refuse here, where the person can read it, rather than at the
		// device's re-POST; and leave no token behind.
		_ = a.s.docs.DeleteDocument(r.Context(), kindSession, sess.Token)
		return refuse(http.StatusForbidden, CodeNoManagedAppleID, "User Enrollment needs a Managed Apple ID, and %s has none; ask the administrator", u.UPN)
	})
	if !ok {
		return
	}
	http.Redirect(w, r, CallbackURL+"?access-token="+url.QueryEscape(sess.Token), http.StatusFound)
}

// userEnrollmentMachineInfo verifies the signature only: account-driven
// devices sign with their own identity, which no test root vouches for.
var userEnrollmentMachineInfo = certs.NewAppleDeviceVerifier(certs.VerifySignature, nil, time.Now)

// decodeMachineInfo reads the CMS SignedData (content attached) that an
// account-driven device posts: a User Enrollment's MachineInfo, without
// UDID or SERIAL, whose signature must verify.
func decodeMachineInfo(body []byte) (*mdm.MachineInfo, error) {
	mi, err := mdm.ParseSignedUserEnrollmentMachineInfo(body)
	if err != nil {
		return nil, invalid("the enrollment request body is not a signed User Enrollment MachineInfo: %v", err)
	}
	if _, err := userEnrollmentMachineInfo.Verify(body); err != nil {
		return nil, invalid("the MachineInfo signature does not verify: %v", err)
	}
	return mi, nil
}
