package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// A declarative com.apple.configuration.legacy configuration names a
// profile by ProfileURL, which Apple's schema says "must be hosted by the
// MDM server". Hosted profiles are that: a tester puts a profile under a
// name (PUT /v1/hosted-profiles/{name}, API key) and devices download it
// from PathHostedProfiles/{name}. The download is public, as the enrollment
// profile at /enroll is: a hosted profile is test data, and a device
// fetches it without the API key.

// PathHostedProfiles is where devices download hosted profiles.
const PathHostedProfiles = "/profiles"

// docHostedProfile is the store document kind of a hosted profile, by name.
const docHostedProfile = "hosted-profile"

// hostedProfileName is what a name may be: it sits in a URL path.
var hostedProfileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (s *Server) hostedProfileName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !hostedProfileName.MatchString(name) {
		return "", httperr.New(http.StatusBadRequest, "profile name %q: use 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit", clipName(name))
	}
	return name, nil
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// putHostedProfile serves PUT /v1/hosted-profiles/{name}: the body is a
// profile (signed or not), checked as a device would decode it.
func (s *Server) putHostedProfile(w http.ResponseWriter, r *http.Request) {
	name, err := s.hostedProfileName(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	body, err := httpx.ReadBody(w, r, profiles.MaxProfileSize)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = httperr.New(http.StatusRequestEntityTooLarge, "the profile is larger than %d bytes", profiles.MaxProfileSize)
		} else {
			err = httperr.Wrap(http.StatusBadRequest, err, "reading the profile")
		}
		writeAPIError(w, err)
		return
	}
	p, err := profiles.Parse(body)
	if err != nil {
		writeAPIError(w, httperr.Wrap(http.StatusBadRequest, err, "the body is not a profile a device can install"))
		return
	}
	if err := s.store.PutDocument(r.Context(), docHostedProfile, name, body); err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.HostedProfile{
		Name: name, URL: s.URL(PathHostedProfiles + "/" + name),
		PayloadIdentifier: profiles.Payload(p.Top).Identifier(), Signed: p.Signed, Size: len(body),
	})
}

// deleteHostedProfile serves DELETE /v1/hosted-profiles/{name}.
func (s *Server) deleteHostedProfile(w http.ResponseWriter, r *http.Request) {
	name, err := s.hostedProfileName(r)
	if err == nil {
		if _, err = s.store.GetDocument(r.Context(), docHostedProfile, name); err == nil {
			err = s.store.DeleteDocument(r.Context(), docHostedProfile, name)
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		err = httperr.New(http.StatusNotFound, "no profile is hosted as %q", name)
	}
	if err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveHostedProfile serves GET /profiles/{name} to devices, as
// profiles.ContentType.
func (s *Server) serveHostedProfile(w http.ResponseWriter, r *http.Request) {
	name, err := s.hostedProfileName(r)
	var body []byte
	if err == nil {
		body, err = s.store.GetDocument(r.Context(), docHostedProfile, name)
	}
	if errors.Is(err, store.ErrNotFound) {
		err = httperr.New(http.StatusNotFound, "no profile is hosted as %q (PUT /v1/hosted-profiles/%s hosts one)", name, name)
	}
	if err != nil {
		writeAPIError(w, err)
		return
	}
	w.Header().Set("Content-Type", profiles.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// writeAPIError answers an error as the REST API does ({"error", "status"}).
func writeAPIError(w http.ResponseWriter, err error) {
	status := httperr.StatusOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: httperr.ReasonOf(err), Status: status})
}
