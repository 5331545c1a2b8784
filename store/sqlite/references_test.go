package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// storedBodies reads how the block of entry seq keeps its bodies.
func storedBodies(t *testing.T, s *Store, seq int64) (request, response []byte, responseCommand sql.NullString, requestResult sql.NullInt64) {
	t.Helper()
	b := storedEntry(t, s, seq)
	if b.responseCommand != "" {
		responseCommand = sql.NullString{String: b.responseCommand, Valid: true}
	}
	if b.requestResult != 0 {
		requestResult = sql.NullInt64{Int64: b.requestResult, Valid: true}
	}
	return b.e.Request, b.e.Response, responseCommand, requestResult
}

// storedEntry decodes entry seq from the block that keeps it.
func storedEntry(t *testing.T, s *Store, seq int64) blockEntry {
	t.Helper()
	if err := s.transcriptBarrier(); err != nil {
		t.Fatal(err)
	}
	var id int64
	var data []byte
	if err := s.w.QueryRow("SELECT id, entries FROM transcript_blocks WHERE id <= ?1 AND last_seq >= ?1 ORDER BY id DESC", seq).
		Scan(&id, &data); err != nil {
		t.Fatalf("the block of entry %d: %v", seq, err)
	}
	entries, err := decodeBlock(id, "", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range entries {
		if b.e.Seq == seq {
			return b
		}
	}
	t.Fatalf("entry %d is not in block %d", seq, id)
	return blockEntry{}
}

// TestTranscriptReferences: the Idle that was sent a command, and the
// acknowledgement whose result was saved, are recorded as references to
// the command and the result (migration 0005) — only when the bodies are
// those bytes, never across a Reset — and read back as the bodies they
// were given, after a reopen too.
func TestTranscriptReferences(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "refs.db")
	s := openT(t, path)
	for _, id := range []string{"e1", "e2"} {
		if err := s.PutEnrollment(ctx, &store.Enrollment{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	command := []byte("<plist><dict><key>CommandUUID</key><string>c1</string></dict></plist>")
	result := []byte("<plist><dict><key>Status</key><string>Acknowledged</string></dict></plist>")
	now := time.Now()
	enqueue := func(uuid string, raw []byte, ids ...string) {
		t.Helper()
		if err := s.Enqueue(ctx, &store.Command{UUID: uuid, RequestType: "ProfileList", Raw: raw}, ids...); err != nil {
			t.Fatal(err)
		}
	}
	next := func(id string) *store.QueueItem {
		t.Helper()
		it, err := s.NextCommand(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	appendEntry := func(e *store.TranscriptEntry) *store.TranscriptEntry {
		t.Helper()
		e.Kind = "command"
		if err := s.AppendTranscript(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	type want struct {
		entry           *store.TranscriptEntry
		request         []byte
		response        []byte
		responseCommand string
		requestResult   bool
	}
	var wants []want

	// A cycle: both bodies become references.
	enqueue("c1", command, "e1", "e2")
	next("e1")
	idle := appendEntry(&store.TranscriptEntry{EnrollmentID: "e1", MessageType: "Idle", Request: []byte("idle"), Response: command})
	wants = append(wants, want{idle, []byte("idle"), command, "c1", false})
	if err := s.SaveResult(ctx, "e1", "c1", store.CommandAcknowledged, result, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextCommand(ctx, "e1", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("NextCommand after the answer: %v", err)
	}
	ack := appendEntry(&store.TranscriptEntry{EnrollmentID: "e1", MessageType: "Acknowledged", CommandUUID: "c1", Request: result})
	wants = append(wants, want{ack, result, nil, "", true})

	// Bodies that are not those bytes are kept whole: a response that is
	// not the command sent, a request that is not the result saved, a
	// note of another enrollment, a result that is not final.
	next("e2")
	other := appendEntry(&store.TranscriptEntry{EnrollmentID: "e1", MessageType: "Idle", Request: []byte("idle"), Response: command})
	wants = append(wants, want{other, []byte("idle"), command, "", false})
	altered := append(bytes.Clone(command), ' ')
	withheld := appendEntry(&store.TranscriptEntry{EnrollmentID: "e2", MessageType: "Idle", Request: []byte("idle"), Response: altered})
	wants = append(wants, want{withheld, []byte("idle"), altered, "", false})
	if err := s.SaveResult(ctx, "e2", "c1", store.CommandNotNow, result, now); err != nil {
		t.Fatal(err)
	}
	notNow := appendEntry(&store.TranscriptEntry{EnrollmentID: "e2", MessageType: "NotNow", CommandUUID: "c1", Request: result})
	wants = append(wants, want{notNow, result, nil, "", false})
	if err := s.SaveResult(ctx, "e2", "c1", store.CommandError, result, now); err != nil {
		t.Fatal(err)
	}
	changed := appendEntry(&store.TranscriptEntry{EnrollmentID: "e2", MessageType: "Error", CommandUUID: "c1", Request: []byte("other bytes")})
	wants = append(wants, want{changed, []byte("other bytes"), nil, "", false})

	check := func(when string) {
		t.Helper()
		got, err := s.Transcript(ctx, "", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		bySeq := map[int64]*store.TranscriptEntry{}
		for _, e := range got {
			bySeq[e.Seq] = e
		}
		for _, w := range wants {
			e := bySeq[w.entry.Seq]
			if e == nil {
				t.Fatalf("%s: entry %d missing", when, w.entry.Seq)
			}
			if !bytes.Equal(e.Request, w.request) || !bytes.Equal(e.Response, w.response) {
				t.Errorf("%s: entry %d (%s) read back request %q response %q; want %q, %q", when, e.Seq, e.MessageType, e.Request, e.Response, w.request, w.response)
			}
			request, response, cmd, res := storedBodies(t, s, e.Seq)
			if cmd.String != w.responseCommand || res.Valid != w.requestResult {
				t.Errorf("%s: entry %d (%s) refers to command %q, result %v; want %q, %v", when, e.Seq, e.MessageType, cmd.String, res.Valid, w.responseCommand, w.requestResult)
			}
			if (cmd.Valid && response != nil) || (res.Valid && request != nil) {
				t.Errorf("%s: entry %d keeps a body it refers to", when, e.Seq)
			}
		}
	}
	check("written")

	// The answered row goes with its enrollment: its result stays for the
	// transcript.
	if _, err := s.w.Exec("DELETE FROM enrollments WHERE id = 'e1'"); err != nil {
		t.Fatal(err)
	}
	check("after e1 was deleted")
	s.Close()
	s = openT(t, path)
	check("reopened")

	// Across a Reset, a note taken before it names nothing after it.
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e3"}); err != nil {
		t.Fatal(err)
	}
	enqueue("c9", command, "e3")
	next("e3")
	if err := s.SaveResult(ctx, "e3", "c9", store.CommandAcknowledged, result, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e3"}); err != nil {
		t.Fatal(err)
	}
	enqueue("c9", []byte("another command"), "e3")
	wants = nil
	late := appendEntry(&store.TranscriptEntry{EnrollmentID: "e3", MessageType: "Acknowledged", CommandUUID: "c9", Request: result, Response: command})
	wants = append(wants, want{late, result, command, "", false})
	check("after Reset")
}

// TestBodyNotesAcrossReset: a note taken before a Reset is gone after it,
// and one whose read or write began before it (its generation) is refused,
// even when it arrives after — what it names may have been deleted.
func TestBodyNotesAcrossReset(t *testing.T) {
	var n bodyNotes
	body := []byte("body")
	before := n.gen.Load()
	n.resultSaved("e", "c", 7, body, before)
	n.commandSent("e", "c", body, before)
	n.reset()
	if cmd, res := n.references("e", "c", body, body); cmd != "" || res != 0 {
		t.Fatalf("a note from before Reset survived it: command %q, result %d", cmd, res)
	}
	n.resultSaved("e", "c", 7, body, before) // began before the Reset, noted after
	n.commandSent("e", "c", body, before)
	if cmd, res := n.references("e", "c", body, body); cmd != "" || res != 0 {
		t.Fatalf("a note begun before Reset was taken after it: command %q, result %d", cmd, res)
	}
	after := n.gen.Load()
	n.resultSaved("e", "c", 8, body, after)
	n.commandSent("e", "c", body, after)
	if cmd, res := n.references("e", "c", body, body); cmd != "c" || res != 8 {
		t.Fatalf("a note after Reset: command %q, result %d; want c, 8", cmd, res)
	}
	if cmd, res := n.references("e", "c", body, body); cmd != "" || res != 0 {
		t.Fatalf("a note used twice: command %q, result %d", cmd, res)
	}
}
