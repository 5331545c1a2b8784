package enroll_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/enroll"
)

// recordingDefiner stands in for Apple Business Manager: it accepts every
// DEP profile and remembers the serials it was asked to assign.
type recordingDefiner struct{ serials []string }

func (d *recordingDefiner) DefineAndAssign(_ context.Context, p enroll.DEPProfile, serials []string) (string, error) {
	d.serials = serials
	return "uuid-" + p.ProfileName, nil
}

// noProfiles is never reached: these tests use only the admin routes.
type noProfiles struct{}

func (noProfiles) EnrollmentProfile(context.Context, enroll.ProfileRequest) ([]byte, error) {
	panic("not used by the admin routes")
}

func adminMux(t *testing.T) (*http.ServeMux, *recordingDefiner) {
	t.Helper()
	svc, _ := newService(t)
	def := &recordingDefiner{}
	a := enroll.NewADE(svc, def, noProfiles{}, certs.NewAppleDeviceVerifier(certs.VerifyOff, nil, nil), "https://mdm.example")
	mux := http.NewServeMux()
	for _, r := range a.AdminRoutes() {
		mux.Handle(r.Method+" "+r.Path, r.Handler)
	}
	return mux, def
}

func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m, rec.Body.String()
}

// TestADEAdminRoutes runs the same list/get/put contract over both kinds
// of profile the admin routes serve.
func TestADEAdminRoutes(t *testing.T) {
	for _, kind := range []string{"ade", "configurator"} {
		t.Run(kind, func(t *testing.T) {
			mux, def := adminMux(t)
			base := "/v1/" + kind + "/profiles"

			if st, _, body := do(t, mux, "GET", base, ""); st != 200 || strings.TrimSpace(body) != "[]" {
				t.Fatalf("empty list: %d %s", st, body)
			}
			if st, m, _ := do(t, mux, "GET", base+"/kiosk", ""); st != 404 || m["code"] == "" {
				t.Fatalf("missing profile: %d %v", st, m)
			}
			// The body may leave the name out: the path's is used.
			st, m, body := do(t, mux, "PUT", base+"/kiosk", `{"serials":[" c02abc ","C02ABC","c02xyz"]}`)
			if st != 200 || m["name"] != "kiosk" {
				t.Fatalf("put without name: %d %s", st, body)
			}
			got, _ := json.Marshal(m["serials"])
			if string(got) != `["C02ABC","C02XYZ"]` {
				t.Errorf("serials %s, want trimmed, upper case, each once, in order", got)
			}
			if kind == "ade" && strings.Join(def.serials, ",") != "C02ABC,C02XYZ" {
				t.Errorf("definer assigned %v", def.serials)
			}
			// The body may not name another profile than the path.
			if st, m, body := do(t, mux, "PUT", base+"/kiosk", `{"name":"other"}`); st != 400 || m["code"] != enroll.CodeInvalid || !strings.Contains(body, `\"other\"`) {
				t.Errorf("put naming another profile: %d %s", st, body)
			}
			if st, _, body := do(t, mux, "GET", base+"/kiosk", ""); st != 200 || !strings.Contains(body, `"C02XYZ"`) {
				t.Errorf("get after put: %d %s", st, body)
			}
			if st, _, body := do(t, mux, "GET", base, ""); st != 200 || !strings.Contains(body, `"kiosk"`) {
				t.Errorf("list after put: %d %s", st, body)
			}
		})
	}
}

// TestProfileValidation holds the name and serial rules both profile kinds
// share.
func TestProfileValidation(t *testing.T) {
	mux, _ := adminMux(t)
	for _, kind := range []string{"ade", "configurator"} {
		for _, tc := range []struct{ name, body, want string }{
			{"space in name", `{"name":"a b"}`, "give a non-empty name"},
			{"blank name", `{"name":"   "}`, "give a non-empty name"},
			{"empty serial", `{"serials":["  "]}`, "is not a serial number"},
			{"serial with slash", `{"serials":["C02/1"]}`, "is not a serial number"},
			{"long serial", `{"serials":["` + strings.Repeat("A", 65) + `"]}`, "is not a serial number"},
			{"not JSON", `{"serials":`, ""},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				path := "/v1/" + kind + "/profiles/p1"
				if strings.Contains(tc.body, `"name"`) {
					// the name rules run on the body's name; the path must match it
					var m map[string]string
					_ = json.Unmarshal([]byte(tc.body), &m)
					path = "/v1/" + kind + "/profiles/" + strings.ReplaceAll(m["name"], " ", "%20")
				}
				st, _, body := do(t, mux, "PUT", path, tc.body)
				if st != 400 || !strings.Contains(body, tc.want) {
					t.Errorf("PUT %s %s: %d %s, want 400 with %q", path, tc.body, st, body, tc.want)
				}
			})
		}
	}
}
