package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/scenario"
)

const scenarioDir = "../../testdata/scenarios"

// TestScenarioRunInProcess: a passing and a failing file in-process; the
// exit status is 1, the summary counts both, and the JUnit and JSON
// reports are written and name the failed step.
func TestScenarioRunInProcess(t *testing.T) {
	dir := t.TempDir()
	junit, jsonOut := filepath.Join(dir, "out.xml"), filepath.Join(dir, "out.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"scenario", "run", "-junit", junit, "-json", jsonOut,
		filepath.Join(scenarioDir, "notnow.yaml"), filepath.Join(scenarioDir, "failing")}, envOf(), &stdout, &stderr)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("err = %v, want a failure with exit status 1\n%s", err, stdout.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "2 passed, 1 failed") || !strings.Contains(out, "FAIL step 6 (expect, line 18)") {
		t.Fatalf("output:\n%s", out)
	}
	raw, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("JUnit: %v", err)
	}
	if doc.Tests != 3 || doc.Failures != 1 || len(doc.Suites) != 2 || doc.Suites[1].Cases[0].Failure == nil ||
		!strings.Contains(doc.Suites[1].Cases[0].Failure.Message, "step 6 (expect, line 18)") {
		t.Fatalf("JUnit:\n%s", raw)
	}
	raw, err = os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Files []struct {
			Scenarios []struct{ Passed bool }
		}
	}
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Files) != 2 || !rep.Files[0].Scenarios[0].Passed || rep.Files[1].Scenarios[0].Passed {
		t.Fatalf("JSON report (%v):\n%s", err, raw)
	}
}

// TestScenarioRunAgainstServer runs every must-pass example against the
// built binary over real TLS sockets (SQLite store, its own PKI), through
// -server, -data and -reset.
func TestScenarioRunAgainstServer(t *testing.T) {
	dataDir := t.TempDir()
	p := startBinary(t, dataDir)
	base, _, _ := strings.Cut(p.url("API"), " ")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"scenario", "run", "-server", base, "-data", dataDir, "-reset", "-q", scenarioDir}, envOf(), &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	want := 0
	files, _ := filepath.Glob(filepath.Join(scenarioDir, "*.yaml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scs, err := scenario.Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		want += len(scs)
	}
	if want < 26 || !strings.Contains(stdout.String(), fmt.Sprintf("%d passed, 0 failed", want)) {
		t.Fatalf("want every one of the %d example scenarios to pass; output:\n%s", want, stdout.String())
	}
}

// TestScenarioUsage: command-line mistakes are usage errors (status 2)
// that say what to do.
func TestScenarioUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"scenario", "run"}, "give the scenario files"},
		{[]string{"scenario", "walk"}, `unknown scenario command "walk"`},
		{[]string{"scenario", "run", "-reset", scenarioDir}, "-reset is for -server"},
		{[]string{"scenario", "run", "-server", "https://127.0.0.1:1", scenarioDir}, "-server needs -api-key"},
		{[]string{"scenario", "run", "no-such-file.yaml"}, "no-such-file.yaml"},
		{[]string{"scenario", "run", "-step-timeout", "0s", scenarioDir}, "-step-timeout"},
		{[]string{"scenario", "run", "-bogus"}, "bogus"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, envOf(), &stdout, &stderr)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error()+stderr.String(), tc.msg) {
			t.Errorf("%v: err = %v (exit %d), want a usage error saying %q", tc.args, err, exitCode(err), tc.msg)
		}
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"scenario", "-h"}, envOf(), &stdout, &stdout); err != nil || !strings.Contains(stdout.String(), "-junit") {
		t.Fatalf("help: %v\n%s", err, stdout.String())
	}
}
