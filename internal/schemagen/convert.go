package main

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// The JSON shapes below are the contract with package mdm/schema, which
// decodes the same field names. Empty fields are omitted to keep the file
// small; a present-but-empty OS entry is kept as {} because "listed with no
// extra rules" differs from "not listed".

type document struct {
	Source   source  `json:"source"`
	KeyLists [][]key `json:"keylists"`
	Schemas  []sch   `json:"schemas"`
}

type source struct {
	Path       string            `json:"path"`
	SHA256     string            `json:"sha256"`
	OSVersions map[string]string `json:"osVersions"`
	Files      map[string]int    `json:"files"`
	Generator  string            `json:"generator"`
}

type sch struct {
	Kind            string                `json:"kind"`
	File            string                `json:"file"`
	PayloadType     string                `json:"payloadtype,omitempty"`
	RequestType     string                `json:"requesttype,omitempty"`
	DeclarationType string                `json:"declarationtype,omitempty"`
	StatusItemType  string                `json:"statusitemtype,omitempty"`
	CredentialType  string                `json:"credentialtype,omitempty"`
	Apply           string                `json:"apply,omitempty"`
	Beta            bool                  `json:"beta,omitempty"`
	SupportedOS     map[string]*osSupport `json:"supportedOS,omitempty"`
	PayloadKeys     []key                 `json:"payloadkeys,omitempty"`
	PayloadKeysRef  *int                  `json:"payloadkeysref,omitempty"`
	ResponseKeys    []key                 `json:"responsekeys,omitempty"`
	ResponseKeysRef *int                  `json:"responsekeysref,omitempty"`
}

type key struct {
	Key         string                `json:"key"`
	Type        string                `json:"type,omitempty"`
	Presence    string                `json:"presence,omitempty"`
	Format      string                `json:"format,omitempty"`
	ValueType   string                `json:"valuetype,omitempty"`
	RangeList   []any                 `json:"rangelist,omitempty"`
	Range       *bounds               `json:"range,omitempty"`
	Repetition  *bounds               `json:"repetition,omitempty"`
	Default     any                   `json:"default,omitempty"`
	CombineType string                `json:"combinetype,omitempty"`
	AssetTypes  []string              `json:"assettypes,omitempty"`
	SupportedOS map[string]*osSupport `json:"supportedOS,omitempty"`
	Subkeys     []key                 `json:"subkeys,omitempty"`
	SubkeysRef  *int                  `json:"subkeysref,omitempty"`
}

type bounds struct {
	Min any `json:"min,omitempty"`
	Max any `json:"max,omitempty"`
}

type osSupport struct {
	Introduced         string    `json:"introduced,omitempty"`
	Deprecated         string    `json:"deprecated,omitempty"`
	Removed            string    `json:"removed,omitempty"`
	AccessRights       string    `json:"accessrights,omitempty"`
	Multiple           *bool     `json:"multiple,omitempty"`
	DeviceChannel      *bool     `json:"devicechannel,omitempty"`
	UserChannel        *bool     `json:"userchannel,omitempty"`
	Supervised         *bool     `json:"supervised,omitempty"`
	RequiresDEP        *bool     `json:"requiresdep,omitempty"`
	UserApprovedMDM    *bool     `json:"userapprovedmdm,omitempty"`
	AllowManualInstall *bool     `json:"allowmanualinstall,omitempty"`
	AlwaysSkippable    *bool     `json:"always-skippable,omitempty"`
	SharedIPad         *modeRule `json:"sharedipad,omitempty"`
	UserEnrollment     *modeRule `json:"userenrollment,omitempty"`
	AllowedEnrollments []string  `json:"allowed-enrollments,omitempty"`
	AllowedScopes      []string  `json:"allowed-scopes,omitempty"`
}

type modeRule struct {
	Mode          string `json:"mode,omitempty"`
	Behavior      string `json:"behavior,omitempty"`
	DeviceChannel *bool  `json:"devicechannel,omitempty"`
	UserChannel   *bool  `json:"userchannel,omitempty"`
	// A pointer, so that Apple's "allowed-scopes: []" (none: a Shared
	// iPad takes the declaration on no channel) stays distinct from no
	// rule.
	AllowedScopes *[]string `json:"allowed-scopes,omitempty"`
}

// Known fields per object. Prose fields are listed so they are dropped
// knowingly; a field not listed anywhere is an error, so that a new schema
// release with a new rule makes someone look instead of silently losing it.
var (
	topFields = fieldSet("title", "description", "payload", "payloadkeys", "responsekeys",
		"notes", "reasons", "related-status-items")
	payloadFields = fieldSet("payloadtype", "requesttype", "declarationtype", "statusitemtype",
		"credentialtype", "supportedOS", "apply", "content", "beta")
	keyFields = fieldSet("key", "title", "supportedOS", "type", "subtype", "valuetype", "assettypes",
		"asset-content-types", "presence", "rangelist", "range", "default", "format", "repetition",
		"combinetype", "content", "subkeytype", "subkeys")
	osFields = fieldSet("introduced", "deprecated", "removed", "accessrights", "multiple",
		"devicechannel", "userchannel", "supervised", "requiresdep", "userapprovedmdm",
		"allowmanualinstall", "sharedipad", "userenrollment", "always-skippable",
		"allowed-enrollments", "allowed-scopes")
	modeFields   = fieldSet("mode", "behavior", "devicechannel", "userchannel", "allowed-scopes")
	boundsFields = fieldSet("min", "max")
	osNames      = fieldSet("iOS", "macOS", "tvOS", "visionOS", "watchOS")
	keyTypes     = fieldSet("<string>", "<integer>", "<real>", "<boolean>", "<date>", "<data>",
		"<array>", "<dictionary>", "<any>")
)

func fieldSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// maxAliasDepth bounds alias chains and nesting reached through expanded
// aliases; Apple's deepest key nesting is 7.
const maxAliasDepth = 64

// maxKeysPerFile bounds the keys one file may expand to. Aliases to single
// key objects are expanded in place, so a file built like a "billion laughs"
// document could otherwise grow without limit; Apple's largest file has a
// few hundred keys.
const maxKeysPerFile = 100000

// converter holds the state shared across files: the key-list table.
type converter struct {
	doc   *document
	lists map[*yaml.Node]int // alias-target key list -> index in doc.KeyLists

	// per file
	file         string
	aliasTargets map[*yaml.Node]bool
	keyCount     int
}

func convertAll(in *input) (*document, error) {
	doc := &document{
		Source: source{
			SHA256:     in.digest,
			OSVersions: in.osVersions,
			Files:      map[string]int{},
			Generator:  "internal/schemagen",
		},
		KeyLists: [][]key{},
		Schemas:  []sch{},
	}
	c := &converter{doc: doc, lists: map[*yaml.Node]int{}}
	for _, f := range in.files {
		s, err := c.convertFile(f)
		if err != nil {
			return nil, err
		}
		doc.Schemas = append(doc.Schemas, s)
		doc.Source.Files[f.kind]++
	}
	return doc, nil
}

func (c *converter) convertFile(f inputFile) (sch, error) {
	c.file = f.rel
	var root yaml.Node
	if err := yaml.Unmarshal(f.data, &root); err != nil {
		return sch{}, fmt.Errorf("%s: %w", f.rel, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return sch{}, fmt.Errorf("%s: expected one YAML document", f.rel)
	}
	c.aliasTargets = map[*yaml.Node]bool{}
	c.keyCount = 0
	collectAliasTargets(root.Content[0], c.aliasTargets, map[*yaml.Node]bool{})

	top, err := c.mapping(root.Content[0], topFields, 0)
	if err != nil {
		return sch{}, err
	}
	out := sch{Kind: f.kind, File: f.rel}
	if n, ok := top["payload"]; ok {
		pf, err := c.mapping(n, payloadFields, 0)
		if err != nil {
			return sch{}, err
		}
		for name, dst := range map[string]*string{
			"payloadtype": &out.PayloadType, "requesttype": &out.RequestType,
			"declarationtype": &out.DeclarationType, "statusitemtype": &out.StatusItemType,
			"credentialtype": &out.CredentialType, "apply": &out.Apply,
		} {
			if v, ok := pf[name]; ok {
				if *dst, err = c.str(v); err != nil {
					return sch{}, err
				}
			}
		}
		if v, ok := pf["beta"]; ok {
			b, err := c.boolean(v)
			if err != nil {
				return sch{}, err
			}
			out.Beta = *b
		}
		if v, ok := pf["supportedOS"]; ok {
			if out.SupportedOS, err = c.supportedOS(v, 0); err != nil {
				return sch{}, err
			}
		}
	} else {
		return sch{}, fmt.Errorf("%s: no payload object", f.rel)
	}
	if n, ok := top["payloadkeys"]; ok {
		if out.PayloadKeys, out.PayloadKeysRef, err = c.keyList(n, 0); err != nil {
			return sch{}, err
		}
	}
	if n, ok := top["responsekeys"]; ok {
		if out.ResponseKeys, out.ResponseKeysRef, err = c.keyList(n, 0); err != nil {
			return sch{}, err
		}
	}
	return out, nil
}

// collectAliasTargets records every node some alias in the tree points at.
// It does not follow aliases, so recursive anchors terminate.
func collectAliasTargets(n *yaml.Node, out, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.AliasNode {
		out[n.Alias] = true
		return
	}
	for _, ch := range n.Content {
		collectAliasTargets(ch, out, seen)
	}
}

func (c *converter) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d:%d: %s", c.file, n.Line, n.Column, fmt.Sprintf(format, args...))
}

// resolve follows an alias chain to the node it names.
func (c *converter) resolve(n *yaml.Node) (*yaml.Node, error) {
	for i := 0; n.Kind == yaml.AliasNode; i++ {
		if i >= maxAliasDepth || n.Alias == nil {
			return nil, c.errf(n, "unresolvable alias")
		}
		n = n.Alias
	}
	return n, nil
}

// mapping returns the fields of a mapping node, rejecting unknown and
// duplicate names. A null node is an empty mapping.
func (c *converter) mapping(n *yaml.Node, known map[string]bool, depth int) (map[string]*yaml.Node, error) {
	if depth > maxAliasDepth {
		return nil, c.errf(n, "nesting deeper than %d", maxAliasDepth)
	}
	n, err := c.resolve(n)
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return map[string]*yaml.Node{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, c.errf(n, "expected a mapping")
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := n.Content[i]
		if kn.Kind != yaml.ScalarNode {
			return nil, c.errf(kn, "mapping key is not a scalar")
		}
		name := kn.Value
		if !known[name] {
			return nil, c.errf(kn, "unknown field %q (new in this schema release? teach schemagen and mdm/schema about it)", name)
		}
		if _, dup := out[name]; dup {
			return nil, c.errf(kn, "duplicate field %q", name)
		}
		out[name] = n.Content[i+1]
	}
	return out, nil
}

func (c *converter) str(n *yaml.Node) (string, error) {
	n, err := c.resolve(n)
	if err != nil {
		return "", err
	}
	if n.Kind != yaml.ScalarNode {
		return "", c.errf(n, "expected a scalar")
	}
	if n.ShortTag() == "!!null" {
		return "", nil
	}
	// The raw text, not the YAML-typed value: an unquoted 10.10 must stay
	// "10.10", not become the float 10.1.
	return n.Value, nil
}

func (c *converter) boolean(n *yaml.Node) (*bool, error) {
	n, err := c.resolve(n)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return nil, c.errf(n, "expected a boolean")
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return nil, c.errf(n, "%v", err)
	}
	return &b, nil
}

func (c *converter) strings(n *yaml.Node) ([]string, error) {
	n, err := c.resolve(n)
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.ScalarNode {
		if n.ShortTag() == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, c.errf(n, "expected a list of strings")
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		s, err := c.str(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// value converts a scalar to the Go value its YAML tag names: string, int64
// (uint64 when it does not fit), float64, bool or nil.
func (c *converter) value(n *yaml.Node) (any, error) {
	n, err := c.resolve(n)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.ScalarNode {
		return nil, c.errf(n, "expected a scalar value")
	}
	switch n.ShortTag() {
	case "!!str":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		err := n.Decode(&b)
		return b, err
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i, nil
		}
		var u uint64
		if err := n.Decode(&u); err != nil {
			return nil, c.errf(n, "integer out of range: %v", err)
		}
		return u, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, c.errf(n, "%v", err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, c.errf(n, "non-finite number %q cannot be written as JSON", n.Value)
		}
		return f, nil
	default:
		return nil, c.errf(n, "unsupported scalar tag %s", n.ShortTag())
	}
}

func (c *converter) bounds(n *yaml.Node) (*bounds, error) {
	m, err := c.mapping(n, boundsFields, 0)
	if err != nil {
		return nil, err
	}
	b := &bounds{}
	for name, dst := range map[string]*any{"min": &b.Min, "max": &b.Max} {
		if v, ok := m[name]; ok {
			x, err := c.value(v)
			if err != nil {
				return nil, err
			}
			switch x.(type) {
			case int64, uint64, float64, nil:
			default:
				return nil, c.errf(v, "%s bound is not a number", name)
			}
			*dst = x
		}
	}
	return b, nil
}

func (c *converter) supportedOS(n *yaml.Node, depth int) (map[string]*osSupport, error) {
	m, err := c.mapping(n, osNames, depth+1)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*osSupport, len(m))
	for name, v := range m {
		o, err := c.osEntry(v, depth+1)
		if err != nil {
			return nil, err
		}
		out[name] = o
	}
	return out, nil
}

func (c *converter) osEntry(n *yaml.Node, depth int) (*osSupport, error) {
	m, err := c.mapping(n, osFields, depth+1)
	if err != nil {
		return nil, err
	}
	o := &osSupport{}
	for name, dst := range map[string]*string{
		"introduced": &o.Introduced, "deprecated": &o.Deprecated, "removed": &o.Removed,
		"accessrights": &o.AccessRights,
	} {
		if v, ok := m[name]; ok {
			if *dst, err = c.str(v); err != nil {
				return nil, err
			}
		}
	}
	for name, dst := range map[string]**bool{
		"multiple": &o.Multiple, "devicechannel": &o.DeviceChannel, "userchannel": &o.UserChannel,
		"supervised": &o.Supervised, "requiresdep": &o.RequiresDEP, "userapprovedmdm": &o.UserApprovedMDM,
		"allowmanualinstall": &o.AllowManualInstall, "always-skippable": &o.AlwaysSkippable,
	} {
		if v, ok := m[name]; ok {
			if *dst, err = c.boolean(v); err != nil {
				return nil, err
			}
		}
	}
	for name, dst := range map[string]**modeRule{"sharedipad": &o.SharedIPad, "userenrollment": &o.UserEnrollment} {
		if v, ok := m[name]; ok {
			if *dst, err = c.modeRule(v, depth+1); err != nil {
				return nil, err
			}
		}
	}
	for name, dst := range map[string]*[]string{"allowed-enrollments": &o.AllowedEnrollments, "allowed-scopes": &o.AllowedScopes} {
		if v, ok := m[name]; ok {
			if *dst, err = c.strings(v); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

func (c *converter) modeRule(n *yaml.Node, depth int) (*modeRule, error) {
	m, err := c.mapping(n, modeFields, depth+1)
	if err != nil {
		return nil, err
	}
	r := &modeRule{}
	for name, dst := range map[string]*string{"mode": &r.Mode, "behavior": &r.Behavior} {
		if v, ok := m[name]; ok {
			if *dst, err = c.str(v); err != nil {
				return nil, err
			}
		}
	}
	for name, dst := range map[string]**bool{"devicechannel": &r.DeviceChannel, "userchannel": &r.UserChannel} {
		if v, ok := m[name]; ok {
			if *dst, err = c.boolean(v); err != nil {
				return nil, err
			}
		}
	}
	if v, ok := m["allowed-scopes"]; ok {
		scopes, err := c.strings(v)
		if err != nil {
			return nil, err
		}
		if scopes == nil {
			scopes = []string{}
		}
		r.AllowedScopes = &scopes
	}
	switch r.Mode {
	case "", "allowed", "required", "forbidden", "ignored":
	default:
		return nil, c.errf(n, "unknown mode %q", r.Mode)
	}
	return r, nil
}

// keyList converts a sequence of keys. A sequence that some alias points at
// goes into the shared key-list table and is returned as a reference.
func (c *converter) keyList(n *yaml.Node, depth int) ([]key, *int, error) {
	if depth > maxAliasDepth {
		return nil, nil, c.errf(n, "key nesting deeper than %d", maxAliasDepth)
	}
	target, err := c.resolve(n)
	if err != nil {
		return nil, nil, err
	}
	if c.aliasTargets[target] {
		if idx, ok := c.lists[target]; ok {
			return nil, &idx, nil
		}
		idx := len(c.doc.KeyLists)
		c.lists[target] = idx
		c.doc.KeyLists = append(c.doc.KeyLists, nil)
		// A shared list starts a fresh depth: recursion through it ends at
		// the reference above.
		keys, err := c.keys(target, 0)
		if err != nil {
			return nil, nil, err
		}
		if keys == nil {
			keys = []key{}
		}
		c.doc.KeyLists[idx] = keys
		return nil, &idx, nil
	}
	keys, err := c.keys(target, depth)
	return keys, nil, err
}

func (c *converter) keys(n *yaml.Node, depth int) ([]key, error) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, c.errf(n, "expected a list of keys")
	}
	out := make([]key, 0, len(n.Content))
	for _, e := range n.Content {
		k, err := c.key(e, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func (c *converter) key(n *yaml.Node, depth int) (key, error) {
	if c.keyCount++; c.keyCount > maxKeysPerFile {
		return key{}, c.errf(n, "more than %d keys after expanding aliases", maxKeysPerFile)
	}
	m, err := c.mapping(n, keyFields, depth)
	if err != nil {
		return key{}, err
	}
	var k key
	kn, ok := m["key"]
	if !ok {
		return key{}, c.errf(n, "key object without a \"key\" name")
	}
	if k.Key, err = c.str(kn); err != nil {
		return key{}, err
	}
	for name, dst := range map[string]*string{
		"type": &k.Type, "presence": &k.Presence, "format": &k.Format, "combinetype": &k.CombineType,
	} {
		if v, ok := m[name]; ok {
			if *dst, err = c.str(v); err != nil {
				return key{}, err
			}
		}
	}
	if k.Type != "" && !keyTypes[k.Type] {
		return key{}, c.errf(m["type"], "unknown key type %q", k.Type)
	}
	switch k.Presence {
	case "", "required", "optional":
	default:
		return key{}, c.errf(m["presence"], "unknown presence %q", k.Presence)
	}
	// subtype is the deprecated spelling of valuetype; keep one field.
	for _, name := range []string{"subtype", "valuetype"} {
		if v, ok := m[name]; ok {
			if k.ValueType, err = c.str(v); err != nil {
				return key{}, err
			}
		}
	}
	if v, ok := m["assettypes"]; ok {
		if k.AssetTypes, err = c.strings(v); err != nil {
			return key{}, err
		}
	}
	if v, ok := m["rangelist"]; ok {
		rv, err := c.resolve(v)
		if err != nil {
			return key{}, err
		}
		if rv.Kind != yaml.SequenceNode {
			return key{}, c.errf(rv, "rangelist is not a list")
		}
		k.RangeList = make([]any, 0, len(rv.Content))
		for _, e := range rv.Content {
			x, err := c.value(e)
			if err != nil {
				return key{}, err
			}
			k.RangeList = append(k.RangeList, x)
		}
	}
	if v, ok := m["range"]; ok {
		if k.Range, err = c.bounds(v); err != nil {
			return key{}, err
		}
	}
	if v, ok := m["repetition"]; ok {
		if k.Repetition, err = c.bounds(v); err != nil {
			return key{}, err
		}
	}
	if v, ok := m["default"]; ok {
		if k.Default, err = c.value(v); err != nil {
			return key{}, err
		}
	}
	if v, ok := m["supportedOS"]; ok {
		if k.SupportedOS, err = c.supportedOS(v, depth); err != nil {
			return key{}, err
		}
	}
	if v, ok := m["subkeys"]; ok {
		if k.Subkeys, k.SubkeysRef, err = c.keyList(v, depth+1); err != nil {
			return key{}, err
		}
	}
	return k, nil
}

// encodeDocument writes the document with one key list or schema per line:
// compact, yet a regeneration after an Apple release shows a readable diff.
func encodeDocument(doc *document) ([]byte, error) {
	var buf bytes.Buffer
	enc := func(v any) error {
		var b bytes.Buffer
		e := jsonEncoder(&b)
		if err := e.Encode(v); err != nil {
			return err
		}
		buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
		return nil
	}
	buf.WriteString(`{"source":`)
	if err := enc(doc.Source); err != nil {
		return nil, err
	}
	buf.WriteString(",\n\"keylists\":[")
	for i, l := range doc.KeyLists {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		if err := enc(l); err != nil {
			return nil, err
		}
	}
	buf.WriteString("\n],\n\"schemas\":[")
	for i, s := range doc.Schemas {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		if err := enc(s); err != nil {
			return nil, err
		}
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes(), nil
}

// kindCounts renders per-kind file counts in a stable order for comments.
func kindCounts(files map[string]int) string {
	names := make([]string, 0, len(files))
	total := 0
	for k, n := range files {
		names = append(names, k)
		total += n
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %d", k, files[k]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
