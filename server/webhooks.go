package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/webhook"
)

// webhookLog is the body of GET /v1/webhooks.
type webhookLog struct {
	// URLs are the receivers, passwords redacted.
	URLs       []string           `json:"urls"`
	Stats      webhook.Stats      `json:"stats"`
	Deliveries []webhook.Delivery `json:"deliveries"`
}

// serveWebhooks serves GET /v1/webhooks: the receivers, the counters and
// the delivery log (the last webhook.DefaultLogSize deliveries, oldest
// first), so a test driving a mockmdm process can await a delivery.
// ?after_seq=N lists only the deliveries with a greater seq.
func (s *Server) serveWebhooks(w http.ResponseWriter, r *http.Request) {
	var after int64
	if v := r.URL.Query().Get("after_seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, api.ErrorBody{Status: http.StatusBadRequest,
				Error: fmt.Sprintf("after_seq=%q: give a delivery seq, a whole number >= 0", v)})
			return
		}
		after = n
	}
	out := webhookLog{URLs: s.webhook.URLs(), Stats: s.webhook.Stats(), Deliveries: []webhook.Delivery{}}
	for _, d := range s.webhook.Deliveries() {
		if d.Seq > after {
			out.Deliveries = append(out.Deliveries, d)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
