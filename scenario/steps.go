package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
)

// action is what a parsed step does when run.
type action interface {
	summary() string
	run(ctx context.Context, r *run) error
}

// Mismatch is a step that ran but did not see what the scenario expected.
type Mismatch struct {
	What     string
	Expected string
	Seen     string
}

func (m *Mismatch) Error() string {
	return fmt.Sprintf("%s: expected %s, saw %s", m.What, m.Expected, m.Seen)
}

// Longest waits a step may ask for.
const (
	maxWithin = 10 * time.Minute
	maxDelay  = 5 * time.Minute
)

// ---- device ----------------------------------------------------------------

type deviceAction struct {
	name       string
	model      device.Model
	osVersion  string
	build      string
	deviceName string
	seed       int64
	seedSet    bool
	ordinal    int64
	supervised bool
	beh        *behaviourAction
}

var models = map[string]device.Model{"ipad": device.IPad, "iphone": device.IPhone, "mac": device.Mac}

func (p *parser) deviceStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, "model", "os", "build", "name", "seed", "serial", "supervised", "behaviours"); err != nil {
		return nil, err
	}
	a := &deviceAction{model: device.IPad}
	var err error
	if a.name, err = p.name(m[KindDevice].value, field); err != nil {
		return nil, err
	}
	if p.devices[a.name] {
		return nil, p.errf(m[KindDevice].value, field, "a device %q was already created", a.name)
	}
	if f, ok := m["model"]; ok {
		s, err := p.str(f.value, sibling(field, "model"))
		if err != nil {
			return nil, err
		}
		md, ok := models[strings.ToLower(s)]
		if !ok {
			return nil, p.errf(f.value, sibling(field, "model"), "%q: use iPad, iPhone or Mac", clip(s))
		}
		a.model = md
	}
	a.osVersion, a.build = a.model.OSVersion, a.model.BuildVersion
	if f, ok := m["os"]; ok {
		if a.osVersion, err = p.str(f.value, sibling(field, "os")); err != nil {
			return nil, err
		}
	}
	if f, ok := m["build"]; ok {
		if a.build, err = p.str(f.value, sibling(field, "build")); err != nil {
			return nil, err
		}
	}
	if f, ok := m["name"]; ok {
		if a.deviceName, err = p.str(f.value, sibling(field, "name")); err != nil {
			return nil, err
		}
	}
	if f, ok := m["seed"]; ok {
		if a.seed, err = p.integer(f.value, sibling(field, "seed"), 0, math.MaxInt64/2); err != nil {
			return nil, err
		}
		a.seedSet = true
	}
	if f, ok := m["serial"]; ok {
		// device.Device derives its serial number from its seed and has no
		// option to choose one; refusing beats silently ignoring it.
		return nil, p.errf(f.key, sibling(field, "serial"), "a virtual device's serial number derives from its seed and cannot be chosen; set seed instead (the run report shows the serial)")
	}
	if f, ok := m["supervised"]; ok {
		if a.supervised, err = p.boolean(f.value, sibling(field, "supervised")); err != nil {
			return nil, err
		}
	}
	if f, ok := m["behaviours"]; ok {
		bm, _, err := p.mapping(f.value, sibling(field, "behaviours"), behaviourFields...)
		if err != nil {
			return nil, err
		}
		if a.beh, err = p.behaviours(bm, sibling(field, "behaviours")); err != nil {
			return nil, err
		}
		a.beh.device = a.name
	}
	a.ordinal = int64(p.nDevices)
	p.nDevices++
	p.devices[a.name] = true
	return a, nil
}

func (a *deviceAction) summary() string {
	return fmt.Sprintf("create %s %q", a.model.ProductName, a.name)
}

func (a *deviceAction) run(ctx context.Context, r *run) error {
	seed := r.sc.Seed + a.ordinal
	if a.seedSet {
		seed = a.seed
	}
	opts := []device.Option{device.WithSeed(seed), device.WithModel(a.model), device.WithOS(a.osVersion, a.build),
		device.WithSupervised(a.supervised), device.WithLogger(r.log)}
	if r.target.Trust != nil {
		opts = append(opts, device.WithTrust(r.target.Trust))
	}
	if r.now != nil {
		opts = append(opts, device.WithClock(r.now))
	}
	if a.deviceName != "" {
		opts = append(opts, device.WithName(a.deviceName))
	}
	opts = append(opts, r.target.DeviceOptions...)
	dev := device.New(r.target.HTTP, opts...)
	r.devices[a.name] = &devState{dev: dev}
	r.notef("%s: serial %s, UDID %s, seed %d", a.name, dev.SerialNumber(), dev.UDID(), seed)
	if a.beh != nil {
		return a.beh.run(ctx, r)
	}
	return nil
}

// ---- enroll ----------------------------------------------------------------

type enrollAction struct {
	device string
	path   string
	params map[string]string
	want   *errorWant
}

func (p *parser) enrollStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, "path", "with", "error"); err != nil {
		return nil, err
	}
	a := &enrollAction{}
	var err error
	if a.device, err = p.deviceRef(m[KindEnroll].value, field); err != nil {
		return nil, err
	}
	f, ok := m["path"]
	if !ok {
		return nil, p.errf(m[KindEnroll].key, sibling(field, "path"), "missing: name the enrollment path (known: %s)", strings.Join(Paths(), ", "))
	}
	if a.path, err = p.str(f.value, sibling(field, "path")); err != nil {
		return nil, err
	}
	if lookupPath(a.path) == nil {
		return nil, p.errf(deref(f.value), sibling(field, "path"), "unknown enrollment path %q (known: %s)", clip(a.path), strings.Join(Paths(), ", "))
	}
	if a.params, err = p.withParams(m, field, "enrollment path "+a.path, func() ([]Param, bool) { return PathParams(a.path) }); err != nil {
		return nil, err
	}
	a.want, err = p.optErrorWant(m, field)
	return a, err
}

func (a *enrollAction) summary() string {
	s := fmt.Sprintf("enroll %q through %s", a.device, a.path)
	if a.want != nil {
		s += ", expecting it to fail (" + a.want.String() + ")"
	}
	return s
}

func (a *enrollAction) run(ctx context.Context, r *run) error {
	ds := r.devices[a.device]
	info, err := r.serverInfo(ctx)
	if err != nil {
		return err
	}
	id, err := lookupPath(a.path)(ctx, &PathEnv{Device: ds.dev, Client: r.target.Client, Info: info, HTTP: r.target.HTTP, Params: a.params,
		APIKey: r.target.APIKey, BaseURL: r.target.BaseURL, AppleDeviceCA: r.target.AppleDeviceCA})
	if a.want != nil {
		return a.want.check("enrollment of "+a.device, err)
	}
	if err != nil {
		return fmt.Errorf("enroll %s through %s: %w", a.device, a.path, err)
	}
	ds.enrollmentID = id
	r.notef("%s: enrolled as %s", a.device, id)
	return nil
}

// errorWant is an expected failure: an HTTP status the server answered
// the device with, "any", or text the error must contain.
type errorWant struct {
	status int
	text   string
}

func (w *errorWant) String() string {
	switch {
	case w.status != 0:
		return "HTTP " + strconv.Itoa(w.status)
	case w.text == "any":
		return "any error"
	}
	return fmt.Sprintf("an error containing %q", w.text)
}

func (p *parser) errorWant(n *yaml.Node, field string) (*errorWant, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, err := p.integer(n, field, 100, 599)
		return &errorWant{status: int(v)}, err
	}
	s, err := p.str(n, field)
	if err != nil {
		return nil, p.errf(n, field, "want an HTTP status (503), any, or text the error contains; got %s", describe(n))
	}
	return &errorWant{text: s}, nil
}

// optErrorWant reads a step's optional error field (nil when absent).
func (p *parser) optErrorWant(m map[string]kv, field string) (*errorWant, error) {
	f, ok := m["error"]
	if !ok {
		return nil, nil
	}
	return p.errorWant(f.value, sibling(field, "error"))
}

// check compares an outcome with the expected failure.
func (w *errorWant) check(what string, err error) error {
	if err == nil {
		return &Mismatch{What: what, Expected: w.String(), Seen: "success"}
	}
	switch {
	case w.status != 0:
		var se *device.ServerError
		if errors.As(err, &se) && se.StatusCode == w.status {
			return nil
		}
		var ee *device.EnrollError
		if errors.As(err, &ee) && ee.StatusCode == w.status {
			return nil
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == w.status {
			return nil
		}
		return &Mismatch{What: what, Expected: w.String(), Seen: err.Error()}
	case w.text == "any":
		return nil
	case strings.Contains(err.Error(), w.text):
		return nil
	}
	return &Mismatch{What: what, Expected: w.String(), Seen: err.Error()}
}

// ---- command ---------------------------------------------------------------

type commandAction struct {
	devices []string
	// user sends the command to that user's channel on each device (a
	// Shared iPad's or a Mac's) instead of its device channel.
	user    string
	command json.RawMessage
	raw     string
	rt      string
	as      string
	push    *bool
	uuid    string
	// encrypt asks the server to encrypt an InstallProfile's profile to
	// the device's identity (POST /v1/commands "encrypt_profile").
	encrypt bool
}

func (p *parser) commandStep(m map[string]kv, field string, index int) (action, error) {
	if err := p.fieldsOf(m, field, "device", "devices", "user", "as", "push", "uuid", "encrypt_profile"); err != nil {
		return nil, err
	}
	a := &commandAction{}
	body := m[KindCommand]
	if bn := deref(body.value); bn.Kind == yaml.ScalarNode && bn.ShortTag() == "!!str" && looksLikePlist(bn.Value) {
		// A whole command plist, for RequestTypes with no typed JSON form.
		a.raw, a.rt = bn.Value, "raw plist"
	} else {
		cm, _, err := p.mapping(body.value, field)
		if err != nil {
			return nil, p.errf(deref(body.value), field, "want the Command dictionary as a mapping with RequestType (what POST /v1/commands takes as command), or a whole command plist as text; got %s", describe(deref(body.value)))
		}
		rt, ok := cm["RequestType"]
		if !ok {
			return nil, p.errf(body.key, join(field, "RequestType"), "missing: the command needs a RequestType, e.g. DeviceInformation")
		}
		if a.rt, err = p.str(rt.value, join(field, "RequestType")); err != nil {
			return nil, err
		}
		v, err := p.value(body.value, field, 0)
		if err != nil {
			return nil, err
		}
		if a.command, err = json.Marshal(v); err != nil {
			return nil, p.errf(body.value, field, "cannot be sent as JSON: %v", err)
		}
	}
	var err error
	d, hasOne := m["device"]
	ds, hasMany := m["devices"]
	switch {
	case hasOne && hasMany:
		return nil, p.errf(ds.key, sibling(field, "devices"), "give device or devices, not both")
	case hasOne:
		name, err := p.deviceRef(d.value, sibling(field, "device"))
		if err != nil {
			return nil, err
		}
		a.devices = []string{name}
	case hasMany:
		list := deref(ds.value)
		if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
			return nil, p.errf(list, sibling(field, "devices"), "want a non-empty list of device names, got %s", describe(list))
		}
		for i, c := range list.Content {
			name, err := p.deviceRef(c, fmt.Sprintf("%s[%d]", sibling(field, "devices"), i))
			if err != nil {
				return nil, err
			}
			a.devices = append(a.devices, name)
		}
	default:
		return nil, p.errf(body.key, sibling(field, "device"), "missing: name the device (device: NAME) or devices the command is for")
	}
	if f, ok := m["as"]; ok {
		if a.as, err = p.name(f.value, sibling(field, "as")); err != nil {
			return nil, err
		}
		if p.commands[a.as] {
			return nil, p.errf(f.value, sibling(field, "as"), "a command is already called %q", a.as)
		}
		p.commands[a.as] = true
	}
	if f, ok := m["push"]; ok {
		b, err := p.boolean(f.value, sibling(field, "push"))
		if err != nil {
			return nil, err
		}
		a.push = &b
	}
	if f, ok := m["uuid"]; ok {
		if a.uuid, err = p.str(f.value, sibling(field, "uuid")); err != nil {
			return nil, err
		}
	}
	if f, ok := m["user"]; ok {
		if a.user, err = p.str(f.value, sibling(field, "user")); err != nil {
			return nil, err
		}
	}
	if f, ok := m["encrypt_profile"]; ok {
		if a.encrypt, err = p.boolean(f.value, sibling(field, "encrypt_profile")); err != nil {
			return nil, err
		}
		switch {
		case a.encrypt && a.rt != "InstallProfile":
			return nil, p.errf(f.value, sibling(field, "encrypt_profile"), "is for InstallProfile; this command is %s", a.rt)
		case a.encrypt && len(a.devices) != 1:
			return nil, p.errf(f.value, sibling(field, "encrypt_profile"), "needs one device, not %d: each device's profile is encrypted to its own identity, so give one command step per device", len(a.devices))
		}
	}
	return a, nil
}

func (a *commandAction) summary() string {
	s := fmt.Sprintf("queue %s for %s", a.rt, strings.Join(a.devices, ", "))
	if a.user != "" {
		s += " (user " + a.user + ")"
	}
	if a.encrypt {
		s += ", encrypted to its identity"
	}
	if a.as != "" {
		s += " as " + a.as
	}
	return s
}

func (a *commandAction) run(ctx context.Context, r *run) error {
	req := api.EnqueueRequest{Command: a.command, RawPlist: a.raw, CommandUUID: a.uuid, Push: a.push, EncryptProfile: a.encrypt}
	for _, name := range a.devices {
		id, err := r.enrollmentID(name)
		if err != nil {
			return err
		}
		if a.user != "" {
			// The server knows a user's channel as UDID:account on a
			// Shared iPad and UDID:GUID on a Mac; the device knows which.
			id = ""
			for _, u := range r.devices[name].dev.Users() {
				if u.ShortName == a.user {
					id = u.EnrollmentID
				}
			}
			if id == "" {
				return fmt.Errorf("%s has no channel for user %q: log the user in first (login step)", name, a.user)
			}
		}
		req.EnrollmentIDs = append(req.EnrollmentIDs, id)
	}
	resp, err := r.target.Client.Enqueue(ctx, req)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", a.rt, err)
	}
	if a.as != "" {
		r.commands[a.as] = resp.CommandUUID
	}
	r.notef("%s queued as %s", resp.RequestType, resp.CommandUUID)
	return nil
}

// ---- connect ---------------------------------------------------------------

type connectAction struct {
	device string
	times  int
	want   *errorWant
	// user connects the signed-in Shared iPad user's channel.
	user bool
}

func (p *parser) connectStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, "times", "error", "user"); err != nil {
		return nil, err
	}
	a := &connectAction{times: 1}
	if f, ok := m["user"]; ok {
		b, err := p.boolean(f.value, sibling(field, "user"))
		if err != nil {
			return nil, err
		}
		a.user = b
	}
	var err error
	if a.device, err = p.deviceRef(m[KindConnect].value, field); err != nil {
		return nil, err
	}
	if f, ok := m["times"]; ok {
		n, err := p.integer(f.value, sibling(field, "times"), 1, 1000)
		if err != nil {
			return nil, err
		}
		a.times = int(n)
	}
	a.want, err = p.optErrorWant(m, field)
	return a, err
}

func (a *connectAction) summary() string {
	s := fmt.Sprintf("%s connects", a.device)
	if a.user {
		s = fmt.Sprintf("%s's signed-in user connects", a.device)
	}
	if a.times > 1 {
		s += fmt.Sprintf(" %d times", a.times)
	}
	if a.want != nil {
		s += ", expecting " + a.want.String()
	}
	return s
}

func (a *connectAction) run(ctx context.Context, r *run) error {
	dev := r.devices[a.device].dev
	for i := 1; i <= a.times; i++ {
		connect := dev.Connect
		if a.user {
			connect = dev.ConnectUser
		}
		res, err := connect(ctx)
		what := fmt.Sprintf("connect %d of %d", i, a.times)
		if a.want != nil {
			if err := a.want.check(what, err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for _, c := range res.Commands {
			r.notef("%s answered %s %s: %s", a.device, c.RequestType, c.CommandUUID, c.Status)
		}
	}
	return nil
}

// ---- login, logout ---------------------------------------------------------

type loginAction struct {
	device, user, name string
	want               *errorWant
}

func (p *parser) loginStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, "user", "name", "error"); err != nil {
		return nil, err
	}
	a := &loginAction{}
	var err error
	if a.device, err = p.deviceRef(m[KindLogin].value, field); err != nil {
		return nil, err
	}
	f, ok := m["user"]
	if !ok {
		return nil, p.errf(m[KindLogin].key, sibling(field, "user"), "missing: the Managed Apple Account that signs in (user: student@example.org)")
	}
	if a.user, err = p.str(f.value, sibling(field, "user")); err != nil {
		return nil, err
	}
	if f, ok := m["name"]; ok {
		if a.name, err = p.str(f.value, sibling(field, "name")); err != nil {
			return nil, err
		}
	}
	a.want, err = p.optErrorWant(m, field)
	return a, err
}

func (a *loginAction) summary() string {
	return fmt.Sprintf("%s signs in on %s", a.user, a.device)
}

func (a *loginAction) run(ctx context.Context, r *run) error {
	err := r.devices[a.device].dev.LogIn(ctx, a.user, a.name)
	if a.want != nil {
		return a.want.check("login", err)
	}
	if err != nil {
		return fmt.Errorf("login %s: %w", a.user, err)
	}
	r.notef("%s signed in on %s", a.user, a.device)
	return nil
}

type logoutAction struct{ device string }

func (p *parser) logoutStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field); err != nil {
		return nil, err
	}
	name, err := p.deviceRef(m[KindLogout].value, field)
	return &logoutAction{device: name}, err
}

func (a *logoutAction) summary() string { return fmt.Sprintf("the user of %s logs out", a.device) }

func (a *logoutAction) run(_ context.Context, r *run) error {
	r.devices[a.device].dev.LogOut()
	return nil
}

// ---- listen ----------------------------------------------------------------

type listenAction struct{ device string }

func (p *parser) listenStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field); err != nil {
		return nil, err
	}
	name, err := p.deviceRef(m[KindListen].value, field)
	return &listenAction{device: name}, err
}

func (a *listenAction) summary() string {
	return fmt.Sprintf("%s listens for pushes", a.device)
}

func (a *listenAction) run(ctx context.Context, r *run) error {
	return r.listen(ctx, a.device)
}

// ---- fault -----------------------------------------------------------------

// faultFields are the keys of a /v1/faults rule (checkin.FaultRule), plus
// device, which names a device instead of its enrollment ID.
var faultFields = []string{"endpoint", "message_type", "enrollment_id", "device", "action", "status", "delay", "os_version", "fail_info", "skew", "times"}

type faultAction struct {
	rule     map[string]any
	device   string
	as       string
	clearAll bool
	clear    string
}

func (p *parser) faultStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, "as"); err != nil {
		return nil, err
	}
	body := m[KindFault]
	a := &faultAction{}
	n := deref(body.value)
	if n.Kind == yaml.ScalarNode {
		if n.Value != "clear" {
			return nil, p.errf(n, field, "want a rule (a mapping with action…), clear, or {clear: NAME}; got %s", describe(n))
		}
		if _, ok := m["as"]; ok {
			return nil, p.errf(m["as"].key, sibling(field, "as"), "clearing every rule names none")
		}
		a.clearAll = true
		return a, nil
	}
	fm, order, err := p.mapping(n, field, append([]string{"clear"}, faultFields...)...)
	if err != nil {
		return nil, err
	}
	if f, ok := fm["clear"]; ok {
		if len(order) > 1 {
			return nil, p.errf(f.key, join(field, "clear"), "clear stands alone: {clear: NAME}")
		}
		if a.clear, err = p.name(f.value, join(field, "clear")); err != nil {
			return nil, err
		}
		if !p.faults[a.clear] {
			return nil, p.errf(f.value, join(field, "clear"), "no fault rule %q was added by an earlier step (named so far: %s)", a.clear, known(p.faults))
		}
		return a, nil
	}
	if _, ok := fm["action"]; !ok {
		return nil, p.errf(body.key, join(field, "action"), "missing: one of the fault actions (status, delay, drop, unrecognized-device, softwareupdate-required, unauthorized, notnow, scep-bad-challenge, scep-pending, scep-failure, expired-identity, signing-time-skew); the server checks it")
	}
	a.rule = map[string]any{}
	for _, k := range order {
		f := fm[k]
		switch k {
		case "status", "times":
			v, err := p.integer(f.value, join(field, k), 0, math.MaxInt32)
			if err != nil {
				return nil, err
			}
			a.rule[k] = v
		case "device":
			if a.device, err = p.deviceRef(f.value, join(field, k)); err != nil {
				return nil, err
			}
		default:
			s, err := p.str(f.value, join(field, k))
			if err != nil {
				return nil, err
			}
			a.rule[k] = s
		}
	}
	if a.device != "" && a.rule["enrollment_id"] != nil {
		return nil, p.errf(fm["device"].key, join(field, "device"), "give device or enrollment_id, not both")
	}
	if f, ok := m["as"]; ok {
		if a.as, err = p.name(f.value, sibling(field, "as")); err != nil {
			return nil, err
		}
		if p.faults[a.as] {
			return nil, p.errf(f.value, sibling(field, "as"), "a fault rule is already called %q", a.as)
		}
		p.faults[a.as] = true
	}
	return a, nil
}

func (a *faultAction) summary() string {
	switch {
	case a.clearAll:
		return "clear every fault rule"
	case a.clear != "":
		return "clear fault rule " + a.clear
	}
	var parts []string
	for _, k := range faultFields {
		if v, ok := a.rule[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	if a.device != "" {
		parts = append(parts, "device="+a.device)
	}
	return "add fault rule " + strings.Join(parts, " ")
}

func (a *faultAction) run(ctx context.Context, r *run) error {
	switch {
	case a.clearAll:
		return r.faultCall(ctx, http.MethodDelete, "/v1/faults", nil, nil)
	case a.clear != "":
		return r.faultCall(ctx, http.MethodDelete, "/v1/faults/"+r.faults[a.clear], nil, nil)
	}
	rule := make(map[string]any, len(a.rule)+1)
	for k, v := range a.rule {
		rule[k] = v
	}
	if a.device != "" {
		id, err := r.enrollmentID(a.device)
		if err != nil {
			return err
		}
		rule["enrollment_id"] = id
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := r.faultCall(ctx, http.MethodPost, "/v1/faults", rule, &out); err != nil {
		return err
	}
	if a.as != "" {
		r.faults[a.as] = out.ID
	}
	r.notef("fault rule %s added", out.ID)
	return nil
}

// ---- behaviour -------------------------------------------------------------

var behaviourFields = []string{"not_now", "fail", "delay", "locked", "offline", "status_items"}

// anyType is how a scenario says "every request type" in behaviour maps.
const anyType = "*"

type failSpec struct {
	off   bool
	chain mdm.ErrorChainItem
}

type behaviourAction struct {
	device  string
	notNow  map[string]int
	fail    map[string]failSpec
	delay   map[string]time.Duration
	locked  *bool
	offline *bool
	// statusItems are status item values to set (nil: take back), in
	// statusOrder.
	statusItems map[string]any
	statusOrder []string
	order       []string
}

func (p *parser) behaviourStep(m map[string]kv, field string) (action, error) {
	if err := p.fieldsOf(m, field, behaviourFields...); err != nil {
		return nil, err
	}
	name, err := p.deviceRef(m[KindBehaviour].value, field)
	if err != nil {
		return nil, err
	}
	rest := map[string]kv{}
	for k, v := range m {
		if k != KindBehaviour {
			rest[k] = v
		}
	}
	if len(rest) == 0 {
		return nil, p.errf(m[KindBehaviour].key, field, "says nothing to change (give %s)", strings.Join(behaviourFields, ", "))
	}
	a, err := p.behaviours(rest, field[:strings.LastIndex(field, ".")])
	if err != nil {
		return nil, err
	}
	a.device = name
	return a, nil
}

// behaviours reads the behaviour keys of m; base is the field path they sit under.
func (p *parser) behaviours(m map[string]kv, base string) (*behaviourAction, error) {
	a := &behaviourAction{}
	types := func(k string, each func(rt string, v *yaml.Node, field string) error) error {
		tm, order, err := p.mapping(m[k].value, join(base, k))
		if err != nil {
			return err
		}
		for _, rt := range order {
			if err := each(rt, tm[rt].value, join(join(base, k), rt)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, k := range behaviourFields {
		if _, ok := m[k]; !ok {
			continue
		}
		a.order = append(a.order, k)
		var err error
		switch k {
		case "not_now":
			a.notNow = map[string]int{}
			err = types(k, func(rt string, v *yaml.Node, field string) error {
				n, err := p.integer(v, field, 0, 1000)
				a.notNow[rt] = int(n)
				return err
			})
		case "delay":
			a.delay = map[string]time.Duration{}
			err = types(k, func(rt string, v *yaml.Node, field string) error {
				d, err := p.duration(v, field, maxDelay)
				a.delay[rt] = d
				return err
			})
		case "fail":
			a.fail = map[string]failSpec{}
			err = types(k, func(rt string, v *yaml.Node, field string) error {
				if vn := deref(v); vn.Kind == yaml.ScalarNode && vn.Value == "off" {
					a.fail[rt] = failSpec{off: true}
					return nil
				}
				fm, _, err := p.mapping(v, field, "code", "domain", "description")
				if err != nil {
					return p.errf(deref(v), field, "want off, or an error as {code, domain, description}; got %s", describe(deref(v)))
				}
				var item mdm.ErrorChainItem
				item.ErrorCode, item.ErrorDomain = 12021, "MCMDMErrorDomain"
				if f, ok := fm["code"]; ok {
					c, err := p.integer(f.value, join(field, "code"), math.MinInt32, math.MaxInt32)
					if err != nil {
						return err
					}
					item.ErrorCode = int(c)
				}
				if f, ok := fm["domain"]; ok {
					if item.ErrorDomain, err = p.str(f.value, join(field, "domain")); err != nil {
						return err
					}
				}
				item.LocalizedDescription = "The scenario made the device fail this command."
				if f, ok := fm["description"]; ok {
					if item.LocalizedDescription, err = p.str(f.value, join(field, "description")); err != nil {
						return err
					}
				}
				a.fail[rt] = failSpec{chain: item}
				return nil
			})
		case "locked":
			var b bool
			b, err = p.boolean(m[k].value, join(base, k))
			a.locked = &b
		case "offline":
			var b bool
			b, err = p.boolean(m[k].value, join(base, k))
			a.offline = &b
		case "status_items":
			err = p.statusItems(m[k].value, join(base, k), a)
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// statusItems reads a behaviour's status_items: Apple status item names and
// the values the device is to report for them (null takes one back),
// checked against the item's schema.
func (p *parser) statusItems(n *yaml.Node, field string, a *behaviourAction) error {
	m, order, err := p.mapping(n, field)
	if err != nil {
		return err
	}
	a.statusItems, a.statusOrder = map[string]any{}, order
	for _, name := range order {
		v, err := p.value(m[name].value, join(field, name), 0)
		if err != nil {
			return err
		}
		if err := device.CheckStatusItem(name, v); err != nil {
			return p.errf(m[name].key, join(field, name), "%s", strings.TrimPrefix(err.Error(), "device: "))
		}
		a.statusItems[name] = v
	}
	return nil
}

func (a *behaviourAction) summary() string {
	var parts []string
	for _, k := range a.order {
		switch k {
		case "not_now":
			parts = append(parts, "not_now "+formatTypes(a.notNow))
		case "delay":
			parts = append(parts, "delay "+formatTypes(a.delay))
		case "fail":
			parts = append(parts, "fail "+formatTypes(a.fail))
		case "locked":
			parts = append(parts, fmt.Sprintf("locked %v", *a.locked))
		case "offline":
			parts = append(parts, fmt.Sprintf("offline %v", *a.offline))
		case "status_items":
			var items []string
			for _, name := range a.statusOrder {
				items = append(items, fmt.Sprintf("%s=%v", name, a.statusItems[name]))
			}
			parts = append(parts, "status_items "+strings.Join(items, ","))
		}
	}
	return fmt.Sprintf("%s: %s", a.device, strings.Join(parts, "; "))
}

func formatTypes[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		v := any(m[k])
		if f, ok := v.(failSpec); ok {
			if f.off {
				v = "off"
			} else {
				v = fmt.Sprintf("%s %d", f.chain.ErrorDomain, f.chain.ErrorCode)
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	return strings.Join(parts, ",")
}

func requestType(rt string) string {
	if rt == anyType {
		return ""
	}
	return rt
}

func (a *behaviourAction) run(_ context.Context, r *run) error {
	dev := r.devices[a.device].dev
	for rt, n := range a.notNow {
		dev.SetNotNow(requestType(rt), n)
	}
	for rt, d := range a.delay {
		dev.DelayAck(requestType(rt), d)
	}
	for rt, f := range a.fail {
		if f.off {
			dev.FailWith(requestType(rt))
		} else {
			dev.FailWith(requestType(rt), f.chain)
		}
	}
	if a.locked != nil {
		dev.SetLocked(*a.locked)
	}
	if a.offline != nil {
		dev.SetOffline(*a.offline)
	}
	for _, name := range a.statusOrder {
		if err := dev.SetStatusItem(name, a.statusItems[name]); err != nil {
			return err
		}
	}
	return nil
}

// looksLikePlist tells a command given as a whole plist from a typo.
func looksLikePlist(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "<?xml") || strings.HasPrefix(t, "<!DOCTYPE plist") || strings.HasPrefix(t, "<plist")
}
