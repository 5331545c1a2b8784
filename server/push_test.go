package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/store/memory"
	"software.sslmate.com/src/go-pkcs12"
)

func apiJSON(t *testing.T, s *Server, method, path string, body any, want int, out any) string {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	rec := do(t, s, method, path, s.PKI().APIKey, raw, "Content-Type", "application/json")
	if rec.Code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body.String(), want)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, rec.Body.String())
		}
	}
	return rec.Body.String()
}

// portalCert plays an MDM customer and vendor: a CSR signed by the vendor
// certificate the mock portal hands out, sent to the portal; it returns the
// issued certificate (PEM) and the customer's key (PEM).
func portalCert(t *testing.T, s *Server, renewTopic string) (api.PortalResponse, string) {
	t.Helper()
	var vendor api.VendorCertResponse
	apiJSON(t, s, "POST", "/v1/push/portal/vendor-certificate", api.VendorCertRequest{Name: "Example MDM"}, 201, &vendor)
	vb, _ := pem.Decode([]byte(vendor.CertificatePEM))
	kb, _ := pem.Decode([]byte(vendor.KeyPEM))
	vcert, err := x509.ParseCertificate(vb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Example customer", Country: []string{"US"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := certs.NewPushCertRequest(csr, vcert, vkey, nil, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var res api.PortalResponse
	apiJSON(t, s, "POST", "/v1/push/portal/certificates", api.PortalRequest{Request: string(req), RenewTopic: renewTopic}, 201, &res)
	return res, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// TestPushCertificateLifecycle: status, the portal's new and renewed
// certificates, an upload that would strand enrolled devices (refused, then
// forced with a warning), and persistence in the data directory.
func TestPushCertificateLifecycle(t *testing.T) {
	pki := sharedPKI(t)
	pki.Dir = t.TempDir()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	s, err := New(st, pki, "https://mockmdm.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)

	var status api.PushCertStatus
	apiJSON(t, s, "GET", "/v1/push/certificate", nil, 200, &status)
	if status.Topic != pki.Topic || status.State != api.PushCertValid || status.Source != "mock" || status.DaysLeft < 300 || len(status.Warnings) != 0 {
		t.Fatalf("initial status %+v", status)
	}

	// A device enrolls under the current topic.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	enrollInProcess(t, ctx, s)

	// The portal: a new certificate gets a new topic.
	fresh, freshKey := portalCert(t, s, "")
	if fresh.Topic == pki.Topic || fresh.Renewed || !strings.HasPrefix(fresh.Topic, "com.apple.mgmt.External.") {
		t.Fatalf("new certificate %+v", fresh)
	}
	// Uploading it would strand the enrolled device: refused with its own message.
	body := apiJSON(t, s, "PUT", "/v1/push/certificate", api.PushCertUpload{CertificatePEM: fresh.CertificatePEM, KeyPEM: freshKey}, 409, nil)
	if !strings.Contains(body, "1 enrollment(s) were made under another push topic") || !strings.Contains(body, "force") {
		t.Fatalf("topic change refusal: %s", body)
	}
	// Renew keeps the topic, and then the upload goes through.
	renewed, renewedKey := portalCert(t, s, pki.Topic)
	if renewed.Topic != pki.Topic || !renewed.Renewed {
		t.Fatalf("renewal %+v", renewed)
	}
	apiJSON(t, s, "PUT", "/v1/push/certificate", api.PushCertUpload{CertificatePEM: renewed.CertificatePEM, KeyPEM: renewedKey}, 200, &status)
	if status.Topic != pki.Topic || len(status.Warnings) != 0 {
		t.Fatalf("after renewal %+v", status)
	}
	// Forcing the new topic works, with the warning, and the profile follows.
	apiJSON(t, s, "PUT", "/v1/push/certificate", api.PushCertUpload{CertificatePEM: fresh.CertificatePEM, KeyPEM: freshKey, Force: true}, 200, &status)
	if status.Topic != fresh.Topic || len(status.Warnings) != 1 || !strings.Contains(status.Warnings[0], "never receive pushes") {
		t.Fatalf("forced upload %+v", status)
	}
	if s.Topic() != fresh.Topic {
		t.Fatal("the server still hands out the old topic")
	}
	var info api.ServerInfo
	apiJSON(t, s, "GET", "/v1/info", nil, 200, &info)
	if info.Topic != fresh.Topic {
		t.Fatalf("/v1/info topic %s", info.Topic)
	}
	saved, err := certs.ReadCertPEM(filepath.Join(pki.Dir, "push.pem"))
	if err != nil || !saved[0].Equal(mustPEMCert(t, fresh.CertificatePEM)) {
		t.Fatalf("the uploaded certificate was not saved: %v", err)
	}
	// Renewing a topic the portal never issued is a 404 with a reason.
	body = apiJSON(t, s, "POST", "/v1/push/portal/certificates", api.PortalRequest{Request: "x", RenewTopic: "com.apple.mgmt.External.unknown"}, 400, nil)
	if !strings.Contains(body, "request") {
		t.Fatalf("bad request body: %s", body)
	}
}

func mustPEMCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPushCertificateUploadRefusals: each bad upload is refused with its
// own message, and the current certificate stays.
func TestPushCertificateUploadRefusals(t *testing.T) {
	s := newTestServer(t)
	pki := s.PKI()
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(pki.PushKey)}))
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.PushCert.Raw}))
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKeyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(otherKey)}))
	//lint:ignore SA1019 legacy encrypted PEM is what older tools write, and what a person uploads
	encBlock, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(pki.PushKey), []byte("pw"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	encKeyPEM := string(pem.EncodeToMemory(encBlock))

	expiredCA, err := certs.NewCA("expired-cert issuer", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Another issuer: not the mock push CA, not a configured one.
	foreignCert, foreignKey, err := certs.NewMockPushCert(expiredCA, pki.Topic, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Expired: issued by the mock push CA with a validity in the past.
	csrKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, csrKey)
	csr, _ := x509.ParseCertificateRequest(csrDER)
	tmpl, err := certs.IssuePushCert(pki.PushCA, csr, pki.Topic, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pki.PushCA.Cert, &csrKey.PublicKey, pki.PushCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := x509.ParseCertificate(der)
	cases := []struct {
		name string
		up   api.PushCertUpload
		says string
	}{
		{"key does not match", api.PushCertUpload{CertificatePEM: certPEM, KeyPEM: otherKeyPEM}, "does not belong"},
		{"encrypted key without password", api.PushCertUpload{CertificatePEM: certPEM, KeyPEM: encKeyPEM}, "password"},
		{"encrypted key with the wrong password", api.PushCertUpload{CertificatePEM: certPEM, KeyPEM: encKeyPEM, Password: "nope"}, "password"},
		{"expired", api.PushCertUpload{CertificatePEM: pemCert(expired), KeyPEM: pemKey(csrKey)}, "expired"},
		{"issuer not the APNs issuer", api.PushCertUpload{CertificatePEM: pemCert(foreignCert), KeyPEM: pemKey(foreignKey)}, "issuer"},
		{"TLS certificate, no topic", api.PushCertUpload{CertificatePEM: pemCert(pki.SignerCert), KeyPEM: pemKey(pki.SignerKey)}, "UID"},
		{"not PEM", api.PushCertUpload{CertificatePEM: "hello", KeyPEM: keyPEM}, "certificate"},
		{"no key", api.PushCertUpload{CertificatePEM: certPEM}, "key"},
		{"PKCS#12 garbage", api.PushCertUpload{PKCS12: []byte("not a p12"), Password: "x"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := apiJSON(t, s, "PUT", "/v1/push/certificate", tc.up, 400, nil)
			if !strings.Contains(strings.ToLower(body), strings.ToLower(tc.says)) {
				t.Fatalf("body %s does not say %q", body, tc.says)
			}
		})
	}
	for _, bad := range []string{`{}`, `{"certificate_pem":"x","pkcs12":"eA=="}`, `{"certificate_pem":1}`, `{"nope":true}`, `[`} {
		rec := do(t, s, "PUT", "/v1/push/certificate", pki.APIKey, []byte(bad), "Content-Type", "application/json")
		if rec.Code != 400 {
			t.Errorf("%s: %d %s", bad, rec.Code, rec.Body.String())
		}
	}
	if s.Topic() != pki.Topic {
		t.Fatal("a refused upload changed the topic")
	}
	// A server whose certificate expired still starts; status and pushes say why.
	expiredPKI := *pki
	expiredPKI.PushCert, expiredPKI.PushKey = expired, csrKey
	est0 := memory.New()
	t.Cleanup(func() { est0.Close() })
	es, err := New(est0, &expiredPKI, "https://mockmdm.test")
	if err != nil {
		t.Fatalf("a server with an expired push certificate does not start: %v", err)
	}
	var est api.PushCertStatus
	apiJSON(t, es, "GET", "/v1/push/certificate", nil, 200, &est)
	if est.State != api.PushCertExpired || est.DaysLeft >= 0 || len(est.Warnings) == 0 || !strings.Contains(est.Warnings[0], "expired") {
		t.Fatalf("expired status %+v", est)
	}
	// A PKCS#12 file, as Keychain Access exports one: accepted with its
	// password, refused without it or with another.
	p12, err := pkcs12.Modern.Encode(pki.PushKey, pki.PushCert, nil, "p12-pass")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "wrong"} {
		if body := apiJSON(t, s, "PUT", "/v1/push/certificate", api.PushCertUpload{PKCS12: p12, Password: pw}, 400, nil); !strings.Contains(body, "password") {
			t.Fatalf("PKCS#12 with password %q: %s", pw, body)
		}
	}
	var p12st api.PushCertStatus
	apiJSON(t, s, "PUT", "/v1/push/certificate", api.PushCertUpload{PKCS12: p12, Password: "p12-pass"}, 200, &p12st)
	if p12st.Topic != pki.Topic {
		t.Fatalf("PKCS#12 upload: %+v", p12st)
	}
	// The encrypted key with its password is accepted.
	apiJSON(t, s, "PUT", "/v1/push/certificate", api.PushCertUpload{CertificatePEM: certPEM, KeyPEM: encKeyPEM, Password: "pw"}, 200, nil)
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func pemKey(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// TestPushAndFaultEndpoints: POST /v1/push per enrollment, faults injected
// through the API, and the hostile inputs of these endpoints.
func TestPushAndFaultEndpoints(t *testing.T) {
	s := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, _ := enrollInProcess(t, ctx, s)
	hw := e.Device.Hardware()
	s.MockAPNs().Register(hw.PushToken, s.Topic())

	var pr api.PushResponse
	apiJSON(t, s, "POST", "/v1/push", api.PushRequest{EnrollmentIDs: []string{e.EnrollmentID, "NO-SUCH"}}, 200, &pr)
	if len(pr.Results) != 2 || !pr.Results[0].Pushed || pr.Results[0].APNsStatus != 200 || pr.Results[1].Pushed || !strings.Contains(pr.Results[1].Error, "no enrollment") {
		t.Fatalf("push results %+v", pr.Results)
	}
	apiJSON(t, s, "POST", "/v1/apns/faults", api.APNsFault{EnrollmentID: e.EnrollmentID, Reason: "Unregistered", Times: 1}, 200, nil)
	apiJSON(t, s, "POST", "/v1/push", api.PushRequest{EnrollmentIDs: []string{e.EnrollmentID}}, 200, &pr)
	if r := pr.Results[0]; r.Pushed || r.APNsStatus != 410 || r.Reason != "Unregistered" || !strings.Contains(r.Error, "no longer registered") {
		t.Fatalf("injected Unregistered: %+v", r)
	}
	apiJSON(t, s, "POST", "/v1/apns/faults", api.APNsFault{Ratio: 1, Reason: "ServiceUnavailable"}, 200, nil)
	apiJSON(t, s, "POST", "/v1/push", api.PushRequest{EnrollmentIDs: []string{e.EnrollmentID}}, 200, &pr)
	if r := pr.Results[0]; r.APNsStatus != 503 {
		t.Fatalf("ratio fault: %+v", r)
	}
	apiJSON(t, s, "DELETE", "/v1/apns/faults", nil, 204, nil)
	// Enqueue pushes by default, and not when asked not to.
	var er api.EnqueueResponse
	apiJSON(t, s, "POST", "/v1/commands", map[string]any{"enrollment_ids": []string{e.EnrollmentID}, "command": map[string]any{"RequestType": "ProfileList"}}, 201, &er)
	if len(er.Push) != 1 || !er.Push[0].Pushed {
		t.Fatalf("enqueue push %+v", er.Push)
	}
	er = api.EnqueueResponse{}
	apiJSON(t, s, "POST", "/v1/commands", map[string]any{"enrollment_ids": []string{e.EnrollmentID}, "command": map[string]any{"RequestType": "ProfileList"}, "push": false}, 201, &er)
	if len(er.Push) != 0 {
		t.Fatalf("push:false pushed: %+v", er.Push)
	}
	// Every push is in the enrollment's transcript, with what APNs said.
	var tr api.Transcript
	apiJSON(t, s, "GET", "/v1/enrollments/"+e.EnrollmentID+"/transcript", nil, 200, &tr)
	var statuses []int
	for _, en := range tr.Entries {
		if en.Kind == "apns" {
			statuses = append(statuses, en.HTTPStatus)
			if en.Method != "POST" || !strings.HasPrefix(en.Path, "/3/device/") || !strings.Contains(en.RequestPlist, `"mdm"`) {
				t.Fatalf("push entry %+v", en)
			}
		}
	}
	if fmt.Sprint(statuses) != "[200 410 503 200]" {
		t.Fatalf("push statuses in the transcript: %v", statuses)
	}
	var stats api.APNsStats
	apiJSON(t, s, "GET", "/v1/apns", nil, 200, &stats)
	if stats.Accepted != 2 || stats.Refused["Unregistered"] != 1 || stats.Refused["ServiceUnavailable"] != 1 || stats.Registered != 1 {
		t.Fatalf("stats %+v", stats)
	}

	hostile := []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"POST", "/v1/push", `{}`, 400, "enrollment_ids"},
		{"POST", "/v1/push", `{"enrollment_ids":["a","a"]}`, 400, "twice"},
		{"POST", "/v1/push", `{"enrollment_ids":"x"}`, 400, "array"},
		{"POST", "/v1/apns/faults", `{"enrollment_id":"x"}`, 400, "reason"},
		{"POST", "/v1/apns/faults", `{"reason":"Unregistered"}`, 400, "whose pushes"},
		{"POST", "/v1/apns/faults", `{"enrollment_id":"NOPE","reason":"Unregistered"}`, 404, "no enrollment"},
		{"POST", "/v1/apns/faults", `{"token":"zz","reason":"Unregistered"}`, 400, "hex"},
		{"POST", "/v1/apns/faults", `{"token":"` + strings.Repeat("a", 64) + `","reason":"Bogus"}`, 400, "unknown APNs reason"},
		{"POST", "/v1/apns/faults", `{"ratio":2,"reason":"Unregistered"}`, 400, "between 0 and 1"},
		{"POST", "/v1/apns/faults", `{"ratio":0.5,"reason":"Unregistered","times":3}`, 400, "without"},
		{"POST", "/v1/apns/faults", `{"enrollment_id":"a","token":"b","reason":"Unregistered"}`, 400, "not both"},
		{"POST", "/v1/push/portal/certificates", `{}`, 400, "request"},
		{"POST", "/v1/push/portal/certificates", `{"request":"bm90IGEgcGxpc3Q="}`, 400, "plist"},
		{"POST", "/v1/push/portal/vendor-certificate", `{"name":"` + strings.Repeat("n", 300) + `"}`, 400, "at most 200"},
		{"PUT", "/v1/push/certificate", `{"certificate_pem":"","pkcs12":""}`, 400, "give the push certificate"},
	}
	for _, h := range hostile {
		rec := do(t, s, h.method, h.path, s.PKI().APIKey, []byte(h.body), "Content-Type", "application/json")
		if rec.Code != h.status || !strings.Contains(strings.ToLower(rec.Body.String()), strings.ToLower(h.says)) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", h.method, h.path, h.body, rec.Code, rec.Body.String(), h.status, h.says)
		}
	}
}
