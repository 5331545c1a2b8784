package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/mockmdm/mockmdm/store"
)

// Transcript blocks (migration 0006). The entries one group-writer
// transaction stores are kept as one row per enrollment: the block, whose
// entries this file encodes. A block is this store's own data, written by
// the writer and read back by Transcript; the decoder still checks every
// length, so a damaged file reads as an error, not a panic.
//
// The encoding, after a format byte, is the entry count and, per entry:
//
//	seq        uvarint, the difference from the previous entry's (the first: from the block's id)
//	time       0 (none) or 1 and a varint of Unix nanoseconds
//	request ID, kind, message type, command UUID, method, path, note: strings
//	status     varint
//	request    0 (nil), 1 and bytes, or 2 and the uvarint ID of the result it is (0005)
//	response   0 (nil), 1 and bytes, or 2 and the UUID of the command it is (0005)
//	signature  the uvarint ID of its head (0: none), the uvarint length it shares with
//	           the head, 0 and the rest as a string or 1 and its DER (see storedSignature)
//
// where a string or bytes is a uvarint length and the bytes.
const blockFormat = 1

const (
	bodyNone    = 0
	bodyInline  = 1
	bodyPointer = 2 // a result's ID (request) or a command's UUID (response)
)

// writeBlocks writes rows (in Seq order) as one block per enrollment, in
// the order of each enrollment's first row, so that a block's ID (its
// first Seq) grows with the order blocks are written in.
func (s *Store) writeBlocks(x execer, rows []transcriptRow) error {
	if len(rows) == 0 {
		return nil
	}
	var order []string
	byEnrollment := map[string][]int{}
	for i := range rows {
		id := rows[i].e.EnrollmentID
		if _, ok := byEnrollment[id]; !ok {
			order = append(order, id)
		}
		byEnrollment[id] = append(byEnrollment[id], i)
	}
	flush := rows[0].e.Seq
	var buf []byte
	for _, id := range order {
		source, err := s.keys.source(x, s, id)
		if err != nil {
			return err
		}
		idx := byEnrollment[id]
		buf = append(buf[:0], blockFormat)
		buf = binary.AppendUvarint(buf, uint64(len(idx)))
		first := rows[idx[0]].e.Seq
		prev := first
		for _, i := range idx {
			r := &rows[i]
			head, shared, err := s.keys.head(x, s, source, r.e.Signature)
			if err != nil {
				return err
			}
			buf = appendBlockEntry(buf, prev, r, head.Int64, shared)
			prev = r.e.Seq
		}
		if _, err := x.Exec(s.insertBlock, first, flush, source, prev, buf); err != nil {
			return fmt.Errorf("block of %q at %d: %w", id, first, err)
		}
	}
	return nil
}

func appendBlockEntry(buf []byte, prevSeq int64, r *transcriptRow, head int64, shared int) []byte {
	e := &r.e
	buf = binary.AppendUvarint(buf, uint64(e.Seq-prevSeq))
	if r.time.Valid {
		buf = append(buf, 1)
		buf = binary.AppendVarint(buf, r.time.Int64)
	} else {
		buf = append(buf, 0)
	}
	for _, f := range [...]string{e.RequestID, e.Kind, e.MessageType, e.CommandUUID, e.Method, e.Path, e.Note} {
		buf = appendBytes(buf, f)
	}
	buf = binary.AppendVarint(buf, int64(e.Status))
	switch {
	case r.requestResult != 0:
		buf = append(buf, bodyPointer)
		buf = binary.AppendUvarint(buf, uint64(r.requestResult))
	case e.Request == nil:
		buf = append(buf, bodyNone)
	default:
		buf = append(buf, bodyInline)
		buf = appendBytes(buf, e.Request)
	}
	switch {
	case r.responseCommand != "":
		buf = append(buf, bodyPointer)
		buf = appendBytes(buf, r.responseCommand)
	case e.Response == nil:
		buf = append(buf, bodyNone)
	default:
		buf = append(buf, bodyInline)
		buf = appendBytes(buf, e.Response)
	}
	buf = binary.AppendUvarint(buf, uint64(head))
	buf = binary.AppendUvarint(buf, uint64(shared))
	switch rest := storedSignature(e.Signature[shared:]).(type) {
	case []byte:
		buf = append(buf, 1)
		buf = appendBytes(buf, rest)
	case string:
		buf = append(buf, 0)
		buf = appendBytes(buf, rest)
	}
	return buf
}

// appendBytes appends a string or bytes: its uvarint length, then it.
func appendBytes[T string | []byte](buf []byte, v T) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(v)))
	return append(buf, v...)
}

// blockEntry is an entry decoded from a block, its references not yet
// followed.
type blockEntry struct {
	e store.TranscriptEntry
	// requestResult, responseCommand: what the body is, when it is a
	// reference (the body itself is then nil).
	requestResult   int64
	responseCommand string
	head            int64
	shared          int
	rest            any // []byte (DER) or string
}

var errBadBlock = errors.New("sqlite: a transcript block is damaged")

// blockReader decodes one block; the first error sticks.
type blockReader struct {
	b   []byte
	err error
}

func (r *blockReader) fail() {
	if r.err == nil {
		r.err = errBadBlock
	}
	r.b = nil
}

func (r *blockReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint reads what binary.AppendVarint wrote: a zig-zag uvarint.
func (r *blockReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *blockReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *blockReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *blockReader) string() string { return string(r.bytes()) }

// decodeBlock decodes the entries of the block whose ID (first Seq) is id,
// of enrollment enrollmentID.
func decodeBlock(id int64, enrollmentID string, data []byte) ([]blockEntry, error) {
	r := &blockReader{b: data}
	if r.byte() != blockFormat {
		return nil, fmt.Errorf("%w: block %d is not of format %d", errBadBlock, id, blockFormat)
	}
	n := r.uvarint()
	// Every entry takes sixteen bytes at least: a count beyond the bytes
	// there are is damage (and no allocation is made for it).
	if n == 0 || n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: block %d claims %d entries in %d bytes", errBadBlock, id, n, len(data))
	}
	out := make([]blockEntry, n)
	seq := id
	for i := range out {
		b := &out[i]
		e := &b.e
		e.EnrollmentID = enrollmentID
		d := r.uvarint()
		if d > 1<<62 {
			r.fail()
		}
		seq += int64(d)
		e.Seq = seq
		if r.byte() == 1 {
			e.Time = fromNanos(sql.NullInt64{Int64: r.varint(), Valid: true})
		}
		for _, f := range [...]*string{&e.RequestID, &e.Kind, &e.MessageType, &e.CommandUUID, &e.Method, &e.Path, &e.Note} {
			*f = r.string()
		}
		e.Status = int(r.varint())
		switch r.byte() {
		case bodyNone:
		case bodyInline:
			e.Request = r.bytes()
		case bodyPointer:
			b.requestResult = int64(r.uvarint())
		default:
			r.fail()
		}
		switch r.byte() {
		case bodyNone:
		case bodyInline:
			e.Response = r.bytes()
		case bodyPointer:
			b.responseCommand = r.string()
		default:
			r.fail()
		}
		b.head = int64(r.uvarint())
		b.shared = int(r.uvarint())
		switch r.byte() {
		case 0:
			b.rest = r.string()
		case 1:
			b.rest = r.bytes()
		default:
			r.fail()
		}
		if r.err != nil {
			return nil, fmt.Errorf("%w: block %d, entry %d", errBadBlock, id, i)
		}
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: block %d has %d bytes after its entries", errBadBlock, id, len(r.b))
	}
	return out, nil
}

const (
	// An enrollment's blocks, from the first that holds a Seq after ?2.
	selectBlocksOfEnrollment = `SELECT b.id, b.entries FROM transcript_blocks b
		WHERE b.source = (SELECT id FROM transcript_sources WHERE enrollment_id = ?1) AND b.last_seq > ?2
		ORDER BY b.last_seq`
	// Every block from the first of the write that holds the last block
	// starting at or before ?1: the blocks of one write interleave in Seq,
	// of different writes never, so every entry after ?1 is in that write
	// or in a block starting after ?1 (blocks.go, writeBlocks).
	selectBlocksAfter = `SELECT b.id, b.flush, s.enrollment_id, b.entries
		FROM transcript_blocks b JOIN transcript_sources s ON s.id = b.source
		WHERE b.id >= COALESCE((SELECT flush FROM transcript_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1), 0)
		ORDER BY b.id`
)

// blockEntries reads the entries with Seq > afterSeq from the blocks, in
// Seq order, at most limit (< 0: no limit), of enrollmentID or, if it is
// empty, of every enrollment; their references not yet followed.
func blockEntries(ctx context.Context, tx *sql.Tx, enrollmentID string, afterSeq int64, limit int) ([]blockEntry, error) {
	var out []blockEntry
	full := func() bool { return limit >= 0 && len(out) >= limit }
	if enrollmentID != "" {
		rows, err := tx.QueryContext(ctx, selectBlocksOfEnrollment, enrollmentID, afterSeq)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() && !full() {
			var id int64
			var data []byte
			if err := rows.Scan(&id, &data); err != nil {
				return nil, err
			}
			entries, err := decodeBlock(id, enrollmentID, data)
			if err != nil {
				return nil, err
			}
			for _, b := range entries {
				if b.e.Seq > afterSeq && !full() {
					out = append(out, b)
				}
			}
		}
		return out, rows.Err()
	}
	rows, err := tx.QueryContext(ctx, selectBlocksAfter, afterSeq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// One write's entries are gathered, then sorted into place.
	var write []blockEntry
	writeFlush := int64(-1)
	settle := func() {
		slices.SortFunc(write, func(a, b blockEntry) int { return cmp.Compare(a.e.Seq, b.e.Seq) })
		for _, b := range write {
			if !full() {
				out = append(out, b)
			}
		}
		write = write[:0]
	}
	for rows.Next() {
		var id, flush int64
		var enrollment string
		var data []byte
		if err := rows.Scan(&id, &flush, &enrollment, &data); err != nil {
			return nil, err
		}
		if flush != writeFlush {
			settle()
			if full() {
				break
			}
			writeFlush = flush
		}
		entries, err := decodeBlock(id, enrollment, data)
		if err != nil {
			return nil, err
		}
		for _, b := range entries {
			if b.e.Seq > afterSeq {
				write = append(write, b)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	settle()
	return out, nil
}

// resolveBlockEntries follows the entries' references — results, commands,
// signature heads — in tx, and returns the entries whole. Each lookup is
// prepared once per read, on first need.
func resolveBlockEntries(ctx context.Context, tx *sql.Tx, in []blockEntry) ([]*store.TranscriptEntry, error) {
	lookups := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range lookups {
			st.Close()
		}
	}()
	// lookup reads one column of the row named by key into dst; a
	// reference that names nothing leaves dst as it is (no body, as 0005's
	// rows read).
	lookup := func(query string, key, dst any) error {
		st := lookups[query]
		if st == nil {
			var err error
			if st, err = tx.PrepareContext(ctx, query); err != nil {
				return err
			}
			lookups[query] = st
		}
		if err := st.QueryRowContext(ctx, key).Scan(dst); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return nil
	}
	heads := map[int64]string{}
	out := make([]*store.TranscriptEntry, len(in))
	for i := range in {
		b := &in[i]
		e := &b.e
		if b.requestResult != 0 {
			if err := lookup("SELECT result FROM results WHERE id = ?", b.requestResult, &e.Request); err != nil {
				return nil, err
			}
		}
		if b.responseCommand != "" {
			if err := lookup("SELECT raw FROM commands WHERE uuid = ?", b.responseCommand, &e.Response); err != nil {
				return nil, err
			}
		}
		head := ""
		if b.head != 0 {
			h, ok := heads[b.head]
			if !ok {
				if err := lookup("SELECT head FROM transcript_heads WHERE id = ?", b.head, &h); err != nil {
					return nil, err
				}
				heads[b.head] = h
			}
			head = h
		}
		var err error
		if e.Signature, err = joinSignature(e.Seq, head, b.shared, b.rest); err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}
