package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleScenarios runs every file in testdata/scenarios against an
// in-process server: they are the format's documentation and must pass.
func TestExampleScenarios(t *testing.T) {
	files, err := filepath.Glob("../testdata/scenarios/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("example scenarios: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var progress bytes.Buffer
			r := NewRunner(WithProgress(&progress))
			fr := r.RunFile(context.Background(), f)
			if fr.Error != nil {
				t.Fatalf("parse: %v", fr.Error)
			}
			for _, sc := range fr.Scenarios {
				if !sc.Passed {
					t.Errorf("scenario %q failed: %s\n%s", sc.Name, sc.Failure.Message, progress.String())
				}
				for _, st := range sc.Steps {
					if st.Skipped || st.Error != "" {
						t.Errorf("scenario %q: step %d skipped=%v error=%q", sc.Name, st.Index, st.Skipped, st.Error)
					}
				}
			}
			if t.Failed() {
				return
			}
			// The progress names every step of every scenario.
			for _, sc := range fr.Scenarios {
				if !strings.Contains(progress.String(), "PASS "+sc.Name) {
					t.Errorf("progress does not report %q:\n%s", sc.Name, progress.String())
				}
			}
		})
	}
}

// TestFailingScenarioJUnit runs the expected failure and reads the JUnit
// XML back with encoding/xml: one suite for the file, one case for the
// scenario, a failure naming step 6 (expect, line 18) with what was
// expected and what was seen; the steps after it are skipped.
func TestFailingScenarioJUnit(t *testing.T) {
	const file = "../testdata/scenarios/failing/expected-ack.yaml"
	rep := NewRunner().RunFiles(context.Background(), file)
	if rep.OK() {
		t.Fatal("the failing scenario passed")
	}
	sc := rep.Files[0].Scenarios[0]
	if sc.Failure == nil || sc.Failure.Step != 6 || sc.Failure.Kind != KindExpect || sc.Failure.Line != 18 {
		t.Fatalf("failure %+v, want step 6 (expect, line 18)", sc.Failure)
	}
	if !sc.Steps[6].Skipped || sc.Steps[5].Error == "" {
		t.Fatalf("steps after the failure should be skipped: %+v", sc.Steps)
	}

	var buf bytes.Buffer
	if err := rep.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
				SystemOut string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit XML does not parse: %v\n%s", err, buf.String())
	}
	if doc.Tests != 1 || doc.Failures != 1 || len(doc.Suites) != 1 || doc.Suites[0].Name != file || len(doc.Suites[0].Cases) != 1 {
		t.Fatalf("JUnit shape:\n%s", buf.String())
	}
	c := doc.Suites[0].Cases[0]
	if c.Name != "a failing command reported with its step" || c.Failure == nil {
		t.Fatalf("test case %+v", c)
	}
	for _, want := range []string{"step 6 (expect, line 18)", file + ":18", "expected Acknowledged within 2s", "saw Error", "12345"} {
		if !strings.Contains(c.Failure.Message, want) {
			t.Errorf("failure message %q does not say %q", c.Failure.Message, want)
		}
	}
	if c.Failure.Type != KindExpect || !strings.Contains(c.Failure.Body, "expected: Acknowledged within 2s") {
		t.Errorf("failure type %q body %q", c.Failure.Type, c.Failure.Body)
	}
	if !strings.Contains(c.SystemOut, "skip step 7 (expect, line 19)") {
		t.Errorf("system-out does not list the skipped step:\n%s", c.SystemOut)
	}

	// The JSON report says the same.
	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if f := back.Files[0].Scenarios[0].Failure; f == nil || f.Step != 6 || f.Expected != "Acknowledged within 2s" {
		t.Fatalf("JSON failure %+v", f)
	}
}

// TestParseErrorInJUnit: a file that does not parse is an error test case
// carrying file:line and the field, and the run is not OK.
func TestParseErrorInJUnit(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	writeFile(t, file, "name: x\nsteps:\n  - device: a\n    colour: red\n")
	rep := NewRunner().RunFiles(context.Background(), file)
	if rep.OK() {
		t.Fatal("a file that does not parse passed")
	}
	var buf bytes.Buffer
	if err := rep.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Errors int `xml:"errors,attr"`
		Suites []struct {
			Cases []struct {
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Errors != 1 || doc.Suites[0].Cases[0].Error == nil {
		t.Fatalf("JUnit:\n%s", buf.String())
	}
	if msg := doc.Suites[0].Cases[0].Error.Message; !strings.Contains(msg, file+":4:5: steps[1].colour: unknown field") {
		t.Fatalf("error message %q", msg)
	}
}

// TestDeterministicIdentities: the same scenario run twice gives devices
// the same identities (seeds), as the report notes them.
func TestDeterministicIdentities(t *testing.T) {
	src := "name: twice\nseed: 99\nsteps:\n  - device: a\n  - device: b\n    seed: 5\n"
	notes := func() []string {
		scs, err := Parse("twice.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		sr := NewRunner().Run(context.Background(), scs[0])
		if !sr.Passed {
			t.Fatal(sr.Failure.Message)
		}
		return append(sr.Steps[0].Notes, sr.Steps[1].Notes...)
	}
	first, second := notes(), notes()
	if strings.Join(first, "\n") != strings.Join(second, "\n") || !strings.Contains(first[0], "seed 99") || !strings.Contains(first[1], "seed 5") {
		t.Fatalf("identities differ between runs or seeds are wrong:\n%v\n%v", first, second)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestClock: a clock inside the test PKI's validity runs (server and
// devices on it: the enrollment's times are in the scenario's future); one
// outside it is refused, naming the window.
func TestClock(t *testing.T) {
	src := "name: later\nclock: +720h\nsteps:\n  - device: a\n  - enroll: a\n    path: profile\n  - expect: {device: a, enrolled: true}\n"
	scs, err := Parse("later.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	target, stop, err := InProcess(scs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sr := NewRunner(WithTarget(target)).Run(context.Background(), scs[0])
	if !sr.Passed {
		t.Fatal(sr.Failure.Message)
	}
	id := strings.TrimPrefix(sr.Steps[1].Notes[0], "a: enrolled as ")
	e, err := target.Client.GetEnrollment(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(e.EnrolledAt); d < 719*time.Hour || d > 721*time.Hour {
		t.Fatalf("enrolled_at %s is not 720h ahead", e.EnrolledAt)
	}

	scs, err = Parse("early.yaml", []byte("name: early\nclock: 2001-01-01T00:00:00Z\nsteps:\n  - device: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	sr = NewRunner().Run(context.Background(), scs[0])
	if sr.Passed || !strings.Contains(sr.Failure.Message, "early.yaml:1: clock 2001-01-01T00:00:00Z is outside the in-process test PKI's validity") {
		t.Fatalf("failure %+v", sr.Failure)
	}
}
