package ade

import (
	"bytes"
	"context"
	base64pkg "encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/nanodep/client"
	"github.com/micromdm/nanodep/godep"
	"github.com/micromdm/nanodep/tokenpki"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var sharedKP = sync.OnceValues(func() (*certs.TokenKeyPair, error) { return certs.NewTokenKeyPair("", 0) })

type harness struct {
	svc   *Service
	srv   *httptest.Server
	clk   *clock
	trans *memory.Store
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	kp, err := sharedKP()
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	clk := &clock{t: time.Now()}
	opts = append([]Option{WithClock(clk.now), WithTokenKeyPair(kp), WithTranscript(st)}, opts...)
	svc, err := New(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range svc.Routes() {
		mux.Handle(r.Method+" "+r.Path, r.Handler)
	}
	for _, r := range svc.ActivationRoutes() {
		mux.Handle(r.Method+" /ade"+r.Path, r.Handler)
	}
	for _, r := range svc.AdminRoutes() {
		mux.Handle(r.Method+" /v1/ade"+r.Path, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &harness{svc: svc, srv: srv, clk: clk, trans: st}
}

// depStore is NanoDEP's view of one DEP name: its tokens and base URL.
type depStore struct {
	tokens *client.OAuth1Tokens
	base   string
}

func (d *depStore) RetrieveAuthTokens(context.Context, string) (*client.OAuth1Tokens, error) {
	return d.tokens, nil
}
func (d *depStore) RetrieveConfig(context.Context, string) (*client.Config, error) {
	return &client.Config{BaseURL: d.base}, nil
}

// TestNanoDEPClient: NanoDEP's godep client — a DEP client nobody here
// wrote — gets a token we issued for ITS certificate, decrypts it with
// tokenpki, and then authenticates, fetches, syncs, defines, assigns and
// reads back a profile against the simulated API, changing only its base URL.
func TestNanoDEPClient(t *testing.T) {
	// The client stamps OAuth timestamps with the real clock; the window is
	// wide so that moving the test clock past the session lifetime is allowed.
	h := newHarness(t, WithTimestampWindow(2*time.Hour))
	ctx := context.Background()

	// Devices bought into the organisation: 250, so fetch pages.
	var buy []Device
	for i := range 250 {
		buy = append(buy, Device{SerialNumber: fmt.Sprintf("C02X%05d", i), Model: "iPad Pro", OS: "iPadOS", Color: "space gray"})
	}
	if _, err := h.svc.BuyDevices(ctx, buy...); err != nil {
		t.Fatal(err)
	}

	dep := nanoDEPClient(t, h)
	const name = "mockmdm"
	acct, err := dep.AccountDetail(ctx, name)
	if err != nil {
		t.Fatalf("account: %v", err)
	}
	if acct.ServerUuid == nil || *acct.ServerUuid == "" || acct.OrgName == nil {
		t.Errorf("account %+v", acct)
	}

	// Fetch in pages of 100 until more_to_follow is false.
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		opts := []godep.DeviceRequestOption{godep.WithLimit(100)}
		if cursor != "" {
			opts = append(opts, godep.WithCursor(cursor))
		}
		r, err := dep.FetchDevices(ctx, name, opts...)
		if err != nil {
			t.Fatalf("fetch page %d: %v", pages, err)
		}
		pages++
		for _, d := range r.Devices {
			if seen[d.SerialNumber] {
				t.Errorf("%s fetched twice", d.SerialNumber)
			}
			seen[d.SerialNumber] = true
			if d.Model != "iPad Pro" || d.Os == nil || *d.Os != "iPadOS" {
				t.Errorf("device %+v", d)
			}
		}
		cursor = r.Cursor
		if !r.MoreToFollow {
			break
		}
	}
	if len(seen) != 250 || pages != 3 {
		t.Fatalf("fetched %d devices in %d pages, want 250 in 3", len(seen), pages)
	}
	if _, err := dep.FetchDevices(ctx, name, godep.WithCursor(cursor)); !godep.IsCursorExhausted(err) {
		t.Errorf("fetch with a finished cursor: %v, want EXHAUSTED_CURSOR", err)
	}

	// Define a profile for two devices, assign it to a third, read it back.
	tr, sup, rem := true, true, false
	pname, url := "Contoso ADE", "https://mdm.contoso.test/enroll"
	def, err := dep.DefineProfile(ctx, name, &godep.ProfileJson{
		ProfileName: &pname, Url: &url, IsSupervised: &sup, IsMdmRemovable: rem, IsMandatory: &tr,
		AwaitDeviceConfigured: &tr, SkipSetupItems: []string{"AppleID", "Location", "Siri"},
		Devices: []string{"C02X00000", "C02X00001", "NOPE0000"},
	})
	if err != nil {
		t.Fatalf("define: %v", err)
	}
	if def.ProfileUuid == nil || def.Devices["C02X00000"] != "SUCCESS" || def.Devices["NOPE0000"] != "NOT_ACCESSIBLE" {
		t.Fatalf("define answer %+v", def)
	}
	as, err := dep.AssignProfile(ctx, name, *def.ProfileUuid, "C02X00002", "GHOST")
	if err != nil {
		t.Fatalf("assign: %v", err)
	}
	if as.Devices["C02X00002"] != "SUCCESS" || as.Devices["GHOST"] != "NOT_ACCESSIBLE" {
		t.Errorf("assign answer %+v", as)
	}
	got, err := dep.GetProfile(ctx, name, *def.ProfileUuid)
	if err != nil {
		t.Fatalf("get profile: %v", err)
	}
	if *got.ProfileName != pname || *got.Url != url || got.IsMdmRemovable || len(got.SkipSetupItems) != 3 {
		t.Errorf("profile read back %+v", got)
	}

	// Sync sees the three assignments as modifications.
	sr, err := dep.SyncDevices(ctx, name, godep.WithCursor(cursor))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	mods := map[string]bool{}
	for _, d := range sr.Devices {
		if d.OpType == nil || *d.OpType != "modified" || d.ProfileUuid == nil || *d.ProfileUuid != *def.ProfileUuid {
			t.Errorf("sync device %+v", d)
		}
		mods[d.SerialNumber] = true
	}
	if len(mods) != 3 || sr.MoreToFollow {
		t.Errorf("sync: %v more=%v", mods, sr.MoreToFollow)
	}

	// Details, remove, disown: per-serial answers.
	det, err := dep.DeviceDetails(ctx, name, "C02X00000", "UNKNOWN1")
	if err != nil {
		t.Fatal(err)
	}
	if s := det.Devices["C02X00000"].ResponseStatus; s == nil || *s != "SUCCESS" {
		t.Errorf("details known: %+v", det.Devices["C02X00000"])
	}
	if s := det.Devices["UNKNOWN1"].ResponseStatus; s == nil || *s != "NOT_FOUND" {
		t.Errorf("details unknown: %+v", det.Devices["UNKNOWN1"])
	}
	if rm, err := dep.RemoveProfile(ctx, name, "C02X00001"); err != nil || rm.Devices["C02X00001"] != "SUCCESS" {
		t.Errorf("remove: %+v %v", rm, err)
	}
	if dis, err := dep.DisownDevices(ctx, name, "C02X00249"); err != nil || dis.Devices["C02X00249"] != "SUCCESS" {
		t.Errorf("disown: %+v %v", dis, err)
	}
	// A serial with no profile left, or disowned already, is not accessible.
	if rm, err := dep.RemoveProfile(ctx, name, "C02X00001"); err != nil || rm.Devices["C02X00001"] != "NOT_ACCESSIBLE" {
		t.Errorf("remove again: %+v %v", rm, err)
	}
	if dis, err := dep.DisownDevices(ctx, name, "C02X00249"); err != nil || dis.Devices["C02X00249"] != "NOT_ACCESSIBLE" {
		t.Errorf("disown again: %+v %v", dis, err)
	}
	sr2, err := dep.SyncDevices(ctx, name, godep.WithCursor(sr.Cursor))
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]string{}
	for _, d := range sr2.Devices {
		ops[d.SerialNumber] = string(*d.OpType)
	}
	if ops["C02X00001"] != "modified" || ops["C02X00249"] != "deleted" || len(ops) != 2 {
		t.Errorf("second sync ops %v", ops)
	}

	// Session expiry: NanoDEP's transport re-authenticates on the 401 by itself.
	h.clk.add(31 * time.Minute)
	if _, err := dep.AccountDetail(ctx, name); err != nil {
		t.Errorf("after session expiry: %v", err)
	}
	// Restart with the depsim quirk: 403 FORBIDDEN, which NanoDEP also handles.
	if err := h.svc.SetQuirks(ctx, Quirks{RestartInvalidatesSessions: true}); err != nil {
		t.Fatal(err)
	}
	h.svc.Restart()
	if _, err := dep.AccountDetail(ctx, name); err != nil {
		t.Errorf("after restart: %v", err)
	}

	// The activation service tells a device its profile.
	var ap Profile
	code := postJSON(t, h.srv.URL+"/ade/activation", `{"serial_number":"C02X00002"}`, &ap)
	if code != 200 || ap.URL != url || ap.ProfileUUID != *def.ProfileUuid || ap.IsSupervised == nil || !*ap.IsSupervised {
		t.Errorf("activation: %d %+v", code, ap)
	}

	// Every exchange is in the transcript.
	entries, err := h.trans.Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.MessageType]++
	}
	for _, k := range []string{"session", "account", "fetch", "sync", "define-profile", "assign-profile", "get-profile", "activation"} {
		if kinds[k] == 0 {
			t.Errorf("no transcript entry for %s (have %v)", k, kinds)
		}
	}
}

func certPEM(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + wrap64(der) + "-----END CERTIFICATE-----\n")
}

func wrap64(der []byte) string {
	var b strings.Builder
	enc := encodeStd(der)
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	return b.String() + enc + "\n"
}

// nanoDEPClient is NanoDEP's godep client holding a token this simulated ABM
// issued for NanoDEP's own certificate (over the admin API), decrypted with
// NanoDEP's tokenpki: a DEP client nobody here wrote, pointed at h.
func nanoDEPClient(t *testing.T, h *harness) *godep.Client {
	t.Helper()
	key, cert, err := tokenpki.SelfSignedRSAKeypair("nanodep", 30)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(h.srv.URL+"/v1/ade/tokens", "application/x-pem-file", bytes.NewReader(certPEM(cert.Raw)))
	if err != nil {
		t.Fatal(err)
	}
	p7m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("issue token: %d %s", resp.StatusCode, p7m)
	}
	js, err := tokenpki.DecryptTokenJSON(p7m, cert, key)
	if err != nil {
		t.Fatalf("tokenpki: %v", err)
	}
	var toks client.OAuth1Tokens
	if err := json.Unmarshal(js, &toks); err != nil || !toks.Valid() {
		t.Fatalf("tokens %s: %v", js, err)
	}
	return godep.NewClient(&depStore{tokens: &toks, base: h.srv.URL + "/"})
}

func postJSON(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

var _ = errors.New
var _ = store.ErrNotFound

func encodeStd(b []byte) string { return base64Std.EncodeToString(b) }

var base64Std = base64pkg.StdEncoding
