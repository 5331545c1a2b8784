package ade

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Since iOS 18.2 Apple can host account-driven enrollment's service
// discovery for an organisation whose domain does not: the MDM server
// registers its discovery URL with Apple Business Manager, and Apple sends
// devices there. The three endpoints of "Account-Driven Enrollment Service
// Discovery" on the ADE API keep that URL:
//
//	POST   /account-driven-enrollment/profile {"mdm_service_discovery_url": "https://…"}
//	GET    /account-driven-enrollment/profile → {mdm_service_discovery_url, last_updated_timestamp}
//	DELETE /account-driven-enrollment/profile
//
// Sources: Apple's "Assign Account-Driven Enrollment Service Discovery",
// "Fetch Account-Driven Enrollment Service Discovery" and "Remove
// Account-Driven Enrollment Profile" pages (the methods, 200, 400
// MDM_SERVICE_DISCOVERY_URL_REQUIRED / MDM_SERVICE_DISCOVERY_URL_NOT_VALID
// (not HTTPS, or malformed) / ORG_NOT_SUPPORTED, 404 NOT_FOUND), read in
// the apple-docs.everest.mt mirror; the request object as NanoDEP v0.7.0's
// godep generates it from Apple's schema; the fetch answer's two keys as a
// DEP client built on godep decodes them (Apple's page names the object,
// GetAccountDrivenEnrollmentProfileResponse, without its keys here).

// DiscoveryProfile is the registered service discovery.
type DiscoveryProfile struct {
	URL         string    `json:"mdm_service_discovery_url"`
	LastUpdated time.Time `json:"last_updated_timestamp"`
}

// maxDiscoveryURL bounds the URL; Apple states no limit, so this is the
// length Apple's profile URLs are held to (CONFIG_URL_INVALID, 2000).
const maxDiscoveryURL = 2000

// ParseDiscoveryRequest decodes and checks an Assign Account-Driven
// Enrollment Service Discovery body and returns its URL.
func ParseDiscoveryRequest(body []byte) (string, error) {
	var req struct {
		URL *string `json:"mdm_service_discovery_url"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return "", err
	}
	if req.URL == nil || strings.TrimSpace(*req.URL) == "" {
		return "", apiErr(http.StatusBadRequest, "MDM_SERVICE_DISCOVERY_URL_REQUIRED", "mdm_service_discovery_url is missing or empty")
	}
	if err := checkDiscoveryURL(*req.URL); err != nil {
		return "", err
	}
	return *req.URL, nil
}

func (s *Service) handleAssignDiscovery(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	u, err := ParseDiscoveryRequest(body)
	if err != nil {
		return nil, err
	}
	return noBody{}, s.RegisterDiscovery(ctx, u)
}

// RegisterDiscovery registers the organisation's service discovery URL, as
// "Assign Account-Driven Enrollment Service Discovery" does; u must be an
// absolute https URL.
func (s *Service) RegisterDiscovery(ctx context.Context, u string) error {
	if err := checkDiscoveryURL(u); err != nil {
		return err
	}
	return s.updateState(ctx, func(st *serverState) error {
		if st.Quirks.DiscoveryOrgNotSupported {
			return orgNotSupported()
		}
		st.Discovery = &DiscoveryProfile{URL: u, LastUpdated: s.now().UTC()}
		return nil
	})
}

func (s *Service) handleFetchDiscovery(ctx context.Context, _ *http.Request, _ []byte) (any, error) {
	return s.RegisteredDiscovery(ctx)
}

// RegisteredDiscovery is the registered service discovery, or a 404
// NOT_FOUND apiError when there is none.
func (s *Service) RegisteredDiscovery(ctx context.Context) (*DiscoveryProfile, error) {
	st, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	if st.Quirks.DiscoveryOrgNotSupported {
		return nil, orgNotSupported()
	}
	if st.Discovery == nil {
		return nil, apiErr(http.StatusNotFound, "NOT_FOUND", "no service discovery URL is registered: POST /account-driven-enrollment/profile first")
	}
	return st.Discovery, nil
}

// handleDiscoveryLookup is the mock of Apple's side of Apple-hosted
// service discovery (iOS 18.2 and later): a device whose user's domain
// does not serve /.well-known/com.apple.remotemanagement asks Apple, which
// answers with the discovery URL the organisation registered in Apple
// Business Manager. Real devices ask through an Apple protocol that
// mockmdm does not reproduce, as with activation; virtual devices ask
// here: GET /ade/discovery?user-identifier=… answers
// {"mdm_service_discovery_url": …} or a JSON 404. The simulated ABM is one
// organisation, so it answers for any user identifier.
func (s *Service) handleDiscoveryLookup(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	var d *DiscoveryProfile
	var err error
	switch user := r.URL.Query().Get("user-identifier"); {
	case strings.TrimSpace(user) == "":
		err = apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "user-identifier (the Managed Apple Account the person typed) is missing")
	case len(user) > 320:
		err = apiErr(http.StatusBadRequest, "MALFORMED_REQUEST", "user-identifier is %d bytes; an account name is at most 320", len(user))
	default:
		d, err = s.RegisteredDiscovery(r.Context())
	}
	note := ""
	if err != nil {
		note = writeJSONErr(rec, err)
	} else {
		writeJSON(rec, http.StatusOK, map[string]string{"mdm_service_discovery_url": d.URL})
	}
	s.record(r.Context(), "ade-activation", "discovery", r, nil, rec, note)
}

func (s *Service) handleRemoveDiscovery(ctx context.Context, _ *http.Request, _ []byte) (any, error) {
	return noBody{}, s.updateState(ctx, func(st *serverState) error {
		if st.Quirks.DiscoveryOrgNotSupported {
			return orgNotSupported()
		}
		st.Discovery = nil
		return nil
	})
}

func orgNotSupported() error {
	return apiErr(http.StatusBadRequest, "ORG_NOT_SUPPORTED", "the organisation is not supported for account-driven enrollment service discovery (quirk discovery_org_not_supported is on)")
}

// checkDiscoveryURL is Apple's MDM_SERVICE_DISCOVERY_URL_NOT_VALID: a
// well-formed absolute https URL with a host.
func checkDiscoveryURL(raw string) error {
	if len(raw) > maxDiscoveryURL {
		return apiErr(http.StatusBadRequest, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID", "mdm_service_discovery_url is %d bytes (at most %d)", len(raw), maxDiscoveryURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return apiErr(http.StatusBadRequest, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID", "mdm_service_discovery_url does not parse: %v", err)
	case u.Scheme != "https":
		return apiErr(http.StatusBadRequest, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID", "mdm_service_discovery_url must be https, not %q", truncate(u.Scheme, 20))
	case u.Host == "" || u.User != nil:
		return apiErr(http.StatusBadRequest, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID", "mdm_service_discovery_url needs a host and no user info")
	}
	return nil
}

// noBody is a success with an empty body (Apple's bare 200 OK).
type noBody struct{}
