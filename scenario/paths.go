package scenario

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/mockmdm/mockmdm/api"
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
}

// PathFunc enrolls env.Device and returns the enrollment ID the server
// knows it by (its UDID, or the EnrollmentID of a User Enrollment). Its
// error says which protocol step failed; an expect-failure step matches it
// against an HTTP status, so keep a *device.ServerError in the chain.
type PathFunc func(ctx context.Context, env *PathEnv) (enrollmentID string, err error)

var (
	pathsMu sync.RWMutex
	paths   = map[string]PathFunc{}
)

// RegisterPath makes an enrollment path available to enroll steps under
// name. Paths are registered at init time; registering a name twice, an
// empty name or a nil function panics, as it is a programming mistake.
func RegisterPath(name string, fn PathFunc) {
	if name == "" || fn == nil {
		panic("scenario: RegisterPath needs a name and a function")
	}
	pathsMu.Lock()
	defer pathsMu.Unlock()
	if _, dup := paths[name]; dup {
		panic("scenario: enrollment path " + name + " registered twice")
	}
	paths[name] = fn
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
	return paths[name]
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
