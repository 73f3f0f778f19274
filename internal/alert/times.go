package alert

import (
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// Times arrive in more forms than RFC 3339: Defender writes up to seven fractional digits and
// sometimes no zone, the Log Analytics and Activity Log paths write a space for the T, other
// producers lower-case letters, epoch seconds or milliseconds (as numbers or strings), and
// UTC leap seconds. All of them are read; a time without a zone is UTC.

// timeState says what readTime found.
type timeState int8

const (
	timeAbsent     timeState = iota // no member, null, or an empty string
	timeRead                        // a time
	timeUnreadable                  // a value that is there but is no time
)

// epochMillisFrom is where an epoch number is taken as milliseconds rather than seconds:
// 1e11 seconds is the year 5138, 1e11 milliseconds March 1973.
const epochMillisFrom = 1e11

// maxEpochSeconds is 9999-12-31T23:59:59Z, the last second the formats can write.
const maxEpochSeconds = 253402300799

// readTime reads the JSON value v (a member's raw bytes) as a time in UTC.
func readTime(v []byte) (time.Time, timeState) {
	if len(v) == 0 || v[0] == 'n' {
		return time.Time{}, timeAbsent
	}
	var s string
	switch c := v[0]; {
	case c == '"':
		var ok bool
		if s, ok = jsonx.DecodeString(v); !ok {
			return time.Time{}, timeUnreadable
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return time.Time{}, timeAbsent
		}
	case c == '-' || c >= '0' && c <= '9':
		s = string(v)
	default:
		return time.Time{}, timeUnreadable
	}
	if t, ok := parseEpoch(s); ok {
		return t, timeRead
	}
	if t, ok := parseTimestamp(s); ok {
		return t, timeRead
	}
	if t, ok := parseGoLayouts(s); ok {
		return t, timeRead
	}
	return time.Time{}, timeUnreadable
}

// layoutNoZone is RFC 3339 without a zone, in time.Parse's notation.
const layoutNoZone = "2006-01-02T15:04:05.999999999"

// parseGoLayouts keeps what time.Parse accepted before parseTimestamp existed, such as a
// one-digit hour, so that no time that was read once stops being read.
func parseGoLayouts(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.ParseInLocation(layoutNoZone, s, time.UTC); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// parseTime parses the text s as readTime does a JSON string, and returns the zero time for
// anything that is not a time.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if t, ok := parseEpoch(s); ok {
		return t
	}
	if t, ok := parseTimestamp(s); ok {
		return t
	}
	t, _ := parseGoLayouts(s)
	return t
}

// parseEpoch reads a JSON number (fraction and exponent allowed) as epoch seconds, or as
// milliseconds from epochMillisFrom on. The decimal text is read exactly, not through a
// float, so 1683811029.017 is .017 and not .016999.
func parseEpoch(s string) (time.Time, bool) {
	i, neg := 0, false
	if i < len(s) && s[i] == '-' {
		neg, i = true, i+1
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := s[intStart:i]
	if intDigits == "" || len(intDigits) > 1 && intDigits[0] == '0' { // JSON number grammar
		return time.Time{}, false
	}
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if frac = s[fs:i]; frac == "" {
			return time.Time{}, false
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg, i = s[i] == '-', i+1
		}
		es := i
		for i < len(s) && isDigit(s[i]) {
			// Any exponent past a few digits is out of range either way; stop growing it.
			if exp < 1e5 {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == es {
			return time.Time{}, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return time.Time{}, false
	}
	// digits with the decimal point after point of them.
	digits := strings.TrimLeft(intDigits+frac, "0")
	point := len(intDigits) + exp - (len(intDigits) + len(frac) - len(digits))
	if digits == "" {
		return time.Unix(0, 0).UTC(), true
	}
	if point > 16 { // past any epoch the formats can write, in seconds or milliseconds
		return time.Time{}, false
	}
	if point < -9 { // less than a nanosecond
		return time.Unix(0, 0).UTC(), true
	}
	var whole int64
	for k := 0; k < point; k++ {
		whole *= 10
		if k < len(digits) {
			whole += int64(digits[k] - '0')
		}
	}
	// The fractional digits, as nanoseconds of the unit.
	fracDigits := digits
	if point > 0 {
		fracDigits = digits[min(point, len(digits)):]
	} else {
		fracDigits = strings.Repeat("0", -point) + digits
	}
	unitNanos := int64(time.Second)
	if whole >= epochMillisFrom {
		unitNanos = int64(time.Millisecond)
	}
	var nanos int64
	for k, scale := 0, unitNanos/10; k < len(fracDigits) && scale > 0; k, scale = k+1, scale/10 {
		nanos += int64(fracDigits[k]-'0') * scale
	}
	sec, nsec := whole, nanos
	if unitNanos == int64(time.Millisecond) {
		sec, nsec = whole/1000, (whole%1000)*int64(time.Millisecond)+nanos
	}
	if sec > maxEpochSeconds {
		return time.Time{}, false
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec).UTC(), true
}

// parseTimestamp reads RFC 3339 and what producers write instead of it:
//
//	YYYY-MM-DD (T|t|space) hh:mm:ss [.fraction] [Z|z|±hh:mm|±hhmm]
//
// with any number of fractional digits (nanoseconds kept, further digits dropped), no zone
// meaning UTC, and second 60 (a leap second) read as the first instant of the next minute,
// which is where Unix time puts it.
func parseTimestamp(s string) (time.Time, bool) {
	num := func(from, n int) (int, bool) {
		if from+n > len(s) {
			return 0, false
		}
		v := 0
		for _, c := range []byte(s[from : from+n]) {
			if !isDigit(c) {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	sep := func(at int, cs string) bool { return at < len(s) && strings.IndexByte(cs, s[at]) >= 0 }
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		!sep(4, "-") || !sep(7, "-") || !sep(10, "Tt ") || !sep(13, ":") || !sep(16, ":") {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for scale := int(time.Second / 10); i < len(s) && isDigit(s[i]); i++ {
			nsec += int(s[i]-'0') * scale
			scale /= 10
		}
		if i == fs {
			return time.Time{}, false
		}
	}
	offset := 0
	switch {
	case i == len(s):
	case (s[i] == 'Z' || s[i] == 'z') && i+1 == len(s):
	case s[i] == '+' || s[i] == '-':
		var oh, om int
		var okh, okm bool
		switch rest := s[i+1:]; {
		case len(rest) == 5 && rest[2] == ':':
			oh, okh = num(i+1, 2)
			om, okm = num(i+4, 2)
		case len(rest) == 4:
			oh, okh = num(i+1, 2)
			om, okm = num(i+3, 2)
		}
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if s[i] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// timeSource is one member a record's time may come from, named as the notes name it.
type timeSource struct {
	name string
	v    []byte
}

// chooseTime returns the first readable time among srcs, in order, and when a member before
// the one used (or every member) was there but unreadable, a note naming it and what was used
// instead, for Record.TimeFallback.
func chooseTime(srcs ...timeSource) (time.Time, string) {
	bad := ""
	for _, s := range srcs {
		t, st := readTime(s.v)
		switch st {
		case timeRead:
			if bad != "" {
				return t, bad + " unreadable, " + s.name + " used"
			}
			return t, ""
		case timeUnreadable:
			if bad == "" {
				bad = s.name
			}
		}
	}
	if bad != "" {
		return time.Time{}, bad + " unreadable, no other time field"
	}
	return time.Time{}, ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
