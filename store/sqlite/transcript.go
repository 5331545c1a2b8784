package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mockmdm/mockmdm/store"
)

// AppendTranscript stores entries, assigning Seq in order, and returns
// once they are queued for the group writer, not once committed: a device
// request should not wait for the record of itself. Every read of the
// transcript (Transcript), Reset and Close wait for what is queued, so a
// reader always sees what was appended before it asked; only a process
// killed with kill -9 can lose the last entries queued — a debugging
// record, never a command or a result, which are written through.
func (s *Store) AppendTranscript(ctx context.Context, entries ...*store.TranscriptEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i, e := range entries {
		if e == nil {
			return fmt.Errorf("sqlite: transcript entry %d is nil", i)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Seq is assigned, and the write queued, under one lock: the group
	// writer takes writes in order, so rows land in Seq order. What a row
	// refers to is decided under it too (see bodyNotes).
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	rows := make([]transcriptRow, len(entries))
	for i, e := range entries {
		n, err := nanos(e.Time)
		if err != nil {
			return err
		}
		r := &rows[i]
		*r = transcriptRow{time: n, e: *e}
		r.responseCommand, r.requestResult = s.notes.references(e.EnrollmentID, e.CommandUUID, e.Request, e.Response)
		if r.requestResult == 0 {
			r.e.Request = cloneBytes(e.Request)
		}
		if r.responseCommand == "" {
			r.e.Response = cloneBytes(e.Response)
		}
	}
	for i := range rows {
		s.lastSeq++
		rows[i].e.Seq = s.lastSeq
	}
	if err := s.bufferTranscript(rows); err != nil {
		return err
	}
	for i, e := range entries {
		e.Seq = rows[i].e.Seq
	}
	return nil
}

// maxBufferedRows is how many appended entries wait for the group writer
// before it is asked to write them at once rather than at its linger.
const maxBufferedRows = 512

// transcriptBuffer holds the entries appended and not yet taken by a
// write. Whenever it holds any, a write that will take them is queued
// (queued), so waiting for the queued writes (transcriptBarrier) waits for
// every entry appended before; entries appended meanwhile go with the
// same write. That is what makes a block of an enrollment's entries
// (blocks.go) out of many devices' requests.
type transcriptBuffer struct {
	mu     sync.Mutex
	rows   []transcriptRow
	queued bool // a write that will take rows is queued
	urgent bool // and one that will not wait for the writer's linger
}

// bufferTranscript adds rows (in Seq order, after every row added before;
// the caller holds seqMu) and queues a write to take them if none is.
func (s *Store) bufferTranscript(rows []transcriptRow) error {
	b := &s.tbuf
	b.mu.Lock()
	b.rows = append(b.rows, rows...)
	queue := !b.queued
	urgent := !b.urgent && len(b.rows) >= maxBufferedRows
	b.queued = true
	b.urgent = b.urgent || urgent
	b.mu.Unlock()
	if !queue && !urgent {
		return nil
	}
	// Not under b.mu: the queue may be full, and the writer takes b.mu.
	var taken []transcriptRow
	took := false
	s.pendingTranscript.Add(1)
	op := &writeOp{fn: func(x execer) error {
		// fn may run twice (groupWrite): what it took, it keeps.
		if !took {
			taken, took = s.takeTranscript(), true
		}
		if err := s.writeBlocks(x, taken); err != nil {
			return fmt.Errorf("sqlite: append transcript: %w", err)
		}
		return nil
	}, after: func() { s.pendingTranscript.Add(-1) }, urgent: urgent}
	if err := s.enqueueWrite(op); err != nil {
		s.pendingTranscript.Add(-1)
		if !queue {
			// The write queued before takes these rows too.
			return nil
		}
		// The store is closed and no write will take the rows: they are
		// this call's alone (appends are serialised by seqMu).
		b.mu.Lock()
		b.rows, b.queued, b.urgent = nil, false, false
		b.mu.Unlock()
		return err
	}
	return nil
}

// takeTranscript hands the buffered rows to the write that runs.
func (s *Store) takeTranscript() []transcriptRow {
	b := &s.tbuf
	b.mu.Lock()
	defer b.mu.Unlock()
	rows := b.rows
	b.rows, b.queued, b.urgent = nil, false, false
	return rows
}

type transcriptRow struct {
	time sql.NullInt64
	e    store.TranscriptEntry
	// What the row refers to instead of carrying the body (0005): its
	// response is this command's raw, its request this result.
	responseCommand string
	requestResult   int64
}

// transcriptKeys remembers, for the writer, each enrollment's source ID
// and current signature head, so that a block costs one statement.
// Only what a committed transaction wrote may be remembered: inTx forgets
// everything when a transaction fails, and Reset inside its own (no
// writer transaction can run beside it: the write pool has one
// connection). The mutex is for the memory model, not for contention.
type transcriptKeys struct {
	mu      sync.Mutex
	sources map[string]int64
	heads   map[int64]signatureHead // by source
}

type signatureHead struct {
	id   int64
	head string
}

func (k *transcriptKeys) forget() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sources = nil
	k.heads = nil
}

// source is the source ID of enrollmentID, created on first use.
func (k *transcriptKeys) source(x execer, s *Store, enrollmentID string) (int64, error) {
	k.mu.Lock()
	id, ok := k.sources[enrollmentID]
	k.mu.Unlock()
	if ok {
		return id, nil
	}
	err := x.QueryRow(s.transcriptSource, enrollmentID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("source of %q: %w", enrollmentID, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sources == nil {
		k.sources = map[string]int64{}
	}
	k.sources[enrollmentID] = id
	return id, nil
}

// head returns the head the signature shares its beginning with and how
// many characters of it (a multiple of four, so that the rest is whole
// base64 groups and kept as DER when the header is canonical). A
// signature too short to share, or sharing too little with the source's
// head, gets no head (0, 0) or becomes the new head (id, its whole length).
func (k *transcriptKeys) head(x execer, s *Store, source int64, sig string) (sql.NullInt64, int, error) {
	if len(sig) < store.MinSharedSignature {
		return sql.NullInt64{}, 0, nil
	}
	k.mu.Lock()
	h, ok := k.heads[source]
	k.mu.Unlock()
	if !ok {
		err := x.QueryRow(s.latestHead, source).Scan(&h.id, &h.head)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return sql.NullInt64{}, 0, fmt.Errorf("signature head of source %d: %w", source, err)
		}
	}
	if n := store.SharedPrefix(h.head, sig) &^ 3; h.id != 0 && n >= store.MinSharedSignature {
		if !ok { // read from the file: remembered from now on
			k.remember(source, h)
		}
		return sql.NullInt64{Int64: h.id, Valid: true}, n, nil
	}
	res, err := x.Exec(s.insertHead, source, sig)
	if err != nil {
		return sql.NullInt64{}, 0, fmt.Errorf("signature head of source %d: %w", source, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return sql.NullInt64{}, 0, err
	}
	// A copy: sig may share memory with a request the server would free.
	k.remember(source, signatureHead{id: id, head: strings.Clone(sig)})
	return sql.NullInt64{Int64: id, Valid: true}, len(sig) &^ 3, nil
}

func (k *transcriptKeys) remember(source int64, h signatureHead) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.heads == nil {
		k.heads = map[int64]signatureHead{}
	}
	k.heads[source] = h
}

// transcriptBarrier waits until every transcript write queued before it
// has been committed (or has failed and been logged).
func (s *Store) transcriptBarrier() error {
	if s.pendingTranscript.Load() == 0 {
		return nil
	}
	return s.awaitWrite(&writeOp{fn: func(execer) error { return nil }, done: make(chan error, 1), single: true, barrier: true})
}

const (
	selectTranscript = `SELECT t.seq, t.time, t.enrollment_id, t.request_id, t.kind, t.message_type, t.command_uuid, t.method, t.path,
		t.status, t.note,
		CASE WHEN t.request_result IS NULL THEN t.request ELSE (SELECT r.result FROM results r WHERE r.id = t.request_result) END,
		CASE WHEN t.response_command IS NULL THEN t.response ELSE (SELECT c.raw FROM commands c WHERE c.uuid = t.response_command) END,
		t.signature, t.sig_shared, h.head
		FROM transcript t LEFT JOIN transcript_heads h ON h.id = t.sig_head`
	// An enrollment's current head is its latest.
	selectLatestHead = `SELECT id, head FROM transcript_heads WHERE source = ? ORDER BY id DESC LIMIT 1`

	transcriptAfter             = ` WHERE t.seq > ? ORDER BY t.seq LIMIT ?`
	transcriptOfEnrollmentAfter = ` WHERE t.source = (SELECT id FROM transcript_sources WHERE enrollment_id = ?)
		AND t.seq > ? ORDER BY t.seq LIMIT ?`
)

// Transcript returns an enrollment's entries with Seq > afterSeq, oldest
// first, at most limit (0 or less: no limit). The empty ID means every entry.
//
// Entries written before migration 0006 are rows of the transcript table,
// every one of them before every entry of the blocks; the two are read in
// one transaction, so that what a block refers to is there.
func (s *Store) Transcript(ctx context.Context, enrollmentID string, afterSeq int64, limit int) ([]*store.TranscriptEntry, error) {
	if err := s.transcriptBarrier(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: transcript: %w", err)
	}
	defer tx.Rollback()
	out, err := transcriptRows(ctx, tx, enrollmentID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: transcript: %w", err)
	}
	if limit >= 0 && len(out) >= limit {
		return out, nil
	}
	if len(out) > 0 {
		afterSeq = out[len(out)-1].Seq
	}
	rest := limit
	if limit >= 0 {
		rest = limit - len(out)
	}
	blocks, err := blockEntries(ctx, tx, enrollmentID, afterSeq, rest)
	if err != nil {
		return nil, fmt.Errorf("sqlite: transcript: %w", err)
	}
	more, err := resolveBlockEntries(ctx, tx, blocks)
	if err != nil {
		return nil, fmt.Errorf("sqlite: transcript: %w", err)
	}
	return append(out, more...), nil
}

// transcriptRows reads the rows of the transcript table (entries written
// before 0006).
func transcriptRows(ctx context.Context, tx *sql.Tx, enrollmentID string, afterSeq int64, limit int) ([]*store.TranscriptEntry, error) {
	var rows *sql.Rows
	var err error
	if enrollmentID == "" {
		rows, err = tx.QueryContext(ctx, selectTranscript+transcriptAfter, afterSeq, limit)
	} else {
		rows, err = tx.QueryContext(ctx, selectTranscript+transcriptOfEnrollmentAfter, enrollmentID, afterSeq, limit)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*store.TranscriptEntry{}
	for rows.Next() {
		var e store.TranscriptEntry
		var t sql.NullInt64
		var sig any
		var shared int
		var head sql.NullString
		if err := rows.Scan(&e.Seq, &t, &e.EnrollmentID, &e.RequestID, &e.Kind, &e.MessageType, &e.CommandUUID,
			&e.Method, &e.Path, &e.Status, &e.Note, &e.Request, &e.Response, &sig, &shared, &head); err != nil {
			return nil, err
		}
		if e.Signature, err = joinSignature(e.Seq, head.String, shared, sig); err != nil {
			return nil, err
		}
		e.Time = fromNanos(t)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// storedSignature is how (the rest of) an Mdm-Signature header is kept in
// the transcript: its DER as a BLOB when the header is canonical standard
// base64 (what devices send), a quarter smaller than the text and written
// on every device request; the text itself otherwise, so what is read back
// is always the header as it came.
func storedSignature(header string) any {
	if header == "" || len(header)%4 != 0 || strings.ContainsAny(header, "\r\n") {
		return header
	}
	der, err := base64.StdEncoding.Strict().DecodeString(header)
	if err != nil {
		return header
	}
	return der
}

// joinSignature puts an entry's Mdm-Signature header back together: the
// shared characters of its head, then its stored rest.
func joinSignature(seq int64, head string, shared int, rest any) (string, error) {
	if shared < 0 || shared > len(head) {
		return "", fmt.Errorf("transcript entry %d: its signature shares %d characters of a head of %d", seq, shared, len(head))
	}
	return head[:shared] + loadedSignature(rest), nil
}

// loadedSignature turns a stored signature back into its header.
func loadedSignature(v any) string {
	switch v := v.(type) {
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case string:
		return v
	}
	return ""
}
