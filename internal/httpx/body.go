package httpx

import (
	"io"
	"net/http"
)

// ReadBody reads r's body, at most limit bytes (a longer one fails with
// *http.MaxBytesError; w may be nil). A body that states its length is
// read into one buffer of that size: io.ReadAll would start small and grow
// and copy, on the path every device request takes.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > 0 && n <= limit {
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
}
