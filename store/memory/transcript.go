package memory

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// The transcript is the one part of the store that every device request
// writes, and it is most of what the store holds. Kept as a record per
// entry — a struct and a copy of each body and signature — it cost a device
// request about a seventh of its server CPU on a load test: four
// allocations a request, a heap the garbage collector had to walk and
// sweep, and fresh pages while the transcript grew. So entries are encoded
// back to back into large byte chunks instead (no pointers, so the
// collector never looks inside), indexed by a slice of small references,
// and decoded into fresh records when read. Entries are still forgotten one
// at a time, oldest first, when the transcript passes its limit; a chunk is
// handed back once its last entry is forgotten, and reused, so memory stays
// flat once the limit is reached.

// chunkSize is the size of a transcript chunk; an entry larger than that
// gets a chunk of its own.
const chunkSize = 256 << 10

// maxSpareChunks is how many emptied chunks are kept for reuse.
const maxSpareChunks = 2

// transcriptLog is the kept transcript. Caller holds the store's mutex.
type transcriptLog struct {
	// chunks holds the encoded entries, oldest first; chunks[0] is chunk
	// number firstChunk.
	chunks     [][]byte
	firstChunk int
	spare      [][]byte
	// refs are the kept entries, in Seq order.
	refs []entryRef
	// bytes is what the kept entries count against limit (entrySize, and
	// each signature head once).
	bytes, limit int
	// by holds, per enrollment ID, the Seqs of its kept entries, in order.
	by map[string][]int64
	// heads holds, per enrollment ID with entries kept, the signature heads
	// its entries refer to; head holds them by ID.
	heads  map[string]*sigHeads
	head   map[uint32]string
	headID uint32
}

// entryRef is where a kept entry is.
type entryRef struct {
	seq   int64
	chunk int // absolute chunk number
	off   int
	n     int
	size  int // what it counts against the limit
}

// sigHeads are the heads an enrollment's kept entries share a prefix of
// (store/signature.go): the current one, and every one it had while it has
// entries kept (counted once each against the limit).
type sigHeads struct {
	current uint32
	ids     []uint32
	counted int
}

func newTranscriptLog(limit int) *transcriptLog {
	return &transcriptLog{limit: limit, by: map[string][]int64{}, heads: map[string]*sigHeads{}, head: map[uint32]string{}}
}

// AppendTranscript stores entries, assigning Seq in order; it sets Seq on
// the caller's entries so the caller knows where they landed.
func (s *Store) AppendTranscript(ctx context.Context, entries ...*store.TranscriptEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, e := range entries {
		if e == nil {
			return fmt.Errorf("store: transcript entry %d is nil", i)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		s.lastSeq++
		e.Seq = s.lastSeq
		s.transcript.append(e)
	}
	s.transcript.forgetOldest()
	return nil
}

// append encodes e (whose Seq is set) at the end of the log.
func (l *transcriptLog) append(e *store.TranscriptEntry) {
	var headID uint32
	rest := e.Signature
	if e.EnrollmentID != "" {
		var shared int
		headID, shared = l.shareSignature(e.EnrollmentID, e.Signature)
		rest = e.Signature[shared:]
		l.by[e.EnrollmentID] = append(l.by[e.EnrollmentID], e.Seq)
	}
	n := encodedSize(e, rest)
	chunk, off := l.reserve(n)
	buf := l.chunks[chunk-l.firstChunk][off:off]
	buf = encodeEntry(buf, e, headID, len(e.Signature)-len(rest), rest)
	l.chunks[chunk-l.firstChunk] = l.chunks[chunk-l.firstChunk][:off+len(buf)]
	size := entrySize(len(e.Request), len(e.Response), len(rest), len(e.Note), len(e.Path))
	l.refs = append(l.refs, entryRef{seq: e.Seq, chunk: chunk, off: off, n: len(buf), size: size})
	l.bytes += size
}

// reserve returns the chunk (its absolute number) and offset where n bytes
// go, starting a chunk when the last one has no room.
func (l *transcriptLog) reserve(n int) (chunk, off int) {
	if last := len(l.chunks) - 1; last >= 0 && cap(l.chunks[last])-len(l.chunks[last]) >= n {
		return l.firstChunk + last, len(l.chunks[last])
	}
	var c []byte
	switch {
	case n > chunkSize:
		c = make([]byte, 0, n)
	case len(l.spare) > 0:
		c = l.spare[len(l.spare)-1][:0]
		l.spare = l.spare[:len(l.spare)-1]
	default:
		c = make([]byte, 0, chunkSize)
	}
	l.chunks = append(l.chunks, c)
	return l.firstChunk + len(l.chunks) - 1, 0
}

// shareSignature returns the head sig shares its prefix with and how many
// bytes of it (0, 0: none), making sig the enrollment's new head when it
// shares too little with the current one.
func (l *transcriptLog) shareSignature(id, sig string) (headID uint32, shared int) {
	if sig == "" {
		return 0, 0
	}
	h := l.heads[id]
	if h != nil {
		if n := store.SharedPrefix(l.head[h.current], sig); n >= store.MinSharedSignature {
			return h.current, n
		}
	} else {
		h = &sigHeads{}
		l.heads[id] = h
	}
	l.headID++
	// A copy: sig may be a header the server would otherwise free with its
	// request.
	l.head[l.headID] = strings.Clone(sig)
	h.current = l.headID
	h.ids = append(h.ids, l.headID)
	h.counted += len(sig)
	l.bytes += len(sig)
	return l.headID, len(sig)
}

// entrySize is what an entry counts against the transcript limit (its
// share of a signature head is counted with the head).
func entrySize(request, response, signature, note, path int) int {
	return request + response + signature + note + path + 256
}

// forgetOldest drops the oldest entries while the transcript is over its
// limit (the newest always stays), and hands back the chunks emptied.
func (l *transcriptLog) forgetOldest() {
	dropped := 0
	for l.bytes > l.limit && len(l.refs)-dropped > 1 {
		r := l.refs[dropped]
		dropped++
		l.bytes -= r.size
		id := l.enrollmentOf(r)
		if id == "" {
			continue
		}
		if seqs := l.by[id]; len(seqs) > 1 {
			l.by[id] = seqs[1:]
			continue
		}
		delete(l.by, id)
		if h := l.heads[id]; h != nil {
			for _, hid := range h.ids {
				delete(l.head, hid)
			}
			l.bytes -= h.counted
			delete(l.heads, id)
		}
	}
	if dropped == 0 {
		return
	}
	l.refs = l.refs[dropped:]
	// Shift the refs down now and then, so the slice does not creep
	// through memory.
	if cap(l.refs) > 1024 && len(l.refs) < cap(l.refs)/4 {
		l.refs = slices.Clone(l.refs)
	}
	for len(l.chunks) > 1 && l.firstChunk < l.refs[0].chunk {
		if c := l.chunks[0]; cap(c) == chunkSize && len(l.spare) < maxSpareChunks {
			l.spare = append(l.spare, c[:0])
		}
		l.chunks[0] = nil
		l.chunks = l.chunks[1:]
		l.firstChunk++
	}
}

// bytesOf is the encoding of r.
func (l *transcriptLog) bytesOf(r entryRef) []byte {
	return l.chunks[r.chunk-l.firstChunk][r.off : r.off+r.n]
}

// enrollmentOf is the enrollment ID of r, without decoding the rest.
func (l *transcriptLog) enrollmentOf(r entryRef) string {
	d := decoder{b: l.bytesOf(r)}
	d.skipFixed()
	b, _ := d.bytes()
	return string(b)
}

// refBySeq finds the kept entry with seq.
func (l *transcriptLog) refBySeq(seq int64) (entryRef, bool) {
	i, ok := slices.BinarySearchFunc(l.refs, seq, func(r entryRef, seq int64) int { return cmp.Compare(r.seq, seq) })
	if !ok {
		return entryRef{}, false
	}
	return l.refs[i], true
}

// export decodes r into a new entry, as it was appended.
func (l *transcriptLog) export(r entryRef) *store.TranscriptEntry {
	d := decoder{b: l.bytesOf(r)}
	e := &store.TranscriptEntry{Seq: r.seq}
	sec, nsec, status, headID, shared := d.fixed()
	if nsec >= 0 {
		e.Time = time.Unix(sec, nsec).UTC()
	}
	e.Status = status
	fields := [...]*string{&e.EnrollmentID, &e.RequestID, &e.Kind, &e.MessageType, &e.CommandUUID, &e.Method, &e.Path, &e.Note}
	for _, f := range fields {
		b, _ := d.bytes()
		*f = string(b)
	}
	e.Request = d.clone()
	e.Response = d.clone()
	rest, _ := d.bytes()
	e.Signature = l.head[headID][:shared] + string(rest)
	return e
}

// Transcript returns an enrollment's entries with Seq > afterSeq, oldest
// first, at most limit (0 or less: no limit). The empty ID means every entry.
func (s *Store) Transcript(ctx context.Context, enrollmentID string, afterSeq int64, limit int) ([]*store.TranscriptEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.transcript
	out := []*store.TranscriptEntry{}
	full := func() bool { return limit > 0 && len(out) >= limit }
	if enrollmentID == "" {
		// Entries are in Seq order, so binary search for the start.
		start, _ := slices.BinarySearchFunc(l.refs, afterSeq+1, func(r entryRef, seq int64) int { return cmp.Compare(r.seq, seq) })
		for _, r := range l.refs[start:] {
			if full() {
				break
			}
			out = append(out, l.export(r))
		}
		return out, nil
	}
	seqs := l.by[enrollmentID]
	start, _ := slices.BinarySearch(seqs, afterSeq+1)
	for _, seq := range seqs[start:] {
		if full() {
			break
		}
		if r, ok := l.refBySeq(seq); ok {
			out = append(out, l.export(r))
		}
	}
	return out, nil
}

// An entry's encoding: its time (Unix seconds and nanoseconds; -1
// nanoseconds for the zero time), HTTP status, signature head and how much of it is
// shared, as varints; then each string field, the request, the response
// and the signature's rest, each as a length and its bytes. A length is
// stored plus one, so that a nil body stays nil (0) and an empty one empty.

func encodedSize(e *store.TranscriptEntry, rest string) int {
	n := 5 * binary.MaxVarintLen64
	for _, f := range [...]int{len(e.EnrollmentID), len(e.RequestID), len(e.Kind), len(e.MessageType), len(e.CommandUUID),
		len(e.Method), len(e.Path), len(e.Note), len(e.Request), len(e.Response), len(rest)} {
		n += binary.MaxVarintLen64 + f
	}
	return n
}

func encodeEntry(b []byte, e *store.TranscriptEntry, headID uint32, shared int, rest string) []byte {
	sec, nsec := int64(0), int64(-1) // the zero time
	if !e.Time.IsZero() {
		sec, nsec = e.Time.Unix(), int64(e.Time.Nanosecond())
	}
	b = binary.AppendVarint(b, sec)
	b = binary.AppendVarint(b, nsec)
	b = binary.AppendVarint(b, int64(e.Status))
	b = binary.AppendUvarint(b, uint64(headID))
	b = binary.AppendUvarint(b, uint64(shared))
	for _, f := range [...]string{e.EnrollmentID, e.RequestID, e.Kind, e.MessageType, e.CommandUUID, e.Method, e.Path, e.Note} {
		b = binary.AppendUvarint(b, uint64(len(f))+1)
		b = append(b, f...)
	}
	for _, f := range [...][]byte{e.Request, e.Response} {
		if f == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(f))+1)
		b = append(b, f...)
	}
	b = binary.AppendUvarint(b, uint64(len(rest))+1)
	return append(b, rest...)
}

// decoder reads what encodeEntry wrote (the store wrote it, so it is
// well formed).
type decoder struct{ b []byte }

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed() (sec, nsec int64, status int, headID uint32, shared int) {
	sec, nsec, status = d.varint(), d.varint(), int(d.varint())
	headID, shared = uint32(d.uvarint()), int(d.uvarint())
	return
}

func (d *decoder) skipFixed() { d.fixed() }

// bytes returns the next field (aliasing the chunk) and whether it was
// present (not nil).
func (d *decoder) bytes() ([]byte, bool) {
	n := d.uvarint()
	if n == 0 {
		return nil, false
	}
	b := d.b[:n-1]
	d.b = d.b[n-1:]
	return b, true
}

// clone returns a copy of the next field, nil if it was nil.
func (d *decoder) clone() []byte {
	b, ok := d.bytes()
	if !ok {
		return nil
	}
	return append([]byte{}, b...)
}
