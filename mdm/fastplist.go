package mdm

import "bytes"

// fastCommandResults decodes the command-endpoint bodies devices send most
// — Idle, NotNow, and Acknowledged results with or without response data —
// without the reflective XML plist decoder, which costs more than the rest
// of the request's own work.
//
// It accepts only a narrow, canonical shape: printable ASCII, the standard
// prolog and DOCTYPE (each optional), <plist version="1.0">, one <dict>
// whose keys are either fields of CommandResults with a <string> value or
// response data made of <dict>, <array>, <string>, plain decimal
// <integer> and <real>, <true/> and <false/> nested at most fastMaxDepth
// deep; no entities, comments, CDATA, attributes, <data>, <date>, an
// ErrorChain or repeated fields. Anything else returns ok=false and goes
// to the full decoder, which also gives every refusal its reason.
// FuzzFastCommandResults holds it to the full decoder: whatever it
// accepts, the full decoder decodes to the same value.
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
		field, bit := r.stringField(key)
		if field == nil {
			// A command's response data (SecurityInfo, QueryResponses…):
			// not kept apart from Raw, only checked to be well formed.
			if string(key) == "ErrorChain" || !s.skipValue(0) {
				return nil, false
			}
			continue
		}
		value, ok := s.element("string")
		if !ok || seen&bit != 0 {
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

// fastMaxDepth bounds the nesting the fast path follows; deeper documents
// go to the full decoder and its nesting guard.
const fastMaxDepth = 16

// skipValue consumes one value of response data (see fastCommandResults
// for the shapes it takes), keeping nothing.
func (s *fastScanner) skipValue(depth int) bool {
	if depth > fastMaxDepth {
		return false
	}
	switch {
	case s.literal("<true/>"), s.literal("<false/>"), s.literal("<dict/>"), s.literal("<array/>"):
		return true
	case s.literal("<dict>"):
		for {
			s.space()
			if s.literal("</dict>") {
				return true
			}
			if _, ok := s.element("key"); !ok {
				return false
			}
			s.space()
			if !s.skipValue(depth + 1) {
				return false
			}
		}
	case s.literal("<array>"):
		for {
			s.space()
			if s.literal("</array>") {
				return true
			}
			if !s.skipValue(depth + 1) {
				return false
			}
		}
	}
	if _, ok := s.element("string"); ok {
		return true
	}
	if t, ok := s.element("integer"); ok {
		return plainDecimal(t, false)
	}
	if t, ok := s.element("real"); ok {
		return plainDecimal(t, true)
	}
	return false
}

// plainDecimal reports whether t is -?[0-9]{1,18}, or with fraction also
// -?[0-9]{1,15}(\.[0-9]{1,15})?: forms every integer and float parser
// takes the same way, with no space, sign, exponent or base to disagree on.
func plainDecimal(t []byte, fraction bool) bool {
	if len(t) > 0 && t[0] == '-' {
		t = t[1:]
	}
	whole, frac, dot := bytes.Cut(t, []byte("."))
	digits := func(b []byte, most int) bool {
		if len(b) == 0 || len(b) > most {
			return false
		}
		for _, c := range b {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	if !fraction {
		return !dot && digits(whole, 18)
	}
	return digits(whole, 15) && (!dot || digits(frac, 15))
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
