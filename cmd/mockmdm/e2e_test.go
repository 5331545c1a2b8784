package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/device/fleet"
	"github.com/mockmdm/mockmdm/internal/flowtest"
	"github.com/mockmdm/mockmdm/push/mockapns"
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
	// Queue a command and let the push wake the device: the mock APNs is
	// mounted on the same listener at /apns.
	flowtest.PushWakesDevice(t, ctx, client, e, p.url("mock APNs"), mockapns.DialOptions{TLS: &tls.Config{RootCAs: trust}})

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

// TestPushOverHTTP2ToItsOwnMockAPNs runs the binary with the mock APNs on
// its own port and the provider pointed at it by URL, so every push is a
// real HTTP/2 request over TLS with the push certificate as client
// certificate; a virtual device subscribed there wakes and answers.
func TestPushOverHTTP2ToItsOwnMockAPNs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apnsAddr := ln.Addr().String()
	ln.Close()
	dataDir := t.TempDir()
	p := startBinary(t, dataDir, "-apns-listen", apnsAddr, "-push-url", "https://"+apnsAddr, "-push-expiration", "1h")
	if p.url("mock APNs port") != apnsAddr {
		t.Fatalf("banner says the mock APNs port is %q, want %s", p.url("mock APNs port"), apnsAddr)
	}
	hc, client, trust := clients(t, dataDir, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := flowtest.EnrollDevice(t, ctx, hc, client, p.url("enrollment URL"), trust)
	flowtest.PushWakesDevice(t, ctx, client, e, "https://"+apnsAddr, mockapns.DialOptions{TLS: &tls.Config{RootCAs: trust}})
	st, err := client.PushCertificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PushURL != "https://"+apnsAddr || st.State != "valid" {
		t.Fatalf("push certificate status %+v", st)
	}
	// mockmdm status reads the same through the API, with the data directory's key.
	base, _, _ := strings.Cut(p.url("API"), " ")
	out, err := exec.Command(binPath, "status", "-url", strings.TrimSuffix(base, "/v1"), "-data", dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("mockmdm status: %v\n%s", err, out)
	}
	for _, want := range []string{"topic:             " + st.Topic, "days left", "state:             valid", "pushes go to:      https://" + apnsAddr,
		"ADE server token:    none uploaded"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("mockmdm status does not say %q:\n%s", want, out)
		}
	}
	// With a server token uploaded, status shows its state and expiry.
	apiKey, err := os.ReadFile(filepath.Join(dataDir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body []byte) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, strings.TrimSuffix(base, "/v1")+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(apiKey)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	call("PUT", "/v1/ade/token", call("POST", "/v1/ade/tokens", nil))
	out, err = exec.Command(binPath, "status", "-url", strings.TrimSuffix(base, "/v1"), "-data", dataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ADE server token\n") || !strings.Contains(string(out), "state:             active") {
		t.Errorf("mockmdm status with a server token: %v\n%s", err, out)
	}
	out, err = exec.Command(binPath, "status", "-url", strings.TrimSuffix(base, "/v1"), "-api-key", "wrong", "-data", dataDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "401") && !strings.Contains(strings.ToLower(string(out)), "api key") {
		t.Errorf("mockmdm status with a wrong key: %v\n%s", err, out)
	}
}

// TestBenchReportsServerCPU runs mockmdm bench small: it starts its own
// server (pinned where it can be), runs the three workloads and reports
// the server's CPU per request from the server process's accounting.
func TestBenchReportsServerCPU(t *testing.T) {
	if binPath == "" {
		t.Fatal("the mockmdm binary did not build")
	}
	// More cycle rounds than one Presign call answers, so the rounds'
	// answers are presigned in several calls.
	out, err := exec.Command(binPath, "bench", "-n", "4", "-connects", "5", "-cycles", fmt.Sprint(device.MaxPresigned+7), "-key-size", "1024", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("mockmdm bench: %v\n%s", err, out)
	}
	var rep benchReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, out)
	}
	if len(rep.Phases) != 3 || rep.ServerPID == 0 || rep.PeakRSSKiB <= 0 {
		t.Fatalf("report %+v", rep)
	}
	want := map[string]int{"enroll": 4, "signed Idle connect": 20, "command cycle": 4 * (device.MaxPresigned + 7)}
	for _, p := range rep.Phases {
		if p.Ops != want[p.Phase] || p.Failed != 0 || p.Requests == 0 {
			t.Errorf("phase %+v, want %d ops", p, want[p.Phase])
		}
		if runtime.GOOS == "linux" && p.ServerCPU < 0 {
			t.Errorf("phase %s: no server CPU figure on Linux", p.Phase)
		}
		if runtime.GOOS == "linux" && p.Phase != "enroll" && (p.RSAVerify <= 0 || p.CPUPerOpAtReference <= 0) {
			t.Errorf("phase %s: no machine-speed calibration: %+v", p.Phase, p)
		}
		if p.Phase != "enroll" && p.Connections != 0 {
			t.Errorf("phase %s opened %d connections: keep-alive should carry it on the enrollment's", p.Phase, p.Connections)
		}
	}
	if !rep.Presigned {
		t.Error("the bench did not presign by default")
	}
	if want := cpuModel(); rep.CPU != want {
		t.Errorf("the report names the CPU %q, want /proc/cpuinfo's %q", rep.CPU, want)
	}
	if rep.GoroutinesA == 0 || rep.GoroutinesB > rep.GoroutinesA {
		t.Errorf("the server's goroutines did not come back to their baseline: %d before, %d after", rep.GoroutinesA, rep.GoroutinesB)
	}
	// A bench against a running server needs its data directory.
	if out, err := exec.Command(binPath, "bench", "-url", "https://127.0.0.1:1").CombinedOutput(); err == nil || !strings.Contains(string(out), "-data") {
		t.Fatalf("bench -url without -data: %v %s", err, out)
	}
}

// TestBenchFloor runs the floor measurement small: its server verifies
// every signed Idle, and the report gives its CPU per request.
func TestBenchFloor(t *testing.T) {
	if binPath == "" {
		t.Fatal("the mockmdm binary did not build")
	}
	out, err := exec.Command(binPath, "bench", "-floor", "-n", "2", "-connects", "5", "-cycles", "3", "-key-size", "1024", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("mockmdm bench -floor: %v\n%s", err, out)
	}
	var rep floorReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench -floor JSON: %v\n%s", err, out)
	}
	if rep.Requests != 10 || rep.Failed != 0 || rep.Cycles != 6 || rep.CyclesFailed != 0 {
		t.Fatalf("report %+v", rep)
	}
	if runtime.GOOS == "linux" && rep.CPUPerCycle <= 0 {
		t.Fatalf("no CPU per cycle on Linux: %+v", rep)
	}
	// Bad flags are refused with the reason, before any server starts.
	for _, bad := range [][]string{
		{"-n", "0"}, {"-connects", "-1"}, {"-concurrency", "0"}, {"-key-size", "512"}, {"-url", "https://127.0.0.1:1", "-data", "x"},
	} {
		out, err := exec.Command(binPath, append([]string{"bench", "-floor"}, bad...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), bad[0]) {
			t.Errorf("bench -floor %v: %v\n%s", bad, err, out)
		}
	}
	if runtime.GOOS == "linux" && (rep.CPUPerRequest <= 0 || rep.RSAVerify <= 0) {
		t.Fatalf("no CPU or calibration figure on Linux: %+v", rep)
	}
}

// TestBenchPlain runs the workloads small over the started server's
// plain-HTTP listener, as NanoMDM is measured.
func TestBenchPlain(t *testing.T) {
	if binPath == "" {
		t.Fatal("the mockmdm binary did not build")
	}
	out, err := exec.Command(binPath, "bench", "-plain", "-n", "2", "-connects", "3", "-cycles", "2", "-key-size", "1024", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("mockmdm bench -plain: %v\n%s", err, out)
	}
	var rep benchReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench -plain JSON: %v\n%s", err, out)
	}
	want := map[string]int{"enroll": 2, "signed Idle connect": 6, "command cycle": 4}
	if !rep.Plain || len(rep.Phases) != len(want) {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range rep.Phases {
		if p.Ops != want[p.Phase] || p.Failed != 0 {
			t.Errorf("phase %+v, want %d ops", p, want[p.Phase])
		}
	}
	for _, bad := range [][]string{{"-presign=false"}, {"-url", "https://127.0.0.1:1", "-data", "x"}, {"-floor"}} {
		out, err := exec.Command(binPath, append([]string{"bench", "-plain"}, bad...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "-plain") {
			t.Errorf("bench -plain %v: %v\n%s", bad, err, out)
		}
	}
}

// TestBenchNanoMDM runs the comparison with NanoMDM, the reference
// server, small: the bench enrolls its devices in NanoMDM too
// (Authenticate, then TokenUpdate, each identity from the CA NanoMDM was
// started with), and both servers answer every Idle and command cycle,
// round by round. NanoMDM is not part of mockmdm: the test
// takes the binary NANOMDM_BINARY names (.ci/run builds one), or nanomdm
// on PATH, and skips without one.
func TestBenchNanoMDM(t *testing.T) {
	if binPath == "" {
		t.Fatal("the mockmdm binary did not build")
	}
	// Refused before anything starts, with the reason.
	for _, bad := range [][]string{{"-nanomdm", "x", "-floor"}, {"-nanomdm", "x", "-url", "http://127.0.0.1:1", "-data", "x"}, {"-nanomdm", "x", "-presign=false"}, {"-nanomdm", "x", "-ca-key-size", "1024"}, {"-nanomdm", "x", "-turn", "0"}} {
		out, err := exec.Command(binPath, append([]string{"bench"}, bad...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), bad[2]) {
			t.Errorf("bench %v: %v\n%s", bad, err, out)
		}
	}
	missing := filepath.Join(t.TempDir(), "nanomdm")
	if out, err := exec.Command(binPath, "bench", "-nanomdm", missing, "-n", "1").CombinedOutput(); err == nil || !strings.Contains(string(out), missing) {
		t.Errorf("bench -nanomdm with no such binary: %v\n%s", err, out)
	}

	bin := os.Getenv("NANOMDM_BINARY")
	if bin == "" {
		bin, _ = exec.LookPath("nanomdm")
	}
	if bin == "" {
		t.Skip("no NanoMDM binary: set NANOMDM_BINARY or put nanomdm on PATH (go install github.com/micromdm/nanomdm/cmd/nanomdm@v0.9.0; .ci/run does)")
	}
	out, err := exec.Command(binPath, "bench", "-nanomdm", bin, "-plain", "-n", "3", "-connects", "4", "-cycles", "2", "-key-size", "1024", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("mockmdm bench -nanomdm: %v\n%s", err, out)
	}
	var rep comparedReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench -nanomdm JSON: %v\n%s", err, out)
	}
	if !rep.Plain || rep.Devices != 3 || rep.Enroll.Ops != 3 || len(rep.Phases) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if want := cpuModel(); rep.CPU != want {
		t.Errorf("the report names the CPU %q, want /proc/cpuinfo's %q", rep.CPU, want)
	}
	// Both servers ran every counted round: 3 devices, 4 connect rounds
	// and 2 cycle rounds, none failed.
	want := map[string]int{"signed Idle connect": 12, "command cycle": 6}
	for _, p := range rep.Phases {
		if len(p.Servers) != 2 || p.Servers[0].Name != "mockmdm" || p.Servers[1].Name != "NanoMDM" {
			t.Fatalf("phase %s: servers %+v", p.Phase, p.Servers)
		}
		for _, s := range p.Servers {
			if s.Ops != want[p.Phase] || s.Failed != 0 {
				t.Errorf("phase %s, %s: %d ops, %d failed; want %d", p.Phase, s.Name, s.Ops, s.Failed, want[p.Phase])
			}
			if runtime.GOOS == "linux" && s.CPUPerOp <= 0 {
				t.Errorf("phase %s, %s: no CPU figure on Linux", p.Phase, s.Name)
			}
		}
		if runtime.GOOS == "linux" && (p.Ratio <= 0 || p.IssueRatio <= 0) {
			t.Errorf("phase %s: ratio %v, issue's %v", p.Phase, p.Ratio, p.IssueRatio)
		}
	}
}

// TestKill9UnderLoad kills the server with SIGKILL while a fleet is
// connecting and commands are being queued, restarts it, and checks that
// every command the API acknowledged is still queued or answered (with its
// result intact) and every enrollment still authenticates and gets the
// rest of its queue.
func TestKill9UnderLoad(t *testing.T) {
	dataDir := t.TempDir()
	p := startBinary(t, dataDir)
	hc, client, trust := clients(t, dataDir, p)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	f := fleet.New(hc, 8, fleet.WithSeedBase(900), fleet.WithDeviceOptions(device.WithTrust(trust), device.WithKeySize(1024), device.WithRequestTimeout(5*time.Second)))
	if rep := f.Enroll(ctx, p.url("enrollment URL"), 4); rep.OK != 8 {
		t.Fatalf("enroll: %+v", rep)
	}
	var ids []string
	for _, d := range f.Devices() {
		ids = append(ids, d.UDID())
	}

	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	wg.Add(2)
	go func() { // devices keep connecting (and answering what is queued)
		defer wg.Done()
		for load.Err() == nil {
			f.Connect(load, 1, 4)
		}
	}()
	go func() { // a test suite keeps queueing
		defer wg.Done()
		noPush := false
		for i := 0; load.Err() == nil; i++ {
			cmd := []byte(`{"RequestType":"ProfileList"}`)
			if i%2 == 1 {
				cmd = []byte(`{"RequestType":"SecurityInfo"}`)
			}
			r, err := client.Enqueue(load, api.EnqueueRequest{EnrollmentIDs: []string{ids[i%len(ids)], ids[(i+3)%len(ids)]}, Command: cmd, Push: &noPush})
			if err != nil {
				continue // the server is gone: nothing was acknowledged
			}
			mu.Lock()
			acked = append(acked, r.CommandUUID)
			mu.Unlock()
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	stopLoad()
	wg.Wait()
	if len(acked) < 5 {
		t.Fatalf("only %d commands were acknowledged before the kill: the load did not run", len(acked))
	}

	p2 := startBinary(t, dataDir, "-listen", p.url("HTTPS"))
	_, client2, _ := clients(t, dataDir, p2)
	for _, uuid := range acked {
		st, err := client2.GetCommand(ctx, uuid, 0)
		if err != nil {
			t.Fatalf("command %s, acknowledged before kill -9, is gone: %v", uuid, err)
		}
		for _, r := range st.Results {
			switch r.Status {
			case "Pending", "NotNow":
			case "Acknowledged":
				if len(r.Result) == 0 && r.ResultPlist == "" {
					t.Fatalf("command %s answered but its result is lost: %+v", uuid, r)
				}
			default:
				t.Fatalf("command %s for %s: status %s", uuid, r.EnrollmentID, r.Status)
			}
		}
	}
	// Every enrollment still authenticates and empties its queue.
	if rep := f.Connect(ctx, 1, 4); rep.OK != 8 || rep.Failed != 0 {
		t.Fatalf("after restart: %+v", rep)
	}
	for _, uuid := range acked {
		st, err := client2.GetCommand(ctx, uuid, 10*time.Second)
		if err != nil || !st.Done {
			t.Fatalf("command %s after the devices reconnected: %+v %v", uuid, st, err)
		}
	}
	t.Logf("%d commands acknowledged before kill -9, all kept and answered", len(acked))
}

// TestFaultsFile: the rules of -faults apply from the first request; a bad
// rule stops the start with exit status 2, naming the rule.
func TestFaultsFile(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "faults.yaml")
	if err := os.WriteFile(rules, []byte("# a QA team's rules\nrules:\n  - endpoint: enroll\n    action: status\n    status: 418\n    times: 1\n  - endpoint: mdm\n    message_type: Idle\n    action: delay\n    delay: 10ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	p := startBinary(t, dataDir, "-faults", rules)
	hc, client, _ := clients(t, dataDir, p)
	resp, err := hc.Get(p.url("enrollment URL"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 418 || !strings.Contains(string(body), "fault-1") {
		t.Fatalf("first /enroll: %d %s", resp.StatusCode, body)
	}
	if resp, err := hc.Get(p.url("enrollment URL")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second /enroll (the rule fired once): %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, err := client.Info(context.Background()); err != nil {
		t.Fatal(err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("rules:\n  - endpoint: mdm\n    action: status\n    status: 503\n  - action: explode\n"), 0o600)
	cmd := exec.Command(binPath, "-data", filepath.Join(dir, "data2"), "-listen", "127.0.0.1:0", "-hosts", "127.0.0.1", "-faults", bad)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "rule 2") || !strings.Contains(string(out), "explode") {
		t.Fatalf("bad rule file: %v\n%s", err, out)
	}
}
