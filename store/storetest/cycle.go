package storetest

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// BenchmarkCommandCycle measures what a store spends on the command cycles
// of `mockmdm bench`, without HTTP, TLS or signature checks: devices
// devices, each given one command per round (the enqueue not counted, as
// the bench does not count it), then each running its cycle at once, as
// the check-in service calls the store once it knows the identity — an
// Idle (binding, last-seen time, next command, its transcript entry) and the
// acknowledgement (the same, with the result saved before the next
// command is looked up).
//
// It reports cpu-ns/cycle, the CPU of the whole process per cycle (the
// SQLite store's writer goroutine does its work on the callers' behalf,
// so their own time would miss it), where the platform can read it. The
// sizes are those of the bench's SecurityInfo cycle with 2048-bit
// identities.
func BenchmarkCommandCycle(b *testing.B, s store.Store) {
	const devices = 64
	ctx := context.Background()
	type device struct {
		id, hash string
		der      []byte
	}
	devs := make([]*device, devices)
	now := time.Now()
	for i := range devs {
		d := &device{id: fmt.Sprintf("%040X", i*7919), hash: fmt.Sprintf("%064x", i*104729)}
		// A 2048-bit Mdm-Signature's 1,326 bytes, of which the signing
		// time, digest and signature (the last 323) change per request.
		d.der = make([]byte, 1326)
		for j := range d.der {
			d.der[j] = byte(i + j)
		}
		devs[i] = d
		e := &store.Enrollment{ID: d.id, Type: "Device", UDID: d.id, CertHash: d.hash, Enrolled: true,
			Topic: "com.apple.mgmt.External.bench", PushToken: []byte("token"), PushMagic: "magic",
			EnrolledAt: now, AuthenticatedAt: now}
		if err := s.PutEnrollment(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	idle := []byte(strings.Repeat("<key>Status</key><string>Idle</string>", 8))
	command := []byte(strings.Repeat("<key>RequestType</key><string>SecurityInfo</string>", 12))
	result := []byte(strings.Repeat("<key>HardwareEncryptionCaps</key><integer>3</integer>", 20))
	signature := func(d *device, n int) string {
		binary.BigEndian.PutUint64(d.der[len(d.der)-323:], uint64(n))
		return base64.StdEncoding.EncodeToString(d.der)
	}
	cycle := func(d *device, round int) error {
		request := func(body []byte, status string, saveUUID string) (*store.QueueItem, error) {
			if br, ok := s.(interface {
				EnrollmentBinding(ctx context.Context, id string) (store.Binding, error)
			}); ok {
				if _, err := br.EnrollmentBinding(ctx, d.id); err != nil {
					return nil, err
				}
			} else if _, err := s.GetEnrollment(ctx, d.id); err != nil {
				return nil, err
			}
			t := time.Now()
			if err := s.TouchEnrollment(ctx, d.id, t); err != nil {
				return nil, err
			}
			if saveUUID != "" {
				if err := s.SaveResult(ctx, d.id, saveUUID, status, body, t); err != nil {
					return nil, err
				}
			}
			next, err := s.NextCommand(ctx, d.id, saveUUID != "")
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			entry := &store.TranscriptEntry{Time: t, EnrollmentID: d.id, RequestID: "0123456789abcdef", Kind: "checkin",
				MessageType: status, Method: "PUT", Path: "/mdm/connect", Status: 200, Request: body,
				Signature: signature(d, 2*round+len(saveUUID))}
			if next != nil {
				entry.Response = command
				entry.CommandUUID = next.CommandUUID
			}
			return next, s.AppendTranscript(ctx, entry)
		}
		next, err := request(idle, "Idle", "")
		if err != nil {
			return err
		}
		if next == nil {
			return fmt.Errorf("%s: no command on Idle in round %d", d.id, round)
		}
		after, err := request(result, store.CommandAcknowledged, next.CommandUUID)
		if err != nil {
			return err
		}
		if after != nil {
			return fmt.Errorf("%s: a second command in round %d", d.id, round)
		}
		return nil
	}
	ids := make([]string, devices)
	for i, d := range devs {
		ids[i] = d.id
	}
	rounds := (b.N + devices - 1) / devices
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for round := range rounds {
		b.StopTimer()
		cmd := &store.Command{UUID: fmt.Sprintf("CYCLE-%08d", round), RequestType: "SecurityInfo", Raw: command}
		if err := s.Enqueue(ctx, cmd, ids...); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		before := processCPU()
		var wg sync.WaitGroup
		errs := make(chan error, devices)
		for _, d := range devs {
			wg.Go(func() {
				if err := cycle(d, round); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		cpu += processCPU() - before
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(rounds*devices), "cpu-ns/cycle")
	}
}
