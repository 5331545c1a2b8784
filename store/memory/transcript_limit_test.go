package memory

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// TestTranscriptLimitKeepsTheNewest: past its byte limit the store forgets
// its oldest entries — for every reader, per enrollment too — and keeps
// counting Seq on.
func TestTranscriptLimitKeepsTheNewest(t *testing.T) {
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 744) // 744 + 256 = 1,000 bytes an entry
	s := New(WithTranscriptLimit(10_000))
	for i := range 30 {
		e := &store.TranscriptEntry{EnrollmentID: fmt.Sprintf("e%d", i%3), Request: body}
		if err := s.AppendTranscript(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d got Seq %d", i, e.Seq)
		}
	}
	all, err := s.Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 10 || all[0].Seq != 21 || all[9].Seq != 30 {
		t.Fatalf("kept %d entries, Seq %d…%d; want the newest 10 (21…30)", len(all), all[0].Seq, all[len(all)-1].Seq)
	}
	for id, want := range map[string][]int64{"e2": {21, 24, 27, 30}, "e0": {22, 25, 28}, "e1": {23, 26, 29}} {
		got, err := s.Transcript(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Errorf("%s: Seqs %v, want %v", id, seqs, want)
		}
		if after, _ := s.Transcript(ctx, id, want[1], 1); len(after) != 1 || after[0].Seq != want[2] {
			t.Errorf("%s after %d, limit 1: %+v", id, want[1], after)
		}
	}
	// An enrollment whose entries all went is forgotten, not kept empty.
	s.mu.RLock()
	n := len(s.transcript.by)
	s.mu.RUnlock()
	if n != 3 {
		t.Errorf("%d enrollments indexed, want 3", n)
	}
	// One entry larger than the limit is still kept (the newest always is).
	big := &store.TranscriptEntry{EnrollmentID: "e9", Request: bytes.Repeat([]byte("y"), 50_000)}
	if err := s.AppendTranscript(ctx, big); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Transcript(ctx, "", 0, 0); len(got) != 1 || got[0].Seq != 31 {
		t.Fatalf("after an oversized entry: %d entries", len(got))
	}
}

// TestTranscriptMemoryIsFlat: a store past its limit stops growing — what
// a long load test against the memory store needs.
func TestTranscriptMemoryIsFlat(t *testing.T) {
	ctx := context.Background()
	s := New(WithTranscriptLimit(4 << 20))
	body := bytes.Repeat([]byte("z"), 3000)
	fill := func(n int) uint64 {
		for i := range n {
			if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: fmt.Sprintf("e%d", i%500), Request: body, Signature: string(body[:2600])}); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	warm := fill(5000) // past the limit
	after := fill(20000)
	if after > warm+2<<20 {
		t.Fatalf("heap grew from %d to %d bytes over 20,000 more entries past the limit", warm, after)
	}
	s.mu.RLock()
	kept := s.transcript.bytes
	chunks := len(s.transcript.chunks) + len(s.transcript.spare)
	s.mu.RUnlock()
	if kept > 4<<20 {
		t.Fatalf("%d bytes of transcript kept, limit %d", kept, 4<<20)
	}
	// The chunks emptied are reused: what is held is the limit's worth
	// and the spares.
	if chunks*chunkSize > 4<<20+(2+maxSpareChunks)*chunkSize {
		t.Fatalf("%d chunks held for a limit of %d bytes", chunks, 4<<20)
	}
}

// TestSignaturesShareTheirPrefix: an enrollment's Mdm-Signature headers
// are kept as a shared prefix and their own rest, read back byte for byte
// (a renewed identity starts a new prefix; entries without an enrollment
// keep theirs whole), counted once against the limit, and the prefix is
// dropped with the enrollment's last entry.
func TestSignaturesShareTheirPrefix(t *testing.T) {
	ctx := context.Background()
	s := New(WithTranscriptLimit(200_000))
	sig := func(identity string, i int) string {
		head := strings.Repeat(identity, 2400/len(identity))
		// The rest differs from the first byte on, as a signing time does.
		return head + string(rune('a'+i%26)) + strings.Repeat(fmt.Sprint(i), 1100/len(fmt.Sprint(i)))
	}
	want := map[int64]string{}
	for i := range 120 {
		id := fmt.Sprintf("e%d", i%3)
		identity := "A" + id
		if i >= 60 && id == "e1" {
			identity = "B" + id // e1's certificate was renewed
		}
		e := &store.TranscriptEntry{EnrollmentID: id, Request: []byte("idle"), Signature: sig(identity, i)}
		switch i {
		case 7:
			e.EnrollmentID = "" // a request refused before its enrollment was known
		case 8:
			e.Signature = ""
		}
		if err := s.AppendTranscript(ctx, e); err != nil {
			t.Fatal(err)
		}
		want[e.Seq] = e.Signature
	}
	all, err := s.Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 120 {
		t.Fatalf("kept %d entries, want 120", len(all))
	}
	for _, e := range all {
		if e.Signature != want[e.Seq] {
			t.Fatalf("entry %d: signature of %d bytes read back as %d bytes, not the same", e.Seq, len(want[e.Seq]), len(e.Signature))
		}
	}
	for _, id := range []string{"e0", "e1", "e2"} {
		got, _ := s.Transcript(ctx, id, 0, 0)
		for _, e := range got {
			if e.Signature != want[e.Seq] {
				t.Fatalf("%s entry %d: signature not read back", id, e.Seq)
			}
		}
	}
	// Counted: each kept signature's own rest, and each head once.
	naive := 0
	for _, w := range want {
		naive += len(w)
	}
	s.mu.RLock()
	kept := s.transcript.bytes
	s.mu.RUnlock()
	if kept > naive/2 {
		t.Errorf("%d bytes counted for %d bytes of signatures: the prefixes are not shared", kept, naive)
	}

	// Past the limit the oldest go; an enrollment whose entries all went
	// takes its prefix with it, and the count comes back to what is kept.
	s2 := New(WithTranscriptLimit(20_000))
	for i := range 40 {
		id := "old"
		if i >= 10 {
			id = "new"
		}
		if err := s2.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: id, Signature: sig("X"+id, i)}); err != nil {
			t.Fatal(err)
		}
	}
	s2.mu.RLock()
	defer s2.mu.RUnlock()
	l := s2.transcript
	if _, ok := l.heads["old"]; ok {
		t.Error("the prefix of an enrollment with no entries left is still kept")
	}
	sum, heads := 0, 0
	for _, r := range l.refs {
		sum += r.size
	}
	for _, h := range l.heads {
		sum += h.counted
		heads += len(h.ids)
	}
	if sum != l.bytes {
		t.Errorf("the count is %d, but what is kept counts %d", l.bytes, sum)
	}
	if heads != len(l.head) {
		t.Errorf("%d heads kept, %d referred to", len(l.head), heads)
	}
}

// TestTranscriptEncodingRoundTrip: entries of every shape — nil and empty
// bodies, the zero time and the epoch, times far off and in other zones,
// entries larger than a chunk — read back as appended, also once the
// store has forgotten and reused chunks many times over.
func TestTranscriptEncodingRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := New(WithTranscriptLimit(3 * chunkSize))
	rng := rand.New(rand.NewPCG(1, 2))
	zone := time.FixedZone("x", -7*3600)
	times := []time.Time{{}, time.Unix(0, 0), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, zone),
		time.Date(1960, 3, 4, 5, 6, 7, 8, zone), time.Now()}
	bodies := [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte{0, 0xff}, 3000), bytes.Repeat([]byte("big"), chunkSize/2)}
	var want []*store.TranscriptEntry
	for i := range 2000 {
		e := &store.TranscriptEntry{
			Time: times[rng.IntN(len(times))], EnrollmentID: []string{"", "e1", "e2", strings.Repeat("e", 300)}[rng.IntN(4)],
			RequestID: fmt.Sprint(i), Kind: "checkin", MessageType: []string{"", "Idle"}[rng.IntN(2)], CommandUUID: "u",
			Method: "PUT", Path: "/mdm", Status: []int{0, 200, -1, 1 << 40}[rng.IntN(4)], Note: strings.Repeat("n", rng.IntN(5)),
			Request: bodies[rng.IntN(len(bodies))], Response: bodies[rng.IntN(len(bodies))],
			Signature: []string{"", "short", strings.Repeat("S", 600) + fmt.Sprint(i), strings.Repeat("T", 700) + fmt.Sprint(i)}[rng.IntN(4)],
		}
		if err := s.AppendTranscript(ctx, e); err != nil {
			t.Fatal(err)
		}
		c := *e
		c.Time = e.Time.UTC()
		want = append(want, &c)
		if i%97 == 0 || i == 1999 {
			got, err := s.Transcript(ctx, "", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[len(got)-1].Seq != c.Seq {
				t.Fatalf("after entry %d: %d entries kept, the last not the newest", c.Seq, len(got))
			}
			var e1 []int64
			for _, g := range got {
				w := want[g.Seq-want[0].Seq]
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("entry %d read back as %+v…, appended as %+v…", g.Seq, short(g), short(w))
				}
				if g.EnrollmentID == "e1" {
					e1 = append(e1, g.Seq)
				}
			}
			mine, err := s.Transcript(ctx, "e1", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, g := range mine {
				seqs = append(seqs, g.Seq)
				if !reflect.DeepEqual(g, want[g.Seq-want[0].Seq]) {
					t.Fatalf("e1's entry %d not read back as appended", g.Seq)
				}
			}
			if fmt.Sprint(seqs) != fmt.Sprint(e1) {
				t.Fatalf("e1's entries %v, but the kept ones of e1 are %v", seqs, e1)
			}
		}
	}
}

// short is an entry without its bodies, for a failure message.
func short(e *store.TranscriptEntry) store.TranscriptEntry {
	c := *e
	c.Request, c.Response, c.Signature = nil, nil, fmt.Sprintf("%d bytes", len(e.Signature))
	return c
}

// BenchmarkAppendTranscript: a device request's record — 64 identities
// whose signatures share their first three quarters, an Idle-sized
// request and a command-sized response — past the limit, where a load
// test spends its time.
func BenchmarkAppendTranscript(b *testing.B) {
	ctx := context.Background()
	s := New(WithTranscriptLimit(16 << 20))
	req := []byte(strings.Repeat("<key>Status</key><string>Idle</string>", 8))
	resp := []byte(strings.Repeat("<key>RequestType</key><string>SecurityInfo</string>", 12))
	ids := make([]string, 64)
	sigs := make([][8]string, 64) // each identity's, with eight different rests
	for i := range ids {
		ids[i] = fmt.Sprintf("%040X", i*7919)
		for j := range sigs[i] {
			sigs[i][j] = strings.Repeat(string(rune('A'+i%26)), 1337) + fmt.Sprintf("%0431d", j)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := i % len(ids)
		e := &store.TranscriptEntry{Time: time.Now(), EnrollmentID: ids[d], RequestID: "0123456789abcdef", Kind: "checkin",
			MessageType: "Idle", Method: "PUT", Path: "/mdm/checkin", Status: 200, Request: req, Response: resp,
			Signature: sigs[d][i/len(ids)%8]}
		if err := s.AppendTranscript(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
