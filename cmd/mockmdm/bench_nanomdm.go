package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"time"

	"github.com/google/uuid"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/device/fleet"
	"github.com/mockmdm/mockmdm/mdm"
)

// nanoAPIKey is the API key the reference NanoMDM is started with (its
// API answers on loopback only, for the bench's enqueues).
const nanoAPIKey = "mockmdm-bench"

// The issue's reference figures: NanoMDM's server CPU per signed Idle
// connect and per command cycle on the machine the targets were set on,
// and mockmdm's targets against them.
const (
	referenceConnect = 210 * time.Microsecond
	referenceCycle   = 550 * time.Microsecond
	targetConnect    = 85 * time.Microsecond
	targetCycle      = 200 * time.Microsecond
)

// benchTarget is a server the bench drives round by round: in a round
// every device sends its signed Idle once, or runs one command cycle
// (prepare queues the round's command, unmeasured; cycles runs it).
// idles(k) runs k rounds of Idles without a pause between them, as the
// connect phase of mockmdm bench does: a pause at every round's end, with
// fewer devices in flight, would leave the server idle and each round
// would pay for waking it again.
type benchTarget struct {
	name    string
	pid     int
	idles   func(rounds int) *fleet.Report
	prepare func(round int) error
	cycles  func(round int) *fleet.Report
}

// comparedPhase is one workload run on two servers alternately.
type comparedPhase struct {
	Phase string `json:"phase"`
	// Per server, in the order mockmdm, NanoMDM.
	Servers []comparedServer `json:"servers"`
	// Ratio is mockmdm's CPU per op over NanoMDM's; IssueRatio is the
	// issue's target over its NanoMDM figure, the ratio to be at or under.
	Ratio      float64 `json:"ratio"`
	IssueRatio float64 `json:"issue_ratio"`
	// RSAVerify is the machine's speed around the phase (see benchPhase).
	RSAVerify time.Duration `json:"rsa2048_verify_ns,omitempty"`
}

// comparedServer is one server's share of a comparedPhase.
type comparedServer struct {
	Name        string        `json:"name"`
	Ops         int           `json:"ops"`
	Failed      int           `json:"failed"`
	ServerCPU   time.Duration `json:"server_cpu_ns"`
	CPUPerOp    time.Duration `json:"server_cpu_per_op_ns"`
	AtReference time.Duration `json:"server_cpu_per_op_at_reference_ns,omitempty"`
}

// interleave runs the connect and cycle workloads on every target in
// turns of perTurn rounds, target after target (the order turned each
// turn), so the servers are measured in the same minutes: this machine's
// speed swings by up to half from one minute to the next, which no
// comparison of runs made at different times survives. A turn of several
// rounds lets each server warm up again after the other's turn, as it
// would be under steady load. Each workload starts with one uncounted
// round per target, in which the clients' connection pools fill. Only one
// target works at a time; each is pinned to CPU 0.
func interleave(ctx context.Context, targets []benchTarget, connects, cycles, perTurn int, pinned bool) ([]comparedPhase, error) {
	var out []comparedPhase
	perTurn = max(1, perTurn)
	// round(t, r, k) runs rounds r to r+k-1 of a workload on t.
	run := func(name string, rounds int, issue float64, round func(t benchTarget, r, k int) (*fleet.Report, time.Duration, error)) error {
		if rounds == 0 {
			return nil
		}
		before := calibrate(0, 1, pinned)
		p := comparedPhase{Phase: name, IssueRatio: issue, Servers: make([]comparedServer, len(targets))}
		for _, t := range targets { // the warm-up round
			rep, _, err := round(t, 0, 1)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", t.name, name, err)
			}
			if rep.Failed > 0 {
				return fmt.Errorf("%s, %s: the warm-up round failed: %v", t.name, name, rep.Errors)
			}
		}
		for turn, first := 0, 1; first <= rounds; turn, first = turn+1, first+perTurn {
			for k := range targets {
				i := k
				if turn%2 == 1 {
					i = len(targets) - 1 - k
				}
				rep, used, err := round(targets[i], first, min(perTurn, rounds-first+1))
				if err != nil {
					return fmt.Errorf("%s, %s: %w", targets[i].name, name, err)
				}
				s := &p.Servers[i]
				s.Ops += rep.OK
				s.Failed += rep.Failed
				s.ServerCPU += used
			}
		}
		after := calibrate(0, 1, pinned)
		for i := range p.Servers {
			s := &p.Servers[i]
			s.Name = targets[i].name
			if s.Ops > 0 {
				bp := benchPhase{CPUPerOp: s.ServerCPU / time.Duration(s.Ops)}
				bp.calibrated(before, after)
				s.CPUPerOp, s.AtReference, p.RSAVerify = bp.CPUPerOp, bp.CPUPerOpAtReference, bp.RSAVerify
			}
		}
		if len(p.Servers) == 2 && p.Servers[1].CPUPerOp > 0 {
			p.Ratio = float64(p.Servers[0].CPUPerOp) / float64(p.Servers[1].CPUPerOp)
		}
		out = append(out, p)
		return nil
	}
	measured := func(t benchTarget, work func() *fleet.Report) (*fleet.Report, time.Duration, error) {
		var rep *fleet.Report
		used, err := cpuDuring(t.pid, func() { rep = work() })
		return rep, used, err
	}
	if err := run("signed Idle connect", connects, float64(targetConnect)/float64(referenceConnect), func(t benchTarget, _, k int) (*fleet.Report, time.Duration, error) {
		return measured(t, func() *fleet.Report { return t.idles(k) })
	}); err != nil {
		return nil, err
	}
	// A cycle round needs its command queued first, so a turn of cycles is
	// measured round by round, the enqueues left out.
	if err := run("command cycle", cycles, float64(targetCycle)/float64(referenceCycle), func(t benchTarget, first, k int) (*fleet.Report, time.Duration, error) {
		var total *fleet.Report
		var used time.Duration
		for r := first; r < first+k; r++ {
			if err := t.prepare(r); err != nil {
				return nil, 0, err
			}
			rep, u, err := measured(t, func() *fleet.Report { return t.cycles(r) })
			if err != nil {
				return nil, 0, err
			}
			total, used = mergeReports(total, rep), used+u
		}
		return total, used, nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// writeCompared prints interleave's phases.
func writeCompared(w io.Writer, phases []comparedPhase) {
	fmt.Fprintf(w, "  %-20s %8s %14s %14s %7s %12s\n", "phase", "ops", "mockmdm CPU/op", "NanoMDM CPU/op", "ratio", "issue's ratio")
	for _, p := range phases {
		if len(p.Servers) != 2 {
			continue
		}
		m, n := p.Servers[0], p.Servers[1]
		fmt.Fprintf(w, "  %-20s %8d %14s %14s %7.2f %12.2f\n", p.Phase, m.Ops, cpuString(m.CPUPerOp), cpuString(n.CPUPerOp), p.Ratio, p.IssueRatio)
		for _, s := range p.Servers {
			if s.Failed > 0 {
				fmt.Fprintf(w, "  %-20s %s: %d failed\n", "", s.Name, s.Failed)
			}
		}
	}
	for _, p := range phases {
		if p.RSAVerify > 0 && len(p.Servers) == 2 {
			fmt.Fprintf(w, "  %-20s one RSA-2048 verification took %s here; at the targets' %s: mockmdm %s, NanoMDM %s per op\n",
				p.Phase, cpuString(p.RSAVerify), cpuString(rsaReference), cpuString(p.Servers[0].AtReference), cpuString(p.Servers[1].AtReference))
		}
	}
}

// startNanoTarget starts NanoMDM (the nanomdm binary at bin; plain HTTP,
// in-memory storage), enrolls n devices in it — each with its own identity
// from a CA it is told to trust, sending Authenticate then TokenUpdate —
// and signs ahead their Idles and their answers for rounds+1 cycle rounds
// (round 0 the warm-up). NanoMDM is the open-source server the issue's
// reference figures were measured on; mockmdm neither ships nor fetches
// it. stop ends it.
func startNanoTarget(ctx context.Context, bin string, n, rounds, concurrency, keySize, caKeySize int, pin bool) (t benchTarget, stop func(), err error) {
	dir, err := os.MkdirTemp("", "mockmdm-bench-nanomdm-")
	if err != nil {
		return t, nil, err
	}
	ca, err := certs.NewCA("mockmdm bench NanoMDM device CA", caKeySize, 24*time.Hour)
	if err != nil {
		os.RemoveAll(dir)
		return t, nil, err
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := certs.WriteCertPEM(caPath, ca.Cert); err != nil {
		os.RemoveAll(dir)
		return t, nil, err
	}
	srv, err := startNanoMDM(ctx, bin, caPath, pin)
	if err != nil {
		os.RemoveAll(dir)
		return t, nil, err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * concurrency}}
	stop = func() {
		client.CloseIdleConnections()
		srv.stop()
		os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	devs := make([]nanoDevice, n)
	idles := make([]signedIdle, n)
	for i := range devs {
		d, err := newNanoDevice(ca, i, keySize)
		if err != nil {
			return t, nil, err
		}
		for _, msg := range []map[string]any{
			{"MessageType": "Authenticate", "UDID": d.udid, "Topic": nanoTopic, "BuildVersion": "22A3354", "OSVersion": "18.0", "ProductName": "iPad13,1", "SerialNumber": fmt.Sprintf("BENCH%07d", i)},
			{"MessageType": "TokenUpdate", "UDID": d.udid, "Topic": nanoTopic, "Token": bytes.Repeat([]byte{byte(i)}, 32), "PushMagic": uuid.NewString()},
		} {
			body, err := mdm.MarshalPlist(msg)
			if err != nil {
				return t, nil, err
			}
			if _, err := d.send(ctx, client, srv.url+"/mdm", checkin.CheckinContentType, body); err != nil {
				return t, nil, fmt.Errorf("NanoMDM refused device %d's %s: %w", i, msg["MessageType"], err)
			}
		}
		idle, err := mdm.MarshalPlist(mdm.CommandResults{Enrollment: mdm.Enrollment{UDID: d.udid}, Status: mdm.StatusIdle})
		if err != nil {
			return t, nil, err
		}
		sig, err := certs.SignMdmSignature(idle, d.cert, d.key)
		if err != nil {
			return t, nil, err
		}
		idles[i] = signedIdle{url: srv.url + "/mdm", body: idle, sig: sig}
		devs[i] = d
	}
	ids := make([]string, n)
	for i, d := range devs {
		ids[i] = d.udid
	}
	// Every round's command and every device's answer to it, signed now.
	cmds := make([][]byte, rounds+1)
	cycles := make([][]signedCycle, rounds+1)
	for r := range cycles {
		u := uuid.NewString()
		c, err := mdm.NewCommand(u, &mdm.SecurityInfo{})
		if err != nil {
			return t, nil, err
		}
		cmds[r] = c.Raw
		for i, d := range devs {
			// An answer like the one mockmdm's virtual devices give.
			ack, err := mdm.MarshalPlist(map[string]any{"UDID": d.udid, "CommandUUID": u, "Status": mdm.StatusAcknowledged,
				"SecurityInfo": map[string]any{"HardwareEncryptionCaps": 3, "PasscodePresent": false, "PasscodeCompliant": true, "PasscodeCompliantWithProfiles": true,
					"ManagementStatus": map[string]any{"EnrolledViaDEP": false, "UserApprovedEnrollment": true, "IsUserEnrollment": false, "IsActivationLockManageable": false}}})
			if err != nil {
				return t, nil, err
			}
			sig, err := certs.SignMdmSignature(ack, d.cert, d.key)
			if err != nil {
				return t, nil, err
			}
			cycles[r] = append(cycles[r], signedCycle{idle: idles[i], uuid: u, ack: ack, sig: []byte(sig)})
		}
	}
	return benchTarget{
		name:    "NanoMDM",
		pid:     srv.cmd.Process.Pid,
		idles:   func(k int) *fleet.Report { return replayIdles(ctx, client, idles, k, concurrency) },
		prepare: func(r int) error { return nanoEnqueue(ctx, client, srv.url, ids, cmds[r]) },
		cycles:  func(r int) *fleet.Report { return replayCycles(ctx, client, cycles[r], concurrency) },
	}, stop, nil
}

// nanoTopic is the push topic the bench's devices give NanoMDM.
const nanoTopic = "com.apple.mgmt.External.mockmdm-bench"

// nanoDevice is one of the bench's devices enrolled in NanoMDM.
type nanoDevice struct {
	udid string
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// newNanoDevice makes device i's key and has ca issue its identity.
func newNanoDevice(ca *certs.CA, i, keySize int) (nanoDevice, error) {
	key, err := rsa.GenerateKey(rand.Reader, keySize)
	if err != nil {
		return nanoDevice{}, err
	}
	udid := fmt.Sprintf("0000BE0C-%016X", i)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: udid}}, key)
	if err != nil {
		return nanoDevice{}, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nanoDevice{}, err
	}
	cert, err := ca.IssueIdentity(csr, 24*time.Hour)
	if err != nil {
		return nanoDevice{}, err
	}
	return nanoDevice{udid: udid, cert: cert, key: key}, nil
}

// send signs body live and sends it as contentType.
func (d nanoDevice) send(ctx context.Context, client *http.Client, url, contentType string, body []byte) ([]byte, error) {
	sig, err := certs.SignMdmSignature(body, d.cert, d.key)
	if err != nil {
		return nil, err
	}
	return sendSignedAs(ctx, client, url, contentType, body, sig)
}

// nanoEnqueue queues the raw command for ids through NanoMDM's API,
// without a push.
func nanoEnqueue(ctx context.Context, client *http.Client, base string, ids []string, command []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v1/enqueue/"+strings.Join(ids, ",")+"?nopush=1", bytes.NewReader(command))
	if err != nil {
		return err
	}
	req.SetBasicAuth("nanomdm", nanoAPIKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("NanoMDM's enqueue answered %s: %s", resp.Status, bytes.TrimSpace(answer))
	}
	return nil
}

// startNanoMDM runs bin on a free loopback port with in-memory storage,
// trusting caPath's device CA, pinned to CPU 0 when asked, and waits
// until it answers.
func startNanoMDM(ctx context.Context, bin, caPath string, pin bool) (*benchServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-listen", addr, "-ca", caPath, "-api", nanoAPIKey, "-storage", "inmem", "-storage-dsn", "")
	cmd.Env = os.Environ()
	pin = pin && runtime.NumCPU() >= 2
	if pin {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting NanoMDM (%s): %w", bin, err)
	}
	s := &benchServer{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = cmd.Wait()
	}()
	if pin {
		s.pinned = pinProcess(cmd.Process.Pid, 0) == nil
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/version", nil)
		if err != nil {
			s.stop()
			return nil, err
		}
		resp, err := probe.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("NanoMDM (%s) exited before it answered", bin)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("NanoMDM (%s) did not answer on %s within 30 s", bin, addr)
		}
	}
}

// comparedReport is what mockmdm bench -nanomdm prints.
type comparedReport struct {
	Devices int    `json:"devices"`
	Store   string `json:"store"`
	Plain   bool   `json:"plain_http"`
	Pinned  bool   `json:"pinned"`
	NanoMDM string `json:"nanomdm"`
	// CPU is the processor both servers ran on: their ratio depends on it.
	CPU string `json:"cpu,omitempty"`
	// Enroll is mockmdm's enrollment phase (NanoMDM's devices are given
	// their identities, not enrolled through SCEP: not compared).
	Enroll benchPhase      `json:"enroll"`
	Phases []comparedPhase `json:"phases"`
	// Turn is how many operations each server ran before the other took
	// over.
	Turn int `json:"turn_ops"`
}

// compareNanoMDM runs the connect and cycle workloads on mockmdm (its
// devices in f, enrolled) and NanoMDM alternately (interleave) and prints
// the comparison.
func compareNanoMDM(ctx context.Context, rep *benchReport, f *fleet.Fleet, client *http.Client, apic *api.Client, rebase func(string) string, pid int, bin string, connects, cycles, turn, concurrency, keySize, caKeySize int, pin, asJSON bool, stdout io.Writer) error {
	if pid == 0 {
		return errors.New("-nanomdm needs the mockmdm server's process to measure it")
	}
	idles, err := presignedIdles(ctx, f.Devices(), rebase)
	if err != nil {
		return err
	}
	prepare, cycle, err := mockmdmCycles(ctx, f, client, apic, rebase, cycles, concurrency, true)
	if err != nil {
		return err
	}
	mock := benchTarget{name: "mockmdm", pid: pid, prepare: prepare, cycles: cycle,
		idles: func(k int) *fleet.Report { return replayIdles(ctx, client, idles, k, concurrency) }}
	nano, stop, err := startNanoTarget(ctx, bin, len(idles), cycles, concurrency, keySize, caKeySize, pin)
	if err != nil {
		return err
	}
	defer stop()
	phases, err := interleave(ctx, []benchTarget{mock, nano}, connects, cycles, (turn+len(idles)-1)/len(idles), rep.Pinned)
	if err != nil {
		return err
	}
	out := comparedReport{Devices: rep.Devices, Store: rep.Store, Plain: rep.Plain, Pinned: rep.Pinned, NanoMDM: bin, CPU: rep.CPU, Phases: phases, Turn: turn}
	if len(rep.Phases) > 0 {
		out.Enroll = rep.Phases[0]
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	transport := "HTTPS"
	if out.Plain {
		transport = "plain HTTP"
	}
	fmt.Fprintf(stdout, "mockmdm bench -nanomdm: mockmdm (%s store, %s) and NanoMDM (%s; in-memory storage, plain HTTP), %d devices each, measured in alternate turns of %d operations (pinned: %v)\n",
		out.Store, transport, bin, out.Devices, out.Turn, out.Pinned)
	writeMeasuredOn(stdout, out.CPU)
	writeCompared(stdout, phases)
	return nil
}
