package enroll

import (
	"strings"
	"testing"

	"github.com/micromdm/plist"
)

// FuzzParseBearer: any header value gives a token only when it is
// "Bearer" + a token68 of bounded length, and never panics.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc==", "Bearer", "Bearer  x", "Basic dXNlcg==", "Bearer a=b", "Bearer " + strings.Repeat("a", 600), "", "Bearer ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := ParseBearer(h)
		if !ok {
			if tok != "" {
				t.Fatalf("refused %q but returned %q", h, tok)
			}
			return
		}
		if tok == "" || len(tok) > maxTokenLen || strings.ContainsAny(tok, " \t\r\n,\"") {
			t.Fatalf("accepted %q as token %q", h, tok)
		}
		if !strings.HasSuffix(h, tok) {
			t.Fatalf("token %q is not the end of %q", tok, h)
		}
	})
}

// FuzzPortalJSON: the Company Portal's JSON bodies decode or are refused
// with a 400, never a panic or a 5xx.
func FuzzPortalJSON(f *testing.F) {
	for _, s := range []string{`{"upn":"a@b.c","password":"x"}`, `{"ownership":"personal","scope":"work"}`, `{}`, `[]`, `{"upn":1}`, `{"x":1}`, `{"upn":"a"} {}`, ``, `{"enrollment_id":"E","upn":"a@b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Credentials
		var ch Choice
		var rr RegisterRequest
		for _, v := range []any{&c, &ch, &rr} {
			if err := decodeJSON(b, v); err != nil {
				if e, ok := ErrorOf(err); !ok || e.Status != 400 {
					t.Fatalf("decode %q: %v", b, err)
				}
			}
		}
		if _, err := Decide(TypeUserChoice, ch); err != nil {
			if e, ok := ErrorOf(err); !ok || e.Status != 400 {
				t.Fatalf("Decide(%+v): %v", ch, err)
			}
		}
	})
}

// FuzzDecodeMachineInfo: hostile bodies are refused with a 400, never a
// panic; a seed is a real signed MachineInfo.
func FuzzDecodeMachineInfo(f *testing.F) {
	raw, _ := plist.Marshal(map[string]string{"PRODUCT": "iPhone15,2", "VERSION": "22A3354", "OS_VERSION": "18.0"})
	f.Add(signForTest(f, raw))
	f.Add(raw)
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		mi, err := decodeMachineInfo(b)
		if err != nil {
			if e, ok := ErrorOf(err); !ok || e.Status != 400 {
				t.Fatalf("decodeMachineInfo: %v", err)
			}
			return
		}
		if mi.Product == "" || len(mi.Raw) == 0 {
			t.Fatalf("accepted a MachineInfo without PRODUCT: %+v", mi)
		}
	})
}
