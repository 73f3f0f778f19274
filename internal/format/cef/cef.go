// Package cef renders records as ArcSight Common Event Format lines inside a syslog header:
//
//	<PRI>Mmm dd hh:mm:ss host CEF:0|Microsoft|Microsoft Defender for Cloud|1.0|<signature>|<name>|<severity>| key=value …
//
// Header fields escape '\' and '|'; extension values escape '\', '=', LF (\n) and CR (\r),
// so a hostile alert field can neither add a header field nor forge an extension key. Every
// value is cut to its dictionary length after escaping, never inside an escape or a UTF-8
// character, and the output holds no raw CR, LF or NUL.
package cef

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

var _ format.Formatter = (*Formatter)(nil)

// Lengths from the CEF header rules and the ArcSight extension dictionary, in bytes of the
// escaped text.
const (
	maxSignature = 1023
	maxName      = 512
	maxString    = 1023
	maxShort     = 63
	maxCustom    = 4000
	maxDevExtID  = 255
	maxExtID     = 40
)

// Formatter renders CEF lines. It is safe for concurrent use.
type Formatter struct {
	hdr     *syslog.HeaderWriter
	prefix  string // "CEF:0|vendor|product|version|", escaped
	sev     [alert.SeverityHigh + 1]string
	noSpace bool
}

// New validates cfg and returns its formatter.
func New(cfg Config) (*Formatter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cef format: %w", err)
	}
	hdr, err := syslog.NewHeaderWriter(cfg.Syslog)
	if err != nil {
		return nil, err
	}
	p := []byte("CEF:0|")
	p = appendHeaderField(p, cfg.Vendor, 63)
	p = append(p, '|')
	p = appendHeaderField(p, cfg.Product, 63)
	p = append(p, '|')
	p = appendHeaderField(p, cfg.Version, 31)
	p = append(p, '|')
	f := &Formatter{hdr: hdr, prefix: string(p), noSpace: cfg.NoExtensionSpace}
	f.sev[alert.SeverityNone] = cfg.Severity.None
	f.sev[alert.SeverityInformational] = cfg.Severity.Informational
	f.sev[alert.SeverityLow] = cfg.Severity.Low
	f.sev[alert.SeverityMedium] = cfg.Severity.Medium
	f.sev[alert.SeverityHigh] = cfg.Severity.High
	return f, nil
}

// Format appends one syslog message carrying rec as CEF. It never fails.
func (f *Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	dst = f.hdr.Append(dst, rec, false)
	if !f.hdr.RFC3164() {
		dst = append(dst, '-', ' ') // no STRUCTURED-DATA, and no BOM before "CEF:"
	}
	return f.AppendCEF(dst, rec), nil
}

// ExtendedPropertiesRead names what act= and a Graph alert's verdict come from.
func (f *Formatter) ExtendedPropertiesRead() []string {
	return []string{"ActionTaken", "classification", "determination"}
}

// AppendCEF appends the bare CEF line for rec, without a syslog header.
func (f *Formatter) AppendCEF(dst []byte, rec *alert.Record) []byte {
	dst = append(dst, f.prefix...)
	dst = appendHeaderField(dst, signature(rec), maxSignature)
	dst = append(dst, '|')
	dst = appendHeaderField(dst, or(displayName(rec), string(rec.Kind)), maxName)
	dst = append(dst, '|')
	sev := rec.Severity
	if sev < alert.SeverityNone || sev > alert.SeverityHigh {
		sev = alert.SeverityNone
	}
	dst = append(dst, f.sev[sev]...)
	dst = append(dst, '|')
	e := extWriter{dst: dst, first: true, noSpace: f.noSpace}
	for _, kv := range Extension(rec) {
		e.add(kv.Key, kv.Value, kv.Max)
	}
	return e.dst
}

// csKeys are the custom string keys and their labels' keys, cs1 to cs6.
var csKeys = [...][2]string{
	{"cs1", "cs1Label"}, {"cs2", "cs2Label"}, {"cs3", "cs3Label"},
	{"cs4", "cs4Label"}, {"cs5", "cs5Label"}, {"cs6", "cs6Label"},
}

// Pair is one extension key, its unescaped value and its dictionary length limit.
type Pair struct {
	Key, Value string
	Max        int
}

// Extension returns rec's extension pairs in the order they are written (sorted by key).
// Empty values are left out when written.
//
// Alerts: act (ActionTaken), cat (intent), cs1 alert id, cs2 resource id, cs3 subscription,
// cs4 alert URI, cs5 techniques, cs6 compromised entity (each with its csNLabel),
// deviceExternalId (subscription), dhost (host entity or compromised entity), end,
// externalId (the alert id when it fits in 40 characters), flexString1 (status),
// flexString2 (Graph alerts: classification/determination, labelled Verdict), fname
// (file entity), msg (description), request (url entity), rt (time generated), src (ip
// entity), start, suser (account entity). Other kinds: cat (kind), cs1 record id, cs2, cs3,
// deviceExternalId, flexString1, msg, rt.
func Extension(rec *alert.Record) []Pair {
	ps := make([]Pair, 0, 32)
	add := func(k, v string, max int) { ps = append(ps, Pair{k, v, max}) }
	cs := func(n int, label, v string) {
		if v == "" {
			return
		}
		add(csKeys[n-1][0], v, maxCustom)
		add(csKeys[n-1][1], label, maxString)
	}
	ms := func(t time.Time) string {
		if t.IsZero() || t.UnixMilli() < 0 {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	a := rec.Alert
	if a == nil {
		// Kept in key order by hand; TestExtensionSorted guards it.
		add("cat", string(rec.Kind), maxString)
		cs(1, "RecordId", rec.ID)
		cs(2, "ResourceId", rec.ResourceID)
		cs(3, "SubscriptionId", rec.SubscriptionID)
		add("deviceExternalId", rec.SubscriptionID, maxDevExtID)
		if rec.Status != "" {
			add("flexString1", rec.Status, maxString)
			add("flexString1Label", "Status", 128)
		}
		add("msg", rec.Description, maxString)
		add("rt", ms(rec.Time), 20)
		return ps
	}
	id := or(a.SystemAlertID, rec.ID)
	sub := or(a.SubscriptionID, rec.SubscriptionID)
	ents := entities(a)
	add("act", a.ExtendedProperties["ActionTaken"], maxShort)
	add("cat", strings.Join(a.Intent, ","), maxString)
	cs(1, "AlertId", id)
	cs(2, "ResourceId", or(a.ResourceID, rec.ResourceID))
	cs(3, "SubscriptionId", sub)
	cs(4, "AlertUri", a.AlertURI)
	cs(5, "Techniques", strings.Join(a.Techniques, ","))
	cs(6, "CompromisedEntity", a.CompromisedEntity)
	add("deviceExternalId", sub, maxDevExtID)
	add("dhost", or(ents.host, a.CompromisedEntity), maxString)
	add("end", ms(a.EndTime), 20)
	var buf [128]byte // most ids fit: the escaped length is then measured without an allocation
	if len(appendExtValue(buf[:0], id, 1<<20)) <= maxExtID {
		add("externalId", id, maxExtID)
	}
	if st := or(a.Status, rec.Status); st != "" {
		add("flexString1", st, maxString)
		add("flexString1Label", "Status", 128)
	}
	if v := graphVerdict(rec); v != "" {
		add("flexString2", v, maxString)
		add("flexString2Label", "Verdict", 128)
	}
	add("fname", ents.file, maxString)
	add("msg", or(a.Description, rec.Description), maxString)
	add("request", ents.url, maxString)
	rt := firstTime(a.TimeGenerated, rec.Time, a.StartTime)
	if rec.Kind == alert.KindGraphAlert {
		// A Graph alert is re-read at every update: its time is the update's.
		rt = firstTime(rec.Time, a.TimeGenerated)
	}
	add("rt", ms(rt), 20)
	add("src", ents.ip, 45)
	add("start", ms(a.StartTime), 20)
	add("suser", ents.account, maxString)
	return ps
}

// graphVerdict is a Graph alert's XDR verdict as "classification/determination" ("" for other
// kinds, and when Graph has set neither).
func graphVerdict(rec *alert.Record) string {
	if rec.Kind != alert.KindGraphAlert || rec.Alert == nil {
		return ""
	}
	c, d := rec.Alert.ExtendedProperties["classification"], rec.Alert.ExtendedProperties["determination"]
	if c == "" && d == "" {
		return ""
	}
	return c + "/" + d
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func displayName(rec *alert.Record) string {
	if rec.Alert != nil && rec.Alert.DisplayName != "" {
		return rec.Alert.DisplayName
	}
	return rec.DisplayName
}

// signature is the Device Event Class ID: the alert type for alerts, the assessment key for
// recommendations and sub-assessments (stable across resources), the kind otherwise.
func signature(rec *alert.Record) string {
	if rec.Alert != nil && rec.Alert.AlertType != "" {
		return rec.Alert.AlertType
	}
	if rec.Kind == alert.KindRecommendation || rec.Kind == alert.KindSubAssessment {
		lower := strings.ToLower(rec.ID)
		if i := strings.LastIndex(lower, "/assessments/"); i >= 0 {
			key := rec.ID[i+len("/assessments/"):]
			if j := strings.IndexByte(key, '/'); j >= 0 {
				key = key[:j]
			}
			if key != "" {
				return key
			}
		}
	}
	return or(string(rec.Kind), string(alert.KindUnknown))
}

// entityValues are the first value of each entity kind that has a CEF key.
type entityValues struct {
	ip, host, account, file, url string
}

// entityFields are the entity fields CEF has keys for, as ScanEntities is asked for them.
var entityFields = []string{"Address", "HostName", "NetBiosName", "Name", "Url"}

func entities(a *alert.Alert) entityValues {
	// firstOf returns the first value of the fields (indexes into entityFields) of the
	// entities of one type, in EntityValues' order, that accept (nil: any) takes.
	firstOf := func(typ string, accept func(string) bool, fields ...int) string {
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = entityFields[f]
		}
		for _, v := range a.EntityValues(typ, names...) {
			if accept == nil || accept(v) {
				return v
			}
		}
		return ""
	}
	if a.Entities == nil && a.EntitiesJSON != nil {
		// Parsed without entities: read the five values straight from the list when it can
		// be, which saves most of CEF's cost on a large alert; otherwise decode a copy here
		// (the record is shared with other destinations).
		if ents, ok := a.ScanEntities(entityFields...); ok {
			firstOf = func(typ string, accept func(string) bool, fields ...int) string {
				return alert.ScannedFirst(ents, typ, accept, fields...)
			}
		} else {
			cp := *a
			cp.DecodeEntities()
			a = &cp
		}
	}
	var v entityValues
	firstOf("ip", func(s string) bool {
		addr, err := netip.ParseAddr(s)
		if err == nil {
			v.ip = addr.String()
		}
		return err == nil
	}, 0)
	v.host = firstOf("host", nil, 1, 2)
	v.account = firstOf("account", nil, 3)
	v.file = firstOf("file", nil, 3)
	v.url = firstOf("url", nil, 4)
	return v
}

type extWriter struct {
	dst     []byte
	first   bool
	noSpace bool
}

// add writes " key=value", or nothing when the value is empty once cleaned.
func (e *extWriter) add(key, value string, max int) {
	if value == "" {
		return
	}
	mark := len(e.dst)
	if !e.first || !e.noSpace {
		e.dst = append(e.dst, ' ')
	}
	e.dst = append(e.dst, key...)
	e.dst = append(e.dst, '=')
	start := len(e.dst)
	e.dst = appendExtValue(e.dst, value, max)
	if len(e.dst) == start {
		e.dst = e.dst[:mark]
		return
	}
	e.first = false
}

// appendExtValue writes an extension value: '\' → '\\', '=' → '\=', LF → '\n', CR → '\r',
// other control characters as a space, invalid UTF-8 as U+FFFD; leading and trailing spaces
// removed (CEF does not keep trailing spaces of the last pair, so no pair keeps them); at
// most max bytes, cut between whole escapes and characters.
func appendExtValue(dst []byte, s string, max int) []byte {
	s = strings.TrimLeft(s, " ")
	start := len(dst)
	for i := 0; i < len(s); {
		// Most of a value is printable ASCII, which stands for itself: copy such a run in
		// one append instead of a token at a time (a leading space after a skipped control
		// character is dropped like any other leading space).
		if j := i + plainRun(s[i:]); j > i {
			if len(dst) == start {
				for i < j && s[i] == ' ' {
					i++
				}
			}
			room := max - (len(dst) - start)
			if j-i > room {
				dst = append(dst, s[i:i+room]...)
				break
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		var tok [4]byte
		t, n := extToken(tok[:0], s[i:])
		if len(dst)-start+len(t) > max {
			break
		}
		if len(dst) == start && t[0] == ' ' {
			i += n // a control character at the start cleans to a leading space
			continue
		}
		dst = append(dst, t...)
		i += n
	}
	for len(dst) > start && dst[len(dst)-1] == ' ' {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// plainRun is the length of the prefix of s that extToken writes unchanged, byte for byte.
func plainRun(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' || c == '=' {
			return i
		}
	}
	return len(s)
}

func extToken(tok []byte, s string) ([]byte, int) {
	c := s[0]
	if c < utf8.RuneSelf {
		switch {
		case c == '\\' || c == '=':
			return append(tok, '\\', c), 1
		case c == '\n':
			return append(tok, '\\', 'n'), 1
		case c == '\r':
			return append(tok, '\\', 'r'), 1
		case c < 0x20 || c == 0x7f:
			return append(tok, ' '), 1
		}
		return append(tok, c), 1
	}
	return runeToken(tok, s)
}

func runeToken(tok []byte, s string) ([]byte, int) {
	r, n := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && n == 1:
		return utf8.AppendRune(tok, utf8.RuneError), 1
	case r >= 0x80 && r <= 0x9f:
		return append(tok, ' '), n
	}
	return append(tok, s[:n]...), n
}

// appendHeaderField writes a CEF header field: '\' → '\\', '|' → '\|', control characters
// (including CR and LF, which the header cannot carry) as a space, invalid UTF-8 as U+FFFD;
// at most max bytes, cut between whole escapes and characters.
func appendHeaderField(dst []byte, s string, max int) []byte {
	start := len(dst)
	for i := 0; i < len(s); {
		var tok [4]byte
		var t []byte
		var n int
		c := s[i]
		switch {
		case c == '\\' || c == '|':
			t, n = append(tok[:0], '\\', c), 1
		case c < 0x20 || c == 0x7f:
			t, n = append(tok[:0], ' '), 1
		case c < utf8.RuneSelf:
			t, n = append(tok[:0], c), 1
		default:
			t, n = runeToken(tok[:0], s[i:])
		}
		if len(dst)-start+len(t) > max {
			break
		}
		dst = append(dst, t...)
		i += n
	}
	return dst
}
