package store

import (
	"strings"
	"testing"
)

func TestSharedPrefix(t *testing.T) {
	long := strings.Repeat("0123456789", 30)
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 0}, {"abc", "abd", 2}, {"abc", "abc", 3}, {"abc", "abcdef", 3},
		{long, long, len(long)}, {long, long[:130] + "x", 130}, {long[:64] + "y" + long[65:], long, 64}, {long[:63] + "y", long, 63},
	} {
		if got := SharedPrefix(c.a, c.b); got != c.want {
			t.Errorf("SharedPrefix(%q…, %q…) = %d, want %d", c.a[:min(8, len(c.a))], c.b[:min(8, len(c.b))], got, c.want)
		}
	}
}
