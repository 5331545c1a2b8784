package enroll

import (
	"context"
	"net/http"

	"github.com/mockmdm/mockmdm/profiles"
)

// Routes are the public, device-facing ADE endpoints: the DEP profile's url
// and configuration_web_url.
func (a *ADE) Routes() []Route {
	return []Route{
		{http.MethodPost, PathADEEnroll + "{profile}", http.HandlerFunc(a.serveEnroll)},
		{http.MethodGet, PathADEWeb + "{profile}", http.HandlerFunc(a.serveWeb)},
		{http.MethodPost, PathADEWeb + "{profile}", http.HandlerFunc(a.serveWeb)},
	}
}

// AdminRoutes are the REST routes for ADE and Apple Configurator profiles;
// the server puts them behind the API key.
func (a *ADE) AdminRoutes() []Route {
	return []Route{
		{http.MethodGet, "/v1/ade/profiles", listed(a, a.Profiles)},
		{http.MethodGet, "/v1/ade/profiles/{name}", named(a, a.Profile)},
		{http.MethodPut, "/v1/ade/profiles/{name}", putNamed(a, a.PutProfile, func(p *ADEProfile) *string { return &p.Name })},
		{http.MethodGet, "/v1/ade/awaiting", listed(a, a.AwaitingConfiguration)},
		{http.MethodGet, "/v1/configurator/profiles", listed(a, a.ConfiguratorProfiles)},
		{http.MethodGet, "/v1/configurator/profiles/{name}", named(a, a.ConfiguratorProfile)},
		{http.MethodPut, "/v1/configurator/profiles/{name}", putNamed(a, a.PutConfiguratorProfile, func(p *ConfiguratorProfile) *string { return &p.Name })},
		{http.MethodPost, "/v1/configurator/profiles/{name}/export", http.HandlerFunc(a.exportConfigurator)},
	}
}

// serveJSON answers with what do returns, as JSON, or with the ADE error
// body: the one shape of the admin GET handlers.
func serveJSON[T any](a *ADE, do func(*http.Request) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := do(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// listed serves GET of a collection.
func listed[T any](a *ADE, list func(context.Context) (T, error)) http.HandlerFunc {
	return serveJSON(a, func(r *http.Request) (T, error) { return list(r.Context()) })
}

// named serves GET of one item by the path's {name}.
func named[T any](a *ADE, get func(context.Context, string) (T, error)) http.HandlerFunc {
	return serveJSON(a, func(r *http.Request) (T, error) { return get(r.Context(), r.PathValue("name")) })
}

// putNamed serves PUT of one item by the path's {name}: the body may leave
// its name out (the path's is used) but may not name another item, so that
// a PUT never writes anything but the resource its URL names. nameOf points
// at the body's name field.
func putNamed[T any](a *ADE, put func(context.Context, T) (*T, error), nameOf func(*T) *string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p T
		if err := readJSON(w, r, &p); err != nil {
			a.fail(w, r, err)
			return
		}
		name, path := nameOf(&p), r.PathValue("name")
		if *name == "" {
			*name = path
		}
		if *name != path {
			a.fail(w, r, invalid("the body names profile %q but the path %q", *name, path))
			return
		}
		out, err := put(r.Context(), p)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *ADE) exportConfigurator(w http.ResponseWriter, r *http.Request) {
	var x ConfiguratorExport
	if r.ContentLength != 0 {
		if err := readJSON(w, r, &x); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	b, err := a.ExportConfigurator(r.Context(), r.PathValue("name"), x)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", profiles.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="configurator.mobileconfig"`)
	_, _ = w.Write(b)
}
