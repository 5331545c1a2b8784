package device

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// An activation's Predicate is an NSPredicate format string (Apple's
// schema points at the Predicate Programming Guide) in which
// @status(<status item>) stands for the value of one of the device's
// status items and @property(<name>) for a value a
// com.apple.management.properties declaration set. The virtual device
// evaluates the part of the format such a predicate uses:
//
//   - comparisons ==, =, !=, <>, <, <=, =<, >, >=, =>, BEGINSWITH,
//     ENDSWITH, CONTAINS, LIKE (* and ?), MATCHES (a regular expression over
//     the whole string) and IN (a {list} or a string), with the [c] and
//     [d] modifiers ([d] is accepted and ignored);
//   - ANY (or SOME), ALL and NONE before a comparison whose left side is a
//     list;
//   - AND/&&, OR/||, NOT/!, parentheses, TRUEPREDICATE, FALSEPREDICATE;
//   - quoted strings, numbers, TRUE/YES, FALSE/NO, NULL/NIL, {lists}.
//
// Two strings compare as strings and two numbers as numbers. A string and
// a number compare by their text ("1" == 1 is true), and a Boolean equals
// only a Boolean: that is mockmdm's rule for mixed types, which
// NSPredicate may not share. A status item or property the device does not
// have is null, which equals only null; ANY over it is false, ALL and
// NONE true, as over an empty list (a single value counts as a list of
// one). Anything else (a bare key path, @key, SUBQUERY, other functions)
// is a parse error, which the device reports as Apple's
// Error.UnableToParsePredicate.

// predicateEnv is what a predicate reads: the status items and the
// management properties, each by dotted key path.
type predicateEnv struct {
	status, properties map[string]any
}

// predicate is a parsed Predicate.
type predicate interface {
	eval(env *predicateEnv) bool
}

type (
	constPred bool
	notPred   struct{ p predicate }
	andPred   struct{ l, r predicate }
	orPred    struct{ l, r predicate }
	cmpPred   struct {
		op string
		// aggregate is ANY, ALL or NONE ("" for none).
		aggregate  string
		l, r       operand
		ci         bool
		likeRegexp *regexp.Regexp // LIKE and MATCHES, compiled once
	}
)

// operand is a literal, @status(item) or @property(name).
type operand struct {
	fn    string // "status" or "property"; "" for a literal
	path  string // the key path fn reads
	value any    // a literal: string, float64, bool, nil or []any
}

func (o operand) resolve(env *predicateEnv) any {
	switch o.fn {
	case "status":
		return env.status[o.path]
	case "property":
		return env.properties[o.path]
	}
	return o.value
}

func (p constPred) eval(*predicateEnv) bool { return bool(p) }
func (p notPred) eval(e *predicateEnv) bool { return !p.p.eval(e) }
func (p andPred) eval(e *predicateEnv) bool { return p.l.eval(e) && p.r.eval(e) }
func (p orPred) eval(e *predicateEnv) bool  { return p.l.eval(e) || p.r.eval(e) }
func (p cmpPred) eval(e *predicateEnv) bool {
	l, r := p.l.resolve(e), p.r.resolve(e)
	if p.aggregate == "" {
		return p.compare(l, r)
	}
	list, ok := l.([]any)
	if !ok {
		if l == nil {
			list = nil
		} else {
			list = []any{l}
		}
	}
	for _, v := range list {
		if p.compare(v, r) != (p.aggregate == "ALL") {
			return p.aggregate == "ANY"
		}
	}
	return p.aggregate != "ANY"
}

func numberOf(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

// strings gives two scalars as strings, lower-cased under [c].
func (p cmpPred) strings(a, b any) (x, y string, ok bool) {
	x, okx := text(a)
	y, oky := text(b)
	if p.ci {
		x, y = strings.ToLower(x), strings.ToLower(y)
	}
	return x, y, okx && oky
}

// text is a scalar as a string (numbers in their shortest form).
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func (p cmpPred) compare(a, b any) bool {
	switch p.op {
	case "==", "!=":
		eq := p.equal(a, b)
		return eq == (p.op == "==")
	case "<", "<=", ">", ">=":
		if x, ok := numberOf(a); ok {
			if y, ok := numberOf(b); ok {
				return ordered(p.op, cmp.Compare(x, y))
			}
		}
		x, y, ok := p.strings(a, b)
		if !ok {
			return false
		}
		return ordered(p.op, strings.Compare(x, y))
	case "BEGINSWITH", "ENDSWITH":
		x, y, ok := p.strings(a, b)
		if !ok {
			return false
		}
		if p.op == "BEGINSWITH" {
			return strings.HasPrefix(x, y)
		}
		return strings.HasSuffix(x, y)
	case "CONTAINS":
		if list, ok := a.([]any); ok {
			return p.member(b, list)
		}
		x, y, ok := p.strings(a, b)
		return ok && strings.Contains(x, y)
	case "IN":
		if list, ok := b.([]any); ok {
			return p.member(a, list)
		}
		x, y, ok := p.strings(a, b)
		return ok && strings.Contains(y, x)
	case "LIKE", "MATCHES":
		x, ok := text(a)
		return ok && p.likeRegexp.MatchString(x)
	}
	return false
}

func (p cmpPred) equal(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if x, ok := numberOf(a); ok {
		if y, ok := numberOf(b); ok {
			return x == y
		}
	}
	if x, ok := a.(bool); ok {
		y, ok := b.(bool)
		return ok && x == y
	}
	x, y, ok := p.strings(a, b)
	return ok && x == y
}

func (p cmpPred) member(v any, list []any) bool {
	for _, e := range list {
		if p.equal(v, e) {
			return true
		}
	}
	return false
}

func ordered(op string, c int) bool {
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// parsePredicate parses a Predicate (see the top of this file).
func parsePredicate(src string) (predicate, error) {
	if len(src) > 4096 {
		return nil, fmt.Errorf("the predicate is %d bytes long; the virtual device reads at most 4096", len(src))
	}
	p := &predParser{src: src}
	p.next()
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf("%s follows a complete predicate", p.tok)
	}
	return n, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokNumber
	tokOp
	tokBad
)

type token struct {
	kind tokKind
	text string
	at   int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "the end"
	case tokString:
		return strconv.Quote(t.text)
	case tokBad:
		return t.text
	}
	return fmt.Sprintf("%q", t.text)
}

type predParser struct {
	src string
	pos int
	tok token
}

// maxPredicateDepth bounds nesting, so a hostile predicate cannot exhaust
// the stack.
const maxPredicateDepth = 64

func (p *predParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.tok.at, fmt.Sprintf(format, args...))
}

// next reads the next token into p.tok.
func (p *predParser) next() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.src) {
		p.tok = token{kind: tokEOF, at: start}
		return
	}
	c := p.src[p.pos]
	switch {
	case c == '"' || c == '\'':
		var b strings.Builder
		for p.pos++; p.pos < len(p.src); p.pos++ {
			ch := p.src[p.pos]
			if ch == c {
				p.pos++
				p.tok = token{kind: tokString, text: b.String(), at: start}
				return
			}
			if ch == '\\' && p.pos+1 < len(p.src) {
				p.pos++
				ch = p.src[p.pos]
				switch ch {
				case 'n':
					ch = '\n'
				case 't':
					ch = '\t'
				}
			}
			b.WriteByte(ch)
		}
		p.tok = token{kind: tokBad, text: "an unterminated string", at: start}
	case c >= '0' && c <= '9' || (c == '-' || c == '.') && p.pos+1 < len(p.src) && p.src[p.pos+1] >= '0' && p.src[p.pos+1] <= '9':
		p.pos++
		for p.pos < len(p.src) {
			ch := p.src[p.pos]
			// A sign belongs to the number only right after its exponent's e.
			sign := (ch == '-' || ch == '+') && (p.src[p.pos-1] == 'e' || p.src[p.pos-1] == 'E')
			if strings.IndexByte("0123456789.eE", ch) < 0 && !sign {
				break
			}
			p.pos++
		}
		p.tok = token{kind: tokNumber, text: p.src[start:p.pos], at: start}
	case c == '@' || c == '_' || c < utf8.RuneSelf && unicode.IsLetter(rune(c)):
		p.pos++
		for p.pos < len(p.src) {
			ch := p.src[p.pos]
			if ch == '_' || ch == '.' || ch == '-' || ch >= '0' && ch <= '9' || ch < utf8.RuneSelf && unicode.IsLetter(rune(ch)) {
				p.pos++
				continue
			}
			break
		}
		p.tok = token{kind: tokWord, text: p.src[start:p.pos], at: start}
	default:
		for _, op := range []string{"==", "!=", "<>", "<=", "=<", ">=", "=>", "&&", "||", "=", "<", ">", "!", "(", ")", "{", "}", ",", "[", "]"} {
			if strings.HasPrefix(p.src[p.pos:], op) {
				p.pos += len(op)
				p.tok = token{kind: tokOp, text: op, at: start}
				return
			}
		}
		r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
		p.tok = token{kind: tokBad, text: fmt.Sprintf("the character %q (no predicate operator uses it)", r), at: start}
		p.pos = len(p.src)
	}
}

func (p *predParser) isWord(words ...string) bool {
	if p.tok.kind != tokWord {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(p.tok.text, w) {
			return true
		}
	}
	return false
}

func (p *predParser) isOp(ops ...string) bool {
	if p.tok.kind != tokOp {
		return false
	}
	for _, o := range ops {
		if p.tok.text == o {
			return true
		}
	}
	return false
}

func (p *predParser) or(depth int) (predicate, error) {
	return p.joined(depth, "OR", "||", p.and, func(l, r predicate) predicate { return orPred{l, r} })
}

func (p *predParser) and(depth int) (predicate, error) {
	return p.joined(depth, "AND", "&&", p.not, func(l, r predicate) predicate { return andPred{l, r} })
}

// joined parses operands (each with parse) joined by the word or the
// operator, left to right.
func (p *predParser) joined(depth int, word, op string, parse func(int) (predicate, error), join func(l, r predicate) predicate) (predicate, error) {
	l, err := parse(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord(word) || p.isOp(op) {
		p.next()
		r, err := parse(depth)
		if err != nil {
			return nil, err
		}
		l = join(l, r)
	}
	return l, nil
}

func (p *predParser) not(depth int) (predicate, error) {
	if depth > maxPredicateDepth {
		return nil, p.errorf("the predicate nests deeper than %d", maxPredicateDepth)
	}
	switch {
	case p.isWord("NOT") || p.isOp("!"):
		p.next()
		n, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return notPred{n}, nil
	case p.isOp("("):
		p.next()
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.isOp(")") {
			return nil, p.errorf("expected \")\", found %s", p.tok)
		}
		p.next()
		return n, nil
	case p.isWord("TRUEPREDICATE"):
		p.next()
		return constPred(true), nil
	case p.isWord("FALSEPREDICATE"):
		p.next()
		return constPred(false), nil
	}
	return p.comparison()
}

// comparisonOps maps each spelling to the operator it is.
var comparisonOps = map[string]string{
	"==": "==", "=": "==", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", "=<": "<=", ">": ">", ">=": ">=", "=>": ">=",
	"BEGINSWITH": "BEGINSWITH", "ENDSWITH": "ENDSWITH", "CONTAINS": "CONTAINS", "LIKE": "LIKE", "MATCHES": "MATCHES", "IN": "IN",
}

func (p *predParser) comparison() (predicate, error) {
	aggregate := ""
	if p.isWord("ANY", "SOME", "ALL", "NONE") {
		aggregate = strings.ToUpper(p.tok.text)
		if aggregate == "SOME" {
			aggregate = "ANY"
		}
		p.next()
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	spelled := p.tok.text
	if p.tok.kind == tokWord {
		spelled = strings.ToUpper(spelled)
	}
	op, ok := comparisonOps[spelled]
	if !ok || p.tok.kind != tokWord && p.tok.kind != tokOp {
		return nil, p.errorf("expected a comparison operator (==, !=, <, >, BEGINSWITH, CONTAINS, IN, …), found %s", p.tok)
	}
	p.next()
	c := cmpPred{op: op, l: l, aggregate: aggregate}
	if p.isOp("[") {
		p.next()
		if p.tok.kind != tokWord || strings.Trim(strings.ToLower(p.tok.text), "cdn") != "" {
			return nil, p.errorf("expected the modifiers c, d or cd in [...], found %s", p.tok)
		}
		c.ci = strings.ContainsRune(strings.ToLower(p.tok.text), 'c')
		p.next()
		if !p.isOp("]") {
			return nil, p.errorf("expected \"]\", found %s", p.tok)
		}
		p.next()
	}
	if c.r, err = p.operand(); err != nil {
		return nil, err
	}
	if op == "LIKE" || op == "MATCHES" {
		pattern, ok := c.r.value.(string)
		if c.r.fn != "" || !ok {
			return nil, p.errorf("%s needs a quoted pattern on its right", op)
		}
		expr := pattern
		if op == "LIKE" {
			expr = likeToRegexp(pattern)
		}
		// Compiled alone first, so that a pattern cannot close the group
		// that anchors it to the whole string ("a)|(?:b").
		if _, err := regexp.Compile(expr); err != nil {
			return nil, p.errorf("the %s pattern %q does not compile: %v", op, pattern, err)
		}
		flags := "(?s)"
		if c.ci {
			flags = "(?si)"
		}
		c.likeRegexp = regexp.MustCompile(flags + "^(?:" + expr + ")$")
	}
	return c, nil
}

// likeToRegexp turns a LIKE pattern (* any run, ? one character) into a
// regular expression.
func likeToRegexp(pattern string) string {
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

func (p *predParser) operand() (operand, error) {
	t := p.tok
	switch {
	case t.kind == tokString:
		p.next()
		return operand{value: t.text}, nil
	case t.kind == tokNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) {
			return operand{}, p.errorf("%s is not a number", t)
		}
		p.next()
		return operand{value: f}, nil
	case p.isWord("TRUE", "YES"):
		p.next()
		return operand{value: true}, nil
	case p.isWord("FALSE", "NO"):
		p.next()
		return operand{value: false}, nil
	case p.isWord("NULL", "NIL"):
		p.next()
		return operand{}, nil
	case p.isWord("@status", "@property"):
		fn := strings.ToLower(t.text[1:])
		p.next()
		if !p.isOp("(") {
			return operand{}, p.errorf("expected \"(\" after @%s, found %s", fn, p.tok)
		}
		p.next()
		if p.tok.kind != tokWord || strings.HasPrefix(p.tok.text, "@") {
			what := "a status item such as device.model.family"
			if fn == "property" {
				what = "a property name"
			}
			return operand{}, p.errorf("expected %s in @%s(...), found %s", what, fn, p.tok)
		}
		path := p.tok.text
		p.next()
		if !p.isOp(")") {
			return operand{}, p.errorf("expected \")\" after @%s(%s, found %s", fn, path, p.tok)
		}
		p.next()
		return operand{fn: fn, path: path}, nil
	case p.isOp("{"):
		p.next()
		var list []any
		for !p.isOp("}") {
			e, err := p.operand()
			if err != nil {
				return operand{}, err
			}
			if e.fn != "" {
				return operand{}, p.errorf("a {list} holds literals, not @%s(...)", e.fn)
			}
			if _, nested := e.value.([]any); nested {
				return operand{}, p.errorf("a {list} cannot hold another list")
			}
			list = append(list, e.value)
			if p.isOp(",") {
				p.next()
			} else if !p.isOp("}") {
				return operand{}, p.errorf("expected \",\" or \"}\" in a list, found %s", p.tok)
			}
		}
		p.next()
		return operand{value: list}, nil
	case t.kind == tokBad:
		return operand{}, p.errorf("%s", t.text)
	case t.kind == tokWord:
		return operand{}, p.errorf("%s is not something the device evaluates: give @status(<status item>), @property(<name>) or a literal", t)
	}
	return operand{}, p.errorf("expected @status(...), @property(...) or a literal, found %s", t)
}

// flattenStatus gives every value in a dictionary its dotted key path
// (device.model.family), as @status and @property name them: leaves, and
// lists of scalars, which ANY, ALL and NONE range over.
func flattenStatus(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		switch x := v.(type) {
		case int:
			out[prefix] = float64(x)
		case bool, string, float64:
			out[prefix] = x
		case []any:
			var list []any
			for _, e := range x {
				switch y := e.(type) {
				case bool, string, float64:
					list = append(list, y)
				case int:
					list = append(list, float64(y))
				}
			}
			out[prefix] = list
		}
		return
	}
	for k, e := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		flattenStatus(key, e, out)
	}
}
