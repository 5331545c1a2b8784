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

func noCommand(id string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "no command queued for %s", id)
}

func notFoundCommand(uuid string) error {
	return httperr.Wrap(http.StatusNotFound, store.ErrNotFound, "command %s", uuid)
}
