package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/nanodep/albc"

	"github.com/mockmdm/mockmdm/ade"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestEscrowKeyUnlock: an MDM server turns off the organisation's
// Activation Lock the way Apple's "escrow key unlock" takes it — mutual
// TLS with its push certificate, serial and productType in the query,
// orgName, guid and the device's own bypass code in a form body — after
// locking the device through "Activation Lock a Device" with that code's
// hash (NanoDEP's albc, code we did not write). The transcript keeps the
// request without the code. Every way of getting it wrong is refused with
// a status and a reason, and leaves the lock in place.
func TestEscrowKeyUnlock(t *testing.T) {
	ctx := context.Background()
	srv := mdmtest.NewServer(t, mdmtest.WithTLS())
	dev := srv.NewDevice(device.WithModel(device.IPad), device.WithSupervised(true))
	srv.Enroll(dev)
	code := dev.ActivationLockBypassCode()
	bc, err := albc.NewFromCode(code)
	if err != nil {
		t.Fatalf("the device's bypass code %q: %v", code, err)
	}
	escrow, err := bc.Hash()
	if err != nil {
		t.Fatal(err)
	}
	abm := srv.Server().ABM()
	serial := dev.SerialNumber()
	if _, err := abm.BuyDevices(ctx, ade.Device{SerialNumber: serial, OS: "iPadOS"}, ade.Device{SerialNumber: "NOKEY001", OS: "iPadOS"}, ade.Device{SerialNumber: "FREE0001", OS: "iPadOS"}); err != nil {
		t.Fatal(err)
	}
	lock := func() {
		t.Helper()
		if st, err := abm.LockDevice(ctx, &ade.ActivationLockRequest{Device: serial, EscrowKey: &escrow}); err != nil || (st.ResponseStatus != ade.LockSuccess && st.ResponseStatus != ade.LockAlreadyLocked) {
			t.Fatalf("lock: %+v %v", st, err)
		}
	}
	locked := func() bool {
		t.Helper()
		l, err := abm.DeviceActivationLock(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		return l.Locked
	}
	lock()
	if st, err := abm.LockDevice(ctx, &ade.ActivationLockRequest{Device: "NOKEY001"}); err != nil || st.ResponseStatus != ade.LockSuccess {
		t.Fatalf("lock without a key: %+v %v", st, err)
	}

	pki := srv.Server().PKI()
	client := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: srv.Trust(), MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	}
	pushCert := &tls.Certificate{Certificate: [][]byte{pki.PushCert.Raw}, PrivateKey: pki.PushKey}
	otherCA, err := certs.NewCA("Someone Else", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oc, ok, err := otherCA.IssueSigner("Not the push certificate", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherCert := &tls.Certificate{Certificate: [][]byte{oc.Raw}, PrivateKey: ok}

	type request struct {
		client      *http.Client
		query, form string
		contentType string
	}
	good := request{client(pushCert), "serial=" + serial + "&productType=iPad13,18", url.Values{"orgName": {"Example School"}, "guid": {"it@example.org"}, "escrowKey": {code}}.Encode(), "application/x-www-form-urlencoded"}
	send := func(r request) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+ade.PathEscrowKeyUnlock+"?"+r.query, strings.NewReader(r.form))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", r.contentType)
		resp, err := r.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body) + " " + resp.Header.Get("X-Mockmdm-Reason")
	}
	with := func(edit func(*request)) request { r := good; edit(&r); return r }
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	other, _ := albc.New()
	otherCode, _ := other.Code()
	for _, tc := range []struct {
		name   string
		req    request
		status int
		want   string
	}{
		{"no client certificate", with(func(r *request) { r.client = client(nil) }), 403, "no TLS client certificate"},
		{"not the push certificate", with(func(r *request) { r.client = client(otherCert) }), 403, "is not this server's push certificate"},
		{"JSON body", with(func(r *request) { r.contentType = "application/json" }), 415, "form body"},
		{"serial missing", with(func(r *request) { r.query = "productType=iPad13,18" }), 400, "serial is missing from the query"},
		{"productType missing", with(func(r *request) { r.query = "serial=" + serial }), 400, "productType is missing"},
		{"serial twice", with(func(r *request) { r.query += "&serial=X" }), 400, "serial is given 2 times"},
		{"escrowKey in the query", with(func(r *request) { r.query += "&escrowKey=" + url.QueryEscape(code) }), 400, "escrowKey is in the query"},
		{"orgName missing", with(func(r *request) { r.form = form("guid", "g", "escrowKey", code) }), 400, "orgName is missing from the form body"},
		{"form does not parse", with(func(r *request) { r.form = "escrowKey=%zz" }), 400, "does not parse"},
		{"a parameter too long", with(func(r *request) { r.form = form("orgName", strings.Repeat("o", 300), "guid", "g", "escrowKey", code) }), 400, "at most 256"},
		{"the hash instead of the code", with(func(r *request) { r.form = form("orgName", "o", "guid", "g", "escrowKey", escrow) }), 400, "INVALID_ESCROW_KEY"},
		{"another bypass code", with(func(r *request) { r.form = form("orgName", "o", "guid", "g", "escrowKey", otherCode) }), 400, "ESCROW_KEY_MISMATCH"},
		{"a serial the organisation does not own", with(func(r *request) { r.query = "serial=NOSUCH01&productType=iPad13,18" }), 404, "does not own"},
		{"a device with no lock", with(func(r *request) { r.query = "serial=FREE0001&productType=iPad13,18" }), 400, "NOT_LOCKED"},
		{"a lock made without an escrow key", with(func(r *request) { r.query = "serial=NOKEY001&productType=iPad13,18" }), 400, "NO_ESCROW_KEY"},
		{"escrowKey's name percent-encoded", with(func(r *request) { r.form = "orgName=o&guid=g&%65scrowK%65y=" + url.QueryEscape(otherCode) }), 400, "ESCROW_KEY_MISMATCH"},
		{"a body over the limit", with(func(r *request) { r.form = form("orgName", strings.Repeat("o", 11<<20)) }), 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := send(tc.req)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %q, want %d saying %q", status, body, tc.status, tc.want)
			}
			if !locked() {
				t.Fatal("a refused request turned the lock off")
			}
		})
	}

	if status, body := send(good); status != http.StatusOK {
		t.Fatalf("escrow key unlock with the device's code: %d %s", status, body)
	}
	if locked() {
		t.Fatal("the device is still locked")
	}
	tr, err := srv.Client().Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, e := range tr {
		if e.MessageType == "escrow-key-unlock" {
			last = e.RequestPlist
			if strings.Contains(e.RequestPlist, url.QueryEscape(code)) || strings.Contains(e.RequestPlist, code) ||
				strings.Contains(e.RequestPlist, url.QueryEscape(otherCode)) || strings.Contains(e.RequestPlist, otherCode) {
				t.Errorf("the transcript keeps the bypass code: %q", e.RequestPlist)
			}
		}
	}
	if !strings.Contains(last, "orgName=Example+School") || !strings.Contains(last, "escrowKey=%28redacted%29") {
		t.Errorf("the transcript's record of the unlock: %q", last)
	}
	// Once unlocked, the same call finds nothing to turn off.
	if status, body := send(good); status != 400 || !strings.Contains(body, "NOT_LOCKED") {
		t.Errorf("a second unlock: %d %s", status, body)
	}

	// Over plain HTTP there is no client certificate to know the server by.
	plain := mdmtest.NewServer(t)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, plain.URL()+ade.PathEscrowKeyUnlock+"?"+good.query, strings.NewReader(good.form))
	req.Header.Set("Content-Type", good.contentType)
	resp, err := plain.Doer().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("X-Mockmdm-Reason"), "plain HTTP") {
		t.Errorf("over plain HTTP: %d %q", resp.StatusCode, resp.Header.Get("X-Mockmdm-Reason"))
	}
}
