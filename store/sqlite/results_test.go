package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/storetest"
)

// countResults is how many rows the results table holds.
func countResults(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.w.QueryRow("SELECT count(*) FROM results").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// resultOf reads id's item for uuid through CommandItems (QueueItems lists
// only the open ones).
func resultOf(t *testing.T, s *Store, id, uuid string) *store.QueueItem {
	t.Helper()
	items, err := s.CommandItems(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.EnrollmentID == id {
			return it
		}
	}
	t.Fatalf("no item %s for %s", uuid, id)
	return nil
}

// TestResultsTable: results live in a table of their own (migration 0004)
// and leave no row behind — not when replaced, not when their queue row
// goes, not when the answer is refused — while every reader sees them.
func TestResultsTable(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "r.db"))
	for _, id := range []string{"e1", "e2"} {
		if err := s.PutEnrollment(ctx, &store.Enrollment{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, uuid := range []string{"c1", "c2", "c3", "c4"} {
		if err := s.Enqueue(ctx, &store.Command{UUID: uuid, RequestType: "ProfileList", Raw: []byte("<plist/>")}, "e1"); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()

	// NotNow, then the final answer: the NotNow result is replaced, not kept.
	if err := s.SaveResult(ctx, "e1", "c1", store.CommandNotNow, []byte("not now"), now); err != nil {
		t.Fatal(err)
	}
	if got := resultOf(t, s, "e1", "c1"); string(got.Result) != "not now" || countResults(t, s) != 1 {
		t.Fatalf("after NotNow: result %q, %d result rows; want \"not now\", 1", got.Result, countResults(t, s))
	}
	if err := s.SaveResult(ctx, "e1", "c1", store.CommandAcknowledged, []byte("done"), now); err != nil {
		t.Fatal(err)
	}
	if got := resultOf(t, s, "e1", "c1"); string(got.Result) != "done" || countResults(t, s) != 1 {
		t.Fatalf("after Acknowledged: result %q, %d result rows; want \"done\", 1", got.Result, countResults(t, s))
	}
	if err := s.SaveResult(ctx, "e1", "c2", store.CommandNotNow, []byte("c2 not now"), now); err != nil {
		t.Fatal(err)
	}
	open, err := s.QueueItems(ctx, "e1")
	if err != nil || len(open) != 3 || open[0].CommandUUID != "c2" || string(open[0].Result) != "c2 not now" {
		t.Fatalf("QueueItems(e1) = %+v, %v; want c2 first with its NotNow result", open, err)
	}

	// A refused answer (already answered, never queued) appends nothing,
	// alone or in a group with answers that are taken.
	if err := s.SaveResult(ctx, "e1", "c1", store.CommandError, []byte("late"), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a second final answer: %v, want ErrNotFound", err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			uuid, want := fmt.Sprintf("never-%d", i), error(store.ErrNotFound)
			if i == 0 {
				uuid, want = "c2", nil
			}
			if err := s.SaveResult(ctx, "e1", uuid, store.CommandAcknowledged, []byte("r"), now); !errors.Is(err, want) {
				t.Errorf("SaveResult(%s) = %v, want %v", uuid, err, want)
			}
		})
	}
	wg.Wait()
	if n := countResults(t, s); n != 2 {
		t.Fatalf("%d result rows after refused answers, want 2 (c1, c2)", n)
	}
	if got := resultOf(t, s, "e1", "c2"); string(got.Result) != "r" {
		t.Fatalf("c2's result %q, want \"r\"", got.Result)
	}

	// No result, and an empty one (a row in results, read back empty).
	if err := s.SaveResult(ctx, "e1", "c3", store.CommandAcknowledged, nil, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveResult(ctx, "e1", "c4", store.CommandNotNow, []byte{}, now); err != nil {
		t.Fatal(err)
	}
	if got := resultOf(t, s, "e1", "c3"); got.Result != nil {
		t.Errorf("nil result read back as %q", got.Result)
	}
	if got := resultOf(t, s, "e1", "c4"); len(got.Result) != 0 {
		t.Errorf("empty result read back as %q", got.Result)
	}

	if n := countResults(t, s); n != 3 {
		t.Fatalf("%d result rows, want 3 (c1, c2, c4)", n)
	}

	// ClearQueue drops the open c4 with its (NotNow) result, keeps c1 and c2.
	if err := s.ClearQueue(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if n := countResults(t, s); n != 2 {
		t.Fatalf("%d result rows after ClearQueue, want 2", n)
	}

	// A queue row removed with its enrollment (the foreign key's cascade)
	// leaves its final result (the transcript may refer to it), but takes
	// a NotNow one along.
	if err := s.Enqueue(ctx, &store.Command{UUID: "c5", RequestType: "ProfileList"}, "e2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, &store.Command{UUID: "c6", RequestType: "ProfileList"}, "e2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveResult(ctx, "e2", "c5", store.CommandAcknowledged, []byte("e2's"), now); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveResult(ctx, "e2", "c6", store.CommandNotNow, []byte("e2's not now"), now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec("DELETE FROM enrollments WHERE id = 'e2'"); err != nil {
		t.Fatal(err)
	}
	var kept []byte
	if err := s.w.QueryRow("SELECT group_concat(result, '|') FROM results").Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if n := countResults(t, s); n != 3 || !bytes.Contains(kept, []byte("e2's")) || bytes.Contains(kept, []byte("not now")) {
		t.Fatalf("after e2 was deleted: %d result rows (%s), want 3 with e2's final one and not its NotNow one", n, kept)
	}

	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countResults(t, s); n != 0 {
		t.Fatalf("%d result rows after Reset", n)
	}
}

// TestResultsMigration: results written into queue rows before migration
// 0004 still read back, and a row answered NotNow then is answered again
// into the results table, its old result cleared.
func TestResultsMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := oldDatabase(t, path, "0001_init", "0002_documents", "0003_transcript_sources")
	for _, q := range []string{
		`INSERT INTO enrollments (id) VALUES ('e')`,
		`INSERT INTO commands (uuid, request_type, created_at) VALUES ('answered', 'ProfileList', 1), ('later', 'ProfileList', 2)`,
		`INSERT INTO queue (enrollment_id, command_uuid, seq, status, result, created_at, updated_at) VALUES
			('e', 'answered', 1, 'Acknowledged', x'6f6c64', 1, 1), ('e', 'later', 2, 'NotNow', x'6e6f74206e6f77', 2, 2)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openT(t, path)
	if got := resultOf(t, s, "e", "answered"); string(got.Result) != "old" {
		t.Errorf("result kept in the queue row: %q, want \"old\"", got.Result)
	}
	if got := resultOf(t, s, "e", "later"); string(got.Result) != "not now" {
		t.Errorf("NotNow result kept in the queue row: %q, want \"not now\"", got.Result)
	}
	it, err := s.NextCommand(ctx, "e", false)
	if err != nil || it.CommandUUID != "later" || string(it.Result) != "not now" {
		t.Fatalf("NextCommand = %+v, %v", it, err)
	}
	if err := s.SaveResult(ctx, "e", "later", store.CommandAcknowledged, []byte("new"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := resultOf(t, s, "e", "later"); !bytes.Equal(got.Result, []byte("new")) {
		t.Errorf("answered after the migration: %q, want \"new\"", got.Result)
	}
	var inline []byte
	if err := s.w.QueryRow("SELECT result FROM queue WHERE command_uuid = 'later'").Scan(&inline); err != nil || inline != nil {
		t.Errorf("the old result stayed in the queue row: %q, %v", inline, err)
	}
}

// BenchmarkCycleWALFrames counts what the command cycles of 64 devices
// (storetest.Cycler) write to the WAL, by the table or index each frame's
// page belongs to (SQLite's dbstat), with three devices answering at a
// time, so that about three answers share each commit, as under `mockmdm
// bench`. Frames, not time: the count does not move with the machine's
// speed, and two pwrite calls per frame are what a commit pays.
// Checkpoints are off while it counts; the enqueues (which the bench does
// not count) are counted separately.
func BenchmarkCycleWALFrames(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "w.db")
	s := openT(b, path)
	c, err := storetest.NewCycler(ctx, s)
	if err != nil {
		b.Fatal(err)
	}
	c.Concurrency = 3
	round := func() {
		if _, err := c.Round(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range 20 { // warm-up: pages allocated, queues with history
		round()
	}
	if err := s.transcriptBarrier(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	if _, err := s.w.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
		b.Fatal(err)
	}
	rounds := max(1, b.N/storetest.CycleDevices)
	b.ResetTimer()
	for range rounds {
		round()
	}
	if err := s.transcriptBarrier(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	owner := map[uint32]string{}
	rows, err := s.w.Query("SELECT name, pageno FROM dbstat")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var name string
		var page uint32
		if err := rows.Scan(&name, &page); err != nil {
			b.Fatal(err)
		}
		owner[page] = name
	}
	rows.Close()
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	var pageSize int
	if err := s.w.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		b.Fatal(err)
	}
	// The WAL: a 32-byte header, then frames of a 24-byte header (page
	// number first) and the page.
	counts := map[string]int{}
	total := 0
	for off := 32; off+24+pageSize <= len(wal); off += 24 + pageSize {
		counts[owner[binary.BigEndian.Uint32(wal[off:])]]++
		total++
	}
	cycles := float64(rounds * storetest.CycleDevices)
	enqueue := counts["sqlite_autoindex_queue_1"] + counts["queue_command"] + counts["commands"] + counts["sqlite_autoindex_commands_1"]
	b.ReportMetric(float64(total-enqueue)/cycles, "frames/cycle")
	b.ReportMetric(float64(counts["queue"]+counts["results"]+counts["queue_open"])/cycles, "result-frames/cycle")
	// Rows before 0006, blocks after it.
	transcript := counts["transcript"] + counts["transcript_source"] + counts["transcript_blocks"] + counts["transcript_blocks_source"]
	b.ReportMetric(float64(transcript)/cycles, "transcript-frames/cycle")
	b.ReportMetric(float64(enqueue)/cycles, "enqueue-frames/cycle")
}
