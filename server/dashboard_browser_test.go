package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/store/memory"
)

// findBrowser returns a Chromium or Chrome to drive, or "" when there is none.
func findBrowser() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// serveLoopback starts s's real HTTP server on a 127.0.0.1 listener and
// stops it, gracefully, when the test ends.
func serveLoopback(t *testing.T) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	s, err := New(st, sharedPKI(t), base)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, nil, ln, 2*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, base
}

// TestDashboardInBrowser drives the dashboard in a real headless Chromium
// against the real server over a loopback socket: log in through the form,
// watch a newly enrolled virtual iPad appear without a reload, open it,
// queue DeviceInformation with its button, see it queued and then answered,
// and keep a screenshot.
func TestDashboardInBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome found (/usr/bin/chromium, chromium, google-chrome on PATH): install one (apt-get install chromium) to run the dashboard browser test")
	}
	s, base := serveLoopback(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // tests often run as root, where Chromium's sandbox will not start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1400),
	)...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return v
	}

	// Log in through the form: the dashboard redirects there first.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/dashboard"),
		chromedp.WaitVisible(css(`#key`)),
	); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(loc, "/dashboard/login") {
		t.Fatalf("not sent to the login form: %s %v", loc, err)
	}
	// A wrong key first: the form again, with the message.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(css(`#key`), "wrong-key"),
		chromedp.Click(css(`#login`)),
		chromedp.WaitVisible(css(`#login-error`)),
	); err != nil {
		t.Fatalf("wrong key: %v", err)
	}
	if msg := text(`#login-error`); !strings.Contains(msg, "not the API key") {
		t.Fatalf("wrong-key message: %q", msg)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(css(`#key`), s.PKI().APIKey),
		chromedp.Click(css(`#login`)),
		chromedp.WaitVisible(css(`#enrollments`)),
	); err != nil {
		t.Fatalf("logging in: %v", err)
	}
	// A marker that a reload or navigation would wipe out.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__notReloaded = true`)); err != nil {
		t.Fatal(err)
	}

	// Enroll a virtual iPad over the socket, as a device would.
	trust := x509.NewCertPool()
	trust.AddCert(s.PKI().CA.Cert)
	dev := device.New(&http.Client{Timeout: 30 * time.Second},
		device.WithSeed(7), device.WithTrust(trust), device.WithAllowHTTP(true),
		device.WithModel(device.IPad), device.WithName("QA iPad <b>7</b>"))
	res, err := dev.EnrollFromURL(ctx, s.URL(PathEnroll))
	if err != nil || !res.Enrolled {
		t.Fatalf("enrolling the virtual iPad: %v %+v", err, res)
	}
	row := `tr.enrollment[data-id="` + dev.UDID() + `"]`

	// It appears on the open list by itself.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(row))); err != nil {
		t.Fatalf("the new enrollment did not appear: %v", err)
	}
	if same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__notReloaded === true`)); err != nil || !same {
		t.Fatalf("the page was reloaded (%v): the row should appear through the refresh script", err)
	}
	rowText := text(row)
	for _, want := range []string{dev.UDID(), "enrolled", dev.SerialNumber(), "iPad13,18", "18.1"} {
		if !strings.Contains(rowText, want) {
			t.Errorf("row %q lacks %q", rowText, want)
		}
	}

	// Open the device and press DeviceInformation.
	if err := chromedp.Do(ctx,
		chromedp.Click(css(row+` a`)),
		chromedp.WaitVisible(css(`#cmd-DeviceInformation`)),
		chromedp.Click(css(`#cmd-DeviceInformation`)),
		chromedp.WaitVisible(css(`#queued`)),
	); err != nil {
		t.Fatalf("queuing DeviceInformation: %v", err)
	}
	queued := text(`#queued`)
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`#queue tr.queued`), "data-uuid"))
	uuid := attr.Value
	if err != nil || !strings.Contains(queued, "DeviceInformation") || uuid == "" || !strings.Contains(queued, uuid) {
		t.Fatalf("queued banner %q, queue row UUID %q (%v)", queued, uuid, err)
	}
	items, err := s.Store().QueueItems(ctx, dev.UDID())
	if err != nil || len(items) != 1 || items[0].CommandUUID != uuid || items[0].RequestType != "DeviceInformation" {
		t.Fatalf("store queue: %+v %v", items, err)
	}

	// The device connects and answers; the result shows up by itself.
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatalf("device connect: %v", err)
	}
	result := `details.result[data-uuid="` + uuid + `"]`
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(css(result)),
		chromedp.Click(css(result+` summary`)),
	); err != nil {
		t.Fatalf("the result did not appear: %v", err)
	}
	if resultText := text(result); !strings.Contains(resultText, "Acknowledged") || !strings.Contains(resultText, "QueryResponses") {
		t.Errorf("result text %q", resultText)
	}
	// The queue is empty again, and the transcript (on a reload) shows the exchange.
	if err := chromedp.Do(ctx, chromedp.WaitNotPresent(css(`#queue tr.queued`))); err != nil {
		t.Fatalf("the answered command stayed in the queue: %v", err)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(shot) == 0 || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(shot))
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
		t.Fatalf("screenshot does not decode as a PNG of a page: %v", err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-device.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%dx%d)", path, img.Bounds().Dx(), img.Bounds().Dy())
	// MOCKMDM_SCREENSHOT_DIR keeps a copy past the test, for a person to look at.
	if dir := os.Getenv("MOCKMDM_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			kept := filepath.Join(dir, "dashboard-device.png")
			if err := os.WriteFile(kept, shot, 0o644); err == nil {
				t.Logf("screenshot kept at %s", kept)
			}
		}
	}
}

// TestDashboardRoutesNeedSession: every dashboard route the router treats
// as public either needs the session cookie (a redirect to the login form,
// or 401/403) or is one of the pages open on purpose.
func TestDashboardRoutesNeedSession(t *testing.T) {
	s := newTestServer(t)
	open := map[string]bool{
		"GET /dashboard/login": true, "POST /dashboard/login": true, // the form itself (a POST without its token is 403)
		"GET /dashboard/enroll": true, "GET /dashboard/enroll/qr.png": true, // public enrollment URLs only
		"GET /dashboard/static/{file}": true,
	}
	seen := 0
	for _, r := range s.Routes() {
		if !strings.HasPrefix(r.Path, "/dashboard") {
			continue
		}
		seen++
		key := r.Method + " " + r.Path
		path := strings.NewReplacer("{id}", "x", "{file}", "style.css").Replace(r.Path)
		rec := do(t, s, r.Method, path, s.PKI().APIKey, []byte(url.Values{"command": {"SecurityInfo"}}.Encode()),
			"Content-Type", "application/x-www-form-urlencoded")
		switch {
		case open[key]:
			if r.Method == http.MethodPost && rec.Code != http.StatusForbidden {
				t.Errorf("%s without a CSRF token: %d, want 403", key, rec.Code)
			}
		case r.Method == http.MethodGet:
			// Even with the API key as a bearer token: the dashboard wants its cookie.
			if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/dashboard/login") {
				t.Errorf("%s without a session: %d %q, want a redirect to the login form", key, rec.Code, rec.Header().Get("Location"))
			}
		default:
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("%s without a session: %d, want 401", key, rec.Code)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("only %d dashboard routes in the table", seen)
	}
}
