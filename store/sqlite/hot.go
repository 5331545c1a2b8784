package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// hot is what the Store remembers between requests so that the work every
// device request repeats costs no query and no extra transaction: the
// enrollment it authenticates against (read through, written through), the
// fact that its queue is empty (the common Idle), and its last-seen time
// (written behind, with the next commit of held-back writes).
//
// It is correct because a Store is the only writer of its file: Open takes
// an exclusive lock on the database (lock_unix.go), so no other process can
// change what is remembered here.
//
// Last-seen times are written behind, as transcript entries are
// (groupcommit.go): a process killed with kill -9 may lose the last second
// of them. Nothing acknowledged depends on them — the command queue and
// results are written through.
type hot struct {
	mu sync.Mutex
	// enrollments caches records by ID; gen counts enrollment writes, so a
	// read that raced a write does not cache what it read.
	enrollments map[string]*store.Enrollment
	gen         uint64
	// empty marks enrollments whose queue has no open item; qgen counts the
	// committed enqueues per enrollment, so a NextCommand that raced one
	// does not mark the queue empty.
	empty map[string]bool
	qgen  map[string]uint64
	// sole remembers, per enrollment, the only open item a NextCommand
	// found and the enqueue generation it read at: once that item gets a
	// final answer the queue is empty, unless an enqueue committed since —
	// so the next connect of a command cycle need not ask the file.
	sole map[string]soleItem
	// enqueuing counts, per enrollment, the enqueues between their
	// submission and enqueued: a command queued on a queue known empty is
	// its sole item only if no other enqueue for it is in flight.
	enqueuing map[string]int
	// seen holds last-seen times not written yet.
	seen map[string]sql.NullInt64
}

// maxCachedEnrollments bounds the enrollment cache; past it the cache
// starts over (a fleet larger than this pays the query again).
const maxCachedEnrollments = 100_000

func newHot() *hot {
	return &hot{
		enrollments: map[string]*store.Enrollment{},
		empty:       map[string]bool{},
		qgen:        map[string]uint64{},
		sole:        map[string]soleItem{},
		enqueuing:   map[string]int{},
		seen:        map[string]sql.NullInt64{},
	}
}

func (h *hot) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.enrollments = map[string]*store.Enrollment{}
	h.gen++
	h.empty = map[string]bool{}
	h.sole = map[string]soleItem{}
	for id := range h.qgen {
		h.qgen[id]++
	}
	h.seen = map[string]sql.NullInt64{}
}

func cloneEnrollment(e *store.Enrollment) *store.Enrollment {
	c := *e
	c.PushToken = cloneBytes(e.PushToken)
	c.UnlockToken = cloneBytes(e.UnlockToken)
	c.BootstrapToken = cloneBytes(e.BootstrapToken)
	return &c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// cached returns a copy of the cached record of id, or nil and the
// generation to pass to remember after reading it from the database.
func (h *hot) cached(id string) (*store.Enrollment, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.enrollments[id]; ok {
		return cloneEnrollment(e), h.gen
	}
	return nil, h.gen
}

// binding is the cached enrollment's binding, without a copy of the record.
func (h *hot) binding(id string) (store.Binding, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.enrollments[id]
	if !ok {
		return store.Binding{}, false
	}
	return store.Binding{ID: e.ID, CertHash: e.CertHash, CheckedOut: e.CheckedOut}, true
}

// remember caches e (read from the database at generation gen) unless an
// enrollment write happened since, and overlays a pending last-seen time.
func (h *hot) remember(e *store.Enrollment, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.overlaySeenLocked(e)
	if h.gen != gen {
		return
	}
	if len(h.enrollments) >= maxCachedEnrollments {
		h.enrollments = map[string]*store.Enrollment{}
	}
	h.enrollments[e.ID] = cloneEnrollment(e)
}

// stored records an enrollment write that committed: the next read goes
// to the file, so it returns the record exactly as stored (times in UTC).
func (h *hot) stored(e *store.Enrollment) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	delete(h.seen, e.ID) // the write carried the record's own last-seen time
	delete(h.enrollments, e.ID)
}

// overlaySeen applies pending last-seen times to records read from the
// database.
func (h *hot) overlaySeen(es ...*store.Enrollment) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range es {
		h.overlaySeenLocked(e)
	}
}

func (h *hot) overlaySeenLocked(e *store.Enrollment) {
	if n, ok := h.seen[e.ID]; ok {
		e.LastSeen = fromNanos(n)
	}
}

// touch records a last-seen time to write behind.
func (h *hot) touch(id string, n sql.NullInt64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[id] = n
	if e, ok := h.enrollments[id]; ok {
		e.LastSeen = fromNanos(n)
	}
}

// takeSeen hands over the pending last-seen times.
func (h *hot) takeSeen() map[string]sql.NullInt64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		return nil
	}
	out := h.seen
	h.seen = map[string]sql.NullInt64{}
	return out
}

// queueEmpty reports whether id's queue is known to be empty, and the
// enqueue generation to pass to markEmpty.
func (h *hot) queueEmpty(id string) (bool, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.empty[id], h.qgen[id]
}

// markEmpty remembers that id's queue had no open item, unless an enqueue
// for it committed since generation gen.
func (h *hot) markEmpty(id string, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.qgen[id] == gen {
		h.empty[id] = true
	}
}

// soleItem is an enrollment's only open queue item as a read found it.
// item, when set, is the whole item, Pending, as an enqueue on a queue
// known empty wrote it: NextCommand answers with it without a query.
type soleItem struct {
	uuid string
	gen  uint64
	item *store.QueueItem
}

// noteSole remembers that a read at generation gen found uuid to be id's
// only open item.
func (h *hot) noteSole(id, uuid string, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sole) >= maxCachedEnrollments {
		h.sole = map[string]soleItem{}
	}
	h.sole[id] = soleItem{uuid: uuid, gen: gen}
}

// answeredFinally records that uuid got a final answer (committed) for id:
// if it was the sole open item a read found, the queue is now empty,
// unless an enqueue committed since that read.
func (h *hot) answeredFinally(id, uuid string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	si, ok := h.sole[id]
	if !ok || si.uuid != uuid {
		return
	}
	delete(h.sole, id)
	if h.qgen[id] == si.gen {
		h.empty[id] = true
	}
}

// enqueuingFor records that an enqueue for ids is about to be submitted;
// enqueued (or enqueueFailed) must follow.
func (h *hot) enqueuingFor(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		h.enqueuing[id]++
	}
}

// enqueueFailed undoes enqueuingFor for an enqueue that did not commit.
func (h *hot) enqueueFailed(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		h.done(id)
	}
}

// done ends one in-flight enqueue for id. Caller holds mu.
func (h *hot) done(id string) {
	if h.enqueuing[id] <= 1 {
		delete(h.enqueuing, id)
	} else {
		h.enqueuing[id]--
	}
}

// enqueued records a committed enqueue for ids. Where the queue was known
// empty and no other enqueue for it was in flight, the command is now its
// sole open item, and item(id) is remembered whole for NextCommand.
func (h *hot) enqueued(ids []string, item func(id string) *store.QueueItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		wasEmpty, alone := h.empty[id], h.enqueuing[id] == 1
		h.done(id)
		h.qgen[id]++
		delete(h.empty, id)
		delete(h.sole, id)
		if wasEmpty && alone && item != nil && len(h.sole) < maxCachedEnrollments {
			it := item(id)
			h.sole[id] = soleItem{uuid: it.CommandUUID, gen: h.qgen[id], item: it}
		}
	}
}

// soleQueued returns a copy of id's sole open item when an enqueue left
// it known, nil otherwise.
func (h *hot) soleQueued(id string) *store.QueueItem {
	h.mu.Lock()
	defer h.mu.Unlock()
	si, ok := h.sole[id]
	if !ok || si.item == nil || si.gen != h.qgen[id] {
		return nil
	}
	it := *si.item
	it.Command = bytes.Clone(si.item.Command)
	return &it
}

// answered records a committed answer that is not final (NotNow): the
// item is still open, no longer as remembered.
func (h *hot) answered(id, uuid string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if si, ok := h.sole[id]; ok && si.uuid == uuid {
		si.item = nil
		h.sole[id] = si
	}
}

// cleared records that id's open items were dropped.
func (h *hot) cleared(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.qgen[id]++
	delete(h.empty, id)
	delete(h.sole, id)
}

// flushSeen writes the pending last-seen times with x (a group's
// transaction, or alone). A record deleted meanwhile is simply not found.
func (s *Store) flushSeen(x execer, seen map[string]sql.NullInt64) error {
	for id, n := range seen {
		if _, err := x.Exec(s.touchEnrollment, n, id); err != nil {
			return fmt.Errorf("sqlite: write last-seen time of %s: %w", id, err)
		}
	}
	return nil
}

// seenFlushEvery is how long a last-seen time may wait when no other
// write comes to carry it.
const seenFlushEvery = time.Second

// seenWithGroup writes the pending last-seen times inside a group's
// transaction, so they cost no commit of their own: every device request
// appends to the transcript, and its last-seen time rides along with the
// held-back transcript entries. It returns
// what it took, for the caller to write alone should the group fail.
func (s *Store) seenWithGroup(x execer) map[string]sql.NullInt64 {
	seen := s.hot.takeSeen()
	if len(seen) > 0 {
		if err := s.flushSeen(x, seen); err != nil {
			s.log.Error("sqlite: last-seen times in a group", "err", err)
		}
	}
	return seen
}

// hasSeen reports whether last-seen times wait to be written.
func (h *hot) hasSeen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen) > 0
}

func (s *Store) writeSeenAlone(seen map[string]sql.NullInt64) {
	if err := s.inTx(context.Background(), func(tx *sql.Tx) error { return s.flushSeen(txExecer{tx}, seen) }); err != nil {
		s.log.Error("sqlite: writing last-seen times", "err", err)
	}
}

// flushSeenNow writes what is pending, alone (Close).
func (s *Store) flushSeenNow() {
	if seen := s.hot.takeSeen(); len(seen) > 0 {
		s.writeSeenAlone(seen)
	}
}

// isClosed reports whether Close has begun: the remembered state must not
// answer for a closed Store.
func (s *Store) isClosed() bool {
	s.opsMu.RLock()
	defer s.opsMu.RUnlock()
	return s.opsClosed
}
