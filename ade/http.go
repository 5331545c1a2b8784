package ade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// Routes are the Apple-facing ADE API, with Apple's paths. DEP clients
// (NanoDEP's among them) resolve these paths absolutely against their base
// URL, so mount them at the root of the host the client is given (or of a
// dedicated listener); a path prefix would be dropped by the client.
func (s *Service) Routes() []Route {
	return []Route{
		{"GET", "/session", s.api("session", false, s.handleSession)},
		{"GET", "/account", s.api("account", true, s.handleAccount)},
		{"POST", "/server/devices", s.api("fetch", true, s.handleFetch)},
		{"POST", "/devices/sync", s.api("sync", true, s.handleSync)},
		{"POST", "/devices", s.api("details", true, perDevice(s.details))},
		{"POST", "/devices/disown", s.api("disown", true, perDevice(s.disown))},
		{"POST", "/device/activationlock", s.api("activation-lock", true, s.handleActivationLock)},
		{"POST", "/account-driven-enrollment/profile", s.api("assign-discovery", true, s.handleAssignDiscovery)},
		{"GET", "/account-driven-enrollment/profile", s.api("fetch-discovery", true, s.handleFetchDiscovery)},
		{"DELETE", "/account-driven-enrollment/profile", s.api("remove-discovery", true, s.handleRemoveDiscovery)},
		{"GET", "/os-beta-enrollment/tokens", s.api("beta-tokens", true, s.handleBetaTokens)},
		{"POST", "/profile", s.api("define-profile", true, s.handleDefine)},
		{"GET", "/profile", s.api("get-profile", true, s.handleGetProfile)},
		{"PUT", "/profile/devices", s.api("assign-profile", true, s.handleAssign)},
		{"POST", "/profile/devices", s.api("assign-profile", true, s.handleAssign)},
		{"DELETE", "/profile/devices", s.api("remove-profile", true, perDevice(s.removeProfile))},
	}
}

// apiHandler answers an authenticated call: the response object, or an error.
type apiHandler func(ctx context.Context, r *http.Request, body []byte) (any, error)

// recorder keeps what was written, for the transcript.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() < 64<<10 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// api wraps an ADE endpoint: bounded body, User-Agent, protocol version,
// terms, session (unless this is /session), Apple's error bodies, transcript.
func (s *Service) api(name string, needSession bool, h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		body, note := s.serveAPI(rec, r, needSession, h)
		s.record(r.Context(), "ade", name, r, body, rec, note)
	})
}

func (s *Service) serveAPI(w http.ResponseWriter, r *http.Request, needSession bool, h apiHandler) ([]byte, string) {
	ctx := r.Context()
	body, err := s.readBody(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return body, s.writeErr(w, apiErr(http.StatusRequestEntityTooLarge, "REQUEST_ENTITY_TOO_LARGE", "the body is larger than %d bytes", s.maxBody))
		}
		return body, s.writeErr(w, apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "reading the body: %v", err))
	}
	ua := r.Header.Get("User-Agent")
	if ua == "" {
		return body, s.writeErr(w, apiErr(http.StatusBadRequest, "USER_AGENT_MISSING", "the User-Agent header is missing or empty"))
	}
	if strings.TrimSpace(ua) == "" || len(ua) > 256 || strings.ContainsFunc(ua, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return body, s.writeErr(w, apiErr(http.StatusBadRequest, "USER_AGENT_INVALID", "the User-Agent header must be printable text of at most 256 bytes"))
	}
	if v := r.Header.Get("X-Server-Protocol-Version"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 99 {
			return body, s.writeErr(w, apiErr(http.StatusBadRequest, "BAD_REQUEST", "X-Server-Protocol-Version %q is not a version number (NanoDEP sends 7)", truncate(v, 20)))
		}
	} else if needSession {
		return body, s.writeErr(w, apiErr(http.StatusBadRequest, "BAD_REQUEST", "the X-Server-Protocol-Version header is missing (send e.g. 7)"))
	}
	st, err := s.loadState(ctx)
	if err != nil {
		return body, s.writeErr(w, err)
	}
	if needSession {
		rotated, err := s.checkSession(r, st.Quirks)
		if err != nil {
			return body, s.writeErr(w, err)
		}
		if st.Quirks.TermsNotSigned {
			return body, s.writeErr(w, apiErr(http.StatusForbidden, "T_C_NOT_SIGNED", "the organisation has not accepted Apple's latest terms (quirk terms_not_signed is on)"))
		}
		if rotated != "" {
			w.Header().Set("X-ADM-Auth-Session", rotated)
		}
	}
	out, err := h(ctx, r, body)
	if err != nil {
		return body, s.writeErr(w, err)
	}
	if _, empty := out.(noBody); empty {
		return body, ""
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF8")
	json.NewEncoder(w).Encode(out)
	return body, ""
}

// writeErr answers Apple's way: status and the bare code as body; the reason
// goes in X-Mockmdm-Reason. Errors without a code are 500s (logged).
func (s *Service) writeErr(w http.ResponseWriter, err error) string {
	var ae *apiError
	if !errors.As(err, &ae) {
		status := httperr.StatusOf(err)
		if status >= 500 {
			s.log.Error("ade", "err", err)
		}
		ae = &apiError{Status: status, Code: http.StatusText(status), Reason: httperr.ReasonOf(err)}
	}
	w.Header().Set("Content-Type", "text/plain;charset=UTF8")
	w.Header().Set("X-Mockmdm-Reason", strings.ToValidUTF8(strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, ae.Reason), "?"))
	w.WriteHeader(ae.Status)
	w.Write([]byte(ae.Code))
	return ae.Code + ": " + ae.Reason
}

func (s *Service) record(ctx context.Context, kind, name string, r *http.Request, reqBody []byte, rec *recorder, note string) {
	if s.transcript == nil {
		return
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	e := &store.TranscriptEntry{
		Time: s.now().UTC(), Kind: kind, MessageType: name, Method: r.Method, Path: r.URL.Path,
		Status: rec.status, Note: note, Request: reqBody, Response: bytes.Clone(rec.body.Bytes()),
	}
	if err := s.transcript.AppendTranscript(context.WithoutCancel(ctx), e); err != nil {
		s.log.Warn("ade: transcript", "err", err)
	}
}

// decodeKnown is decodeStrict that also refuses keys v does not name;
// what names the object in the reason.
func decodeKnown(body []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "the body is not %s: %v", what, err)
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "there is more after the JSON object")
	}
	return nil
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "the body is not the expected JSON object: %v", err)
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, "MALFORMED_REQUEST_BODY", "there is more after the JSON object")
	}
	return nil
}

func (s *Service) handleSession(ctx context.Context, r *http.Request, _ []byte) (any, error) {
	tok, err := s.authenticate(ctx, r)
	if err != nil {
		return nil, err
	}
	return map[string]string{"auth_session_token": s.newSession(tok.ConsumerKey)}, nil
}

// Account is Apple's GET /account answer.
type Account struct {
	ServerName    string `json:"server_name"`
	ServerUUID    string `json:"server_uuid"`
	AdminID       string `json:"admin_id"`
	FacilitatorID string `json:"facilitator_id,omitempty"`
	OrgName       string `json:"org_name"`
	OrgEmail      string `json:"org_email"`
	OrgPhone      string `json:"org_phone"`
	OrgAddress    string `json:"org_address"`
	OrgID         string `json:"org_id"`
	OrgIDHash     string `json:"org_id_hash"`
	OrgType       string `json:"org_type"`
	OrgVersion    string `json:"org_version"`
	URLs          []struct {
		URI        string   `json:"uri"`
		HTTPMethod []string `json:"http_method"`
		Limit      *struct {
			Default int `json:"default"`
			Maximum int `json:"maximum"`
		} `json:"limit,omitempty"`
	} `json:"urls"`
}

func (s *Service) handleAccount(ctx context.Context, _ *http.Request, _ []byte) (any, error) {
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	a := Account{
		ServerName: "mockmdm", ServerUUID: st.ServerUUID, AdminID: "admin@contoso.com",
		OrgName: "Contoso (mockmdm)", OrgEmail: "it@contoso.com", OrgPhone: "+1 555 0100",
		OrgAddress: "1 Infinite Loop, Testville", OrgID: "1234567", OrgIDHash: mac(st.CursorSecret, "org")[:20],
		OrgType: "org", OrgVersion: "v2",
	}
	// One entry per URI with all its methods, as Apple lists them.
	at := map[string]int{}
	for _, rt := range s.Routes() {
		if rt.Path == "/session" {
			continue
		}
		if i, ok := at[rt.Path]; ok {
			a.URLs[i].HTTPMethod = append(a.URLs[i].HTTPMethod, rt.Method)
			continue
		}
		at[rt.Path] = len(a.URLs)
		a.URLs = append(a.URLs, struct {
			URI        string   `json:"uri"`
			HTTPMethod []string `json:"http_method"`
			Limit      *struct {
				Default int `json:"default"`
				Maximum int `json:"maximum"`
			} `json:"limit,omitempty"`
		}{URI: rt.Path, HTTPMethod: []string{rt.Method}})
		if rt.Path == "/server/devices" || rt.Path == "/devices/sync" {
			a.URLs[len(a.URLs)-1].Limit = &struct {
				Default int `json:"default"`
				Maximum int `json:"maximum"`
			}{100, 1000}
		}
	}
	return a, nil
}

func (s *Service) handleFetch(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	var req fetchRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
	}
	return s.fetch(ctx, req)
}

func (s *Service) handleSync(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	var req fetchRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	return s.sync(ctx, req)
}

// ParseSerials decodes a {"devices": [serial…], "profile_uuid"?} body.
func ParseSerials(body []byte) ([]string, string, error) {
	var req serialsRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, "", err
	}
	return req.Devices, req.ProfileUUID, nil
}

// perDevice adapts an operation on a {"devices": [serial…],
// "profile_uuid"?} body to the handler shape, answering Apple's
// {"devices": {serial: result}}: the shape of details, disown and remove.
func perDevice[T any](op func(context.Context, serialsRequest) (T, error)) apiHandler {
	return func(ctx context.Context, _ *http.Request, body []byte) (any, error) {
		var req serialsRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		d, err := op(ctx, req)
		if err != nil {
			return nil, err
		}
		return map[string]any{"devices": d}, nil
	}
}

func (s *Service) handleDefine(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	p, err := ParseProfile(body)
	if err != nil {
		return nil, err
	}
	return s.DefineProfile(ctx, p)
}

func (s *Service) handleGetProfile(ctx context.Context, r *http.Request, _ []byte) (any, error) {
	uuid := r.URL.Query().Get("profile_uuid")
	if uuid == "" {
		return nil, apiErr(http.StatusBadRequest, "PROFILE_UUID_REQUIRED", "profile_uuid query parameter is required")
	}
	p, err := s.getProfile(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, apiErr(http.StatusNotFound, "NOT_FOUND", "no profile %s", truncate(uuid, 64))
	}
	return p, nil
}

func (s *Service) handleAssign(ctx context.Context, r *http.Request, body []byte) (any, error) {
	list, uuid, err := ParseSerials(body)
	if err != nil {
		return nil, err
	}
	version, _ := strconv.Atoi(r.Header.Get("X-Server-Protocol-Version")) // checked by serveAPI
	return s.assignProfile(ctx, uuid, list, version)
}

func (s *Service) removeProfile(ctx context.Context, req serialsRequest) (map[string]string, error) {
	return s.RemoveProfile(ctx, req.ProfileUUID, req.Devices)
}

// ActivationRoutes are the mocks of Apple services a device asks through
// protocols mockmdm does not reproduce: activation, POST
// {"serial_number": "…"} → the ADE profile assigned to that serial, or 404
// with a JSON reason; and Apple-hosted service discovery (discovery.go). Real devices learn their profile through an encrypted
// Apple protocol that mockmdm does not reproduce; virtual devices ask here.
func (s *Service) ActivationRoutes() []Route {
	return []Route{
		{"POST", "/activation", http.HandlerFunc(s.handleActivation)},
		{"GET", "/discovery", http.HandlerFunc(s.handleDiscoveryLookup)},
	}
}

func (s *Service) handleActivation(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	body, err := s.readBody(rec, r)
	var serial string
	if err == nil {
		var req struct {
			SerialNumber string `json:"serial_number"`
		}
		if err = decodeStrict(body, &req); err == nil {
			serial = req.SerialNumber
		}
	}
	var p *Profile
	if err == nil {
		p, err = s.ActivationProfile(r.Context(), serial)
	}
	note := ""
	if err != nil {
		note = writeJSONErr(rec, err)
	} else {
		writeJSON(rec, http.StatusOK, p)
	}
	s.record(r.Context(), "ade-activation", "activation", r, body, rec, note)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeJSONErr answers {"error": code, "reason": …} with the error's status.
func writeJSONErr(w http.ResponseWriter, err error) string {
	var ae *apiError
	var te *certs.ADETokenError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &te):
		ae = &apiError{Status: te.Status, Code: "INVALID_TOKEN", Reason: te.Error()}
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ae = &apiError{Status: http.StatusRequestEntityTooLarge, Code: "REQUEST_ENTITY_TOO_LARGE", Reason: err.Error()}
		} else {
			st := httperr.StatusOf(err)
			ae = &apiError{Status: st, Code: http.StatusText(st), Reason: httperr.ReasonOf(err)}
		}
	}
	writeJSON(w, ae.Status, map[string]string{"error": ae.Code, "reason": ae.Reason})
	return ae.Code + ": " + ae.Reason
}
