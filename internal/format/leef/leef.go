// Package leef renders Defender for Cloud records as IBM QRadar LEEF 2.0 events:
//
//	LEEF:2.0|Microsoft|Microsoft Defender for Cloud|<version>|<event id>|<delimiter>|key=value<delimiter>key=value…
//
// The event id and `cat` are the alert type (or the record kind for other records), which
// together pick the QRadar QID. Output is the LEEF event only; a syslog header, when one is
// wanted, comes from Config.Prefix or from the transport.
//
// LEEF has no escape for the attribute delimiter or for line breaks inside values, so values
// have them, and every other control character (C0, DEL, C1 such as NEL, U+2028, U+2029),
// replaced by a space; header fields escape `\` and `|` with a backslash as CEF does and
// carry control characters as spaces too. Values are capped at Config.MaxValue bytes (1024 by
// default), cut on a character boundary.
package leef

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
)

// Config holds the LEEF settings.
type Config struct {
	// Delimiter separates attributes: one ASCII character ("^"), or its hex form ("x09",
	// "0x09"). Default tab, written as x09 in the header.
	Delimiter string
	// Vendor, Product and Version fill the LEEF header. Defaults "Microsoft",
	// "Microsoft Defender for Cloud", "1.0". QRadar identifies the log source type by them.
	Vendor, Product, Version string
	// MaxValue caps every attribute value in bytes (0: no cap), cut on a character boundary.
	// Default 1024: QRadar truncates whole events at its payload limit (4096 bytes by default),
	// so one long description must not crowd out the other attributes.
	MaxValue int
	// Prefix, when set, writes a header (an RFC 3164 or RFC 5424 syslog header followed by
	// its space) before the LEEF event. It must append to dst and return it.
	Prefix func(dst []byte, rec *alert.Record) []byte
}

// DefaultConfig returns the defaults: tab-delimited LEEF 2.0.
func DefaultConfig() Config {
	return Config{
		Delimiter: "x09",
		Vendor:    "Microsoft",
		Product:   "Microsoft Defender for Cloud",
		Version:   "1.0",
		MaxValue:  1024,
	}
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseDelimiter(c.Delimiter); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct{ name, v string }{{"Vendor", c.Vendor}, {"Product", c.Product}, {"Version", c.Version}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("leef: %s is required", f.name))
		}
	}
	if c.MaxValue < 0 {
		errs = append(errs, fmt.Errorf("leef: MaxValue %d: must be 0 (no cap) or more", c.MaxValue))
	}
	return errors.Join(errs...)
}

// parseDelimiter accepts one printable ASCII character or a hex form, and refuses characters
// that would make the event ambiguous.
func parseDelimiter(s string) (byte, error) {
	var d byte
	switch {
	case s == "":
		d = '\t'
	case len(s) == 1:
		d = s[0]
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "x"):
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0"), "x"), 16, 8)
		if err != nil {
			return 0, fmt.Errorf("leef: Delimiter %q: want one character or hex such as x09: %w", s, err)
		}
		d = byte(n)
	default:
		return 0, fmt.Errorf("leef: Delimiter %q: want one character or hex such as x09", s)
	}
	switch {
	case d >= utf8.RuneSelf:
		return 0, fmt.Errorf("leef: Delimiter %q: must be ASCII", s)
	case d == '|' || d == '=' || d == '\\' || d == ' ' || d == '\r' || d == '\n' || d == 0:
		return 0, fmt.Errorf("leef: Delimiter %q: must not be '|', '=', '\\', space, CR, LF or NUL", s)
	case d >= '0' && d <= '9' || d >= 'A' && d <= 'Z' || d >= 'a' && d <= 'z':
		return 0, fmt.Errorf("leef: Delimiter %q: must not be a letter or digit", s)
	}
	return d, nil
}

// Formatter renders LEEF 2.0 events. It is safe for concurrent use.
type Formatter struct {
	cfg    Config
	delim  byte
	header []byte // "LEEF:2.0|vendor|product|version|", escaped once
	dfield []byte // "<delimiter field>|"
}

var _ format.Formatter = (*Formatter)(nil)

// New returns a Formatter for a valid cfg.
func New(cfg Config) (*Formatter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, _ := parseDelimiter(cfg.Delimiter)
	f := &Formatter{cfg: cfg, delim: d}
	f.header = append(f.header, "LEEF:2.0|"...)
	for _, v := range []string{cfg.Vendor, cfg.Product, cfg.Version} {
		f.header = appendHeader(f.header, v)
		f.header = append(f.header, '|')
	}
	if d > 0x20 && d < 0x7f {
		f.dfield = append(f.dfield, d)
	} else {
		f.dfield = fmt.Appendf(f.dfield, "x%02X", d)
	}
	f.dfield = append(f.dfield, '|')
	return f, nil
}

// Attr is one attribute as Format writes it, for tests and documentation.
type Attr struct{ Key, Value string }

// Format appends rec's LEEF event to dst.
func (f *Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if rec == nil {
		return dst, errors.New("leef: nil record")
	}
	if f.cfg.Prefix != nil {
		dst = f.cfg.Prefix(dst, rec)
	}
	dst = append(dst, f.header...)
	dst = appendHeader(dst, eventID(rec))
	dst = append(dst, '|')
	dst = append(dst, f.dfield...)
	for i, a := range f.Attrs(rec) {
		if i > 0 {
			dst = append(dst, f.delim)
		}
		dst = append(dst, a.Key...)
		dst = append(dst, '=')
		dst = append(dst, a.Value...)
	}
	return dst, nil
}

// ExtendedPropertiesRead names a Graph alert's verdict, LEEF's one use of them.
func (f *Formatter) ExtendedPropertiesRead() []string {
	return []string{"classification", "determination"}
}

// Attrs returns the attributes Format writes for rec, sorted by key, values cleaned.
func (f *Formatter) Attrs(rec *alert.Record) []Attr {
	as := make([]Attr, 0, 32)
	add := func(k, v string) {
		if v = f.clean(v); v != "" {
			as = append(as, Attr{k, v})
		}
	}
	add("cat", eventID(rec))
	if !rec.Time.IsZero() {
		add("devTime", rec.Time.UTC().Format(devTimeLayout))
		add("devTimeFormat", devTimeFormat)
	}
	if s := sev(rec.Severity); s > 0 {
		add("sev", strconv.Itoa(s))
	}
	add("kind", string(rec.Kind))
	add("status", rec.Status)
	add("resource", rec.ResourceID)
	add("subscriptionId", rec.SubscriptionID)
	add("description", rec.Description)
	if a := rec.Alert; a != nil {
		e := a.Observables()
		add("alertId", firstNonEmpty(a.SystemAlertID, rec.ID))
		add("alertName", firstNonEmpty(a.DisplayName, rec.DisplayName))
		add("alertUri", a.AlertURI)
		if rec.Kind == alert.KindGraphAlert {
			// The XDR verdict, which only Graph alerts carry.
			add("classification", a.ExtendedProperties["classification"])
			add("determination", a.ExtendedProperties["determination"])
		}
		add("policy", strings.Join(a.Intent, ","))
		add("techniques", strings.Join(a.Techniques, ","))
		add("identHostName", firstNonEmpty(a.CompromisedEntity, e.Host))
		add("src", e.SourceIP)
		add("dst", e.DestinationIP)
		add("proto", e.Protocol)
		add("usrName", e.Login)
		add("url", e.URL)
		add("cmdLine", e.CommandLine)
		add("processName", e.Process)
		add("fileName", e.File)
		add("fileHash", e.FileHash)
		add("malwareName", e.Malware)
		if p, ok := port(e.SourcePort); ok {
			add("srcPort", p)
		}
		if p, ok := port(e.DestinationPort); ok {
			add("dstPort", p)
		}
	} else {
		add("name", rec.DisplayName)
		add("recordId", rec.ID)
	}
	slices.SortFunc(as, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
	return as
}

// devTimeLayout and devTimeFormat are the same instant in Go and Java SimpleDateFormat
// notation; the pattern is one of those IBM's LEEF guide suggests.
const (
	devTimeLayout = "Jan 02 2006 15:04:05.000 GMT" // always rendered in UTC
	devTimeFormat = "MMM dd yyyy HH:mm:ss.SSS z"
)

func eventID(rec *alert.Record) string {
	if rec.Alert != nil && rec.Alert.AlertType != "" {
		return rec.Alert.AlertType
	}
	return string(rec.Kind)
}

// sev maps Defender's severity onto LEEF's 1–10 with the bands CEF uses (3 low, 5 medium,
// 8 high), so that the same alert ranks alike in QRadar and ArcSight.
func sev(s alert.Severity) int {
	switch s {
	case alert.SeverityInformational:
		return 1
	case alert.SeverityLow:
		return 3
	case alert.SeverityMedium:
		return 5
	case alert.SeverityHigh:
		return 8
	}
	return 0
}

func port(s string) (string, bool) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return "", false
	}
	return strconv.FormatUint(n, 10), true
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// clean replaces the delimiter and every control character (LEEF escapes none of them) with
// a space and invalid UTF-8 with U+FFFD, then caps the value on a character boundary.
// Control characters are C0, DEL and C1 (U+0080–U+009F, NEL among them) as in the syslog and
// CEF formats, and U+2028 and U+2029, which Unicode-aware line readers take as line ends.
func (f *Formatter) clean(s string) string {
	return replace(s, f.delim, f.cfg.MaxValue)
}

func replace(s string, delim byte, max int) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == delim || c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			ok = false
			break
		}
	}
	if ok && (max <= 0 || len(s) <= max) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == rune(delim) || isControl(r) {
			r = ' '
		}
		if max > 0 && b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// isControl reports the characters LEEF carries as a space: C0, DEL, C1, U+2028, U+2029.
func isControl(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029'
}

// appendHeader writes a header field: `\` and `|` escaped with a backslash (backslash first),
// control characters (see isControl) as spaces, invalid UTF-8 as U+FFFD.
func appendHeader(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '\\' || r == '|':
			dst = append(dst, '\\', byte(r))
		case isControl(r):
			dst = append(dst, ' ')
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
