package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds a scenario file: far above any story a person writes,
// far below what would strain the YAML decoder.
const MaxFileSize = 1 << 20

// maxSteps bounds the steps of one scenario, and maxDocuments the scenarios
// of one file.
const (
	maxSteps     = 10_000
	maxDocuments = 1_000
)

// Parse reads the scenarios of one file. file names the file in errors;
// every error is an *Error with its line and field. Path names in enroll
// steps are checked against the paths registered so far (RegisterPath).
func Parse(file string, data []byte) ([]*Scenario, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("the file is %d bytes; a scenario file may hold at most %d", len(data), MaxFileSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Scenario
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(file, err)
		}
		if len(out) == maxDocuments {
			return nil, &Error{File: file, Line: doc.Line, Msg: fmt.Sprintf("more than %d scenarios in one file", maxDocuments)}
		}
		p := &parser{file: file}
		sc, err := p.scenario(&doc)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, &Error{File: file, Line: 1, Msg: "the file holds no scenario (want a mapping with name and steps)"}
	}
	return out, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// syntaxError turns a YAML decoder error into an *Error with its line.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: file, Msg: "not valid YAML: " + msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
	}
	return e
}

// parser holds what a document's steps may refer to, so a reference to a
// device, command or fault that no earlier step made is an error at parse
// time, not a surprise halfway through a run.
type parser struct {
	file     string
	devices  map[string]bool
	commands map[string]bool
	faults   map[string]bool
	// responses are the as: names of api steps.
	responses map[string]bool
	nDevices  int
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) *Error {
	e := &Error{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// kv is one key of a mapping with its value.
type kv struct {
	key   *yaml.Node
	value *yaml.Node
}

// mapping returns the keys of n in order, refusing a non-mapping, a
// duplicate key and any key not in allowed (a key ending in "." allows
// every key with that prefix).
func (p *parser) mapping(n *yaml.Node, field string, allowed ...string) (map[string]kv, []string, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, nil, p.errf(n, field, "want a mapping, got %s", describe(n))
	}
	out := map[string]kv{}
	var order []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, nil, p.errf(k, field, "a key must be a plain name, got %s", describe(k))
		}
		name := k.Value
		if _, dup := out[name]; dup {
			return nil, nil, p.errf(k, join(field, name), "given twice")
		}
		if allowed != nil && !allowedKey(allowed, name) {
			return nil, nil, p.errf(k, join(field, name), "unknown field (known: %s)", strings.Join(allowed, ", "))
		}
		out[name] = kv{k, v}
		order = append(order, name)
	}
	return out, order, nil
}

func allowedKey(allowed []string, name string) bool {
	for _, a := range allowed {
		if a == name || (strings.HasSuffix(a, ".") && strings.HasPrefix(name, a) && len(name) > len(a)) {
			return true
		}
	}
	return false
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// describe says what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!int":
			return "the number " + clip(n.Value)
		case "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		default:
			return strconv.Quote(clip(n.Value))
		}
	}
	return "an empty document"
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// str reads a non-empty scalar as text: "os: 18.1" is the string "18.1",
// not a number.
func (p *parser) str(n *yaml.Node, field string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "", p.errf(n, field, "want text, got %s", describe(n))
	}
	if n.Value == "" {
		return "", p.errf(n, field, "must not be empty")
	}
	if len(n.Value) > 4096 {
		return "", p.errf(n, field, "is %d characters long; at most 4096", len(n.Value))
	}
	return n.Value, nil
}

func (p *parser) integer(n *yaml.Node, field string, lo, hi int64) (int64, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, p.errf(n, field, "want a whole number, got %s", describe(n))
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, p.errf(n, field, "want a whole number, got %s", describe(n))
	}
	if v < lo || v > hi {
		return 0, p.errf(n, field, "%d is out of range (%d to %d)", v, lo, hi)
	}
	return v, nil
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, p.errf(n, field, "want true or false, got %s", describe(n))
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return false, p.errf(n, field, "want true or false, got %s", describe(n))
	}
	return v, nil
}

// duration reads a Go duration ("5s", "1m30s"), at least 0, at most max.
func (p *parser) duration(n *yaml.Node, field string, max time.Duration) (time.Duration, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	d, perr := time.ParseDuration(s)
	if perr != nil || d < 0 {
		return 0, p.errf(deref(n), field, "want a duration such as 5s or 1m30s, got %q", clip(s))
	}
	if d > max {
		return 0, p.errf(deref(n), field, "%s is longer than the %s allowed", d, max)
	}
	return d, nil
}

// strList reads one text or a list of texts.
func (p *parser) strList(n *yaml.Node, field string) ([]string, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		s, err := p.str(n, field)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, field, "want text or a list of texts, got %s", describe(n))
	}
	if len(n.Content) == 0 {
		return nil, p.errf(n, field, "the list is empty")
	}
	var out []string
	for i, c := range n.Content {
		s, err := p.str(c, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// name reads a reference name (device, command or fault): letters, digits,
// "-", "_" and ".".
func (p *parser) name(n *yaml.Node, field string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if len(s) > 64 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return "", p.errf(deref(n), field, "%q: a name is up to 64 letters, digits, '-', '_' or '.'", clip(s))
	}
	return s, nil
}

// deviceRef reads the name of a device an earlier step created.
func (p *parser) deviceRef(n *yaml.Node, field string) (string, error) {
	s, err := p.name(n, field)
	if err != nil {
		return "", err
	}
	if !p.devices[s] {
		return "", p.errf(deref(n), field, "no device %q was created by an earlier step (devices so far: %s)", s, known(p.devices))
	}
	return s, nil
}

func known(m map[string]bool) string {
	if len(m) == 0 {
		return "none"
	}
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// value converts a YAML subtree into plain Go values (maps, lists,
// strings, numbers, booleans) for JSON.
func (p *parser) value(n *yaml.Node, field string, depth int) (any, error) {
	n = deref(n)
	if depth > 32 {
		return nil, p.errf(n, field, "nested more than 32 levels deep")
	}
	switch n.Kind {
	case yaml.MappingNode:
		m, order, err := p.mapping(n, field)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(order))
		for _, k := range order {
			v, err := p.value(m[k].value, join(field, k), depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := p.value(c, fmt.Sprintf("%s[%d]", field, i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return p.boolean(n, field)
		case "!!int":
			return p.integer(n, field, math.MinInt64, math.MaxInt64)
		case "!!float":
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, p.errf(n, field, "%q is not a finite number", clip(n.Value))
			}
			return f, nil
		default:
			return n.Value, nil
		}
	}
	return nil, p.errf(n, field, "want a value, got %s", describe(n))
}

// scenario reads one document.
func (p *parser) scenario(doc *yaml.Node) (*Scenario, error) {
	root := deref(doc)
	if root == nil || root.Kind == yaml.DocumentNode {
		return nil, p.errf(doc, "", "an empty document: want a mapping with name and steps")
	}
	m, _, err := p.mapping(root, "", "name", "seed", "clock", "steps")
	if err != nil {
		return nil, err
	}
	sc := &Scenario{File: p.file, Line: root.Line, Seed: 1}
	if f, ok := m["name"]; ok {
		if sc.Name, err = p.str(f.value, "name"); err != nil {
			return nil, err
		}
	} else {
		return nil, p.errf(root, "name", "missing: every scenario needs a name (it names the test case in reports)")
	}
	if f, ok := m["seed"]; ok {
		if sc.Seed, err = p.integer(f.value, "seed", 0, math.MaxInt64/2); err != nil {
			return nil, err
		}
	}
	if f, ok := m["clock"]; ok {
		if err := p.clock(f.value, sc); err != nil {
			return nil, err
		}
	}
	f, ok := m["steps"]
	if !ok {
		return nil, p.errf(root, "steps", "missing: a scenario needs a list of steps")
	}
	steps := deref(f.value)
	if steps.Kind != yaml.SequenceNode || len(steps.Content) == 0 {
		return nil, p.errf(steps, "steps", "want a non-empty list of steps, got %s", describe(steps))
	}
	if len(steps.Content) > maxSteps {
		return nil, p.errf(steps, "steps", "%d steps; at most %d", len(steps.Content), maxSteps)
	}
	p.devices, p.commands, p.faults, p.responses = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, n := range steps.Content {
		st, err := p.step(n, i+1)
		if err != nil {
			return nil, err
		}
		sc.Steps = append(sc.Steps, st)
	}
	return sc, nil
}

// clock reads an RFC 3339 time, or an offset from the run's start
// ("+720h", "-1h").
func (p *parser) clock(n *yaml.Node, sc *Scenario) error {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return p.errf(n, "clock", "want an RFC 3339 time (2026-03-01T09:00:00Z) or an offset (+720h), got %s", describe(n))
	}
	s := n.Value
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		d, err := time.ParseDuration(s)
		if err != nil || d == 0 {
			return p.errf(n, "clock", "%q: an offset is a signed duration such as +720h", clip(s))
		}
		sc.ClockOffset = d
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return p.errf(n, "clock", "%q: want an RFC 3339 time such as 2026-03-01T09:00:00Z, or an offset such as +720h", clip(s))
	}
	sc.Clock = t
	return nil
}

// step reads one step: the one kind key it holds says what it is.
func (p *parser) step(n *yaml.Node, index int) (Step, error) {
	field := fmt.Sprintf("steps[%d]", index)
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return Step{}, p.errf(n, field, "a step is a mapping whose first key is its kind (%s), got %s", strings.Join(kinds, ", "), describe(n))
	}
	m, order, err := p.mapping(n, field)
	if err != nil {
		return Step{}, err
	}
	// The first key is the kind: "device" is a kind of its own and also
	// the field that names the device of a command or connect step.
	if len(order) == 0 {
		return Step{}, p.errf(n, field, "an empty step: its first key is its kind (%s)", strings.Join(kinds, ", "))
	}
	kind := order[0]
	if !slices.Contains(kinds, kind) {
		return Step{}, p.errf(m[kind].key, join(field, kind), "unknown step kind (a step's first key is one of: %s)", strings.Join(kinds, ", "))
	}
	st := Step{Index: index, Kind: kind, Line: n.Line, File: p.file}
	field = join(field, kind)
	switch kind {
	case KindDevice:
		st.action, err = p.deviceStep(m, field)
	case KindEnroll:
		st.action, err = p.enrollStep(m, field)
	case KindCommand:
		st.action, err = p.commandStep(m, field, index)
	case KindConnect:
		st.action, err = p.connectStep(m, field)
	case KindListen:
		st.action, err = p.listenStep(m, field)
	case KindFault:
		st.action, err = p.faultStep(m, field)
	case KindBehaviour:
		st.action, err = p.behaviourStep(m, field)
	case KindExpect:
		st.action, err = p.expectStep(m, field)
	case KindAPI:
		st.action, err = p.apiStep(m, field)
	case KindRegister:
		st.action, err = p.registerStep(m, field)
	case KindLogin:
		st.action, err = p.loginStep(m, field)
	case KindLogout:
		st.action, err = p.logoutStep(m, field)
	}
	return st, err
}

// fieldsOf checks a step's keys against the kind's own and returns the
// field path of each key ("steps[3].connect" for the kind key itself,
// "steps[3].times" for the others).
func (p *parser) fieldsOf(m map[string]kv, field string, allowed ...string) error {
	base := field[:strings.LastIndex(field, ".")]
	kind := field[strings.LastIndex(field, ".")+1:]
	for k, f := range m {
		if k == kind || allowedKey(allowed, k) {
			continue
		}
		list := append([]string{kind}, allowed...)
		return p.errf(f.key, join(base, k), "unknown field for a %s step (known: %s)", kind, strings.Join(list, ", "))
	}
	return nil
}

// sibling is the field path of a key next to the kind key.
func sibling(field, key string) string {
	return join(field[:strings.LastIndex(field, ".")], key)
}
