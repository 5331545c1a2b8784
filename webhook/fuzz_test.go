package webhook_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/webhook"
)

// FuzzObserve feeds device bytes, recorded as a successful exchange, to
// the event builder: whatever they are, it makes a well-formed event or
// counts a decode error, and never panics.
func FuzzObserve(f *testing.F) {
	f.Add("checkin", authenticatePlist(udid))
	f.Add("command", resultPlist(udid, "c1", "Acknowledged"))
	f.Add("command", resultPlist(udid, "", "Idle"))
	f.Add("checkin", []byte(`<plist><dict><key>MessageType</key><string>TokenUpdate</string><key>EnrollmentID</key><string>E</string></dict></plist>`))
	f.Add("checkin", []byte("<plist><array><array><array></array></array></array></plist>"))
	f.Add("command", []byte("bplist00"))
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		w, err := webhook.New(nil, webhook.WithHistory(1))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.Observe(context.Background(), &store.TranscriptEntry{Kind: kind, Status: 200, Request: body})
		s := w.Stats()
		if s.Events+s.DecodeErrors > 1 {
			t.Fatalf("one entry made %+v", s)
		}
		if s.Events == 1 {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			ev, err := w.Wait(ctx, nil)
			if err != nil {
				if w.Stats().DecodeErrors != 1 {
					t.Fatalf("no event and no decode error: %v", err)
				}
				return
			}
			if (ev.CheckinEvent == nil) == (ev.AcknowledgeEvent == nil) || ev.Topic == "" || ev.EventID == "" {
				t.Fatalf("malformed event %+v", ev)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Fatal(err)
			}
		}
	})
}
