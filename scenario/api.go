package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The api step calls the server's REST API with the runner's key, so a
// scenario sets up what its story needs (the directory, devices bought in
// the simulated ABM, ADE and Configurator profiles, apps) and changes
// state (ownership, retire) the way a test suite's own code would:
//
//	- api: PUT /v1/ade/profiles/corp
//	  body: {user_affinity: true, auth_method: company-portal, supervised: true}
//	  status: 200
//	  as: corp
//
// Text in the path and body may name what earlier steps made:
// ${ipad.serial}, ${ipad.udid}, ${ipad.enrollment_id}, and the answers of
// earlier api steps, ${corp.status} and ${corp.body.dep_profile_uuid}.

// apiMethods are the methods an api step may use.
var apiMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// maxAPIAnswer bounds what the runner reads of an API answer.
const maxAPIAnswer = 4 << 20

// apiResponse is an api step's answer, kept under its as: name.
type apiResponse struct {
	Status int `json:"status"`
	// Body is the answer decoded as JSON, or its text when it is not JSON.
	Body any `json:"body"`
}

type apiAction struct {
	method, path string
	// Exactly one of json (a YAML value sent as JSON) and text (sent as
	// is, with contentType) is the body; neither for none.
	json        any
	hasJSON     bool
	text        string
	contentType string
	// file is a body read at run time, relative to the scenario file.
	file   string
	status int
	as     string
}

func (p *parser) apiStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, "body", "yaml", "raw", "file", "content_type", "status", "as"); err != nil {
		return nil, err
	}
	a := &apiAction{}
	head, err := p.str(m[KindAPI].value, field)
	if err != nil {
		return nil, err
	}
	method, path, ok := strings.Cut(strings.TrimSpace(head), " ")
	path = strings.TrimSpace(path)
	if !ok || !slices.Contains(apiMethods, method) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n") {
		return nil, p.errf(deref(m[KindAPI].value), field, "%q: want METHOD /path, such as PUT /v1/directory (methods: %s)", clip(head), strings.Join(apiMethods, ", "))
	}
	if strings.HasPrefix(path, "//") {
		return nil, p.errf(deref(m[KindAPI].value), field, "%q: the path is on the server under test; give it from its first /", clip(path))
	}
	a.method, a.path = method, path
	if err := p.checkRefs(deref(m[KindAPI].value), field, path); err != nil {
		return nil, err
	}
	var bodies []string
	for _, k := range []string{"body", "yaml", "raw", "file"} {
		if _, ok := m[k]; ok {
			bodies = append(bodies, k)
		}
	}
	if len(bodies) > 1 {
		return nil, p.errf(m[bodies[1]].key, sibling(field, bodies[1]), "give one of body (sent as JSON), yaml (sent as YAML text), raw (with content_type) or file, not %s", strings.Join(bodies, " and "))
	}
	ct, hasCT := m["content_type"]
	if hasCT {
		if a.contentType, err = p.str(ct.value, sibling(field, "content_type")); err != nil {
			return nil, err
		}
		if _, _, err := mime.ParseMediaType(a.contentType); err != nil {
			return nil, p.errf(deref(ct.value), sibling(field, "content_type"), "%q is not a media type such as application/x-pem-file", clip(a.contentType))
		}
	}
	switch {
	case len(bodies) == 0 && hasCT:
		return nil, p.errf(ct.key, sibling(field, "content_type"), "a content type with no body: add raw: TEXT")
	case slices.Contains(bodies, "body"):
		f := m["body"]
		if a.json, err = p.value(f.value, sibling(field, "body"), 0); err != nil {
			return nil, err
		}
		if err := p.checkRefsTree(f.value, sibling(field, "body"), 0); err != nil {
			return nil, err
		}
		a.hasJSON = true
		if a.contentType == "" {
			a.contentType = "application/json"
		}
	case slices.Contains(bodies, "file"):
		f := m["file"]
		name, err := p.str(f.value, sibling(field, "file"))
		if err != nil {
			return nil, err
		}
		if filepath.IsAbs(name) {
			return nil, p.errf(deref(f.value), sibling(field, "file"), "%q: give the file relative to the scenario file, so the scenario runs from any checkout", clip(name))
		}
		a.file = filepath.Join(filepath.Dir(p.file), filepath.FromSlash(name))
		if a.contentType == "" {
			switch strings.ToLower(filepath.Ext(name)) {
			case ".yaml", ".yml":
				a.contentType = "application/yaml"
			case ".json":
				a.contentType = "application/json"
			case ".pem":
				a.contentType = "application/x-pem-file"
			default:
				return nil, p.errf(f.key, sibling(field, "content_type"), "missing: the type of %q is not known by its extension; give content_type", clip(name))
			}
		}
	case slices.Contains(bodies, "yaml"), slices.Contains(bodies, "raw"):
		k := bodies[0]
		f := m[k]
		n := deref(f.value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
			return nil, p.errf(n, sibling(field, k), "want text (a block string: %s: |), got %s", k, describe(n))
		}
		if len(n.Value) > MaxFileSize {
			return nil, p.errf(n, sibling(field, k), "is longer than a scenario file may be")
		}
		a.text = n.Value
		if err := p.checkRefs(n, sibling(field, k), a.text); err != nil {
			return nil, err
		}
		if k == "yaml" {
			var probe yaml.Node
			if err := yaml.Unmarshal([]byte(a.text), &probe); err != nil {
				return nil, p.errf(n, sibling(field, k), "is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
			}
			if a.contentType == "" {
				a.contentType = "application/yaml"
			}
		} else if a.contentType == "" {
			return nil, p.errf(f.key, sibling(field, "content_type"), "missing: a raw body needs its content_type (e.g. application/x-pem-file)")
		}
	}
	if f, ok := m["status"]; ok {
		v, err := p.integer(f.value, sibling(field, "status"), 100, 599)
		if err != nil {
			return nil, err
		}
		a.status = int(v)
	}
	if f, ok := m["as"]; ok {
		if a.as, err = p.name(f.value, sibling(field, "as")); err != nil {
			return nil, err
		}
		if p.responses[a.as] || p.devices[a.as] {
			return nil, p.errf(f.value, sibling(field, "as"), "%q already names a device or an earlier api answer", a.as)
		}
		p.responses[a.as] = true
	}
	return a, nil
}

func (a *apiAction) summary() string {
	s := a.method + " " + a.path
	if a.status != 0 {
		s += fmt.Sprintf(", expecting %d", a.status)
	}
	if a.as != "" {
		s += " as " + a.as
	}
	return s
}

func (a *apiAction) run(ctx context.Context, r *run) error {
	path, err := r.expand(a.path, url.PathEscape)
	if err != nil {
		return err
	}
	var body []byte
	switch {
	case a.hasJSON:
		v, err := r.expandTree(a.json)
		if err != nil {
			return err
		}
		if body, err = json.Marshal(v); err != nil {
			return fmt.Errorf("the body cannot be sent as JSON: %w", err)
		}
	case a.text != "":
		s, err := r.expand(a.text, nil)
		if err != nil {
			return err
		}
		body = []byte(s)
	case a.file != "":
		if body, err = readBounded(a.file); err != nil {
			return fmt.Errorf("the body file: %w", err)
		}
	}
	resp, err := r.call(ctx, a.method, path, a.contentType, body)
	if err != nil {
		return err
	}
	what := a.method + " " + path
	ok := resp.Status >= 200 && resp.Status <= 299
	want := "a 2xx answer"
	if a.status != 0 {
		ok, want = resp.Status == a.status, "HTTP "+strconv.Itoa(a.status)
	}
	if !ok {
		return &Mismatch{What: what, Expected: want, Seen: "HTTP " + strconv.Itoa(resp.Status) + ": " + clipAnswer(resp.Body)}
	}
	if a.as != "" {
		r.responses[a.as] = resp
	}
	r.notef("%s: HTTP %d", what, resp.Status)
	return nil
}

// rawAnswer is an API answer as it came.
type rawAnswer struct {
	status int
	body   []byte
}

// callRaw sends one request to the server's API with the runner's key.
func (r *run) callRaw(ctx context.Context, method, path, contentType string, body []byte) (*rawAnswer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.target.BaseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+r.target.APIKey)
	resp, err := r.target.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if len(raw) > maxAPIAnswer {
		return nil, fmt.Errorf("%s %s: the answer is larger than the %d bytes the runner reads", method, path, maxAPIAnswer)
	}
	return &rawAnswer{status: resp.StatusCode, body: raw}, nil
}

// call is callRaw with the answer decoded for assertions and references.
func (r *run) call(ctx context.Context, method, path, contentType string, body []byte) (*apiResponse, error) {
	a, err := r.callRaw(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	return &apiResponse{Status: a.status, Body: decodeAnswer(a.body)}, nil
}

// decodeAnswer is an answer as JSON, or its text when it is not JSON.
func decodeAnswer(raw []byte) any {
	var doc any
	if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &doc) == nil {
		return doc
	}
	return string(raw)
}

// clipAnswer shows an answer in a failure: the API's error text when it
// is an error body, else the start of it.
func clipAnswer(body any) string {
	if m, ok := body.(map[string]any); ok {
		if e, ok := m["error"].(string); ok && e != "" {
			return e
		}
		if e, ok := m["message"].(string); ok && e != "" {
			return e
		}
	}
	s, ok := body.(string)
	if !ok {
		s = show(body)
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// ---- references: ${name.field} --------------------------------------------

var refPattern = regexp.MustCompile(`\$\{([^}]*)\}`)

// deviceFields are what a reference may read of a device.
var deviceFields = []string{"serial", "udid", "enrollment_id"}

// splitRef splits "a.b.serial" into the name an earlier step made and the
// rest; names may hold dots, so the longest known name wins.
func splitRef(ref string, known func(string) bool) (name, rest string, ok bool) {
	for i := len(ref); i > 0; i-- {
		if i < len(ref) && ref[i] != '.' {
			continue
		}
		if known(ref[:i]) {
			return ref[:i], strings.TrimPrefix(ref[i:], "."), true
		}
	}
	return "", "", false
}

// checkRefs refuses a reference to nothing an earlier step made, or to a
// field the runner cannot give.
func (p *parser) checkRefs(n *yaml.Node, field, s string) error {
	for _, m := range refPattern.FindAllStringSubmatch(s, -1) {
		ref := m[1]
		name, rest, ok := splitRef(ref, func(x string) bool { return p.devices[x] || p.responses[x] })
		if !ok {
			return p.errf(n, field, "${%s}: no device or api answer (as:) of that name was made by an earlier step (devices: %s; answers: %s)", clip(ref), known(p.devices), known(p.responses))
		}
		if p.devices[name] {
			if !slices.Contains(deviceFields, rest) {
				return p.errf(n, field, "${%s}: a device gives %s", clip(ref), strings.Join(deviceFields, ", "))
			}
			continue
		}
		if rest != "status" && rest != "body" && !strings.HasPrefix(rest, "body.") {
			return p.errf(n, field, "${%s}: an api answer gives status, body or body.PATH", clip(ref))
		}
	}
	if strings.Contains(refPattern.ReplaceAllString(s, ""), "${") {
		return p.errf(n, field, "an unclosed ${: write ${name.field}")
	}
	return nil
}

// checkRefsTree checks the references in every text of a YAML value.
func (p *parser) checkRefsTree(n *yaml.Node, field string, depth int) error {
	n = deref(n)
	if depth > 32 {
		return nil // p.value refused it already
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return p.checkRefs(n, field, n.Value)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := p.checkRefsTree(n.Content[i+1], join(field, n.Content[i].Value), depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := p.checkRefsTree(c, fmt.Sprintf("%s[%d]", field, i), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve gives the value of one reference.
func (r *run) resolve(ref string) (any, error) {
	name, rest, ok := splitRef(ref, func(x string) bool { return r.devices[x] != nil || r.responses[x] != nil })
	if !ok {
		return nil, fmt.Errorf("${%s}: nothing of that name yet", ref)
	}
	if ds := r.devices[name]; ds != nil {
		switch rest {
		case "serial":
			return ds.dev.SerialNumber(), nil
		case "udid":
			return ds.dev.UDID(), nil
		case "enrollment_id":
			return r.enrollmentID(name)
		}
		return nil, fmt.Errorf("${%s}: a device gives %s", ref, strings.Join(deviceFields, ", "))
	}
	resp := r.responses[name]
	if rest == "status" {
		return int64(resp.Status), nil
	}
	doc, err := asJSON(resp)
	if err != nil {
		return nil, err
	}
	cur := doc
	for _, part := range strings.Split(rest, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[part]
			if !ok {
				return nil, fmt.Errorf("${%s}: the answer of %s has no %q", ref, name, part)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("${%s}: %q does not index a list of %d", ref, part, len(c))
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("${%s}: %q reaches into %s", ref, part, show(cur))
		}
	}
	return cur, nil
}

// expand replaces every reference in s by its text; escape (for a URL
// path) is applied to each replacement.
func (r *run) expand(s string, escape func(string) string) (string, error) {
	var firstErr error
	out := refPattern.ReplaceAllStringFunc(s, func(m string) string {
		v, err := r.resolve(m[2 : len(m)-1])
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return m
		}
		t, ok := v.(string)
		if !ok {
			t = show(v)
		}
		if escape != nil {
			t = escape(t)
		}
		return t
	})
	return out, firstErr
}

// expandTree expands the references in every text of a JSON value; a
// text that is one whole reference takes the referenced value's own type
// (a number stays a number, a list a list).
func (r *run) expandTree(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if m := refPattern.FindStringSubmatchIndex(x); m != nil && m[0] == 0 && m[1] == len(x) {
			return r.resolve(x[2 : len(x)-1])
		}
		return r.expand(x, nil)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ev, err := r.expandTree(e)
			if err != nil {
				return nil, err
			}
			out[k] = ev
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ev, err := r.expandTree(e)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	}
	return v, nil
}
