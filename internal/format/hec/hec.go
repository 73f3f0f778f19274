// Package hec renders Defender for Cloud records as Splunk HTTP Event Collector envelopes for the
// /services/collector/event endpoint. It is pure: no I/O, no clock, no network.
//
// One record becomes one JSON object, with its keys always in this order:
//
//	{"time":1683811029.017,"host":…,"source":…,"sourcetype":…,"index":…,"fields":{…},"event":{…}}
//
// where:
//   - time: the record's Time as epoch seconds with exactly three decimals, truncated to the
//     millisecond (never rounded up, never in exponent form). Omitted when the record has no
//     time or it lies before 1970, so that Splunk stamps the arrival time instead.
//   - host, index: only when configured.
//   - source: Config.Source (default "azure:defender-for-cloud"); omitted when empty.
//   - sourcetype: Config.SourceType when set, otherwise chosen by the record kind (below).
//   - fields: Splunk indexed fields, flat strings with sorted keys, each only when non-empty:
//     alert_id (alerts only: SystemAlertId, or the record id), alert_type (alerts only), kind,
//     severity (as Defender writes it: Informational, Low, Medium, High), status, subscription_id.
//     The set is small on purpose: indexed fields cost index space per distinct value. Only
//     alert_id is high-cardinality; it is kept because it is the key for deduplicating alerts a
//     replay delivers twice (| tstats … by alert_id). Everything else stays in the event.
//   - event: the record's original JSON (Record.Raw) with insignificant whitespace removed and
//     otherwise byte for byte as Defender wrote it: key order, escapes and number text are kept.
//     Two repairs keep it acceptable to Splunk, which may refuse malformed UTF-8: a byte that is not
//     valid UTF-8 inside a string becomes U+FFFD, and a raw control character inside a string
//     becomes its \u00XX escape. If Raw is not JSON at all, the event is Raw as a JSON string
//     (with the same UTF-8 repair), so the record still reaches Splunk and can be searched.
//
// Sourcetypes by record kind, when Config.SourceType is empty:
//
//	alert, activitylogalert  mscs:azure:security:alert
//	recommendation           mscs:azure:security:recommendation
//	subassessment            mscs:azure:security:subassessment
//	securescore              mscs:azure:security:securescore
//	securescorecontrol       mscs:azure:security:securescorecontrol
//	regulatorycompliance     mscs:azure:security:regulatorycompliance
//	anything else            mscs:azure:security:unknown
//
// The first two are the Splunk Add-on for Microsoft Cloud Services sourcetypes, so its field
// extractions and CIM mapping apply; the others follow the same naming, so that
// sourcetype=mscs:azure:security:* finds every record the forwarder sends.
//
// The output is always one valid JSON object holding no raw newline, so envelopes can be joined
// with "\n" into one request body. It carries no trailing newline; the transport adds the
// separators. Format fails only when Raw is empty or blank, which Splunk would reject as
// "Event field cannot be blank" (code 13).
package hec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/jsonx"
)

// DefaultSource is the source a Config gets from DefaultConfig.
const DefaultSource = "azure:defender-for-cloud"

// ErrEmptyEvent is returned for a record whose Raw bytes are empty or blank.
var ErrEmptyEvent = errors.New("hec: record has no event data")

// Config holds the HEC metadata every envelope carries.
type Config struct {
	// Index is the Splunk index. Empty means the token's default index. It must be one of the
	// token's allowed indexes, or Splunk rejects every event (code 7).
	Index string
	// Source is the source field. Default DefaultSource; empty omits it.
	Source string
	// SourceType overrides the per-kind sourcetype for every record. Empty (the default) picks
	// the sourcetype from the record kind, as the package documentation lists.
	SourceType string
	// Host is the host field. Empty omits it, and Splunk then records the sender's address.
	Host string
}

// DefaultConfig returns the defaults: source "azure:defender-for-cloud", sourcetype per kind,
// the token's default index, no host.
func DefaultConfig() Config {
	return Config{Source: DefaultSource}
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{
		{"Host", c.Host}, {"Source", c.Source}, {"SourceType", c.SourceType}, {"Index", c.Index},
	} {
		if !utf8.ValidString(f.v) {
			errs = append(errs, fmt.Errorf("hec: %s is not valid UTF-8", f.name))
			continue
		}
		if strings.ContainsFunc(f.v, isControl) {
			errs = append(errs, fmt.Errorf("hec: %s %q contains control characters", f.name, f.v))
		}
		if f.v != strings.TrimSpace(f.v) {
			errs = append(errs, fmt.Errorf("hec: %s %q has leading or trailing spaces", f.name, f.v))
		}
	}
	// Splunk index names: lower-case ASCII letters, digits, '_' and '-', not starting with
	// '_' or '-' (those are reserved for internal indexes).
	if c.Index != "" && !validIndex(c.Index) {
		errs = append(errs, fmt.Errorf("hec: Index %q: use lower-case letters, digits, '_' and '-', starting with a letter or digit", c.Index))
	}
	return errors.Join(errs...)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 }

func validIndex(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= '0' && b <= '9':
		case (b == '_' || b == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Formatter renders records as HEC event envelopes. It is safe for concurrent use.
type Formatter struct {
	// headers holds, per kind, the pre-rendered `"host":…,"source":…,"sourcetype":…,"index":…`
	// run of the envelope, so that formatting a record copies it instead of escaping again.
	headers map[alert.Kind]string
}

var _ format.Formatter = (*Formatter)(nil)

// SourceTypeFor returns the sourcetype a record of kind k gets when Config.SourceType is empty.
func SourceTypeFor(k alert.Kind) string {
	switch k {
	case alert.KindAlert, alert.KindActivityLogAlert:
		return "mscs:azure:security:alert"
	case alert.KindGraphAlert:
		// Ours, not an add-on's: the Microsoft Azure add-on's ms:graph:security:alerts
		// expects the retired v1 alert, whose field names differ.
		return "ms:graph:security:alert_v2"
	case alert.KindRecommendation, alert.KindSubAssessment, alert.KindSecureScore,
		alert.KindSecureScoreControl, alert.KindRegulatoryCompliance:
		return "mscs:azure:security:" + string(k)
	default:
		return "mscs:azure:security:unknown"
	}
}

// New returns a Formatter for cfg. cfg should have passed Validate; values that did not are
// still escaped, so they cannot break the envelope.
func New(cfg Config) *Formatter {
	f := &Formatter{headers: make(map[alert.Kind]string, len(alert.Kinds))}
	for _, k := range alert.Kinds {
		var b []byte
		sep := func(key string) {
			if len(b) > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, key...)
			b = append(b, `":`...)
		}
		if cfg.Host != "" {
			sep("host")
			b = jsonx.AppendQuote(b, cfg.Host)
		}
		if cfg.Source != "" {
			sep("source")
			b = jsonx.AppendQuote(b, cfg.Source)
		}
		st := cfg.SourceType
		if st == "" {
			st = SourceTypeFor(k)
		}
		sep("sourcetype")
		b = jsonx.AppendQuote(b, st)
		if cfg.Index != "" {
			sep("index")
			b = jsonx.AppendQuote(b, cfg.Index)
		}
		f.headers[k] = string(b)
	}
	return f
}

// Format appends rec's envelope to dst. See the package documentation for its layout.
func (f *Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if isBlank(rec.Raw) {
		return dst, ErrEmptyEvent
	}
	kind := rec.Kind
	header, ok := f.headers[kind]
	if !ok {
		// An unlisted kind must not reach the sourcetype or the kind field as free text.
		kind = alert.KindUnknown
		header = f.headers[kind]
	}

	dst = append(dst, '{')
	if t := rec.Time; !t.IsZero() && t.Unix() >= 0 {
		dst = append(dst, `"time":`...)
		dst = appendEpochMillis(dst, t.Unix(), t.Nanosecond())
		dst = append(dst, ',')
	}
	dst = append(dst, header...)

	dst = append(dst, `,"fields":{`...)
	var alertID, alertType, sev, status, sub string
	status, sub = rec.Status, rec.SubscriptionID
	s := rec.Severity
	if a := rec.Alert; a != nil {
		alertID, alertType = a.SystemAlertID, a.AlertType
		if s == alert.SeverityNone {
			s = a.Severity
		}
		if status == "" {
			status = a.Status
		}
		if sub == "" {
			sub = a.SubscriptionID
		}
	}
	if kind == alert.KindAlert || kind == alert.KindActivityLogAlert || kind == alert.KindGraphAlert {
		if alertID == "" {
			alertID = rec.ID
		}
	} else {
		alertID, alertType = "", ""
	}
	sev = s.String()
	// Keys in sorted order; kind is never empty, so it anchors the commas.
	if alertID != "" {
		dst = append(dst, `"alert_id":`...)
		dst = jsonx.AppendQuote(dst, alertID)
		dst = append(dst, ',')
	}
	if alertType != "" {
		dst = append(dst, `"alert_type":`...)
		dst = jsonx.AppendQuote(dst, alertType)
		dst = append(dst, ',')
	}
	dst = append(dst, `"kind":`...)
	dst = jsonx.AppendQuote(dst, string(kind))
	for _, kv := range [...]struct{ k, v string }{
		{`,"severity":`, sev}, {`,"status":`, status}, {`,"subscription_id":`, sub},
	} {
		if kv.v != "" {
			dst = append(dst, kv.k...)
			dst = jsonx.AppendQuote(dst, kv.v)
		}
	}

	dst = append(dst, `},"event":`...)
	dst = rec.AppendRawJSON(dst)
	dst = append(dst, '}')
	return dst, nil
}

// ReadsSummaryOnly is true: the indexed fields are the alert's id, type, severity, status,
// subscription and time.
func (f *Formatter) ReadsSummaryOnly() bool { return true }

// ExtendedPropertiesRead is none: the event is the raw record, and the indexed fields come
// from other fields.
func (f *Formatter) ExtendedPropertiesRead() []string { return nil }

// appendEpochMillis writes sec.mmm, truncating nsec to the millisecond. Integer arithmetic keeps
// it exact and free of exponent notation whatever the year.
func appendEpochMillis(dst []byte, sec int64, nsec int) []byte {
	ms := nsec / 1e6
	dst = strconv.AppendInt(dst, sec, 10)
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
