package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestDockerfileAndComposeRunTheBinary checks, without a Docker engine, that
// what the image and the compose file run is a command line this binary
// accepts: the Dockerfile's CMD flags with the compose file's MOCKMDM_*
// environment, started for real (on a loopback port) and stopped.
func TestDockerfileAndComposeRunTheBinary(t *testing.T) {
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])\s*$`).FindSubmatch(df)
	if m == nil {
		t.Fatal("Dockerfile has no exec-form CMD")
	}
	var args []string
	if err := json.Unmarshal(m[1], &args); err != nil {
		t.Fatalf("Dockerfile CMD: %v", err)
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["/mockmdm"\]`).Match(df) {
		t.Error(`Dockerfile ENTRYPOINT is not ["/mockmdm"]`)
	}
	if !strings.Contains(string(df), "./cmd/mockmdm") || !strings.Contains(string(df), "CGO_ENABLED=0") {
		t.Error("Dockerfile does not build ./cmd/mockmdm without cgo")
	}

	cf, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(cf, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	svc, ok := compose.Services["mockmdm"]
	if !ok {
		t.Fatal("docker-compose.yml has no mockmdm service")
	}
	if len(svc.Volumes) == 0 || !strings.HasSuffix(svc.Volumes[0], ":/data") {
		t.Errorf("the data directory /data is not on a volume: %v", svc.Volumes)
	}
	defaults := regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)
	env := map[string]string{}
	for k, v := range svc.Environment {
		if !strings.HasPrefix(k, "MOCKMDM_") {
			t.Errorf("compose sets %s, which the binary does not read", k)
		}
		env[k] = defaults.ReplaceAllString(v, "$1")
	}

	// Run it: the image's flags, but a temporary data directory and a free
	// loopback port instead of /data and :8443.
	dataDir := t.TempDir()
	for i := range args {
		if i > 0 && args[i-1] == "-data" {
			args[i] = dataDir
		}
		if i > 0 && args[i-1] == "-listen" {
			args[i] = "127.0.0.1:0"
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var banner []string
	for sc.Scan() && sc.Text() != "ready" {
		banner = append(banner, sc.Text())
	}
	go io.Copy(io.Discard, pr)
	if !strings.Contains(strings.Join(banner, "\n"), "enrollment URL: https://localhost:8443/enroll") {
		t.Errorf("compose's MOCKMDM_URL did not reach the binary; banner:\n%s", strings.Join(banner, "\n"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the image's command line failed: %v\nbanner:\n%s", err, strings.Join(banner, "\n"))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no shutdown")
	}
}
