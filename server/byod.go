package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/mockmdm/mockmdm/internal/httpx"
)

// WithDirectory loads an organisation (enroll.LoadConfig: users, groups,
// enrollment type profiles, settings) at start, and again after each
// POST /v1/reset, so a QA team's directory survives resets between tests.
// name is used in error messages (the file name).
func WithDirectory(name string, data []byte) Option {
	return func(s *Server) { s.directoryName, s.directory = name, data }
}

// loadDirectory applies the WithDirectory config, if any.
func (s *Server) loadDirectory(ctx context.Context) error {
	if s.directory == nil {
		return nil
	}
	if err := s.programs.LoadConfig(ctx, s.directoryName, s.directory); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	return nil
}

// resetThenDirectory runs the reset, then re-applies the directory.
func (s *Server) resetThenDirectory(reset http.Handler) http.Handler {
	if s.directory == nil {
		return reset
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ww := httpx.NewStatusWriter(w)
		reset.ServeHTTP(ww, r)
		if st := rec.Status(); st == 0 || st == http.StatusOK {
			if err := s.loadDirectory(r.Context()); err != nil {
				s.log.ErrorContext(r.Context(), "re-applying the directory after reset", "err", err)
			}
		}
	})
}
