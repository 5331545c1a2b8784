package enroll

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"slices"
	"strings"

	"github.com/mockmdm/mockmdm/store"
)

// Document kinds this package keeps in the store.
const (
	kindUser        = "idp-user"
	kindGroup       = "idp-group"
	kindTypeProfile = "enrollment-type-profile"
	kindTicket      = "enrollment-ticket"
	kindSettings    = "enrollment-settings"
)

// User is an organisation user of the mock identity provider, such as
// user@contoso.com. Passwords are kept in clear: this is a test directory
// whose users a QA team types in, not a credential store.
type User struct {
	// UPN is the sign-in name, user@contoso.com; matched case-insensitively.
	UPN         string `json:"upn" yaml:"upn"`
	DisplayName string `json:"display_name,omitempty" yaml:"display_name"`
	Password    string `json:"password,omitempty" yaml:"password"`
	// MFACode, when set, is the one code the second factor accepts.
	MFACode string `json:"mfa_code,omitempty" yaml:"mfa_code"`
	// PasswordExpired makes the next sign-in require a new password.
	PasswordExpired bool `json:"password_expired,omitempty" yaml:"password_expired"`
	// ManagedAppleID is what User Enrollment signs the work partition in
	// with; required for User Enrollment.
	ManagedAppleID string   `json:"managed_apple_id,omitempty" yaml:"managed_apple_id"`
	Groups         []string `json:"groups,omitempty" yaml:"groups"`
	// DEM marks a device enrollment manager account: allowed for BYOD
	// device enrollment, refused for ADE and Apple Configurator (seed 000).
	DEM      bool `json:"dem,omitempty" yaml:"dem"`
	Disabled bool `json:"disabled,omitempty" yaml:"disabled"`
}

// Public is the user without its secrets, for the API.
func (u User) Public() User {
	u.Password, u.MFACode = "", ""
	if u.Groups == nil {
		u.Groups = []string{}
	}
	return u
}

// Group kinds: enrollment type profiles may be assigned to user groups only.
const (
	GroupUsers   = "user"
	GroupDevices = "device"
)

// Group is a directory group.
type Group struct {
	Name string `json:"name" yaml:"name"`
	// Kind is GroupUsers or GroupDevices.
	Kind string `json:"kind" yaml:"kind"`
}

func userKey(upn string) string { return strings.ToLower(strings.TrimSpace(upn)) }

// PutUser creates or replaces a user; its groups must exist.
func (s *Service) PutUser(ctx context.Context, u User) error {
	u.UPN = strings.TrimSpace(u.UPN)
	if _, err := mail.ParseAddress(u.UPN); err != nil || !strings.Contains(u.UPN, "@") || strings.ContainsAny(u.UPN, "<> ") {
		return invalid("user %q: upn must be a sign-in address such as user@contoso.com", u.UPN)
	}
	if u.Password == "" {
		return invalid("user %s: a password is required", u.UPN)
	}
	if u.ManagedAppleID != "" && !strings.Contains(u.ManagedAppleID, "@") {
		return invalid("user %s: managed_apple_id %q must be an address such as user@appleid.contoso.com", u.UPN, u.ManagedAppleID)
	}
	for _, g := range u.Groups {
		if _, err := s.Group(ctx, g); err != nil {
			return refuse(http.StatusBadRequest, CodeUnknownGroup, "user %s: group %q does not exist; create it first (PUT /v1/directory/groups/%s)", u.UPN, g, g)
		}
	}
	return s.put(ctx, kindUser, userKey(u.UPN), u)
}

// User returns a user by UPN.
func (s *Service) User(ctx context.Context, upn string) (*User, error) {
	return getDoc[User](ctx, s, kindUser, userKey(upn),
		refuse(http.StatusNotFound, CodeUnknownUser, "no user %q in the directory", upn))
}

// Users lists every user, ordered by UPN.
func (s *Service) Users(ctx context.Context) ([]User, error) { return list[User](ctx, s, kindUser) }

// DeleteUser removes a user.
func (s *Service) DeleteUser(ctx context.Context, upn string) error {
	if _, err := s.User(ctx, upn); err != nil {
		return err
	}
	return s.docs.DeleteDocument(ctx, kindUser, userKey(upn))
}

// PutGroup creates or replaces a group.
func (s *Service) PutGroup(ctx context.Context, g Group) error {
	g.Name = strings.TrimSpace(g.Name)
	if g.Name == "" || strings.ContainsAny(g.Name, "/?#") {
		return invalid("group name %q: give a non-empty name without / ? #", g.Name)
	}
	if g.Kind == "" {
		g.Kind = GroupUsers
	}
	if g.Kind != GroupUsers && g.Kind != GroupDevices {
		return invalid("group %s: kind %q must be %q or %q", g.Name, g.Kind, GroupUsers, GroupDevices)
	}
	return s.put(ctx, kindGroup, g.Name, g)
}

// Group returns a group by name.
func (s *Service) Group(ctx context.Context, name string) (*Group, error) {
	return getDoc[Group](ctx, s, kindGroup, name,
		refuse(http.StatusNotFound, CodeUnknownGroup, "no group %q in the directory", name))
}

// Groups lists every group, ordered by name.
func (s *Service) Groups(ctx context.Context) ([]Group, error) { return list[Group](ctx, s, kindGroup) }

// Credentials is one sign-in attempt.
type Credentials struct {
	UPN      string `json:"upn"`
	Password string `json:"password"`
	// MFACode answers the second factor when the user has one.
	MFACode string `json:"mfa_code,omitempty"`
	// NewPassword replaces an expired password.
	NewPassword string `json:"new_password,omitempty"`
}

// SignIn checks credentials the way the organisation's identity provider
// would: unknown user, disabled, wrong password, missing or wrong MFA code,
// expired password (which a NewPassword replaces) — each its own code.
func (s *Service) SignIn(ctx context.Context, c Credentials) (*User, error) {
	if strings.TrimSpace(c.UPN) == "" {
		return nil, refuse(http.StatusUnauthorized, CodeUnknownUser, "enter your work account, such as user@contoso.com")
	}
	u, err := s.User(ctx, c.UPN)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == CodeUnknownUser {
			return nil, refuse(http.StatusUnauthorized, CodeUnknownUser, "we couldn't find an account %q in the organisation's directory", c.UPN)
		}
		return nil, err
	}
	if u.Disabled {
		return nil, refuse(http.StatusForbidden, CodeUserDisabled, "the account %s is disabled; ask the administrator", u.UPN)
	}
	if subtle.ConstantTimeCompare([]byte(c.Password), []byte(u.Password)) != 1 {
		return nil, refuse(http.StatusUnauthorized, CodeWrongPassword, "the password for %s is incorrect", u.UPN)
	}
	if u.MFACode != "" {
		if c.MFACode == "" {
			return nil, refuse(http.StatusUnauthorized, CodeMFARequired, "%s needs a second factor: enter the verification code", u.UPN)
		}
		if subtle.ConstantTimeCompare([]byte(c.MFACode), []byte(u.MFACode)) != 1 {
			return nil, refuse(http.StatusUnauthorized, CodeMFAFailed, "the verification code for %s is wrong", u.UPN)
		}
	}
	if u.PasswordExpired {
		switch {
		case c.NewPassword == "":
			return nil, refuse(http.StatusUnauthorized, CodePasswordExpired, "the password of %s has expired: choose a new one", u.UPN)
		case len(c.NewPassword) < 8 || c.NewPassword == u.Password:
			return nil, refuse(http.StatusBadRequest, CodeWeakPassword, "the new password for %s must have at least 8 characters and differ from the old one", u.UPN)
		}
		u.Password, u.PasswordExpired = c.NewPassword, false
		if err := s.put(ctx, kindUser, userKey(u.UPN), *u); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (s *Service) put(ctx context.Context, kind, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.docs.PutDocument(ctx, kind, id, b)
}

func (s *Service) get(ctx context.Context, kind, id string, v any) error {
	b, err := s.docs.GetDocument(ctx, kind, id)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// getDoc reads the document kind/id into a T; a missing one is the error
// missing, which says in the caller's words what was not found and what to
// do, while other store errors pass through.
func getDoc[T any](ctx context.Context, s *Service, kind, id string, missing *Error) (*T, error) {
	var v T
	if err := s.get(ctx, kind, id, &v); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, missing
		}
		return nil, err
	}
	return &v, nil
}

func list[T any](ctx context.Context, s *Service, kind string) ([]T, error) {
	docs, err := s.docs.ListDocuments(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(docs))
	for _, d := range docs {
		var v T
		if err := json.Unmarshal(d.Data, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func hasGroup(u *User, name string) bool { return slices.Contains(u.Groups, name) }
