package mdm

import (
	"reflect"
	"strings"
	"time"

	"github.com/micromdm/plist"

	"github.com/mockmdm/mockmdm/mdm/schema"
)

// typeMismatch finds the top-level key whose plist type does not fit the
// struct field it decodes into, so an error can name it: the decoder only
// says which Go type it could not fill.
func typeMismatch(raw []byte, v any) *ParseError {
	var dict map[string]any
	if plist.Unmarshal(raw, &dict) != nil {
		return &ParseError{Reason: "the property list's top level must be a dictionary"}
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var found *ParseError
	walkFields(t, func(name string, ft reflect.Type) {
		val, ok := dict[name]
		if !ok || found != nil {
			return
		}
		if want, got := plistTypeOf(ft), schema.PlistType(val); want != "" && want != got {
			found = &ParseError{Field: name, Reason: "must be " + want + ", got " + got}
		}
	})
	return found
}

func walkFields(t reflect.Type, fn func(name string, ft reflect.Type)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("plist")
		if tag == "-" {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && tag == "" {
			walkFields(f.Type, fn)
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		fn(name, f.Type)
	}
}

var timeType = reflect.TypeOf(time.Time{})

// plistTypeOf names the plist type a Go type decodes from ("" = any).
func plistTypeOf(t reflect.Type) string {
	if t == timeType {
		return "<date>"
	}
	switch t.Kind() {
	case reflect.String:
		return "<string>"
	case reflect.Bool:
		return "<boolean>"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "<integer>"
	case reflect.Float32, reflect.Float64:
		return "<real>"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "<data>"
		}
		return "<array>"
	case reflect.Map, reflect.Struct:
		return "<dictionary>"
	}
	return ""
}
