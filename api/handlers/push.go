package handlers

import (
	"context"
	"net/http"
	"runtime"

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

// maxPushTargets bounds one push request; the enqueue bound applies too.
const maxPushTargets = MaxEnqueueIDs

func notConfigured(what string) error {
	return httperr.New(http.StatusNotImplemented, "%s is not configured on this server", what)
}

// Push serves POST /v1/push: wake enrollments now.
func (a *API) Push() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.pusher == nil {
			a.writeError(w, r, notConfigured("push"))
			return
		}
		var req api.PushRequest
		if err := a.decodeJSONBody(w, r, &req, false); err != nil {
			a.writeError(w, r, err)
			return
		}
		ids, err := checkIDs(req.EnrollmentIDs)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		res, err := a.pusher.Push(r.Context(), ids)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusOK, api.PushResponse{Results: res})
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.pushCerts == nil {
			a.writeError(w, r, notConfigured("the push certificate"))
			return
		}
		var up api.PushCertUpload
		if err := a.decodeJSONBody(w, r, &up, false); err != nil {
			a.writeError(w, r, err)
			return
		}
		switch {
		case up.CertificatePEM == "" && len(up.PKCS12) == 0:
			a.writeError(w, r, httperr.New(http.StatusBadRequest, `give the push certificate: "certificate_pem" (with "key_pem", or the key in the same PEM) or "pkcs12" (base64 of the .p12, with "password")`))
			return
		case up.CertificatePEM != "" && len(up.PKCS12) != 0:
			a.writeError(w, r, httperr.New(http.StatusBadRequest, `give "certificate_pem" or "pkcs12", not both`))
			return
		}
		st, err := a.pushCerts.UploadPushCert(r.Context(), &up)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.log.InfoContext(r.Context(), "push certificate uploaded", "topic", st.Topic, "warnings", len(st.Warnings))
		a.writeJSON(w, r, http.StatusOK, st)
	})
}

// PortalIssue serves POST /v1/push/portal/certificates: the mock Push
// Certificates Portal signs a vendor-signed request.
func (a *API) PortalIssue() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.pushCerts == nil {
			a.writeError(w, r, notConfigured("the push certificates portal"))
			return
		}
		var req api.PortalRequest
		if err := a.decodeJSONBody(w, r, &req, false); err != nil {
			a.writeError(w, r, err)
			return
		}
		if req.Request == "" {
			a.writeError(w, r, httperr.New(http.StatusBadRequest, `"request" is missing: give the MDM-vendor-signed push certificate request (the base64 plist a vendor's CSR signing returns)`))
			return
		}
		res, err := a.pushCerts.IssuePushCert(r.Context(), &req)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusCreated, res)
	})
}

// PortalVendorCert serves POST /v1/push/portal/vendor-certificate: a mock
// MDM vendor certificate to sign push requests with.
func (a *API) PortalVendorCert() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.pushCerts == nil {
			a.writeError(w, r, notConfigured("the push certificates portal"))
			return
		}
		var req api.VendorCertRequest
		if err := a.decodeJSONBody(w, r, &req, true); err != nil {
			a.writeError(w, r, err)
			return
		}
		if req.Name == "" {
			req.Name = "mockmdm test vendor"
		}
		if len(req.Name) > 200 {
			a.writeError(w, r, httperr.New(http.StatusBadRequest, `"name" is %d bytes; at most 200`, len(req.Name)))
			return
		}
		res, err := a.pushCerts.IssueVendorCert(r.Context(), req.Name)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusCreated, res)
	})
}

// APNsStats serves GET /v1/apns.
func (a *API) APNsStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.apns == nil {
			a.writeError(w, r, notConfigured("the mock APNs"))
			return
		}
		withRuntime, err := boolQuery(r, "runtime")
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.apns == nil {
			a.writeError(w, r, notConfigured("the mock APNs"))
			return
		}
		var f api.APNsFault
		if err := a.decodeJSONBody(w, r, &f, false); err != nil {
			a.writeError(w, r, err)
			return
		}
		if err := a.apns.InjectAPNsFault(r.Context(), &f); err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeJSON(w, r, http.StatusOK, f)
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

// boolQuery reads an optional true/false query parameter.
func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	switch v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
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
