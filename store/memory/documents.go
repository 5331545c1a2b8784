package memory

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/internal/httperr"
	"github.com/mockmdm/mockmdm/store"
)

// PutDocument creates or replaces the document kind/id.
func (s *Store) PutDocument(_ context.Context, kind, id string, data []byte) error {
	if kind == "" || id == "" {
		return httperr.New(http.StatusBadRequest, "document without a kind or an ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.documents[kind] == nil {
		s.documents[kind] = map[string]*store.Document{}
	}
	s.documents[kind][id] = &store.Document{Kind: kind, ID: id, Data: append([]byte(nil), data...), UpdatedAt: time.Now().UTC()}
	return nil
}

// GetDocument returns the document's data or ErrNotFound.
func (s *Store) GetDocument(_ context.Context, kind, id string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.documents[kind][id]
	if !ok {
		return nil, store.DocumentNotFound(kind, id)
	}
	return append([]byte(nil), d.Data...), nil
}

// ListDocuments returns the documents of one kind, ordered by ID.
func (s *Store) ListDocuments(_ context.Context, kind string) ([]*store.Document, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*store.Document, 0, len(s.documents[kind]))
	for _, d := range s.documents[kind] {
		c := *d
		c.Data = append([]byte(nil), d.Data...)
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *store.Document) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteDocument deletes the document; a missing one is not an error.
func (s *Store) DeleteDocument(_ context.Context, kind, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.documents[kind], id)
	return nil
}
