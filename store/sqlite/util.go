package sqlite

import (
	"database/sql"
	"math"
	"net/http"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// Times are stored as integer Unix nanoseconds, UTC by definition; the zero
// time is NULL. int64 nanoseconds reach from 1677-09-21 to 2262-04-11.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos converts t for storage. A time outside the representable range is
// an error rather than a silently wrong value.
func nanos(t time.Time) (sql.NullInt64, error) {
	if t.IsZero() {
		return sql.NullInt64{}, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return sql.NullInt64{}, httperr.New(http.StatusBadRequest,
			"time %s is outside what the SQLite store keeps (%s to %s)", t.UTC().Format(time.RFC3339), minTime.UTC().Format(time.DateOnly), maxTime.UTC().Format(time.DateOnly))
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}, nil
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// blob binds b, with nil as NULL.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func badRequest(format string, args ...any) error {
	return httperr.New(http.StatusBadRequest, format, args...)
}

func enrollmentNotFound(id string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "enrollment %q", id)
}

func certNotFound(hash string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "no enrollment bound to certificate %s", hash)
}

func unknownEnrollment(id string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "cannot enqueue for enrollment %q: no such enrollment", id)
}

func duplicateCommand(uuid string) error {
	return httperr.New(http.StatusConflict, "command UUID %s is already used; every command needs a new UUID", uuid)
}

func notQueued(id, uuid string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "command %s is not queued for %s", uuid, id)
}

func noCommand(id string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "no command queued for %s", id)
}

func validateResultStatus(status string) error {
	switch status {
	case store.CommandNotNow, store.CommandAcknowledged, store.CommandError, store.CommandCommandFormatError:
		return nil
	}
	return badRequest("result status %q is not one of NotNow, Acknowledged, Error, CommandFormatError", status)
}

func validateEnqueue(cmd *store.Command, ids []string) error {
	switch {
	case cmd == nil:
		return badRequest("no command to enqueue")
	case cmd.UUID == "":
		return badRequest("the command has no CommandUUID")
	case len(ids) == 0:
		return badRequest("command %s names no enrollment to send it to", cmd.UUID)
	}
	return nil
}

func notFoundCommand(uuid string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "command %s", uuid)
}
