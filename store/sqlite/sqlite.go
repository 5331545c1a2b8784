// Package sqlite is the embedded default store.Store: one SQLite file in the
// data directory, so a QA team's enrolled devices and queued commands survive
// a restart. It uses modernc.org/sqlite (pure Go, no cgo).
//
// Connections come in two pools. SQLite allows one writer at a time, so every
// write goes through a pool of exactly one connection: writers queue in Go
// instead of spinning on SQLITE_BUSY, and each write transaction starts with
// BEGIN IMMEDIATE so a transaction never has to upgrade a read lock (the
// classic SQLite deadlock). Reads use a separate pool of query-only
// connections, which in WAL mode run alongside the writer and always see every
// committed transaction.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mockmdm/mockmdm/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Option configures Open.
type Option func(*options)

type options struct {
	log         *slog.Logger
	busyTimeout time.Duration
	readConns   int
}

// WithLogger sets the logger (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithBusyTimeout sets how long a statement waits for a lock held by another
// connection (another process or Store on the same file) before failing.
// The default is 5s.
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// WithReadConns sets the size of the read pool (default: max(4, NumCPU)).
func WithReadConns(n int) Option { return func(o *options) { o.readConns = n } }

// Store is a store.Store on one SQLite database file.
type Store struct {
	w   *sql.DB // one connection: all writes
	r   *sql.DB // query-only connections: reads
	log *slog.Logger

	// Hot-path statements, prepared once at Open.
	getEnrollment    *sql.Stmt
	byCertHash       *sql.Stmt
	touchEnrollment  *sql.Stmt
	nextCommand      *sql.Stmt
	firstOpen        *sql.Stmt
	saveResult       *sql.Stmt
	insertResult     *sql.Stmt
	insertBlock      *sql.Stmt
	insertCommand    *sql.Stmt
	insertQueueItem  *sql.Stmt
	transcriptSource *sql.Stmt
	latestHead       *sql.Stmt
	insertHead       *sql.Stmt

	// The transcript's sources and signature heads (transcript.go).
	keys transcriptKeys
	// What the transcript may refer to instead of repeating (references.go).
	notes bodyNotes

	closeOnce sync.Once
	closeErr  error

	// Group commit (groupcommit.go).
	ops        chan *writeOp
	opsMu      sync.RWMutex
	opsClosed  bool
	writerDone chan struct{}

	// What every request repeats, remembered (hot.go).
	hot *hot

	// Transcript sequence numbers are assigned when an entry is appended,
	// before it is written (AppendTranscript); pendingTranscript counts the
	// appends not yet settled, which readers wait for.
	seqMu             sync.Mutex
	lastSeq           int64
	pendingTranscript atomic.Int64
	// The entries appended and not yet taken by a write (transcript.go).
	tbuf transcriptBuffer
	// lock holds the database's exclusive lock (lock_unix.go).
	lock *os.File
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, applies any pending
// migrations and prepares the hot-path statements. A file that is not a
// database, or cannot be opened, is an error.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{busyTimeout: 5 * time.Second, readConns: max(4, runtime.NumCPU())}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.readConns < 1 {
		o.readConns = 1
	}
	switch {
	case path == "":
		return nil, errors.New("sqlite: empty database path")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		// Two pools on ":memory:" would be two databases; a URI would be
		// mangled by our own. Use store/memory for an in-memory store.
		return nil, fmt.Errorf("sqlite: %q: give a file path (for an in-memory store use store/memory)", path)
	}

	// A file: URI so that any character in the path is escaped rather than
	// taken for the start of the query. The driver applies busy_timeout
	// before the other pragmas.
	//
	// synchronous=NORMAL is safe here: in WAL mode a commit appends to the
	// WAL, and a process killed with kill -9 loses nothing the OS has
	// received; only a power cut or kernel crash can roll back the last
	// transactions (never corrupt the file). FULL would fsync every commit
	// for protection against power loss, which a mock server does not need.
	//
	// wal_autocheckpoint(8000): the WAL is copied back into the database
	// every 8,000 pages (32 MiB) instead of 1,000. A device's commits
	// rewrite the same few pages (its queue row, the indexes, the
	// transcript's last page), and a checkpoint copies each page once
	// however often it was written since, and syncs: a fifth of the
	// store's time in a command cycle went to checkpoints at 1,000.
	// journal_size_limit trims the WAL file back after each.
	name := "file:" + uriPath(path)
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", o.busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", name+"?"+common+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(8000)&_pragma=journal_size_limit(33554432)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	lock, err := lockDatabase(path)
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &Store{w: w, log: o.log, hot: newHot(), lock: lock}
	if err := s.init(ctx, path); err != nil {
		w.Close()
		unlockDatabase(lock)
		return nil, err
	}

	r, err := sql.Open("sqlite", name+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(o.readConns)
	r.SetMaxIdleConns(o.readConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s.r = r
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Sequence numbers go on from the highest ever given: Reset records it
	// (transcript_mark; before 0006, AUTOINCREMENT's record did), so a
	// reader polling with afterSeq never sees a number again.
	if err := s.w.QueryRowContext(ctx, `SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'transcript'), 0),
		COALESCE((SELECT MAX(seq) FROM transcript), 0), COALESCE((SELECT MAX(last_seq) FROM transcript_blocks), 0),
		COALESCE((SELECT seq FROM transcript_mark), 0))`).Scan(&s.lastSeq); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: transcript sequence: %w", path, err)
	}
	s.startGroupCommit()
	return s, nil
}

// uriPath is path as the path part of an SQLite file: URI: cleaned (so it
// cannot start with "//", which would read as an authority), with forward
// slashes, a leading slash before a Windows drive letter, and every
// character that URIs reserve percent-escaped.
func uriPath(path string) string {
	p := filepath.ToSlash(filepath.Clean(path))
	if filepath.VolumeName(path) != "" {
		p = "/" + p
	}
	return (&url.URL{Path: p}).EscapedPath()
}

// init checks that the file is a usable database in WAL mode and migrates it.
func (s *Store) init(ctx context.Context, path string) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: open %s: journal mode is %q, not WAL (is the file on a filesystem without shared memory?)", path, mode)
	}
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	return nil
}

// migrate applies, in name order and in one transaction, every embedded
// migration not yet recorded in schema_migrations. BEGIN IMMEDIATE makes two
// processes opening the same new file take turns, so each migration runs once.
func (s *Store) migrate(ctx context.Context) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(files)

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return err
	}
	applied := map[string]bool{}
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return err
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	known := map[string]bool{}
	var done []string
	for _, f := range files {
		version := strings.TrimSuffix(strings.TrimPrefix(f, "migrations/"), ".sql")
		known[version] = true
		if applied[version] {
			continue
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
			version, time.Now().UnixNano()); err != nil {
			return err
		}
		done = append(done, version)
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("the database has migration %s, which this build does not know: it was written by a newer mockmdm", v)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if len(done) > 0 {
		s.log.InfoContext(ctx, "applied database migrations", "migrations", done)
	}
	return nil
}

// prepare prepares the hot-path statements: reads on the read pool, writes
// on the write pool (where transactions can adopt them with Tx.Stmt).
func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{s.r, &s.getEnrollment, selectEnrollment + " WHERE id = ?"},
		{s.r, &s.byCertHash, selectEnrollment + " WHERE cert_hash = ? ORDER BY authenticated_at DESC, id LIMIT 1"},
		{s.w, &s.touchEnrollment, "UPDATE enrollments SET last_seen = ? WHERE id = ?"},
		{s.r, &s.nextCommand, selectItem + ` WHERE q.enrollment_id = ?1 AND ` + openStatus + `
			AND (q.status = 'Pending' OR ?2 = 0) ORDER BY q.seq LIMIT 1`},
		{s.r, &s.firstOpen, selectItem + ` WHERE q.enrollment_id = ? AND ` + openStatus + ` ORDER BY q.seq LIMIT 2`},
		{s.w, &s.insertResult, `INSERT INTO results (result) VALUES (?)`},
		// result = NULL: a row answered NotNow before migration 0004 kept
		// its result in the row.
		{s.w, &s.saveResult, `UPDATE queue SET status = ?, result_id = ?, result = NULL, updated_at = ?
			WHERE enrollment_id = ? AND command_uuid = ? AND ` + openStatusBare},
		{s.w, &s.insertBlock, `INSERT INTO transcript_blocks (id, flush, source, last_seq, entries) VALUES (?, ?, ?, ?, ?)`},
		// On the write pool: the writer must see what its own open
		// transaction added.
		{s.w, &s.transcriptSource, `INSERT INTO transcript_sources (enrollment_id) VALUES (?)
			ON CONFLICT (enrollment_id) DO UPDATE SET enrollment_id = excluded.enrollment_id RETURNING id`},
		{s.w, &s.latestHead, selectLatestHead},
		{s.w, &s.insertHead, `INSERT INTO transcript_heads (source, head) VALUES (?, ?)`},
		{s.w, &s.insertCommand, `INSERT INTO commands (uuid, request_type, raw, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (uuid) DO NOTHING`},
		// Inserts nothing when the enrollment does not exist, which Enqueue
		// reads from RowsAffected (a clearer error than the foreign key's).
		{s.w, &s.insertQueueItem, `INSERT INTO queue (enrollment_id, command_uuid, seq, status, created_at, updated_at)
			SELECT id, ?, ?, 'Pending', ?, ? FROM enrollments WHERE id = ?`},
	} {
		st, err := p.db.PrepareContext(ctx, p.text)
		if err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", strings.Join(strings.Fields(p.text), " "), err)
		}
		*p.dst = st
	}
	return nil
}

// Close closes the statements and both pools. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.ops != nil {
			s.stopGroupCommit()
		}
		var errs []error
		if s.hot != nil {
			s.flushSeenNow() // a failure is logged: last-seen times are best effort
		}
		for _, st := range []*sql.Stmt{s.getEnrollment, s.byCertHash, s.touchEnrollment, s.nextCommand, s.firstOpen,
			s.saveResult, s.insertResult, s.insertBlock, s.insertCommand, s.insertQueueItem, s.transcriptSource,
			s.latestHead, s.insertHead} {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		// Readers first, so the writer is the last connection: closing it
		// checkpoints the WAL into the main file.
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		unlockDatabase(s.lock)
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Reset deletes all state in one transaction. The transcript's Seq keeps
// counting (transcript_mark remembers it), so a client polling with
// afterSeq does not miss what comes next.
func (s *Store) Reset(ctx context.Context) error {
	// No transcript entry is appended while it runs, and what was appended
	// before it goes before it, not after.
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	if err := s.transcriptBarrier(); err != nil {
		return err
	}
	// Once the deletes are done (or failed): a reference decided after
	// this names only what was read or written after them.
	defer s.notes.reset()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"queue", "results", "commands", "enrollments", "transcript", "transcript_blocks", "transcript_heads", "transcript_sources", "challenges", "documents"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
				return fmt.Errorf("sqlite: reset %s: %w", table, err)
			}
		}
		// The Seqs given so far are never given again, after a restart too.
		if _, err := tx.ExecContext(ctx, `INSERT INTO transcript_mark (id, seq) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET seq = MAX(seq, excluded.seq)`, s.lastSeq); err != nil {
			return fmt.Errorf("sqlite: reset: transcript mark: %w", err)
		}
		// Inside the transaction: no transcript write can run until it ends.
		s.keys.forget()
		return nil
	})
	s.hot.reset() // whether or not it committed: the next reads go to the file
	return err
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it if fn
// returns nil. fn must use tx only: the write pool has a single connection,
// so touching s.w inside fn would wait forever.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		s.keys.forget() // it may remember rows that were rolled back
		return err
	}
	if err := tx.Commit(); err != nil {
		s.keys.forget()
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// --- challenges -----------------------------------------------------------

// PutChallenge stores a one-time challenge valid until expires (replacing
// any earlier one with the same value).
func (s *Store) PutChallenge(ctx context.Context, challenge string, expires time.Time) error {
	if challenge == "" {
		return badRequest("empty challenge")
	}
	exp, err := nanos(expires)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO challenges (challenge, expires_at) VALUES (?, ?)
		ON CONFLICT (challenge) DO UPDATE SET expires_at = excluded.expires_at`, challenge, exp)
	if err != nil {
		return fmt.Errorf("sqlite: put challenge: %w", err)
	}
	return nil
}

// ConsumeChallenge deletes the challenge and reports whether it existed and
// was unexpired at now (now before expires). One DELETE … RETURNING makes it
// succeed at most once, however many callers race.
func (s *Store) ConsumeChallenge(ctx context.Context, challenge string, now time.Time) (bool, error) {
	var exp sql.NullInt64
	err := s.w.QueryRowContext(ctx, "DELETE FROM challenges WHERE challenge = ? RETURNING expires_at", challenge).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: consume challenge: %w", err)
	}
	return now.Before(fromNanos(exp)), nil
}
