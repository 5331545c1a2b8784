// Package memory is a store.Store kept in process memory, for tests and for
// the in-process harness: fast, dependency-free, and lost at exit.
//
// One mutex guards everything, which is plenty for a test server and keeps
// every operation trivially atomic. Byte slices and records are copied on the
// way in and out, so callers can never alias (and race on) internal state.
package memory

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu sync.RWMutex

	enrollments map[string]*store.Enrollment
	// byCert maps a certificate hash to the IDs of the records carrying it
	// (normally one).
	byCert map[string]map[string]struct{}

	commands map[string]*command
	// queues holds, per enrollment, its unanswered items in FIFO order, so
	// NextCommand looks only at that enrollment's open commands.
	queues map[string][]*item

	// transcript holds the latest entries, at most transcriptLimit bytes
	// of them: a long load test must not grow the server without end
	// (transcript.go).
	transcript      *transcriptLog
	transcriptLimit int
	// lastSeq is never reset, so Seq keeps increasing across Reset.
	lastSeq int64

	challenges map[string]time.Time

	// documents holds, per kind, the documents by ID.
	documents map[string]map[string]*store.Document
}

// command is an enqueued command and its item per enrollment (queued or answered).
type command struct {
	cmd   store.Command
	items map[string]*item
}

// item is one command for one enrollment.
type item struct {
	cmd       *command
	enrollID  string
	status    string
	result    []byte
	createdAt time.Time
	updatedAt time.Time
}

var _ store.Store = (*Store)(nil)

// DefaultTranscriptLimit is how many bytes of transcript (bodies,
// signatures and notes, plus a little for each entry) a memory store keeps
// before it forgets its oldest entries.
const DefaultTranscriptLimit = 64 << 20

// Option configures New.
type Option func(*Store)

// WithTranscriptLimit keeps at most n bytes of transcript (n < 1: the
// default); the oldest entries go first.
func WithTranscriptLimit(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.transcriptLimit = n
		}
	}
}

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{transcriptLimit: DefaultTranscriptLimit}
	for _, o := range opts {
		o(s)
	}
	s.reset()
	return s
}

func (s *Store) reset() {
	s.enrollments = map[string]*store.Enrollment{}
	s.byCert = map[string]map[string]struct{}{}
	s.commands = map[string]*command{}
	s.queues = map[string][]*item{}
	s.transcript = newTranscriptLog(s.transcriptLimit)
	s.challenges = map[string]time.Time{}
	s.documents = map[string]map[string]*store.Document{}
}

// --- enrollments ----------------------------------------------------------

// EnrollmentBinding reads what the device endpoints check on every
// request, without copying the record.
func (s *Store) EnrollmentBinding(ctx context.Context, id string) (store.Binding, error) {
	if err := ctx.Err(); err != nil {
		return store.Binding{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.enrollments[id]
	if !ok {
		return store.Binding{}, store.EnrollmentNotFound(id)
	}
	return store.Binding{ID: e.ID, CertHash: e.CertHash, CheckedOut: e.CheckedOut}, nil
}

// PutEnrollment creates or replaces the record with e.ID.
func (s *Store) PutEnrollment(ctx context.Context, e *store.Enrollment) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e == nil || e.ID == "" {
		return httperr.New(http.StatusBadRequest, "enrollment record without an ID")
	}
	c := cloneEnrollment(e)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.enrollments[c.ID]; ok && old.CertHash != "" {
		ids := s.byCert[old.CertHash]
		delete(ids, old.ID)
		if len(ids) == 0 {
			delete(s.byCert, old.CertHash)
		}
	}
	s.enrollments[c.ID] = c
	if c.CertHash != "" {
		if s.byCert[c.CertHash] == nil {
			s.byCert[c.CertHash] = map[string]struct{}{}
		}
		s.byCert[c.CertHash][c.ID] = struct{}{}
	}
	return nil
}

// GetEnrollment returns the record or ErrNotFound.
func (s *Store) GetEnrollment(ctx context.Context, id string) (*store.Enrollment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.enrollments[id]
	if !ok {
		return nil, store.EnrollmentNotFound(id)
	}
	return cloneEnrollment(e), nil
}

// ListEnrollments returns every record, ordered by ID.
func (s *Store) ListEnrollments(ctx context.Context) ([]*store.Enrollment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*store.Enrollment, 0, len(s.enrollments))
	for _, e := range s.enrollments {
		out = append(out, cloneEnrollment(e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// EnrollmentByCertHash returns the record bound to the certificate hash, or
// ErrNotFound. Should several carry it, the most recently authenticated wins
// (then the lowest ID), the same rule as the SQLite store.
func (s *Store) EnrollmentByCertHash(ctx context.Context, hash string) (*store.Enrollment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *store.Enrollment
	if hash != "" {
		for id := range s.byCert[hash] {
			e := s.enrollments[id]
			if best == nil || e.AuthenticatedAt.After(best.AuthenticatedAt) ||
				(e.AuthenticatedAt.Equal(best.AuthenticatedAt) && e.ID < best.ID) {
				best = e
			}
		}
	}
	if best == nil {
		return nil, httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "no enrollment bound to certificate %s", hash)
	}
	return cloneEnrollment(best), nil
}

// TouchEnrollment sets LastSeen.
func (s *Store) TouchEnrollment(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enrollments[id]
	if !ok {
		return store.EnrollmentNotFound(id)
	}
	e.LastSeen = at.UTC()
	return nil
}

// --- queue ----------------------------------------------------------------

// Enqueue adds cmd to the end of each enrollment's queue, all or nothing.
// Every enrollment must exist (404 otherwise); a UUID already used is a 409.
func (s *Store) Enqueue(ctx context.Context, cmd *store.Command, enrollmentIDs ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.ValidateEnqueue(cmd, enrollmentIDs); err != nil {
		return err
	}
	c := &command{cmd: *cmd, items: make(map[string]*item, len(enrollmentIDs))}
	c.cmd.Raw = bytes.Clone(cmd.Raw)
	c.cmd.CreatedAt = createdAt(cmd.CreatedAt)

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.commands[cmd.UUID]; dup {
		return store.DuplicateCommand(cmd.UUID)
	}
	for _, id := range enrollmentIDs {
		if _, ok := s.enrollments[id]; !ok {
			return store.UnknownEnrollment(id)
		}
	}
	for _, id := range enrollmentIDs {
		if _, seen := c.items[id]; seen {
			continue
		}
		it := &item{cmd: c, enrollID: id, status: store.CommandPending, createdAt: c.cmd.CreatedAt, updatedAt: c.cmd.CreatedAt}
		c.items[id] = it
		s.queues[id] = append(s.queues[id], it)
	}
	s.commands[cmd.UUID] = c
	return nil
}

// NextCommand returns the oldest command for id that is Pending, or also
// NotNow when skipNotNow is false; ErrNotFound when there is none.
func (s *Store) NextCommand(ctx context.Context, id string, skipNotNow bool) (*store.QueueItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, it := range s.queues[id] {
		if it.status == store.CommandPending || !skipNotNow {
			return it.export(), nil
		}
	}
	return nil, errQueueEmpty
}

// errQueueEmpty is NextCommand's answer for an empty queue — most device
// requests get it, so it is made once.
var errQueueEmpty = httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "no command queued for this enrollment")

// SaveResult records a device's answer. An answer to a command that is not
// queued for id (never was, was cleared, or was already answered finally) is
// ErrNotFound and changes nothing: the first final answer stands.
func (s *Store) SaveResult(ctx context.Context, id, commandUUID, status string, raw []byte, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.ValidateResultStatus(status); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[commandUUID]
	if !ok {
		return store.NotQueued(id, commandUUID)
	}
	it, ok := c.items[id]
	if !ok || store.IsFinal(it.status) {
		return store.NotQueued(id, commandUUID)
	}
	it.status = status
	it.result = bytes.Clone(raw)
	it.updatedAt = at.UTC()
	if store.IsFinal(status) {
		s.queues[id] = slices.DeleteFunc(s.queues[id], func(x *item) bool { return x == it })
		if len(s.queues[id]) == 0 {
			delete(s.queues, id)
		}
	}
	return nil
}

// QueueItems lists the commands for id that have no final answer yet, oldest first.
func (s *Store) QueueItems(ctx context.Context, id string) ([]*store.QueueItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	q := s.queues[id]
	out := make([]*store.QueueItem, len(q))
	for i, it := range q {
		out[i] = it.export()
	}
	return out, nil
}

// CommandItems lists every enrollment's item for one command, ordered by
// enrollment ID; ErrNotFound if no such command.
func (s *Store) CommandItems(ctx context.Context, commandUUID string) ([]*store.QueueItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.commands[commandUUID]
	if !ok {
		return nil, httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "command %s", commandUUID)
	}
	out := make([]*store.QueueItem, 0, len(c.items))
	for _, it := range c.items {
		out = append(out, it.export())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EnrollmentID < out[j].EnrollmentID })
	return out, nil
}

// ClearQueue drops the unanswered commands of id; answered ones stay as history.
func (s *Store) ClearQueue(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.queues[id] {
		delete(it.cmd.items, id)
	}
	delete(s.queues, id)
	return nil
}

func (it *item) export() *store.QueueItem {
	return &store.QueueItem{
		EnrollmentID: it.enrollID,
		CommandUUID:  it.cmd.cmd.UUID,
		RequestType:  it.cmd.cmd.RequestType,
		Status:       it.status,
		CreatedAt:    it.createdAt,
		UpdatedAt:    it.updatedAt,
		Result:       bytes.Clone(it.result),
		Command:      bytes.Clone(it.cmd.cmd.Raw),
	}
}

// --- challenges -----------------------------------------------------------

// PutChallenge stores a one-time challenge valid until expires (replacing
// any earlier one with the same value).
func (s *Store) PutChallenge(ctx context.Context, challenge string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if challenge == "" {
		return httperr.New(http.StatusBadRequest, "empty challenge")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.challenges[challenge] = expires.UTC()
	return nil
}

// ConsumeChallenge deletes the challenge and reports whether it existed and
// was unexpired at now (now before expires).
func (s *Store) ConsumeChallenge(ctx context.Context, challenge string, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.challenges[challenge]
	if !ok {
		return false, nil
	}
	delete(s.challenges, challenge)
	return now.Before(exp), nil
}

// --- lifecycle ------------------------------------------------------------

// Reset deletes all state. Transcript Seq keeps counting from where it was,
// so a client polling with afterSeq does not miss what comes next.
func (s *Store) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	return nil
}

// Close does nothing: there is nothing to release, and the store stays usable.
func (s *Store) Close() error { return nil }

// --- copies and errors ----------------------------------------------------

func cloneEnrollment(e *store.Enrollment) *store.Enrollment {
	c := *e
	c.PushToken = bytes.Clone(e.PushToken)
	c.UnlockToken = bytes.Clone(e.UnlockToken)
	c.BootstrapToken = bytes.Clone(e.BootstrapToken)
	c.CertNotAfter = e.CertNotAfter.UTC()
	c.AuthenticatedAt = e.AuthenticatedAt.UTC()
	c.EnrolledAt = e.EnrolledAt.UTC()
	c.LastSeen = e.LastSeen.UTC()
	return &c
}

func cloneEntry(e *store.TranscriptEntry) *store.TranscriptEntry {
	c := *e
	c.Time = e.Time.UTC()
	c.Request = bytes.Clone(e.Request)
	c.Response = bytes.Clone(e.Response)
	return &c
}

// createdAt is when an enqueued command counts as created: its own
// CreatedAt, or now when it has none.
func createdAt(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t.UTC()
}
