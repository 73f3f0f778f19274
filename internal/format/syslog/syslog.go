// Package syslog renders records as syslog messages: RFC 5424 (default) with the key alert
// fields as STRUCTURED-DATA and the original record JSON as MSG, or the legacy RFC 3164
// layout. It writes one message without transport framing (octet counting, LF, TLS and UDP
// belong to the syslog sink) and exposes its header writer so the CEF formatter can carry CEF
// in the same headers.
//
// Every field an alert supplies is attacker-controlled text, so everything is escaped or
// replaced to its field's grammar: header fields are printable US-ASCII, SD values escape
// '\', '"' and ']', and nothing the formatter writes contains CR, LF or NUL, so one message
// stays one line on every framing.
package syslog

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/jsonx"
)

var _ format.Formatter = (*Formatter)(nil)

// Formatter renders RFC 5424 or RFC 3164 messages. It is safe for concurrent use.
type Formatter struct {
	hdr     *HeaderWriter
	sdid    string
	summary bool
	bom     bool
}

// New validates cfg and returns its formatter.
func New(cfg Config) (*Formatter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("syslog format: %w", err)
	}
	hdr, err := NewHeaderWriter(cfg.HeaderConfig)
	if err != nil {
		return nil, err
	}
	return &Formatter{hdr: hdr, sdid: cfg.SDID, summary: cfg.Message == MessageSummary, bom: cfg.BOM}, nil
}

// Format appends one syslog message for rec to dst. It never fails: a field that does not
// fit its grammar is replaced, never rejected.
//
// RFC 5424: HEADER SP [SDID param="value"…] SP MSG, params sorted by name, MSG optionally
// behind a BOM. RFC 3164: "<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG" (no structured data, so the
// summary mode there carries the key fields in the text).
func (f *Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	dst = f.hdr.Append(dst, rec, true)
	if !f.hdr.rfc3164 {
		dst = f.appendSD(dst, rec)
		dst = append(dst, ' ')
		if f.bom {
			dst = append(dst, 0xEF, 0xBB, 0xBF)
		}
	}
	if f.summary {
		return appendSummary(dst, rec), nil
	}
	if rec.RawCompact {
		// Compact, valid UTF-8 and without control bytes: already one clean line.
		return append(dst, rec.Raw...), nil
	}
	return AppendRawJSON(dst, rec.Raw), nil
}

// ExtendedPropertiesRead names a Graph alert's verdict, the message's one use of them.
func (f *Formatter) ExtendedPropertiesRead() []string {
	return []string{"classification", "determination"}
}

// AppendRawJSON appends the record's original JSON compacted to one line. Bytes that are not
// JSON are carried as they are. Either way the result is valid UTF-8 with no CR, LF or NUL.
func AppendRawJSON(dst []byte, raw []byte) []byte {
	// Without a control byte anywhere (the common, compact record) the one-pass compactor
	// gives the same line: it replaces invalid UTF-8 as sanitizeLine would, and what it would
	// repair beyond that needs a control byte.
	if !hasControlByte(raw) {
		if out, ok := jsonx.AppendCompact(dst, raw); ok {
			return out
		}
	}
	from := len(dst)
	// As json.Compact has it: only well-formed JSON is compacted (a control character inside
	// a string is not), and the bytes are kept, invalid UTF-8 aside.
	if start := jsonx.SkipSpace(raw, 0); start < len(raw) {
		if end, err := jsonx.Skip(raw, start, 0); err == nil && jsonx.SkipSpace(raw, end) == len(raw) {
			return sanitizeLine(jsonx.AppendStripped(dst, raw[start:end]), from)
		}
	}
	return sanitizeLine(append(dst, raw...), from)
}

// hasControlByte reports whether b holds a byte below 0x20 (a tab and a line break included),
// eight bytes at a time.
func hasControlByte(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		if (w-ones*0x20)&^w&highs != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return true
		}
	}
	return false
}

// Param is one SD-PARAM: a fixed, valid PARAM-NAME and its unescaped value.
type Param struct {
	Name, Value string
}

// Params returns the record's key fields as SD params sorted by name, leaving out empty
// values. Alerts carry alertId/alertType/…, other kinds id/displayName/….
func Params(rec *alert.Record) []Param {
	ps := make([]Param, 0, 16)
	add := func(name, v string) {
		if v != "" {
			ps = append(ps, Param{name, v})
		}
	}
	sev := SeverityName(rec.Severity)
	if a := rec.Alert; a != nil {
		// Kept in name order by hand; TestParamsSorted guards it.
		add("alertId", or(a.SystemAlertID, rec.ID))
		add("alertType", a.AlertType)
		add("alertUri", a.AlertURI)
		// Graph alerts carry the XDR verdict; export alerts have none, so these stay out.
		add("classification", graphVerdict(rec, "classification"))
		add("compromisedEntity", a.CompromisedEntity)
		add("determination", graphVerdict(rec, "determination"))
		add("displayName", or(a.DisplayName, rec.DisplayName))
		add("intent", strings.Join(a.Intent, ","))
		add("productName", a.ProductName)
		add("resourceId", or(a.ResourceID, rec.ResourceID))
		add("severity", or(SeverityName(a.Severity), sev))
		add("status", or(a.Status, rec.Status))
		add("subTechniques", strings.Join(a.SubTechniques, ","))
		add("subscriptionId", or(a.SubscriptionID, rec.SubscriptionID))
		add("techniques", strings.Join(a.Techniques, ","))
		return ps
	}
	add("displayName", rec.DisplayName)
	add("id", rec.ID)
	add("resourceId", rec.ResourceID)
	add("severity", sev)
	add("status", rec.Status)
	add("subscriptionId", rec.SubscriptionID)
	return ps
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// SeverityName is Defender's own word for s, "" for none.
func SeverityName(s alert.Severity) string {
	switch s {
	case alert.SeverityHigh:
		return "High"
	case alert.SeverityMedium:
		return "Medium"
	case alert.SeverityLow:
		return "Low"
	case alert.SeverityInformational:
		return "Informational"
	}
	return ""
}

func (f *Formatter) appendSD(dst []byte, rec *alert.Record) []byte {
	ps := Params(rec)
	if len(ps) == 0 {
		return append(dst, '-')
	}
	dst = append(dst, '[')
	dst = append(dst, f.sdid...)
	for _, p := range ps {
		dst = append(dst, ' ')
		dst = append(dst, p.Name...)
		dst = append(dst, '=', '"')
		dst = AppendSDValue(dst, p.Value)
		dst = append(dst, '"')
	}
	return append(dst, ']')
}

// appendSummary writes one line a person reads first:
// `High alert "Suspicious process detected" on WebSrv1 status=Active id=…`.
func appendSummary(dst []byte, rec *alert.Record) []byte {
	if s := SeverityName(rec.Severity); s != "" {
		dst = append(dst, s...)
		dst = append(dst, ' ')
	}
	dst = appendMsgText(dst, string(rec.Kind))
	name, on, id := rec.DisplayName, rec.ResourceID, rec.ID
	if a := rec.Alert; a != nil {
		name = or(a.DisplayName, name)
		on = or(a.CompromisedEntity, or(a.ResourceID, on))
		id = or(a.SystemAlertID, id)
	}
	if name != "" {
		dst = append(dst, ' ', '"')
		dst = appendMsgText(dst, name)
		dst = append(dst, '"')
	}
	if on != "" {
		dst = append(dst, " on "...)
		dst = appendMsgText(dst, on)
	}
	if rec.Status != "" {
		dst = append(dst, " status="...)
		dst = appendMsgText(dst, rec.Status)
	}
	if id != "" {
		dst = append(dst, " id="...)
		dst = appendMsgText(dst, id)
	}
	return dst
}

// graphVerdict returns a Graph alert's classification or determination, "" for other kinds.
func graphVerdict(rec *alert.Record, name string) string {
	if rec.Kind != alert.KindGraphAlert || rec.Alert == nil {
		return ""
	}
	return rec.Alert.ExtendedProperties[name]
}
