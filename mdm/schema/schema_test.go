package schema

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// srcDir is where go generate reads Apple's release from, relative to this
// package; tests that compare against the source skip when it is absent.
const srcDir = "../../../shared/apple-schema"

func haveSource(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(srcDir, "README.md")); err != nil {
		t.Skipf("Apple schema source not found at %s (%v); nothing to compare against", srcDir, err)
	}
}

func TestProvenance(t *testing.T) {
	p := Source()
	if p.SHA256 != generatedSHA256 {
		t.Fatalf("schema.json digest %s != zz_generated.go digest %s: regenerate with go generate", p.SHA256, generatedSHA256)
	}
	if ok, _ := regexp.MatchString(`^[0-9a-f]{64}$`, p.SHA256); !ok {
		t.Errorf("SHA256 = %q, want 64 hex digits", p.SHA256)
	}
	if p.Path != srcDir {
		t.Errorf("Path = %q, want %q (relative, as go generate passes it)", p.Path, srcDir)
	}
	for os, want := range map[string]string{"iOS": "18.1", "macOS": "15.1", "tvOS": "18.1", "visionOS": "2.1", "watchOS": "11.1"} {
		if got := p.OSVersions[os]; got != want {
			t.Errorf("OSVersions[%s] = %q, want %q", os, got, want)
		}
	}
	total := 0
	for _, n := range p.Files {
		total += n
	}
	if total != len(All()) {
		t.Errorf("provenance counts %d files, data holds %d schemas", total, len(All()))
	}
	// Source returns copies.
	p.OSVersions["iOS"] = "0"
	if Source().OSVersions["iOS"] != "18.1" {
		t.Error("Source() exposes its internal map")
	}
}

func TestEmbeddedSize(t *testing.T) {
	if len(schemaJSON) > 800<<10 {
		t.Errorf("schema.json is %d bytes; above ~800 KiB the brief asks for a gzipped embed", len(schemaJSON))
	}
}

// TestEveryFileRepresented counts the YAML files of the release per
// directory and checks each is in the data, under the right kind.
func TestEveryFileRepresented(t *testing.T) {
	byKind := map[string]int{}
	files := map[string]*Schema{}
	for _, s := range All() {
		byKind[s.Kind]++
		files[s.File] = s
	}
	if len(files) != len(All()) {
		t.Fatalf("duplicate File entries")
	}
	for kind, n := range Source().Files {
		if byKind[kind] != n {
			t.Errorf("kind %s: provenance says %d files, data has %d", kind, n, byKind[kind])
		}
	}

	haveSource(t)
	dirs := []struct {
		dir, kind string
		recursive bool
	}{
		{"mdm/profiles", KindProfile, false},
		{"mdm/commands", KindCommand, false},
		{"mdm/checkin", KindCheckin, false},
		{"mdm/errors", KindError, false},
		{"other", KindOther, false},
		{"declarative/declarations/assets/credentials", KindCredential, true},
		{"declarative/declarations", KindDeclaration, true},
		{"declarative/status", KindStatus, true},
		{"declarative/protocol", KindDDMProtocol, true},
	}
	seen := map[string]bool{}
	want := map[string]int{}
	for _, d := range dirs {
		root := filepath.Join(srcDir, d.dir)
		err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && p != root && !d.recursive {
				return filepath.SkipDir
			}
			if e.IsDir() || !strings.HasSuffix(p, ".yaml") {
				return nil
			}
			rel, _ := filepath.Rel(srcDir, p)
			rel = filepath.ToSlash(rel)
			if seen[rel] {
				return nil
			}
			seen[rel] = true
			want[d.kind]++
			s, ok := files[rel]
			if !ok {
				t.Errorf("%s is not in schema.json", rel)
			} else if s.Kind != d.kind {
				t.Errorf("%s has kind %s, want %s", rel, s.Kind, d.kind)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for kind, n := range want {
		if byKind[kind] != n {
			t.Errorf("kind %s: %d YAML files, %d schemas", kind, n, byKind[kind])
		}
	}
	if len(seen) != len(All()) {
		t.Errorf("%d YAML files, %d schemas", len(seen), len(All()))
	}
}

// TestRegenerationDeterministic runs the generator the way go generate does
// and requires byte-identical output: the committed data matches its source,
// and regenerating without changes changes nothing.
func TestRegenerationDeterministic(t *testing.T) {
	haveSource(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not installed: %v", err)
	}
	if testing.Short() {
		t.Skip("builds and runs the generator; skipped in -short")
	}
	tmp := t.TempDir()
	cmd := exec.Command(goBin, "run", "../../internal/schemagen",
		"-src", srcDir, "-out", filepath.Join(tmp, "schema.json"), "-go", filepath.Join(tmp, "zz_generated.go"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator failed: %v\n%s", err, out)
	}
	for _, name := range []string{"schema.json", "zz_generated.go"} {
		got, err := os.ReadFile(filepath.Join(tmp, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, committed) {
			t.Errorf("%s differs from a fresh generation (%d vs %d bytes): run go generate ./mdm/schema", name, len(committed), len(got))
		}
	}
}

func TestNamesUniqueAndComplete(t *testing.T) {
	for _, kind := range []string{KindCommand, KindCheckin, KindError, KindOther, KindDeclaration, KindStatus, KindDDMProtocol, KindCredential} {
		n := 0
		for _, s := range All() {
			if s.Kind == kind {
				n++
				if got, ok := Lookup(kind, s.Name()); !ok || got != s {
					t.Errorf("%s %q (%s) does not look up to itself", kind, s.Name(), s.File)
				}
			}
		}
		if len(Names(kind)) != n {
			t.Errorf("kind %s: %d names for %d files (duplicate names?)", kind, len(Names(kind)), n)
		}
		if !sort.StringsAreSorted(Names(kind)) {
			t.Errorf("Names(%s) not sorted", kind)
		}
	}
	if got := len(CommandTypes()); got != 66 {
		t.Errorf("CommandTypes() has %d entries, want 66", got)
	}
	for _, s := range All() {
		if s.Kind == KindProfile {
			if _, ok := Profile(s.PayloadType); !ok {
				t.Errorf("profile %s (%s) not found", s.PayloadType, s.File)
			}
		}
	}
	types := ProfileTypes()
	for _, pseudo := range []string{"TopLevel", "CommonPayloadKeys"} {
		for _, ty := range types {
			if ty == pseudo {
				t.Errorf("ProfileTypes() lists the pseudo type %s", pseudo)
			}
		}
	}
	if len(types) < 100 {
		t.Errorf("ProfileTypes() has only %d entries", len(types))
	}
}

func mustKey(t *testing.T, keys []Key, names ...string) *Key {
	t.Helper()
	k := FindKey(keys, names...)
	if k == nil {
		t.Fatalf("key %s not found", strings.Join(names, "/"))
	}
	return k
}

func TestProfileMDM(t *testing.T) {
	s, ok := Profile("com.apple.mdm")
	if !ok {
		t.Fatal("com.apple.mdm not found")
	}
	if s.Kind != KindProfile || s.File != "mdm/profiles/com.apple.mdm.yaml" || s.Name() != "com.apple.mdm" {
		t.Errorf("got kind %q file %q name %q", s.Kind, s.File, s.Name())
	}
	id := mustKey(t, s.PayloadKeys, "IdentityCertificateUUID")
	if id.Type != "<string>" || !id.Required() {
		t.Errorf("IdentityCertificateUUID: type %s presence %s", id.Type, id.Presence)
	}
	ar := mustKey(t, s.PayloadKeys, "AccessRights")
	if ar.Type != "<integer>" || ar.Required() {
		t.Errorf("AccessRights: type %s presence %s", ar.Type, ar.Presence)
	}
	sc := mustKey(t, s.PayloadKeys, "ServerCapabilities")
	if sc.Type != "<array>" || len(sc.Subkeys) != 1 || sc.Subkeys[0].Type != "<string>" {
		t.Fatalf("ServerCapabilities: %+v", sc)
	}
	caps := map[any]bool{}
	for _, v := range sc.Subkeys[0].RangeList {
		caps[v] = true
	}
	for _, c := range []string{"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken", "com.apple.mdm.token"} {
		if !caps[c] {
			t.Errorf("ServerCapabilities rangelist lacks %s", c)
		}
	}
	em := mustKey(t, s.PayloadKeys, "EnrollmentMode")
	if len(em.RangeList) != 2 || em.RangeList[0] != "BYOD" || em.RangeList[1] != "ADDE" {
		t.Errorf("EnrollmentMode rangelist = %v", em.RangeList)
	}
	ios := s.SupportedOS["iOS"]
	if ios.AllowManualInstall == nil || !*ios.AllowManualInstall || ios.Multiple == nil || *ios.Multiple {
		t.Errorf("com.apple.mdm iOS: allowmanualinstall/multiple = %v/%v", ios.AllowManualInstall, ios.Multiple)
	}

	common := CommonPayloadKeys()
	for _, n := range []string{"PayloadType", "PayloadIdentifier", "PayloadUUID", "PayloadVersion"} {
		k := mustKey(t, common, n)
		if !k.Required() {
			t.Errorf("common key %s not required", n)
		}
	}
	if FindKey(s.PayloadKeys, "PayloadUUID") != nil {
		t.Error("com.apple.mdm repeats common keys; the CommonPayloadKeys contract would double them")
	}
}

func TestProfileSCEPKeysWithSpaces(t *testing.T) {
	s, ok := Profile("com.apple.security.scep")
	if !ok {
		t.Fatal("com.apple.security.scep not found")
	}
	kt := mustKey(t, s.PayloadKeys, "PayloadContent", "Key Type")
	if kt.Type != "<string>" || kt.Default != "RSA" {
		t.Errorf("Key Type: type %s default %v", kt.Type, kt.Default)
	}
	ku := mustKey(t, s.PayloadKeys, "PayloadContent", "Key Usage")
	if ku.Type != "<integer>" || ku.Default != int64(0) {
		t.Errorf("Key Usage: type %s default %#v", ku.Type, ku.Default)
	}
	// macOS 10.11 for Key Usage, inherited everything else.
	if got := s.Effective("macOS", ku).Introduced; got != "10.11" {
		t.Errorf("Key Usage macOS introduced = %q", got)
	}
	if got, want := s.Effective("iOS", ku).Introduced, s.SupportedOS["iOS"].Introduced; got != want {
		t.Errorf("Key Usage iOS introduced = %q, want payload's %q", got, want)
	}
}

func TestTopLevelAndAliases(t *testing.T) {
	c, ok := Profile("Configuration")
	if !ok {
		t.Fatal("Configuration not found")
	}
	top, _ := Profile("TopLevel")
	if c != top || c.File != "mdm/profiles/TopLevel.yaml" {
		t.Errorf("Configuration -> %s", c.File)
	}
	pc := mustKey(t, c.PayloadKeys, "PayloadContent")
	if pc.Type != "<array>" || len(pc.Subkeys) != 1 || pc.Subkeys[0].Type != "<dictionary>" {
		t.Errorf("TopLevel PayloadContent: %+v", pc)
	}

	for _, name := range []string{"machineinfo", "MachineInfo", "MACHINEINFO"} {
		s, ok := Other(name)
		if !ok || s.File != "other/machineinfo.yaml" {
			t.Errorf("Other(%q) = %v, %v", name, s, ok)
		}
	}
	sk, ok := Other("skipkeys")
	if !ok || sk.PayloadType != "SkipKeys" {
		t.Fatalf("Other(skipkeys) = %v, %v", sk, ok)
	}
	if a := sk.SupportedOS["iOS"].AlwaysSkippable; a == nil || !*a {
		t.Errorf("SkipKeys iOS always-skippable = %v", a)
	}
	if _, ok := Other("nonesuch"); ok {
		t.Error("Other(nonesuch) found something")
	}

	au, ok := Checkin("Authenticate")
	if !ok || au.Kind != KindCheckin {
		t.Fatal("Checkin(Authenticate) not found")
	}
	mt := mustKey(t, au.PayloadKeys, "MessageType")
	if len(mt.RangeList) != 1 || mt.RangeList[0] != "Authenticate" {
		t.Errorf("MessageType rangelist = %v", mt.RangeList)
	}

	e, ok := Error("com.apple.softwareupdate.required")
	if !ok || e.File != "mdm/errors/softwareupdate.required.yaml" {
		t.Fatalf("Error(...softwareupdate.required) = %v", e)
	}
	if e2, _ := Error("softwareupdate.required"); e2 != e {
		t.Error("error not found by file name")
	}
	if _, ok := Error("com.apple.unrecognized.device"); !ok {
		t.Error("com.apple.unrecognized.device not found")
	}

	if _, ok := Declaration("com.apple.configuration.passcode.settings"); !ok {
		t.Error("passcode settings declaration not found")
	}
	if _, ok := StatusItem("device.identifier.udid"); !ok {
		t.Error("device.identifier.udid status item not found")
	}
	if _, ok := Lookup(KindDDMProtocol, "TokensResponse"); !ok {
		t.Error("TokensResponse not found")
	}
	if _, ok := Lookup(KindCredential, "com.apple.credential.scep"); !ok {
		t.Error("credential scep not found")
	}
}

func TestProfileVariants(t *testing.T) {
	mcx, ok := Profile("com.apple.MCX")
	if !ok {
		t.Fatal("com.apple.MCX not found")
	}
	vs := ProfileVariants("com.apple.MCX")
	if len(vs) < 2 {
		t.Fatalf("com.apple.MCX has %d variants", len(vs))
	}
	// Keys from different files are all there, once.
	seen := map[string]int{}
	for _, k := range mcx.PayloadKeys {
		seen[k.Name]++
	}
	for _, n := range []string{"EnableGuestAccount", "SleepDisabled", "dontAllowFDEDisable", "timeServer", "RequireAdminForIBSS", "DestroyFVKeyOnStandby"} {
		if seen[n] != 1 {
			t.Errorf("merged com.apple.MCX has %s %d times", n, seen[n])
		}
	}
	for _, v := range vs {
		if !strings.Contains(mcx.File, v.File) {
			t.Errorf("merged File %q does not name %s", mcx.File, v.File)
		}
	}
	// A payload mixing variants is valid.
	if p := ValidateDict(mcx.PayloadKeys, map[string]any{"EnableGuestAccount": true, "timeServer": "time.apple.com"}, ""); len(p) != 0 {
		t.Errorf("mixed MCX payload: %v", p)
	}

	sso, _ := Profile("com.apple.extensiblesso")
	if sso.File != "mdm/profiles/com.apple.extensiblesso.yaml" {
		t.Errorf("com.apple.extensiblesso resolves to %s, want the full file", sso.File)
	}
	if len(ProfileVariants("com.apple.extensiblesso")) != 2 {
		t.Errorf("extensiblesso variants: %d", len(ProfileVariants("com.apple.extensiblesso")))
	}
}

func TestDeviceInformation(t *testing.T) {
	s, ok := Command("DeviceInformation")
	if !ok {
		t.Fatal("DeviceInformation not found")
	}
	q := mustKey(t, s.PayloadKeys, "Queries")
	if q.Type != "<array>" || !q.Required() {
		t.Errorf("Queries: %s %s", q.Type, q.Presence)
	}
	item := mustKey(t, s.PayloadKeys, "Queries", "QueriesItem")
	if item.Type != "<string>" || len(item.Subkeys) < 80 {
		t.Errorf("QueriesItem: type %s with %d query names", item.Type, len(item.Subkeys))
	}
	qr := mustKey(t, s.ResponseKeys, "QueryResponses")
	if qr.Type != "<dictionary>" || !qr.Required() {
		t.Errorf("QueryResponses: %s %s", qr.Type, qr.Presence)
	}
	for name, typ := range map[string]string{"UDID": "<string>", "DeviceCapacity": "<real>", "IsSupervised": "<boolean>", "SerialNumber": "<string>"} {
		if k := mustKey(t, s.ResponseKeys, "QueryResponses", name); k.Type != typ {
			t.Errorf("QueryResponses.%s type %s, want %s", name, k.Type, typ)
		}
	}
}

func TestEffectiveInheritance(t *testing.T) {
	s, _ := Command("DeviceInformation")
	payload := s.SupportedOS["iOS"]

	udid := mustKey(t, s.PayloadKeys, "Queries", "QueriesItem", "UDID")
	e := s.Effective("iOS", udid)
	if e.UserEnrollment == nil || e.UserEnrollment.Mode != "forbidden" {
		t.Errorf("UDID query under UE: %+v, want forbidden", e.UserEnrollment)
	}
	if e.Introduced != payload.Introduced || e.Introduced != "4.0" {
		t.Errorf("UDID query introduced %q, want the command's %q", e.Introduced, payload.Introduced)
	}
	if e.AccessRights != "n/a" {
		t.Errorf("UDID query accessrights %q, want n/a (own value over the command's %q)", e.AccessRights, payload.AccessRights)
	}
	// Inherited, not named by the key.
	if e.Supervised == nil || *e.Supervised || e.SharedIPad == nil || e.SharedIPad.UserChannel == nil || !*e.SharedIPad.UserChannel {
		t.Errorf("UDID query lost the command's supervised/sharedipad: %+v", e)
	}
	if !e.AvailableIn("17.0") {
		t.Error("UDID query not available in iOS 17")
	}

	// A query UE allows: the command's UE rule shows through.
	name := mustKey(t, s.PayloadKeys, "Queries", "QueriesItem", "DeviceName")
	if e := s.Effective("iOS", name); e.UserEnrollment == nil || e.UserEnrollment.Mode != "allowed" || e.AccessRights != "AllowQueryDeviceInformation" {
		t.Errorf("DeviceName query: %+v / %q", e.UserEnrollment, e.AccessRights)
	}
	// ProvisioningUDID: macOS only.
	pu := mustKey(t, s.PayloadKeys, "Queries", "QueriesItem", "ProvisioningUDID")
	if s.Effective("iOS", pu).Supported() {
		t.Error("ProvisioningUDID supported on iOS")
	}
	if e := s.Effective("macOS", pu); !e.AvailableIn("11.3") || e.AvailableIn("11.2") {
		t.Errorf("ProvisioningUDID macOS: introduced %q", e.Introduced)
	}

	// A copy of a key is not found in the schema: payload plus the key only.
	cp := *udid
	if e := s.Effective("iOS", &cp); e.UserEnrollment.Mode != "forbidden" || e.Introduced != "4.0" {
		t.Errorf("copied key: %+v", e)
	}

	// The result is a copy.
	e.SharedIPad.Mode = "forbidden"
	*e.Supervised = true
	if s.SupportedOS["iOS"].SharedIPad.Mode != "allowed" || *s.SupportedOS["iOS"].Supervised {
		t.Error("mutating Effective's result changed the schema")
	}

	// Nested inheritance through a parent key: RequireBetaProgram is iOS
	// 17.5, its Description inherits that, not the document's 17.0.
	se, _ := Error("com.apple.softwareupdate.required")
	desc := mustKey(t, se.PayloadKeys, "details", "RequireBetaProgram", "Description")
	if got := se.Effective("iOS", desc).Introduced; got != "17.5" {
		t.Errorf("RequireBetaProgram.Description iOS introduced = %q, want 17.5 from its parent", got)
	}
	if got := se.EffectivePath("iOS", desc).Introduced; got != "17.0" {
		t.Errorf("EffectivePath(desc) = %q, want the document's 17.0", got)
	}
	if se.KeyPath(desc) == nil || len(se.KeyPath(desc)) != 3 {
		t.Errorf("KeyPath = %v", se.KeyPath(desc))
	}

	// Authenticate: DeviceName is macOS-only; n/a elsewhere.
	au, _ := Checkin("Authenticate")
	dn := mustKey(t, au.PayloadKeys, "DeviceName")
	if au.Effective("iOS", dn).Supported() || !au.Effective("macOS", dn).AvailableIn("10.7") {
		t.Error("Authenticate.DeviceName support wrong")
	}
	// An OS the schema does not list.
	if au.Effective("beOS", dn).Supported() {
		t.Error("unknown OS supported")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"10.13.4", "10.14", -1}, {"10.10", "10.9", 1}, {"9.0", "9", 0}, {"18.1", "18.1.0", 0},
		{"all", "4.0", -1}, {"17.5", "17.4.1", 1}, {"", "0", 0},
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	o := OSSupport{Introduced: "10.7", Removed: "15.0", Deprecated: "12.0"}
	if !o.AvailableIn("14.9") || o.AvailableIn("15.0") || o.AvailableIn("10.6.8") {
		t.Error("AvailableIn wrong")
	}
	if !o.DeprecatedIn("12.0") || o.DeprecatedIn("11.7") {
		t.Error("DeprecatedIn wrong")
	}
	if (OSSupport{Introduced: "n/a"}).Supported() || !(OSSupport{Introduced: "all"}).AvailableIn("1.0") {
		t.Error("n/a / all handling wrong")
	}
}

func TestRecursiveSubkeys(t *testing.T) {
	s, ok := Profile("com.apple.homescreenlayout")
	if !ok {
		t.Fatal("homescreenlayout not found")
	}
	icon := mustKey(t, s.PayloadKeys, "Dock", "IconItem")
	inner := mustKey(t, s.PayloadKeys, "Dock", "IconItem", "Pages", "PagesItem", "IconItem")
	if icon != inner {
		t.Error("recursive IconItem is not the same key (the anchor cycle was copied, not shared)")
	}
	pages := mustKey(t, s.PayloadKeys, "Pages")
	if &pages.Subkeys[0] != &mustKey(t, s.PayloadKeys, "Dock", "IconItem", "Pages").Subkeys[0] {
		t.Error("aliased Pages lists are not shared")
	}
	// KeyPath terminates on cycles and finds the first place.
	if p := s.KeyPath(inner); len(p) != 2 {
		t.Errorf("KeyPath(IconItem) has %d keys, want 2", len(p))
	}
	if s.KeyPath(&Key{Name: "IconItem"}) != nil {
		t.Error("KeyPath found a key not in the schema")
	}
}

func TestFormatsCompile(t *testing.T) {
	var visit func(keys []Key, seen map[*Key]bool)
	n := 0
	visit = func(keys []Key, seen map[*Key]bool) {
		if len(keys) == 0 || seen[&keys[0]] {
			return
		}
		seen[&keys[0]] = true
		for i := range keys {
			k := &keys[i]
			if k.Format != "" {
				n++
				if _, err := regexp.Compile(k.Format); err != nil {
					t.Errorf("format %q does not compile in Go: %v", k.Format, err)
				}
			}
			if k.Type == "" {
				t.Errorf("key %s without a type", k.Name)
			}
			visit(k.Subkeys, seen)
		}
	}
	for _, s := range All() {
		seen := map[*Key]bool{}
		visit(s.PayloadKeys, seen)
		visit(s.ResponseKeys, seen)
	}
	if n == 0 {
		t.Error("no formats found")
	}
}

func TestLoadRejectsBrokenData(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":          `{`,
		"unknown field":     `{"source":{},"keylists":[],"schemas":[],"extra":1}`,
		"bad list ref":      `{"source":{},"keylists":[],"schemas":[{"kind":"profile","file":"x","payloadkeysref":3}]}`,
		"negative list ref": `{"source":{},"keylists":[[]],"schemas":[{"kind":"profile","file":"x","responsekeysref":-1}]}`,
		"bad subkey ref":    `{"source":{},"keylists":[[{"key":"a","subkeysref":9}]],"schemas":[]}`,
		"bad number":        `{"source":{},"keylists":[],"schemas":[{"kind":"profile","file":"x","payloadkeys":[{"key":"a","range":{"min":"x"}}]}]}`,
		"object rangelist":  `{"source":{},"keylists":[],"schemas":[{"kind":"profile","file":"x","payloadkeys":[{"key":"a","rangelist":[{}]}]}]}`,
	} {
		if _, err := load([]byte(doc)); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}

	// A key list that contains itself loads as a shared, cyclic structure.
	db, err := load([]byte(`{"source":{"sha256":"x"},"keylists":[[{"key":"Folder","type":"<array>","subkeysref":0}]],
		"schemas":[{"kind":"profile","file":"mdm/profiles/p.yaml","payloadtype":"p","payloadkeysref":0}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := db.byKind[KindProfile]["p"]
	if s == nil || &s.PayloadKeys[0] != &s.PayloadKeys[0].Subkeys[0] {
		t.Fatal("self-referencing key list was not shared")
	}
	// Validation of a deep value against it terminates at the depth bound.
	var v any = []any{}
	for i := 0; i < 200; i++ {
		v = []any{v}
	}
	if ps := ValidateDict(s.PayloadKeys, map[string]any{"Folder": v}, ""); len(ps) != 1 || ps[0].Rule != RuleTooDeep {
		t.Errorf("got %v", ps)
	}
}

// TestEmptyAllowedScopesKept: Apple's "allowed-scopes: []" under sharedipad
// (passcode settings: no channel on a Shared iPad) survives generation and
// the overlay as an empty list, distinct from no rule.
func TestEmptyAllowedScopesKept(t *testing.T) {
	s, ok := Declaration("com.apple.configuration.passcode.settings")
	if !ok {
		t.Fatal("passcode settings not in the schema")
	}
	o := s.EffectivePath("iOS")
	if o.SharedIPad == nil || o.SharedIPad.AllowedScopes == nil || len(o.SharedIPad.AllowedScopes) != 0 {
		t.Errorf("passcode settings' Shared iPad rule: %+v, want allowed-scopes empty, not absent", o.SharedIPad)
	}
	m, _ := Declaration("com.apple.configuration.math.settings")
	if got := m.EffectivePath("iOS").SharedIPad; got == nil || len(got.AllowedScopes) != 2 {
		t.Errorf("math settings' Shared iPad rule: %+v, want system and user", got)
	}
}
