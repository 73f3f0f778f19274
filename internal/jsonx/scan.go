package jsonx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// ErrSyntax marks input that is not well-formed JSON; the wrapping error says what went wrong
// and at which offset.
var ErrSyntax = errors.New("undecodable JSON")

// MaxDepth matches encoding/json's nesting limit, so that whatever encoding/json accepts is
// accepted here too, and hostile input cannot exhaust the stack.
const MaxDepth = 10000

func syntaxErr(off int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, off)
}

// SyntaxError returns an error wrapping ErrSyntax that says what is wrong at offset off, for
// callers that find input wrong in a way only they can tell (data after a record).
func SyntaxError(off int, what string) error { return syntaxErr(off, what) }

// SkipSpace returns the index of the first byte at or after i that is not JSON whitespace.
func SkipSpace(d []byte, i int) int {
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

// Trim drops a leading UTF-8 byte order mark and surrounding JSON whitespace, and returns the
// bounds of what remains, so that sub-slices stay slices of the original.
func Trim(d []byte) (start, end int) {
	if len(d) >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF {
		start = 3
	}
	start = SkipSpace(d, start)
	end = len(d)
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

// Valid reports whether d is one JSON value with nothing but whitespace around it, as
// json.Valid does, at several times its speed.
func Valid(d []byte) bool {
	i := SkipSpace(d, 0)
	end, err := Skip(d, i, 0)
	return err == nil && SkipSpace(d, end) == len(d)
}

// Skip checks the JSON value starting at d[i] and returns the index just past it; depth is how
// many arrays and objects enclose the value.
func Skip(d []byte, i, depth int) (int, error) {
	var w Walk
	return w.Skip(d, i, depth)
}

// A Walk is the state of checking walks (Skip, EachMember) that remembers what it saw between
// the tokens. Its zero value is ready; one Walk may serve several walks in turn.
type Walk struct {
	spaced bool
}

// Spaced reports whether any walk made with w met whitespace between tokens. A record that
// parsed without it is already in the compact form AppendCompact writes (if it is also valid
// UTF-8: strings with raw control characters do not pass the walk), so a formatter can copy
// it instead of compacting it again.
func (w *Walk) Spaced() bool { return w.spaced }

// space is SkipSpace noting whether there was any.
func (w *Walk) space(d []byte, i int) int {
	if i < len(d) && d[i] > ' ' {
		return i
	}
	j := SkipSpace(d, i)
	if j != i {
		w.spaced = true
	}
	return j
}

// Skip is the package's Skip, noting whitespace in w.
func (w *Walk) Skip(d []byte, i, depth int) (int, error) {
	if i >= len(d) {
		return i, syntaxErr(i, "unexpected end of input")
	}
	switch c := d[i]; {
	case c == '"':
		end, _, err := SkipString(d, i)
		return end, err
	case c == '{':
		return w.skipObject(d, i, depth+1)
	case c == '[':
		return w.skipArray(d, i, depth+1)
	case c == 't':
		return skipLiteral(d, i, "true")
	case c == 'f':
		return skipLiteral(d, i, "false")
	case c == 'n':
		return skipLiteral(d, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		end, ok := scanNumber(d, i)
		if !ok {
			return end, syntaxErr(i, "invalid number")
		}
		return end, nil
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

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber checks the RFC 8259 number starting at d[i] (a '-' or a digit) and returns the
// index just past it, or false where the grammar is broken.
func scanNumber(d []byte, i int) (int, bool) {
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return i, false
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i < len(d) && IsDigit(d[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !IsDigit(d[i]) {
			return i, false
		}
		for i < len(d) && IsDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !IsDigit(d[i]) {
			return i, false
		}
		for i < len(d) && IsDigit(d[i]) {
			i++
		}
	}
	return i, true
}

func isHex(c byte) bool {
	return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// SkipString checks the string starting at the quote d[i] and returns the index past its
// closing quote and whether it holds escapes (which decide whether it can be used as is).
func SkipString(d []byte, i int) (int, bool, error) {
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
// 0x20. Bytes above the first such byte may be flagged wrongly (borrows propagate upwards), so
// only the lowest flag is meaningful; it is exact.
func specialMask(w uint64) uint64 {
	quote := w ^ (ones * '"')
	bslash := w ^ (ones * '\\')
	zeroQ := (quote - ones) &^ quote
	zeroB := (bslash - ones) &^ bslash
	ctl := (w - ones*0x20) &^ w
	return (zeroQ | zeroB | ctl) & highs
}

// skipObject and skipArray spell out the walks of walkMembers and walkElements instead of
// calling them with a closure: they recurse, the compiler then moves every such closure to
// the heap, and that doubled the allocations of parsing a record.
func (w *Walk) skipObject(d []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	i, empty := w.open(d, i, '}')
	if empty {
		return i, nil
	}
	for {
		_, _, vs, err := w.memberKey(d, i)
		if err != nil {
			return vs, err
		}
		if i, err = w.Skip(d, vs, depth); err != nil {
			return i, err
		}
		if i, err = w.afterMember(d, i, '}'); err != nil || d[i-1] == '}' {
			return i, err
		}
	}
}

func (w *Walk) skipArray(d []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	i, empty := w.open(d, i, ']')
	if empty {
		return i, nil
	}
	for {
		var err error
		if i, err = w.Skip(d, i, depth); err != nil {
			return i, err
		}
		if i, err = w.afterMember(d, i, ']'); err != nil || d[i-1] == ']' {
			return i, err
		}
	}
}

// open reads past the opening bracket at d[i] and returns the index of the first member or
// element, or, for an empty container, the index past closer and true.
func (w *Walk) open(d []byte, i int, closer byte) (int, bool) {
	i = w.space(d, i+1)
	if i < len(d) && d[i] == closer {
		return i + 1, true
	}
	return i, false
}

// memberKey reads the key of the member at d[i] and the colon after it: the raw key (escapes
// undecoded; esc says whether it has any) and the index of the value.
func (w *Walk) memberKey(d []byte, i int) (key []byte, esc bool, vs int, err error) {
	if i >= len(d) {
		return nil, false, i, syntaxErr(i, "unexpected end of input in object")
	}
	if d[i] != '"' {
		return nil, false, i, syntaxErr(i, "object key is not a string")
	}
	ke, esc, err := SkipString(d, i)
	if err != nil {
		return nil, esc, ke, err
	}
	return w.afterKey(d, i, ke, esc)
}

// afterKey reads the colon after the key d[i:ke] and returns what memberKey returns.
func (w *Walk) afterKey(d []byte, i, ke int, esc bool) ([]byte, bool, int, error) {
	j := w.space(d, ke)
	if j >= len(d) || d[j] != ':' {
		return nil, esc, j, syntaxErr(j, "missing colon after object key")
	}
	return d[i+1 : ke-1], esc, w.space(d, j+1), nil
}

// Open, MemberKey and AfterMember walk an object or an array one member at a time, for a
// caller that reads values as it goes and recurses into them: the walk of WalkMembers without
// a call through a closure for every member. Open reads past the '{' or '[' at d[i] and
// returns the index of the first member or element, or the index past the container and true
// when it is empty.
func Open(d []byte, i int) (next int, empty bool) {
	var w Walk
	closer := byte('}')
	if i < len(d) && d[i] == '[' {
		closer = ']'
	}
	return w.open(d, i, closer)
}

// MemberKey reads the key of the object member at d[i] and the colon after it, and returns
// the raw key (escapes undecoded; esc says whether it has any) and the index of the value,
// which the caller checks. It is called for every member of a walk, so the compact case
// ("key":value) is taken before the general one.
func MemberKey(d []byte, i int) (key []byte, esc bool, vs int, err error) {
	var w Walk
	if i >= len(d) || d[i] != '"' {
		return w.memberKey(d, i) // which says what is wrong
	}
	ke, esc, err := SkipString(d, i)
	switch {
	case err != nil:
		return nil, esc, ke, err
	case ke+1 < len(d) && d[ke] == ':' && d[ke+1] > ' ':
		return d[i+1 : ke-1], esc, ke + 1, nil
	}
	return w.afterKey(d, i, ke, esc)
}

// AfterMember reads what follows a member or element ending at d[i] in a container closed by
// closer ('}' or ']'): after a comma it returns the index of the next one, after the closer
// the index past it and true. Like MemberKey, it takes the compact case first.
func AfterMember(d []byte, i int, closer byte) (next int, closed bool, err error) {
	if i+1 < len(d) {
		if c := d[i]; c == closer {
			return i + 1, true, nil
		} else if c == ',' && d[i+1] > ' ' {
			return i + 1, false, nil
		}
	}
	var w Walk
	next, err = w.afterMember(d, i, closer)
	return next, err == nil && d[next-1] == closer, err
}

// afterMember reads what follows a member or element ending at d[i]: a comma, after which it
// returns the index of the next one, or the closer, after which it returns the index past it.
func (w *Walk) afterMember(d []byte, i int, closer byte) (int, error) {
	i = w.space(d, i)
	if i >= len(d) {
		if closer == '}' {
			return i, syntaxErr(i, "unexpected end of input in object")
		}
		return i, syntaxErr(i, "unexpected end of input in array")
	}
	switch d[i] {
	case ',':
		return w.space(d, i+1), nil
	case closer:
		return i + 1, nil
	}
	if closer == '}' {
		return i, syntaxErr(i, "expected comma or end of object")
	}
	return i, syntaxErr(i, "expected comma or end of array")
}

// WalkMembers checks the object starting at d[i] ('{') member by member and returns the index
// just past it. For each member it calls value with the raw key (escapes undecoded; esc says
// whether it has any) and the index of the value's first byte in d; value must check the value
// and return the index just past it, or an error. It is the walk for callers that read nested
// values as they go, which EachMember would skip first.
func WalkMembers(d []byte, i int, value func(key []byte, esc bool, vs int) (int, error)) (int, error) {
	var w Walk
	return w.walkMembers(d, i, value)
}

func (w *Walk) walkMembers(d []byte, i int, value func(key []byte, esc bool, vs int) (int, error)) (int, error) {
	i, empty := w.open(d, i, '}')
	if empty {
		return i, nil
	}
	for {
		key, esc, vs, err := w.memberKey(d, i)
		if err != nil {
			return vs, err
		}
		ve, err := value(key, esc, vs)
		if err != nil {
			return ve, err
		}
		if i, err = w.afterMember(d, ve, '}'); err != nil || d[i-1] == '}' {
			return i, err
		}
	}
}

// WalkElements checks the array starting at d[i] ('[') and returns the index just past it. For
// each element it calls value with the index of the element's first byte in d; value must
// check the element and return the index just past it, or an error.
func WalkElements(d []byte, i int, value func(vs int) (int, error)) (int, error) {
	var w Walk
	return w.walkElements(d, i, value)
}

func (w *Walk) walkElements(d []byte, i int, value func(vs int) (int, error)) (int, error) {
	i, empty := w.open(d, i, ']')
	if empty {
		return i, nil
	}
	for {
		if i >= len(d) {
			return i, syntaxErr(i, "unexpected end of input in array")
		}
		ve, err := value(i)
		if err != nil {
			return ve, err
		}
		if i, err = w.afterMember(d, ve, ']'); err != nil || d[i-1] == ']' {
			return i, err
		}
	}
}

// EachMember checks the object obj (which must start with '{'; whatever follows the object is
// not looked at; depth is how many arrays and objects enclose it) and calls fn with the raw
// key (without quotes, escapes undecoded; esc says whether it has any) and the raw value of
// every member, in order. It returns the index just past the object, so that a caller can
// check an object and read its members in a single pass.
func EachMember(obj []byte, depth int, fn func(key, val []byte, esc bool)) (int, error) {
	var w Walk
	return w.EachMember(obj, depth, fn)
}

// EachMember is the package's EachMember, noting whitespace in w.
func (w *Walk) EachMember(obj []byte, depth int, fn func(key, val []byte, esc bool)) (int, error) {
	if err := checkOpen(obj, '{', depth); err != nil {
		return 0, err
	}
	return w.walkMembers(obj, 0, func(key []byte, esc bool, vs int) (int, error) {
		ve, err := w.Skip(obj, vs, depth+1)
		if err == nil {
			fn(key, obj[vs:ve], esc)
		}
		return ve, err
	})
}

// checkOpen checks that d starts a container with open and that one more level of nesting is
// allowed.
func checkOpen(d []byte, open byte, depth int) error {
	if len(d) == 0 || d[0] != open {
		if open == '{' {
			return syntaxErr(0, "not an object")
		}
		return syntaxErr(0, "not an array")
	}
	if depth+1 > MaxDepth {
		return syntaxErr(0, "nesting too deep")
	}
	return nil
}

// EachMemberLazy is EachMember for callers that want to read a large value once instead of
// having it skipped and then reading it again: fn sees each member's raw key before the value,
// and when it returns a scanner and true, the scanner is given the input from the value's
// first byte on and must check the value and return the index just past it (relative to what
// it was given). Otherwise the value is skipped.
func EachMemberLazy(obj []byte, depth int, fn func(key []byte, esc bool) (func(rest []byte) (int, error), bool)) (int, error) {
	if err := checkOpen(obj, '{', depth); err != nil {
		return 0, err
	}
	var w Walk
	return w.walkMembers(obj, 0, func(key []byte, esc bool, vs int) (int, error) {
		scan, ok := fn(key, esc)
		if !ok {
			return w.Skip(obj, vs, depth+1)
		}
		if vs >= len(obj) {
			return vs, syntaxErr(vs, "unexpected end of input")
		}
		n, err := scan(obj[vs:])
		return vs + n, err
	})
}

// EachElement checks the array arr (which must start with '['; depth is how many arrays and
// objects enclose it) and calls fn with the raw bytes of every element, in order. It returns
// the index just past the array.
func EachElement(arr []byte, depth int, fn func(val []byte)) (int, error) {
	if err := checkOpen(arr, '[', depth); err != nil {
		return 0, err
	}
	var w Walk
	return w.walkElements(arr, 0, func(vs int) (int, error) {
		ve, err := w.Skip(arr, vs, depth+1)
		if err == nil {
			fn(arr[vs:ve])
		}
		return ve, err
	})
}
