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
