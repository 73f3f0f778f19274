package syslog

import (
	"fmt"
	"strconv"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
)

// HeaderWriter writes syslog headers. It is built once from validated settings and is safe
// for concurrent use.
type HeaderWriter struct {
	rfc3164  bool
	facility int
	sev      [alert.SeverityHigh + 1]int
	hostname string // already sanitised, "-" when empty
	appName  string
	procID   string
	now      func() time.Time
}

// NewHeaderWriter validates c and returns a writer for it.
func NewHeaderWriter(c HeaderConfig) (*HeaderWriter, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("syslog header: %w", err)
	}
	w := &HeaderWriter{rfc3164: c.Header == HeaderRFC3164, now: c.Now}
	w.facility, _ = ParseFacility(c.Facility)
	for s := alert.SeverityNone; s <= alert.SeverityHigh; s++ {
		w.sev[s], _ = ParseSeverity(c.SeverityMap.severityOf(s))
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.hostname = string(AppendHeaderField(nil, c.Hostname, 255))
	w.appName = string(AppendHeaderField(nil, c.AppName, 48))
	w.procID = string(AppendHeaderField(nil, c.ProcID, 128))
	if w.rfc3164 {
		w.appName = string(appendTag(nil, c.AppName))
	}
	return w, nil
}

// RFC3164 reports whether the writer writes the BSD header.
func (w *HeaderWriter) RFC3164() bool { return w.rfc3164 }

// PRI returns the PRIVAL of a record of severity s.
func (w *HeaderWriter) PRI(s alert.Severity) int {
	if s < alert.SeverityNone || s > alert.SeverityHigh {
		s = alert.SeverityNone
	}
	return w.facility*8 + w.sev[s]
}

// Append writes rec's header and the space that ends it.
//
// RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID " with MSGID = the record kind;
// STRUCTURED-DATA comes next. RFC 3164: "<PRI>Mmm dd hh:mm:ss HOSTNAME " followed, when tag
// is true, by "TAG: " or "TAG[PROCID]: "; MSG comes next. CEF passes tag=false because
// Sentinel takes a tag in front of "CEF:" as the program name and misses the CEF payload.
func (w *HeaderWriter) Append(dst []byte, rec *alert.Record, tag bool) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(w.PRI(rec.Severity)), 10)
	dst = append(dst, '>')
	if w.rfc3164 {
		t := rec.Time
		if t.IsZero() {
			t = w.now()
		}
		dst = AppendTimestamp3164(dst, t)
		dst = append(dst, ' ')
		dst = append(dst, w.hostname...)
		dst = append(dst, ' ')
		if tag {
			dst = append(dst, w.appName...)
			if w.procID != "-" {
				dst = append(dst, '[')
				dst = append(dst, w.procID...)
				dst = append(dst, ']')
			}
			dst = append(dst, ':', ' ')
		}
		return dst
	}
	dst = append(dst, '1', ' ')
	dst = AppendTimestamp(dst, rec.Time)
	dst = append(dst, ' ')
	dst = append(dst, w.hostname...)
	dst = append(dst, ' ')
	dst = append(dst, w.appName...)
	dst = append(dst, ' ')
	dst = append(dst, w.procID...)
	dst = append(dst, ' ')
	dst = AppendHeaderField(dst, string(rec.Kind), 32)
	return append(dst, ' ')
}

// AppendTimestamp writes an RFC 5424 TIMESTAMP: UTC with "Z", at most six fractional digits
// (truncated, never rounded into the next second), "-" for the zero time or a year RFC 5424
// cannot write.
func AppendTimestamp(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, '-')
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.Year() < 0 || t.Year() > 9999 {
		return append(dst, '-')
	}
	return t.AppendFormat(dst, "2006-01-02T15:04:05.999999Z07:00")
}

// AppendTimestamp3164 writes an RFC 3164 TIMESTAMP in UTC: "Mmm dd hh:mm:ss" with the day
// padded by a space ("Jun  3"), no year and no zone, as RFC 3164 §4.1.2 prescribes.
func AppendTimestamp3164(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "Jan _2 15:04:05")
}

// AppendHeaderField writes s as an RFC 5424 header field: printable US-ASCII (33–126) only,
// every other character replaced by '_' (one per character, '?' per invalid byte), cut at max
// bytes, and the nil value "-" when empty.
func AppendHeaderField(dst []byte, s string, max int) []byte {
	start := len(dst)
	for _, r := range s {
		if len(dst)-start >= max {
			break
		}
		switch {
		case r == 0xFFFD:
			dst = append(dst, '?')
		case r >= 33 && r <= 126:
			dst = append(dst, byte(r))
		default:
			dst = append(dst, '_')
		}
	}
	if len(dst) == start {
		dst = append(dst, '-')
	}
	return dst
}

// appendTag writes an RFC 3164 TAG: at most 32 characters, letters, digits and "-_./"; any
// other character is dropped. RFC 3164 says alphanumeric, but every receiver in use (rsyslog,
// syslog-ng, Sentinel's agent) reads the TAG up to ':' or '[', and "defender-for-cloud" reads
// better than "defenderforcloud".
func appendTag(dst []byte, s string) []byte {
	start := len(dst)
	for i := 0; i < len(s) && len(dst)-start < 32; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/' {
			dst = append(dst, c)
		}
	}
	if len(dst) == start {
		dst = append(dst, '-')
	}
	return dst
}
