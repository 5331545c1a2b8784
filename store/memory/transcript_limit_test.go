package memory

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

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
	n := len(s.transcriptBy)
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
	kept := s.transcriptBytes
	s.mu.RUnlock()
	if kept > 4<<20 {
		t.Fatalf("%d bytes of transcript kept, limit %d", kept, 4<<20)
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
	kept := s.transcriptBytes
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
	if _, ok := s2.sigHeads["old"]; ok {
		t.Error("the prefix of an enrollment with no entries left is still kept")
	}
	sum := 0
	for _, k := range s2.transcript {
		sum += entrySize(k.e)
	}
	for _, h := range s2.sigHeads {
		sum += h.counted
	}
	if sum != s2.transcriptBytes {
		t.Errorf("transcriptBytes %d, but what is kept counts %d", s2.transcriptBytes, sum)
	}
}
