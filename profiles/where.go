package profiles

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// xmlWhere finds where an XML property list the plist decoder refused goes
// wrong — the line and the key path, e.g. "line 12, at PayloadContent[0].
// PayloadVersion" — because the decoder's own errors name neither. It
// walks the document with encoding/xml and checks what the decoder checks:
// well-formed XML, known element names, numbers that parse. "" when it finds
// nothing wrong.
func xmlWhere(content []byte) string {
	type frame struct {
		array bool
		key   string
		index int
	}
	d := xml.NewDecoder(bytes.NewReader(content))
	d.Strict = true
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index)
			} else if f.key != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	at := func(off int64, why string) string {
		line := 1 + bytes.Count(content[:min(int(off), len(content))], []byte("\n"))
		if p := path(); p != "" {
			return fmt.Sprintf("line %d, at %s: %s", line, p, why)
		}
		return fmt.Sprintf("line %d: %s", line, why)
	}
	var text strings.Builder
	for steps := 0; steps < 1<<20; steps++ {
		off := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return at(off, "XML syntax error: "+se.Msg)
			}
			return at(off, err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			text.Reset()
			n := t.Name.Local
			switch n {
			case "plist", "key", "string", "integer", "real", "true", "false", "date", "data", "dict", "array":
			default:
				return at(off, fmt.Sprintf("<%s> is not a property-list element", n))
			}
			// A value inside an array is its next item.
			if k := len(stack); k > 0 && stack[k-1].array && n != "plist" && n != "key" {
				stack[k-1].index++
			}
			if n == "dict" || n == "array" {
				stack = append(stack, frame{array: n == "array", index: -1})
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			s := strings.TrimSpace(text.String())
			switch t.Name.Local {
			case "key":
				if n := len(stack); n > 0 && !stack[n-1].array {
					stack[n-1].key = s
				}
			case "integer":
				if _, err := strconv.ParseInt(s, 0, 64); err != nil {
					if _, err := strconv.ParseUint(s, 0, 64); err != nil {
						return at(off, fmt.Sprintf("<integer> %q is not a whole number", clipText(s)))
					}
				}
			case "real":
				if _, err := strconv.ParseFloat(s, 64); err != nil {
					return at(off, fmt.Sprintf("<real> %q is not a number", clipText(s)))
				}
			case "dict", "array":
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			}
			text.Reset()
		}
	}
	return ""
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
