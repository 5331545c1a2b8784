package scenario

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
)

// PathEnv is what an enrollment path gets to enroll one device: the
// device, the server's API and description, and the step's parameters.
type PathEnv struct {
	Device *device.Device
	// Client is the server's REST API (the runner's key).
	Client *api.Client
	// Info is the server's description: enrollment, SCEP and MDM URLs.
	Info *api.ServerInfo
	// HTTP reaches the server's other endpoints, as the device does.
	HTTP *http.Client
	// Params are the enroll step's "with:" mapping (nil when absent), so a
	// path can take what it needs (a user, an ownership) without a change
	// to the scenario format.
	Params map[string]string
	// APIKey is the REST API's key, for set-up calls a path makes.
	APIKey string
	// BaseURL is the server's base URL (https://host:port), where its
	// device-facing programs (ADE activation, Company Portal, web and
	// account-driven enrollment) live.
	BaseURL string
	// AppleDeviceCA is the server's mock Apple device CA when the runner
	// holds it (an in-process server); nil against a running server, where
	// the ADE path asks the server for a device identity instead.
	AppleDeviceCA *certs.AppleDeviceCA
}

// Param is one "with:" parameter a path declares: the parser refuses an
// unknown one, a missing required one and a value outside Values, with the
// file and line, before anything runs.
type Param struct {
	Name     string
	Required bool
	// Values, when set, are the only values allowed.
	Values []string
	// Doc says what the parameter does (shown in listings and docs).
	Doc string
}

// PathFunc enrolls env.Device and returns the enrollment ID the server
// knows it by (its UDID, or the EnrollmentID of a User Enrollment). Its
// error says which protocol step failed; an expect-failure step matches it
// against an HTTP status, so keep a *device.ServerError in the chain.
type PathFunc func(ctx context.Context, env *PathEnv) (enrollmentID string, err error)

type pathEntry struct {
	fn PathFunc
	// params are the declared parameters; declared false means the path
	// takes any (RegisterPath).
	params   []Param
	declared bool
}

var (
	pathsMu sync.RWMutex
	paths   = map[string]pathEntry{}
)

// RegisterPath makes an enrollment path available to enroll steps under
// name. Paths are registered at init time; registering a name twice, an
// empty name or a nil function panics, as it is a programming mistake.
func RegisterPath(name string, fn PathFunc) {
	register(name, fn, nil, false)
}

// RegisterPathParams is RegisterPath for a path that declares its "with:"
// parameters, so that a misspelt or missing one is a parse error naming
// the file and line rather than a surprise halfway through a run. A nil
// list declares that the path takes none.
func RegisterPathParams(name string, params []Param, fn PathFunc) {
	seen := map[string]bool{}
	for _, p := range params {
		if p.Name == "" || seen[p.Name] {
			panic("scenario: enrollment path " + name + " declares an empty or repeated parameter")
		}
		seen[p.Name] = true
	}
	register(name, fn, params, true)
}

func register(name string, fn PathFunc, params []Param, declared bool) {
	if name == "" || fn == nil {
		panic("scenario: RegisterPath needs a name and a function")
	}
	pathsMu.Lock()
	defer pathsMu.Unlock()
	if _, dup := paths[name]; dup {
		panic("scenario: enrollment path " + name + " registered twice")
	}
	paths[name] = pathEntry{fn: fn, params: slices.Clone(params), declared: declared}
}

// PathParams returns the parameters a path declares; ok is false for an
// unknown path or one registered without a declaration (it takes any).
func PathParams(name string) (params []Param, ok bool) {
	pathsMu.RLock()
	defer pathsMu.RUnlock()
	e, found := paths[name]
	if !found || !e.declared {
		return nil, false
	}
	return slices.Clone(e.params), true
}

// Paths lists the registered enrollment paths, sorted.
func Paths() []string {
	pathsMu.RLock()
	defer pathsMu.RUnlock()
	out := make([]string, 0, len(paths))
	for k := range paths {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func lookupPath(name string) PathFunc {
	pathsMu.RLock()
	defer pathsMu.RUnlock()
	return paths[name].fn
}

func init() {
	RegisterPath("profile", profilePath)
}

// profilePath is device enrollment with the server's enrollment profile:
// the device downloads it from Info.EnrollmentURL, checks its signature,
// gets its identity over SCEP, then sends Authenticate and TokenUpdate.
func profilePath(ctx context.Context, env *PathEnv) (string, error) {
	if env.Info == nil || env.Info.EnrollmentURL == "" {
		return "", fmt.Errorf("the server gives no enrollment URL (GET /v1/info)")
	}
	res, err := env.Device.EnrollFromURL(ctx, env.Info.EnrollmentURL)
	if err != nil {
		return "", err
	}
	if !res.Enrolled {
		return "", fmt.Errorf("the device installed the profile from %s but did not enroll", env.Info.EnrollmentURL)
	}
	if e := env.Device.Enrollment(); e != nil && e.UserEnrollment {
		return env.Device.EnrollmentID(), nil
	}
	return env.Device.UDID(), nil
}
