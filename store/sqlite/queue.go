package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

const (
	// itemResult is an item's result: in the results table since
	// migration 0004, in the queue row before it.
	itemResult = `COALESCE(r.result, q.result)`
	joinResult = `LEFT JOIN results r ON r.id = q.result_id`
	selectItem = `SELECT q.enrollment_id, q.command_uuid, c.request_type, q.status, q.created_at, q.updated_at, ` + itemResult + `, c.raw
		FROM queue q JOIN commands c ON c.uuid = q.command_uuid ` + joinResult
	// openStatus must match the WHERE of the partial index queue_open
	// word for word, or SQLite will not use the index.
	openStatus     = `q.status IN ('Pending', 'NotNow')`
	openStatusBare = `status IN ('Pending', 'NotNow')`
)

func scanItem(sc scanner) (*store.QueueItem, error) {
	var it store.QueueItem
	var created, updated sql.NullInt64
	if err := sc.Scan(&it.EnrollmentID, &it.CommandUUID, &it.RequestType, &it.Status, &created, &updated, &it.Result, &it.Command); err != nil {
		return nil, err
	}
	it.CreatedAt, it.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &it, nil
}

// Enqueue adds cmd to the end of each enrollment's queue in one transaction:
// all or nothing, and durable once it returns. Every enrollment must exist
// (404 otherwise); a UUID already used is a 409. A command without CreatedAt
// is stamped with the current time.
func (s *Store) Enqueue(ctx context.Context, cmd *store.Command, enrollmentIDs ...string) error {
	if err := store.ValidateEnqueue(cmd, enrollmentIDs); err != nil {
		return err
	}
	created := cmd.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	createdN, err := nanos(created)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Through the group writer: committed before it returns (the API
	// answers only then), sharing the commit with what waits there.
	s.hot.enqueuingFor(enrollmentIDs)
	err = s.groupWrite(false, func(x execer) error {
		res, err := x.Exec(s.insertCommand, cmd.UUID, cmd.RequestType, blob(cmd.Raw), createdN)
		if err != nil {
			return fmt.Errorf("sqlite: enqueue %s: %w", cmd.UUID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: enqueue %s: %w", cmd.UUID, err)
		} else if n == 0 {
			return store.DuplicateCommand(cmd.UUID)
		}
		// The command's rowid is its place in every queue it joins.
		seq, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("sqlite: enqueue %s: %w", cmd.UUID, err)
		}
		seen := make(map[string]bool, len(enrollmentIDs))
		for _, id := range enrollmentIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			res, err := x.Exec(s.insertQueueItem, cmd.UUID, seq, createdN, createdN, id)
			if err != nil {
				return fmt.Errorf("sqlite: enqueue %s for %s: %w", cmd.UUID, id, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("sqlite: enqueue %s for %s: %w", cmd.UUID, id, err)
			} else if n == 0 {
				return store.UnknownEnrollment(id)
			}
		}
		return nil
	})
	if err != nil {
		s.hot.enqueueFailed(enrollmentIDs)
		return err
	}
	// One copy for every enrollment's remembered item: soleQueued hands out
	// copies of it, never it.
	at, raw := fromNanos(createdN), bytes.Clone(cmd.Raw)
	s.hot.enqueued(enrollmentIDs, func(id string) *store.QueueItem {
		return &store.QueueItem{EnrollmentID: id, CommandUUID: cmd.UUID, RequestType: cmd.RequestType, Status: store.CommandPending,
			CreatedAt: at, UpdatedAt: at, Command: raw}
	})
	return nil
}

// NextCommand returns the oldest command for id that is Pending, or also
// NotNow when skipNotNow is false; ErrNotFound when there is none.
//
// An enrollment whose queue was found empty is remembered as such until a
// command is enqueued for it (hot.go): the Idle of an idle device costs no
// query.
func (s *Store) NextCommand(ctx context.Context, id string, skipNotNow bool) (*store.QueueItem, error) {
	gen := s.notes.gen.Load()
	it, err := s.nextQueued(ctx, id, skipNotNow)
	if err == nil {
		// The device will be sent it: its transcript entry may say so.
		s.notes.commandSent(id, it.CommandUUID, it.Command, gen)
	}
	return it, err
}

func (s *Store) nextQueued(ctx context.Context, id string, skipNotNow bool) (*store.QueueItem, error) {
	if s.isClosed() {
		return nil, errStoreClosed
	}
	empty, gen := s.hot.queueEmpty(id)
	if empty {
		return nil, noCommand(id)
	}
	// The one command a command cycle's enqueue put on an empty queue.
	if it := s.hot.soleQueued(id); it != nil {
		return it, nil
	}
	// The first two open items: enough to answer, and to know whether the
	// first is the only one (see hot.sole).
	open, err := s.firstOpenItems(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case len(open) == 0:
		s.hot.markEmpty(id, gen)
		return nil, noCommand(id)
	case len(open) == 1:
		s.hot.noteSole(id, open[0].CommandUUID, gen)
	}
	for _, it := range open {
		if it.Status == store.CommandPending || !skipNotNow {
			return it, nil
		}
	}
	if len(open) == 1 {
		return nil, noCommand(id)
	}
	// Both NotNow, and this session skips NotNow: a Pending item may come
	// after them.
	it, err := scanItem(s.nextCommand.QueryRowContext(ctx, id, skipNotNow))
	if errors.Is(err, sql.ErrNoRows) {
		if !skipNotNow { // no Pending and no NotNow item: nothing open at all
			s.hot.markEmpty(id, gen)
		}
		return nil, noCommand(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: next command for %s: %w", id, err)
	}
	return it, nil
}

// SaveResult records a device's answer. An answer to a command that is not
// queued for id (never was, was cleared, or was already answered finally) is
// ErrNotFound and changes nothing: the first final answer stands. It is
// committed before it returns (the device is answered only then).
//
// The result is appended to the results table and the queue row points at
// it (migration 0004 says why); a nil result is NULL, no row.
func (s *Store) SaveResult(ctx context.Context, id, commandUUID, status string, raw []byte, at time.Time) error {
	if err := store.ValidateResultStatus(status); err != nil {
		return err
	}
	n, err := nanos(at)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Through the group writer, so the answer shares its commit with the
	// other devices' answers waiting there (not with the transcript
	// entries, which are held back for a commit of their own); it returns
	// once committed. Should the queue row not be there, the error rolls
	// back the result appended for it.
	gen := s.notes.gen.Load()
	var resultID int64 // of the run that committed: fn may run twice
	err = s.groupWrite(raw == nil, func(x execer) error {
		resultID = 0
		var rid any
		if raw != nil {
			res, err := x.Exec(s.insertResult, raw)
			if err != nil {
				return fmt.Errorf("sqlite: save result of %s for %s: %w", commandUUID, id, err)
			}
			if resultID, err = res.LastInsertId(); err != nil {
				return fmt.Errorf("sqlite: save result of %s for %s: %w", commandUUID, id, err)
			}
			rid = resultID
		}
		res, err := x.Exec(s.saveResult, status, rid, n, id, commandUUID)
		if err != nil {
			return fmt.Errorf("sqlite: save result of %s for %s: %w", commandUUID, id, err)
		}
		if k, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: save result of %s for %s: %w", commandUUID, id, err)
		} else if k == 0 {
			return store.NotQueued(id, commandUUID)
		}
		return nil
	})
	switch {
	case err != nil:
	case store.IsFinal(status):
		s.hot.answeredFinally(id, commandUUID)
		// The device's request is this result: its transcript entry may
		// say so (a final result stays until Reset; see 0004).
		s.notes.resultSaved(id, commandUUID, resultID, raw, gen)
	default:
		s.hot.answered(id, commandUUID)
	}
	return err
}

// firstOpenItems reads id's first two open queue items, oldest first.
func (s *Store) firstOpenItems(ctx context.Context, id string) ([]*store.QueueItem, error) {
	rows, err := s.firstOpen.QueryContext(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: next command for %s: %w", id, err)
	}
	defer rows.Close()
	out := make([]*store.QueueItem, 0, 2)
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: next command for %s: %w", id, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: next command for %s: %w", id, err)
	}
	return out, nil
}

// QueueItems lists the commands for id that have no final answer yet, oldest first.
func (s *Store) QueueItems(ctx context.Context, id string) ([]*store.QueueItem, error) {
	rows, err := s.r.QueryContext(ctx, selectItem+" WHERE q.enrollment_id = ? AND "+openStatus+" ORDER BY q.seq", id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: queue of %s: %w", id, err)
	}
	defer rows.Close()
	out := []*store.QueueItem{}
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: queue of %s: %w", id, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: queue of %s: %w", id, err)
	}
	return out, nil
}

// CommandItems lists every enrollment's item for one command, ordered by
// enrollment ID; ErrNotFound if no such command. A command whose items were
// all cleared still exists and has no items.
func (s *Store) CommandItems(ctx context.Context, commandUUID string) ([]*store.QueueItem, error) {
	// The LEFT JOIN gives one all-NULL item row for a command with no items,
	// and no row at all for an unknown command, in one consistent read.
	rows, err := s.r.QueryContext(ctx, `SELECT q.enrollment_id, c.uuid, c.request_type, q.status, q.created_at, q.updated_at, `+itemResult+`, c.raw
		FROM commands c LEFT JOIN queue q ON q.command_uuid = c.uuid `+joinResult+`
		WHERE c.uuid = ? ORDER BY q.enrollment_id`, commandUUID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items of command %s: %w", commandUUID, err)
	}
	defer rows.Close()
	var out []*store.QueueItem
	for rows.Next() {
		var it store.QueueItem
		var enrollmentID, status sql.NullString
		var created, updated sql.NullInt64
		if err := rows.Scan(&enrollmentID, &it.CommandUUID, &it.RequestType, &status, &created, &updated, &it.Result, &it.Command); err != nil {
			return nil, fmt.Errorf("sqlite: items of command %s: %w", commandUUID, err)
		}
		if out == nil {
			out = []*store.QueueItem{}
		}
		if !enrollmentID.Valid {
			continue
		}
		it.EnrollmentID, it.Status = enrollmentID.String, status.String
		it.CreatedAt, it.UpdatedAt = fromNanos(created), fromNanos(updated)
		out = append(out, &it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: items of command %s: %w", commandUUID, err)
	}
	if out == nil {
		return nil, notFoundCommand(commandUUID)
	}
	return out, nil
}

// ClearQueue drops the unanswered commands of id; answered ones stay as history.
func (s *Store) ClearQueue(ctx context.Context, id string) error {
	_, err := s.w.ExecContext(ctx, "DELETE FROM queue WHERE enrollment_id = ? AND "+openStatusBare, id)
	// Whether or not it committed, the remembered items may be gone.
	s.hot.cleared(id)
	if err != nil {
		return fmt.Errorf("sqlite: clear queue of %s: %w", id, err)
	}
	return nil
}
