package jsonx

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeString returns the Go string for the raw JSON string val (with its quotes), which must
// be well-formed (as Skip leaves it), decoded exactly as encoding/json decodes it: escapes
// resolved, invalid UTF-8 and lone surrogates replaced by U+FFFD. It reports false when val is
// not a string.
func DecodeString(val []byte) (string, bool) {
	if len(val) < 2 || val[0] != '"' {
		return "", false
	}
	content := val[1 : len(val)-1]
	i := 0
	for i < len(content) {
		c := content[i]
		if c == '\\' || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	if i == len(content) {
		return string(content), true
	}
	if bytes.IndexByte(content[i:], '\\') < 0 && utf8.Valid(content[i:]) {
		return string(content), true
	}
	return string(AppendUnquoted(make([]byte, 0, len(content)+8), val)), true
}

// DecodeKey returns an object key as EachMember passes it (raw, without quotes; esc says
// whether it holds escapes) as a string.
func DecodeKey(raw []byte, esc bool) string {
	if !esc {
		if utf8.Valid(raw) {
			return string(raw)
		}
		return string(appendReplacingInvalid(nil, raw))
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return string(appendReplacingInvalid(b, raw[i:]))
		}
		b = appendReplacingInvalid(b, raw[i:i+j])
		var r rune
		r, i = unescape(raw, i+j)
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// AppendUnquoted appends the content of the well-formed JSON string str (quotes included, as
// Skip delimits it) to dst, decoded as DecodeString decodes it.
//
// Decoding never writes more bytes than it has read when str is valid UTF-8, so valid text may
// be decoded in place: dst may be a prefix of the same array as str, ending at or before str's
// start.
func AppendUnquoted(dst, str []byte) []byte {
	if len(str) < 2 || str[0] != '"' {
		return dst
	}
	out, _, err := AppendDecoded(dst, str, 0, false)
	if err != nil {
		return dst
	}
	return out
}

// AppendDecoded checks the JSON string starting at the quote d[i], appends its decoded content
// to dst as AppendUnquoted does, and returns the index just past the closing quote: Skip and
// AppendUnquoted in one pass. When d is known to be valid UTF-8 (validUTF8) the plain runs are
// copied without checking them again; decoding then never writes more than it has read, so
// dst may share d's array as AppendUnquoted allows.
func AppendDecoded(dst, d []byte, i int, validUTF8 bool) ([]byte, int, error) {
	if validUTF8 {
		return appendDecodedValid(dst, d, i)
	}
	start := i
	if i >= len(d) || d[i] != '"' {
		return dst, i, syntaxErr(i, "not a string")
	}
	i++
	for {
		j := nextSpecial(d, i)
		dst = appendReplacingInvalid(dst, d[i:j])
		i = j
		if i >= len(d) {
			return dst, i, syntaxErr(start, "unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			return dst, i + 1, nil
		case c == '\\':
			if err := checkEscape(d, i, start); err != nil {
				return dst, i, err
			}
			var r rune
			r, i = unescape(d, i)
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, i, syntaxErr(i, "control character in string")
		}
	}
}

// appendDecodedValid is AppendDecoded for valid UTF-8 input, tuned for text that is escaped
// every few bytes (a body inside the host's envelope is escaped twice). The decoded text is
// never longer than its input, so it writes into dst's spare capacity directly, eight plain
// bytes at a time where it can, instead of appending run by run.
func appendDecodedValid(dst, d []byte, i int) ([]byte, int, error) {
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
			if i+1 < len(d) && d[i+1] != 'u' {
				// The common escapes, without the call: one byte out for two in.
				if b := simpleEscape[d[i+1]]; b != 0 {
					out[w] = b
					w++
					i += 2
					continue
				}
			}
			if err := checkEscape(d, i, start); err != nil {
				return out[:w], i, err
			}
			var r rune
			r, i = unescape(d, i)
			// Six input bytes (twelve for a pair) make at most four.
			w += utf8.EncodeRune(out[w:], r)
		default:
			return out[:w], i, syntaxErr(i, "control character in string")
		}
	}
}

// simpleEscape maps the character after a backslash to what it stands for, for every escape
// but \u; zero for what is not an escape.
var simpleEscape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// checkEscape checks the escape sequence at the backslash d[i] of the string starting at
// d[start].
func checkEscape(d []byte, i, start int) error {
	if i+1 >= len(d) {
		return syntaxErr(start, "unterminated string")
	}
	if c := d[i+1]; c != 'u' {
		if simpleEscape[c] == 0 {
			return syntaxErr(i+1, "invalid escape")
		}
		return nil
	}
	if len(d)-(i+1) < 5 {
		return syntaxErr(start, "unterminated string")
	}
	if hex4(d[i+2:]) < 0 {
		return syntaxErr(i+1, "invalid \\u escape")
	}
	return nil
}

// unescape decodes the checked escape sequence at the backslash d[i] and returns what it
// stands for and the index just past it. A \u escape of a surrogate takes the following \u
// escape with it when the two form a pair; a lone surrogate is U+FFFD, as encoding/json has it.
func unescape(d []byte, i int) (rune, int) {
	if i+1 >= len(d) {
		return utf8.RuneError, len(d)
	}
	if c := d[i+1]; c != 'u' {
		return rune(simpleEscape[c]), i + 2
	}
	r := hex4(d[i+2:])
	i += 6
	if !utf16.IsSurrogate(r) {
		return r, i
	}
	// The second half counts only if it is itself a well-formed escape; a malformed one is
	// reported when the caller reaches it.
	if len(d)-i >= 6 && d[i] == '\\' && d[i+1] == 'u' {
		if dec := utf16.DecodeRune(r, hex4(d[i+2:])); dec != utf8.RuneError {
			return dec, i + 6
		}
	}
	return utf8.RuneError, i
}

// appendReplacingInvalid appends run, replacing each byte that is not part of valid UTF-8 with
// U+FFFD as encoding/json does.
func appendReplacingInvalid(b, run []byte) []byte {
	if utf8.Valid(run) {
		return append(b, run...)
	}
	for i := 0; i < len(run); {
		r, size := utf8.DecodeRune(run[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, run[i:i+size]...)
		}
		i += size
	}
	return b
}

// hex4 reads four hex digits as a rune, or -1 when they are not four hex digits.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
