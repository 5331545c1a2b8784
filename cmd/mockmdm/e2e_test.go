package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/internal/flowtest"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mockmdm-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "mockmdm")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the mockmdm binary:", err)
		binPath = ""
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running mockmdm binary and what it printed at start-up.
type proc struct {
	cmd     *exec.Cmd
	lines   map[string]string // "enrollment URL" → value, from the start-up banner
	created string
	done    chan error
}

func startBinary(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	if binPath == "" {
		t.Fatal("the mockmdm binary did not build (see TestMain output)")
	}
	all := append([]string{"-data", dataDir, "-log-level", "warn"}, args...)
	cmd := exec.Command(binPath, all...)
	cmd.Env = append(os.Environ(), "MOCKMDM_LISTEN=127.0.0.1:0", "MOCKMDM_HOSTS=127.0.0.1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: map[string]string{}, done: make(chan error, 1)}
	ready := make(chan error, 3)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				ready <- nil
				break
			}
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				p.lines[k] = strings.TrimSpace(v)
			}
		}
		if sc.Err() != nil {
			ready <- sc.Err()
		}
		_, _ = io.Copy(io.Discard, stdout)
		ready <- errors.New("mockmdm exited before it was ready")
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("mockmdm did not print ready within 60 s")
	}
	p.created = p.lines["created"]
	return p
}

func (p *proc) url(key string) string { return p.lines[key] }

// clients returns a device Doer and an API client that trust the instance's
// test CA, talking to it over real TLS sockets.
func clients(t *testing.T, dataDir string, p *proc) (*http.Client, *api.Client, *x509.CertPool) {
	t.Helper()
	cas, err := certs.ReadCertPEM(filepath.Join(dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cas[0])
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base, _, _ := strings.Cut(p.url("API"), " ") // "https://…/v1 (header …)"
	return hc, api.NewClient(base, p.url("API key"), api.WithHTTPClient(hc)), pool
}

func TestEndToEndOverSockets(t *testing.T) {
	dataDir := t.TempDir()
	p := startBinary(t, dataDir)
	if p.created == "" {
		t.Error("first start should say what it created")
	}
	hc, client, trust := clients(t, dataDir, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := flowtest.EnrollDevice(t, ctx, hc, client, p.url("enrollment URL"), trust)
	flowtest.DeviceInformationRoundTrip(t, ctx, client, e)

	// SIGTERM shuts down gracefully with exit status 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20 s of SIGTERM")
	}
}

// TestKill9KeepsAcceptedCommands kills the server with SIGKILL after the API
// accepted a command, restarts it on the same data directory, and checks the
// start reused everything, the command is still queued, the enrollment still
// authenticates, and the device's answer is stored.
func TestKill9KeepsAcceptedCommands(t *testing.T) {
	dataDir := t.TempDir()
	p := startBinary(t, dataDir)
	hc, client, trust := clients(t, dataDir, p)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := flowtest.EnrollDevice(t, ctx, hc, client, p.url("enrollment URL"), trust)

	queued, err := client.Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: []string{e.EnrollmentID}, Command: []byte(`{"RequestType":"ProfileList"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done

	// Restart on the same port: the device's enrollment points there.
	p2 := startBinary(t, dataDir, "-listen", p.url("HTTPS"))
	if p2.created != "" {
		t.Errorf("second start created %q; it should reuse the data directory", p2.created)
	}
	if p2.url("API key") != p.url("API key") || p2.url("push topic") != p.url("push topic") {
		t.Error("second start changed the API key or push topic")
	}
	_, client2, _ := clients(t, dataDir, p2)
	status, err := client2.GetCommand(ctx, queued.CommandUUID, 0)
	if err != nil {
		t.Fatalf("command accepted before kill -9 is gone: %v", err)
	}
	if status.Results[0].Status != "Pending" {
		t.Fatalf("after restart: %+v", status)
	}
	cr, err := e.Device.Connect(ctx)
	if err != nil {
		t.Fatalf("enrollment no longer authenticates after restart: %v", err)
	}
	if len(cr.Commands) != 1 {
		t.Fatalf("device got %d commands after restart, want the one queued before kill -9", len(cr.Commands))
	}
	status, err = client2.GetCommand(ctx, queued.CommandUUID, 5*time.Second)
	if err != nil || !status.Done || status.Results[0].Status != "Acknowledged" {
		t.Fatalf("answer after restart: %+v %v", status, err)
	}
}
