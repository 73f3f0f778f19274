package syslog

import (
	"unicode/utf8"
)

// AppendSDValue writes s as an RFC 5424 PARAM-VALUE (without the quotes).
//
// '\', '"' and ']' are escaped with a backslash (RFC 5424 §6.3.3), so a hostile value cannot
// end the parameter or the element. PARAM-VALUE must be UTF-8: each invalid byte becomes
// U+FFFD. Control characters (C0, DEL, C1) become a space: RFC 5424 has no escape for them,
// and a raw LF would split the message on an LF-framed connection.
func AppendSDValue(dst []byte, s string) []byte { return appendOneLine(dst, s, true) }

// appendMsgText writes s for a one-line MSG: valid UTF-8, control characters as spaces.
func appendMsgText(dst []byte, s string) []byte { return appendOneLine(dst, s, false) }

// appendOneLine writes s as valid UTF-8 with every control character (C0, DEL, C1) a space,
// and, for a PARAM-VALUE (sd), '\', '"' and ']' escaped with a backslash.
func appendOneLine(dst []byte, s string, sd bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case sd && (c == '\\' || c == '"' || c == ']'):
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, ' ')
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case r >= 0x80 && r <= 0x9f:
			dst = append(dst, ' ')
		default:
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}

// sanitizeLine makes b[from:] one line of valid UTF-8 in place when it already is (the
// common case) and by rewriting it otherwise. Only CR, LF and NUL are replaced (by a space):
// they are what ends a frame on an LF- or NUL-framed connection; compacted JSON has none
// outside strings and JSON strings cannot hold them raw.
func sanitizeLine(b []byte, from int) []byte {
	tail := b[from:]
	clean := utf8.Valid(tail)
	for i, c := range tail {
		if c == '\n' || c == '\r' || c == 0 {
			tail[i] = ' '
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(tail)+8)
	for i := 0; i < len(tail); {
		r, n := utf8.DecodeRune(tail[i:])
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, tail[i:i+n]...)
		}
		i += n
	}
	return append(b[:from], out...)
}
