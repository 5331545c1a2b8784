package handlers

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPISpec checks that docs/openapi.yaml is a well-formed OpenAPI
// 3.0.3 document that describes every API route these handlers serve:
// each operation has responses, each /v1 operation needs the key, each
// path parameter is declared, and every $ref points at something.
func TestOpenAPISpec(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("docs/openapi.yaml is not YAML: %v", err)
	}
	if v, _ := spec["openapi"].(string); v != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", v)
	}
	info, _ := spec["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Error("info needs title and version")
	}
	paths, _ := spec["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("no paths")
	}
	comps, _ := spec["components"].(map[string]any)
	schemes, _ := comps["securitySchemes"].(map[string]any)
	if schemes["bearerAuth"] == nil || schemes["apiKeyHeader"] == nil {
		t.Error("securitySchemes must define bearerAuth and apiKeyHeader")
	}

	methods := []string{"get", "put", "post", "delete", "patch", "head", "options"}
	opIDs := map[string]string{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for path, v := range paths {
		item, _ := v.(map[string]any)
		ops := 0
		for key, ov := range item {
			if key == "parameters" {
				continue
			}
			if !slices.Contains(methods, key) {
				t.Errorf("%s: %q is not an HTTP method", path, key)
				continue
			}
			ops++
			op, _ := ov.(map[string]any)
			where := strings.ToUpper(key) + " " + path
			if resp, _ := op["responses"].(map[string]any); len(resp) == 0 {
				t.Errorf("%s has no responses", where)
			}
			if id, _ := op["operationId"].(string); id == "" {
				t.Errorf("%s has no operationId", where)
			} else if prev, dup := opIDs[id]; dup {
				t.Errorf("operationId %s used by %s and %s", id, prev, where)
			} else {
				opIDs[id] = where
			}
			sec, hasSec := op["security"].([]any)
			// /metrics sits outside /v1 where scrapers look for it, and
			// needs the API key all the same.
			if strings.HasPrefix(path, "/v1/") || path == "/metrics" {
				if len(sec) == 0 {
					t.Errorf("%s is an API route without security", where)
				}
			} else if hasSec {
				t.Errorf("%s is public but declares security", where)
			}
			// Every {name} in the path is a declared path parameter.
			for _, m := range param.FindAllStringSubmatch(path, -1) {
				if !declaresPathParam(comps, op["parameters"], m[1]) {
					t.Errorf("%s does not declare path parameter %q", where, m[1])
				}
			}
		}
		if ops == 0 {
			t.Errorf("%s has no operations", path)
		}
	}

	// The routes this package serves, as the server mounts them.
	for _, r := range []string{
		"GET /v1/info", "GET /v1/enrollments", "GET /v1/enrollments/{id}", "GET /v1/enrollments/{id}/queue",
		"GET /v1/enrollments/{id}/transcript", "GET /v1/transcript", "POST /v1/commands", "GET /v1/commands/{uuid}",
		"POST /v1/scep/challenges", "POST /v1/reset",
		"GET /enroll", "GET /ca", "GET /ca.pem", "GET /scep", "POST /scep", "PUT /checkin", "PUT /mdm", "GET /healthz", "GET /",
	} {
		method, path, _ := strings.Cut(r, " ")
		item, _ := paths[path].(map[string]any)
		if item[strings.ToLower(method)] == nil {
			t.Errorf("docs/openapi.yaml does not describe %s", r)
		}
	}

	// A null value means a flow mapping was split at an unquoted comma
	// ({description: a, b} makes a key "b" with no value).
	walkNulls(t, spec, "")

	// Every $ref resolves inside the document.
	for _, ref := range regexp.MustCompile(`\$ref:\s*"?([^"\s}]+)"?`).FindAllStringSubmatch(string(raw), -1) {
		if !resolves(spec, ref[1]) {
			t.Errorf("$ref %s does not resolve", ref[1])
		}
	}
}

func declaresPathParam(comps map[string]any, params any, name string) bool {
	list, _ := params.([]any)
	for _, p := range list {
		pm, _ := p.(map[string]any)
		if ref, ok := pm["$ref"].(string); ok {
			key := strings.TrimPrefix(ref, "#/components/parameters/")
			cp, _ := comps["parameters"].(map[string]any)
			pm, _ = cp[key].(map[string]any)
		}
		if pm["in"] == "path" && pm["name"] == name && pm["required"] == true {
			return true
		}
	}
	return false
}

func resolves(spec map[string]any, ref string) bool {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = spec
	for _, part := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return cur != nil
}

func walkNulls(t *testing.T, v any, at string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				t.Errorf("%s/%s has no value (an unquoted comma in a flow mapping?)", at, k)
			}
			walkNulls(t, e, at+"/"+k)
		}
	case []any:
		for _, e := range x {
			walkNulls(t, e, at+"/[]")
		}
	}
}

// TestOpenAPISpecValidator asks an outside validator (Python's
// openapi-spec-validator, which checks the document against the OpenAPI
// 3.0 meta-schema) when it is installed.
func TestOpenAPISpecValidator(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: ", err)
	}
	if out, err := exec.Command(py, "-c", "import openapi_spec_validator").CombinedOutput(); err != nil {
		t.Skipf("openapi-spec-validator not installed (pip install openapi-spec-validator): %s", out)
	}
	script := `import sys
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
spec, _ = read_from_filename(sys.argv[1])
validate(spec)
`
	if out, err := exec.Command(py, "-c", script, "../../docs/openapi.yaml").CombinedOutput(); err != nil {
		t.Fatalf("openapi-spec-validator rejects docs/openapi.yaml: %v\n%s", err, out)
	}
}
