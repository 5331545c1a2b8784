package server

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/store/memory"
)

// TestIndependentClientEnrolls shows that an MDM client mockmdm did not
// write enrolls with the served profile over SCEP, checks in with
// Mdm-Signature and answers queued commands: testdata/independent_client.sh
// uses only curl, openssl, Python's plistlib and micromdm's scepclient, and
// reads every URL and secret from the served profile.
func TestIndependentClientEnrolls(t *testing.T) {
	for _, tool := range []string{"openssl", "python3", "curl", "bash", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the independent client needs curl, openssl, python3 and go", tool)
		}
	}
	work := t.TempDir()
	scepclient := filepath.Join(work, "scepclient")
	if out, err := exec.Command("go", "build", "-o", scepclient, "github.com/micromdm/scep/v2/cmd/scepclient").CombinedOutput(); err != nil {
		t.Skipf("cannot build micromdm's scepclient: %v\n%s", err, out)
	}

	ts := httptest.NewUnstartedServer(nil)
	base := "https://" + ts.Listener.Addr().String()
	st := memory.New()
	s, err := New(st, sharedPKI(t), base)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Handler()
	ts.TLS = s.TLSConfig()
	ts.StartTLS()
	defer ts.Close()

	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.PKI().CA.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	script := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{"testdata/independent_client.sh"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("independent client %s: %v\n%s", args[0], err, out)
		}
		return string(out)
	}
	if out := script("enroll", base, caFile, work, scepclient); !strings.Contains(out, "enrolled") {
		t.Fatalf("enroll: %s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := api.NewClient(base, s.PKI().APIKey, api.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig}}))
	e, err := client.GetEnrollment(ctx, "independent-client-0001")
	if err != nil || e.State != api.StateEnrolled || e.SerialNumber != "INDEP0000001" {
		t.Fatalf("enrollment: %+v %v", e, err)
	}
	cmd, _ := json.Marshal(map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"DeviceName", "OSVersion"}})
	q, err := client.Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: []string{e.ID}, Command: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if out := script("connect", work); !strings.Contains(out, "answered "+q.CommandUUID) || !strings.Contains(out, "queue empty") {
		t.Fatalf("connect: %s", out)
	}
	status, err := client.GetCommand(ctx, q.CommandUUID, 0)
	if err != nil || !status.Done || status.Results[0].Status != "Acknowledged" || !strings.Contains(string(status.Results[0].Result), `"DeviceName":"Independent"`) {
		t.Fatalf("result: %+v %v", status, err)
	}
}
