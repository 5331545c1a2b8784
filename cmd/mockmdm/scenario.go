package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/scenario"
)

const scenarioUsage = `mockmdm scenario — run enrollment and management stories written in YAML

Usage:
  mockmdm scenario run [flags] FILE|DIR…

Each file holds one scenario (or several, separated by ---); a directory
stands for its *.yaml and *.yml files. By default every scenario gets a fresh
in-process server (memory store, test PKI, the scenario's seed and clock);
with -server the scenarios run against a running mockmdm through its REST
API, and its virtual devices reach it over HTTPS.

The exit status is 0 when every scenario passed, 1 when one failed or a file
did not parse, 2 for a mistake on the command line.

Flags:
`

// scenarioCmd runs "mockmdm scenario …".
func scenarioCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprint(stdout, scenarioUsage)
		scenarioFlags(stdout).fs.PrintDefaults()
		return nil
	}
	if args[0] != "run" {
		return usageError{fmt.Errorf("unknown scenario command %q (see mockmdm scenario -h)", args[0])}
	}
	f := scenarioFlags(stderr)
	if err := f.fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if err := applyEnv(f.fs, getenv); err != nil {
		return err
	}
	files, err := scenarioFiles(f.fs.Args())
	if err != nil {
		return err
	}

	if *f.stepTimeout <= 0 {
		return usageError{fmt.Errorf("-step-timeout %s: give a positive duration", *f.stepTimeout)}
	}
	opts := []scenario.Option{scenario.WithStepTimeout(*f.stepTimeout)}
	if !*f.quiet {
		opts = append(opts, scenario.WithProgress(stdout))
	}
	if *f.server != "" {
		key := *f.apiKey
		if key == "" && *f.dataDir != "" {
			b, err := os.ReadFile(filepath.Join(*f.dataDir, "api-key"))
			if err != nil {
				return usageError{fmt.Errorf("no API key: give -api-key, or -data the server's data directory (%v)", err)}
			}
			key = strings.TrimSpace(string(b))
		}
		if key == "" {
			return usageError{errors.New("-server needs -api-key (or -data, the server's data directory holding api-key)")}
		}
		trust, hc, err := deviceClient(*f.caFile, *f.dataDir)
		if err != nil {
			return err
		}
		hc.Timeout = 0 // each step has its own deadline; long-polls must outlast a minute
		opts = append(opts, scenario.WithTarget(scenario.Connect(*f.server, key, hc, trust)), scenario.WithReset(*f.reset))
	} else if *f.reset {
		return usageError{errors.New("-reset is for -server: in-process scenarios always start from an empty server")}
	}

	rep := scenario.NewRunner(opts...).RunFiles(ctx, files...)
	if *f.junit != "" {
		if err := writeReport(*f.junit, rep.WriteJUnit); err != nil {
			return err
		}
	}
	if *f.jsonOut != "" {
		if err := writeReport(*f.jsonOut, rep.WriteJSON); err != nil {
			return err
		}
	}
	if *f.quiet {
		// Quiet prints no steps, but a failure must still say where it is.
		for _, fr := range rep.Files {
			if fr.Error != nil {
				fmt.Fprintf(stdout, "FAIL %v\n", fr.Error)
			}
			for _, sc := range fr.Scenarios {
				if sc.Failure != nil {
					fmt.Fprintf(stdout, "FAIL %s: %s\n", sc.Name, sc.Failure.Message)
				}
			}
		}
	}
	passed, failed := rep.Counts()
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios failed", failed, passed+failed)
	}
	return nil
}

type scenarioFlagSet struct {
	fs                              *flag.FlagSet
	server, apiKey, caFile, dataDir *string
	junit, jsonOut                  *string
	reset, quiet                    *bool
	stepTimeout                     *time.Duration
}

func scenarioFlags(out io.Writer) *scenarioFlagSet {
	fs := flag.NewFlagSet("mockmdm scenario run", flag.ContinueOnError)
	fs.SetOutput(out)
	f := &scenarioFlagSet{fs: fs}
	f.server = fs.String("server", "", "base URL of a running mockmdm to run against (default: a fresh in-process server per scenario)")
	f.apiKey = fs.String("api-key", "", "API key of -server (default: <data>/api-key)")
	f.caFile = fs.String("ca", "", "PEM CA certificate of -server to trust")
	f.dataDir = fs.String("data", "", "data directory of -server: its ca.pem and api-key")
	f.reset = fs.Bool("reset", false, "with -server: POST /v1/reset before each scenario (deletes the server's state except its PKI)")
	f.junit = fs.String("junit", "", "write a JUnit XML report to this file (one testsuite per file, one testcase per scenario)")
	f.jsonOut = fs.String("json", "", "write a JSON report to this file")
	f.quiet = fs.Bool("q", false, "print only the summary, not a line per step")
	f.stepTimeout = fs.Duration("step-timeout", 2*time.Minute, "longest a step may take when it gives no within of its own")
	return f
}

// scenarioFiles expands directories into their YAML files, sorted, and
// refuses an empty list.
func scenarioFiles(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, usageError{errors.New("give the scenario files (or directories) to run (see mockmdm scenario -h)")}
	}
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, usageError{fmt.Errorf("scenario %s: %w", a, err)}
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		var found []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(a, pat))
			found = append(found, m...)
		}
		if len(found) == 0 {
			return nil, usageError{fmt.Errorf("directory %s holds no *.yaml or *.yml scenario", a)}
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	return files, nil
}

// writeReport writes a report file, complete or not at all.
func writeReport(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}
