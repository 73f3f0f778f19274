package logrhythm

import (
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// appendKV writes `|k=v|k=v|`, the Open Collector's own output layout. Keys are fixed schema
// names and values are scrubbed of `|`, so splitting on `|` and then on the first `=` gives
// every field back.
func appendKV(dst []byte, fields []field) []byte {
	dst = append(dst, '|')
	for _, f := range fields {
		dst = append(dst, f.key...)
		dst = append(dst, '=')
		dst = append(dst, f.value...)
		dst = append(dst, '|')
	}
	return dst
}

func (f *Formatter) appendJSON(dst []byte, fields []field) []byte {
	dst = append(dst, '{')
	first := true
	comma := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	whsdp := f.cfg.WHSDP
	for _, fd := range fields {
		// Keep whsdp in sorted position so that the whole object is in key order.
		if whsdp && fd.key > "whsdp" {
			comma()
			dst = append(dst, `"whsdp":true`...)
			whsdp = false
		}
		comma()
		dst = jsonx.AppendQuote(dst, fd.key)
		dst = append(dst, ':')
		if fd.number {
			dst = append(dst, fd.value...)
		} else {
			dst = jsonx.AppendQuote(dst, fd.value)
		}
	}
	if whsdp {
		comma()
		dst = append(dst, `"whsdp":true`...)
	}
	return append(dst, '}')
}

// originalMessage returns raw as compact JSON text with every `|` written as the JSON escape
// \u007c (and DEL as \u007f), so the text carries no pipe or control byte yet still decodes to
// exactly what Defender wrote.
// Invalid UTF-8 becomes \ufffd. Text that is not JSON is scrubbed like any other value.
func originalMessage(raw []byte, max int) string {
	if !jsonx.Valid(raw) {
		return scrub(string(raw), max)
	}
	out := make([]byte, 0, len(raw)+16)
	inString, escaped := false, false
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c >= utf8.RuneSelf:
			// Only inside strings in valid JSON.
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, `\ufffd`...)
			} else {
				out = append(out, raw[i:i+size]...)
			}
			escaped = false
			i += size
			continue
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++ // insignificant whitespace: compact
			continue
		}
		switch c {
		case '|':
			out = append(out, `\u007c`...)
		case 0x7f:
			// JSON lets DEL stand raw inside a string; the collector's next hop must not see
			// a control byte, so it travels escaped like the pipe.
			out = append(out, `\u007f`...)
		default:
			out = append(out, c)
		}
		i++
	}
	if max > 0 && len(out) > max {
		out = truncateJSONText(out, max)
	}
	return string(out)
}

// truncateJSONText cuts text to at most max bytes without splitting a character or a
// backslash escape, so what is left still scrubs to itself.
func truncateJSONText(text []byte, max int) []byte {
	cut := max
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	// Step back over a partial escape: find the last backslash run before cut.
	for i := cut - 1; i >= 0 && i >= cut-6; i-- {
		if text[i] != '\\' {
			continue
		}
		run := 0
		for j := i; j >= 0 && text[j] == '\\'; j-- {
			run++
		}
		if run%2 == 0 {
			break // an escaped backslash, complete
		}
		end := i + 2
		if i+1 < len(text) && text[i+1] == 'u' {
			end = i + 6
		}
		if end > cut {
			cut = i
		}
		break
	}
	return text[:cut]
}
