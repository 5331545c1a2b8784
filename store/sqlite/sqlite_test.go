package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/storetest"
)

func openT(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBattery(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, filepath.Join(t.TempDir(), "mockmdm.db"))
	})
}

func TestDurability(t *testing.T) {
	storetest.RunDurability(t, func(t *testing.T, dir string) store.Store {
		return openT(t, filepath.Join(dir, "mockmdm.db"))
	})
}

// TestSecondOpenRefused: a Store remembers what it wrote (hot.go), which
// holds only while no other process writes its file, so a second Open of
// the same file is refused with a message naming the cause — and succeeds,
// seeing everything, once the first is closed.
func TestSecondOpenRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PutEnrollment(ctx, &store.Enrollment{ID: "e1", Type: "Device", PushToken: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := a.TouchEnrollment(ctx, "e1", time.Unix(1_900_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := a.Enqueue(ctx, &store.Command{UUID: "A1", RequestType: "ProfileList", Raw: []byte("raw")}, "e1"); err != nil {
		t.Fatal(err)
	}
	if b, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "in use by another mockmdm") {
		if b != nil {
			b.Close()
		}
		t.Fatalf("second Open while the first is open: %v, want a refusal", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openT(t, path)
	e, err := b.GetEnrollment(ctx, "e1")
	if err != nil || string(e.PushToken) != "\x01\x02\x03" || e.LastSeen.Unix() != 1_900_000_000 {
		t.Fatalf("after the first closed: GetEnrollment = %+v, %v (the written-behind last-seen time must be on disk)", e, err)
	}
	if it, err := b.NextCommand(ctx, "e1", false); err != nil || it.CommandUUID != "A1" || string(it.Command) != "raw" {
		t.Fatalf("after the first closed: NextCommand = %+v, %v", it, err)
	}
}

// TestEmptyQueueMarkNeverHidesACommand races NextCommand against Enqueue:
// once Enqueue has returned, the next NextCommand must find the command,
// however the "queue is empty" mark of hot.go was set meanwhile.
func TestEmptyQueueMarkNeverHidesACommand(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "race.db"))
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e1", Type: "Device"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_, _ = s.NextCommand(ctx, "e1", false)
				}
			}
		})
	}
	for i := range 200 {
		uuid := fmt.Sprintf("C%03d", i)
		if err := s.Enqueue(ctx, &store.Command{UUID: uuid, RequestType: "ProfileList"}, "e1"); err != nil {
			t.Fatal(err)
		}
		it, err := s.NextCommand(ctx, "e1", false)
		if err != nil || it.CommandUUID != uuid {
			close(stop)
			wg.Wait()
			t.Fatalf("after Enqueue(%s) returned, NextCommand = %+v, %v", uuid, it, err)
		}
		if err := s.SaveResult(ctx, "e1", uuid, store.CommandAcknowledged, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestSoleItemMarkNeverHidesACommand races the other way to an empty
// mark: a read found one open item, and its final answer marks the queue
// empty — unless an enqueue committed in between. A command whose Enqueue
// returned is always found afterwards, and the mark is taken only when it
// is right.
func TestSoleItemMarkNeverHidesACommand(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "sole.db"))
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e1", Type: "Device"}); err != nil {
		t.Fatal(err)
	}
	enqueue := func(uuid string) {
		t.Helper()
		if err := s.Enqueue(ctx, &store.Command{UUID: uuid, RequestType: "ProfileList"}, "e1"); err != nil {
			t.Fatal(err)
		}
	}
	next := func(skipNotNow bool) string {
		t.Helper()
		it, err := s.NextCommand(ctx, "e1", skipNotNow)
		if errors.Is(err, store.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return it.CommandUUID
	}
	answer := func(uuid, status string) {
		t.Helper()
		if err := s.SaveResult(ctx, "e1", uuid, status, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	// The sole item answered: empty, and marked so.
	enqueue("A")
	if got := next(false); got != "A" {
		t.Fatalf("next = %q, want A", got)
	}
	answer("A", store.CommandAcknowledged)
	if empty, _ := s.hot.queueEmpty("e1"); !empty {
		t.Error("the sole item's final answer did not mark the queue empty")
	}
	if got := next(true); got != "" {
		t.Fatalf("after the sole item's answer, next = %q", got)
	}
	// An enqueue between the read and the answer: not marked, and found.
	enqueue("B")
	if got := next(false); got != "B" {
		t.Fatalf("next = %q, want B", got)
	}
	enqueue("C")
	answer("B", store.CommandAcknowledged)
	if got := next(true); got != "C" {
		t.Fatalf("an enqueue between the read and the answer was hidden: next = %q", got)
	}
	// NotNow is not final: the item stays, offered again in the next session.
	answer("C", store.CommandNotNow)
	if got := next(true); got != "" {
		t.Fatalf("a NotNow item was offered again in its session: %q", got)
	}
	if got := next(false); got != "C" {
		t.Fatalf("the NotNow item was lost: next = %q", got)
	}
	answer("C", store.CommandAcknowledged)
	// Two NotNow items ahead of a Pending one, in a session that skips
	// NotNow: the Pending one is still found.
	for _, u := range []string{"D", "E", "F"} {
		enqueue(u)
	}
	next(false)
	answer("D", store.CommandNotNow)
	answer("E", store.CommandNotNow)
	if got := next(true); got != "F" {
		t.Fatalf("behind two NotNow items, next = %q, want F", got)
	}

	// The race: readers keep reading while commands are queued and answered.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_, _ = s.NextCommand(ctx, "e1", false)
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for _, u := range []string{"D", "E", "F"} {
		answer(u, store.CommandAcknowledged)
	}
	for i := range 150 {
		x, y := fmt.Sprintf("X%03d", i), fmt.Sprintf("Y%03d", i)
		enqueue(x)
		if _, err := s.NextCommand(ctx, "e1", false); err != nil {
			t.Fatalf("after Enqueue(%s): %v", x, err)
		}
		var enq sync.WaitGroup
		enq.Go(func() { enqueue(y) })
		answer(x, store.CommandAcknowledged)
		enq.Wait()
		it, err := s.NextCommand(ctx, "e1", true)
		if err != nil || it.CommandUUID != y {
			t.Fatalf("after Enqueue(%s) returned, NextCommand = %+v, %v", y, it, err)
		}
		answer(y, store.CommandAcknowledged)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	for range 3 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.r.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		rows.Close()
		files, _ := migrations.ReadDir("migrations")
		if len(got) != len(files) || got[0] != "0001_init" {
			t.Fatalf("schema_migrations = %v, want one row per file in migrations/ (%d)", got, len(files))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A database migrated by a newer build is refused, not mangled.
	s := openT(t, path)
	if _, err := s.w.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ('9999_future', 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "9999_future") {
		t.Fatalf("Open of a database from a newer build: %v", err)
	}
}

// oldDatabase makes a database file at path as a build that knew only the
// given migrations left it, for a test to fill and then open with Open.
func oldDatabase(t *testing.T, path string, versions ...string) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+uriPath(path)+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		body, err := migrations.ReadFile("migrations/" + v + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(body)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (?, 0)", v); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// TestTranscriptMigration: a database whose transcript was written before
// 0003_transcript_sources (rows keyed by enrollment ID, whole signatures)
// reads back the same after the migration, by enrollment and in all, and
// the rows written after it join them.
func TestTranscriptMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := oldDatabase(t, path, "0001_init", "0002_documents")
	sig := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x30, 0x82, 0x05}, 400))
	der, _ := base64.StdEncoding.DecodeString(sig)
	old := []struct {
		enrollment string
		signature  any // as 0001/0002 kept it: DER when canonical, else text
		want       string
	}{{"e1", der, sig}, {"e2", "not base64", "not base64"}, {"e1", "", ""}, {"", "", ""}}
	for i, o := range old {
		if _, err := db.ExecContext(ctx, "INSERT INTO transcript (seq, enrollment_id, kind, signature) VALUES (?, ?, 'checkin', ?)",
			i+1, o.enrollment, o.signature); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openT(t, path)
	if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: "e1", Kind: "checkin", Signature: sig}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		enrollment string
		seqs       []int64
	}{{"e1", []int64{1, 3, 5}}, {"e2", []int64{2}}, {"", []int64{1, 2, 3, 4, 5}}, {"nobody", nil}} {
		got, err := s.Transcript(ctx, c.enrollment, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
			want := sig
			if e.Seq <= int64(len(old)) {
				want = old[e.Seq-1].want
			}
			if e.Signature != want {
				t.Errorf("entry %d: signature %q…, want %q…", e.Seq, short(e.Signature), short(want))
			}
		}
		if !slices.Equal(seqs, c.seqs) {
			t.Errorf("Transcript(%q) = entries %v, want %v", c.enrollment, seqs, c.seqs)
		}
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "p.db"))
	for _, c := range []struct {
		db     string
		pragma string
		want   string
	}{
		{"w", "journal_mode", "wal"},
		{"w", "foreign_keys", "1"},
		{"w", "synchronous", "1"}, // NORMAL
		{"w", "busy_timeout", "5000"},
		{"r", "foreign_keys", "1"},
		{"r", "query_only", "1"},
		{"r", "busy_timeout", "5000"},
		{"r", "journal_mode", "wal"},
	} {
		db := s.w
		if c.db == "r" {
			db = s.r
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", c.pragma, err)
		}
		if !strings.EqualFold(got, c.want) {
			t.Errorf("%s pool: PRAGMA %s = %s, want %s", c.db, c.pragma, got, c.want)
		}
	}
	if s.w.Stats().MaxOpenConnections != 1 {
		t.Errorf("write pool allows %d connections, want 1", s.w.Stats().MaxOpenConnections)
	}
	// The read pool really cannot write.
	if _, err := s.r.ExecContext(ctx, "DELETE FROM challenges"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestQueryPlans holds the hot paths to their indexes, so a schema or query
// change that turns them into table scans fails here rather than in the field.
func TestQueryPlans(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "plan.db"))
	for _, c := range []struct {
		query string
		want  string
	}{
		{selectItem + ` WHERE q.enrollment_id = ?1 AND ` + openStatus + ` AND (q.status = 'Pending' OR ?2 = 0) ORDER BY q.seq LIMIT 1`,
			"SEARCH q USING INDEX queue_open (enrollment_id=?)"},
		{selectItem + " WHERE q.enrollment_id = ? AND " + openStatus + " ORDER BY q.seq", "SEARCH q USING INDEX queue_open (enrollment_id=?)"},
		{"UPDATE queue SET status = ? WHERE enrollment_id = ? AND command_uuid = ? AND " + openStatusBare,
			"(enrollment_id=? AND command_uuid=?)"},
		{selectItem + " WHERE q.enrollment_id = ? AND " + openStatus + " ORDER BY q.seq", "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"},
		{"DELETE FROM results WHERE id = ?", "SEARCH results USING INTEGER PRIMARY KEY (rowid=?)"},
		{selectEnrollment + " WHERE cert_hash = ? ORDER BY authenticated_at DESC, id LIMIT 1", "USING INDEX enrollments_cert_hash"},
		{selectTranscript + transcriptOfEnrollmentAfter, "SEARCH t USING INDEX transcript_source (source=? AND seq>?)"},
		{selectTranscript + transcriptOfEnrollmentAfter, "SEARCH transcript_sources USING COVERING INDEX"},
		{selectTranscript + transcriptOfEnrollmentAfter, "SEARCH h USING INTEGER PRIMARY KEY (rowid=?)"},
		{selectTranscript + transcriptAfter, "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"},
		{selectTranscript + transcriptAfter, "SEARCH c USING INDEX sqlite_autoindex_commands_1 (uuid=?)"},
		{selectLatestHead, "SEARCH transcript_heads USING INDEX transcript_heads_source (source=?)"},
		{selectBlocksOfEnrollment, "SEARCH b USING INDEX transcript_blocks_source (source=? AND last_seq>?)"},
		{selectBlocksAfter, "SEARCH b USING INTEGER PRIMARY KEY (rowid>?)"},
		{selectBlocksAfter, "SEARCH transcript_blocks USING INTEGER PRIMARY KEY (rowid<?)"},
		{selectBlocksAfter, "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)"},
	} {
		rows, err := s.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+c.query, "a", 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), c.want) {
			t.Errorf("plan of %q:\n%s\nwant it to contain %q", c.query, strings.Join(plan, "\n"), c.want)
		}
	}
}

func TestTimes(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "t.db"))
	// Nanoseconds survive, and come back in UTC.
	ns := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", -7*3600))
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e", LastSeen: ns}); err != nil {
		t.Fatal(err)
	}
	e, err := s.GetEnrollment(ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	if !e.LastSeen.Equal(ns) || e.LastSeen.Location() != time.UTC {
		t.Errorf("LastSeen = %v, want %v in UTC", e.LastSeen, ns)
	}
	// A time int64 nanoseconds cannot hold is refused, not wrapped around.
	far := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	err = s.PutEnrollment(ctx, &store.Enrollment{ID: "far", CertNotAfter: far})
	if err == nil || !strings.Contains(err.Error(), "9999-12-31") {
		t.Errorf("PutEnrollment with a year-9999 time: %v, want a clear error", err)
	}
	if _, err := s.GetEnrollment(ctx, "far"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused record was stored: %v", err)
	}
}

func TestPathNeedsNoEscaping(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%20chars")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "db?x=1.sqlite")
	s := openT(t, path)
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	s = openT(t, path)
	if _, err := s.GetEnrollment(ctx, "e"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not an SQLite database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A file that starts like a database but whose pages are garbage.
	header := []byte("SQLite format 3\x00")
	truncated := filepath.Join(dir, "truncated.db")
	if err := os.WriteFile(truncated, append(header, make([]byte, 84)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"empty path":        "",
		"memory":            ":memory:",
		"uri":               "file:x.db?mode=memory",
		"not a database":    garbage,
		"truncated header":  truncated,
		"a directory":       dir,
		"missing directory": filepath.Join(dir, "no", "such", "dir", "x.db"),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(ctx, path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", path)
			}
			t.Logf("Open(%q): %v", path, err)
		})
	}
}

// TestCorruptPages damages a database's pages after it was written and then
// uses it: every call must return (an error is fine), none may panic.
func TestCorruptPages(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "corrupt.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		id := fmt.Sprintf("e%02d", i)
		if err := s.PutEnrollment(ctx, &store.Enrollment{ID: id, CertHash: "h" + id, PushToken: make([]byte, 300)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, &store.Command{UUID: "C" + id, Raw: make([]byte, 500)}, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 8192 {
		t.Fatalf("database only %d bytes", len(data))
	}
	// Keep the first pages (header, schema, schema_migrations) so it
	// opens; scribble over the second half, where the records are.
	for i := len(data) / 2 / 4096 * 4096; i < len(data); i++ {
		data[i] = byte(i*7 + 13)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Logf("Open of a corrupt database: %v", err)
		return
	}
	defer s.Close()
	var errs int
	count := func(err error) {
		if err != nil {
			errs++
		}
	}
	_, err = s.GetEnrollment(ctx, "e01")
	count(err)
	_, err = s.ListEnrollments(ctx)
	count(err)
	_, err = s.EnrollmentByCertHash(ctx, "he01")
	count(err)
	count(s.TouchEnrollment(ctx, "e01", time.Now()))
	count(s.PutEnrollment(ctx, &store.Enrollment{ID: "new"}))
	count(s.Enqueue(ctx, &store.Command{UUID: "new"}, "e01"))
	_, err = s.NextCommand(ctx, "e01", false)
	count(err)
	count(s.SaveResult(ctx, "e01", "Ce01", store.CommandAcknowledged, nil, time.Now()))
	_, err = s.QueueItems(ctx, "e01")
	count(err)
	_, err = s.CommandItems(ctx, "Ce01")
	count(err)
	count(s.ClearQueue(ctx, "e02"))
	count(s.AppendTranscript(ctx, &store.TranscriptEntry{Kind: "x"}))
	_, err = s.Transcript(ctx, "", 0, 0)
	count(err)
	count(s.Reset(ctx))
	if errs == 0 {
		t.Error("a database with scribbled pages gave no error at all")
	}
	t.Logf("%d calls on the corrupt database returned errors", errs)
}

func TestUseAfterClose(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.GetEnrollment(ctx, "e"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEnrollment after Close: %v, want a closed error", err)
	}
	if err := s.Enqueue(ctx, &store.Command{UUID: "x"}, "e"); err == nil {
		t.Error("Enqueue after Close succeeded")
	}
}

// TestKillNineKeepsCommits runs a child process that enqueues commands and
// reports each one Enqueue returned, kills it with SIGKILL mid-stream, and
// checks that every reported command is in the database: the promise behind
// synchronous=NORMAL in WAL mode.
func TestKillNineKeepsCommits(t *testing.T) {
	if path := os.Getenv("MOCKMDM_SQLITE_CHILD"); path != "" {
		childEnqueue(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "kill.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineKeepsCommits$")
	cmd.Env = append(os.Environ(), "MOCKMDM_SQLITE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if uuid, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			acked = append(acked, uuid)
			if len(acked) == 30 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < 30 {
		t.Fatalf("child reported only %d commits before it ended", len(acked))
	}

	s := openT(t, path)
	var total int
	if err := s.r.QueryRow("SELECT count(*) FROM commands").Scan(&total); err != nil {
		t.Fatal(err)
	}
	t.Logf("child reported %d commits; the database holds %d commands", len(acked), total)
	for _, uuid := range acked {
		if _, err := s.CommandItems(context.Background(), uuid); err != nil {
			t.Errorf("command %s, committed before the kill, is lost: %v", uuid, err)
		}
	}
}

// childEnqueue is the child of TestKillNineKeepsCommits: it enqueues until
// killed, printing each UUID after Enqueue returned.
func childEnqueue(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		uuid := fmt.Sprintf("K%06d", i)
		if err := s.Enqueue(ctx, &store.Command{UUID: uuid, Raw: []byte("raw")}, "e"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("committed %s\n", uuid)
	}
}

func BenchmarkNextCommandAndSaveResult(b *testing.B) {
	ctx := context.Background()
	s := openT(b, filepath.Join(b.TempDir(), "bench.db"))
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e"}); err != nil {
		b.Fatal(err)
	}
	raw := []byte(strings.Repeat("<plist>command</plist>", 20))
	for i := range b.N {
		if err := s.Enqueue(ctx, &store.Command{UUID: fmt.Sprintf("B%09d", i), RequestType: "ProfileList", Raw: raw}, "e"); err != nil {
			b.Fatal(err)
		}
	}
	result := []byte(strings.Repeat("<plist>result</plist>", 20))
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		it, err := s.NextCommand(ctx, "e", false)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SaveResult(ctx, "e", it.CommandUUID, store.CommandAcknowledged, result, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnqueue(b *testing.B) {
	ctx := context.Background()
	s := openT(b, filepath.Join(b.TempDir(), "bench.db"))
	ids := []string{"e0", "e1", "e2", "e3"}
	for _, id := range ids {
		if err := s.PutEnrollment(ctx, &store.Enrollment{ID: id}); err != nil {
			b.Fatal(err)
		}
	}
	raw := []byte(strings.Repeat("<plist>command</plist>", 20))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Enqueue(ctx, &store.Command{UUID: fmt.Sprintf("B%09d", i), RequestType: "ProfileList", Raw: raw}, ids...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendTranscript: what the store spends per device request on
// its record — 64 enrollments, each signing with one 2048-bit identity
// (headers sharing their first three quarters), an Idle-sized request and
// a command-sized response, committed by the group writer as under load
// (a barrier every 256 entries waits for the commit). The CPU of the whole
// process is what counts: the writer goroutine does the work.
func BenchmarkAppendTranscript(b *testing.B) {
	ctx := context.Background()
	s := openT(b, filepath.Join(b.TempDir(), "bench.db"))
	req := []byte(strings.Repeat("<key>Status</key><string>Idle</string>", 8))
	resp := []byte(strings.Repeat("<key>RequestType</key><string>SecurityInfo</string>", 12))
	ids := make([]string, 64)
	ders := make([][]byte, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("%040X", i*7919)
		ders[i] = bytes.Repeat([]byte{0x30, 0x82, byte(i)}, 442) // 1,326 bytes, as a 2048-bit Mdm-Signature
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d := i % len(ids)
		der := ders[d]
		// The signing time, digest and signature differ: the last 323 bytes.
		binary.BigEndian.PutUint64(der[len(der)-323:], uint64(i))
		e := &store.TranscriptEntry{EnrollmentID: ids[d], RequestID: "0123456789abcdef", Kind: "checkin", MessageType: "Idle",
			Method: "PUT", Path: "/mdm/checkin", Status: 200, Request: req, Response: resp,
			Signature: base64.StdEncoding.EncodeToString(der)}
		if err := s.AppendTranscript(ctx, e); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 {
			if err := s.transcriptBarrier(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.transcriptBarrier(); err != nil {
		b.Fatal(err)
	}
}

// TestTranscriptWrittenBehindIsReadInOrder: appends return before their
// commit, yet a read right after sees every one, in Seq order, and a Reset
// right after removes them all (nothing queued before it lands after it).
func TestTranscriptWrittenBehindIsReadInOrder(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "t.db"))
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: fmt.Sprintf("w%d", w), Kind: "command", Note: fmt.Sprint(i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	all, err := s.Transcript(ctx, "", 0, 0)
	if err != nil || len(all) != writers*each {
		t.Fatalf("Transcript right after the appends: %d entries, %v; want %d", len(all), err, writers*each)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("Seq %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
	last := all[len(all)-1].Seq
	if err := s.AppendTranscript(ctx, &store.TranscriptEntry{Kind: "checkin"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if rest, _ := s.Transcript(ctx, "", 0, 0); len(rest) != 0 {
		t.Fatalf("an entry appended before Reset survived it: %+v", rest[0])
	}
	e := &store.TranscriptEntry{Kind: "checkin"}
	if err := s.AppendTranscript(ctx, e); err != nil || e.Seq <= last+1 {
		t.Fatalf("Seq after Reset = %d (%v), want past %d", e.Seq, err, last+1)
	}
}

// TestTranscriptSignatureRoundTrip: a signature is kept as the part of
// its enrollment's head it begins with and the rest — the rest as DER when
// the header is canonical base64 — and read back as the same header;
// anything else is kept as the text it came as.
func TestTranscriptSignatureRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sig.db")
	s := openT(t, path)
	der := bytes.Repeat([]byte{0x30, 0x82, 0x07, 0xff, 0x00, 0x9c}, 300)
	canonical := base64.StdEncoding.EncodeToString(der)
	later := bytes.Clone(der)
	later[1500] ^= 0xff // the same identity, another signing time
	sameIdentity := base64.StdEncoding.EncodeToString(later)
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x31, 0x82}, 600)) // a renewed identity
	headers := []string{
		canonical,
		sameIdentity,
		strings.TrimRight(base64.StdEncoding.EncodeToString(der[:1000]), "="), // unpadded
		canonical[:76] + "\r\n" + canonical[76:],                              // folded
		"", "not base64!", "QQ==", "QR==",                                     // the last has padding bits set
		other,
		sameIdentity[:len(sameIdentity)-1] + "=", // padding bits set: the rest stays text
		canonical[:1001],                         // a head whose length is not a multiple of four
		canonical[:1001],
	}
	for _, h := range headers {
		if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: "e1", Kind: "command", Signature: h}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		got, err := s.Transcript(ctx, "e1", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(headers) {
			t.Fatalf("%d entries, want %d", len(got), len(headers))
		}
		for i, e := range got {
			if e.Signature != headers[i] {
				t.Errorf("entry %d: read back %q…, wrote %q…", i, short(e.Signature), short(headers[i]))
			}
		}
	}
	check(s)
	// The second header: 2,000 of its characters shared with the first,
	// the rest kept as DER.
	got, err := s.Transcript(ctx, "e1", 0, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("the first two entries: %d, %v", len(got), err)
	}
	second := storedEntry(t, s, got[1].Seq)
	if _, der := second.rest.([]byte); !der || second.shared != 2000 || second.head == 0 {
		t.Errorf("the second signature of an identity is kept as %T after %d shared characters of head %d; want DER after 2000 of one", second.rest, second.shared, second.head)
	}
	var heads int
	if err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM transcript_heads").Scan(&heads); err != nil {
		t.Fatal(err)
	}
	// The first, the folded one (it shares only 76 characters), the
	// renewed identity, then the first identity again.
	if heads != 4 {
		t.Errorf("%d signature heads kept, want 4", heads)
	}
	// A store opened afresh finds the heads in the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, path)
	check(s2)
	if err := s2.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: "e1", Signature: sameIdentity}); err != nil {
		t.Fatal(err)
	}
	headers = append(headers, sameIdentity)
	check(s2)
}

func short(s string) string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

// TestRememberedSoleItem: a command queued on a queue known empty is
// remembered whole, and NextCommand answers with it as the file would —
// until an answer, a NotNow, a clear or another enqueue changes the queue.
func TestRememberedSoleItem(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "remembered.db"))
	if err := s.PutEnrollment(ctx, &store.Enrollment{ID: "e1", Type: "Device"}); err != nil {
		t.Fatal(err)
	}
	next := func(skipNotNow bool) *store.QueueItem {
		t.Helper()
		it, err := s.NextCommand(ctx, "e1", skipNotNow)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	enqueue := func(uuid string) {
		t.Helper()
		if err := s.Enqueue(ctx, &store.Command{UUID: uuid, RequestType: "ProfileList", Raw: []byte("<plist>" + uuid + "</plist>")}, "e1"); err != nil {
			t.Fatal(err)
		}
	}
	if next(true) != nil { // and now known empty
		t.Fatal("a command in a new queue")
	}
	enqueue("c1")
	if s.hot.soleQueued("e1") == nil {
		t.Fatal("the command queued on an empty queue is not remembered")
	}
	got := next(true)
	fromFile, err := s.QueueItems(ctx, "e1")
	if err != nil || len(fromFile) != 1 {
		t.Fatalf("QueueItems: %v, %v", fromFile, err)
	}
	if !reflect.DeepEqual(got, fromFile[0]) {
		t.Fatalf("remembered item\n%+v\nthe file's\n%+v", got, fromFile[0])
	}
	got.Command[0] = 'X' // the caller's copy
	if again := next(true); again == nil || string(again.Command) != "<plist>c1</plist>" {
		t.Fatalf("a caller's change reached the remembered item: %+v", again)
	}

	// NotNow: still open, no longer Pending.
	if err := s.SaveResult(ctx, "e1", "c1", "NotNow", []byte("<plist/>"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if it := next(true); it != nil {
		t.Fatalf("a NotNow command offered again in the same session: %+v", it)
	}
	if it := next(false); it == nil || it.CommandUUID != "c1" || it.Status != "NotNow" {
		t.Fatalf("the NotNow command on the next session: %+v", it)
	}
	if err := s.SaveResult(ctx, "e1", "c1", "Acknowledged", []byte("<plist/>"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if it := next(false); it != nil {
		t.Fatalf("an answered command offered: %+v", it)
	}

	// Cleared: gone.
	enqueue("c2")
	if err := s.ClearQueue(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if it := next(false); it != nil {
		t.Fatalf("a cleared command offered: %+v", it)
	}

	// Enqueues racing on an empty queue: the first in the file comes first.
	for round := range 20 {
		var wg sync.WaitGroup
		for k := range 3 {
			wg.Go(func() { enqueue(fmt.Sprintf("r%d-%d", round, k)) })
		}
		wg.Wait()
		fromFile, err := s.QueueItems(ctx, "e1")
		if err != nil || len(fromFile) != 3 {
			t.Fatalf("round %d: %d items, %v", round, len(fromFile), err)
		}
		for _, want := range fromFile {
			if it := next(true); it == nil || it.CommandUUID != want.CommandUUID {
				t.Fatalf("round %d: NextCommand %+v, the file's first %s", round, it, want.CommandUUID)
			}
			if err := s.SaveResult(ctx, "e1", want.CommandUUID, "Acknowledged", nil, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if it := next(false); it != nil {
			t.Fatalf("round %d: a command left: %+v", round, it)
		}
	}
}

// TestRolledBackKeysForgotten: a source and a head written in a
// transaction that rolled back are not remembered — the next rows would
// otherwise point at IDs that SQLite gives again to someone else.
func TestRolledBackKeysForgotten(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "rollback.db"))
	sig := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 900)) }
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows := []transcriptRow{{e: store.TranscriptEntry{Seq: 1000, EnrollmentID: "e9", Signature: sig(9)}}}
		if err := s.writeBlocks(txExecer{tx}, rows); err != nil {
			return err
		}
		return errors.New("rolled back")
	})
	if err == nil {
		t.Fatal("the transaction did not fail")
	}
	for _, id := range []string{"e8", "e9"} {
		if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: id, Signature: sig(id[1])}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"e8", "e9"} {
		got, err := s.Transcript(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].EnrollmentID != id || got[0].Signature != sig(id[1]) {
			t.Errorf("Transcript(%s) = %d entries (%+v), want its one entry with its signature", id, len(got), got)
		}
	}
	// Reset empties the tables the remembered IDs point into.
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTranscript(ctx, &store.TranscriptEntry{EnrollmentID: "e9", Signature: sig(9)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Transcript(ctx, "e9", 0, 0); err != nil || len(got) != 1 || got[0].Signature != sig(9) {
		t.Errorf("after Reset, Transcript(e9) = %d entries, %v; want its new entry", len(got), err)
	}
}

// BenchmarkCommandCycle: the store's share of a bench command cycle (see
// storetest.BenchmarkCommandCycle); compare with the memory store's.
func BenchmarkCommandCycle(b *testing.B) {
	storetest.BenchmarkCommandCycle(b, openT(b, filepath.Join(b.TempDir(), "bench.db")))
}

// BenchmarkCommandCycleEightAtOnce: the same, eight devices at once, as
// `mockmdm bench` runs them.
func BenchmarkCommandCycleEightAtOnce(b *testing.B) {
	storetest.BenchmarkCommandCycleAtOnce(b, openT(b, filepath.Join(b.TempDir(), "bench.db")), 8)
}

func TestCycles(t *testing.T) {
	storetest.RunCycles(t, openT(t, filepath.Join(t.TempDir(), "cycles.db")))
}
