package alert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrUndecodable marks a message or record that is not well-formed JSON. Callers dead-letter
// such input as undecodable; the wrapped error says where the JSON went wrong.
var ErrUndecodable = errors.New("alert: undecodable JSON")

// maxDepth matches encoding/json's nesting limit, so that whatever encoding/json accepts is
// accepted here too, and a hostile message cannot exhaust the stack.
const maxDepth = 10000

func syntaxErr(off int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrUndecodable, what, off)
}

func skipWS(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// trimMessage drops a leading UTF-8 byte order mark and surrounding JSON whitespace, and
// returns the offset of what remains so that sub-slices stay slices of the original.
func trimMessage(d []byte) (int, int) {
	start := 0
	if len(d) >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF {
		start = 3
	}
	start = skipWS(d, start)
	end := len(d)
	for end > start {
		switch d[end-1] {
		case ' ', '\t', '\n', '\r':
			end--
			continue
		}
		break
	}
	return start, end
}

// skipValue checks the JSON value starting at d[i] and returns the index just past it. It
// accepts exactly what encoding/json accepts (invalid UTF-8 inside strings included).
func skipValue(d []byte, i, depth int) (int, error) {
	if i >= len(d) {
		return i, syntaxErr(i, "unexpected end of input")
	}
	switch c := d[i]; {
	case c == '"':
		end, _, err := skipString(d, i)
		return end, err
	case c == '{':
		return skipObject(d, i, depth+1)
	case c == '[':
		return skipArray(d, i, depth+1)
	case c == 't':
		return skipLiteral(d, i, "true")
	case c == 'f':
		return skipLiteral(d, i, "false")
	case c == 'n':
		return skipLiteral(d, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(d, i)
	default:
		return i, syntaxErr(i, fmt.Sprintf("invalid character %q looking for a value", c))
	}
}

func skipLiteral(d []byte, i int, lit string) (int, error) {
	if len(d)-i < len(lit) {
		return len(d), syntaxErr(len(d), "unexpected end of input")
	}
	if string(d[i:i+len(lit)]) != lit {
		return i, syntaxErr(i, "invalid literal")
	}
	return i + len(lit), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipNumber(d []byte, i int) (int, error) {
	start := i
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return i, syntaxErr(i, "unexpected end of input in number")
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return i, syntaxErr(start, "invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return i, syntaxErr(start, "invalid number")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return i, syntaxErr(start, "invalid number")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return i, nil
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipString checks the string starting at the quote d[i] and returns the index past its
// closing quote and whether it holds escapes (which decide whether it can be used as is).
func skipString(d []byte, i int) (int, bool, error) {
	start := i
	esc := false
	i++
	for {
		i = nextSpecial(d, i)
		if i >= len(d) {
			return i, esc, syntaxErr(start, "unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(d) {
				return i, esc, syntaxErr(start, "unterminated string")
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(d)-i < 5 {
					return len(d), esc, syntaxErr(start, "unterminated string")
				}
				if !isHex(d[i+1]) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) {
					return i, esc, syntaxErr(i, "invalid \\u escape")
				}
				i += 5
			default:
				return i, esc, syntaxErr(i, "invalid escape")
			}
		default:
			return i, esc, syntaxErr(i, "control character in string")
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// nextSpecial returns the index of the first '"', '\\' or control character in d at or after
// i, or len(d). Most of a record is string content, so it looks at eight bytes at a time.
func nextSpecial(d []byte, i int) int {
	// Escaped text (a body inside a host envelope) has a special byte every few bytes, where
	// looking at single bytes first is cheaper than building a mask.
	for end := min(i+4, len(d)); i < end; i++ {
		if c := d[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	for i+8 <= len(d) {
		if m := specialMask(binary.LittleEndian.Uint64(d[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(d) {
		if c := d[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
		i++
	}
	return i
}

// specialMask sets the high bit of each byte of w (little-endian) that is '"', '\\' or below
// 0x20. Bytes above the first such byte may be flagged wrongly, so only the lowest flag is
// meaningful; it is exact.
func specialMask(w uint64) uint64 {
	quote := w ^ (ones * '"')
	bslash := w ^ (ones * '\\')
	zeroQ := (quote - ones) &^ quote
	zeroB := (bslash - ones) &^ bslash
	ctl := (w - ones*0x20) &^ w
	return (zeroQ | zeroB | ctl) & highs
}

func skipObject(d []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(d) {
			return i, syntaxErr(i, "unexpected end of input in object")
		}
		if d[i] != '"' {
			return i, syntaxErr(i, "object key is not a string")
		}
		var err error
		if i, _, err = skipString(d, i); err != nil {
			return i, err
		}
		i = skipWS(d, i)
		if i >= len(d) || d[i] != ':' {
			return i, syntaxErr(i, "missing colon after object key")
		}
		i = skipWS(d, i+1)
		if i, err = skipValue(d, i, depth); err != nil {
			return i, err
		}
		i = skipWS(d, i)
		if i >= len(d) {
			return i, syntaxErr(i, "unexpected end of input in object")
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected comma or end of object")
		}
	}
}

func skipArray(d []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = skipValue(d, i, depth); err != nil {
			return i, err
		}
		i = skipWS(d, i)
		if i >= len(d) {
			return i, syntaxErr(i, "unexpected end of input in array")
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected comma or end of array")
		}
	}
}

// eachMember calls fn with the raw key (without quotes, escapes undecoded) and the raw value
// of every member of the object obj, in order. obj must start with '{'; trailing bytes after
// the object are not looked at.
func eachMember(obj []byte, depth int, fn func(key, val []byte, keyEsc bool)) error {
	_, err := scanMembers(obj, depth, fn)
	return err
}

// scanMembers is eachMember that also returns the index just past the object, so that a
// caller can check the object and read its members in a single pass.
func scanMembers(obj []byte, depth int, fn func(key, val []byte, keyEsc bool)) (int, error) {
	return walkMembers(obj, depth, func(key []byte, esc bool, vs int) (int, error) {
		ve, err := skipValue(obj, vs, depth+1)
		if err == nil {
			fn(key, obj[vs:ve], esc)
		}
		return ve, err
	})
}

// walkMembers checks the object obj (which must start with '{') member by member and returns
// the index just past it. For each member it calls value with the raw key (escapes undecoded;
// esc says whether it has any) and the index of the value's first byte in obj; value must
// check the value and return the index just past it, or an error whose offset is in obj.
func walkMembers(obj []byte, depth int, value func(key []byte, esc bool, vs int) (int, error)) (int, error) {
	if len(obj) == 0 || obj[0] != '{' {
		return 0, syntaxErr(0, "not an object")
	}
	if depth+1 > maxDepth {
		return 0, syntaxErr(0, "nesting too deep")
	}
	i := skipWS(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return i, syntaxErr(i, "object key is not a string")
		}
		ks := i
		ke, esc, err := skipString(obj, i)
		if err != nil {
			return ke, err
		}
		i = skipWS(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return i, syntaxErr(i, "missing colon after object key")
		}
		ve, err := value(obj[ks+1:ke-1], esc, skipWS(obj, i+1))
		if err != nil {
			return ve, err
		}
		i = skipWS(obj, ve)
		if i >= len(obj) {
			return i, syntaxErr(i, "unexpected end of input in object")
		}
		switch obj[i] {
		case ',':
			i = skipWS(obj, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected comma or end of object")
		}
	}
}

// eachElement calls fn with the raw bytes of every element of the array arr, in order.
func eachElement(arr []byte, depth int, fn func(val []byte)) error {
	if len(arr) == 0 || arr[0] != '[' {
		return syntaxErr(0, "not an array")
	}
	if depth+1 > maxDepth {
		return syntaxErr(0, "nesting too deep")
	}
	i := skipWS(arr, 1)
	if i < len(arr) && arr[i] == ']' {
		return nil
	}
	for {
		vs := i
		ve, err := skipValue(arr, vs, depth+1)
		if err != nil {
			return err
		}
		fn(arr[vs:ve])
		i = skipWS(arr, ve)
		if i >= len(arr) {
			return syntaxErr(i, "unexpected end of input in array")
		}
		switch arr[i] {
		case ',':
			i = skipWS(arr, i+1)
		case ']':
			return nil
		default:
			return syntaxErr(i, "expected comma or end of array")
		}
	}
}

// decodeString returns the Go string for the raw JSON string val (with its quotes), which
// must be well-formed. Escapes and invalid UTF-8 are handled exactly as encoding/json does:
// invalid bytes and lone surrogates become U+FFFD.
func decodeString(val []byte) (string, bool) {
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
	return unquote(content, i), true
}

// unquote decodes the string content s, whose first i bytes are plain ASCII.
func unquote(s []byte, i int) string {
	b := make([]byte, i, len(s)+8)
	copy(b, s[:i])
	return string(appendUnquoted(b, s, i))
}

// appendUnquoted appends the decoding of the well-formed string content s[i:] to b. Runs
// without escapes are copied whole, so long plain stretches cost a memmove. Writing never
// gets ahead of reading unless s holds invalid UTF-8 (each bad byte becomes three), which
// lets a caller decode valid text in place.
func appendUnquoted(b, s []byte, i int) []byte {
	for i < len(s) {
		end := len(s)
		if j := bytes.IndexByte(s[i:], '\\'); j >= 0 {
			end = i + j
		}
		b = appendReplacingInvalid(b, s[i:end])
		i = end
		if i+1 >= len(s) {
			// A lone trailing backslash cannot occur in checked input; keep it as is.
			b = append(b, s[i:]...)
			break
		}
		i++
		switch s[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(s[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2 = hex4(s[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\', '/'
			b = append(b, s[i])
		}
		i++
	}
	return b
}

// appendReplacingInvalid appends run, replacing each byte that is not part of valid UTF-8
// with U+FFFD as encoding/json does.
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

// hex4 reads four hex digits (checked by skipString) as a rune, or -1.
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

// decodeKey returns the object key raw (as eachMember passes it) as a string.
func decodeKey(raw []byte, esc bool) string {
	if !esc {
		return string(raw)
	}
	var s string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	if err := json.Unmarshal(quoted, &s); err != nil {
		return string(raw)
	}
	return s
}
