package checkin

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFaultFile bounds a rule file.
const maxFaultFile = 1 << 20

// ParseFaultRules reads a rule file — YAML, or JSON (which YAML reads) —
// of the form {"rules": [...]}, each rule with the fields of POST
// /v1/faults, and checks every rule as Add would. An error names the
// rule's position, its line and the field at fault (and, for an unknown
// action, the known ones), so a person can go straight to it.
func ParseFaultRules(data []byte) ([]FaultRule, error) {
	if len(data) > maxFaultFile {
		return nil, fmt.Errorf("%d bytes; a rule file is at most 1 MiB", len(data))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not YAML or JSON: %v", err)
	}
	const example = `e.g. rules: [{endpoint: mdm, action: status, status: 503, times: 2}]`
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("needs a top-level \"rules\" list, %s", example)
	}
	top := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		switch k := top.Content[i]; k.Value {
		case "rules":
			list = top.Content[i+1]
		default:
			return nil, fmt.Errorf("line %d: unknown top-level key %q; the file holds only \"rules\"", k.Line, clip(k.Value, 40))
		}
	}
	if list == nil {
		return nil, fmt.Errorf("needs a top-level \"rules\" list, %s", example)
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: \"rules\" must be a list, %s", list.Line, example)
	}
	rules := make([]FaultRule, 0, len(list.Content))
	for i, item := range list.Content {
		r, err := parseFaultRule(item)
		if err != nil {
			return nil, fmt.Errorf("rule %d (line %d): %w", i+1, errLine(err, item.Line), err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// lineError is an error at a line of the file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

func errLine(err error, def int) int {
	if le, ok := err.(*lineError); ok && le.line > 0 {
		return le.line
	}
	return def
}

// faultFields maps the JSON names of FaultRule's settable fields to their
// Go field index.
var faultFields = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeFor[FaultRule]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && name != "id" && name != "fired" {
			m[name] = i
		}
	}
	return m
}()

func fieldNames() string {
	names := make([]string, 0, len(faultFields))
	for n := range faultFields {
		names = append(names, n)
	}
	// A fixed order reads better than map order.
	order := []string{"endpoint", "message_type", "enrollment_id", "action", "status", "delay", "os_version", "times", "fail_info", "skew"}
	if len(order) == len(names) {
		return strings.Join(order, ", ")
	}
	return strings.Join(names, ", ")
}

func parseFaultRule(item *yaml.Node) (FaultRule, error) {
	var r FaultRule
	if item.Kind != yaml.MappingNode {
		return r, fmt.Errorf("a rule is a mapping of fields (%s)", fieldNames())
	}
	lines := map[string]int{}
	v := reflect.ValueOf(&r).Elem()
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, val := item.Content[i], item.Content[i+1]
		idx, ok := faultFields[k.Value]
		if !ok {
			return r, &lineError{k.Line, fmt.Errorf("unknown field %q; the fields are %s", clip(k.Value, 40), fieldNames())}
		}
		if _, dup := lines[k.Value]; dup {
			return r, &lineError{k.Line, fmt.Errorf("%s: given twice", k.Value)}
		}
		lines[k.Value] = k.Line
		if val.Kind != yaml.ScalarNode {
			return r, &lineError{val.Line, fmt.Errorf("%s: must be a single value, not a list or mapping", k.Value)}
		}
		f := v.Field(idx)
		switch f.Kind() {
		case reflect.String:
			f.SetString(val.Value)
		case reflect.Int:
			n, err := strconv.Atoi(val.Value)
			if err != nil {
				return r, &lineError{val.Line, fmt.Errorf("%s: %q is not a whole number", k.Value, clip(val.Value, 40))}
			}
			f.SetInt(int64(n))
		}
	}
	if err := r.check(); err != nil {
		line := item.Line
		if fe, ok := err.(*FaultRuleError); ok && lines[fe.Field] > 0 {
			line = lines[fe.Field]
		}
		return r, &lineError{line, err}
	}
	return r, nil
}
