package device

import (
	"strings"
	"testing"
)

// predicateStatusOfAnIPad is what @status reads on a virtual iPad.
var predicateStatusOfAnIPad = map[string]any{
	"device.model.family":                    "iPad",
	"device.model.identifier":                "iPad13,18",
	"device.operating-system.family":         "iPadOS",
	"device.operating-system.version":        "18.1",
	"device.operating-system.build-version":  "22B83",
	"device.identifier.serial-number":        "ZG2ZT2TZ3TDN",
	"device.power.battery-health":            "Normal",
	"test.number":                            float64(7),
	"test.flag":                              true,
	"device.operating-system.supplemental.x": "",
}

// predicateEnvOfAnIPad adds the properties a management.properties
// declaration could set.
var predicateEnvOfAnIPad = func() *predicateEnv {
	props := map[string]any{}
	flattenStatus("", map[string]any{
		"site":   "Berlin",
		"groups": []any{"staff", "ipads"},
		"age":    float64(3),
		"team":   map[string]any{"name": "QA"},
	}, props)
	return &predicateEnv{status: predicateStatusOfAnIPad, properties: props}
}()

// TestPredicates: the NSPredicate forms an activation's Predicate over
// status items uses, each evaluated as NSPredicate does.
func TestPredicates(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{`@status(device.model.family) == "iPad"`, true},
		{`@status(device.model.family) == 'iPhone'`, false},
		{`@status(device.model.family) = "iPad"`, true},
		{`@status(device.model.family) != "iPad"`, false},
		{`@status(device.model.family) <> "Mac"`, true},
		{`@status(device.model.family) ==[c] "IPAD"`, true},
		{`@status(device.model.family) == "IPAD"`, false},
		{`@status(device.model.family) IN {"iPad", "iPhone"}`, true},
		{`@status(device.model.family) IN {'Mac', 'AppleTV'}`, false},
		{`@status(device.operating-system.version) BEGINSWITH "18."`, true},
		{`@status(device.operating-system.version) ENDSWITH ".1"`, true},
		{`@status(device.model.identifier) CONTAINS[cd] "ipad13"`, true},
		{`@status(device.model.identifier) LIKE "iPad1?,*"`, true},
		{`@status(device.model.identifier) LIKE "iPhone*"`, false},
		{`@status(device.operating-system.build-version) MATCHES "[0-9]+[A-Z][0-9]+"`, true},
		{`@status(device.operating-system.build-version) MATCHES "[0-9]+"`, false},
		{`@status(device.operating-system.version) >= "17.0"`, true},
		{`@status(device.operating-system.version) < "18"`, false},
		{`@status(test.number) > 6 AND @status(test.number) <= 7`, true},
		{`@status(test.number) == 7.0`, true},
		{`@status(test.flag) == YES`, true},
		{`@status(test.flag) == FALSE`, false},
		{`@status(device.no.such.item) == NULL`, true},
		{`@status(device.no.such.item) == "iPad"`, false},
		{`@status(device.no.such.item) != "iPad"`, true},
		{`NOT (@status(device.model.family) == "Mac")`, true},
		{`!(@status(device.model.family) == "iPad") || @status(test.number) == 7`, true},
		{`@status(device.model.family) == "Mac" OR @status(device.model.family) == "iPad" AND @status(test.number) == 1`, false},
		{`(@status(device.model.family) == "Mac" OR @status(device.model.family) == "iPad") && @status(test.number) == 7`, true},
		{`"iPad" == @status(device.model.family)`, true},
		{`TRUEPREDICATE`, true},
		{`FALSEPREDICATE OR TRUEPREDICATE`, true},
		{`@status(device.model.family) == "i\"Pad"`, false},
		{`@property(site) == "Berlin"`, true},
		{`@property(team.name) == 'QA'`, true},
		{`@property(age) < 5 AND @property(no-such) == nil`, true},
		{`ANY @property(groups) IN {"ipads", "macs"}`, true},
		{`SOME @property(groups) == "macs"`, false},
		{`ALL @property(groups) IN {"staff", "ipads"}`, true},
		{`ALL @property(groups) == "staff"`, false},
		{`NONE @property(groups) == "macs"`, true},
		{`NONE @property(groups) BEGINSWITH[c] "IP"`, false},
		{`ANY @status(device.model.family) == "iPad"`, true},
		{`ANY @property(no-such) == "x"`, false},
		{`ALL @property(no-such) == "x"`, true},
		{`@status(test.number) > 1e-5 AND @status(test.number) < 7.5E+1`, true},
		{`@status(device.model.identifier) LIKE "iPad*"`, true},
		{`@property(site) MATCHES "Ber.*"`, true},
		{`"1" == 1 AND NOT TRUE == 1`, true},
	} {
		p, err := parsePredicate(tc.src)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if got := p.eval(predicateEnvOfAnIPad); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.src, got, tc.want)
		}
	}
}

// TestPredicateParseErrors: a predicate the device cannot read is an error
// that says where and what, never a panic or a guess.
func TestPredicateParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{``, "expected @status(...), @property(...) or a literal"},
		{`@status(device.model.family)`, "expected a comparison operator"},
		{`@status(device.model.family) ==`, "expected @status(...), @property(...) or a literal"},
		{`@status(device.model.family) == "iPad`, "unterminated string"},
		{`@status device.model.family == "iPad"`, `expected "(" after @status`},
		{`@status(device.model.family == "iPad"`, `expected ")" after @status`},
		{`@status() == "iPad"`, "expected a status item"},
		{`model.family == "iPad"`, `"model.family" is not something the device evaluates`},
		{`SUBQUERY(x, $y, $y == 1).@count > 0`, `"SUBQUERY" is not something the device evaluates`},
		{`@key(identifier) == "x"`, `"@key" is not something the device evaluates`},
		{`@property(@status) == "x"`, "expected a property name"},
		{`ANY ANY @property(groups) == "x"`, `"ANY" is not something`},
		{`@status(device.model.family) == "iPad" AND`, "expected @status(...), @property(...) or a literal"},
		{`(@status(device.model.family) == "iPad"`, `expected ")"`},
		{`@status(device.model.family) == "iPad")`, `")" follows a complete predicate`},
		{`@status(device.model.family) ==[x] "iPad"`, "modifiers c, d or cd"},
		{`@status(device.model.family) LIKE @status(device.model.family)`, "LIKE needs a quoted pattern"},
		{`@status(device.model.family) MATCHES "("`, "does not compile"},
		{`@status(device.model.family) MATCHES "a)|(?:b"`, "does not compile"},
		{`@status(device.model.family) IN {"a", @status(x)}`, "holds literals, not @status"},
		{`@status(device.model.family) IN {"a" "b"}`, `expected "," or "}"`},
		{`@status(device.model.family) IN {{"a"}}`, "cannot hold another list"},
		{`@status(test.number) > 1e999`, "is not a number"},
		{`@status(device.model.family) == "iPad" # comment`, `the character '#' (no predicate operator uses it) follows a complete predicate`},
		{`@status(device.model.family) == #`, `the character '#' (no predicate operator uses it)`},
		{strings.Repeat("(", 100) + `TRUEPREDICATE` + strings.Repeat(")", 100), "nests deeper than 64"},
		{strings.Repeat("NOT ", 100) + `TRUEPREDICATE`, "nests deeper than 64"},
		{`@status(a) == "` + strings.Repeat("x", 5000) + `"`, "at most 4096"},
	} {
		_, err := parsePredicate(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: error %v, want one saying %q", tc.src, err, tc.want)
		}
	}
}

// FuzzPredicate: any string either parses and evaluates, or is refused
// with an error; never a panic or a hang.
func FuzzPredicate(f *testing.F) {
	for _, s := range []string{
		`@status(device.model.family) == "iPad"`,
		`(@status(test.number) > 6 AND NOT @status(test.flag) == NO) OR FALSEPREDICATE`,
		`@status(device.model.identifier) LIKE[c] "ipad*" || @status(x) IN {1, 'a', YES, NULL}`,
		`@status(device.operating-system.build-version) MATCHES "[0-9]+[A-Z]"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := parsePredicate(src)
		if err != nil {
			if p != nil {
				t.Fatal("a predicate and an error")
			}
			return
		}
		p.eval(predicateEnvOfAnIPad)
	})
}
