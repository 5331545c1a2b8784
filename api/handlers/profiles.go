package handlers

import (
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/profiles"
)

// WithProfileTrust sets the roots POST /v1/profiles/lint verifies a signed
// profile's signer against (the server's test CA). Without it, a signed
// profile is reported as not verified.
func WithProfileTrust(roots *x509.CertPool) Option {
	return func(a *API) { a.profileTrust = roots }
}

// LintProfile serves POST /v1/profiles/lint: the body is the profile itself
// (a signed or unsigned .mobileconfig, any Content-Type), the query
// describes the device: platform=iOS|macOS|tvOS|visionOS|watchOS,
// user_enrollment=true, supervised=true. It answers 200 with the findings
// even when there are errors among them; 400 when the body is not a
// profile, 413 when it is larger than profiles.MaxProfileSize.
func (a *API) LintProfile() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts, err := lintOptions(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		limit := min(a.maxBody, profiles.MaxProfileSize)
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				a.writeError(w, r, httperr.New(http.StatusRequestEntityTooLarge, "the profile is larger than the limit of %d bytes", limit))
				return
			}
			a.writeError(w, r, httperr.Wrap(http.StatusBadRequest, err, "could not read the request body"))
			return
		}
		if len(body) == 0 {
			a.writeError(w, r, httperr.New(http.StatusBadRequest, "request body is empty: send the .mobileconfig bytes (curl --data-binary @profile.mobileconfig)"))
			return
		}
		p, err := profiles.Parse(body)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		resp := api.ProfileLintResponse{Signed: p.Signed, Findings: []api.LintFinding{}}
		if p.Signed {
			resp.Signer = p.Signer.Subject.String()
			switch {
			case a.profileTrust == nil:
				resp.VerifyError = "this server has no trusted roots configured for profiles"
			default:
				if err := p.VerifyChain(a.profileTrust, a.now()); err != nil {
					resp.VerifyError = httperr.ReasonOf(err)
				} else {
					resp.Verified = true
				}
			}
		}
		for _, f := range profiles.Lint(p, opts) {
			if f.Severity == profiles.SeverityError {
				resp.Errors++
			}
			resp.Findings = append(resp.Findings, api.LintFinding(f))
		}
		a.writeJSON(w, r, http.StatusOK, resp)
	})
}

func lintOptions(r *http.Request) (profiles.LintOptions, error) {
	q := r.URL.Query()
	var o profiles.LintOptions
	if s := q.Get("platform"); s != "" {
		p, ok := profiles.NormalizePlatform(s)
		if !ok {
			return o, httperr.New(http.StatusBadRequest, "platform=%q: must be one of %s", truncate(s, 40), listNames(profiles.Platforms))
		}
		o.Platform = p
	}
	for name, dst := range map[string]*bool{"user_enrollment": &o.UserEnrollment, "supervised": &o.Supervised} {
		s := q.Get(name)
		if s == "" {
			continue
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return o, httperr.New(http.StatusBadRequest, "%s=%q: must be true or false", name, truncate(s, 40))
		}
		*dst = b
	}
	if o.Platform == "" && (o.UserEnrollment || o.Supervised) {
		return o, httperr.New(http.StatusBadRequest, "user_enrollment and supervised need platform (Apple states those rules per OS), e.g. platform=iOS")
	}
	return o, nil
}

// lintInstallProfile lints the profile an InstallProfile command carries,
// with no device in mind (the targets may differ): the findings go back in
// the enqueue answer, so a test sees at once why a device would refuse it.
func lintInstallProfile(cmd *mdm.Command) []api.LintFinding {
	if cmd.RequestType != "InstallProfile" {
		return nil
	}
	var c struct {
		Command struct {
			Payload []byte
		}
	}
	if err := plist.Unmarshal(cmd.Raw, &c); err != nil || len(c.Command.Payload) == 0 {
		return nil // the command builder already refused a missing Payload
	}
	p, err := profiles.Parse(c.Command.Payload)
	if err != nil {
		return []api.LintFinding{{Severity: profiles.SeverityError, Rule: "not-a-profile", Path: "Payload",
			Message: "the Payload is not a profile a device can install: " + httperr.ReasonOf(err)}}
	}
	var out []api.LintFinding
	for _, f := range profiles.Lint(p, profiles.LintOptions{}) {
		out = append(out, api.LintFinding(f))
	}
	return out
}
