package jsonx

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes that appear unchanged inside a JSON string.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// AppendQuote appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; control characters and
// U+2028/U+2029 (line separators to some JSON consumers) are escaped, so the result never
// holds a raw line break. '<', '>' and '&' are kept: no SIEM needs HTML escaping, and the text
// reads as Defender wrote it.
func AppendQuote(dst []byte, s string) []byte {
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
			dst = appendEscapedASCII(dst, b)
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

// appendEscapedASCII appends the escape for the ASCII byte b, a quote, a backslash or a
// control character.
func appendEscapedASCII(dst []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(dst, '\\', b)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
}

// AppendCompact checks src as one JSON value and appends it without insignificant whitespace,
// repairing what strict receivers refuse inside strings (invalid UTF-8 → U+FFFD, raw control
// characters → \u00XX). Everything else is copied byte for byte. It reports false, with dst as
// it was, when src is not a single JSON value.
//
// It has its own walk of the grammar rather than Skip followed by a copy because it is on
// every forwarded record's path: one pass that checks and copies is about twice as fast as
// two.
func AppendCompact(dst, src []byte) ([]byte, bool) {
	c := compactor{src: src}
	start := len(dst)
	c.i = SkipSpace(src, 0)
	dst, ok := c.value(dst, 0)
	if !ok || SkipSpace(src, c.i) != len(src) {
		return dst[:start], false
	}
	return dst, true
}

type compactor struct {
	src []byte
	i   int
}

func (c *compactor) value(dst []byte, depth int) ([]byte, bool) {
	if c.i >= len(c.src) {
		return dst, false
	}
	switch b := c.src[c.i]; {
	case b == '{':
		return c.container(dst, depth+1, '}')
	case b == '[':
		return c.container(dst, depth+1, ']')
	case b == '"':
		return c.str(dst)
	case b == 't':
		return c.literal(dst, "true")
	case b == 'f':
		return c.literal(dst, "false")
	case b == 'n':
		return c.literal(dst, "null")
	case b == '-' || IsDigit(b):
		end, ok := scanNumber(c.src, c.i)
		if !ok {
			return dst, false
		}
		dst = append(dst, c.src[c.i:end]...)
		c.i = end
		return dst, true
	default:
		return dst, false
	}
}

// container copies an object (closer '}') or an array (closer ']'), whose opening byte is at
// c.i.
func (c *compactor) container(dst []byte, depth int, closer byte) ([]byte, bool) {
	if depth > MaxDepth {
		return dst, false
	}
	dst = append(dst, c.src[c.i])
	c.i = SkipSpace(c.src, c.i+1)
	if c.i < len(c.src) && c.src[c.i] == closer {
		c.i++
		return append(dst, closer), true
	}
	for {
		var ok bool
		if closer == '}' {
			if c.i >= len(c.src) || c.src[c.i] != '"' {
				return dst, false
			}
			if dst, ok = c.str(dst); !ok {
				return dst, false
			}
			c.i = SkipSpace(c.src, c.i)
			if c.i >= len(c.src) || c.src[c.i] != ':' {
				return dst, false
			}
			dst = append(dst, ':')
			c.i = SkipSpace(c.src, c.i+1)
		}
		if dst, ok = c.value(dst, depth); !ok {
			return dst, false
		}
		c.i = SkipSpace(c.src, c.i)
		if c.i >= len(c.src) {
			return dst, false
		}
		switch c.src[c.i] {
		case ',':
			dst = append(dst, ',')
			c.i = SkipSpace(c.src, c.i+1)
		case closer:
			c.i++
			return append(dst, closer), true
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
				if checkEscape(s, i, c.i) != nil {
					return dst, false
				}
				n := 2
				if s[i+1] == 'u' {
					n = 6
				}
				dst = append(dst, s[i:i+n]...)
				i += n
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

// special8 returns a mask whose lowest set bit lies in the first of the eight little-endian
// bytes of x that needs attention inside a JSON string: a control character, '"', '\\' or a
// non-ASCII byte. It is zero when all eight are plain. Bits above the first hit may be
// spurious, which is why only the lowest one is used.
func special8(x uint64) uint64 {
	return specialMask(x) | x&highs
}

// AppendStripped appends the checked JSON value src (as Skip delimits it) without the
// whitespace between tokens, as json.Compact does: strings and every other byte are copied as
// they are. Unlike AppendCompact it repairs nothing, for callers that must keep the bytes.
func AppendStripped(dst, src []byte) []byte {
	run := 0
	for i := 0; i < len(src); {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[run:i]...)
			i = SkipSpace(src, i)
			run = i
		case '"':
			end, _, err := SkipString(src, i)
			if err != nil { // cannot happen in checked input
				return append(dst, src[run:]...)
			}
			i = end
		default:
			i++
		}
	}
	return append(dst, src[run:]...)
}

// AppendJSONOrString appends raw as AppendCompact does when it is one JSON value, and as a
// JSON string of its bytes otherwise, so that what a format embeds is always one valid value
// whatever the record holds.
func AppendJSONOrString(dst, raw []byte) []byte {
	if out, ok := AppendCompact(dst, raw); ok {
		return out
	}
	return AppendQuote(dst, string(raw))
}
