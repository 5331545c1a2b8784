package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// TestGroupCommitKeepsEachCallersAnswer: concurrent touches and transcript
// appends share transactions, a failing write (an unknown enrollment) gets
// its own error without failing the writes grouped with it, and every
// write that returned nil is there after a reopen.
func TestGroupCommitKeepsEachCallersAnswer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s := openT(t, path)
	ctx := context.Background()
	const n = 40
	for i := range n {
		if err := s.PutEnrollment(ctx, &store.Enrollment{ID: fmt.Sprintf("E%02d", i), Type: "Device", DeviceID: fmt.Sprintf("E%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Unix(1_900_000_000, 0).UTC()
	var wg sync.WaitGroup
	errs := make([]error, 3*n)
	entries := make([]*store.TranscriptEntry, n)
	for i := range n {
		wg.Add(3)
		go func() { defer wg.Done(); errs[3*i] = s.TouchEnrollment(ctx, fmt.Sprintf("E%02d", i), at) }()
		go func() { defer wg.Done(); errs[3*i+1] = s.TouchEnrollment(ctx, fmt.Sprintf("MISSING%02d", i), at) }()
		go func() {
			defer wg.Done()
			entries[i] = &store.TranscriptEntry{Time: at, EnrollmentID: fmt.Sprintf("E%02d", i), Kind: "checkin", Method: "PUT", Path: "/checkin", Status: 200}
			errs[3*i+2] = s.AppendTranscript(ctx, entries[i])
		}()
	}
	wg.Wait()
	seqs := map[int64]bool{}
	for i := range n {
		if errs[3*i] != nil || errs[3*i+2] != nil {
			t.Fatalf("write %d: %v, %v", i, errs[3*i], errs[3*i+2])
		}
		if !errors.Is(errs[3*i+1], store.ErrNotFound) {
			t.Fatalf("touch of a missing enrollment: %v, want ErrNotFound", errs[3*i+1])
		}
		if entries[i].Seq == 0 || seqs[entries[i].Seq] {
			t.Fatalf("entry %d seq %d (unset or repeated)", i, entries[i].Seq)
		}
		seqs[entries[i].Seq] = true
	}
	s.Close()
	s = openT(t, path)
	for i := range n {
		e, err := s.GetEnrollment(ctx, fmt.Sprintf("E%02d", i))
		if err != nil || !e.LastSeen.Equal(at) {
			t.Fatalf("after reopen E%02d: %+v %v", i, e, err)
		}
	}
	tr, err := s.Transcript(ctx, "", 0, 0)
	if err != nil || len(tr) != n {
		t.Fatalf("after reopen: %d transcript entries, %v", len(tr), err)
	}
	s.Close()
	if err := s.TouchEnrollment(ctx, "E00", at); err == nil {
		t.Fatal("a write after Close succeeded")
	}
}

// TestResultCommitLeavesTheTranscriptBehind: a device's answer is committed
// at once, without the transcript entries held back for a commit of their
// own (which kept a result's commit to the pages the result changes); a
// reader of the transcript, a barrier, finds them all written.
func TestResultCommitLeavesTheTranscriptBehind(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "behind.db"))
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e1", Type: "Device"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, &store.Command{UUID: "c1", RequestType: "ProfileList"}, "e1"); err != nil {
		t.Fatal(err)
	}
	appended := time.Now()
	if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: "e1", Kind: "command", Note: "held back"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveResult(ctx, "e1", "c1", "Acknowledged", []byte("<plist/>"), time.Now()); err != nil {
		t.Fatal(err)
	}
	// Straight from the file, past the store's barrier: the answer is
	// there, the transcript entry (queued before it) not yet.
	var status string
	if err := s.r.QueryRowContext(ctx, "SELECT status FROM queue WHERE command_uuid = 'c1'").Scan(&status); err != nil || status != "Acknowledged" {
		t.Fatalf("the answer is not committed when SaveResult returns: %q, %v", status, err)
	}
	var rows int
	if err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM transcript_blocks").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	// (Unless the machine was so slow that the entry's linger ran out.)
	if rows != 0 && time.Since(appended) < writeBehindLinger*3/4 {
		t.Errorf("the held-back transcript entry rode in the answer's commit (%d rows)", rows)
	}
	got, err := s.Transcript(ctx, "e1", 0, 0)
	if err != nil || len(got) != 1 || got[0].Note != "held back" {
		t.Fatalf("Transcript after the barrier: %+v, %v", got, err)
	}
}
