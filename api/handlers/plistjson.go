package handlers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/internal/plistguard"
)

var errBinaryPlist = errors.New("a binary property list: only XML property lists are read")

// isBinaryPlist reports whether b is a binary property list.
func isBinaryPlist(b []byte) bool { return bytes.HasPrefix(b, []byte("bplist0")) }

// looksLikePlist reports whether b is worth trying as an XML plist.
func looksLikePlist(b []byte) bool {
	t := bytes.TrimSpace(b)
	return bytes.HasPrefix(t, []byte("<?xml")) || bytes.HasPrefix(t, []byte("<!DOCTYPE plist")) || bytes.HasPrefix(t, []byte("<plist"))
}

// checkXMLPlist refuses binary plists (real devices send XML, and the API
// shows only XML) and any plist whose shape would make the decoder crash or
// allocate without bound (internal/plistguard).
func checkXMLPlist(b []byte) error {
	if isBinaryPlist(b) {
		return errBinaryPlist
	}
	return plistguard.Check(b)
}

// decodePlist decodes a checked XML plist into plain Go values.
func decodePlist(b []byte) (any, error) {
	if err := checkXMLPlist(b); err != nil {
		return nil, err
	}
	var v any
	if err := plist.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("not a valid property list: %w", err)
	}
	return v, nil
}

// plistToJSON converts a plist to JSON: dictionaries become objects, data
// base64 strings, dates RFC 3339 strings in UTC, integers numbers (exact,
// even past 2^53), and non-finite reals the strings "NaN", "+Inf", "-Inf"
// (JSON has no such numbers).
func plistToJSON(b []byte) (json.RawMessage, error) {
	v, err := decodePlist(b)
	if err != nil {
		return nil, err
	}
	return jsonFromValue(v)
}

// jsonFromValue encodes a decoded plist value as JSON (see plistToJSON).
func jsonFromValue(v any) (json.RawMessage, error) {
	out, err := json.Marshal(jsonValue(v))
	if err != nil {
		return nil, fmt.Errorf("converting the property list to JSON: %w", err)
	}
	return out, nil
}

// jsonValue maps a decoded plist value to one encoding/json writes as the
// API promises. Recursion is bounded by checkXMLPlist's depth limit.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case float64:
		return finite(x)
	case float32:
		return finite(float64(x))
	case string:
		if !utf8.ValidString(x) {
			return string([]rune(x)) // replace invalid bytes, as JSON must
		}
		return x
	}
	return v
}

func finite(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}
