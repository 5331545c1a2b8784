package mdm

import "bytes"

// fastCommandResults decodes the command-endpoint bodies devices send most
// — Idle, and results that carry nothing but string keys (Acknowledged of
// a command without response data, NotNow) — without the reflective XML
// plist decoder, which costs more than the rest of the request's own work.
//
// It accepts only a narrow, canonical shape: printable ASCII, the standard
// prolog and DOCTYPE (each optional), <plist version="1.0">, one <dict> of
// <key>/<string> pairs whose keys are fields of CommandResults, no
// entities, comments, CDATA, empty-element tags or repeated keys. Anything
// else returns ok=false and goes to the full decoder, which also gives
// every refusal its reason. FuzzFastCommandResults holds it to the full
// decoder: whatever it accepts, the full decoder decodes to the same value.
func fastCommandResults(raw []byte) (r *CommandResults, ok bool) {
	for _, c := range raw {
		if (c < 0x20 && c != '\t' && c != '\n') || c > 0x7e {
			return nil, false
		}
	}
	s := fastScanner{b: raw}
	s.space()
	s.literal(`<?xml version="1.0" encoding="UTF-8"?>`)
	s.space()
	s.literal(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`)
	s.space()
	if !s.literal(`<plist version="1.0">`) {
		return nil, false
	}
	s.space()
	if !s.literal("<dict>") {
		return nil, false
	}
	r = new(CommandResults)
	var seen uint16
	for {
		s.space()
		if s.literal("</dict>") {
			break
		}
		key, ok := s.element("key")
		if !ok {
			return nil, false
		}
		s.space()
		value, ok := s.element("string")
		if !ok {
			return nil, false
		}
		field, bit := r.stringField(key)
		if field == nil || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		*field = string(value)
	}
	s.space()
	if !s.literal("</plist>") {
		return nil, false
	}
	s.space()
	if len(s.b) != 0 {
		return nil, false
	}
	return r, true
}

// stringField maps a top-level key to the string field the full decoder
// fills for it (keys match exactly, as in the plist library).
func (r *CommandResults) stringField(key []byte) (*string, uint16) {
	switch string(key) {
	case "Status":
		return &r.Status, 1 << 0
	case "CommandUUID":
		return &r.CommandUUID, 1 << 1
	case "RequestType":
		return &r.RequestType, 1 << 2
	case "UDID":
		return &r.UDID, 1 << 3
	case "UserID":
		return &r.UserID, 1 << 4
	case "UserShortName":
		return &r.UserShortName, 1 << 5
	case "UserLongName":
		return &r.UserLongName, 1 << 6
	case "EnrollmentID":
		return &r.EnrollmentID, 1 << 7
	case "EnrollmentUserID":
		return &r.EnrollmentUserID, 1 << 8
	}
	return nil, 0
}

type fastScanner struct{ b []byte }

func (s *fastScanner) space() {
	for len(s.b) > 0 && (s.b[0] == ' ' || s.b[0] == '\t' || s.b[0] == '\n') {
		s.b = s.b[1:]
	}
}

// literal consumes lit if the input starts with it.
func (s *fastScanner) literal(lit string) bool {
	if len(s.b) < len(lit) || string(s.b[:len(lit)]) != lit {
		return false
	}
	s.b = s.b[len(lit):]
	return true
}

// element consumes <name>text</name> where text has no markup or entity.
func (s *fastScanner) element(name string) ([]byte, bool) {
	if len(s.b) < 2*len(name)+5 || s.b[0] != '<' || string(s.b[1:1+len(name)]) != name || s.b[1+len(name)] != '>' {
		return nil, false
	}
	rest := s.b[2+len(name):]
	end := bytes.IndexByte(rest, '<')
	if end < 0 || bytes.IndexByte(rest[:end], '&') >= 0 || bytes.IndexByte(rest[:end], '>') >= 0 {
		return nil, false
	}
	text := rest[:end]
	rest = rest[end:]
	if len(rest) < len(name)+3 || rest[1] != '/' || string(rest[2:2+len(name)]) != name || rest[2+len(name)] != '>' {
		return nil, false
	}
	s.b = rest[3+len(name):]
	return text, true
}
