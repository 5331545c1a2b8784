package enroll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mockmdm/mockmdm/store"
)

// Enrollment types of an enrollment type profile (seed 000's BYOD options
// and seed 002's enrollment type profile settings).
const (
	TypeUserEnrollment   = "user-enrollment"   // User enrollment with Company Portal
	TypeDeviceEnrollment = "device-enrollment" // Device enrollment with Company Portal
	TypeWeb              = "web"               // Web based device enrollment (iOS 15+)
	TypeAccountDriven    = "account-driven"    // Account driven user enrollment (iOS 15+)
	TypeUserChoice       = "user-choice"       // Determine based on user choice
)

// TypeNames are the enrollment types and what an admin sees for each.
var TypeNames = map[string]string{
	TypeUserEnrollment:   "User enrollment with Company Portal",
	TypeDeviceEnrollment: "Device enrollment with Company Portal",
	TypeWeb:              "Web based device enrollment",
	TypeAccountDriven:    "Account driven user enrollment",
	TypeUserChoice:       "Determine based on user choice",
}

// TypeProfile is an enrollment type profile: assigned to user groups with
// a priority; the highest-priority profile assigned to a user applies.
type TypeProfile struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description"`
	// Type is one of the Type constants.
	Type string `json:"type" yaml:"type"`
	// Groups are the user groups it is assigned to.
	Groups []string `json:"groups" yaml:"groups"`
	// Priority orders profiles: 1 is the highest.
	Priority int `json:"priority" yaml:"priority"`
}

// PutTypeProfile creates or replaces an enrollment type profile. Assigning
// it to a device group is refused: the feature works on user identities.
func (s *Service) PutTypeProfile(ctx context.Context, p TypeProfile) error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || strings.ContainsAny(p.Name, "/?#") {
		return invalid("enrollment type profile name %q: give a non-empty name without / ? #", p.Name)
	}
	if _, ok := TypeNames[p.Type]; !ok {
		return invalid("enrollment type profile %s: type %q is not one of %s", p.Name, p.Type, strings.Join(typeList(), ", "))
	}
	if p.Priority < 1 {
		return invalid("enrollment type profile %s: priority %d must be 1 (highest) or more", p.Name, p.Priority)
	}
	for _, name := range p.Groups {
		g, err := s.Group(ctx, name)
		if err != nil {
			return refuse(http.StatusBadRequest, CodeUnknownGroup, "enrollment type profile %s: group %q does not exist", p.Name, name)
		}
		if g.Kind != GroupUsers {
			return refuse(http.StatusBadRequest, CodeDeviceGroup, "enrollment type profile %s: %q is a device group; enrollment type profiles are assigned to user groups only, because they are based on user identities", p.Name, name)
		}
	}
	if p.Groups == nil {
		p.Groups = []string{}
	}
	return s.put(ctx, kindTypeProfile, p.Name, p)
}

// TypeProfiles lists the enrollment type profiles, highest priority first.
func (s *Service) TypeProfiles(ctx context.Context) ([]TypeProfile, error) {
	ps, err := list[TypeProfile](ctx, s, kindTypeProfile)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ps, func(a, b TypeProfile) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return strings.Compare(a.Name, b.Name)
	})
	return ps, nil
}

// DeleteTypeProfile removes an enrollment type profile.
func (s *Service) DeleteTypeProfile(ctx context.Context, name string) error {
	if _, err := s.docs.GetDocument(ctx, kindTypeProfile, name); errors.Is(err, store.ErrNotFound) {
		return refuse(http.StatusNotFound, CodeNoTypeProfile, "no enrollment type profile %q", name)
	}
	return s.docs.DeleteDocument(ctx, kindTypeProfile, name)
}

// TypeProfileFor returns the highest-priority profile assigned to one of
// the user's groups; a user with none gets CodeNoTypeProfile.
func (s *Service) TypeProfileFor(ctx context.Context, u *User) (*TypeProfile, error) {
	ps, err := s.TypeProfiles(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		for _, g := range p.Groups {
			if hasGroup(u, g) {
				return &p, nil
			}
		}
	}
	return nil, refuse(http.StatusForbidden, CodeNoTypeProfile, "no enrollment type profile is assigned to any group of %s; assign one to a user group it belongs to", u.UPN)
}

// Choice answers the Company Portal's two questions (seed 002): who owns
// the device, then, for a personal device, how much of it to secure.
type Choice struct {
	// Ownership is OwnershipCorporate ("{company} owns this device") or
	// OwnershipPersonal ("I own this device").
	Ownership string `json:"ownership,omitempty"`
	// Scope is ScopeDevice ("Secure entire device") or ScopeWork ("Secure
	// work-related apps and data only"); asked only for a personal device.
	Scope string `json:"scope,omitempty"`
}

// Scopes of a personal device's enrollment.
const (
	ScopeDevice = "device" // Secure entire device
	ScopeWork   = "work"   // Secure work-related apps and data only
)

// Outcome is what an enrollment type decides: the enrollment mode and the
// ownership recorded.
type Outcome struct {
	Mode      string `json:"mode"`
	Ownership string `json:"ownership"`
}

// Decide applies an enrollment type and the user's choice, as seed 002
// states it: User enrollment → User Enrollment, personal; Device enrollment
// → device enrollment, company-owned; user choice → "{company} owns this
// device" gives device enrollment, corporate; "I own this device" then
// "Secure entire device" gives device enrollment, personal, and "Secure
// work-related apps and data only" User Enrollment, personal. Web based
// device enrollment is "just like device enrollment with Company Portal"
// (seed 000); account driven user enrollment is a User Enrollment.
func Decide(typ string, c Choice) (Outcome, error) {
	switch typ {
	case TypeUserEnrollment, TypeAccountDriven:
		return Outcome{store.ModeUserEnrollment, store.OwnershipPersonal}, nil
	case TypeDeviceEnrollment, TypeWeb:
		return Outcome{store.ModeDevice, store.OwnershipCorporate}, nil
	case TypeUserChoice:
	default:
		return Outcome{}, invalid("unknown enrollment type %q", typ)
	}
	switch c.Ownership {
	case store.OwnershipCorporate:
		return Outcome{store.ModeDevice, store.OwnershipCorporate}, nil
	case store.OwnershipPersonal:
		switch c.Scope {
		case ScopeDevice:
			return Outcome{store.ModeDevice, store.OwnershipPersonal}, nil
		case ScopeWork:
			return Outcome{store.ModeUserEnrollment, store.OwnershipPersonal}, nil
		case "":
			return Outcome{}, refuse(http.StatusBadRequest, CodeChoiceRequired, "for a personal device choose what to secure: %q (Secure entire device) or %q (Secure work-related apps and data only)", ScopeDevice, ScopeWork)
		default:
			return Outcome{}, refuse(http.StatusBadRequest, CodeBadChoice, "scope %q: choose %q or %q", c.Scope, ScopeDevice, ScopeWork)
		}
	case "":
		return Outcome{}, refuse(http.StatusBadRequest, CodeChoiceRequired, "your organisation lets you choose: who owns this device, %q or %q?", store.OwnershipCorporate, store.OwnershipPersonal)
	default:
		return Outcome{}, refuse(http.StatusBadRequest, CodeBadChoice, "ownership %q: choose %q or %q", c.Ownership, store.OwnershipCorporate, store.OwnershipPersonal)
	}
}

func typeList() []string {
	out := make([]string, 0, len(TypeNames))
	for k := range TypeNames {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Settings are the organisation-wide enrollment settings.
type Settings struct {
	// Company is the organisation's name, shown as "{company} owns this device".
	Company string `json:"company" yaml:"company"`
	// BlockPersonal refuses personally owned devices (an enrollment restriction).
	BlockPersonal bool `json:"block_personal,omitempty" yaml:"block_personal"`
}

// Settings returns the enrollment settings (defaults when never set).
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	st := Settings{Company: s.company}
	if err := s.get(ctx, kindSettings, "settings", &st); err != nil && !errors.Is(err, store.ErrNotFound) {
		return st, err
	}
	return st, nil
}

// PutSettings replaces the enrollment settings.
func (s *Service) PutSettings(ctx context.Context, st Settings) error {
	if strings.TrimSpace(st.Company) == "" {
		st.Company = s.company
	}
	return s.put(ctx, kindSettings, "settings", st)
}

// Restrict applies the enrollment restrictions to a decided enrollment:
// personal devices when they are blocked, and device enrollment manager
// accounts, which BYOD accepts but ADE and Apple Configurator refuse.
func (s *Service) Restrict(ctx context.Context, program string, u *User, ownership string) error {
	st, err := s.Settings(ctx)
	if err != nil {
		return err
	}
	if ownership == store.OwnershipPersonal && st.BlockPersonal {
		return refuse(http.StatusForbidden, CodePersonalBlocked, "%s does not allow personally owned devices to enroll (enrollment restriction); enroll a company device or ask the administrator", st.Company)
	}
	if u != nil && u.DEM && (program == store.ProgramADE || program == store.ProgramConfigurator) {
		return refuse(http.StatusForbidden, CodeDEMNotAllowed, "%s is a device enrollment manager account; DEM accounts are not supported for %s — use a regular user", u.UPN, programName(program))
	}
	return nil
}

func programName(p string) string {
	switch p {
	case store.ProgramADE:
		return "Automated Device Enrollment"
	case store.ProgramConfigurator:
		return "Apple Configurator enrollment"
	}
	return fmt.Sprintf("%q enrollment", p)
}
