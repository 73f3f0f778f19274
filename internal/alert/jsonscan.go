package alert

import (
	"encoding/binary"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanner this package parses records with is exported here for the host envelope decoder,
// which has the same needs (check once, slice values out without copying, decode strings the
// way encoding/json does) on bodies a thousand times larger.

// ScanValue checks the JSON value starting at d[i] and returns the index just past it. It
// accepts exactly what encoding/json accepts, nesting limit and invalid UTF-8 in strings
// included; depth is how many arrays and objects enclose the value. Errors wrap
// ErrUndecodable.
func ScanValue(d []byte, i, depth int) (int, error) {
	return skipValue(d, i, depth)
}

// SkipSpace returns the index of the first byte at or after i that is not JSON whitespace.
func SkipSpace(d []byte, i int) int {
	return skipWS(d, i)
}

// DecodeKey returns a raw key from EachMemberLazy as a string, as encoding/json decodes it.
func DecodeKey(raw []byte, esc bool) string {
	return decodeKey(raw, esc)
}

// AppendUnquoted appends the content of the well-formed JSON string str (quotes included, as
// ScanValue delimits it) to dst, decoded exactly as encoding/json decodes it:
// escapes resolved, invalid UTF-8 and lone surrogates replaced by U+FFFD.
//
// Decoding never writes more bytes than it has read when str is valid UTF-8, so valid text
// may be decoded in place: dst may be a prefix of the same array as str, ending at or before
// str's start.
func AppendUnquoted(dst, str []byte) []byte {
	if len(str) < 2 || str[0] != '"' {
		return dst
	}
	return appendUnquoted(dst, str[1:len(str)-1], 0)
}

// EachMemberLazy checks the object obj (which must start with '{' and may be followed by other
// bytes; depth is how many arrays and objects enclose it) and returns the index just past it.
// fn sees each member's raw key (without quotes, escapes undecoded; esc says whether it has
// any) before the value, so that a caller can read a large value once instead of having it
// skipped and then reading it again: when fn returns a scanner and true, the scanner is given
// the input from the value's first byte on and must check the value and return the index just
// past it (relative to what it was given). Otherwise the value is skipped.
func EachMemberLazy(obj []byte, depth int, fn func(key []byte, esc bool) (func(rest []byte) (int, error), bool)) (int, error) {
	return walkMembers(obj, depth, func(key []byte, esc bool, vs int) (int, error) {
		scan, ok := fn(key, esc)
		if !ok {
			return skipValue(obj, vs, depth+1)
		}
		if vs >= len(obj) {
			return vs, syntaxErr(vs, "unexpected end of input")
		}
		n, err := scan(obj[vs:])
		return vs + n, err
	})
}

// AppendString checks the JSON string starting at the quote d[i], appends its decoded content
// to dst as AppendUnquoted does, and returns the index just past the closing quote. It is
// ScanValue and AppendUnquoted in one pass. When d is known to be valid UTF-8 (validUTF8) the
// plain runs are copied without checking them again; decoding then never writes more than it
// has read, so dst may share d's array as AppendUnquoted allows.
func AppendString(dst, d []byte, i int, validUTF8 bool) ([]byte, int, error) {
	if validUTF8 {
		return appendStringValid(dst, d, i)
	}
	start := i
	if i >= len(d) || d[i] != '"' {
		return dst, i, syntaxErr(i, "not a string")
	}
	i++
	for {
		j := nextSpecial(d, i)
		if validUTF8 {
			dst = append(dst, d[i:j]...)
		} else {
			dst = appendReplacingInvalid(dst, d[i:j])
		}
		i = j
		if i >= len(d) {
			return dst, i, syntaxErr(start, "unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			return dst, i + 1, nil
		case c == '\\':
			i++
			if i >= len(d) {
				return dst, i, syntaxErr(start, "unterminated string")
			}
			switch d[i] {
			case '"', '\\', '/':
				dst = append(dst, d[i])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				if len(d)-i < 5 {
					return dst, len(d), syntaxErr(start, "unterminated string")
				}
				r := hex4(d[i+1:])
				if r < 0 {
					return dst, i, syntaxErr(i, "invalid \\u escape")
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					// The second half counts only if it is itself a well-formed escape;
					// a malformed one is reported when the loop reaches it.
					if len(d)-i >= 7 && d[i+1] == '\\' && d[i+2] == 'u' {
						r2 = hex4(d[i+3:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
			default:
				return dst, i, syntaxErr(i, "invalid escape")
			}
			i++
		default:
			return dst, i, syntaxErr(i, "control character in string")
		}
	}
}

// appendStringValid is AppendString for valid UTF-8 input, tuned for text that is escaped
// every few bytes (a body inside the host's envelope is escaped twice). The decoded text is
// never longer than its input, so it writes into dst's spare capacity directly, eight plain
// bytes at a time where it can, instead of appending run by run.
func appendStringValid(dst, d []byte, i int) ([]byte, int, error) {
	start := i
	if i >= len(d) || d[i] != '"' {
		return dst, i, syntaxErr(i, "not a string")
	}
	dst = slices.Grow(dst, len(d)-i)
	w := len(dst)
	out := dst[:cap(dst)]
	i++
	for {
		// Whole words of plain bytes: writing a word never overtakes the read position,
		// since the word was read first and w <= i, which keeps in-place decoding safe.
		for i+8 <= len(d) {
			word := binary.LittleEndian.Uint64(d[i:])
			if specialMask(word) != 0 {
				break
			}
			binary.LittleEndian.PutUint64(out[w:], word)
			w += 8
			i += 8
		}
		for i < len(d) {
			c := d[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			out[w] = c
			w++
			i++
		}
		if i >= len(d) {
			return out[:w], i, syntaxErr(start, "unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			return out[:w], i + 1, nil
		case c == '\\':
			i++
			if i >= len(d) {
				return out[:w], i, syntaxErr(start, "unterminated string")
			}
			switch d[i] {
			case '"', '\\', '/':
				out[w] = d[i]
			case 'b':
				out[w] = '\b'
			case 'f':
				out[w] = '\f'
			case 'n':
				out[w] = '\n'
			case 'r':
				out[w] = '\r'
			case 't':
				out[w] = '\t'
			case 'u':
				if len(d)-i < 5 {
					return out[:w], len(d), syntaxErr(start, "unterminated string")
				}
				r := hex4(d[i+1:])
				if r < 0 {
					return out[:w], i, syntaxErr(i, "invalid \\u escape")
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if len(d)-i >= 7 && d[i+1] == '\\' && d[i+2] == 'u' {
						r2 = hex4(d[i+3:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				// Six input bytes (twelve for a pair) make at most four.
				w += utf8.EncodeRune(out[w:], r)
				i++
				continue
			default:
				return out[:w], i, syntaxErr(i, "invalid escape")
			}
			w++
			i++
		default:
			return out[:w], i, syntaxErr(i, "control character in string")
		}
	}
}
