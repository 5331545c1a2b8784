package mdmtest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

// The benchmarks here send a device's presigned messages straight to the
// whole server's handler — routing, metrics, fault rules, the check-in
// handler, the store, the transcript and the webhook recorder — with no
// network or TLS, so what mockmdm adds to a request can be told apart from
// what net/http and the kernel cost (mockmdm bench measures those too).

// BenchmarkServerSignedIdle is one signed Idle to an empty queue.
func BenchmarkServerSignedIdle(b *testing.B) {
	s := mdmtest.NewServer(b)
	dev := s.NewDevice(device.WithKeySize(2048))
	s.Enroll(dev)
	msgs, err := dev.Presign(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	h, url := s.Server().Handler(), dev.Enrollment().ServerURL
	b.ReportAllocs()
	for b.Loop() {
		if rec := serve(h, url, msgs[0]); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			b.Fatalf("Idle: %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkServerCommandCycle is one command cycle: Idle → the queued
// command, its answer → an empty queue. Each command is queued in the
// store directly (what the API's enqueue costs is not a device request).
func BenchmarkServerCommandCycle(b *testing.B) {
	st := memory.New()
	b.Cleanup(func() { st.Close() })
	s := mdmtest.NewServer(b, mdmtest.WithStore(st))
	dev := s.NewDevice(device.WithKeySize(2048))
	id := s.Enroll(dev)
	h, url := s.Server().Handler(), dev.Enrollment().ServerURL
	ctx := context.Background()
	type cycle struct {
		cmd  *store.Command
		idle device.SignedMessage
		ack  device.SignedMessage
	}
	// Answers signed ahead, a batch at a time with the timer stopped.
	next := 0
	batch := func() []cycle {
		cmds := make([]device.Command, device.MaxPresigned)
		out := make([]cycle, len(cmds))
		for i := range cmds {
			uuid := fmt.Sprintf("bench-%d", next)
			next++
			c, err := mdm.NewCommand(uuid, &mdm.SecurityInfo{})
			if err != nil {
				b.Fatal(err)
			}
			cmds[i] = device.Command{UUID: uuid, RequestType: c.RequestType}
			out[i].cmd = &store.Command{UUID: uuid, RequestType: c.RequestType, Raw: c.Raw, CreatedAt: time.Now()}
		}
		msgs, err := dev.Presign(ctx, cmds...)
		if err != nil || len(msgs) != len(cmds)+1 {
			b.Fatalf("presign: %d messages, %v", len(msgs), err)
		}
		for i := range out {
			out[i].idle, out[i].ack = msgs[0], msgs[i+1]
		}
		return out
	}
	var todo []cycle
	b.ReportAllocs()
	for b.Loop() {
		if len(todo) == 0 {
			b.StopTimer()
			todo = batch()
			b.StartTimer()
		}
		c := todo[0]
		todo = todo[1:]
		if err := st.Enqueue(ctx, c.cmd, id); err != nil {
			b.Fatal(err)
		}
		if rec := serve(h, url, c.idle); rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(c.cmd.UUID)) {
			b.Fatalf("Idle: %d %s", rec.Code, rec.Body)
		}
		if rec := serve(h, url, c.ack); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			b.Fatalf("answer: %d %s", rec.Code, rec.Body)
		}
	}
}

// serve sends one signed command-endpoint message to h.
func serve(h http.Handler, url string, m device.SignedMessage) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPut, url, bytes.NewReader(m.Body))
	req.Header.Set("Content-Type", checkin.CommandContentType)
	req.Header.Set("Mdm-Signature", m.Signature)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
