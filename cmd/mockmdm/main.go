// Command mockmdm is a mock Apple MDM server for testing: run with no
// arguments, it serves HTTPS on an embedded default (a data directory with a
// test CA, certificates, an API key and an SQLite store).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "mockmdm:", err)
		os.Exit(exitCode(err))
	}
}

// parseFlags parses args into fs, refuses stray arguments (naming the
// help to read) and fills unset flags from MOCKMDM_* variables. -h gives
// flag.ErrHelp; any other mistake is a usageError.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, help string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (see %s)", fs.Arg(0), help)}
	}
	return applyEnv(fs, getenv)
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// run is the whole program, testable: args without the program name, env
// for MOCKMDM_* fallbacks, and the output streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return serve(ctx, args[1:], getenv, stdout, stderr)
		case "fleet":
			return fleetCmd(ctx, args[1:], getenv, stdout, stderr)
		case "device":
			return deviceCmd(ctx, args[1:], getenv, stdout, stderr)
		case "status":
			return statusCmd(ctx, args[1:], getenv, stdout, stderr)
		case "profile":
			return profileCmd(ctx, args[1:], getenv, stdout, stderr)
		case "bench":
			return benchCmd(ctx, args[1:], getenv, stdout, stderr)
		case "scenario":
			return scenarioCmd(ctx, args[1:], getenv, stdout, stderr)
		case "declaration":
			return declarationCmd(ctx, args[1:], os.Stdin, stdout)
		case "version":
			fmt.Fprintln(stdout, "mockmdm", version)
			return nil
		case "help", "-h", "-help", "--help":
			fmt.Fprint(stdout, topUsage)
			return nil
		}
	}
	return serve(ctx, args, getenv, stdout, stderr)
}

const topUsage = `mockmdm — a mock Apple MDM server for testing

Usage:
  mockmdm [serve] [flags]   serve (the default; "mockmdm serve -h" lists the flags)
  mockmdm fleet -url URL -n N   N virtual devices enroll and connect; throughput and latency
  mockmdm device …          a virtual device kept in a file ("mockmdm device -h")
  mockmdm bench [-n N] [-store memory|sqlite] [-ca-key-size BITS]   server CPU per request, pinned to a core
  mockmdm profile …         inspect, lint, verify or sign a .mobileconfig ("mockmdm profile -h")
  mockmdm declaration lint FILE   check a declaration against Apple's declarative schemas
  mockmdm scenario run [-server URL -api-key K] [-junit FILE] [-json FILE] FILE|DIR…   run YAML scenarios
  mockmdm status [-url URL] [-data DIR]   a running server's push certificate: topic, expiry, warnings
  mockmdm version           print the version

Every flag can also be set with an environment variable MOCKMDM_<FLAG>,
e.g. MOCKMDM_LISTEN=:9443 for -listen.
`
