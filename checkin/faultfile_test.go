package checkin

import (
	"strings"
	"testing"
)

// TestParseFaultRulesErrors: each bad file is refused with the rule's
// position, the line and the field at fault.
func TestParseFaultRulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"unknown action", "rules:\n  - endpoint: mdm\n    action: status\n    status: 503\n  - endpoint: mdm\n    action: explode\n",
			[]string{"rule 2 (line 6)", "action", `"explode"`, "notnow", "scep-pending", "signing-time-skew"}},
		{"unknown field", "rules:\n  - action: drop\n    tiems: 2\n", []string{"rule 1 (line 3)", `unknown field "tiems"`, "times"}},
		{"bad fail_info", "rules:\n- action: scep-failure\n  endpoint: scep\n  fail_info: badLuck\n", []string{"rule 1 (line 4)", "fail_info", "badCertId"}},
		{"missing fail_info", "rules:\n- action: scep-failure\n", []string{"rule 1 (line 2)", "fail_info"}},
		{"bad skew", "rules:\n  - action: signing-time-skew\n\n    skew: lots\n", []string{"rule 1 (line 4)", "skew", `"lots"`}},
		{"not a number", "rules:\n  - action: status\n    status: teapot\n", []string{"rule 1 (line 3)", "status", "whole number"}},
		{"wrong endpoint", "rules:\n  - endpoint: enroll\n    action: notnow\n", []string{"rule 1 (line 2)", "endpoint", "mdm"}},
		{"missing action", "rules:\n  - endpoint: mdm\n", []string{"rule 1 (line 2)", "action", "missing"}},
		{"rule not a mapping", "rules:\n  - drop\n", []string{"rule 1 (line 2)", "mapping"}},
		{"no rules", "faults: []\n", []string{"line 1", `"rules"`}},
		{"rules not a list", "rules: drop\n", []string{"line 1", "list"}},
		{"json", "{\"rules\": [\n {\"action\": \"drop\"},\n {\"action\": \"notnow\", \"skew\": \"1m\"}\n]}", []string{"rule 2 (line 3)", "skew"}},
		{"not yaml", "rules: [\n", []string{"not YAML"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFaultRules([]byte(tc.file))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: does not say %q", err, w)
				}
			}
		})
	}
}

func TestParseFaultRules(t *testing.T) {
	rules, err := ParseFaultRules([]byte("# QA rules\nrules:\n  - endpoint: scep\n    action: scep-failure\n    fail_info: badcertid\n    times: 2\n  - action: signing-time-skew\n    skew: 10m\n  - endpoint: mdm\n    action: notnow\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 || rules[0].FailInfo != "badCertId" || rules[0].Times != 2 || rules[1].skew.Minutes() != 10 || rules[2].Action != FaultNotNow {
		t.Fatalf("%+v", rules)
	}
}

// FuzzParseFaultRules: no file makes the loader panic or accept a rule Add
// refuses.
func FuzzParseFaultRules(f *testing.F) {
	f.Add([]byte("rules:\n  - endpoint: mdm\n    action: status\n    status: 503\n"))
	f.Add([]byte(`{"rules":[{"action":"scep-failure","fail_info":"badAlg"}]}`))
	f.Add([]byte("rules: [{action: delay, delay: 2s}, {action: signing-time-skew, skew: 1m}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseFaultRules(data)
		if err != nil {
			return
		}
		for _, r := range rules {
			if err := r.check(); err != nil {
				t.Fatalf("parsed rule %+v fails check: %v", r, err)
			}
		}
	})
}
