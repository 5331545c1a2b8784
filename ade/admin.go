package ade

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/httperr"
)

// IssueToken plays ABM's "download server token": fresh OAuth credentials
// the simulated API will accept at /session, returned as a .p7m encrypted to
// cert (any certificate a tester gives), broken on request by variant.
func (s *Service) IssueToken(ctx context.Context, cert *x509.Certificate, variant certs.TokenVariant) ([]byte, certs.ADEToken, error) {
	p7m, tok, err := certs.GenerateADEToken(cert, variant, s.now())
	if err != nil {
		return nil, tok, err
	}
	if err := s.putJSON(ctx, KindToken, tok.AccessToken, tok); err != nil {
		return nil, tok, err
	}
	return p7m, tok, nil
}

// TokenStatus is the uploaded token's status, without its secrets.
type TokenStatus struct {
	certs.ADETokenStatus
	ConsumerKey string `json:"consumer_key"`
	UploadedAt  string `json:"uploaded_at"`
}

// UploadToken is the MDM server's side: it decrypts a .p7m with the token
// key pair, checks it (fields, expiry, same consumer key as the token in use
// unless force) and keeps it as the token in use.
func (s *Service) UploadToken(ctx context.Context, p7m []byte, force bool) (*TokenStatus, error) {
	tok, err := s.keyPair.DecryptADEToken(p7m)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	configured := ""
	if st.Uploaded != nil {
		configured = st.Uploaded.Token.ConsumerKey
	}
	now := s.now()
	if err := certs.CheckADEToken(tok, now, configured, force); err != nil {
		return nil, err
	}
	st.Uploaded = &upload{Token: tok, UploadedAt: now.UTC()}
	if err := s.saveState(ctx, st); err != nil {
		return nil, err
	}
	return tokenStatus(st.Uploaded, s), nil
}

// CurrentTokenStatus reports the uploaded token's state; nil when none.
func (s *Service) CurrentTokenStatus(ctx context.Context) (*TokenStatus, error) {
	st, err := s.loadState(ctx)
	if err != nil || st.Uploaded == nil {
		return nil, err
	}
	return tokenStatus(st.Uploaded, s), nil
}

func tokenStatus(u *upload, s *Service) *TokenStatus {
	return &TokenStatus{
		ADETokenStatus: u.Token.Status(s.now()),
		ConsumerKey:    u.Token.ConsumerKey,
		UploadedAt:     u.UploadedAt.Format("2006-01-02T15:04:05Z07:00"),
	}
}

// AdminRoutes are the tester's JSON endpoints (the lead mounts them under
// /v1/ade behind the API key).
func (s *Service) AdminRoutes() []Route {
	return []Route{
		{"GET", "/token-certificate", http.HandlerFunc(s.adminCertificate)},
		{"POST", "/tokens", http.HandlerFunc(s.adminIssueToken)},
		{"PUT", "/token", http.HandlerFunc(s.adminUploadToken)},
		{"GET", "/token", http.HandlerFunc(s.adminTokenStatus)},
		{"GET", "/devices", http.HandlerFunc(s.adminListDevices)},
		{"POST", "/devices", http.HandlerFunc(s.adminBuyDevices)},
		{"GET", "/devices/{serial}/activation-lock", adminLock(s.DeviceActivationLock)},
		{"DELETE", "/devices/{serial}/activation-lock", adminLock(s.TurnOffActivationLock)},
		{"GET", "/beta-tokens", http.HandlerFunc(s.adminGetBetaTokens)},
		{"PUT", "/beta-tokens", http.HandlerFunc(s.adminSetBetaTokens)},
		{"GET", "/quirks", http.HandlerFunc(s.adminGetQuirks)},
		{"PUT", "/quirks", http.HandlerFunc(s.adminSetQuirks)},
		{"POST", "/restart", http.HandlerFunc(s.adminRestart)},
	}
}

func (s *Service) adminCertificate(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="mockmdm_token_public_key.pem"`)
	w.Write(s.keyPair.CertPEM())
}

func (s *Service) adminIssueToken(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	variant, err := certs.ParseTokenVariant(r.URL.Query().Get("variant"))
	if err != nil {
		writeJSONErr(w, httperr.New(http.StatusBadRequest, "%v", err))
		return
	}
	cert := s.keyPair.Cert
	if len(body) > 0 {
		if cert, err = certs.ParseTokenCertificate(body); err != nil {
			writeJSONErr(w, err)
			return
		}
	}
	p7m, _, err := s.IssueToken(r.Context(), cert, variant)
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime")
	w.Header().Set("Content-Disposition", `attachment; filename="mockmdm_Token_smime.p7m"`)
	w.Write(p7m)
}

func (s *Service) adminUploadToken(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	force := false
	switch r.URL.Query().Get("force") {
	case "", "0", "false":
	case "1", "true":
		force = true
	default:
		writeJSONErr(w, httperr.New(http.StatusBadRequest, "force must be true or false"))
		return
	}
	st, err := s.UploadToken(r.Context(), body, force)
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) adminTokenStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.CurrentTokenStatus(r.Context())
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	if st == nil {
		writeJSONErr(w, apiErr(http.StatusNotFound, "NO_TOKEN", "no server token uploaded yet: PUT the .p7m to /token"))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) adminListDevices(w http.ResponseWriter, r *http.Request) {
	d, err := s.Devices(r.Context())
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	if d == nil {
		d = []Device{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": d})
}

// adminBuyDevices takes one device object, an array, or {"devices": [...]}.
func (s *Service) adminBuyDevices(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	var one Device
	var d []Device
	if err := json.Unmarshal(body, &one); err == nil && one.SerialNumber != "" {
		d, err = s.BuyDevices(r.Context(), one)
		if err != nil {
			writeJSONErr(w, err)
			return
		}
	} else if d, err = s.ImportDevices(r.Context(), body); err != nil {
		writeJSONErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": d})
}

func (s *Service) adminGetQuirks(w http.ResponseWriter, r *http.Request) {
	q, err := s.Quirks(r.Context())
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

func (s *Service) adminSetQuirks(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeJSONErr(w, err)
		return
	}
	var q Quirks
	if err := decodeStrict(body, &q); err != nil {
		writeJSONErr(w, err)
		return
	}
	if err := s.SetQuirks(r.Context(), q); err != nil {
		writeJSONErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

func (s *Service) adminRestart(w http.ResponseWriter, _ *http.Request) {
	s.Restart()
	w.WriteHeader(http.StatusNoContent)
}
