package device

import (
	"net/http"
	"testing"
)

type noDoer struct{}

func (noDoer) Do(*http.Request) (*http.Response, error) { return nil, http.ErrHandlerTimeout }

// FuzzLoad feeds the saved-device decoder garbage: it must return an error
// or a device, never panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"model":{"Family":"iPad","ProductName":"iPad13,18","ModelName":"iPad","OSName":"iPadOS"},"hardware":{"UDID":"u","SerialNumber":"s","PushToken":"AAAA"},"enrollment":{"identity_payload_uuid":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("panic on %q: %v", b, p)
			}
		}()
		_, _ = decodeSaved("fuzz.json", b, noDoer{})
	})
}
