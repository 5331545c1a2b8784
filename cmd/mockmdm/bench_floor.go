package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/device/fleet"
	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server"
)

// floorServerArg runs the floor's server: "mockmdm bench <floorServerArg>"
// (started by bench -floor, not meant to be typed).
const floorServerArg = "floor-server"

// floorCyclePath is where the floor server answers an Idle with
// floorCommand; floorCommandUUID is its CommandUUID.
const (
	floorCyclePath   = "/mdm/cycle"
	floorCommandUUID = "0F100R00-C0DE-4000-8000-000000000001"
)

// floorCommand is the SecurityInfo the floor server sends on its cycle
// path, encoded as mockmdm encodes commands.
var floorCommand = func() []byte {
	c, err := mdm.NewCommand(floorCommandUUID, &mdm.SecurityInfo{})
	if err != nil {
		panic(err)
	}
	return c.Raw
}()

// floorServer serves what every device request costs at least — TLS,
// net/http with mockmdm's timeouts, the bounded body and the Mdm-Signature
// check — and nothing of mockmdm's own: no routing, store, transcript or
// metrics. It answers a verified request with an empty 200.
func floorServer(ctx context.Context, stdout io.Writer) error {
	ca, err := certs.NewCA("mockmdm bench floor", 2048, 24*time.Hour)
	if err != nil {
		return err
	}
	cert, err := ca.IssueServerCert([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// mockmdm's own http.Server and TLS settings, around a handler that
	// does only what every device request needs.
	srv := server.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := httpx.ReadBody(nil, r, checkin.DefaultMaxBody)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := certs.VerifyMdmSignature(r.Header.Get("Mdm-Signature"), body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// On the cycle path an Idle gets a command, as in a command
		// cycle; anything else an empty queue.
		if r.URL.Path == floorCyclePath && bytes.Contains(body, []byte("<string>Idle</string>")) {
			w.Header().Set("Content-Type", "application/xml; charset=utf-8")
			_, _ = w.Write(floorCommand)
			return
		}
		w.WriteHeader(http.StatusOK)
	}), server.TLSConfigFor(cert), slog.New(slog.DiscardHandler))
	fmt.Fprintf(stdout, "HTTPS: %s\nready\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-done:
		return err
	}
}

// floorReport is what bench -floor prints.
type floorReport struct {
	Requests      int           `json:"requests"`
	Failed        int           `json:"failed"`
	PerSecond     float64       `json:"requests_per_second"`
	ServerCPU     time.Duration `json:"server_cpu_ns"`
	CPUPerRequest time.Duration `json:"server_cpu_per_request_ns"`
	RSAVerify     time.Duration `json:"rsa2048_verify_ns"`
	AtReference   time.Duration `json:"server_cpu_per_request_at_reference_ns"`
	Pinned        bool          `json:"pinned"`
	CPU           string        `json:"cpu,omitempty"` // cpuModel
	// Cycles, with -cycles: Idle → command, signed answer → empty.
	Cycles           int           `json:"cycles,omitempty"`
	CyclesFailed     int           `json:"cycles_failed,omitempty"`
	CPUPerCycle      time.Duration `json:"server_cpu_per_cycle_ns,omitempty"`
	CycleAtReference time.Duration `json:"server_cpu_per_cycle_at_reference_ns,omitempty"`
}

// benchFloor measures the floor server's CPU per signed Idle, with the
// same client, pinning, accounting and calibration as the workloads: the
// part of mockmdm's figure that is net/http, TLS and the signature check.
func benchFloor(ctx context.Context, n, connects, cycles, concurrency, keySize int, pin, asJSON bool, stdout io.Writer) error {
	total := n * max(connects, 1)
	srv, err := startChild(ctx, pin, "bench", floorServerArg)
	if err != nil {
		return err
	}
	defer srv.stop()
	rep := floorReport{Requests: total, Pinned: pin && srv.pinned && pinSelf(1) == nil, CPU: cpuModel()}
	// One device identity, one signed Idle: the server checks it in full
	// on every request all the same.
	dkey, err := rsa.GenerateKey(rand.Reader, keySize)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "floor device"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &dkey.PublicKey, dkey)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(cder)
	if err != nil {
		return err
	}
	// A device's Idle, as its plist encoder writes it.
	idle, err := mdm.MarshalPlist(mdm.CommandResults{Enrollment: mdm.Enrollment{UDID: "0000FE00-5FADE0B8A5AB0C2E"}, Status: mdm.StatusIdle})
	if err != nil {
		return err
	}
	sig, err := certs.SignMdmSignature(idle, cert, dkey)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the floor's own throwaway certificate
		MaxIdleConnsPerHost: 4 * concurrency,
	}}
	defer client.CloseIdleConnections()
	send := func() error { return sendSignedIdle(ctx, client, srv.url+"/mdm/connect", idle, sig) }
	if err := send(); err != nil { // warm the connection and the signer cache
		return err
	}
	pid := srv.cmd.Process.Pid
	measure := func(total int, op func() error) (perOp, scaled, rsaCost time.Duration, perSecond float64, failedOps int, err error) {
		return measureServer(ctx, pid, rep.Pinned, total, concurrency, op)
	}
	var perOp time.Duration
	perOp, rep.AtReference, rep.RSAVerify, rep.PerSecond, rep.Failed, err = measure(total, send)
	if err != nil {
		return err
	}
	rep.CPUPerRequest, rep.ServerCPU = perOp, perOp*time.Duration(total)
	if cycles > 0 {
		// A device's answer to the floor's SecurityInfo, signed once.
		ack, err := mdm.MarshalPlist(map[string]any{"UDID": "0000FE00-5FADE0B8A5AB0C2E", "CommandUUID": floorCommandUUID, "Status": mdm.StatusAcknowledged,
			"SecurityInfo": map[string]any{"HardwareEncryptionCaps": 3, "PasscodePresent": false, "PasscodeCompliant": true, "PasscodeCompliantWithProfiles": true,
				"ManagementStatus": map[string]any{"EnrolledViaDEP": false, "UserApprovedEnrollment": true, "IsUserEnrollment": false, "IsActivationLockManageable": false}}})
		if err != nil {
			return err
		}
		ackSig, err := certs.SignMdmSignature(ack, cert, dkey)
		if err != nil {
			return err
		}
		c := signedCycle{idle: signedIdle{url: srv.url + floorCyclePath, body: idle, sig: sig}, uuid: floorCommandUUID, ack: ack, sig: []byte(ackSig)}
		rep.Cycles = n * cycles
		rep.CPUPerCycle, rep.CycleAtReference, _, _, rep.CyclesFailed, err = measure(rep.Cycles, func() error { return c.run(ctx, client) })
		if err != nil {
			return err
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "mockmdm bench -floor: a server of net/http, TLS and the Mdm-Signature check alone (pinned: %v)\n", rep.Pinned)
	writeMeasuredOn(stdout, rep.CPU)
	rep.writeFigures(stdout)
	return nil
}

// writeFigures prints the report's figures, one line per workload.
func (rep *floorReport) writeFigures(w io.Writer) {
	if rep.Requests > 0 {
		fmt.Fprintf(w, "  %d signed Idles, %.1f requests/s, %d failed: server CPU %s per request; one RSA-2048 verification took %s here; at the targets' %s: %s\n",
			rep.Requests, rep.PerSecond, rep.Failed, cpuString(rep.CPUPerRequest), cpuString(rep.RSAVerify), cpuString(rsaReference), cpuString(rep.AtReference))
	}
	if rep.Cycles > 0 {
		fmt.Fprintf(w, "  %d cycles (Idle → a SecurityInfo, its signed answer → empty), %d failed: server CPU %s per cycle; at the targets' %s: %s\n",
			rep.Cycles, rep.CyclesFailed, cpuString(rep.CPUPerCycle), cpuString(rsaReference), cpuString(rep.CycleAtReference))
	}
}

// measureServer runs op total times, concurrency at a time, and returns
// the server pid's CPU per op, that figure at the targets' machine speed,
// the speed measured, the rate and the failures.
func measureServer(ctx context.Context, pid int, pinned bool, total, concurrency int, op func() error) (perOp, scaled, rsaCost time.Duration, perSecond float64, failedOps int, err error) {
	before := calibrate(0, 1, pinned)
	var r *fleet.Report
	used, err := cpuDuring(pid, func() {
		r = fleet.Run(ctx, "measure", total, 1, concurrency, nil, func(context.Context, int) (map[string]time.Duration, error) { return nil, op() })
	})
	after := calibrate(0, 1, pinned)
	if err != nil {
		return 0, 0, 0, 0, 0, err
	}
	p := benchPhase{CPUPerOp: used / time.Duration(total)}
	p.calibrated(before, after)
	return p.CPUPerOp, p.CPUPerOpAtReference, p.RSAVerify, float64(total) / r.Elapsed.Seconds(), r.Failed, nil
}

// signedIdle is one device's presigned Idle and where it goes.
type signedIdle struct {
	url, sig string
	body     []byte
}

// presignedIdles has every enrolled device sign its Idle (device.Presign),
// to be sent to rebase(its ServerURL).
func presignedIdles(ctx context.Context, devices []*device.Device, rebase func(string) string) ([]signedIdle, error) {
	var out []signedIdle
	for _, d := range devices {
		e := d.Enrollment()
		if e == nil {
			continue
		}
		msgs, err := d.Presign(ctx)
		if err != nil {
			return nil, fmt.Errorf("presigning device %s: %w", d.UDID(), err)
		}
		out = append(out, signedIdle{url: rebase(e.ServerURL), sig: msgs[0].Signature, body: msgs[0].Body})
	}
	if len(out) == 0 {
		return nil, errors.New("no device enrolled: nothing to connect")
	}
	return out, nil
}

// sendSigned sends one signed command-endpoint message and returns the
// body of a 200 answer.
func sendSigned(ctx context.Context, client *http.Client, url string, body []byte, sig string) ([]byte, error) {
	return sendSignedAs(ctx, client, url, checkin.CommandContentType, body, sig)
}

// sendSignedAs sends one signed message as contentType and returns the
// body of a 200 answer.
func sendSignedAs(ctx context.Context, client *http.Client, url, contentType string, body []byte, sig string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Mdm-Signature", sig)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the server answered %s", resp.Status)
	}
	return answer, nil
}

// sendSignedIdle sends one signed Idle and checks the answer is an empty
// 200 (an empty queue).
func sendSignedIdle(ctx context.Context, client *http.Client, url string, body []byte, sig string) error {
	answer, err := sendSigned(ctx, client, url, body, sig)
	if err == nil && len(answer) != 0 {
		err = fmt.Errorf("the server answered an Idle with %d bytes, not an empty queue", len(answer))
	}
	return err
}

// signedCycle is one device's presigned command cycle: its Idle, the
// command it must be sent, and its presigned answer.
type signedCycle struct {
	idle     signedIdle
	uuid     string
	ack, sig []byte
}

// presignedCycles has every enrolled device presign its Idle and its
// answer to each of cmds, one round per command: round r holds every
// device's cycle carrying cmds[r], sent to rebase(its ServerURL).
func presignedCycles(ctx context.Context, devices []*device.Device, cmds []device.Command, rebase func(string) string) ([][]signedCycle, error) {
	rounds := make([][]signedCycle, len(cmds))
	for _, d := range devices {
		e := d.Enrollment()
		if e == nil {
			continue
		}
		// Presign prepares a bounded number of answers per call; the Idle
		// it signs again each time is the same body, so the first serves.
		url := rebase(e.ServerURL)
		var idle *device.SignedMessage
		for start := 0; start < len(cmds); start += device.MaxPresigned {
			chunk := cmds[start:min(len(cmds), start+device.MaxPresigned)]
			msgs, err := d.Presign(ctx, chunk...)
			if err != nil {
				return nil, fmt.Errorf("presigning device %s: %w", d.UDID(), err)
			}
			if len(msgs) != len(chunk)+1 {
				return nil, fmt.Errorf("device %s could not answer %s ahead", d.UDID(), chunk[0].RequestType)
			}
			if idle == nil {
				idle = &msgs[0]
			}
			for i, m := range msgs[1:] {
				rounds[start+i] = append(rounds[start+i], signedCycle{idle: signedIdle{url: url, sig: idle.Signature, body: idle.Body},
					uuid: chunk[i].UUID, ack: m.Body, sig: []byte(m.Signature)})
			}
		}
	}
	if len(cmds) > 0 && len(rounds[0]) == 0 {
		return nil, errors.New("no device enrolled: nothing to connect")
	}
	return rounds, nil
}

// cycle runs one: the Idle must get the queued command back, the answer
// an empty 200.
func (c signedCycle) run(ctx context.Context, client *http.Client) error {
	cmd, err := sendSigned(ctx, client, c.idle.url, c.idle.body, c.idle.sig)
	if err != nil {
		return err
	}
	if !bytes.Contains(cmd, []byte("<string>"+c.uuid+"</string>")) {
		return fmt.Errorf("the server answered the Idle with %d bytes, not command %s", len(cmd), c.uuid)
	}
	return sendSignedIdle(ctx, client, c.idle.url, c.ack, string(c.sig))
}

// replayIdles sends every device's Idle rounds times, concurrency at a
// time, and reports like a fleet phase.
func replayIdles(ctx context.Context, client *http.Client, idles []signedIdle, rounds, concurrency int) *fleet.Report {
	return replay(ctx, len(idles), rounds, concurrency, func(i int) error {
		d := idles[i]
		return sendSignedIdle(ctx, client, d.url, d.body, d.sig)
	})
}

// replayCycles runs every device's presigned cycle once.
func replayCycles(ctx context.Context, client *http.Client, cs []signedCycle, concurrency int) *fleet.Report {
	return replay(ctx, len(cs), 1, concurrency, func(i int) error { return cs[i].run(ctx, client) })
}

// replay runs op for devices 0…n-1, rounds times each, at most
// concurrency (and one per device) at a time, and reports like a fleet
// phase.
func replay(ctx context.Context, n, rounds, concurrency int, op func(device int) error) *fleet.Report {
	return fleet.Run(ctx, "connect", n, rounds, concurrency, nil, func(_ context.Context, i int) (map[string]time.Duration, error) {
		return nil, op(i)
	})
}
