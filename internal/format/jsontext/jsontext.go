// Package jsontext writes JSON text fast and safely for the formats that embed a record's
// original JSON: it checks and compacts a value in one pass, repairing what strict receivers
// refuse (invalid UTF-8, raw control characters), and writes strings that can never hold a raw
// line break. It is several times faster than encoding/json's Valid plus Compact, and
// formatting speed bounds the forwarder's throughput.
package jsontext

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// maxDepth bounds nesting in Raw, as encoding/json does, so hostile input cannot exhaust the
// stack; deeper input is sent as a string event.
const maxDepth = 10000

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes that appear unchanged inside a JSON string.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; control characters
// and U+2028/U+2029 (line separators to some JSON consumers) are escaped, so the result never
// holds a raw line break. '<', '>' and '&' are kept: Splunk does not need HTML escaping.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	run := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[run:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			run = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[run:i]...)
			dst = append(dst, "\uFFFD"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[run:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		run = i
	}
	dst = append(dst, s[run:]...)
	return append(dst, '"')
}

// AppendCompact validates src as one JSON value and appends it without insignificant
// whitespace, repairing what Splunk would refuse inside strings (invalid UTF-8 → U+FFFD, raw
// control characters → \u00XX). Everything else is copied byte for byte. It reports false,
// with dst as it was, when src is not a single JSON value.
//
// A single hand-written pass is several times faster than json.Valid followed by
// json.Compact, and formatting speed bounds the forwarder's throughput.
func AppendCompact(dst, src []byte) ([]byte, bool) {
	c := compactor{src: src}
	start := len(dst)
	c.skipSpace()
	dst, ok := c.value(dst, 0)
	if !ok {
		return dst[:start], false
	}
	c.skipSpace()
	if c.i != len(src) {
		return dst[:start], false
	}
	return dst, true
}

type compactor struct {
	src []byte
	i   int
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func (c *compactor) skipSpace() {
	for c.i < len(c.src) && isSpace(c.src[c.i]) {
		c.i++
	}
}

func (c *compactor) value(dst []byte, depth int) ([]byte, bool) {
	if c.i >= len(c.src) {
		return dst, false
	}
	switch b := c.src[c.i]; {
	case b == '{':
		return c.object(dst, depth+1)
	case b == '[':
		return c.array(dst, depth+1)
	case b == '"':
		return c.str(dst)
	case b == 't':
		return c.literal(dst, "true")
	case b == 'f':
		return c.literal(dst, "false")
	case b == 'n':
		return c.literal(dst, "null")
	case b == '-' || (b >= '0' && b <= '9'):
		return c.number(dst)
	default:
		return dst, false
	}
}

func (c *compactor) object(dst []byte, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return dst, false
	}
	c.i++ // '{'
	dst = append(dst, '{')
	c.skipSpace()
	if c.i < len(c.src) && c.src[c.i] == '}' {
		c.i++
		return append(dst, '}'), true
	}
	for {
		if c.i >= len(c.src) || c.src[c.i] != '"' {
			return dst, false
		}
		var ok bool
		if dst, ok = c.str(dst); !ok {
			return dst, false
		}
		c.skipSpace()
		if c.i >= len(c.src) || c.src[c.i] != ':' {
			return dst, false
		}
		c.i++
		dst = append(dst, ':')
		c.skipSpace()
		if dst, ok = c.value(dst, depth); !ok {
			return dst, false
		}
		c.skipSpace()
		if c.i >= len(c.src) {
			return dst, false
		}
		switch c.src[c.i] {
		case ',':
			c.i++
			dst = append(dst, ',')
			c.skipSpace()
		case '}':
			c.i++
			return append(dst, '}'), true
		default:
			return dst, false
		}
	}
}

func (c *compactor) array(dst []byte, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return dst, false
	}
	c.i++ // '['
	dst = append(dst, '[')
	c.skipSpace()
	if c.i < len(c.src) && c.src[c.i] == ']' {
		c.i++
		return append(dst, ']'), true
	}
	for {
		var ok bool
		if dst, ok = c.value(dst, depth); !ok {
			return dst, false
		}
		c.skipSpace()
		if c.i >= len(c.src) {
			return dst, false
		}
		switch c.src[c.i] {
		case ',':
			c.i++
			dst = append(dst, ',')
			c.skipSpace()
		case ']':
			c.i++
			return append(dst, ']'), true
		default:
			return dst, false
		}
	}
}

func (c *compactor) literal(dst []byte, lit string) ([]byte, bool) {
	if len(c.src)-c.i < len(lit) || string(c.src[c.i:c.i+len(lit)]) != lit {
		return dst, false
	}
	c.i += len(lit)
	return append(dst, lit...), true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// number checks the RFC 8259 number grammar and copies the text unchanged.
func (c *compactor) number(dst []byte) ([]byte, bool) {
	s, i := c.src, c.i
	start := i
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return dst, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return dst, false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return dst, false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	c.i = i
	return append(dst, s[start:i]...), true
}

func isHex(b byte) bool {
	return isDigit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')
}

// str copies a JSON string, keeping its escapes as written.
func (c *compactor) str(dst []byte) ([]byte, bool) {
	s := c.src
	i := c.i + 1 // past '"'
	dst = append(dst, '"')
	run := i
	for i < len(s) {
		// Skip eight plain ASCII bytes at a time; most of an alert is such text.
		if i+8 <= len(s) {
			if m := special8(binary.LittleEndian.Uint64(s[i:])); m == 0 {
				i += 8
				continue
			} else {
				i += bits.TrailingZeros64(m) / 8
			}
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[run:i]...)
			switch {
			case b == '"':
				c.i = i + 1
				return append(dst, '"'), true
			case b == '\\':
				if i+1 >= len(s) {
					return dst, false
				}
				switch s[i+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					dst = append(dst, s[i:i+2]...)
					i += 2
				case 'u':
					if i+6 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
						return dst, false
					}
					dst = append(dst, s[i:i+6]...)
					i += 6
				default:
					return dst, false
				}
			default: // a raw control character: invalid JSON, but unambiguous to repair
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
				i++
			}
			run = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[run:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			run = i
			continue
		}
		i += size
	}
	return dst, false
}

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// special8 returns a mask whose lowest set bit lies in the first of the eight little-endian
// bytes of x that needs attention inside a JSON string: a control character, '"', '\\' or a
// non-ASCII byte. It is zero when all eight are plain. Bits above the first hit may be spurious
// (borrows propagate upwards), which is why only the lowest one is used.
func special8(x uint64) uint64 {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((x-ones*0x20) & ^x | (q-ones) & ^q | (b-ones) & ^b | x) & high
}
