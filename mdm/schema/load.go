package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed schema.json
var schemaJSON []byte

var (
	loadOnce sync.Once
	loaded   *database
)

// data decodes the embedded JSON on first use. The file is generated and
// tested with the package, so a decode failure is a build defect, not a
// runtime condition: it panics with a message that says so.
func data() *database {
	loadOnce.Do(func() {
		db, err := load(schemaJSON)
		if err != nil {
			panic("mdm/schema: embedded schema.json does not decode (regenerate with go generate ./mdm/schema): " + err.Error())
		}
		loaded = db
	})
	return loaded
}

// database is the decoded, indexed data.
type database struct {
	source  Provenance
	all     []*Schema                     // every file, by File
	byKind  map[string]map[string]*Schema // kind -> name -> schema
	names   map[string][]string           // kind -> sorted names
	aliases map[string]map[string]*Schema // kind -> extra lookup names (not listed)
	// variants holds, per profile payload type, every file describing it.
	variants map[string][]*Schema
}

// The raw JSON shapes written by internal/schemagen.
type rawDoc struct {
	Source   rawSource  `json:"source"`
	KeyLists [][]rawKey `json:"keylists"`
	Schemas  []rawSch   `json:"schemas"`
}

type rawSource struct {
	Path       string            `json:"path"`
	SHA256     string            `json:"sha256"`
	OSVersions map[string]string `json:"osVersions"`
	Files      map[string]int    `json:"files"`
	Generator  string            `json:"generator"`
}

type rawSch struct {
	Kind            string           `json:"kind"`
	File            string           `json:"file"`
	PayloadType     string           `json:"payloadtype"`
	RequestType     string           `json:"requesttype"`
	DeclarationType string           `json:"declarationtype"`
	StatusItemType  string           `json:"statusitemtype"`
	CredentialType  string           `json:"credentialtype"`
	Apply           string           `json:"apply"`
	Beta            bool             `json:"beta"`
	SupportedOS     map[string]rawOS `json:"supportedOS"`
	PayloadKeys     []rawKey         `json:"payloadkeys"`
	PayloadKeysRef  *int             `json:"payloadkeysref"`
	ResponseKeys    []rawKey         `json:"responsekeys"`
	ResponseKeysRef *int             `json:"responsekeysref"`
}

type rawKey struct {
	Key         string           `json:"key"`
	Type        string           `json:"type"`
	Presence    string           `json:"presence"`
	Format      string           `json:"format"`
	ValueType   string           `json:"valuetype"`
	RangeList   []any            `json:"rangelist"`
	Range       *rawBounds       `json:"range"`
	Repetition  *rawBounds       `json:"repetition"`
	Default     any              `json:"default"`
	CombineType string           `json:"combinetype"`
	AssetTypes  []string         `json:"assettypes"`
	SupportedOS map[string]rawOS `json:"supportedOS"`
	Subkeys     []rawKey         `json:"subkeys"`
	SubkeysRef  *int             `json:"subkeysref"`
}

type rawBounds struct {
	Min *json.Number `json:"min"`
	Max *json.Number `json:"max"`
}

type rawOS struct {
	Introduced         string       `json:"introduced"`
	Deprecated         string       `json:"deprecated"`
	Removed            string       `json:"removed"`
	AccessRights       string       `json:"accessrights"`
	Multiple           *bool        `json:"multiple"`
	DeviceChannel      *bool        `json:"devicechannel"`
	UserChannel        *bool        `json:"userchannel"`
	Supervised         *bool        `json:"supervised"`
	RequiresDEP        *bool        `json:"requiresdep"`
	UserApprovedMDM    *bool        `json:"userapprovedmdm"`
	AllowManualInstall *bool        `json:"allowmanualinstall"`
	AlwaysSkippable    *bool        `json:"always-skippable"`
	SharedIPad         *rawModeRule `json:"sharedipad"`
	UserEnrollment     *rawModeRule `json:"userenrollment"`
	AllowedEnrollments []string     `json:"allowed-enrollments"`
	AllowedScopes      []string     `json:"allowed-scopes"`
}

type rawModeRule struct {
	Mode          string   `json:"mode"`
	Behavior      string   `json:"behavior"`
	DeviceChannel *bool    `json:"devicechannel"`
	UserChannel   *bool    `json:"userchannel"`
	AllowedScopes []string `json:"allowed-scopes"`
}

func load(b []byte) (*database, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var raw rawDoc
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}

	// Shared key lists are allocated first and filled in place, so a list
	// that (through its keys' subkeys) refers to itself ends up pointing at
	// its own backing array: recursion without copying.
	lists := make([][]Key, len(raw.KeyLists))
	for i, l := range raw.KeyLists {
		lists[i] = make([]Key, len(l))
	}
	c := &keyConverter{lists: lists}
	for i, l := range raw.KeyLists {
		for j := range l {
			if err := c.convert(&lists[i][j], &l[j]); err != nil {
				return nil, fmt.Errorf("keylists[%d][%d]: %w", i, j, err)
			}
		}
	}

	db := &database{
		source: Provenance{
			Path:       raw.Source.Path,
			SHA256:     raw.Source.SHA256,
			OSVersions: raw.Source.OSVersions,
			Files:      raw.Source.Files,
			Generator:  raw.Source.Generator,
		},
		byKind:   map[string]map[string]*Schema{},
		names:    map[string][]string{},
		aliases:  map[string]map[string]*Schema{},
		variants: map[string][]*Schema{},
	}
	for i := range raw.Schemas {
		rs := &raw.Schemas[i]
		s := &Schema{
			Kind:            rs.Kind,
			File:            rs.File,
			PayloadType:     rs.PayloadType,
			RequestType:     rs.RequestType,
			DeclarationType: rs.DeclarationType,
			StatusItemType:  rs.StatusItemType,
			CredentialType:  rs.CredentialType,
			Apply:           rs.Apply,
			Beta:            rs.Beta,
			SupportedOS:     convertOSMap(rs.SupportedOS),
		}
		var err error
		if s.PayloadKeys, err = c.list(rs.PayloadKeys, rs.PayloadKeysRef); err != nil {
			return nil, fmt.Errorf("%s payloadkeys: %w", rs.File, err)
		}
		if s.ResponseKeys, err = c.list(rs.ResponseKeys, rs.ResponseKeysRef); err != nil {
			return nil, fmt.Errorf("%s responsekeys: %w", rs.File, err)
		}
		s.name = lookupName(s)
		db.all = append(db.all, s)
	}
	sort.Slice(db.all, func(i, j int) bool { return db.all[i].File < db.all[j].File })
	db.index()
	return db, nil
}

// lookupName is the identifier a schema is found by.
func lookupName(s *Schema) string {
	var n string
	switch s.Kind {
	case KindProfile, KindOther:
		n = s.PayloadType
	case KindCommand, KindCheckin, KindDDMProtocol:
		n = s.RequestType
	case KindDeclaration:
		n = s.DeclarationType
	case KindStatus:
		n = s.StatusItemType
	case KindCredential:
		n = s.CredentialType
	case KindError:
		// Error documents have no type in their payload object; their
		// identity is the only value their "code" key allows.
		for i := range s.PayloadKeys {
			k := &s.PayloadKeys[i]
			if k.Name == "code" && len(k.RangeList) == 1 {
				if c, ok := k.RangeList[0].(string); ok {
					n = c
				}
			}
		}
	}
	if n == "" {
		n = fileBase(s.File)
	}
	return n
}

func fileBase(file string) string { return strings.TrimSuffix(path.Base(file), ".yaml") }

func (db *database) index() {
	add := func(m map[string]map[string]*Schema, kind, name string, s *Schema) bool {
		if m[kind] == nil {
			m[kind] = map[string]*Schema{}
		}
		if _, dup := m[kind][name]; dup {
			return false
		}
		m[kind][name] = s
		return true
	}
	for _, s := range db.all {
		if s.Kind == KindProfile {
			db.variants[s.name] = append(db.variants[s.name], s)
			continue
		}
		if add(db.byKind, s.Kind, s.name, s) {
			db.names[s.Kind] = append(db.names[s.Kind], s.name)
		}
		// Errors are also found by file name, and other formats by file
		// name and case-insensitively ("machineinfo", "skipkeys").
		switch s.Kind {
		case KindError:
			add(db.aliases, s.Kind, fileBase(s.File), s)
		case KindOther:
			add(db.aliases, s.Kind, strings.ToLower(s.name), s)
			add(db.aliases, s.Kind, strings.ToLower(fileBase(s.File)), s)
		}
	}
	for name, vs := range db.variants {
		db.byKind[KindProfile] = ensure(db.byKind[KindProfile])
		db.byKind[KindProfile][name] = primaryProfile(name, vs)
		db.names[KindProfile] = append(db.names[KindProfile], name)
	}
	// A profile's own PayloadType is "Configuration"; Apple's file calls its
	// schema TopLevel.
	if top, ok := db.byKind[KindProfile]["TopLevel"]; ok {
		add(db.aliases, KindProfile, "Configuration", top)
	}
	for _, n := range db.names {
		sort.Strings(n)
	}
}

func ensure(m map[string]*Schema) map[string]*Schema {
	if m == nil {
		return map[string]*Schema{}
	}
	return m
}

// primaryProfile picks the schema for a payload type. When Apple describes
// one payload type in several files, the file named after the type is the
// full description (com.apple.extensiblesso vs its Kerberos subset); with no
// such file (com.apple.MCX: Accounts, EnergySaver, FileVault2, …) each file
// holds part of the keys and they are merged, so a payload mixing them is
// not reported as having unknown keys.
func primaryProfile(name string, vs []*Schema) *Schema {
	if len(vs) == 1 {
		return vs[0]
	}
	for _, s := range vs {
		if fileBase(s.File) == name {
			return s
		}
	}
	m := &Schema{Kind: KindProfile, PayloadType: name, name: name, SupportedOS: map[string]OSSupport{}}
	var files []string
	seen := map[string]bool{}
	for _, s := range vs {
		files = append(files, s.File)
		for os, o := range s.SupportedOS {
			if _, ok := m.SupportedOS[os]; !ok {
				m.SupportedOS[os] = o
			}
		}
		for _, k := range s.PayloadKeys {
			if seen[k.Name] {
				continue
			}
			seen[k.Name] = true
			// Bake the variant's payload-level support into the key, so
			// Effective on the merged schema still answers for the file
			// the key came from.
			k.SupportedOS = bakeOS(s.SupportedOS, k.SupportedOS)
			m.PayloadKeys = append(m.PayloadKeys, k)
		}
	}
	m.File = strings.Join(files, ", ")
	return m
}

func bakeOS(payload, key map[string]OSSupport) map[string]OSSupport {
	out := make(map[string]OSSupport, len(payload))
	for os, o := range payload {
		out[os] = o
	}
	for os, o := range key {
		out[os] = overlay(out[os], o)
	}
	return out
}

type keyConverter struct {
	lists [][]Key
}

func (c *keyConverter) list(raw []rawKey, ref *int) ([]Key, error) {
	if ref != nil {
		if *ref < 0 || *ref >= len(c.lists) {
			return nil, fmt.Errorf("key list reference %d out of range", *ref)
		}
		return c.lists[*ref], nil
	}
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([]Key, len(raw))
	for i := range raw {
		if err := c.convert(&out[i], &raw[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", raw[i].Key, err)
		}
	}
	return out, nil
}

func (c *keyConverter) convert(dst *Key, r *rawKey) error {
	*dst = Key{
		Name:        r.Key,
		Type:        r.Type,
		Presence:    r.Presence,
		Format:      r.Format,
		ValueType:   r.ValueType,
		CombineType: r.CombineType,
		AssetTypes:  r.AssetTypes,
		SupportedOS: convertOSMap(r.SupportedOS),
	}
	var err error
	if len(r.RangeList) > 0 {
		dst.RangeList = make([]any, len(r.RangeList))
		for i, v := range r.RangeList {
			if dst.RangeList[i], err = typedValue(v, r.Type); err != nil {
				return err
			}
		}
	}
	if r.Default != nil {
		if dst.Default, err = typedValue(r.Default, r.Type); err != nil {
			return err
		}
	}
	if dst.Range, err = convertBounds(r.Range); err != nil {
		return err
	}
	if dst.Repetition, err = convertBounds(r.Repetition); err != nil {
		return err
	}
	dst.Subkeys, err = c.list(r.Subkeys, r.SubkeysRef)
	return err
}

// typedValue turns a JSON value into the Go type a plist decoder produces for
// the key's type: numbers become int64 (uint64 beyond int64) unless the key is
// <real>, then float64.
func typedValue(v any, typ string) (any, error) {
	n, ok := v.(json.Number)
	if !ok {
		switch v.(type) {
		case string, bool:
			return v, nil
		default:
			return nil, fmt.Errorf("unexpected value %v (%T)", v, v)
		}
	}
	if typ != "<real>" {
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(n.String(), 10, 64); err == nil {
			return u, nil
		}
	}
	f, err := n.Float64()
	if err != nil {
		return nil, err
	}
	return f, nil
}

func convertBounds(r *rawBounds) (*Range, error) {
	if r == nil {
		return nil, nil
	}
	out := &Range{}
	for _, p := range []struct {
		src *json.Number
		dst **float64
	}{{r.Min, &out.Min}, {r.Max, &out.Max}} {
		if p.src == nil {
			continue
		}
		f, err := p.src.Float64()
		if err != nil {
			return nil, err
		}
		*p.dst = &f
	}
	return out, nil
}

func convertOSMap(m map[string]rawOS) map[string]OSSupport {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]OSSupport, len(m))
	for os, r := range m {
		out[os] = OSSupport{
			Introduced:         r.Introduced,
			Deprecated:         r.Deprecated,
			Removed:            r.Removed,
			AccessRights:       r.AccessRights,
			Supervised:         r.Supervised,
			RequiresDEP:        r.RequiresDEP,
			UserApprovedMDM:    r.UserApprovedMDM,
			AllowManualInstall: r.AllowManualInstall,
			Multiple:           r.Multiple,
			DeviceChannel:      r.DeviceChannel,
			UserChannel:        r.UserChannel,
			AlwaysSkippable:    r.AlwaysSkippable,
			SharedIPad:         convertMode(r.SharedIPad),
			UserEnrollment:     convertMode(r.UserEnrollment),
			AllowedEnrollments: r.AllowedEnrollments,
			AllowedScopes:      r.AllowedScopes,
		}
	}
	return out
}

func convertMode(r *rawModeRule) *ModeRule {
	if r == nil {
		return nil
	}
	return &ModeRule{
		Mode:          r.Mode,
		Behavior:      r.Behavior,
		DeviceChannel: r.DeviceChannel,
		UserChannel:   r.UserChannel,
		AllowedScopes: r.AllowedScopes,
	}
}
