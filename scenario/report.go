package scenario

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is what a run of files did.
type Report struct {
	Files []FileReport `json:"files"`
}

// FileReport is one file: its parse error, or its scenarios.
type FileReport struct {
	File      string           `json:"file"`
	Error     *Error           `json:"error,omitempty"`
	Scenarios []ScenarioReport `json:"scenarios,omitempty"`
}

// ScenarioReport is one scenario's run.
type ScenarioReport struct {
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Passed   bool          `json:"passed"`
	Duration time.Duration `json:"duration_ns"`
	// Failure is the first failed step (nil when Passed).
	Failure *Failure     `json:"failure,omitempty"`
	Steps   []StepReport `json:"steps"`
}

// Failure names the failed step and what was expected against what was seen.
type Failure struct {
	// Step is the step's index (from 1; 0 when the scenario failed before
	// its first step, e.g. its server did not start).
	Step int    `json:"step"`
	Kind string `json:"kind,omitempty"`
	Line int    `json:"line,omitempty"`
	// Message reads "step 5 (expect, line 23) file.yaml:23: …".
	Message  string `json:"message"`
	Expected string `json:"expected,omitempty"`
	Seen     string `json:"seen,omitempty"`
}

// StepReport is one step's outcome.
type StepReport struct {
	Index    int           `json:"index"`
	Kind     string        `json:"kind"`
	Line     int           `json:"line"`
	Summary  string        `json:"summary"`
	Skipped  bool          `json:"skipped,omitempty"`
	Error    string        `json:"error,omitempty"`
	Expected string        `json:"expected,omitempty"`
	Seen     string        `json:"seen,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Counts returns how many scenarios passed and failed; a file that did not
// parse counts as one failure.
func (r *Report) Counts() (passed, failed int) {
	for _, f := range r.Files {
		if f.Error != nil {
			failed++
		}
		for _, s := range f.Scenarios {
			if s.Passed {
				passed++
			} else {
				failed++
			}
		}
	}
	return passed, failed
}

// OK reports whether every file parsed and every scenario passed.
func (r *Report) OK() bool {
	_, failed := r.Counts()
	return failed == 0 && len(r.Files) > 0
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// JUnit XML, in the shape CI systems read (Jenkins, GitLab, GitHub
// reporters): one testsuite per file, one testcase per scenario.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

// junitText keeps a multi-line log readable in the XML (CDATA, not one
// line of &#xA; escapes).
type junitText struct {
	Text string `xml:",cdata"`
}

// WriteJUnit writes the report as JUnit XML. A failed scenario's failure
// message names the step (index, kind, line) and what was expected and
// seen; a file that did not parse is an error test case named after the
// file, carrying file:line and the field.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{}
	for _, f := range r.Files {
		s := junitSuite{Name: f.File}
		var total time.Duration
		if f.Error != nil {
			s.Tests, s.Errors = 1, 1
			s.Cases = append(s.Cases, junitCase{Name: f.File, Classname: f.File, Time: "0",
				Error: &junitProblem{Message: f.Error.Error(), Type: "parse", Body: f.Error.Error()}})
		}
		for _, sc := range f.Scenarios {
			total += sc.Duration
			c := junitCase{Name: sc.Name, Classname: f.File, Time: seconds(sc.Duration), SystemOut: &junitText{stepLog(sc)}}
			s.Tests++
			if sc.Failure != nil {
				s.Failures++
				msg := sc.Failure.Message
				c.Failure = &junitProblem{Message: msg, Type: sc.Failure.Kind, Body: failureBody(sc)}
			}
			s.Cases = append(s.Cases, c)
		}
		s.Time = seconds(total)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func failureBody(sc ScenarioReport) string {
	var b strings.Builder
	f := sc.Failure
	fmt.Fprintf(&b, "%s\n", f.Message)
	if f.Expected != "" || f.Seen != "" {
		fmt.Fprintf(&b, "expected: %s\nseen:     %s\n", f.Expected, f.Seen)
	}
	return b.String()
}

// stepLog is the per-step log a CI page shows under the test case.
func stepLog(sc ScenarioReport) string {
	var b strings.Builder
	for _, st := range sc.Steps {
		state := "ok  "
		switch {
		case st.Skipped:
			state = "skip"
		case st.Error != "":
			state = "FAIL"
		}
		fmt.Fprintf(&b, "%s step %d (%s, line %d) %s\n", state, st.Index, st.Kind, st.Line, st.Summary)
		for _, n := range st.Notes {
			fmt.Fprintf(&b, "       %s\n", n)
		}
		if st.Error != "" {
			fmt.Fprintf(&b, "       %s\n", st.Error)
		}
	}
	return b.String()
}
