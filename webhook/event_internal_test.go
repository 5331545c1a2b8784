package webhook

import (
	"fmt"
	"testing"
)

// TestURLParams: the query of the recorded check-in URL — an enrollment
// program's ticket — becomes the event's url_params, as MicroMDM sends them.
func TestURLParams(t *testing.T) {
	for path, want := range map[string]map[string]string{
		"/checkin":                 nil,
		"/checkin?":                nil,
		"/checkin?ticket=abc":      {"ticket": "abc"},
		"/checkin?a=1&a=2&b=%20x":  {"a": "1", "b": " x"},
		"/checkin?bad=%zz":         nil,
		"/mdm?ticket=t&x=y&ticket": {"ticket": "t", "x": "y"},
	} {
		got := urlParams(path)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("urlParams(%q) = %v, want %v", path, got, want)
		}
	}
}
