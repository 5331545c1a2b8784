package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// TestTranscriptBlocksRead holds the reads of blocks (0006) to a model:
// rows written before 0006 in the transcript table, then entries of
// several enrollments appended in calls of one to four, with some writes
// forced apart (so that blocks of one write interleave in Seq and those of
// different writes do not), read back by enrollment and in all from every
// afterSeq with several limits, each field as it was given.
func TestTranscriptBlocksRead(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "blocks.db")
	db := oldDatabase(t, path, "0001_init", "0002_documents", "0003_transcript_sources", "0004_results", "0005_transcript_references")
	var want []*store.TranscriptEntry
	for i, id := range []string{"e1", "e2", "e1", "", "e3", "e2"} {
		if _, err := db.ExecContext(ctx, `INSERT INTO transcript_sources (enrollment_id) VALUES (?) ON CONFLICT DO NOTHING`, id); err != nil {
			t.Fatal(err)
		}
		e := &store.TranscriptEntry{Seq: int64(i + 1), EnrollmentID: id, Kind: "checkin", Note: fmt.Sprint("old ", i)}
		if _, err := db.ExecContext(ctx, `INSERT INTO transcript (seq, enrollment_id, kind, note, source)
			VALUES (?, ?, ?, ?, (SELECT id FROM transcript_sources WHERE enrollment_id = ?))`, e.Seq, id, e.Kind, e.Note, id); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	db.Close()

	s := openT(t, path)
	rng := rand.New(rand.NewPCG(8, 6))
	ids := []string{"e1", "e2", "e3", "e4", ""}
	sig := func(i int) string {
		b := bytes.Repeat([]byte{0x30, 0x82, byte(i % 3)}, 300)
		b[len(b)-1] = byte(i)
		return base64.StdEncoding.EncodeToString(b)
	}
	bodies := [][]byte{nil, {}, []byte("<plist/>"), bytes.Repeat([]byte("x"), 300)}
	for call := range 120 {
		var batch []*store.TranscriptEntry
		for k := range 1 + rng.IntN(4) {
			n := call*4 + k
			e := &store.TranscriptEntry{EnrollmentID: ids[rng.IntN(len(ids))], RequestID: fmt.Sprintf("r%d", n),
				Kind: "checkin", MessageType: "Idle", CommandUUID: fmt.Sprintf("c%d", n%7), Method: "PUT", Path: "/mdm/connect",
				Status: 200 + n%5, Note: fmt.Sprint(n), Request: bodies[n%4], Response: bodies[(n/4)%4]}
			if n%3 != 0 {
				e.Time = time.Unix(1_800_000_000, int64(n)).UTC()
			}
			switch n % 4 {
			case 0:
				e.Signature = sig(n)
			case 1:
				e.Signature = "not base64 ☃"
			}
			batch = append(batch, e)
		}
		if err := s.AppendTranscript(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			c := *e
			// As the store keeps them: an empty body is no body.
			c.Request, c.Response = cloneBytes(e.Request), cloneBytes(e.Response)
			want = append(want, &c)
		}
		if rng.IntN(5) == 0 {
			if err := s.transcriptBarrier(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var blocks, writes int
	if err := s.w.QueryRow("SELECT COUNT(*), COUNT(DISTINCT flush) FROM transcript_blocks").Scan(&blocks, &writes); err != nil {
		t.Fatal(err)
	}
	if writes < 10 || blocks < 2*writes {
		t.Fatalf("%d blocks in %d writes: the test needs writes of several blocks", blocks, writes)
	}

	check := func(s *Store, when string) {
		t.Helper()
		last := want[len(want)-1].Seq
		// ("" reads every entry: "*" below. Entries of no enrollment are
		// among them.)
		for _, id := range []string{"e1", "e2", "e3", "e4", "nobody", "*"} {
			enrollment := id
			if id == "*" {
				enrollment = ""
			}
			var mine []*store.TranscriptEntry
			for _, e := range want {
				if id == "*" || e.EnrollmentID == id {
					mine = append(mine, e)
				}
			}
			for after := int64(0); after <= last; after += 1 + after/8 {
				for _, limit := range []int{0, 1, 2, 5, 40} {
					got, err := s.Transcript(ctx, enrollment, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					var exp []*store.TranscriptEntry
					for _, e := range mine {
						if e.Seq > after && (limit == 0 || len(exp) < limit) {
							exp = append(exp, e)
						}
					}
					if len(got) != len(exp) {
						t.Fatalf("%s: Transcript(%q, %d, %d) = %d entries, want %d", when, id, after, limit, len(got), len(exp))
					}
					for i := range got {
						if !sameEntry(got[i], exp[i]) {
							t.Fatalf("%s: Transcript(%q, %d, %d)[%d] =\n%+v\nwant\n%+v", when, id, after, limit, i, got[i], exp[i])
						}
					}
				}
			}
		}
	}
	check(s, "written")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openT(t, path), "reopened")
}

// sameEntry: equal, a nil body and an empty one told apart.
func sameEntry(a, b *store.TranscriptEntry) bool {
	return reflect.DeepEqual(*a, *b) && (a.Request == nil) == (b.Request == nil) && (a.Response == nil) == (b.Response == nil)
}

// TestTranscriptSeqAfterResetAndReopen: the Seqs given before a Reset are
// not given again, by the same store or by the next to open the file.
func TestTranscriptSeqAfterResetAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "seq.db")
	s := openT(t, path)
	e := &store.TranscriptEntry{EnrollmentID: "e1", Kind: "checkin"}
	for range 3 {
		if err := s.AppendTranscript(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path)
	if err := s.AppendTranscript(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 {
		t.Errorf("after Reset and a reopen the next entry is %d, want 4", e.Seq)
	}
	// A second Reset keeps the higher mark.
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path)
	if err := s.AppendTranscript(ctx, e); err != nil || e.Seq != 5 {
		t.Errorf("after a second Reset and reopen: entry %d, %v; want 5", e.Seq, err)
	}
}

// TestTranscriptBufferedAtClose: entries appended right before Close are
// written by it.
func TestTranscriptBufferedAtClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "close.db")
	s := openT(t, path)
	for i := range 1000 { // past maxBufferedRows: an urgent write too
		if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: fmt.Sprint("e", i%9), Kind: "checkin", Note: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTranscript(ctx, &store.TranscriptEntry{Kind: "checkin"}); err == nil {
		t.Error("AppendTranscript on a closed store succeeded")
	}
	got, err := openT(t, path).Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 {
		t.Fatalf("%d entries after reopen, want 1000", len(got))
	}
	for i, e := range got {
		if e.Seq != int64(i+1) || e.Note != fmt.Sprint(i) {
			t.Fatalf("entry %d: seq %d, note %q", i, e.Seq, e.Note)
		}
	}
}

// blockOf encodes rows (of one enrollment) as writeBlocks does, each
// signature kept whole (no head).
func blockOf(rows []transcriptRow) []byte {
	buf := []byte{blockFormat}
	buf = binary.AppendUvarint(buf, uint64(len(rows)))
	prev := rows[0].e.Seq
	for i := range rows {
		buf = appendBlockEntry(buf, prev, &rows[i], 0, 0)
		prev = rows[i].e.Seq
	}
	return buf
}

// TestDecodeBlockRefusesDamage: every truncation of a block, and a block
// with bytes after its entries or a wrong format, is an error, never a
// panic.
func TestDecodeBlockRefusesDamage(t *testing.T) {
	rows := []transcriptRow{
		{time: sql.NullInt64{Int64: -5, Valid: true}, e: store.TranscriptEntry{Seq: 10, Kind: "checkin", Request: []byte("req"), Signature: "abcd"}},
		{e: store.TranscriptEntry{Seq: 12, Kind: "command", Response: []byte{}}, requestResult: 7},
		{e: store.TranscriptEntry{Seq: 13, Note: "n"}, responseCommand: "C1"},
	}
	block := blockOf(rows)
	got, err := decodeBlock(10, "e1", block)
	if err != nil || len(got) != 3 || got[1].requestResult != 7 || got[2].responseCommand != "C1" || got[1].e.Seq != 12 ||
		got[1].e.Response == nil || got[0].e.Time.UnixNano() != -5 || got[0].e.Signature != "" || loadedSignature(got[0].rest) != "abcd" {
		t.Fatalf("decodeBlock of a good block: %+v, %v", got, err)
	}
	for n := range len(block) {
		if _, err := decodeBlock(10, "e1", block[:n]); err == nil {
			t.Errorf("a block cut to %d of its %d bytes decoded", n, len(block))
		}
	}
	for _, bad := range [][]byte{append(slices.Clone(block), 0), append([]byte{2}, block[1:]...), {blockFormat, 0}, {blockFormat, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, err := decodeBlock(10, "e1", bad); err == nil {
			t.Errorf("decodeBlock(%x) succeeded", bad)
		}
	}
}

// FuzzDecodeBlock: no input panics the decoder or makes it allocate for
// entries it does not have.
func FuzzDecodeBlock(f *testing.F) {
	f.Add(blockOf([]transcriptRow{{e: store.TranscriptEntry{Seq: 1, Kind: "checkin", Request: []byte("<plist/>"),
		Signature: base64.StdEncoding.EncodeToString([]byte("0123456789ab"))}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := decodeBlock(1, "e", data)
		if err == nil && (len(entries) == 0 || len(entries) > len(data)) {
			t.Fatalf("%d entries from %d bytes", len(entries), len(data))
		}
	})
}
