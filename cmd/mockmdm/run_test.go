package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/internal/flowtest"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestRunVersionAndUsage(t *testing.T) {
	for _, args := range [][]string{{"-version"}, {"version"}, {"serve", "-version"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, envOf(), &out, io.Discard); err != nil || !strings.Contains(out.String(), "mockmdm "+version) {
			t.Errorf("%v: %v %q", args, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-version"}, envOf("MOCKMDM_VERSION", "true"), &out, io.Discard); err != nil {
		t.Error(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-h"}, envOf(), &out, io.Discard); err != nil || !strings.Contains(out.String(), "Usage:") {
		t.Errorf("-h: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"serve", "-h"}, envOf(), io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("serve -h: %v", err)
	}
}

func TestRunBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  func(string) string
		want string
	}{
		{"unknown flag", []string{"-nope"}, envOf(), "flag provided but not defined"},
		{"stray argument", []string{"serve", "extra"}, envOf(), "unexpected argument"},
		{"bad store from env", []string{"-listen", "127.0.0.1:0"}, envOf("MOCKMDM_STORE", "mongo", "MOCKMDM_DATA", t.TempDir()), "-store \"mongo\""},
		{"bad duration from env", nil, envOf("MOCKMDM_IDENTITY_VALIDITY", "forever"), "MOCKMDM_IDENTITY_VALIDITY"},
		{"bad user-authenticate", []string{"-user-authenticate", "maybe"}, envOf(), "decline or allow"},
		{"bad log level", []string{"-log-level", "loud"}, envOf(), "-log-level"},
		{"nothing to listen on", []string{"-listen", ""}, envOf(), "nothing to listen on"},
		{"bad log format", []string{"-log-format", "xml"}, envOf(), "-log-format"},
		{"webhook URL not http", []string{"-webhook-url", "ftp://hooks.example/in"}, envOf(), "http:// or https://"},
		{"webhook URL from env, second of a list bad", nil, envOf("MOCKMDM_WEBHOOK_URL", "http://ok.example/in, http://"), "no host"},
		{"webhook attempts", []string{"-webhook-url", "http://ok.example/in", "-webhook-max-attempts", "0"}, envOf(), "-webhook-max-attempts"},
		{"identity validity too short", []string{"-listen", "127.0.0.1:0", "-identity-validity", "1s", "-store", "memory"}, envOf("MOCKMDM_DATA", t.TempDir()), "at least one minute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, tt.env, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code %d, want 2 for a usage error", exitCode(err))
			}
		})
	}
}

// TestRunPlainHTTPHarness runs the server in-process on plain HTTP with the
// memory store, as a test harness would, enrolls a virtual device that is
// told to accept http:// URLs, and shuts down by cancelling the context.
func TestRunPlainHTTPHarness(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dataDir := t.TempDir()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-data", dataDir, "-listen", "", "-http-listen", "127.0.0.1:0", "-hosts", "127.0.0.1", "-store", "memory", "-log-level", "error"}, envOf(), pw, io.Discard)
		pw.Close()
	}()
	lines := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() && sc.Text() != "ready" {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			lines[k] = strings.TrimSpace(v)
		}
	}
	go io.Copy(io.Discard, pr)
	enrollURL := lines["enrollment URL"]
	if !strings.HasPrefix(enrollURL, "http://127.0.0.1:") {
		t.Fatalf("enrollment URL %q: want plain http on loopback", enrollURL)
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	client := api.NewClient(strings.TrimSuffix(enrollURL, "/enroll"), lines["API key"], api.WithHTTPClient(hc))
	cas, err := certs.ReadCertPEM(filepath.Join(dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	trust := x509.NewCertPool()
	trust.AddCert(cas[0])
	e := flowtest.EnrollDevice(t, ctx, hc, client, enrollURL, trust, device.WithAllowHTTP(true))
	flowtest.DeviceInformationRoundTrip(t, ctx, client, e)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
