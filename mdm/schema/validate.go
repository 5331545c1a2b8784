package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rules a Problem can report.
const (
	RuleUnknownKey      = "unknown-key"      // a dictionary key the schema does not name
	RuleWrongType       = "wrong-type"       // the value's plist type is not the key's type
	RuleMissingRequired = "missing-required" // a required key is absent
	RuleNotInRangeList  = "not-in-rangelist" // the value is not one of the allowed values
	RuleOutOfRange      = "out-of-range"     // a number outside the key's range
	RuleFormat          = "format"           // a string that does not match the key's format
	RuleRepetition      = "repetition"       // an array with too few or too many elements
	RuleTooDeep         = "too-deep"         // nesting beyond MaxDepth; not checked further
)

// MaxDepth bounds how many nested dictionaries and arrays ValidateDict
// descends into. Apple's deepest non-recursive schema is 7 levels, so a value
// near this is hostile or broken; recursive schemas (home-screen folders)
// would otherwise let a value's depth drive the validator's.
const MaxDepth = 64

// Problem is one way a value breaks its schema.
type Problem struct {
	// Path locates the value: "PayloadContent[2].Topic". A key that is not
	// a plain identifier is quoted: `PayloadContent[0]["Key Type"]`.
	Path string
	// Rule is one of the Rule constants.
	Rule string
	// Message says what is wrong in words, without the path.
	Message string
}

// String renders the problem for a log line or a lint report.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message + " (" + p.Rule + ")"
	}
	return p.Path + ": " + p.Message + " (" + p.Rule + ")"
}

// ValidateDict checks a decoded plist dictionary against keys: unknown keys,
// wrong types, missing required keys, values outside the rangelist, the
// range or the format, recursing into dictionaries and array elements. path
// prefixes every Problem.Path ("" at the top).
//
// Values are the types github.com/micromdm/plist decodes into an interface:
// string, int64 or uint64, float64 (float32 from binary plists), bool,
// time.Time, []byte, []any and map[string]any. Other Go integer, float,
// slice and string-keyed map types are accepted too, for values built by
// hand. An integer is accepted where a <real> is expected; <any> accepts
// everything. Keys named "ANY…" match any key no other entry names; their
// presence is not enforced. A <dictionary> or <array> without subkeys is not
// looked into. A string whose key has subkeys must be one of their names
// (DeviceInformation queries). An array whose key has several subkeys
// (Settings items) reports each element against the alternative it fits best.
//
// ValidateDict ignores OS support: a key Apple requires on macOS only is
// reported missing from an iOS message. Use Schema.ValidateFor for that.
//
// Problems come in a stable order: a dictionary's keys sorted, then its
// missing required keys in schema order.
func ValidateDict(keys []Key, dict map[string]any, path string) []Problem {
	v := &validator{}
	v.dict(keys, dict, path, 1, nil)
	return v.problems
}

// ValidateFor is ValidateDict for a message from, or a payload for, one OS
// ("iOS", "macOS", …) and version ("" for any version): a required key that
// the schema marks as unavailable there (introduced n/a, later, or removed,
// after inheritance; see Effective) is not reported missing. An iOS
// Authenticate message has no DeviceName, which Apple requires on macOS only.
//
// keys is s.PayloadKeys, s.ResponseKeys or a subkey list inside s; a list
// from elsewhere is checked against the payload-level support alone.
func (s *Schema) ValidateFor(os, version string, keys []Key, dict map[string]any, path string) []Problem {
	v := &validator{schema: s, os: os, version: version}
	var parents []*Key
	if len(keys) > 0 {
		if p := s.KeyPath(&keys[0]); len(p) > 0 {
			parents = p[:len(p)-1]
		}
	}
	v.dict(keys, dict, path, 1, parents)
	return v.problems
}

// ValidateValue checks one value against one key; see ValidateDict.
func ValidateValue(k *Key, value any, path string) []Problem {
	v := &validator{}
	v.value(k, value, path, 0, nil)
	return v.problems
}

type validator struct {
	problems []Problem

	// With a schema, required keys unavailable on os/version are not
	// reported missing; chains of keys are then tracked for inheritance.
	schema      *Schema
	os, version string
}

// extend returns chain with k appended, without sharing chain's array; it is
// nil (and free) when no schema asks for OS checks.
func (v *validator) extend(chain []*Key, k *Key) []*Key {
	if v.schema == nil {
		return nil
	}
	return append(chain[:len(chain):len(chain)], k)
}

// unavailable reports whether the key at the end of chain does not exist on
// the validator's OS and version.
func (v *validator) unavailable(chain []*Key) bool {
	if v.schema == nil {
		return false
	}
	e := v.schema.EffectivePath(v.os, chain...)
	if v.version == "" {
		return !e.Supported()
	}
	return !e.AvailableIn(v.version)
}

func (v *validator) add(path, rule, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) tooDeep(path string) {
	v.add(path, RuleTooDeep, "nested more than %d containers deep; not checked further", MaxDepth)
}

// dict checks a dictionary's entries; depth counts the containers around
// them, this dictionary included.
func (v *validator) dict(keys []Key, dict map[string]any, path string, depth int, parents []*Key) {
	named := make(map[string]*Key, len(keys))
	var wildcard *Key
	for i := range keys {
		k := &keys[i]
		if k.Wildcard() {
			if wildcard == nil {
				wildcard = k
			}
			continue
		}
		if _, dup := named[k.Name]; !dup {
			named[k.Name] = k
		}
	}
	names := make([]string, 0, len(dict))
	for n := range dict {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := joinKey(path, n)
		k := named[n]
		if k == nil {
			k = wildcard
		}
		if k == nil {
			v.add(p, RuleUnknownKey, "key %q is not defined here%s", n, suggest(n, keys))
			continue
		}
		v.value(k, dict[n], p, depth, v.extend(parents, k))
	}
	for i := range keys {
		k := &keys[i]
		if k.Required() && !k.Wildcard() {
			if _, ok := dict[k.Name]; !ok && !v.unavailable(v.extend(parents, k)) {
				v.add(joinKey(path, k.Name), RuleMissingRequired, "required key %q is missing (%s)", k.Name, k.Type)
			}
		}
	}
}

// value checks one value; depth counts the containers around it.
func (v *validator) value(k *Key, val any, path string, depth int, chain []*Key) {
	got := PlistType(val)
	if !typeMatches(k.Type, got) {
		v.add(path, RuleWrongType, "expected %s, got %s", k.Type, describe(got, val))
		return
	}
	switch k.Type {
	case "<string>":
		s := reflect.ValueOf(val).String()
		v.rangeList(k, val, path)
		v.valueSubkeys(k, s, path)
		if k.Format != "" {
			if re := compiled(k.Format); re != nil && !re.MatchString(s) {
				v.add(path, RuleFormat, "%s does not match the format %s", quoteShort(s), k.Format)
			}
		}
	case "<integer>", "<real>":
		v.rangeList(k, val, path)
		if k.Range != nil {
			f, _ := toFloat(val)
			if (k.Range.Min != nil && f < *k.Range.Min) || (k.Range.Max != nil && f > *k.Range.Max) {
				v.add(path, RuleOutOfRange, "%v is outside the range %s", val, rangeString(k.Range))
			}
		}
	case "<boolean>":
		v.rangeList(k, val, path)
	case "<array>":
		elems := asSlice(val)
		if len(k.Subkeys) == 0 {
			return
		}
		if depth+1 > MaxDepth {
			v.tooDeep(path)
			return
		}
		if rep := k.Subkeys[0].Repetition; len(k.Subkeys) == 1 && rep != nil {
			n := float64(len(elems))
			if (rep.Min != nil && n < *rep.Min) || (rep.Max != nil && n > *rep.Max) {
				v.add(path, RuleRepetition, "has %d elements, allowed %s", len(elems), rangeString(rep))
			}
		}
		for i, e := range elems {
			v.element(k.Subkeys, e, path+"["+strconv.Itoa(i)+"]", depth+1, chain)
		}
	case "<dictionary>":
		if len(k.Subkeys) == 0 {
			return
		}
		if depth+1 > MaxDepth {
			v.tooDeep(path)
			return
		}
		v.dict(k.Subkeys, asMap(val), path, depth+1, chain)
	}
}

// element checks an array element. With one subkey that is the element's
// description; with several, each is an alternative (Settings items, told
// apart by their Item value) and the element is reported against the one it
// fits best.
func (v *validator) element(alts []Key, e any, path string, depth int, parents []*Key) {
	if len(alts) == 1 {
		v.value(&alts[0], e, path, depth, v.extend(parents, &alts[0]))
		return
	}
	var best []Problem
	for i := range alts {
		sub := &validator{schema: v.schema, os: v.os, version: v.version}
		sub.value(&alts[i], e, path, depth, v.extend(parents, &alts[i]))
		if len(sub.problems) == 0 {
			return
		}
		if best == nil || len(sub.problems) < len(best) {
			best = sub.problems
		}
	}
	v.problems = append(v.problems, best...)
}

func (v *validator) rangeList(k *Key, val any, path string) {
	if len(k.RangeList) == 0 {
		return
	}
	for _, allowed := range k.RangeList {
		if sameValue(allowed, val) {
			return
		}
	}
	v.add(path, RuleNotInRangeList, "%s is not one of %s", quoteShort(val), listShort(k.RangeList))
}

// valueSubkeys handles a scalar whose subkeys name its possible values
// (DeviceInformation's query names).
func (v *validator) valueSubkeys(k *Key, s, path string) {
	if len(k.Subkeys) == 0 {
		return
	}
	names := make([]any, 0, len(k.Subkeys))
	for i := range k.Subkeys {
		if k.Subkeys[i].Name == s {
			return
		}
		names = append(names, k.Subkeys[i].Name)
	}
	v.add(path, RuleNotInRangeList, "%s is not one of %s", quoteShort(s), listShort(names))
}

// PlistType names the plist type of a Go value as Apple's schemas write it
// ("<string>", "<dictionary>"…), or "" for a value no plist
// holds.
func PlistType(v any) string {
	switch v.(type) {
	case nil:
		return ""
	case string:
		return "<string>"
	case bool:
		return "<boolean>"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "<integer>"
	case float32, float64:
		return "<real>"
	case time.Time:
		return "<date>"
	case []byte:
		return "<data>"
	case []any:
		return "<array>"
	case map[string]any:
		return "<dictionary>"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return "<string>"
	case reflect.Bool:
		return "<boolean>"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "<integer>"
	case reflect.Float32, reflect.Float64:
		return "<real>"
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return "<data>"
		}
		return "<array>"
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			return "<dictionary>"
		}
	}
	return ""
}

func typeMatches(want, got string) bool {
	switch want {
	case "", "<any>":
		return true
	case "<real>":
		return got == "<real>" || got == "<integer>"
	case "<string>", "<integer>", "<boolean>", "<date>", "<data>", "<array>", "<dictionary>":
		return got == want
	}
	// A type this package does not know: do not guess.
	return true
}

func describe(got string, val any) string {
	if got == "" {
		if val == nil {
			return "no value"
		}
		return fmt.Sprintf("a %T, which is not a plist type", val)
	}
	switch got {
	case "<string>", "<integer>", "<real>", "<boolean>":
		return got + " " + quoteShort(val)
	}
	return got
}

func asSlice(v any) []any {
	if s, ok := v.([]any); ok {
		return s
	}
	rv := reflect.ValueOf(v)
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out
}

func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	rv := reflect.ValueOf(v)
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		out[iter.Key().String()] = iter.Value().Interface()
	}
	return out
}

// sameValue compares an allowed value from the schema with a plist value:
// strings and booleans exactly, numbers by value (2 == 2.0).
func sameValue(allowed, val any) bool {
	switch a := allowed.(type) {
	case string:
		rv := reflect.ValueOf(val)
		return rv.Kind() == reflect.String && rv.String() == a
	case bool:
		rv := reflect.ValueOf(val)
		return rv.Kind() == reflect.Bool && rv.Bool() == a
	}
	ai, aok := toBigInt(allowed)
	vi, vok := toBigInt(val)
	if aok && vok {
		return ai.Cmp(vi) == 0
	}
	af, aok := toFloat(allowed)
	vf, vok := toFloat(val)
	return aok && vok && af == vf
}

func toBigInt(v any) (*big.Int, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return big.NewInt(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return new(big.Int).SetUint64(rv.Uint()), true
	}
	return nil, false
}

func toFloat(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return math.NaN(), false
}

func rangeString(r *Range) string {
	lo, hi := "…", "…"
	if r.Min != nil {
		lo = strconv.FormatFloat(*r.Min, 'g', -1, 64)
	}
	if r.Max != nil {
		hi = strconv.FormatFloat(*r.Max, 'g', -1, 64)
	}
	return "[" + lo + ", " + hi + "]"
}

// Messages quote values, but never at unbounded length: the value may be an
// attacker's megabyte string.
const maxQuoted = 64

func quoteShort(v any) string {
	if rv := reflect.ValueOf(v); rv.IsValid() && rv.Kind() == reflect.String {
		s := rv.String()
		if len(s) > maxQuoted {
			return strconv.Quote(s[:maxQuoted]) + "…"
		}
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func listShort(vals []any) string {
	const maxItems = 12
	parts := make([]string, 0, min(len(vals), maxItems)+1)
	for i, x := range vals {
		if i == maxItems {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(vals)-maxItems))
			break
		}
		parts = append(parts, quoteShort(x))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// suggest points at a key that differs only in case, the most common slip
// ("payloadType" for "PayloadType").
func suggest(name string, keys []Key) string {
	for i := range keys {
		if !keys[i].Wildcard() && strings.EqualFold(keys[i].Name, name) {
			return fmt.Sprintf("; did you mean %q?", keys[i].Name)
		}
	}
	return ""
}

// joinKey appends a dictionary key to a path, with a dot for plain names and
// a quoted index otherwise ("Key Type", "com.apple.EnergySaver.desktop.ACPower").
func joinKey(path, name string) string {
	if isPlainName(name) {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

func isPlainName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

var formats sync.Map // pattern -> *regexp.Regexp, or nil when it does not compile

// compiled returns the format's regular expression, or nil for a pattern Go's
// regexp cannot compile (none in the current release; a test checks).
func compiled(pattern string) *regexp.Regexp {
	if re, ok := formats.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		re = nil
	}
	formats.Store(pattern, re)
	return re
}

// FromJSON turns a value decoded from JSON into the types the validator
// (and a plist) use: a whole number (a json.Number from a decoder with
// UseNumber, or a float64) becomes an int64, any other number a float64;
// dictionaries and arrays are copied, converted all the way down. A null
// stays nil. Declarations and status reports are JSON; Apple's schemas
// describe them in plist types.
func FromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x)
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = FromJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = FromJSON(e)
		}
		return out
	}
	return v
}
