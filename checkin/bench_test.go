package checkin

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/sqlite"
)

// BenchmarkConnectCycle measures one full command cycle through the real
// handler stack (body limit, decode, Mdm-Signature check, cached chain
// check, certificate binding, queue, transcript): a signed Idle that gets a
// command back, then a signed Acknowledged that gets an empty body. Queueing
// the command and the device's own signing happen outside the timer, in
// batches, since they are not the server's work in a connect.
func BenchmarkConnectCycle(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchConnectCycle(b, newFixture(b)) })
	b.Run("sqlite", func(b *testing.B) {
		st, err := sqlite.Open(context.Background(), b.TempDir()+"/bench.db")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		benchConnectCycle(b, newFixtureOn(b, st))
	})
}

func benchConnectCycle(b *testing.B, f *fixture) {
	d := newDevice(b, "udid-bench")
	f.enroll(b, d)
	st := f.st
	idle := encode(b, map[string]any{"UDID": "udid-bench", "Status": "Idle"})
	idleSig := mustSign(b, idle, d)
	const batch = 128
	type cycle struct {
		cmd  *store.Command
		body []byte
		sig  string
	}
	cycles := make([]cycle, batch)
	connect := f.h.Connect()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		b.StopTimer()
		n := min(batch, b.N-done)
		for i := 0; i < n; i++ {
			uuid := fmt.Sprintf("bench-%d", done+i)
			c, err := mdm.NewCommand(uuid, &mdm.SecurityInfo{})
			if err != nil {
				b.Fatal(err)
			}
			body := encode(b, map[string]any{"UDID": "udid-bench", "Status": "Acknowledged", "CommandUUID": uuid, "SecurityInfo": map[string]any{"PasscodePresent": true}})
			cycles[i] = cycle{&store.Command{UUID: uuid, RequestType: c.RequestType, Raw: c.Raw, CreatedAt: f.now}, body, mustSign(b, body, d)}
		}
		for i := 0; i < n; i++ {
			// One command queued at a time, so each Acknowledged ends its
			// session with an empty body, as in a real push-connect cycle.
			b.StopTimer()
			if err := st.Enqueue(ctx, cycles[i].cmd, "udid-bench"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			rec := sendSigned(connect, CommandContentType, idle, idleSig)
			if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
				b.Fatalf("Idle: %d %s", rec.Code, rec.Body)
			}
			rec = sendSigned(connect, CommandContentType, cycles[i].body, cycles[i].sig)
			if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
				b.Fatalf("Acknowledged: %d %s", rec.Code, rec.Body)
			}
		}
	}
}

// BenchmarkSignedIdle is one signed Idle to an empty queue through the
// handler (no sockets, no HTTP parsing): the server's own share of a
// connect, signature check included. The device signs once, outside the
// timer; the handler verifies the signature on every request all the same.
func BenchmarkSignedIdle(b *testing.B) {
	f := newFixture(b)
	d := newDevice(b, "udid-idle")
	f.enroll(b, d)
	idle := encode(b, map[string]any{"UDID": "udid-idle", "Status": "Idle"})
	sig := mustSign(b, idle, d)
	connect := f.h.Connect()
	b.ReportAllocs()
	for b.Loop() {
		if rec := sendSigned(connect, CommandContentType, idle, sig); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			b.Fatalf("Idle: %d %s", rec.Code, rec.Body)
		}
	}
}
