package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Group commit. Every device request writes (its last-seen time, its
// transcript entry), and with one writer connection each write was a
// transaction of its own: on the embedded SQLite the transaction, not the
// row, is the cost. Concurrent writers now hand their work to one
// goroutine, which runs everything queued in a single transaction and
// answers each caller only once that transaction has committed — so a nil
// error still means "on disk", and nothing a device was answered for is
// lost, while a burst of N requests pays for one commit.

// maxGroup bounds the waited-for operations one transaction carries (the
// held-back ones are bounded by maxBehind).
const maxGroup = 64

// writeBehindLinger is how long a write nobody waits for waits for others
// to share its commit; maxBehind is how many may wait.
const (
	writeBehindLinger = 50 * time.Millisecond
	maxBehind         = 512
)

var errStoreClosed = errors.New("sqlite: store closed")

type writeOp struct {
	fn func(x execer) error
	// done receives the outcome; nil for an operation nobody waits for
	// (last-seen times), whose failure is logged instead.
	done chan error
	// single: fn runs one statement, so alone it needs no explicit
	// transaction (SQLite commits it by itself, a BEGIN … COMMIT cheaper).
	single bool
	// barrier: everything queued before it, held back or not, commits
	// first (a reader that must see every transcript entry written).
	barrier bool
	// after, if set, runs once the operation is settled (committed or failed).
	after func()
	// urgent: an operation nobody waits for that is not to wait for the
	// linger either — the transcript entries buffered have reached
	// maxBufferedRows.
	urgent bool
}

// execer runs a prepared statement: inside the group's transaction, or on
// its own when an operation of one statement runs alone.
type execer interface {
	Exec(st *sql.Stmt, args ...any) (sql.Result, error)
	QueryRow(st *sql.Stmt, args ...any) *sql.Row
}

type txExecer struct{ tx *sql.Tx }

func (x txExecer) Exec(st *sql.Stmt, args ...any) (sql.Result, error) {
	return x.tx.Stmt(st).Exec(args...)
}

func (x txExecer) QueryRow(st *sql.Stmt, args ...any) *sql.Row {
	return x.tx.Stmt(st).QueryRow(args...)
}

type autoExecer struct{}

func (autoExecer) Exec(st *sql.Stmt, args ...any) (sql.Result, error) { return st.Exec(args...) }

func (autoExecer) QueryRow(st *sql.Stmt, args ...any) *sql.Row { return st.QueryRow(args...) }

// startGroupCommit starts the writer goroutine; stopGroupCommit ends it
// after the queued operations ran.
func (s *Store) startGroupCommit() {
	s.ops = make(chan *writeOp, maxGroup)
	s.writerDone = make(chan struct{})
	go s.groupWriter()
}

func (s *Store) stopGroupCommit() {
	s.opsMu.Lock()
	if !s.opsClosed {
		s.opsClosed = true
		close(s.ops)
	}
	s.opsMu.Unlock()
	<-s.writerDone
}

// groupWrite runs fn in a transaction shared with whatever other writes are
// waiting, and returns once that transaction committed (or fn's own error).
// fn may run twice — a second time alone, when another write of its group
// failed — so it must only record its results, not act on them. single
// says fn runs one statement.
func (s *Store) groupWrite(single bool, fn func(x execer) error) error {
	return s.awaitWrite(&writeOp{fn: fn, done: make(chan error, 1), single: single})
}

// awaitWrite hands op (whose done is set) to the group writer and waits
// for its outcome.
func (s *Store) awaitWrite(op *writeOp) error {
	if err := s.enqueueWrite(op); err != nil {
		return err
	}
	return <-op.done
}

// enqueueWrite hands op to the group writer without waiting for it.
func (s *Store) enqueueWrite(op *writeOp) error {
	s.opsMu.RLock()
	defer s.opsMu.RUnlock()
	if s.opsClosed {
		return errStoreClosed
	}
	s.ops <- op
	return nil
}

func (s *Store) groupWriter() {
	defer close(s.writerDone)
	// Writes nobody waits for (the transcript's: each takes every entry
	// appended until it runs, see bufferTranscript) are held back, up to
	// writeBehindLinger or maxBehind of them or until an urgent one comes,
	// and committed together; a write someone waits for is committed at
	// once, with whatever other waited-for writes are queued, but without
	// the held-back ones — unless it is a barrier, which must find
	// everything queued before it on disk.
	// Keeping the transcript out of a result's commit keeps that commit to
	// the few pages the result changes: with the transcript rows, their
	// index, the sequence and the last-seen times aboard, a command result
	// cost fifteen WAL frames (thirty pwrite calls), and one commit per
	// result is what a command cycle pays on this store.
	group := make([]*writeOp, 0, maxGroup)
	var behind []*writeOp
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	flushBehind := func() {
		linger.Stop()
		if len(behind) > 0 {
			s.runGroup(behind, true)
		}
		clear(behind)
		behind = behind[:0]
	}
	hold := func(op *writeOp) {
		behind = append(behind, op)
		if len(behind) == 1 {
			linger.Reset(writeBehindLinger)
		}
		if len(behind) >= maxBehind || op.urgent {
			flushBehind()
		}
	}
	tick := time.NewTicker(seenFlushEvery)
	defer tick.Stop()
	for {
		var op *writeOp
		select {
		case o, ok := <-s.ops:
			if !ok {
				flushBehind()
				return
			}
			op = o
		case <-linger.C:
			flushBehind()
			continue
		case <-tick.C:
			// No write came to carry the last-seen times: write them alone.
			s.flushSeenNow()
			continue
		}
		if op.done == nil {
			hold(op)
			continue
		}
		group = append(group[:0], op)
		barrier := op.barrier
		yielded := false
	fill:
		for len(group) < maxGroup {
			select {
			case more, ok := <-s.ops:
				if !ok {
					break fill
				}
				if more.done == nil {
					hold(more)
					continue
				}
				group = append(group, more)
				barrier = barrier || more.barrier
			default:
				if yielded {
					break fill
				}
				// Once, let the goroutines ready to run go first: the
				// first waiter woke this one at once, and on a busy
				// server other requests are already past their reads
				// and about to write — their writes then share this
				// commit (a third fewer WAL writes and half the file
				// locking per command cycle on one core). With nothing
				// else ready, Gosched returns at once.
				yielded = true
				runtime.Gosched()
			}
		}
		if barrier {
			// What was queued before the barrier goes first.
			flushBehind()
		}
		s.runGroup(group, barrier)
		clear(group)
	}
}

// runGroup commits the group in one transaction; if any operation fails,
// the transaction is rolled back and each runs alone, so one caller's error
// is not another's.
//
// withSeen: the pending last-seen times ride along (they are written
// behind, like the transcript).
func (s *Store) runGroup(group []*writeOp, withSeen bool) {
	ctx := context.Background()
	if len(group) == 1 && group[0].single && (!withSeen || !s.hot.hasSeen()) {
		s.finish(group[0], group[0].fn(autoExecer{}))
		return
	}
	var seen map[string]sql.NullInt64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if withSeen {
			seen = s.seenWithGroup(txExecer{tx})
		}
		for _, op := range group {
			if err := op.fn(txExecer{tx}); err != nil {
				return errGroupMember
			}
		}
		return nil
	})
	if err == nil {
		for _, op := range group {
			s.finish(op, nil)
		}
		return
	}
	if len(seen) > 0 {
		s.writeSeenAlone(seen)
	}
	if !errors.Is(err, errGroupMember) && len(group) == 1 {
		s.finish(group[0], err)
		return
	}
	for _, op := range group {
		s.finish(op, s.inTx(ctx, func(tx *sql.Tx) error { return op.fn(txExecer{tx}) }))
	}
}

var errGroupMember = fmt.Errorf("sqlite: a write of the group failed")

// finish hands the outcome to whoever waits for the operation.
func (s *Store) finish(op *writeOp, err error) {
	if op.after != nil {
		op.after()
	}
	if op.done != nil {
		op.done <- err
		return
	}
	if err != nil {
		s.log.Error("sqlite: a write nobody waits for failed", "err", err)
	}
}
