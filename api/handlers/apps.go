package handlers

import (
	"context"
	"net/http"

	"github.com/mockmdm/mockmdm/apps"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
)

// AppsService is the app catalog the apps routes serve (apps.Service).
type AppsService interface {
	PutApp(ctx context.Context, a apps.App) error
	App(ctx context.Context, id string) (*apps.App, error)
	Apps(ctx context.Context) ([]apps.App, error)
	DeleteApp(ctx context.Context, id string) error
	Sync(ctx context.Context, enq apps.Enqueuer) (*apps.SyncReport, error)
	Status(ctx context.Context, id string) ([]apps.Status, error)
}

// WithApps enables the /v1/apps routes over the catalog.
func WithApps(s AppsService) Option { return func(a *API) { a.apps = s } }

// AppList is the answer to GET /v1/apps.
type AppList struct {
	Apps []apps.App `json:"apps"`
}

// AppStatusList is the answer to GET /v1/apps/{id}/status.
type AppStatusList struct {
	AppID    string        `json:"app_id"`
	Statuses []apps.Status `json:"statuses"`
}

func (a *API) appsOrError(w http.ResponseWriter, r *http.Request) bool {
	if a.apps == nil {
		a.writeError(w, r, httperr.New(http.StatusNotImplemented, "the app catalog is not configured on this server"))
		return false
	}
	return true
}

// appsJSON is the shape of the catalog's read routes: 501 without a
// catalog, else what get returns as 200 JSON, or its error.
func (a *API) appsJSON(get func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.appsOrError(w, r) {
			return
		}
		v, err := get(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusOK, v)
	})
}

// ListApps serves GET /v1/apps.
func (a *API) ListApps() http.Handler {
	return a.appsJSON(func(r *http.Request) (any, error) {
		list, err := a.apps.Apps(r.Context())
		return AppList{Apps: list}, err
	})
}

// PutApp serves PUT /v1/apps/{id}: it creates or replaces a catalog entry
// (the body's "id" may be left out; when given it must match the path).
func (a *API) PutApp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.appsOrError(w, r) {
			return
		}
		var app apps.App
		if err := a.decodeJSONBody(w, r, &app, false); err != nil {
			a.writeError(w, r, err)
			return
		}
		id := r.PathValue("id")
		if app.ID != "" && app.ID != id {
			a.writeError(w, r, httperr.New(http.StatusBadRequest, "the body's id %q differs from the path's %q; give the id once", truncate(app.ID, 80), truncate(id, 80)))
			return
		}
		app.ID = id
		if err := a.apps.PutApp(r.Context(), app); err != nil {
			a.writeError(w, r, err)
			return
		}
		saved, err := a.apps.App(r.Context(), id)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusOK, saved)
	})
}

// GetApp serves GET /v1/apps/{id}.
func (a *API) GetApp() http.Handler {
	return a.appsJSON(func(r *http.Request) (any, error) { return a.apps.App(r.Context(), r.PathValue("id")) })
}

// DeleteApp serves DELETE /v1/apps/{id}.
func (a *API) DeleteApp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.appsOrError(w, r) {
			return
		}
		if err := a.apps.DeleteApp(r.Context(), r.PathValue("id")); err != nil {
			a.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// SyncApps serves POST /v1/apps/sync: it turns the assignments into
// installs (apps.Service.Sync). Each install passes the same enqueue-time
// policy as POST /v1/commands.
func (a *API) SyncApps() http.Handler {
	return a.appsJSON(func(r *http.Request) (any, error) { return a.apps.Sync(r.Context(), apiEnqueuer{a}) })
}

// AppStatus serves GET /v1/apps/{id}/status.
func (a *API) AppStatus() http.Handler {
	return a.appsJSON(func(r *http.Request) (any, error) {
		id := r.PathValue("id")
		list, err := a.apps.Status(r.Context(), id)
		return AppStatusList{AppID: id, Statuses: list}, err
	})
}

// apiEnqueuer queues the catalog's installs through the API's policy and
// queue, with a push.
type apiEnqueuer struct{ a *API }

func (q apiEnqueuer) Enqueue(ctx context.Context, cmd *mdm.Command, ids ...string) error {
	if err := q.a.checkPolicy(ctx, cmd, ids); err != nil {
		return err
	}
	_, err := q.a.enqueue(ctx, cmd, ids, true)
	return err
}

// WithOptions applies several options as one (the server passes the apps
// and retire options this way, from one place).
func WithOptions(opts ...Option) Option {
	return func(a *API) {
		for _, o := range opts {
			o(a)
		}
	}
}
