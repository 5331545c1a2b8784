package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/device/fleet"
)

// benchPhase is one workload's outcome, with the server's CPU.
type benchPhase struct {
	Phase    string        `json:"phase"`
	Ops      int           `json:"ops"`
	Failed   int           `json:"failed"`
	Requests int           `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// PerSecond is requests per second.
	PerSecond float64       `json:"requests_per_second"`
	P50       time.Duration `json:"p50_ns"`
	P95       time.Duration `json:"p95_ns"`
	P99       time.Duration `json:"p99_ns"`
	// ServerCPU is the server process's user+system time in the phase; -1
	// when the server's process is not known.
	ServerCPU time.Duration `json:"server_cpu_ns"`
	// CPUPerOp and CPUPerRequest divide it.
	CPUPerOp      time.Duration `json:"server_cpu_per_op_ns"`
	CPUPerRequest time.Duration `json:"server_cpu_per_request_ns"`
	// RSAVerify is what one RSA-2048 signature verification cost on the
	// server's core around the phase (the faster of before and after): the
	// machine's speed at that minute. 0 when not measured.
	RSAVerify time.Duration `json:"rsa2048_verify_ns,omitempty"`
	// Connections is how many TCP connections the devices opened in the
	// phase (each a TLS handshake on the server; the enqueues of a cycle
	// phase included).
	Connections int64 `json:"connections_opened"`
	// RSSKiB is the server's resident memory at the end of the phase; for
	// the connect phase RSSHalfKiB is the same halfway (0: unknown).
	RSSKiB     int64 `json:"server_rss_kib,omitempty"`
	RSSHalfKiB int64 `json:"server_rss_half_kib,omitempty"`
	// CPUPerOpAtReference is CPUPerOp scaled to the machine the targets
	// were set on, where one verification cost rsaReference.
	CPUPerOpAtReference time.Duration `json:"server_cpu_per_op_at_reference_ns,omitempty"`
}

// rsaReference is the cost of one RSA-2048 verification on the machine the
// issue's targets were measured on ("about 32 µs here").
const rsaReference = 32 * time.Microsecond

// calibrate times RSA-2048 PKCS#1 v1.5 verifications on CPU cpu (this
// process pins itself there for the measurement, then back to back): the
// median of five batches of 100, as a benchmark's mean would read it
// without the odd interrupted batch.
func calibrate(cpu, back int, pin bool) time.Duration {
	if pin {
		if pinSelf(cpu) != nil {
			return 0
		}
		defer pinSelf(back)
	}
	calibrationKey.once.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return
		}
		sum := sha256.Sum256([]byte("mockmdm bench calibration"))
		sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:])
		if err != nil {
			return
		}
		calibrationKey.pub, calibrationKey.sum, calibrationKey.sig = &k.PublicKey, sum, sig
	})
	c := &calibrationKey
	if c.pub == nil {
		return 0
	}
	var batches []time.Duration
	for range 5 {
		start := time.Now()
		for range 100 {
			if rsa.VerifyPKCS1v15(c.pub, crypto.SHA256, c.sum[:], c.sig) != nil {
				return 0
			}
		}
		batches = append(batches, time.Since(start)/100)
	}
	slices.Sort(batches)
	return batches[len(batches)/2]
}

var calibrationKey struct {
	once sync.Once
	pub  *rsa.PublicKey
	sum  [32]byte
	sig  []byte
}

// calibrated sets p's machine-speed figures from verifications timed
// before and after it.
func (p *benchPhase) calibrated(before, after time.Duration) {
	v := min(before, after)
	if before == 0 || after == 0 || p.CPUPerOp <= 0 {
		return
	}
	p.RSAVerify = v
	p.CPUPerOpAtReference = time.Duration(float64(p.CPUPerOp) * float64(rsaReference) / float64(v))
}

// benchReport is what mockmdm bench prints.
type benchReport struct {
	Devices   int    `json:"devices"`
	Store     string `json:"store,omitempty"`
	CAKeySize int    `json:"ca_key_size,omitempty"`
	// CPU is the processor the figures were measured on (cpuModel).
	CPU       string `json:"cpu,omitempty"`
	Pinned    bool   `json:"pinned"`
	Presigned bool   `json:"presigned"`
	// Plain: the connects and cycles went to the plain-HTTP listener.
	Plain       bool         `json:"plain_http,omitempty"`
	Phases      []benchPhase `json:"phases"`
	PeakRSSKiB  int64        `json:"server_peak_rss_kib"`
	ServerPID   int          `json:"server_pid"`
	GoroutinesA int          `json:"server_goroutines_before,omitempty"`
	GoroutinesB int          `json:"server_goroutines_after,omitempty"`
}

// benchCmd is "mockmdm bench": a fixed workload against a server this
// command starts (or one given by -url and -server-pid), reporting
// throughput, latency and the server's own CPU time per request.
func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockmdm bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url         = fs.String("url", "", "bench a running server at this base URL (default: start one)")
		serverPID   = fs.Int("server-pid", 0, "with -url: the server's process ID, to read its CPU time and RSS")
		dataDir     = fs.String("data", "", "with -url: the server's data directory (API key, CA)")
		storeKind   = fs.String("store", "memory", "store of the server this command starts: memory or sqlite")
		caKeySize   = fs.Int("ca-key-size", 2048, "RSA size of the started server's test CA (2048, 3072 or 4096)")
		n           = fs.Int("n", 100, "devices")
		connects    = fs.Int("connects", 20, "signed Idle connects per device (empty queue: one request each)")
		cycles      = fs.Int("cycles", 10, "command cycles per device (Idle → command, Acknowledged → empty: two requests)")
		concurrency = fs.Int("concurrency", 8, "devices working at once")
		keySize     = fs.Int("key-size", 2048, "RSA size of the device identities")
		pin         = fs.Bool("pin", true, "pin the started server to CPU 0 and this process to CPU 1 (Linux, two or more CPUs)")
		asJSON      = fs.Bool("json", false, "print the report as JSON")
		profile     = fs.String("server-cpuprofile", "", "the started server writes a CPU profile of the run to this file")
		clientProf  = fs.String("client-cpuprofile", "", "write a CPU profile of this command (the devices) to this file")
		plain       = fs.Bool("plain", false, "send the presigned connects and cycles to the started server's plain-HTTP listener (-http-listen) instead of HTTPS, as NanoMDM is measured (-nanomdm); enrollment stays on HTTPS")
		presign     = fs.Bool("presign", true, "devices sign each phase's messages before it starts (false: sign while the phase runs, which on one client core limits the rate to what RSA signing allows)")
	)
	floor := fs.Bool("floor", false, "measure the floor instead: a server of net/http, TLS and the Mdm-Signature check alone, with -n × -connects signed Idles and -n × -cycles command cycles")
	nanomdm := fs.String("nanomdm", "", "compare with NanoMDM, the nanomdm binary at this path (built by you; plain HTTP, in-memory storage): -n devices in each server, -connects and -cycles rounds run on both in alternate turns (-turn); with -plain for like-for-like transport")
	turn := fs.Int("turn", 8192, "with -nanomdm: operations each server runs before the other takes over (rounded up to whole rounds of -n)")
	if len(args) > 0 && args[0] == floorServerArg {
		return floorServer(ctx, stdout)
	}
	if err := parseFlags(fs, args, getenv, "mockmdm bench -h"); err != nil {
		return err
	}
	switch {
	case *n < 1 || *n > 100_000:
		return usageError{fmt.Errorf("-n %d: from 1 to 100,000", *n)}
	case *connects < 0 || *cycles < 0:
		return usageError{errors.New("-connects and -cycles must be 0 or more")}
	case *concurrency < 1 || *concurrency > 1000:
		return usageError{fmt.Errorf("-concurrency %d: from 1 to 1,000", *concurrency)}
	case *keySize != 1024 && *keySize != 2048 && *keySize != 4096:
		return usageError{fmt.Errorf("-key-size %d: 1024, 2048 or 4096", *keySize)}
	case *storeKind != "memory" && *storeKind != "sqlite":
		return usageError{fmt.Errorf("-store %q: memory or sqlite", *storeKind)}
	case *url != "" && *dataDir == "":
		return usageError{errors.New("-url needs -data, the server's data directory (for its API key and CA)")}
	case *floor && *url != "":
		return usageError{errors.New("-floor starts its own floor server: it takes no -url")}
	case *plain && (*url != "" || *floor || !*presign):
		return usageError{errors.New("-plain needs a server this command starts and -presign: it takes none of -url, -floor or -presign=false")}
	case *nanomdm != "" && (*url != "" || *floor || !*presign):
		return usageError{errors.New("-nanomdm starts NanoMDM and mockmdm side by side: it takes neither -url, -floor nor -presign=false")}
	case *turn < 1:
		return usageError{fmt.Errorf("-turn %d: at least 1", *turn)}
	case *nanomdm != "" && *caKeySize != 2048 && *caKeySize != 3072 && *caKeySize != 4096:
		return usageError{fmt.Errorf("-ca-key-size %d: 2048, 3072 or 4096", *caKeySize)}
	}
	if *floor {
		return benchFloor(ctx, *n, *connects, *cycles, *concurrency, *keySize, *pin, *asJSON, stdout)
	}

	if *clientProf != "" {
		f, err := os.Create(*clientProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep := &benchReport{Devices: *n, Plain: *plain, CPU: cpuModel()}
	rebase := func(u string) string { return u }
	base, pid := *url, *serverPID
	if base == "" {
		dir, err := os.MkdirTemp("", "mockmdm-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := startBenchServer(ctx, dir, *storeKind, *caKeySize, *pin, *plain, *profile)
		if err != nil {
			return err
		}
		defer srv.stop()
		if *plain {
			// The devices' URLs name the HTTPS listener; the lean client
			// sends the same requests to the plain one.
			https, plainURL := srv.url, srv.plainURL
			if plainURL == "" {
				return errors.New("the bench server printed no plain-HTTP address")
			}
			rebase = func(u string) string {
				if rest, ok := strings.CutPrefix(u, https); ok {
					return plainURL + rest
				}
				return u
			}
		}
		base, pid, *dataDir = srv.url, srv.cmd.Process.Pid, dir
		rep.Store, rep.CAKeySize = *storeKind, *caKeySize
		if *pin {
			rep.Pinned = pinSelf(1) == nil && srv.pinned
		}
	}
	rep.ServerPID = pid
	trust, client, err := deviceClient("", *dataDir)
	if err != nil {
		return err
	}
	var dials atomic.Int64
	if t, ok := client.Transport.(*http.Transport); ok {
		// Room for more than one connection per worker: a worker that sends
		// its next request before the last response's connection is back in
		// the pool dials another, which a pool of exactly concurrency then
		// closes — a TLS handshake on the server, counted in the phase.
		t.MaxIdleConnsPerHost = 4 * *concurrency
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}
	}
	key, err := os.ReadFile(filepath.Join(*dataDir, "api-key"))
	if err != nil {
		return fmt.Errorf("the server's API key: %w", err)
	}
	apic := api.NewClient(strings.TrimRight(base, "/")+"/v1", strings.TrimSpace(string(key)), api.WithHTTPClient(client))

	// rss is the server's resident memory now (0: unknown).
	rss := func() int64 {
		if pid == 0 {
			return 0
		}
		kib, _ := processRSS(pid)
		return kib
	}
	// measured runs fn and returns the server's CPU time meanwhile (-1:
	// unknown).
	measured := func(fn func()) time.Duration {
		if pid == 0 {
			fn()
			return -1
		}
		used, err := cpuDuring(pid, fn)
		if err != nil {
			return -1
		}
		return used
	}
	// The machine's speed is timed on the server's core while the server
	// is idle, when the server was pinned; else on this process's core.
	speed := func() time.Duration { return calibrate(0, 1, rep.Pinned) }
	phase := func(name string, requestsPerOp int, run func() *fleet.Report) benchPhase {
		var r *fleet.Report
		before := speed()
		opened := dials.Load()
		used := measured(func() { r = run() })
		p := summarisePhase(name, requestsPerOp, r, used)
		p.Connections = dials.Load() - opened
		p.calibrated(before, speed())
		return p
	}
	if st, err := apic.APNsStats(ctx, true); err == nil && st.Runtime != nil {
		rep.GoroutinesA = st.Runtime.Goroutines
	}

	f := fleet.New(client, *n, fleet.WithDeviceOptions(device.WithTrust(trust), device.WithKeySize(*keySize), device.WithRequestTimeout(time.Minute)))
	// profile download, GetCACaps, GetCACert, PKIOperation, Authenticate, TokenUpdate
	rep.Phases = append(rep.Phases, phase("enroll", 6, func() *fleet.Report { return f.Enroll(ctx, strings.TrimRight(base, "/")+"/enroll", *concurrency) }))
	rep.Presigned = *presign
	if *nanomdm != "" {
		return compareNanoMDM(ctx, rep, f, client, apic, rebase, pid, *nanomdm, *connects, *cycles, *turn, *concurrency, *keySize, *caKeySize, *pin, *asJSON, stdout)
	}
	if *connects > 0 {
		// Presigned, the connects are sent by a lean client — each device's
		// own signed Idle to its own ServerURL, the answer checked to be an
		// empty 200 — as bench -floor sends them, so the two figures differ
		// only by the server; signed live, the devices connect themselves.
		connect := func(rounds int) *fleet.Report { return f.Connect(ctx, rounds, *concurrency) }
		if *presign {
			idles, err := presignedIdles(ctx, f.Devices(), rebase)
			if err != nil {
				return err
			}
			connect = func(rounds int) *fleet.Report { return replayIdles(ctx, client, idles, rounds, *concurrency) }
		}
		// In two halves, with the server's memory read after each: once
		// warmed up by the first, the second must not grow it.
		var halfRSS int64
		p := phase("signed Idle connect", 1, func() *fleet.Report {
			first := connect(max(1, *connects/2))
			halfRSS = rss()
			if *connects < 2 {
				return first
			}
			return mergeReports(first, connect(*connects-*connects/2))
		})
		p.RSSHalfKiB, p.RSSKiB = halfRSS, rss()
		rep.Phases = append(rep.Phases, p)
	}
	if *cycles > 0 {
		var total *fleet.Report
		var cpuSum time.Duration
		var opened int64
		// Round 0 is a warm-up, not counted: a client that sends a cycle's
		// answer as soon as it has read the command can find the Idle's
		// connection not yet back in its pool and dial another, so the
		// pool grows to about two connections per worker once — TLS
		// handshakes that would otherwise land in the first rounds.
		prepare, cycle, err := mockmdmCycles(ctx, f, client, apic, rebase, *cycles, *concurrency, *presign)
		if err != nil {
			return err
		}
		before := speed()
		for round := range *cycles + 1 {
			if round == 1 {
				opened = dials.Load()
			}
			if err := prepare(round); err != nil {
				return err
			}
			run := func() *fleet.Report { return cycle(round) }
			if round == 0 {
				if r := run(); r.Failed > 0 {
					return fmt.Errorf("the warm-up round of command cycles failed: %v", r.Errors)
				}
				continue
			}
			var r *fleet.Report
			used := measured(func() { r = run() })
			if used < 0 || cpuSum < 0 {
				cpuSum = -1
			} else {
				cpuSum += used
			}
			total = mergeReports(total, r)
		}
		p := summarisePhase("command cycle", 2, total, cpuSum)
		p.Connections = dials.Load() - opened
		p.calibrated(before, speed())
		rep.Phases = append(rep.Phases, p)
	}
	// With the devices' idle connections closed, the server's goroutines
	// must come back to where they were before the workload (each open
	// connection holds one, as the API request reading the count does).
	client.CloseIdleConnections()
	for deadline := time.Now().Add(5 * time.Second); ; {
		st, err := apic.APNsStats(ctx, true)
		if err != nil || st.Runtime == nil {
			break
		}
		rep.GoroutinesB = st.Runtime.Goroutines
		if rep.GoroutinesB <= rep.GoroutinesA || time.Now().After(deadline) {
			break
		}
		client.CloseIdleConnections()
		time.Sleep(50 * time.Millisecond)
	}
	if pid != 0 {
		rep.PeakRSSKiB, _ = processPeakRSS(pid)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.writeText(stdout)
	return nil
}

// mockmdmCycles prepares rounds+1 rounds of command cycles (round 0 the
// warm-up) for f's enrolled devices: prepare(r) queues round r's
// SecurityInfo through the API, without a push; cycle(r) runs every
// device's cycle of round r.
//
// Presigned, every round's answers are signed here, before the first
// round, under command UUIDs chosen here, so the rounds run back to back:
// signing a round's answers between rounds (about a millisecond per
// device) left the server idle, and each round then began with a cold
// server — wake-ups and cold caches counted as the cycles' cost. The
// cycles are then sent by the lean client as the connects are: each
// device's Idle (to rebase(its ServerURL)), the command checked to be the
// one queued, then the device's presigned answer. Signed live, the
// devices connect themselves.
func mockmdmCycles(ctx context.Context, f *fleet.Fleet, client *http.Client, apic *api.Client, rebase func(string) string, rounds, concurrency int, presign bool) (prepare func(int) error, cycle func(int) *fleet.Report, err error) {
	var ids []string
	for _, d := range f.Devices() {
		if d.IsEnrolled() {
			ids = append(ids, d.UDID())
		}
	}
	uuids := make([]string, rounds+1)
	for r := range uuids {
		uuids[r] = uuid.NewString()
	}
	prepare = func(r int) error {
		noPush := false
		if _, err := apic.Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: ids, Command: json.RawMessage(`{"RequestType":"SecurityInfo"}`), CommandUUID: uuids[r], Push: &noPush}); err != nil {
			return fmt.Errorf("enqueue for the command cycles: %w", err)
		}
		return nil
	}
	cycle = func(int) *fleet.Report { return f.Connect(ctx, 1, concurrency) }
	if presign {
		cmds := make([]device.Command, len(uuids))
		for r, u := range uuids {
			cmds[r] = device.Command{UUID: u, RequestType: "SecurityInfo"}
		}
		signed, err := presignedCycles(ctx, f.Devices(), cmds, rebase)
		if err != nil {
			return nil, nil, err
		}
		cycle = func(r int) *fleet.Report { return replayCycles(ctx, client, signed[r], concurrency) }
	}
	return prepare, cycle, nil
}

// cpuDuring runs fn and returns the CPU time process pid used meanwhile.
func cpuDuring(pid int, fn func()) (time.Duration, error) {
	a, errA := processCPU(pid)
	fn()
	b, errB := processCPU(pid)
	if err := errors.Join(errA, errB); err != nil {
		return 0, err
	}
	return cpuBetween(a, b), nil
}

// summarisePhase makes a phase's figures from the fleet's report and the
// server CPU it used (-1: unknown).
func summarisePhase(name string, requestsPerOp int, r *fleet.Report, used time.Duration) benchPhase {
	p := benchPhase{Phase: name, Ops: r.OK, Failed: r.Failed, Requests: r.OK * requestsPerOp, Elapsed: r.Elapsed, ServerCPU: -1, CPUPerOp: -1, CPUPerRequest: -1}
	if r.Elapsed > 0 {
		p.PerSecond = float64(p.Requests) / r.Elapsed.Seconds()
	}
	for k, l := range r.Steps {
		if strings.HasSuffix(k, "(total)") {
			p.P50, p.P95, p.P99 = l.P50, l.P95, l.P99
		}
	}
	if used >= 0 {
		p.ServerCPU = used
		if p.Ops > 0 {
			p.CPUPerOp = p.ServerCPU / time.Duration(p.Ops)
			p.CPUPerRequest = p.ServerCPU / time.Duration(p.Requests)
		}
	}
	return p
}

// mergeReports adds b's operations to a (the latency percentiles of the
// merged report are b's weighted by nothing: each cycle round is alike, so
// the last round's percentiles stand for all).
func mergeReports(a, b *fleet.Report) *fleet.Report {
	if a == nil {
		return b
	}
	a.OK += b.OK
	a.Failed += b.Failed
	a.Operations += b.Operations
	a.Elapsed += b.Elapsed
	a.Steps = b.Steps
	return a
}

// writeMeasuredOn is the reports' line naming the CPU (cpuModel), left
// out when it is not known.
func writeMeasuredOn(w io.Writer, cpu string) {
	if cpu != "" {
		fmt.Fprintf(w, "  measured on: %s\n", cpu)
	}
}

func (r *benchReport) writeText(w io.Writer) {
	where := "a running server"
	if r.Store != "" {
		where = fmt.Sprintf("a server it started (%s store, %d-bit CA, pinned: %v)", r.Store, r.CAKeySize, r.Pinned)
	}
	signing := "signed ahead of each phase"
	if !r.Presigned {
		signing = "signed live"
	}
	if r.Plain {
		signing += ", sent over plain HTTP"
	}
	fmt.Fprintf(w, "mockmdm bench: %d devices against %s; messages %s\n", r.Devices, where, signing)
	writeMeasuredOn(w, r.CPU)
	fmt.Fprintf(w, "  %-20s %7s %8s %10s %9s %9s %9s %12s %12s\n", "phase", "ops", "requests", "req/s", "p50", "p95", "p99", "CPU/op", "CPU/request")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "  %-20s %7d %8d %10.1f %9s %9s %9s %12s %12s\n", p.Phase, p.Ops, p.Requests, p.PerSecond,
			ms(p.P50), ms(p.P95), ms(p.P99), cpuString(p.CPUPerOp), cpuString(p.CPUPerRequest))
		if p.Failed > 0 {
			fmt.Fprintf(w, "  %-20s %d failed\n", "", p.Failed)
		}
	}
	for _, p := range r.Phases {
		if p.RSAVerify > 0 && p.Phase != "enroll" {
			fmt.Fprintf(w, "  %-20s one RSA-2048 verification took %s here; at the targets' %s: %s per op; %d connections opened\n",
				p.Phase, cpuString(p.RSAVerify), cpuString(rsaReference), cpuString(p.CPUPerOpAtReference), p.Connections)
		}
	}
	for _, p := range r.Phases {
		if p.RSSHalfKiB > 0 && p.RSSKiB > 0 {
			fmt.Fprintf(w, "  %-20s server RSS %.1f MiB halfway, %.1f MiB at the end\n", p.Phase, float64(p.RSSHalfKiB)/1024, float64(p.RSSKiB)/1024)
		}
	}
	if r.PeakRSSKiB > 0 {
		fmt.Fprintf(w, "  server peak RSS: %.1f MiB; goroutines %d before, %d after (idle connections closed)\n", float64(r.PeakRSSKiB)/1024, r.GoroutinesA, r.GoroutinesB)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func cpuString(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1fµs", float64(d)/1e3)
}

// benchServer is a mockmdm serve this command started.
type benchServer struct {
	cmd *exec.Cmd
	url string
	// plainURL is its plain-HTTP listener's, when it has one.
	plainURL string
	pinned   bool
	done     chan struct{}
}

// startBenchServer runs this binary's serve on a loopback port with a
// fresh data directory, pinned to CPU 0 when asked (and GOMAXPROCS=1 then,
// so the runtime does not plan for a core it cannot use).
func startBenchServer(ctx context.Context, dir, storeKind string, caKeySize int, pin, plain bool, cpuProfile string) (*benchServer, error) {
	args := []string{"serve", "-data", dir, "-store", storeKind, "-listen", "127.0.0.1:0",
		"-hosts", "127.0.0.1", "-log-level", "error", "-ca-key-size", fmt.Sprint(caKeySize)}
	if plain {
		args = append(args, "-http-listen", "127.0.0.1:0")
	}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	return startChild(ctx, pin, args...)
}

// startChild runs this binary with args — a server that prints "HTTPS:
// addr" and then "ready" — pinned to CPU 0 when asked.
func startChild(ctx context.Context, pin bool, args ...string) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = os.Environ()
	pin = pin && runtime.NumCPU() >= 2
	if pin {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &benchServer{cmd: cmd, done: make(chan struct{})}
	if pin {
		s.pinned = pinProcess(cmd.Process.Pid, 0) == nil
	}
	ready := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		addr := ""
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if a, found := strings.CutPrefix(l, "HTTPS:"); found {
				addr = strings.TrimSpace(a)
			}
			if a, found := strings.CutPrefix(l, "HTTP:"); found {
				s.plainURL = "http://" + strings.TrimSpace(a)
			}
			if l == "ready" {
				ready <- addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	select {
	case addr := <-ready:
		if addr == "" {
			s.stop()
			return nil, errors.New("the bench server printed no HTTPS address")
		}
		s.url = "https://" + addr
		return s, nil
	case <-s.done:
		return nil, errors.New("the bench server exited before it was ready")
	case <-time.After(2 * time.Minute):
		s.stop()
		return nil, errors.New("the bench server was not ready within 2 minutes")
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

func (s *benchServer) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
