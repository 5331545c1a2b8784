// Package plistguard refuses property lists that would make the plist
// decoder crash, hang or allocate without bound, before it sees them.
package plistguard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The plist decoder (github.com/micromdm/plist v0.2.2) trusts what a binary
// property list says about itself: a length field of 2^40 makes it allocate a
// terabyte (a fatal out-of-memory, not a recoverable panic), an array that
// contains itself makes it recurse until the stack limit kills the process,
// an object reference one past the end indexes out of range, and shared
// references are decoded once per reference, so a few hundred bytes can
// expand exponentially. An XML property list nested a million deep costs it
// hundreds of MiB of stack, and every XML element costs it about 350 bytes
// of allocation, so 4 MiB of "<true/>" costs 200 MiB. checkPlist walks the
// input first, without decoding values, and refuses those shapes, so that
// the decoder only ever sees input whose cost is bounded.
//
// Every reader of untrusted plist bytes calls Check first (mdm's decoders,
// the profile parser, the API's result viewer).

const (
	// MaxDepth bounds container nesting. Profiles nest about six deep.
	MaxDepth = 100
	// MaxElements bounds the elements of an XML plist (a dictionary
	// entry is two: key and value). Large real profiles have a few thousand.
	MaxElements = 100_000
	// maxPlistExpansion bounds the estimated decoding cost of a binary
	// plist: bplistNodeCost per object plus the bytes of its strings and
	// data, counted once per reference, since the decoder decodes a shared
	// object again at every reference.
	maxPlistExpansion = 32 << 20
	// bplistNodeCost is about what the decoder allocates per object (97
	// bytes measured for micromdm/plist v0.2.2, rounded up).
	bplistNodeCost = 128
	// maxBinaryObjects is the decoder's own limit on the object count.
	maxBinaryObjects = 4 << 20
)

var errPlistTooDeep = fmt.Errorf("containers are nested more than %d deep", MaxDepth)

// Check returns an error when data is a property list the decoder must
// not be given. Syntax errors the decoder reports itself are left to it.
func Check(data []byte) error {
	if bytes.HasPrefix(data, []byte("bplist0")) {
		return checkBinaryPlist(data)
	}
	return scanXMLShape(data)
}

// scanXMLShape counts elements and their nesting. It replaced a count
// with encoding/xml's tokenizer (kept in the tests as its oracle), which cost as much
// as the decoding it guards: it reads the bytes once, counting every start
// tag ("<name", self-closing or not) and its nesting. It never counts less
// than the tokenizer would (FuzzScanNeverCountsLess): comments, CDATA,
// processing instructions and declarations are skipped as XML defines
// them, quoted attribute values may hold '>', and anything it cannot read
// as a tag counts as one.
func scanXMLShape(data []byte) error {
	switch deep, many := ExceedsXML(data, MaxDepth+1, MaxElements); {
	case deep:
		return errPlistTooDeep
	case many:
		return fmt.Errorf("the XML property list has more than %d elements", MaxElements)
	}
	return nil
}

// ExceedsXML reports whether XML data nests elements more than maxDepth
// deep (the root element counts) or has more than maxElements of them,
// counting as scanXMLShape does — never less than a tokenizer would — for
// a reader with limits of its own (a virtual device reading commands).
func ExceedsXML(data []byte, maxDepth, maxElements int) (deep, many bool) {
	depth, elements := 0, 0
	for i := 0; i < len(data); {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			return false, false
		}
		i += j + 1
		rest := data[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("!--")):
			k := bytes.Index(rest[3:], []byte("-->"))
			if k < 0 {
				return false, false
			}
			i += 3 + k + 3
		case bytes.HasPrefix(rest, []byte("![CDATA[")):
			k := bytes.Index(rest[8:], []byte("]]>"))
			if k < 0 {
				return false, false
			}
			i += 8 + k + 3
		case len(rest) > 0 && rest[0] == '?':
			// A processing instruction: no element, up to "?>".
			k := bytes.Index(rest[1:], []byte("?>"))
			if k < 0 {
				return false, false
			}
			i += 1 + k + 2
		case len(rest) > 0 && rest[0] == '!':
			// A declaration (<!DOCTYPE …>): no element. Skipped as the
			// tokenizer reads it — quoted text and nested brackets
			// included — since a quote inside it must not be taken for an
			// attribute value that hides the tags after it.
			n, ok := directiveEnd(rest[1:])
			if !ok {
				return false, false
			}
			i += 1 + n
		case len(rest) > 0 && rest[0] == '/':
			depth--
		default:
			end, selfClosing := tagEnd(rest)
			if depth++; depth > maxDepth {
				return true, false
			}
			if elements++; elements > maxElements {
				return false, true
			}
			if selfClosing {
				depth--
			}
			i += end
		}
	}
	return false, false
}

// directiveEnd returns the length of a declaration's body b (what follows
// "<!", not a comment or CDATA), its closing '>' included, read as
// encoding/xml reads a Directive: the first byte as it is; then quotes,
// angle brackets that nest, and comments inside; ok is false when the
// input ends first (where the tokenizer stops with an error).
func directiveEnd(b []byte) (n int, ok bool) {
	if len(b) == 0 {
		return 0, false
	}
	i := 1
	var inquote byte
	depth := 0
	for i < len(b) {
		c := b[i]
		i++
		if inquote == 0 && c == '>' && depth == 0 {
			return i, true
		}
	handle:
		switch {
		case c == inquote:
			inquote = 0
		case inquote != 0:
		case c == '\'' || c == '"':
			inquote = c
		case c == '>':
			depth--
		case c == '<':
			// "<!--" begins a comment inside the declaration.
			for _, want := range []byte("!--") {
				if i >= len(b) {
					return 0, false
				}
				c = b[i]
				i++
				if c != want {
					depth++
					goto handle
				}
			}
			var b0, b1 byte
			for {
				if i >= len(b) {
					return 0, false
				}
				c = b[i]
				i++
				if b0 == '-' && b1 == '-' && c == '>' {
					break
				}
				b0, b1 = b1, c
			}
		}
	}
	return 0, false
}

// tagEnd finds the '>' that ends a start tag, past quoted attribute
// values, and whether the tag closes itself ("/>"). An unterminated tag
// ends the input.
func tagEnd(b []byte) (int, bool) {
	var quote byte
	for k := 0; k < len(b); k++ {
		c := b[k]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<':
			return k, false // not a tag after all: let the scan see this '<'
		case c == '>':
			return k + 1, k > 0 && b[k-1] == '/'
		}
	}
	return len(b), false
}

// bplist is a binary property list under inspection (format: CoreFoundation
// CFBinaryPList.c): header "bplist00", objects, offset table, 32-byte trailer.
type bplist struct {
	data       []byte
	end        int // where the trailer starts; no object may reach past it
	table      int // where the offset table starts
	offIntSize int
	refSize    int
	numObjects uint64
	// per object: 0 not seen, 1 being walked, 2 done
	state  []uint8
	height []uint8  // nesting below and including the object
	cost   []uint32 // decoded size, saturating at maxPlistExpansion+1
}

func checkBinaryPlist(data []byte) error {
	if len(data) < 8+32 {
		return errors.New("binary property list is shorter than its header and trailer")
	}
	end := len(data) - 32
	tr := data[end:]
	offIntSize, refSize := int(tr[6]), int(tr[7])
	numObjects := binary.BigEndian.Uint64(tr[8:])
	root := binary.BigEndian.Uint64(tr[16:])
	tableOff := binary.BigEndian.Uint64(tr[24:])
	switch {
	case offIntSize < 1 || offIntSize > 8:
		return fmt.Errorf("binary property list trailer: offset size %d is not 1 to 8 bytes", offIntSize)
	case refSize < 1 || refSize > 8:
		return fmt.Errorf("binary property list trailer: object reference size %d is not 1 to 8 bytes", refSize)
	case numObjects == 0 || numObjects > maxBinaryObjects:
		return fmt.Errorf("binary property list trailer: object count %d is not 1 to %d", numObjects, maxBinaryObjects)
	case root >= numObjects:
		return fmt.Errorf("binary property list trailer: root object %d does not exist (%d objects)", root, numObjects)
	case tableOff < 8 || tableOff > uint64(end) || numObjects > (uint64(end)-tableOff)/uint64(offIntSize):
		return errors.New("binary property list trailer: the offset table lies outside the file")
	}
	bp := &bplist{
		data:       data,
		end:        end,
		table:      int(tableOff),
		offIntSize: offIntSize,
		refSize:    refSize,
		numObjects: numObjects,
		state:      make([]uint8, numObjects),
		height:     make([]uint8, numObjects),
		cost:       make([]uint32, numObjects),
	}
	cost, err := bp.walk(root, 1)
	if err != nil {
		return err
	}
	if cost > maxPlistExpansion {
		return fmt.Errorf("binary property list would cost more than %d MiB to decode (objects shared by reference are decoded once per reference)", maxPlistExpansion>>20)
	}
	return nil
}

func readUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// walk checks object i, reached at nesting depth, and what it references,
// and returns its decoded cost. Recursion is bounded by MaxDepth.
func (bp *bplist) walk(i uint64, depth int) (uint32, error) {
	switch bp.state[i] {
	case 1:
		return 0, fmt.Errorf("binary property list: object %d contains itself", i)
	case 2:
		if depth-1+int(bp.height[i]) > MaxDepth {
			return 0, errPlistTooDeep
		}
		return bp.cost[i], nil
	}
	if depth > MaxDepth {
		return 0, errPlistTooDeep
	}
	bp.state[i] = 1
	refs, ownBytes, err := bp.object(i)
	if err != nil {
		return 0, err
	}
	cost := min(bplistNodeCost+ownBytes, maxPlistExpansion+1)
	height := 1
	for n := range refs.count {
		ref := readUint(bp.data[refs.at+n*bp.refSize:][:bp.refSize])
		if ref >= bp.numObjects {
			return 0, fmt.Errorf("binary property list: object %d refers to object %d, but there are %d", i, ref, bp.numObjects)
		}
		c, err := bp.walk(ref, depth+1)
		if err != nil {
			return 0, err
		}
		cost = min(cost+uint64(c), maxPlistExpansion+1)
		height = max(height, 1+int(bp.height[ref]))
	}
	bp.state[i], bp.cost[i], bp.height[i] = 2, uint32(cost), uint8(height)
	return uint32(cost), nil
}

// refList is where an array's or dictionary's object references are.
type refList struct{ at, count int }

// object decodes the marker of object i and checks that everything the
// decoder will read for it lies inside the file. It returns the object's
// references and the bytes its value occupies once decoded.
func (bp *bplist) object(i uint64) (refList, uint64, error) {
	off := readUint(bp.data[bp.table+int(i)*bp.offIntSize:][:bp.offIntSize])
	if off < 8 || off >= uint64(bp.end) {
		return refList{}, 0, fmt.Errorf("binary property list: object %d starts at %d, outside the object table", i, off)
	}
	at := int(off)
	marker := bp.data[at]
	at++
	kind, low := marker>>4, int(marker&0x0f)
	bad := func(format string, args ...any) (refList, uint64, error) {
		return refList{}, 0, fmt.Errorf("binary property list: object %d: "+format, append([]any{i}, args...)...)
	}
	need := func(n uint64) bool { return n <= uint64(bp.end-at) }
	switch kind {
	case 0x0: // null, false, true, fill
		if low != 0x0 && low != 0x8 && low != 0x9 && low != 0xf {
			return bad("unknown singleton 0x%02x", marker)
		}
		return refList{}, 0, nil
	case 0x1, 0x2: // integer, real: 2^low bytes
		if (kind == 0x1 && low > 4) || (kind == 0x2 && low > 3) || !need(1<<low) {
			return bad("number of 2^%d bytes is malformed or truncated", low)
		}
		return refList{}, 8, nil
	case 0x3: // date: 8-byte float
		if low != 3 || !need(8) {
			return bad("date is malformed or truncated")
		}
		return refList{}, 8, nil
	case 0x8, 0xc: // UID, set: the decoder skips them
		return refList{}, 0, nil
	case 0x4, 0x5, 0x6, 0xa, 0xd:
	default:
		return bad("unknown object type 0x%x", kind)
	}
	count := uint64(low)
	if low == 0xf {
		if !need(1) {
			return bad("count is truncated")
		}
		n := 1 << (bp.data[at] & 0x0f)
		at++
		if n > 8 || !need(uint64(n)) {
			return bad("count is malformed or truncated")
		}
		count = readUint(bp.data[at : at+n])
		at += n
	}
	unit := uint64(1) // bytes per element in the file
	switch kind {
	case 0x6: // UTF-16 string
		unit = 2
	case 0xa:
		unit = uint64(bp.refSize)
	case 0xd: // keys then values
		unit = 2 * uint64(bp.refSize)
	}
	if count > uint64(bp.end-at)/unit {
		return bad("claims %d elements, more than the file holds", count)
	}
	switch kind {
	case 0xa:
		return refList{at: at, count: int(count)}, 0, nil
	case 0xd:
		return refList{at: at, count: 2 * int(count)}, 0, nil
	}
	return refList{}, count * unit, nil
}
