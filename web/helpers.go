package web

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// quote shows a client's value in a message, bounded and escaped.
func quote(s string) string { return strconv.Quote(truncate(s, 80)) }

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
