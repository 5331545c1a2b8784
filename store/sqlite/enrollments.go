package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// enrollmentColumns are the enrollments columns in the order that
// enrollmentArgs writes and scanEnrollment reads them.
var enrollmentColumns = []string{
	"id", "type", "device_id",
	"udid", "enrollment_id", "user_id", "user_short_name", "user_long_name", "enrollment_user_id",
	"serial_number", "model", "model_name", "product_name", "device_name", "os_version", "build_version", "imei", "meid",
	"topic", "push_token", "push_magic", "unlock_token", "awaiting_configuration", "bootstrap_token",
	"cert_hash", "cert_not_after", "enrolled", "checked_out",
	"authenticated_at", "enrolled_at", "last_seen", "management",
}

var (
	selectEnrollment = "SELECT " + strings.Join(enrollmentColumns, ", ") + " FROM enrollments"
	upsertEnrollment = func() string {
		var set []string
		for _, c := range enrollmentColumns[1:] {
			set = append(set, c+" = excluded."+c)
		}
		// An upsert, not INSERT OR REPLACE: replace deletes the row first,
		// and the delete would cascade to the enrollment's queue.
		return "INSERT INTO enrollments (" + strings.Join(enrollmentColumns, ", ") + ") VALUES (?" +
			strings.Repeat(", ?", len(enrollmentColumns)-1) + ") ON CONFLICT (id) DO UPDATE SET " + strings.Join(set, ", ")
	}()
)

func enrollmentArgs(e *store.Enrollment) ([]any, error) {
	var times [4]sql.NullInt64
	for i, t := range []time.Time{e.CertNotAfter, e.AuthenticatedAt, e.EnrolledAt, e.LastSeen} {
		n, err := nanos(t)
		if err != nil {
			return nil, err
		}
		times[i] = n
	}
	mgmt, err := json.Marshal(e.Management)
	if err != nil {
		return nil, err
	}
	return []any{
		e.ID, e.Type, e.DeviceID,
		e.UDID, e.EnrollmentID, e.UserID, e.UserShortName, e.UserLongName, e.EnrollmentUserID,
		e.SerialNumber, e.Model, e.ModelName, e.ProductName, e.DeviceName, e.OSVersion, e.BuildVersion, e.IMEI, e.MEID,
		e.Topic, blob(e.PushToken), e.PushMagic, blob(e.UnlockToken), e.AwaitingConfiguration, blob(e.BootstrapToken),
		e.CertHash, times[0], e.Enrolled, e.CheckedOut,
		times[1], times[2], times[3], string(mgmt),
	}, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanEnrollment(sc scanner) (*store.Enrollment, error) {
	var e store.Enrollment
	var certNotAfter, authenticatedAt, enrolledAt, lastSeen sql.NullInt64
	var mgmt string
	err := sc.Scan(
		&e.ID, &e.Type, &e.DeviceID,
		&e.UDID, &e.EnrollmentID, &e.UserID, &e.UserShortName, &e.UserLongName, &e.EnrollmentUserID,
		&e.SerialNumber, &e.Model, &e.ModelName, &e.ProductName, &e.DeviceName, &e.OSVersion, &e.BuildVersion, &e.IMEI, &e.MEID,
		&e.Topic, &e.PushToken, &e.PushMagic, &e.UnlockToken, &e.AwaitingConfiguration, &e.BootstrapToken,
		&e.CertHash, &certNotAfter, &e.Enrolled, &e.CheckedOut,
		&authenticatedAt, &enrolledAt, &lastSeen, &mgmt,
	)
	if err != nil {
		return nil, err
	}
	e.CertNotAfter = fromNanos(certNotAfter)
	e.AuthenticatedAt = fromNanos(authenticatedAt)
	e.EnrolledAt = fromNanos(enrolledAt)
	e.LastSeen = fromNanos(lastSeen)
	if mgmt != "" && mgmt != "{}" {
		if err := json.Unmarshal([]byte(mgmt), &e.Management); err != nil {
			return nil, fmt.Errorf("enrollment %s: management column: %w", e.ID, err)
		}
	}
	return &e, nil
}

// PutEnrollment creates or replaces the record with e.ID. Replacing keeps
// the enrollment's queue and answered commands.
func (s *Store) PutEnrollment(ctx context.Context, e *store.Enrollment) error {
	if e == nil || e.ID == "" {
		return badRequest("enrollment record without an ID")
	}
	args, err := enrollmentArgs(e)
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, upsertEnrollment, args...); err != nil {
		return fmt.Errorf("sqlite: put enrollment %s: %w", e.ID, err)
	}
	s.hot.stored(e)
	return nil
}

// GetEnrollment returns the record or ErrNotFound.
func (s *Store) GetEnrollment(ctx context.Context, id string) (*store.Enrollment, error) {
	if s.isClosed() {
		return nil, errStoreClosed
	}
	cached, gen := s.hot.cached(id)
	if cached != nil {
		return cached, nil
	}
	e, err := scanEnrollment(s.getEnrollment.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.EnrollmentNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get enrollment %s: %w", id, err)
	}
	s.hot.remember(e, gen)
	return e, nil
}

// EnrollmentBinding reads what the device endpoints check on every
// request: from the enrollment cache without copying the record, else
// through GetEnrollment (which caches it).
func (s *Store) EnrollmentBinding(ctx context.Context, id string) (store.Binding, error) {
	if s.isClosed() {
		return store.Binding{}, errStoreClosed
	}
	if b, ok := s.hot.binding(id); ok {
		return b, nil
	}
	e, err := s.GetEnrollment(ctx, id)
	if err != nil {
		return store.Binding{}, err
	}
	return store.Binding{ID: e.ID, CertHash: e.CertHash, CheckedOut: e.CheckedOut}, nil
}

// ListEnrollments returns every record, ordered by ID.
func (s *Store) ListEnrollments(ctx context.Context) ([]*store.Enrollment, error) {
	rows, err := s.r.QueryContext(ctx, selectEnrollment+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list enrollments: %w", err)
	}
	defer rows.Close()
	out := []*store.Enrollment{}
	for rows.Next() {
		e, err := scanEnrollment(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list enrollments: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list enrollments: %w", err)
	}
	s.hot.overlaySeen(out...)
	return out, nil
}

// EnrollmentByCertHash returns the record bound to the certificate hash, or
// ErrNotFound. Should several carry it, the most recently authenticated wins
// (then the lowest ID), the same rule as the memory store.
func (s *Store) EnrollmentByCertHash(ctx context.Context, hash string) (*store.Enrollment, error) {
	if hash == "" {
		return nil, store.CertNotFound(hash)
	}
	e, err := scanEnrollment(s.byCertHash.QueryRowContext(ctx, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.CertNotFound(hash)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment by certificate: %w", err)
	}
	s.hot.overlaySeen(e)
	return e, nil
}

// TouchEnrollment sets LastSeen. Every request touches its enrollment, so
// the time is written behind, with the next commit of held-back writes
// (hot.go): reads
// see it at once, the file a moment later.
func (s *Store) TouchEnrollment(ctx context.Context, id string, at time.Time) error {
	n, err := nanos(at)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.GetEnrollment(ctx, id); err != nil {
		return err
	}
	s.hot.touch(id, n)
	return nil
}
