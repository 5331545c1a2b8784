package profiles

import (
	"errors"
	"fmt"
)

// The CMS decoder (go.mozilla.org/pkcs7 v0.10.0) first rewrites BER to DER
// with a recursive descent (ber2der) that trusts its input: nesting two
// million deep, which 4 MiB of "30 80" gives, overflows the stack and kills
// the process; a child that runs past the end of its parent makes it parse
// the same bytes again at every level; and each end-of-contents test scans
// the rest of the input, so many small children inside an indefinite-length
// element cost quadratic time. checkBER walks the encoding first, the way
// ber2der will, but iteratively and strictly, and refuses those shapes.
// Real CMS nests about fifteen deep and never overruns a parent.

const (
	// maxBERDepth bounds the nesting of constructed elements.
	maxBERDepth = 64
	// maxBERScan bounds the bytes ber2der's end-of-contents tests will scan
	// in total (a few KiB for a real profile).
	maxBERScan = 256 << 20
)

// berHeader is one element's identifier and length octets, read as ber2der
// reads them.
type berHeader struct {
	constructed, indefinite  bool
	contentStart, contentEnd int
}

func readBERHeader(b []byte, off int) (berHeader, error) {
	var h berHeader
	if off+1 >= len(b) {
		return h, errors.New("an element is truncated")
	}
	id := b[off]
	off++
	if id&0x1f == 0x1f { // high tag number: base-128 digits
		for b[off] >= 0x80 {
			if off++; off >= len(b) {
				return h, errors.New("a tag number is truncated")
			}
		}
		if off++; off >= len(b) {
			return h, errors.New("a tag is truncated")
		}
	}
	h.constructed = id&0x20 != 0
	l := b[off]
	off++
	length := 0
	switch {
	case l == 0x80:
		if !h.constructed {
			return h, errors.New("a primitive element has an indefinite length")
		}
		h.indefinite = true
	case l > 0x80:
		n := int(l & 0x7f)
		if n > 4 || off+n > len(b) || b[off] == 0 || (n == 4 && b[off] > 0x7f) {
			return h, errors.New("a length is malformed")
		}
		for range n {
			length = length<<8 | int(b[off])
			off++
		}
	default:
		length = int(l)
	}
	h.contentStart, h.contentEnd = off, off+length
	if h.contentEnd > len(b) {
		return h, fmt.Errorf("an element claims %d bytes, more than remain", length)
	}
	return h, nil
}

// checkBER walks the first element of b and returns where it ends.
func checkBER(b []byte) (end int, err error) {
	type frame struct {
		end        int // content end of a definite element
		indefinite bool
	}
	var stack []frame
	off, scanned, nextEOC := 0, 0, 0
	for {
		h, err := readBERHeader(b, off)
		if err != nil {
			return 0, err
		}
		off = h.contentEnd
		if h.constructed && (h.indefinite || h.contentStart < h.contentEnd) {
			if len(stack) == maxBERDepth {
				return 0, fmt.Errorf("elements are nested more than %d deep", maxBERDepth)
			}
			if h.indefinite && h.contentStart+1 < len(b) && b[h.contentStart] == 0 && b[h.contentStart+1] == 0 {
				// ber2der would read the end-of-contents as a child.
				return 0, errors.New("an indefinite-length element is empty")
			}
			stack = append(stack, frame{h.contentEnd, h.indefinite})
			off = h.contentStart
			continue
		}
		// An element ended at off: close the parents it completes.
		for {
			if len(stack) == 0 {
				return off, nil
			}
			top := stack[len(stack)-1]
			if !top.indefinite {
				if off > top.end {
					return 0, errors.New("an element runs past the end of the element that contains it")
				}
				if off < top.end {
					break
				}
				stack = stack[:len(stack)-1]
				continue
			}
			// ber2der looks for 00 00 with bytes.Index over the rest of
			// the input: count what that scans.
			if len(b)-off < 2 {
				return 0, errors.New("an indefinite-length element is not terminated")
			}
			if nextEOC < off {
				nextEOC = off
			}
			for nextEOC+1 < len(b) && (b[nextEOC] != 0 || b[nextEOC+1] != 0) {
				nextEOC++
			}
			if scanned += nextEOC - off + 2; scanned > maxBERScan {
				return 0, errors.New("its indefinite-length elements hold too many small parts to decode in reasonable time")
			}
			if nextEOC != off {
				break
			}
			off += 2
			stack = stack[:len(stack)-1]
		}
	}
}
