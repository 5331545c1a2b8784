package enroll

import (
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
		{http.MethodGet, "/v1/ade/profiles", http.HandlerFunc(a.listProfiles)},
		{http.MethodGet, "/v1/ade/profiles/{name}", http.HandlerFunc(a.getProfile)},
		{http.MethodPut, "/v1/ade/profiles/{name}", http.HandlerFunc(a.putProfile)},
		{http.MethodGet, "/v1/ade/awaiting", http.HandlerFunc(a.listAwaiting)},
		{http.MethodGet, "/v1/configurator/profiles", http.HandlerFunc(a.listConfigurator)},
		{http.MethodGet, "/v1/configurator/profiles/{name}", http.HandlerFunc(a.getConfigurator)},
		{http.MethodPut, "/v1/configurator/profiles/{name}", http.HandlerFunc(a.putConfigurator)},
		{http.MethodPost, "/v1/configurator/profiles/{name}/export", http.HandlerFunc(a.exportConfigurator)},
	}
}

func (a *ADE) listProfiles(w http.ResponseWriter, r *http.Request) {
	ps, err := a.Profiles(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (a *ADE) getProfile(w http.ResponseWriter, r *http.Request) {
	p, err := a.Profile(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *ADE) putProfile(w http.ResponseWriter, r *http.Request) {
	var p ADEProfile
	if err := readJSON(w, r, &p); err != nil {
		a.fail(w, r, err)
		return
	}
	if p.Name == "" {
		p.Name = r.PathValue("name")
	}
	if p.Name != r.PathValue("name") {
		a.fail(w, r, invalid("the body names profile %q but the path %q", p.Name, r.PathValue("name")))
		return
	}
	out, err := a.PutProfile(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *ADE) listAwaiting(w http.ResponseWriter, r *http.Request) {
	as, err := a.AwaitingConfiguration(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, as)
}

func (a *ADE) listConfigurator(w http.ResponseWriter, r *http.Request) {
	ps, err := a.ConfiguratorProfiles(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (a *ADE) getConfigurator(w http.ResponseWriter, r *http.Request) {
	p, err := a.ConfiguratorProfile(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *ADE) putConfigurator(w http.ResponseWriter, r *http.Request) {
	var p ConfiguratorProfile
	if err := readJSON(w, r, &p); err != nil {
		a.fail(w, r, err)
		return
	}
	if p.Name == "" {
		p.Name = r.PathValue("name")
	}
	if p.Name != r.PathValue("name") {
		a.fail(w, r, invalid("the body names profile %q but the path %q", p.Name, r.PathValue("name")))
		return
	}
	out, err := a.PutConfiguratorProfile(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
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
