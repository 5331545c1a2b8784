// Package scenario runs enrollment and management stories written as YAML
// files against a mockmdm: virtual devices are created, enrolled through a
// named enrollment path, sent commands, made to connect or to listen for
// pushes, given faults and behaviours, and the outcome is asserted. The
// runner reaches the server only through its REST API (api.Client) and the
// device endpoints over HTTP, so the same file runs against an in-process
// server (the default: memory store, fixed seeds) or a running mockmdm.
//
// A file holds one scenario, or several separated by "---":
//
//	name: an iPad enrolls and answers DeviceInformation
//	seed: 7
//	steps:
//	  - device: ipad
//	    model: iPad
//	  - enroll: ipad
//	    path: profile
//	  - command: {RequestType: DeviceInformation, Queries: [OSVersion]}
//	    device: ipad
//	    as: info
//	  - connect: ipad
//	  - expect: {command: info, status: Acknowledged, within: 5s}
//
// Every parse error names the file, the line and the field (see Error), so
// a person can go straight to the mistake.
package scenario

import (
	"fmt"
	"time"
)

// Step kinds: the key that makes a YAML mapping a step of that kind.
const (
	KindDevice    = "device"
	KindEnroll    = "enroll"
	KindCommand   = "command"
	KindConnect   = "connect"
	KindListen    = "listen"
	KindFault     = "fault"
	KindBehaviour = "behaviour"
	KindExpect    = "expect"
	KindAPI       = "api"
	KindRegister  = "register"
	KindLogin     = "login"
	KindLogout    = "logout"
)

// kinds is the order kinds are listed in messages.
var kinds = []string{KindDevice, KindEnroll, KindRegister, KindLogin, KindLogout, KindCommand, KindConnect, KindListen, KindFault, KindBehaviour, KindAPI, KindExpect}

// Scenario is one parsed story.
type Scenario struct {
	// File is the path it was read from; Line the line of its first key.
	File string
	Line int
	Name string
	// Seed is the first device seed: the n-th device (from 0) that sets no
	// seed of its own gets Seed+n, so device identities repeat run to run.
	Seed int64
	// Clock, when set, is the time the in-process server and the devices
	// start at; it then advances with the run (see ClockOffset for the
	// relative form). Zero: the machine's clock.
	Clock time.Time
	// ClockOffset is a clock given relative to the run's start ("+720h").
	ClockOffset time.Duration
	Steps       []Step
}

// Step is one thing the runner does or checks.
type Step struct {
	// Index counts from 1 within the scenario.
	Index int
	Kind  string
	// Line is where the step starts in File.
	Line int
	File string

	action action
}

// String names the step the way failures do: "step 3 (connect, line 14)".
func (s Step) String() string {
	return fmt.Sprintf("step %d (%s, line %d)", s.Index, s.Kind, s.Line)
}

// Summary is a one-line description of what the step does.
func (s Step) Summary() string { return s.action.summary() }

// Error is a mistake in a scenario file, located to the field.
type Error struct {
	File   string
	Line   int
	Column int
	// Field is the dotted path of the offending key, e.g.
	// "steps[3].behaviour.not_now"; empty for a YAML syntax error.
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
		if e.Column > 0 {
			loc = fmt.Sprintf("%s:%d", loc, e.Column)
		}
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}
