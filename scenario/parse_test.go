package scenario

import (
	"errors"
	"strings"
	"testing"
)

// TestParseHostile: every mistake is an *Error with the file, the line (and
// column) and the field, and a message that says what to write instead.
func TestParseHostile(t *testing.T) {
	const head = "name: n\nsteps:\n"
	for _, tc := range []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		// The line is the YAML decoder's own: it reports line 3 for the stray "]" on line 4.
		{"malformed YAML", "name: n\nsteps:\n  - device: a\n  - enroll: {a: ]\n", 3, "", "not valid YAML"},
		{"tab indentation", "name: n\nsteps:\n\t- device: a\n", 3, "", "not valid YAML"},
		{"unknown step kind", head + "  - device: a\n  - reboot: a\n", 4, "steps[2].reboot", "unknown step kind"},
		{"unknown field", head + "  - device: a\n    colour: red\n", 4, "steps[1].colour", "unknown field for a device step"},
		{"unknown top-level field", "name: n\nauthor: me\nsteps:\n  - device: a\n", 2, "author", "unknown field"},
		{"unknown expect field", head + "  - device: a\n  - expect: {device: a, enrolld: true}\n", 4, "steps[2].expect.enrolld", "unknown field"},
		{"wrong type: seed", "name: n\nseed: many\nsteps:\n  - device: a\n", 2, "seed", "want a whole number"},
		{"wrong type: times", head + "  - device: a\n  - enroll: a\n    path: profile\n  - connect: a\n    times: twice\n", 7, "steps[3].times", "want a whole number"},
		{"wrong type: steps", "name: n\nsteps: all of them\n", 2, "steps", "want a non-empty list"},
		{"wrong type: bool", head + "  - device: a\n    supervised: yes please\n", 4, "steps[1].supervised", "want true or false"},
		{"wrong type: command", head + "  - device: a\n  - command: DeviceInformation\n    device: a\n", 4, "steps[2].command", "want the Command dictionary"},
		{"wrong type: within", head + "  - device: a\n  - command: {RequestType: DeviceLock}\n    device: a\n    as: c\n  - expect: {command: c, status: Acknowledged, within: soon}\n", 7, "steps[3].expect.within", "want a duration"},
		{"unknown path", head + "  - device: a\n  - enroll: a\n    path: carrier-pigeon\n", 5, "steps[2].path", `unknown enrollment path "carrier-pigeon" (known: `},
		{"missing path", head + "  - device: a\n  - enroll: a\n", 4, "steps[2].path", "missing"},
		{"unknown device", head + "  - device: a\n  - enroll: b\n    path: profile\n", 4, "steps[2].enroll", `no device "b" was created by an earlier step (devices so far: a)`},
		{"device used before creation", head + "  - connect: a\n  - device: a\n", 3, "steps[1].connect", `no device "a"`},
		{"unknown command name", head + "  - device: a\n  - expect: {command: nope, status: Acknowledged}\n", 4, "steps[2].expect.command", `no command "nope"`},
		{"unknown fault name", head + "  - fault: {clear: nope}\n", 3, "steps[1].fault.clear", `no fault rule "nope"`},
		{"duplicate device", head + "  - device: a\n  - device: a\n", 4, "steps[2].device", "already created"},
		{"encrypt_profile on another command", head + "  - device: a\n  - command: {RequestType: ProfileList}\n    device: a\n    encrypt_profile: true\n", 6, "steps[2].encrypt_profile", "is for InstallProfile; this command is ProfileList"},
		{"encrypt_profile for two devices", head + "  - device: a\n  - device: b\n  - command: {RequestType: InstallProfile, Payload: PD94}\n    devices: [a, b]\n    encrypt_profile: true\n", 7, "steps[3].encrypt_profile", "needs one device, not 2"},
		{"encrypt_profile not a bool", head + "  - device: a\n  - command: {RequestType: InstallProfile, Payload: PD94}\n    device: a\n    encrypt_profile: please\n", 6, "steps[2].encrypt_profile", "want true or false"},
		{"duplicate key", head + "  - device: a\n    model: iPad\n    model: Mac\n", 5, "steps[1].model", "given twice"},
		{"bad model", head + "  - device: a\n    model: Newton\n", 4, "steps[1].model", "use iPad, iPhone or Mac"},
		{"serial not choosable", head + "  - device: a\n    serial: C02XYZ\n", 4, "steps[1].serial", "derives from its seed"},
		{"bad status", head + "  - device: a\n  - command: {RequestType: DeviceLock}\n    device: a\n    as: c\n  - expect: {command: c, status: Done}\n", 7, "steps[3].expect.status", "a command status is one of"},
		{"status without command", head + "  - device: a\n  - expect: {device: a, status: Acknowledged}\n", 4, "steps[2].expect.status", "add command: NAME"},
		{"enrollment field without device", head + "  - device: a\n  - expect: {enrollment.type: User}\n", 4, "steps[2].expect.enrollment.type", "add device: NAME"},
		{"command without RequestType", head + "  - device: a\n  - command: {Queries: [UDID]}\n    device: a\n", 4, "steps[2].command.RequestType", "missing"},
		{"command without device", head + "  - device: a\n  - command: {RequestType: DeviceLock}\n", 4, "steps[2].device", "missing"},
		{"fault without action", head + "  - fault: {endpoint: mdm}\n", 3, "steps[1].fault.action", "missing"},
		{"fault unknown field", head + "  - fault: {action: drop, colour: red}\n", 3, "steps[1].fault.colour", "unknown field"},
		{"behaviour not_now wrong type", head + "  - device: a\n  - behaviour: a\n    not_now: {InstallProfile: often}\n", 5, "steps[2].not_now.InstallProfile", "want a whole number"},
		{"behaviour nothing", head + "  - device: a\n  - behaviour: a\n", 4, "steps[2].behaviour", "says nothing to change"},
		{"delay too long", head + "  - device: a\n  - behaviour: a\n    delay: {'*': 10h}\n", 5, "steps[2].delay.*", "longer than"},
		{"status item unknown", head + "  - device: a\n  - behaviour: a\n    status_items: {no.such-item: 1}\n", 5, "steps[2].status_items.no.such-item", "not a status item"},
		{"status item wrong type", head + "  - device: a\n  - behaviour: a\n    status_items: {test.integer-value: many}\n", 5, "steps[2].status_items.test.integer-value", "integer"},
		{"clock", "name: n\nclock: yesterday\nsteps:\n  - device: a\n", 2, "clock", "RFC 3339"},
		{"no name", "steps:\n  - device: a\n", 1, "name", "missing"},
		{"no steps", "name: n\n", 1, "steps", "missing"},
		{"step not a mapping", head + "  - just words\n", 3, "steps[1]", "a step is a mapping"},
		{"empty document", "", 1, "", "holds no scenario"},
		{"second document broken", head + "  - device: a\n---\nname: m\nsteps:\n  - device: [x]\n", 7, "steps[1].device", "want text"},
		{"bad name", head + "  - device: 'a b'\n", 3, "steps[1].device", "a name is up to 64"},
		{"login without user", head + "  - device: a\n  - login: a\n", 4, "steps[2].user", "missing: the Managed Apple Account"},
		{"login unknown device", head + "  - device: a\n  - login: b\n    user: u\n", 4, "steps[2].login", `no device "b"`},
		{"logout unknown field", head + "  - device: a\n  - logout: a\n    user: u\n", 5, "steps[2].user", "unknown field for a logout step"},
		{"connect user not a bool", head + "  - device: a\n  - connect: a\n    user: ann\n", 5, "steps[2].user", "want true or false"},
		{"command user not text", head + "  - device: a\n  - command: {RequestType: UserList}\n    device: a\n    user: [x]\n", 6, "steps[2].user", "want text"},
		{"alias bomb", "a: &a [x, x]\nb: &b [*a, *a]\nname: n\nsteps:\n  - device: d\n", 1, "a", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tc.src))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if pe.File != "s.yaml" || pe.Line != tc.line || pe.Field != tc.field || !strings.Contains(pe.Msg, tc.msg) {
				t.Fatalf("got %s:%d field %q: %s\nwant line %d field %q containing %q", pe.File, pe.Line, pe.Field, pe.Msg, tc.line, tc.field, tc.msg)
			}
			if !strings.HasPrefix(pe.Error(), "s.yaml:") {
				t.Fatalf("Error() = %q does not start with the file", pe.Error())
			}
		})
	}
}

// TestParseForms: the shapes the format accepts parse into what they say.
func TestParseForms(t *testing.T) {
	src := `name: forms
seed: 3
clock: +24h
steps:
  - device: a
    model: mac
    os: 15.2
    build: 24C101
    behaviours:
      not_now: {'*': 2}
      fail: {DeviceLock: off}
  - enroll: a
    path: profile
    with: {user: alice}
  - command: |
      <?xml version="1.0" encoding="UTF-8"?>
      <plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>
    device: a
    as: raw
  - fault: {action: delay, delay: 1s, device: a}
    as: slow
  - fault: {clear: slow}
  - fault: clear
  - expect:
      command: raw
      device: a
      result.ProfileList.0.PayloadIdentifier: x
  - expect: {device: a, enrollment.ownership.kind: corporate, transcript_contains: [Authenticate]}
---
name: second
steps:
  - device: b
`
	scs, err := Parse("forms.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 2 || scs[1].Name != "second" || scs[1].Seed != 1 {
		t.Fatalf("documents: %+v", scs)
	}
	sc := scs[0]
	if sc.Seed != 3 || sc.ClockOffset.Hours() != 24 || len(sc.Steps) != 8 {
		t.Fatalf("scenario %+v", sc)
	}
	d := sc.Steps[0].action.(*deviceAction)
	if d.model.Family != "Mac" || d.osVersion != "15.2" || d.beh.notNow["*"] != 2 || !d.beh.fail["DeviceLock"].off {
		t.Fatalf("device %+v", d)
	}
	if e := sc.Steps[1].action.(*enrollAction); e.params["user"] != "alice" {
		t.Fatalf("enroll %+v", e)
	}
	if c := sc.Steps[2].action.(*commandAction); !strings.Contains(c.raw, "ProfileList") || c.command != nil {
		t.Fatalf("command %+v", c)
	}
	if f := sc.Steps[3].action.(*faultAction); f.rule["action"] != "delay" || f.device != "a" || f.as != "slow" {
		t.Fatalf("fault %+v", f)
	}
	x := sc.Steps[7].action.(*expectAction)
	if len(x.fields) != 1 || x.fields[0].path != "ownership.kind" || x.transcript[0] != "Authenticate" {
		t.Fatalf("expect %+v", x)
	}
	if got := sc.Steps[5].String(); got != "step 6 (fault, line 23)" {
		t.Fatalf("String() = %q", got)
	}
}

// TestCompareAt: dotted paths reach nested fields and list items; a
// missing field lists the ones there are.
func TestCompareAt(t *testing.T) {
	doc := map[string]any{"type": "User", "n": 3.0, "ok": true, "ownership": map[string]any{"kind": "personal"}, "list": []any{"x", "y"}}
	for _, tc := range []struct {
		path string
		want any
		seen string
	}{
		{"type", "User", ""},
		{"n", int64(3), ""},
		{"ok", true, ""},
		{"ownership.kind", "personal", ""},
		{"list.1", "y", ""},
		{"type", "Device", `"User"`},
		{"owner", "x", "no field \"owner\" in enrollment (fields: list, n, ok, ownership, type)"},
		{"list.9", "x", "is a list of 2"},
		{"type.kind", "x", "with no field \"kind\""},
	} {
		err := compareAt(doc, fieldWant{tc.path, tc.want}, "enrollment", nil)
		if tc.seen == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.path, err)
			}
			continue
		}
		var m *Mismatch
		if !errors.As(err, &m) || !strings.Contains(m.Seen, tc.seen) {
			t.Errorf("%s: %v, want a mismatch seeing %q", tc.path, err, tc.seen)
		}
	}
}

// TestRegisterPath: a registered path is usable at once; misuse panics.
func TestRegisterPath(t *testing.T) {
	RegisterPath("test-only-path", profilePath)
	if _, err := Parse("p.yaml", []byte("name: n\nsteps:\n  - device: a\n  - enroll: a\n    path: test-only-path\n")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(){
		func() { RegisterPath("profile", profilePath) },
		func() { RegisterPath("", profilePath) },
		func() { RegisterPath("x", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("RegisterPath misuse did not panic")
				}
			}()
			bad()
		}()
	}
}

// FuzzParse: no input makes the parser panic or hang, and every error it
// returns is an *Error naming the file.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"name: n\nsteps:\n  - device: a\n  - enroll: a\n    path: profile\n",
		"name: n\nseed: 2\nclock: 2026-01-01T00:00:00Z\nsteps:\n  - device: a\n    behaviours: {not_now: {'*': 1}, delay: {X: 1s}, fail: {Y: {code: 1}}}\n",
		"name: n\nsteps:\n  - device: a\n  - command: {RequestType: DeviceInformation, Queries: [A]}\n    devices: [a]\n    as: c\n  - expect: {command: c, status: NotNow, result.a.0: 1.5}\n",
		"name: n\nsteps:\n  - fault: {action: status, status: 503, times: 2}\n    as: f\n  - fault: {clear: f}\n  - fault: clear\n",
		"name: n\nsteps:\n  - device: a\n  - api: PUT /v1/x/${a.serial}\n    body: {s: ['${a.udid}']}\n    as: r\n  - expect: {response: r, body.s.0: '${r.status}'}\n",
		"name: n\nsteps:\n  - device: a\n  - enroll: a\n    path: company-portal\n    with: {user: u, password: p, ownership: personal, scope: work}\n  - register: a\n    with: {user: u, password: p}\n    error: 401\n",
		"name: n\nsteps:\n  - api: POST /v1/ade/tokens\n    raw: x\n    content_type: text/plain\n  - api: PUT /v1/directory\n    yaml: 'users: []'\n",
		"name: n\nsteps:\n  - device: a\n  - behaviour: a\n    status_items: {test.string-value: s, test.dictionary-value: {key1: v}, passcode.is-present: null}\n",
		"a: &a [x]\nb: [*a, *a]\n",
		"--- \n---\nname: x\n",
		"name: [\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		scs, err := Parse("fuzz.yaml", data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "fuzz.yaml" {
				t.Fatalf("error %v (%T) is not an *Error for the file", err, err)
			}
			return
		}
		for _, sc := range scs {
			if sc.Name == "" || len(sc.Steps) == 0 {
				t.Fatalf("parsed a scenario without name or steps: %+v", sc)
			}
			for i, st := range sc.Steps {
				if st.Index != i+1 || st.action == nil || st.Summary() == "" {
					t.Fatalf("step %d: %+v", i, st)
				}
			}
		}
	})
}
