package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// PutDocument creates or replaces the document kind/id.
func (s *Store) PutDocument(ctx context.Context, kind, id string, data []byte) error {
	if kind == "" || id == "" {
		return badRequest("document without a kind or an ID")
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO documents (kind, id, data, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
		kind, id, blob(data), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: put document %s/%s: %w", kind, id, err)
	}
	return nil
}

// GetDocument returns the document's data or ErrNotFound.
func (s *Store) GetDocument(ctx context.Context, kind, id string) ([]byte, error) {
	var data []byte
	err := s.r.QueryRowContext(ctx, `SELECT data FROM documents WHERE kind = ? AND id = ?`, kind, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.DocumentNotFound(kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get document %s/%s: %w", kind, id, err)
	}
	return data, nil
}

// ListDocuments returns the documents of one kind, ordered by ID.
func (s *Store) ListDocuments(ctx context.Context, kind string) ([]*store.Document, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, data, updated_at FROM documents WHERE kind = ? ORDER BY id`, kind)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list documents %s: %w", kind, err)
	}
	defer rows.Close()
	out := []*store.Document{}
	for rows.Next() {
		d := &store.Document{Kind: kind}
		var updated int64
		if err := rows.Scan(&d.ID, &d.Data, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: list documents %s: %w", kind, err)
		}
		d.UpdatedAt = time.Unix(0, updated).UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list documents %s: %w", kind, err)
	}
	return out, nil
}

// DeleteDocument deletes the document; a missing one is not an error.
func (s *Store) DeleteDocument(ctx context.Context, kind, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM documents WHERE kind = ? AND id = ?`, kind, id); err != nil {
		return fmt.Errorf("sqlite: delete document %s/%s: %w", kind, id, err)
	}
	return nil
}
