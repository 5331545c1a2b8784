package handlers

import (
	"context"
	"net/http"
	"net/url"
	"runtime"
	"strings"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
)

// Pusher wakes enrollments through APNs. Push answers one result per ID,
// in order; an error is for the whole request (none of them was tried).
type Pusher interface {
	Push(ctx context.Context, ids []string) ([]api.PushResult, error)
}

// PushCerts manages the push certificate and plays Apple's Push
// Certificates Portal.
type PushCerts interface {
	PushCertStatus(ctx context.Context) (api.PushCertStatus, error)
	UploadPushCert(ctx context.Context, up *api.PushCertUpload) (api.PushCertStatus, error)
	IssuePushCert(ctx context.Context, req *api.PortalRequest) (api.PortalResponse, error)
	IssueVendorCert(ctx context.Context, name string) (api.VendorCertResponse, error)
}

// APNsAdmin drives the mock APNs: its counters and its faults.
type APNsAdmin interface {
	APNsStats(ctx context.Context) api.APNsStats
	InjectAPNsFault(ctx context.Context, f *api.APNsFault) error
	ClearAPNsFaults(ctx context.Context)
	// ResetAPNs forgets tokens, pending pushes and faults (POST /v1/reset).
	ResetAPNs(ctx context.Context)
}

// WithPush connects the push endpoints, and makes POST /v1/commands push
// the enrollments it queued for (unless the request says "push": false).
// Any of them may be nil; its endpoints then answer 501.
func WithPush(p Pusher, c PushCerts, m APNsAdmin) Option {
	return func(a *API) { a.pusher, a.pushCerts, a.apns = p, c, m }
}

func notConfigured(what string) error {
	return httperr.New(http.StatusNotImplemented, "%s is not configured on this server", what)
}

// jsonCall is the shape of the push endpoints: unless the part they need
// is missing (501), decode the JSON body into a T (optional: an empty body
// is a zero T), call f, and answer with what it returns and status.
func jsonCall[T any](a *API, configured bool, what string, optional bool, status int, f func(ctx context.Context, in *T) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !configured {
			a.writeError(w, r, notConfigured(what))
			return
		}
		var in T
		if err := a.decodeJSONBody(w, r, &in, optional); err != nil {
			a.writeError(w, r, err)
			return
		}
		out, err := f(r.Context(), &in)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, status, out)
	})
}

// Push serves POST /v1/push: wake enrollments now.
func (a *API) Push() http.Handler {
	return jsonCall(a, a.pusher != nil, "push", false, http.StatusOK, func(ctx context.Context, req *api.PushRequest) (any, error) {
		ids, err := checkIDs(req.EnrollmentIDs)
		if err != nil {
			return nil, err
		}
		res, err := a.pusher.Push(ctx, ids)
		if err != nil {
			return nil, err
		}
		return api.PushResponse{Results: res}, nil
	})
}

// PushCertificate serves GET /v1/push/certificate.
func (a *API) PushCertificate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.pushCerts == nil {
			a.writeError(w, r, notConfigured("the push certificate"))
			return
		}
		st, err := a.pushCerts.PushCertStatus(r.Context())
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusOK, st)
	})
}

// UploadPushCertificate serves PUT /v1/push/certificate.
func (a *API) UploadPushCertificate() http.Handler {
	return jsonCall(a, a.pushCerts != nil, "the push certificate", false, http.StatusOK, func(ctx context.Context, up *api.PushCertUpload) (any, error) {
		switch {
		case up.CertificatePEM == "" && len(up.PKCS12) == 0:
			return nil, httperr.New(http.StatusBadRequest, `give the push certificate: "certificate_pem" (with "key_pem", or the key in the same PEM) or "pkcs12" (base64 of the .p12, with "password")`)
		case up.CertificatePEM != "" && len(up.PKCS12) != 0:
			return nil, httperr.New(http.StatusBadRequest, `give "certificate_pem" or "pkcs12", not both`)
		}
		st, err := a.pushCerts.UploadPushCert(ctx, up)
		if err != nil {
			return nil, err
		}
		a.log.InfoContext(ctx, "push certificate uploaded", "topic", st.Topic, "warnings", len(st.Warnings))
		return st, nil
	})
}

// PortalIssue serves POST /v1/push/portal/certificates: the mock Push
// Certificates Portal signs a vendor-signed request.
func (a *API) PortalIssue() http.Handler {
	return jsonCall(a, a.pushCerts != nil, "the push certificates portal", false, http.StatusCreated, func(ctx context.Context, req *api.PortalRequest) (any, error) {
		if req.Request == "" {
			return nil, httperr.New(http.StatusBadRequest, `"request" is missing: give the MDM-vendor-signed push certificate request (the base64 plist a vendor's CSR signing returns)`)
		}
		return a.pushCerts.IssuePushCert(ctx, req)
	})
}

// PortalVendorCert serves POST /v1/push/portal/vendor-certificate: a mock
// MDM vendor certificate to sign push requests with.
func (a *API) PortalVendorCert() http.Handler {
	return jsonCall(a, a.pushCerts != nil, "the push certificates portal", true, http.StatusCreated, func(ctx context.Context, req *api.VendorCertRequest) (any, error) {
		switch {
		case req.Name == "":
			req.Name = "mockmdm test vendor"
		case len(req.Name) > 200:
			return nil, httperr.New(http.StatusBadRequest, `"name" is %d bytes; at most 200`, len(req.Name))
		}
		return a.pushCerts.IssueVendorCert(ctx, req.Name)
	})
}

// APNsStats serves GET /v1/apns.
func (a *API) APNsStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.apns == nil {
			a.writeError(w, r, notConfigured("the mock APNs"))
			return
		}
		withRuntime, err := BoolParam(r.URL.Query(), "runtime")
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		st := a.apns.APNsStats(r.Context())
		if withRuntime {
			st.Runtime = runtimeStats()
		}
		a.writeJSON(w, r, http.StatusOK, st)
	})
}

// InjectAPNsFault serves POST /v1/apns/faults.
func (a *API) InjectAPNsFault() http.Handler {
	return jsonCall(a, a.apns != nil, "the mock APNs", false, http.StatusOK, func(ctx context.Context, f *api.APNsFault) (any, error) {
		if err := a.apns.InjectAPNsFault(ctx, f); err != nil {
			return nil, err
		}
		return f, nil
	})
}

// ClearAPNsFaults serves DELETE /v1/apns/faults.
func (a *API) ClearAPNsFaults() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.apns == nil {
			a.writeError(w, r, notConfigured("the mock APNs"))
			return
		}
		a.apns.ClearAPNsFaults(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
}

// runtimeStats collects garbage, then reads live memory: what a test
// divides by connections to get memory per device stream.
func runtimeStats() *api.RuntimeStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &api.RuntimeStats{Goroutines: runtime.NumGoroutine(), HeapInuseBytes: m.HeapInuse, StackInuseBytes: m.StackInuse}
}

// BoolParam reads an optional true/false query parameter (also 1/0,
// yes/no, any case); anything else is a 400 that says so.
func BoolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	switch strings.ToLower(v) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	}
	return false, httperr.New(http.StatusBadRequest, "query parameter %s=%q: use true or false", name, v)
}

// pushAfterEnqueue pushes the enrollments a command was queued for. The
// command is already durable: a failed push is reported, not an error.
func (a *API) pushAfterEnqueue(ctx context.Context, req *api.EnqueueRequest, ids []string) []api.PushResult {
	if a.pusher == nil || (req.Push != nil && !*req.Push) {
		return nil
	}
	res, err := a.pusher.Push(ctx, ids)
	if err != nil {
		res = make([]api.PushResult, len(ids))
		for i, id := range ids {
			res[i] = api.PushResult{EnrollmentID: id, Error: err.Error()}
		}
	}
	return res
}
