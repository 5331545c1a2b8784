package device

import (
	"strings"
	"testing"
)

func TestParseAuthenticate(t *testing.T) {
	for h, want := range map[string][2]string{
		`Bearer method="apple-as-web", url="https://h/signin"`:        {"apple-as-web", "https://h/signin"},
		`bearer url="https://h/x?a=1,b", method="apple-as-web"`:       {"apple-as-web", "https://h/x?a=1,b"},
		`Bearer method=apple-as-web, url=https://h/s`:                 {"apple-as-web", "https://h/s"},
		`Bearer method="apple-oauth2", authorization-url="https://a"`: {"apple-oauth2", ""},
	} {
		m, u, ok := ParseAuthenticate(h)
		if !ok || m != want[0] || u != want[1] {
			t.Errorf("ParseAuthenticate(%q) = %q %q %v", h, m, u, ok)
		}
	}
	for _, h := range []string{"", "Basic realm=x", `Bearer method="unterminated`, `Bearer method="a" url="b"`, "Bearer =x", "Bearer"} {
		if _, _, ok := ParseAuthenticate(h); ok {
			t.Errorf("ParseAuthenticate(%q) accepted", h)
		}
	}
}

// FuzzParseAuthenticate: any WWW-Authenticate value parses or is refused,
// never panics, and an accepted one has a method.
func FuzzParseAuthenticate(f *testing.F) {
	for _, s := range []string{`Bearer method="apple-as-web", url="https://h/signin"`, `Bearer method=x`, `Bearer a="\"q\""`, `Bearer method="`, "Basic x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		m, u, ok := ParseAuthenticate(h)
		if ok && m == "" {
			t.Fatalf("accepted %q without a method", h)
		}
		if !ok && (m != "" || u != "") && !strings.EqualFold(strings.Fields(h + " x")[0], "Bearer") {
			t.Fatalf("refused %q but returned %q %q", h, m, u)
		}
	})
}
