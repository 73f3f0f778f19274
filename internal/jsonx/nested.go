package jsonx

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// AppendNestedStrings reads the JSON string at d[i] whose content is itself the JSON text of
// an array of strings, the shape in which the Functions host sends a batch of Event Hub bodies
// (a string holding an array of strings), and undoes both escape layers in one pass: each
// element's content is appended to buf, decoded as DecodeString would decode the element
// after DecodeString had decoded the outer string. It returns the elements (sub-slices of the
// returned buffer, capacity capped) and the index past the outer string.
//
// d must be valid UTF-8. Only the escapes the host writes are taken in stride; anything else
// (an outer \u escape, a raw control character in an element, an element that is not a
// string) reports false, and the caller decodes the two layers one after the other, which
// gives the same result: the fuzz test holds the two to that.
//
// Decoding the two layers in turn reads and writes every body twice; this reads it once, and
// the batch is most of what the handler decodes.
func AppendNestedStrings(buf, d []byte, i int) (out []byte, elems [][]byte, end int, ok bool) {
	if i >= len(d) || d[i] != '"' {
		return buf, nil, i, false
	}
	i = skipEscapedSpace(d, i+1)
	if i >= len(d) || d[i] != '[' {
		return buf, nil, i, false
	}
	elems = [][]byte{}
	i = skipEscapedSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		return closeNested(buf, elems, d, i+1)
	}
	for {
		// An element opens with an escaped quote.
		if len(d)-i < 2 || d[i] != '\\' || d[i+1] != '"' {
			return buf, nil, i, false
		}
		start := len(buf)
		var good bool
		if buf, i, good = appendInnerString(buf, d, i+2); !good {
			return buf, nil, i, false
		}
		elems = append(elems, buf[start:len(buf):len(buf)])
		i = skipEscapedSpace(d, i)
		if i >= len(d) {
			return buf, nil, i, false
		}
		switch d[i] {
		case ',':
			i = skipEscapedSpace(d, i+1)
		case ']':
			return closeNested(buf, elems, d, i+1)
		default:
			return buf, nil, i, false
		}
	}
}

// closeNested reads what follows the inner array's ']' up to the outer closing quote.
func closeNested(buf []byte, elems [][]byte, d []byte, i int) ([]byte, [][]byte, int, bool) {
	i = skipEscapedSpace(d, i)
	if i >= len(d) || d[i] != '"' {
		return buf, nil, i, false
	}
	return buf, elems, i + 1, true
}

// skipEscapedSpace skips inner JSON whitespace as the outer string writes it: a space, or the
// escapes \t, \n and \r.
func skipEscapedSpace(d []byte, i int) int {
	for i < len(d) {
		switch {
		case d[i] == ' ':
			i++
		case d[i] == '\\' && i+1 < len(d) && (d[i+1] == 't' || d[i+1] == 'n' || d[i+1] == 'r'):
			i += 2
		default:
			return i
		}
	}
	return i
}

// appendInnerString decodes an element from just past its opening (escaped) quote to just
// past its closing one and appends its content to buf.
//
// A body's quotes and backslashes arrive as four bytes each (\\\" and \\\\), every few
// bytes; the loop takes those two as whole words and copies plain bytes eight at a time,
// writing the whole word and keeping only its plain part, which is cheaper than a short copy.
func appendInnerString(buf, d []byte, i int) ([]byte, int, bool) {
	const (
		escQuote  = '\\' | '\\'<<8 | '\\'<<16 | '"'<<24 // \\\" is a quote of the body
		escBslash = '\\' | '\\'<<8 | '\\'<<16 | '\\'<<24
	)
	for {
		if i+8 <= len(d) {
			w := binary.LittleEndian.Uint64(d[i:])
			m := specialMask(w)
			buf = binary.LittleEndian.AppendUint64(buf, w)
			if m == 0 {
				i += 8
				continue
			}
			n := bits.TrailingZeros64(m) >> 3
			buf = buf[:len(buf)-8+n]
			i += n
		} else {
			j := nextSpecial(d, i)
			buf = append(buf, d[i:j]...)
			i = j
		}
		if len(d)-i >= 4 {
			switch binary.LittleEndian.Uint32(d[i:]) {
			case escQuote:
				buf = append(buf, '"')
				i += 4
				continue
			case escBslash:
				buf = append(buf, '\\')
				i += 4
				continue
			}
		}
		if i+1 >= len(d) || d[i] != '\\' {
			return buf, i, false // the outer string ends, or a raw control character
		}
		switch d[i+1] {
		case '"': // the element's closing quote
			return buf, i + 2, true
		case '/':
			buf = append(buf, '/')
			i += 2
			continue
		case '\\': // the element's own escape; its letter follows
		default:
			return buf, i, false
		}
		i += 2
		if i >= len(d) {
			return buf, i, false
		}
		switch c := d[i]; c {
		case '\\':
			// The letter is itself escaped in the outer layer: \\\" \\\\ \\\/.
			if i+1 >= len(d) {
				return buf, i, false
			}
			switch d[i+1] {
			case '"', '\\', '/':
				buf = append(buf, d[i+1])
				i += 2
			default:
				return buf, i, false
			}
		case '/', 'b', 'f', 'n', 'r', 't':
			buf = append(buf, simpleEscape[c])
			i++
		case 'u':
			r := hex4(d[i+1:])
			if r < 0 {
				return buf, i, false
			}
			i += 5
			if utf16.IsSurrogate(r) {
				// The low half is written \\uXXXX as well.
				if len(d)-i >= 7 && d[i] == '\\' && d[i+1] == '\\' && d[i+2] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(d[i+3:])); dec != utf8.RuneError {
						r = dec
						i += 7
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return buf, i, false
		}
	}
}
