package checkin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

const topic = "com.apple.mgmt.External.11111111-2222-3333-4444-555555555555"

var (
	caOnce          sync.Once
	testCA, otherCA *certs.CA
	sharedKey       *rsa.PrivateKey
	errCA           error
)

// testCAs makes the CAs once per package run: key generation is the slow part.
func testCAs(t testing.TB) (*certs.CA, *certs.CA) {
	t.Helper()
	caOnce.Do(func() {
		if testCA, errCA = certs.NewCA("checkin test CA", 2048, 24*time.Hour); errCA != nil {
			return
		}
		if otherCA, errCA = certs.NewCA("some other CA", 2048, 24*time.Hour); errCA != nil {
			return
		}
		sharedKey, errCA = rsa.GenerateKey(rand.Reader, 2048)
	})
	if errCA != nil {
		t.Fatal(errCA)
	}
	return testCA, otherCA
}

type fixture struct {
	st  store.Store
	svc *Service
	h   *Handler
	now time.Time
}

func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	return newFixtureOn(t, memory.New(), opts...)
}

// newFixtureOn builds the service and handler over st.
func newFixtureOn(t testing.TB, st store.Store, opts ...Option) *fixture {
	t.Helper()
	ca, _ := testCAs(t)
	f := &fixture{st: st, now: time.Now()}
	clock := func() time.Time { return f.now }
	f.svc = New(f.st, append([]Option{WithClock(clock)}, opts...)...)
	f.h = NewHandler(f.svc, certs.NewVerifier([]*x509.Certificate{ca.Cert}), f.st, WithHandlerClock(clock), WithMaxBody(64<<10))
	return f
}

// device is a test device: its IDs and identity.
type device struct {
	ids  mdm.Enrollment
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

func identity(t testing.TB, ca *certs.CA, cn string, validity time.Duration) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	testCAs(t)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, sharedKey)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueIdentity(csr, validity)
	if err != nil {
		t.Fatal(err)
	}
	return cert, sharedKey
}

func newDevice(t testing.TB, udid string) *device {
	ca, _ := testCAs(t)
	cert, key := identity(t, ca, udid, 20*time.Hour)
	return &device{ids: mdm.Enrollment{UDID: udid}, cert: cert, key: key}
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := plist.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) send(t testing.TB, h http.Handler, ct string, body []byte, d *device) *httptest.ResponseRecorder {
	t.Helper()
	sig := ""
	if d != nil && d.cert != nil {
		sig = mustSign(t, body, d)
	}
	return sendSigned(h, ct, body, sig)
}

// sendSigned PUTs body with an Mdm-Signature header (none when sig is empty).
func sendSigned(h http.Handler, ct string, body []byte, sig string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPut, "/mdm", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if sig != "" {
		req.Header.Set("Mdm-Signature", sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) checkin(t testing.TB, d *device, msg map[string]any) *httptest.ResponseRecorder {
	t.Helper()
	for k, v := range idMap(d.ids) {
		msg[k] = v
	}
	return f.send(t, f.h.Checkin(), CheckinContentType, encode(t, msg), d)
}

func idMap(e mdm.Enrollment) map[string]any {
	m := map[string]any{}
	for k, v := range map[string]string{"UDID": e.UDID, "UserID": e.UserID, "UserShortName": e.UserShortName,
		"EnrollmentID": e.EnrollmentID, "EnrollmentUserID": e.EnrollmentUserID} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

func (f *fixture) enroll(t testing.TB, d *device) {
	t.Helper()
	if rec := f.checkin(t, d, map[string]any{"MessageType": "Authenticate", "Topic": topic, "SerialNumber": "SER" + d.ids.UDID[:4]}); rec.Code != 200 {
		t.Fatalf("Authenticate: %d %s", rec.Code, rec.Body)
	}
	if rec := f.checkin(t, d, map[string]any{"MessageType": "TokenUpdate", "Topic": topic, "Token": []byte("0123456789abcdef0123456789abcdef"), "PushMagic": "magic"}); rec.Code != 200 {
		t.Fatalf("TokenUpdate: %d %s", rec.Code, rec.Body)
	}
}

// connect sends a command-endpoint message and returns the next command (nil for an empty body).
func (f *fixture) connect(t testing.TB, d *device, status, uuid string) *mdm.Command {
	t.Helper()
	msg := idMap(d.ids)
	msg["Status"] = status
	if uuid != "" {
		msg["CommandUUID"] = uuid
	}
	rec := f.send(t, f.h.Connect(), CommandContentType, encode(t, msg), d)
	if rec.Code != 200 {
		t.Fatalf("connect %s %s: %d %s", status, uuid, rec.Code, rec.Body)
	}
	if rec.Body.Len() == 0 {
		return nil
	}
	c, err := mdm.DecodeCommand(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("server sent a command that does not decode: %v\n%s", err, rec.Body)
	}
	return c
}

func (f *fixture) enqueue(t testing.TB, uuid, rt string, ids ...string) {
	t.Helper()
	c, err := mdm.CommandFromPlist([]byte(fmt.Sprintf(`<?xml version="1.0"?><plist version="1.0"><dict><key>CommandUUID</key><string>%s</string><key>Command</key><dict><key>RequestType</key><string>%s</string></dict></dict></plist>`, uuid, rt)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Enqueue(context.Background(), &store.Command{UUID: c.CommandUUID, RequestType: c.RequestType, Raw: c.Raw, CreatedAt: f.now}, ids...); err != nil {
		t.Fatal(err)
	}
}

func TestEnrollAndCommandCycle(t *testing.T) {
	f := newFixture(t)
	d := newDevice(t, "udid-0001")
	f.enroll(t, d)
	ctx := context.Background()
	e, err := f.st.GetEnrollment(ctx, "udid-0001")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Enrolled || e.Type != string(mdm.Device) || e.CertHash != certs.Hash(d.cert) || e.SerialNumber != "SERudid" || len(e.PushToken) != 32 {
		t.Errorf("enrollment record: %+v", e)
	}

	if c := f.connect(t, d, "Idle", ""); c != nil {
		t.Fatalf("empty queue sent %+v", c)
	}
	f.enqueue(t, "C1", "DeviceInformation", "udid-0001")
	waitCh, cancel := f.svc.Results().Subscribe("C1")
	defer cancel()
	c := f.connect(t, d, "Idle", "")
	if c == nil || c.CommandUUID != "C1" || c.RequestType != "DeviceInformation" {
		t.Fatalf("got %+v", c)
	}
	if next := f.connect(t, d, "Acknowledged", "C1"); next != nil {
		t.Fatalf("queue should be empty, got %+v", next)
	}
	select {
	case <-waitCh:
	default:
		t.Error("the final result was not announced on the hub")
	}
	items, err := f.st.CommandItems(ctx, "C1")
	if err != nil || len(items) != 1 || items[0].Status != store.CommandAcknowledged || len(items[0].Result) == 0 {
		t.Fatalf("stored result: %+v %v", items, err)
	}
	tr, err := f.st.Transcript(ctx, "udid-0001", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range tr {
		kinds = append(kinds, e.MessageType)
	}
	if got := strings.Join(kinds, ","); got != "Authenticate,TokenUpdate,Idle,Idle,Acknowledged" {
		t.Errorf("transcript = %s", got)
	}
	if !strings.Contains(tr[3].Note, "sent command C1") || len(tr[3].Response) == 0 {
		t.Errorf("transcript entry for the command: %+v", tr[3])
	}
}

func TestNotNowHeldUntilNextIdle(t *testing.T) {
	f := newFixture(t)
	d := newDevice(t, "udid-notnow")
	f.enroll(t, d)
	f.enqueue(t, "A", "InstallProfile", "udid-notnow")
	f.enqueue(t, "B", "ProfileList", "udid-notnow")

	if c := f.connect(t, d, "Idle", ""); c == nil || c.CommandUUID != "A" {
		t.Fatalf("first command: %+v", c)
	}
	if c := f.connect(t, d, "NotNow", "A"); c == nil || c.CommandUUID != "B" {
		t.Fatalf("after NotNow A, want B, got %+v", c)
	}
	if c := f.connect(t, d, "Acknowledged", "B"); c != nil {
		t.Fatalf("A must not come back in the same session, got %+v", c)
	}
	items, _ := f.st.QueueItems(context.Background(), "udid-notnow")
	if len(items) != 1 || items[0].CommandUUID != "A" || items[0].Status != store.CommandNotNow {
		t.Fatalf("queue after session: %+v", items)
	}
	if c := f.connect(t, d, "Idle", ""); c == nil || c.CommandUUID != "A" {
		t.Fatalf("A must be offered again after Idle, got %+v", c)
	}
	if c := f.connect(t, d, "Error", "A"); c != nil {
		t.Fatalf("queue should be empty, got %+v", c)
	}
	items, _ = f.st.CommandItems(context.Background(), "A")
	if items[0].Status != store.CommandError {
		t.Errorf("A status %s", items[0].Status)
	}
}

func TestIdentityBinding(t *testing.T) {
	f := newFixture(t)
	a := newDevice(t, "udid-a")
	b := newDevice(t, "udid-b")
	f.enroll(t, a)
	f.enroll(t, b)

	// b's certificate speaking for a's enrollment.
	spoof := &device{ids: a.ids, cert: b.cert, key: b.key}
	rec := f.send(t, f.h.Connect(), CommandContentType, encode(t, map[string]any{"UDID": "udid-a", "Status": "Idle"}), spoof)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "bound to identity certificate") {
		t.Fatalf("spoofed connect: %d %s", rec.Code, rec.Body)
	}
	// a's certificate re-used to Authenticate a new enrollment.
	reuse := &device{ids: mdm.Enrollment{UDID: "udid-c"}, cert: a.cert, key: a.key}
	rec = f.checkin(t, reuse, map[string]any{"MessageType": "Authenticate", "Topic": topic})
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "cert re-use not permitted") {
		t.Fatalf("re-used cert Authenticate: %d %s", rec.Code, rec.Body)
	}
	// The refusal is in the transcript, with the reason.
	tr, _ := f.st.Transcript(context.Background(), "udid-a", 0, 0)
	last := tr[len(tr)-1]
	if last.Status != http.StatusForbidden || !strings.Contains(last.Note, "bound to identity certificate") {
		t.Errorf("transcript of refusal: %+v", last)
	}
	// Re-enrollment of the same device with the same certificate is allowed.
	f.enroll(t, a)
}

func TestAuthenticateClearsQueue(t *testing.T) {
	f := newFixture(t)
	d := newDevice(t, "udid-reauth")
	f.enroll(t, d)
	f.enqueue(t, "OLD", "ProfileList", "udid-reauth")
	f.enroll(t, d)
	if c := f.connect(t, d, "Idle", ""); c != nil {
		t.Fatalf("queue survived Authenticate: %+v", c)
	}
}

func TestUserChannelAndOtherMessages(t *testing.T) {
	f := newFixture(t, WithUserAuthenticate(UserAuthDecline))
	d := newDevice(t, "udid-mac")
	f.enroll(t, d)
	user := &device{ids: mdm.Enrollment{UDID: "udid-mac", UserID: "U-501", UserShortName: "qa"}, cert: d.cert, key: d.key}

	rec := f.checkin(t, user, map[string]any{"MessageType": "UserAuthenticate"})
	if rec.Code != http.StatusGone {
		t.Errorf("UserAuthenticate default: %d", rec.Code)
	}
	rec = f.checkin(t, user, map[string]any{"MessageType": "TokenUpdate", "Topic": topic, "Token": []byte("t"), "PushMagic": "m", "UserLongName": "QA User"})
	if rec.Code != 200 {
		t.Fatalf("user TokenUpdate: %d %s", rec.Code, rec.Body)
	}
	ue, err := f.st.GetEnrollment(context.Background(), "udid-mac:U-501")
	if err != nil || ue.Type != string(mdm.User) || ue.DeviceID != "udid-mac" || !ue.Enrolled {
		t.Fatalf("user channel record: %+v %v", ue, err)
	}
	f.enqueue(t, "U1", "ProfileList", "udid-mac:U-501")
	if c := f.connect(t, user, "Idle", ""); c == nil || c.CommandUUID != "U1" {
		t.Fatalf("user channel command: %+v", c)
	}
	if c := f.connect(t, d, "Idle", ""); c != nil {
		t.Fatalf("device channel got the user channel's command: %+v", c)
	}

	rec = f.checkin(t, d, map[string]any{"MessageType": "SetBootstrapToken", "BootstrapToken": []byte("bootstrap")})
	if rec.Code != 200 {
		t.Fatalf("SetBootstrapToken: %d %s", rec.Code, rec.Body)
	}
	rec = f.checkin(t, d, map[string]any{"MessageType": "GetBootstrapToken"})
	var got mdm.BootstrapTokenResponse
	if err := plist.Unmarshal(rec.Body.Bytes(), &got); err != nil || string(got.BootstrapToken) != "bootstrap" {
		t.Fatalf("GetBootstrapToken: %d %s %v", rec.Code, rec.Body, err)
	}
	rec = f.checkin(t, d, map[string]any{"MessageType": "DeclarativeManagement", "Endpoint": "tokens"})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "not supported by mockmdm yet") {
		t.Errorf("DeclarativeManagement: %d %s", rec.Code, rec.Body)
	}
	rec = f.checkin(t, d, map[string]any{"MessageType": "GetToken", "TokenServiceType": "com.apple.maid"})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "not supported") {
		t.Errorf("GetToken: %d %s", rec.Code, rec.Body)
	}
	rec = f.checkin(t, d, map[string]any{"MessageType": "CheckOut", "Topic": topic})
	if rec.Code != 200 {
		t.Fatalf("CheckOut: %d", rec.Code)
	}
	msg := encode(t, map[string]any{"UDID": "udid-mac", "Status": "Idle"})
	if rec := f.send(t, f.h.Connect(), CommandContentType, msg, d); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "checked out") {
		t.Errorf("connect after CheckOut: %d %s", rec.Code, rec.Body)
	}
}

func TestUserAuthenticateAllow(t *testing.T) {
	f := newFixture(t, WithUserAuthenticate(UserAuthAllow))
	d := newDevice(t, "udid-ua")
	f.enroll(t, d)
	user := &device{ids: mdm.Enrollment{UDID: "udid-ua", UserID: "U-1"}, cert: d.cert, key: d.key}
	rec := f.checkin(t, user, map[string]any{"MessageType": "UserAuthenticate"})
	var ch struct{ DigestChallenge *string }
	if rec.Code != 200 || plist.Unmarshal(rec.Body.Bytes(), &ch) != nil || ch.DigestChallenge == nil {
		t.Fatalf("round 1: %d %s", rec.Code, rec.Body)
	}
	rec = f.checkin(t, user, map[string]any{"MessageType": "UserAuthenticate", "DigestResponse": "x"})
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("round 2: %d %s", rec.Code, rec.Body)
	}
}

func TestMutualTLSIdentity(t *testing.T) {
	f := newFixture(t)
	d := newDevice(t, "udid-mtls")
	body := encode(t, map[string]any{"MessageType": "Authenticate", "UDID": "udid-mtls", "Topic": topic})
	req := httptest.NewRequest(http.MethodPut, "/checkin", bytes.NewReader(body))
	req.Header.Set("Content-Type", CheckinContentType)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{d.cert}}
	rec := httptest.NewRecorder()
	f.h.Checkin().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("mTLS Authenticate: %d %s", rec.Code, rec.Body)
	}
}

func TestHostileRequests(t *testing.T) {
	f := newFixture(t)
	good := newDevice(t, "udid-good")
	f.enroll(t, good)
	_, other := testCAs(t)
	foreignCert, foreignKey := identity(t, other, "foreign", time.Hour)
	expiredCert, expiredKey := identity(t, testCA, "expired", time.Minute)
	idle := encode(t, map[string]any{"UDID": "udid-good", "Status": "Idle"})
	auth := func(udid string) []byte {
		return encode(t, map[string]any{"MessageType": "Authenticate", "UDID": udid, "Topic": topic})
	}

	type req struct {
		name    string
		method  string
		handler http.Handler
		ct      string
		body    []byte
		signer  *device
		sig     string // overrides the computed signature
		clock   time.Duration
		status  int
		reason  string
	}
	tests := []req{
		{name: "GET not allowed", method: "GET", handler: f.h.Connect(), ct: CommandContentType, body: idle, signer: good, status: 405, reason: "PUT"},
		{name: "malformed plist", handler: f.h.Connect(), ct: CommandContentType, body: []byte("<plist><dict><key>"), signer: good, status: 400, reason: "not a valid property list"},
		{name: "empty body", handler: f.h.Checkin(), ct: CheckinContentType, body: nil, signer: good, status: 400, reason: "empty body"},
		{name: "json content type on checkin", handler: f.h.Checkin(), ct: "application/json", body: auth("x"), signer: good, status: 415, reason: CheckinContentType},
		{name: "form content type on connect", handler: f.h.Connect(), ct: "application/x-www-form-urlencoded", body: idle, signer: good, status: 415, reason: "property lists"},
		{name: "oversized body", handler: f.h.Connect(), ct: CommandContentType, body: bytes.Repeat([]byte("a"), 70<<10), signer: good, status: 413, reason: "limit"},
		{name: "unknown message type", handler: f.h.Checkin(), ct: CheckinContentType, body: encode(t, map[string]any{"MessageType": "Hello", "UDID": "udid-good"}), signer: good, status: 400, reason: "unknown check-in MessageType"},
		{name: "unknown status", handler: f.h.Connect(), ct: CommandContentType, body: encode(t, map[string]any{"UDID": "udid-good", "Status": "Done"}), signer: good, status: 400, reason: "Status"},
		{name: "missing signature", handler: f.h.Connect(), ct: CommandContentType, body: idle, status: 400, reason: "no device identity"},
		{name: "signature not base64", handler: f.h.Connect(), ct: CommandContentType, body: idle, signer: good, sig: "%%%not-base64%%%", status: 400, reason: "Mdm-Signature"},
		{name: "signature over another body", handler: f.h.Connect(), ct: CommandContentType, body: idle, signer: good, sig: mustSign(t, []byte("other body"), good), status: 400, reason: "Mdm-Signature"},
		{name: "certificate from another CA", handler: f.h.Checkin(), ct: CheckinContentType, body: auth("udid-foreign"), signer: &device{cert: foreignCert, key: foreignKey}, status: 400, reason: "test CA"},
		{name: "expired identity", handler: f.h.Checkin(), ct: CheckinContentType, body: auth("udid-expired"), signer: &device{cert: expiredCert, key: expiredKey}, clock: 2 * time.Hour, status: 400, reason: "expired"},
		{name: "signing time skew", handler: f.h.Connect(), ct: CommandContentType, body: idle, signer: good, clock: 3 * time.Hour, status: 400, reason: "server clock"},
		{name: "unknown enrollment", handler: f.h.Connect(), ct: CommandContentType, body: encode(t, map[string]any{"UDID": "udid-nobody", "Status": "Idle"}), signer: good, status: 403, reason: "unknown enrollment"},
		{name: "token update before authenticate", handler: f.h.Checkin(), ct: CheckinContentType, body: encode(t, map[string]any{"MessageType": "TokenUpdate", "UDID": "udid-new", "Topic": topic, "Token": []byte("x"), "PushMagic": "m"}), signer: good, status: 403, reason: "never received its Authenticate"},
		{name: "no identifiers", handler: f.h.Connect(), ct: CommandContentType, body: encode(t, map[string]any{"Status": "Idle"}), signer: good, status: 400, reason: "neither UDID"},
		{name: "wrong type token", handler: f.h.Checkin(), ct: CheckinContentType, body: encode(t, map[string]any{"MessageType": "TokenUpdate", "UDID": "udid-good", "Topic": topic, "Token": "abc", "PushMagic": "m"}), signer: good, status: 400, reason: "Token: must be <data>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.now = time.Now().Add(tt.clock)
			defer func() { f.now = time.Now() }()
			method := tt.method
			if method == "" {
				method = http.MethodPut
			}
			r := httptest.NewRequest(method, "/mdm", bytes.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.ct)
			switch {
			case tt.sig != "":
				r.Header.Set("Mdm-Signature", tt.sig)
			case tt.signer != nil:
				r.Header.Set("Mdm-Signature", mustSign(t, tt.body, tt.signer))
			}
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, r)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.reason) {
				t.Errorf("got %d %q, want %d mentioning %q", rec.Code, rec.Body.String(), tt.status, tt.reason)
			}
		})
	}
}

func mustSign(t testing.TB, body []byte, d *device) string {
	t.Helper()
	sig, err := certs.SignMdmSignature(body, d.cert, d.key)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestUserEnrollmentKeptApart enrolls a User Enrollment (EnrollmentID, no
// UDID) next to a device enrollment and checks their records and queues
// stay apart.
func TestUserEnrollmentKeptApart(t *testing.T) {
	f := newFixture(t)
	dev := newDevice(t, "same-id-0001")
	f.enroll(t, dev)
	ue := newDevice(t, "unused")
	ue.ids = mdm.Enrollment{EnrollmentID: "ue-enrollment-0001"}
	ue.cert, ue.key = identity(t, testCA, "ue", time.Hour)
	if rec := f.checkin(t, ue, map[string]any{"MessageType": "Authenticate", "Topic": topic}); rec.Code != 200 {
		t.Fatalf("UE Authenticate: %d %s", rec.Code, rec.Body)
	}
	if rec := f.checkin(t, ue, map[string]any{"MessageType": "TokenUpdate", "Topic": topic, "Token": []byte("t"), "PushMagic": "m"}); rec.Code != 200 {
		t.Fatalf("UE TokenUpdate: %d %s", rec.Code, rec.Body)
	}
	e, err := f.st.GetEnrollment(context.Background(), "ue-enrollment-0001")
	if err != nil || e.Type != string(mdm.UserEnrollmentDevice) || e.UDID != "" || e.EnrollmentID != "ue-enrollment-0001" || !e.Enrolled {
		t.Fatalf("UE record: %+v %v", e, err)
	}
	f.enqueue(t, "UE1", "ProfileList", "ue-enrollment-0001")
	if c := f.connect(t, dev, "Idle", ""); c != nil {
		t.Fatalf("the device enrollment got the UE's command: %+v", c)
	}
	if c := f.connect(t, ue, "Idle", ""); c == nil || c.CommandUUID != "UE1" {
		t.Fatalf("UE command: %+v", c)
	}
}

// TestCommandContentTypes: the types a plist can come as are accepted as
// sent and with parameters or another case; the rest are refused.
func TestCommandContentTypes(t *testing.T) {
	for ct, want := range map[string]bool{
		"": true, "  ": true, "application/xml": true, "text/xml": true, CommandContentType: true,
		"application/xml; charset=utf-8": true, "Application/XML": true, " text/plain ": true,
		"application/octet-stream;x=1": true, "image/png": false, "application/json": false,
		"application/xml;;": false, "application/xml; charset=": false, "xml": false,
	} {
		if got := commandContentTypeOK(ct); got != want {
			t.Errorf("commandContentTypeOK(%q) = %v, want %v", ct, got, want)
		}
	}
}
