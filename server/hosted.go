package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"regexp"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/profiles"
	"github.com/mockmdm/mockmdm/store"
)

// Declarative management names files the MDM server hosts: a
// com.apple.configuration.legacy configuration's ProfileURL ("must be
// hosted by the MDM server", Apple's schema says) and an asset's
// Reference.DataURL. A tester puts such a file under a name (API key) and
// devices download it. The downloads are public, as the enrollment profile
// at /enroll is: these are test data, and a device fetches them without
// the API key (an asset's Authentication Type MDM adds the device's
// identity, which the download does not need).

// PathHostedProfiles is where devices download hosted profiles.
const PathHostedProfiles = "/profiles"

// PathHostedData is where devices download hosted asset data.
const PathHostedData = "/data"

// hostedKind is one kind of hosted file.
type hostedKind struct {
	what string // "profile" or "data", for messages
	doc  string // the store document kind, by name
	put  string // the API path prefix ("/v1/hosted-…/")
	path string // where devices download it
}

var (
	hostedProfiles = hostedKind{"profile", "hosted-profile", "/v1/hosted-profiles/", PathHostedProfiles}
	hostedData     = hostedKind{"data", "hosted-data", "/v1/hosted-data/", PathHostedData}
)

// hostedFile is a hosted file as its document keeps it.
type hostedFile struct {
	ContentType string `json:"content_type"`
	Data        []byte `json:"data"`
}

// maxHostedSize bounds a hosted file: what a device would download.
const maxHostedSize = profiles.MaxProfileSize

// hostedName is what a name may be: it sits in a URL path.
var hostedName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (k hostedKind) name(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !hostedName.MatchString(name) {
		return "", httperr.New(http.StatusBadRequest, "%s name %q: use 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit", k.what, clipText(name, 64))
	}
	return name, nil
}

// putHosted serves PUT /v1/hosted-profiles/{name} (the body a profile,
// signed or not, checked as a device decodes it; served as
// profiles.ContentType) and PUT /v1/hosted-data/{name} (any bytes, served
// with the request's Content-Type).
func (s *Server) putHosted(k hostedKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, err := k.name(r)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		body, err := httpx.ReadBody(w, r, maxHostedSize)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = httperr.New(http.StatusRequestEntityTooLarge, "the %s is larger than %d bytes", k.what, maxHostedSize)
			} else {
				err = httperr.Wrap(http.StatusBadRequest, err, "reading the %s", k.what)
			}
			writeAPIError(w, err)
			return
		}
		out := api.HostedFile{Name: name, URL: s.URL(k.path + "/" + name), Size: len(body)}
		f := hostedFile{ContentType: "application/octet-stream", Data: body}
		if k == hostedProfiles {
			p, err := profiles.Parse(body)
			if err != nil {
				writeAPIError(w, httperr.Wrap(http.StatusBadRequest, err, "the body is not a profile a device can install"))
				return
			}
			f.ContentType = profiles.ContentType
			out.PayloadIdentifier, out.Signed = profiles.Payload(p.Top).Identifier(), p.Signed
		} else if ct := r.Header.Get("Content-Type"); ct != "" {
			if _, _, err := mime.ParseMediaType(ct); err != nil {
				writeAPIError(w, httperr.New(http.StatusBadRequest, "Content-Type %q is not a media type; devices get it as sent", clipText(ct, 64)))
				return
			}
			f.ContentType = ct
		}
		out.ContentType = f.ContentType
		sum := sha256.Sum256(body)
		out.SHA256 = hex.EncodeToString(sum[:])
		doc, err := json.Marshal(f)
		if err == nil {
			err = s.store.PutDocument(r.Context(), k.doc, name, doc)
		}
		if err != nil {
			writeAPIError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, out)
	}
}

// deleteHosted serves DELETE /v1/hosted-profiles/{name} and
// /v1/hosted-data/{name}.
func (s *Server) deleteHosted(k hostedKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, err := k.name(r)
		if err == nil {
			if _, err = s.store.GetDocument(r.Context(), k.doc, name); err == nil {
				err = s.store.DeleteDocument(r.Context(), k.doc, name)
			}
		}
		if errors.Is(err, store.ErrNotFound) {
			err = httperr.New(http.StatusNotFound, "no %s is hosted as %q", k.what, name)
		}
		if err != nil {
			writeAPIError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// serveHosted serves GET /profiles/{name} and /data/{name} to devices.
func (s *Server) serveHosted(k hostedKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, err := k.name(r)
		var doc []byte
		if err == nil {
			doc, err = s.store.GetDocument(r.Context(), k.doc, name)
		}
		if errors.Is(err, store.ErrNotFound) {
			err = httperr.New(http.StatusNotFound, "no %s is hosted as %q (PUT %s%s hosts one)", k.what, name, k.put, name)
		}
		var f hostedFile
		if err == nil {
			err = json.Unmarshal(doc, &f)
		}
		if err != nil {
			writeAPIError(w, err)
			return
		}
		w.Header().Set("Content-Type", f.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		// Hosted files share the dashboard's origin: never run them there.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "sandbox")
		_, _ = w.Write(f.Data)
	}
}

// writeAPIError answers an error as the REST API does ({"error", "status"}).
func writeAPIError(w http.ResponseWriter, err error) {
	status := httperr.StatusOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: httperr.ReasonOf(err), Status: status})
}
