package server

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
)

func testIdentity(t *testing.T, ca *certs.CA, validity time.Duration) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "hostile"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err := ca.IssueIdentity(csr, validity)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestHostileInputsFullStack sends bad input to every public endpoint family
// through the whole route table: each must get a 4xx whose body says what is
// wrong — never a 5xx, a panic or a hang.
func TestHostileInputsFullStack(t *testing.T) {
	clock := time.Now()
	s := newTestServer(t, WithClock(func() time.Time { return clock }))
	key := s.PKI().APIKey
	good, goodKey := testIdentity(t, s.PKI().CA, 24*time.Hour)
	expired, expiredKey := testIdentity(t, s.PKI().CA, time.Minute)
	stranger, err := certs.NewCA("stranger", 1024, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged, forgedKey := testIdentity(t, stranger, time.Hour)
	sign := func(body []byte, c *x509.Certificate, k *rsa.PrivateKey) string {
		sig, err := certs.SignMdmSignatureWithoutAttributes(body, c, k)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	plistOf := func(kv string) []byte {
		return []byte(`<?xml version="1.0"?><plist version="1.0"><dict>` + kv + `</dict></plist>`)
	}
	auth := plistOf(`<key>MessageType</key><string>Authenticate</string><key>UDID</key><string>hostile-1</string><key>Topic</key><string>` + s.PKI().Topic + `</string>`)
	idle := plistOf(`<key>UDID</key><string>nobody</string><key>Status</key><string>Idle</string>`)
	const ckin = "application/x-apple-aspen-mdm-checkin"
	JSONCT := []string{"Content-Type", "application/json"}

	type tc struct {
		name, method, path, key string
		body                    []byte
		headers                 []string
		advance                 time.Duration
		status                  int
		reason                  string
	}
	tests := []tc{
		{name: "unknown path", method: "GET", path: "/nope", status: 404, reason: "no such endpoint"},
		{name: "wrong method on /enroll", method: "POST", path: "/enroll", status: 405, reason: "not allowed"},
		{name: "bad unsigned value", method: "GET", path: "/enroll?unsigned=maybe", status: 400, reason: "use true or false"},
		{name: "API without key", method: "GET", path: "/v1/enrollments", status: 401, reason: "key"},
		{name: "API with wrong key", method: "GET", path: "/v1/enrollments", key: "wrong", status: 401, reason: "not accepted"},
		{name: "API bad JSON", method: "POST", path: "/v1/commands", key: key, body: []byte("{"), headers: []string{"Content-Type", "application/json"}, status: 400, reason: "JSON"},
		{name: "API unknown enrollment", method: "POST", path: "/v1/commands", key: key, body: []byte(`{"enrollment_ids":["ghost"],"command":{"RequestType":"SecurityInfo"}}`), headers: []string{"Content-Type", "application/json"}, status: 404, reason: "ghost"},
		{name: "API unknown command", method: "GET", path: "/v1/commands/nope", key: key, status: 404, reason: "nope"},
		{name: "SCEP unknown operation", method: "GET", path: "/scep?operation=Nope", status: 400, reason: "operation"},
		{name: "SCEP garbage PKIOperation", method: "POST", path: "/scep?operation=PKIOperation", body: []byte("garbage"), status: 400, reason: ""},
		{name: "checkin malformed plist", method: "PUT", path: "/checkin", body: []byte("<plist><dict>"), headers: []string{"Content-Type", ckin}, status: 400, reason: "property list"},
		{name: "checkin wrong content type", method: "PUT", path: "/checkin", body: auth, headers: []string{"Content-Type", "application/json"}, status: 415, reason: ckin},
		{name: "checkin oversized", method: "PUT", path: "/checkin", body: bytes.Repeat([]byte("x"), 9<<20), headers: []string{"Content-Type", ckin}, status: 413, reason: "limit"},
		{name: "checkin unknown MessageType", method: "PUT", path: "/checkin", body: plistOf(`<key>MessageType</key><string>Nope</string><key>UDID</key><string>x</string>`), headers: []string{"Content-Type", ckin}, status: 400, reason: "unknown check-in MessageType"},
		{name: "checkin missing signature", method: "PUT", path: "/checkin", body: auth, headers: []string{"Content-Type", ckin}, status: 400, reason: "no device identity"},
		{name: "checkin forged signature", method: "PUT", path: "/checkin", body: auth, headers: []string{"Content-Type", ckin, "Mdm-Signature", sign(auth, forged, forgedKey)}, status: 400, reason: "test CA"},
		{name: "checkin signature of other body", method: "PUT", path: "/checkin", body: auth, headers: []string{"Content-Type", ckin, "Mdm-Signature", sign([]byte("x"), good, goodKey)}, status: 400, reason: "Mdm-Signature"},
		{name: "checkin expired identity", method: "PUT", path: "/checkin", body: auth, headers: []string{"Content-Type", ckin, "Mdm-Signature", sign(auth, expired, expiredKey)}, advance: 2 * time.Hour, status: 400, reason: "expired"},
		{name: "connect unknown enrollment", method: "PUT", path: "/mdm", body: idle, headers: []string{"Mdm-Signature", sign(idle, good, goodKey)}, status: 403, reason: "unknown enrollment"},
		{name: "connect bad status", method: "PUT", path: "/mdm", body: plistOf(`<key>UDID</key><string>x</string><key>Status</key><string>Nope</string>`), status: 400, reason: "Status"},
		{name: "check-in routed on /mdm by content type", method: "PUT", path: "/mdm", body: []byte("x"), headers: []string{"Content-Type", ckin}, status: 400, reason: "property list"},
		{name: "connect malformed plist", method: "PUT", path: "/mdm", body: []byte("<plist><dict><key>"), status: 400, reason: "property list"},
		{name: "wrong method on /ca", method: "POST", path: "/ca", status: 405, reason: "not allowed"},
		{name: "wrong method on /healthz", method: "DELETE", path: "/healthz", status: 405, reason: "not allowed"},
		{name: "bad one-time challenge flag", method: "GET", path: "/enroll?one_time_challenge=perhaps", status: 400, reason: "true or false"},
		{name: "SCEP without operation", method: "GET", path: "/scep", status: 400, reason: "operation"},
		{name: "API unknown enrollment record", method: "GET", path: "/v1/enrollments/ghost", key: key, status: 404, reason: "ghost"},
		{name: "API bad wait", method: "GET", path: "/v1/commands/x?wait=forever", key: key, status: 400, reason: "wait"},
		{name: "API enqueue wrong content type", method: "POST", path: "/v1/commands", key: key, body: []byte(`{}`), headers: []string{"Content-Type", "text/plain"}, status: 415, reason: "application/json"},
		{name: "push without targets", method: "POST", path: "/v1/push", key: key, body: []byte(`{"enrollment_ids":[]}`), headers: JSONCT, status: 400, reason: "enrollment_ids"},
		{name: "push bad JSON", method: "POST", path: "/v1/push", key: key, body: []byte(`{"enrollment_ids":`), headers: JSONCT, status: 400, reason: "JSON"},
		{name: "push repeated target", method: "POST", path: "/v1/push", key: key, body: []byte(`{"enrollment_ids":["a","a"]}`), headers: JSONCT, status: 400, reason: "twice"},
		{name: "push without key", method: "POST", path: "/v1/push", body: []byte(`{"enrollment_ids":["a"]}`), headers: JSONCT, status: 401, reason: "key"},
		{name: "push certificate upload empty", method: "PUT", path: "/v1/push/certificate", key: key, body: []byte(`{}`), headers: JSONCT, status: 400, reason: "give the push certificate"},
		{name: "push certificate upload not PEM", method: "PUT", path: "/v1/push/certificate", key: key, body: []byte(`{"certificate_pem":"hello","key_pem":"x"}`), headers: JSONCT, status: 400, reason: "certificate"},
		{name: "push certificate upload PKCS#12 garbage", method: "PUT", path: "/v1/push/certificate", key: key, body: []byte(`{"pkcs12":"aGVsbG8=","password":"x"}`), headers: JSONCT, status: 400, reason: ""},
		{name: "push certificate upload unknown field", method: "PUT", path: "/v1/push/certificate", key: key, body: []byte(`{"cert":"x"}`), headers: JSONCT, status: 400, reason: "unknown field"},
		{name: "portal without request", method: "POST", path: "/v1/push/portal/certificates", key: key, body: []byte(`{}`), headers: JSONCT, status: 400, reason: "request"},
		{name: "portal request not a plist", method: "POST", path: "/v1/push/portal/certificates", key: key, body: []byte(`{"request":"bm90IGEgcGxpc3Q="}`), headers: JSONCT, status: 400, reason: "plist"},
		{name: "portal vendor name too long", method: "POST", path: "/v1/push/portal/vendor-certificate", key: key, body: []byte(`{"name":"` + strings.Repeat("n", 201) + `"}`), headers: JSONCT, status: 400, reason: "at most 200"},
		{name: "APNs fault unknown reason", method: "POST", path: "/v1/apns/faults", key: key, body: []byte(`{"token":"` + strings.Repeat("ab", 32) + `","reason":"Bogus"}`), headers: JSONCT, status: 400, reason: "unknown APNs reason"},
		{name: "APNs fault ratio out of range", method: "POST", path: "/v1/apns/faults", key: key, body: []byte(`{"ratio":3,"reason":"TooManyRequests"}`), headers: JSONCT, status: 400, reason: "between 0 and 1"},
		{name: "APNs fault for nobody", method: "POST", path: "/v1/apns/faults", key: key, body: []byte(`{"reason":"TooManyRequests"}`), headers: JSONCT, status: 400, reason: "whose pushes"},
		{name: "APNs stats bad runtime flag", method: "GET", path: "/v1/apns?runtime=maybe", key: key, status: 400, reason: "true or false"},
		{name: "mock APNs push without client certificate", method: "POST", path: "/apns/3/device/" + strings.Repeat("ab", 32), body: []byte(`{"mdm":"M"}`), status: 403, reason: "MissingProviderToken"},
		{name: "mock APNs push by GET", method: "GET", path: "/apns/3/device/" + strings.Repeat("ab", 32), status: 405, reason: "not allowed"},
		{name: "mock APNs stream without Upgrade", method: "GET", path: "/apns/mock/v1/stream?token=12&topic=x", status: 400, reason: "stream"},
		{name: "mock APNs stream by POST", method: "POST", path: "/apns/mock/v1/stream", status: 405, reason: "not allowed"},
		// The simulated ABM's ADE API (Apple's bare error codes).
		{name: "ADE session without OAuth", method: "GET", path: "/session", headers: []string{"User-Agent", "t"}, status: 400, reason: "BAD_REQUEST"},
		{name: "ADE session with a broken OAuth header", method: "GET", path: "/session", headers: []string{"User-Agent", "t", "Authorization", `OAuth oauth_consumer_key="x", oauth_signature=`}, status: 400, reason: "BAD_REQUEST"},
		{name: "ADE account without a session", method: "GET", path: "/account", headers: []string{"User-Agent", "t", "X-Server-Protocol-Version", "7"}, status: 401, reason: "UNAUTHORIZED"},
		{name: "ADE fetch with an unknown session", method: "POST", path: "/server/devices", body: []byte(`{"limit":5}`), headers: []string{"User-Agent", "t", "X-Server-Protocol-Version", "7", "X-ADM-Auth-Session", "forged"}, status: 401, reason: "UNAUTHORIZED"},
		{name: "ADE activation lock with an unknown session", method: "POST", path: "/device/activationlock", body: []byte(`{"device":"C02X00001"}`), headers: []string{"User-Agent", "t", "X-Server-Protocol-Version", "7", "X-ADM-Auth-Session", "forged"}, status: 401, reason: "UNAUTHORIZED"},
		{name: "ADE profile without a User-Agent", method: "POST", path: "/profile", body: []byte(`{`), headers: []string{"X-ADM-Auth-Session", "forged", "User-Agent", ""}, status: 400, reason: "USER_AGENT"},
		{name: "mock activation, not JSON", method: "POST", path: "/ade/activation", body: []byte("serial=1"), status: 400, reason: "JSON"},
		{name: "mock activation, a serial nobody owns", method: "POST", path: "/ade/activation", body: []byte(`{"serial_number":"NOBODY01"}`), headers: JSONCT, status: 404, reason: "NOBODY01"},
		// The ADE enrollment endpoints a DEP profile points at.
		{name: "ADE enroll, unknown profile", method: "POST", path: "/ade/enroll/ghost", body: []byte("not CMS"), status: 404, reason: "ghost"},
		{name: "ADE web sign-in, unknown profile", method: "GET", path: "/ade/web/ghost", status: 404, reason: "ghost"},
		// BYOD: the Company Portal API and pages, web and account-driven enrollment.
		{name: "portal sign-in, not JSON", method: "POST", path: "/portal/v1/signin", body: []byte("upn=x"), headers: JSONCT, status: 400, reason: "JSON"},
		{name: "portal sign-in, unknown user", method: "POST", path: "/portal/v1/signin", body: []byte(`{"upn":"ghost@contoso.com","password":"x"}`), headers: JSONCT, status: 401, reason: "unknown_user"},
		{name: "portal enroll without a session", method: "POST", path: "/portal/v1/enroll", body: []byte(`{}`), headers: JSONCT, status: 401, reason: "bad_session"},
		{name: "portal register, not JSON", method: "POST", path: "/portal/v1/register", body: []byte("{"), headers: JSONCT, status: 400, reason: "JSON"},
		{name: "portal profile without a session", method: "GET", path: "/portal/profile/ghost", status: 401, reason: "bad_session"},
		{name: "web enrollment form without its CSRF field", method: "POST", path: "/enroll/web", body: []byte("upn=a%40b.c&password=x"), headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 403, reason: "form"},
		{name: "account-driven discovery without a user", method: "GET", path: "/.well-known/com.apple.remotemanagement", status: 403, reason: "com.apple.well-known.failed"},
		{name: "account-driven enrollment, not a signed MachineInfo", method: "POST", path: "/enroll/account-driven", body: []byte("<plist/>"), headers: []string{"Content-Type", "application/pkcs7-signature"}, status: 400, reason: "MachineInfo"},
		// Declarative device management (ddm).
		{name: "declaration not JSON", method: "PUT", path: "/v1/declarations/a", key: key, body: []byte("{"), headers: JSONCT, status: 400, reason: "JSON object"},
		{name: "declaration of no declaration type", method: "PUT", path: "/v1/declarations/a", key: key, body: []byte(`{"Type":"com.apple.wifi.managed","Payload":{}}`), headers: JSONCT, status: 400, reason: "not a declaration type"},
		{name: "declaration breaking its schema", method: "PUT", path: "/v1/declarations/a", key: key, body: []byte(`{"Type":"com.apple.configuration.management.test","Payload":{"Echo":1}}`), headers: JSONCT, status: 400, reason: "Echo"},
		{name: "declaration identifier not the path's", method: "PUT", path: "/v1/declarations/a", key: key, body: []byte(`{"Type":"com.apple.configuration.management.test","Identifier":"b","Payload":{"Echo":"x"}}`), headers: JSONCT, status: 400, reason: "not the path's"},
		{name: "declaration as a form", method: "PUT", path: "/v1/declarations/a", key: key, body: []byte("Type=x"), headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, reason: "not JSON"},
		{name: "declaration too large", method: "PUT", path: "/v1/declarations/a", key: key, body: bytes.Repeat([]byte(" "), 2<<20), headers: JSONCT, status: 413, reason: "larger than"},
		{name: "unknown declaration", method: "GET", path: "/v1/declarations/ghost", key: key, status: 404, reason: "ghost"},
		{name: "declarations without key", method: "GET", path: "/v1/declarations", status: 401, reason: "key"},
		{name: "declaration assignment without enrollments", method: "POST", path: "/v1/declaration-assignments", key: key, body: []byte(`{"identifiers":[]}`), headers: JSONCT, status: 400, reason: "enrollment_ids"},
		{name: "declaration assignment to an unknown enrollment", method: "POST", path: "/v1/declaration-assignments", key: key, body: []byte(`{"enrollment_ids":["ghost"],"identifiers":[]}`), headers: JSONCT, status: 404, reason: "ghost"},
		{name: "declarations of an unknown enrollment", method: "PUT", path: "/v1/enrollments/ghost/declarations", key: key, body: []byte(`{"identifiers":[]}`), headers: JSONCT, status: 404, reason: "ghost"},
		{name: "hosted data that does not exist", method: "GET", path: "/data/nope.txt", status: 404, reason: "nope.txt"},
		{name: "hosted profile under a name with a space", method: "GET", path: "/profiles/a%20b", status: 400, reason: "name"},
		{name: "Apple-hosted discovery lookup without the account", method: "GET", path: "/ade/discovery?user-identifier=", status: 400, reason: "user-identifier"},
		// Apple's escrow key unlock: mutual TLS with the push certificate, so
		// nothing over plain HTTP (the reason is in X-Mockmdm-Reason).
		{name: "escrow key unlock without TLS", method: "POST", path: "/deviceservicesworkers/escrowKeyUnlock?serial=X&productType=Y", body: []byte("orgName=o&guid=g&escrowKey=k"), headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 403, reason: "Forbidden"},
		// The dashboard.
		{name: "dashboard login with a wrong key", method: "POST", path: "/dashboard/login", body: []byte("key=wrong"), headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 403, reason: "form"},
		{name: "dashboard asset that does not exist", method: "GET", path: "/dashboard/static/nope.css", status: 404, reason: "nope.css"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock = time.Now().Add(tt.advance)
			rec := do(t, s, tt.method, tt.path, tt.key, tt.body, tt.headers...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tt.status, rec.Body.String())
			}
			if rec.Code >= 500 || rec.Code < 400 {
				t.Fatalf("not a 4xx: %d", rec.Code)
			}
			if body := rec.Body.String(); strings.TrimSpace(body) == "" || !strings.Contains(body, tt.reason) {
				t.Errorf("body %q does not say %q", body, tt.reason)
			}
		})
	}
	if len(tests) < 40 {
		t.Errorf("the hostile table has %d inputs; keep at least 40 across the public endpoints", len(tests))
	}
	_ = http.StatusOK
}
