package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/apiview"
	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// pages holds the parsed templates: one set per page (each with the shared
// layout), so that every page defines its own "content".
type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"path": url.PathEscape,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ms": func(d time.Duration) int64 { return d.Milliseconds() },
}

func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range []string{"login", "list", "device", "enroll", "status", "error"} {
		p.byName[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return p
}

// page is what the layout needs besides the page's own data.
type page struct {
	Title    string
	LoggedIn bool
	CSRF     string
	Refresh  time.Duration
	Data     any
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 instead of half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	d.renderTemplate(w, r, status, name, "layout.html", title, data)
}

func (d *Dashboard) renderTemplate(w http.ResponseWriter, r *http.Request, status int, name, tmpl, title string, data any) {
	sess := sessionOf(r)
	pg := page{Title: title, LoggedIn: sess != "", Refresh: d.refresh, Data: data}
	if sess != "" {
		pg.CSRF = d.csrfToken(sess)
	}
	var buf bytes.Buffer
	if err := d.pages.byName[name].ExecuteTemplate(&buf, tmpl, pg); err != nil {
		d.log.ErrorContext(r.Context(), "dashboard template failed", "page", name, "err", err)
		httperr.WriteText(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	// Scripts and styles come only from the dashboard's own files; the QR
	// code is an image from the same origin.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows a page that says what went wrong, with its status.
func (d *Dashboard) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d.render(w, r, status, "error", http.StatusText(status), struct {
		Status  int
		Message string
	}{status, msg})
}

// renderErr shows err: its reason for a 4xx, a generic sentence for a 5xx
// (whose detail goes to the log).
func (d *Dashboard) renderErr(w http.ResponseWriter, r *http.Request, err error) {
	status := httperr.StatusOf(err)
	if status >= 500 {
		d.log.ErrorContext(r.Context(), "dashboard request failed", "path", r.URL.Path, "err", err)
	}
	d.renderError(w, r, status, httperr.ReasonOf(err))
}

// row is one enrollment in the list.
type row struct {
	api.Enrollment
	QueueDepth int
	Newest     time.Time
}

func (d *Dashboard) rows(r *http.Request) ([]row, error) {
	list, err := d.store.ListEnrollments(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]row, 0, len(list))
	for _, e := range list {
		items, err := d.store.QueueItems(r.Context(), e.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		rw := row{Enrollment: apiview.Enrollment(e), QueueDepth: len(items), Newest: e.AuthenticatedAt}
		if e.EnrolledAt.After(rw.Newest) {
			rw.Newest = e.EnrolledAt
		}
		out = append(out, rw)
	}
	// Newest first: a device enrolled a moment ago is at the top.
	slices.SortStableFunc(out, func(a, b row) int {
		if c := b.Newest.Compare(a.Newest); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (d *Dashboard) serveList(w http.ResponseWriter, r *http.Request) {
	rows, err := d.rows(r)
	if err != nil {
		d.renderErr(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "list", "Enrollments", rows)
}

// serveListRows is the list's table body alone, which the page's script
// fetches to refresh itself.
func (d *Dashboard) serveListRows(w http.ResponseWriter, r *http.Request) {
	rows, err := d.rows(r)
	if err != nil {
		d.renderErr(w, r, err)
		return
	}
	d.renderTemplate(w, r, http.StatusOK, "list", "rows", "", rows)
}

// commandButton is one command a button queues.
type commandButton struct {
	Name    string
	Label   string
	Confirm string
	// build makes the request's command part.
	build func(req *api.EnqueueRequest)
}

func typed(js string) func(*api.EnqueueRequest) {
	return func(req *api.EnqueueRequest) { req.Command = json.RawMessage(js) }
}

// commands are the buttons on a device page. CertificateList has no typed
// JSON form, so it goes as a whole command plist.
var commands = []commandButton{
	{Name: "DeviceInformation", Label: "Device information", build: typed(`{"RequestType":"DeviceInformation","Queries":["DeviceName","Model","ModelName","ProductName","SerialNumber","OSVersion","BuildVersion","UDID","IMEI","MEID","BatteryLevel","DeviceCapacity","AvailableDeviceCapacity","IsSupervised","WiFiMAC","BluetoothMAC"]}`)},
	{Name: "ProfileList", Label: "Profile list", build: typed(`{"RequestType":"ProfileList"}`)},
	{Name: "InstalledApplicationList", Label: "Installed apps", build: typed(`{"RequestType":"InstalledApplicationList"}`)},
	{Name: "SecurityInfo", Label: "Security info", build: typed(`{"RequestType":"SecurityInfo"}`)},
	{Name: "CertificateList", Label: "Certificate list", build: func(req *api.EnqueueRequest) {
		req.RawPlist = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>CertificateList</string></dict></dict></plist>
`
	}},
	{Name: "DeclarativeManagement", Label: "Sync declarations", build: typed(`{"RequestType":"DeclarativeManagement"}`)},
	{Name: "RestartDevice", Label: "Restart", Confirm: "Restart this device?", build: typed(`{"RequestType":"RestartDevice"}`)},
	{Name: "DeviceLock", Label: "Lock", Confirm: "Lock this device?", build: typed(`{"RequestType":"DeviceLock"}`)},
	{Name: "EraseDevice", Label: "Erase…", Confirm: "Erase this device? A real device loses all its data and leaves management.", build: typed(`{"RequestType":"EraseDevice"}`)},
}

func commandByName(name string) (commandButton, bool) {
	for _, c := range commands {
		if c.Name == name {
			return c, true
		}
	}
	return commandButton{}, false
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// deviceView is a device page.
type deviceView struct {
	E          api.Enrollment
	Queue      []*store.QueueItem
	Results    []resultView
	Transcript []entryView
	// Omitted counts the older transcript entries not shown.
	Omitted  int
	Commands []commandButton
	// Queued is the command a button just queued (from ?queued=).
	Queued string
	// Error is why a button's command was refused.
	Error string
	// Declarations is the enrollment's declarative management, each
	// declaration with what the device last reported about it; nil when
	// the dashboard has no declarations source.
	Declarations *declarationsView
}

// declarationsView is a device page's declarative management section.
type declarationsView struct {
	Token      string
	ReportedAt time.Time
	Rows       []declarationRow
	// Errors name the status items the device said it could not report.
	Errors []string
}

type declarationRow struct {
	Kind, Identifier, Type, ServerToken string
	// Reported: the device's last status report names this declaration;
	// Current: with the server token the server now has.
	Reported, Current, Active bool
	Valid, Reasons            string
}

type resultView struct {
	CommandUUID string
	RequestType string
	Status      string
	At          time.Time
	Result      body
}

type entryView struct {
	*store.TranscriptEntry
	Req, Resp body
	Sig       signature
	// Accepted: the server answered the device with a 2xx.
	Accepted bool
}

// loadDevice reads what a device page shows; a missing enrollment is a 404
// that says where to look.
func (d *Dashboard) loadDevice(r *http.Request, withTranscript bool) (*deviceView, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	e, err := d.store.GetEnrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, httperr.New(http.StatusNotFound, "No enrollment with ID %q. The enrollment list shows every device the server knows.", truncate(id, 100))
	}
	if err != nil {
		return nil, err
	}
	v := &deviceView{E: apiview.Enrollment(e)}
	if d.commander != nil && !e.CheckedOut {
		v.Commands = commands
	}
	if v.Queue, err = d.store.QueueItems(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	entries, err := d.store.Transcript(ctx, id, 0, 0)
	if err != nil {
		return nil, err
	}
	v.Results, err = d.results(r, id, entries)
	if err != nil {
		return nil, err
	}
	if d.declarations != nil {
		if v.Declarations, err = d.loadDeclarations(r, id); err != nil {
			return nil, err
		}
	}
	if withTranscript {
		if len(entries) > d.maxEntries {
			v.Omitted = len(entries) - d.maxEntries
			entries = entries[len(entries)-d.maxEntries:]
		}
		for i := len(entries) - 1; i >= 0; i-- { // newest first
			en := entries[i]
			ev := entryView{TranscriptEntry: en, Req: showBody(en.Request), Resp: showBody(en.Response),
				Accepted: en.Status >= 200 && en.Status < 300}
			if d.signatureOf != nil {
				ev.Sig = explainSignature(d.signatureOf(en), en.Request)
			}
			v.Transcript = append(v.Transcript, ev)
		}
	}
	return v, nil
}

// results lists the device's command answers, newest first, one per
// command: the transcript has each answer the device sent, the queue the
// command's type and where it stands now.
func (d *Dashboard) results(r *http.Request, id string, entries []*store.TranscriptEntry) ([]resultView, error) {
	seen := map[string]bool{}
	var out []resultView
	for i := len(entries) - 1; i >= 0 && len(out) < d.maxEntries; i-- {
		en := entries[i]
		if en.Kind != "command" || en.CommandUUID == "" || seen[en.CommandUUID] {
			continue
		}
		seen[en.CommandUUID] = true
		rv := resultView{CommandUUID: en.CommandUUID, Status: en.MessageType, At: en.Time, Result: showBody(en.Request)}
		items, err := d.store.CommandItems(r.Context(), en.CommandUUID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		for _, it := range items {
			if it.EnrollmentID == id {
				rv.RequestType, rv.Status = it.RequestType, it.Status
				if !it.UpdatedAt.IsZero() {
					rv.At = it.UpdatedAt
				}
			}
		}
		out = append(out, rv)
	}
	return out, nil
}

func (d *Dashboard) serveDevice(w http.ResponseWriter, r *http.Request) {
	v, err := d.loadDevice(r, true)
	if err != nil {
		d.renderErr(w, r, err)
		return
	}
	if q := r.URL.Query().Get("queued"); q != "" {
		v.Queued = truncate(q, 200)
	}
	d.render(w, r, http.StatusOK, "device", deviceTitle(v.E), v)
}

// serveDeviceLive is the device page's queue and results alone, which the
// page's script fetches to refresh itself.
func (d *Dashboard) serveDeviceLive(w http.ResponseWriter, r *http.Request) {
	v, err := d.loadDevice(r, false)
	if err != nil {
		d.renderErr(w, r, err)
		return
	}
	d.renderTemplate(w, r, http.StatusOK, "device", "live", "", v)
}

func deviceTitle(e api.Enrollment) string {
	for _, s := range []string{e.DeviceName, e.SerialNumber, e.ID} {
		if s != "" {
			return truncate(s, 80)
		}
	}
	return "Device"
}

// serveCommand queues the command a button names, then sends the browser
// back to the device page (303), which shows it queued. A name that is not
// one of the buttons is a 400 that lists them; a refusal from the
// Commander is shown on the device page with its status.
func (d *Dashboard) serveCommand(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	name := r.PostForm.Get("command")
	btn, ok := commandByName(name)
	if !ok {
		msg := "Unknown command " + quote(name) + ": the dashboard queues " + commandNames() + ". Other commands go through POST /v1/commands."
		if name == "" {
			msg = "No command named: the dashboard queues " + commandNames() + "."
		}
		d.renderError(w, r, http.StatusBadRequest, msg)
		return
	}
	if d.commander == nil {
		d.renderError(w, r, http.StatusServiceUnavailable, "This dashboard was started without a way to queue commands; use POST /v1/commands.")
		return
	}
	req := &api.EnqueueRequest{EnrollmentIDs: []string{id}}
	btn.build(req)
	resp, err := d.commander.Enqueue(r.Context(), req)
	if err != nil {
		status := httperr.StatusOf(err)
		if status >= 500 {
			d.renderErr(w, r, err)
			return
		}
		v, lerr := d.loadDevice(r, true)
		if lerr != nil {
			d.renderErr(w, r, lerr)
			return
		}
		v.Error = btn.Name + " was not queued: " + httperr.ReasonOf(err)
		d.render(w, r, status, "device", deviceTitle(v.E), v)
		return
	}
	d.log.InfoContext(r.Context(), "command queued from the dashboard", "enrollment_id", id,
		"command_uuid", resp.CommandUUID, "request_type", resp.RequestType)
	http.Redirect(w, r, PathPrefix+"/enrollments/"+url.PathEscape(id)+"?queued="+url.QueryEscape(resp.RequestType+" "+resp.CommandUUID), http.StatusSeeOther)
}

// enrollView is the enrollment page.
type enrollView struct {
	Info api.ServerInfo
	// QR is the enrollment URL as a PNG data URI (empty when there is no URL).
	QR template.URL
}

func (d *Dashboard) serveEnroll(w http.ResponseWriter, r *http.Request) {
	info := d.info()
	v := enrollView{Info: info}
	if info.EnrollmentURL != "" {
		png, err := qrcode.Encode(info.EnrollmentURL, qrcode.Medium, 320)
		if err != nil {
			d.renderErr(w, r, err)
			return
		}
		v.QR = template.URL("data:image/png;base64," + base64Std(png))
	}
	d.render(w, r, http.StatusOK, "enroll", "Enroll a device", v)
}

// serveQR is the enrollment URL's QR code as a PNG, for a page or a
// printout elsewhere.
func (d *Dashboard) serveQR(w http.ResponseWriter, r *http.Request) {
	u := d.info().EnrollmentURL
	if u == "" {
		httperr.WriteText(w, httperr.New(http.StatusNotFound, "this server has no enrollment URL to encode"))
		return
	}
	png, err := qrcode.Encode(u, qrcode.Medium, 320)
	if err != nil {
		d.log.ErrorContext(r.Context(), "QR code failed", "err", err)
		httperr.WriteText(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(png)
}

type statusView struct {
	Push      *api.PushCertStatus
	PushError string
	Token     *ADETokenStatus
	TokenErr  string
	Info      api.ServerInfo
}

func (d *Dashboard) serveStatus(w http.ResponseWriter, r *http.Request) {
	v := statusView{Info: d.info()}
	if d.pushStatus != nil {
		p, err := d.pushStatus(r.Context())
		if err != nil {
			d.log.WarnContext(r.Context(), "push certificate status failed", "err", err)
			v.PushError = httperr.ReasonOf(err)
		}
		v.Push = p
	}
	if d.tokenStatus != nil {
		t, err := d.tokenStatus(r.Context())
		if err != nil {
			d.log.WarnContext(r.Context(), "ADE token status failed", "err", err)
			v.TokenErr = httperr.ReasonOf(err)
		}
		v.Token = t
	}
	d.render(w, r, http.StatusOK, "status", "Status", v)
}

// serveStatic serves the embedded CSS and script.
func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(d.static, name)
	if err != nil || strings.Contains(name, "/") {
		httperr.WriteText(w, httperr.New(http.StatusNotFound, "no dashboard file %q", truncate(name, 80)))
		return
	}
	switch path.Ext(name) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// loadDeclarations joins the enrollment's declarations with the status its
// device last reported (management.declarations, by identifier).
func (d *Dashboard) loadDeclarations(r *http.Request, id string) (*declarationsView, error) {
	ed, err := d.declarations(r.Context(), id)
	if err != nil {
		return nil, err
	}
	v := &declarationsView{Token: ed.DeclarationsToken}
	reported := map[string]map[string]any{}
	if st := ed.Status; st != nil {
		v.ReportedAt = st.ReceivedAt
		mgmt, _ := st.StatusItems["management"].(map[string]any)
		decls, _ := mgmt["declarations"].(map[string]any)
		for _, list := range decls {
			items, _ := list.([]any)
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					if ident, _ := m["identifier"].(string); ident != "" {
						reported[ident] = m
					}
				}
			}
		}
		for _, e := range st.Errors {
			if m, ok := e.(map[string]any); ok {
				item, _ := m["StatusItem"].(string)
				v.Errors = append(v.Errors, item)
			}
		}
	}
	for _, decl := range ed.Declarations {
		row := declarationRow{Identifier: decl.Identifier, Type: decl.Type, ServerToken: decl.ServerToken}
		if parts := strings.SplitN(decl.Type, ".", 4); len(parts) >= 3 {
			row.Kind = parts[2] // com.apple.<kind>.…
		}
		if m, ok := reported[decl.Identifier]; ok {
			row.Reported = true
			row.Current = m["server-token"] == decl.ServerToken
			row.Active, _ = m["active"].(bool)
			row.Valid, _ = m["valid"].(string)
			if rs, ok := m["reasons"].([]any); ok {
				var parts []string
				for _, rr := range rs {
					if rm, ok := rr.(map[string]any); ok {
						code, _ := rm["code"].(string)
						desc, _ := rm["description"].(string)
						parts = append(parts, strings.TrimSpace(code+" "+desc))
					}
				}
				row.Reasons = strings.Join(parts, "; ")
			}
		}
		v.Rows = append(v.Rows, row)
	}
	return v, nil
}
