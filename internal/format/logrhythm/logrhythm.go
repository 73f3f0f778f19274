// Package logrhythm renders Defender for Cloud records for LogRhythm: a flat JSON object whose
// keys are LogRhythm schema field names, for the Open Collector Webhook Beat, or the same
// fields as the `|key=value|` text the Open Collector hands to a System Monitor Agent, for
// sending straight to an agent over syslog.
//
// The Open Collector's next hop is pipe-delimited, so every value is scrubbed the way
// LogRhythm's own jq transforms scrub theirs: `|` becomes `-` and line breaks become spaces.
// Every value but original_message is then capped at Config.MaxValue bytes (4000 by default),
// cut on a character boundary; original_message is capped only by MaxOriginalMessage (no cap
// by default). See MAPPING.md for which record field lands in which schema field.
package logrhythm

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

// Mode selects the output layout.
type Mode string

const (
	// ModeJSON is one flat JSON object, what the Webhook Beat takes.
	ModeJSON Mode = "json"
	// ModeKV is `|key=value|key=value|`, what the Open Collector itself emits to an agent.
	ModeKV Mode = "kv"
)

// Config holds the LogRhythm format settings.
type Config struct {
	// Mode is ModeJSON (default) or ModeKV.
	Mode Mode
	// BeatName is the `beatname` field, which the SIEM's Open Collector rules key on.
	// Default "webhookbeat".
	BeatName string
	// FullyQualifiedBeatName is the `fullyqualifiedbeatname` field; the Webhook Beat names its
	// instances `webhookbeat_<id>` with an id of at most 12 characters. Default
	// "webhookbeat_defender".
	FullyQualifiedBeatName string
	// DeviceType is the `device_type` field that drives log source virtualisation.
	// Default "MSDefenderForCloud".
	DeviceType string
	// WHSDP adds `"whsdp":true` in JSON mode, which tells the Webhook Beat to parse the object
	// into schema fields. Default true. Ignored in KV mode, where no beat reads it.
	WHSDP bool
	// OriginalMessage adds `original_message`, the record's original JSON. Default true.
	OriginalMessage bool
	// MaxOriginalMessage caps `original_message` in bytes (0: no cap). A capped message is
	// cut on a character boundary and is no longer valid JSON.
	MaxOriginalMessage int
	// MaxValue caps every other value in bytes (0: no cap), cut on a character boundary.
	// Default 4000.
	MaxValue int
	// Prefix, when set, is called to write a header (an RFC 3164 syslog header, say) before
	// the record in KV mode. It must append to dst and return it.
	Prefix func(dst []byte, rec *alert.Record) []byte
}

// DefaultConfig returns the defaults: JSON mode for the Webhook Beat.
func DefaultConfig() Config {
	return Config{
		Mode:                   ModeJSON,
		BeatName:               "webhookbeat",
		FullyQualifiedBeatName: "webhookbeat_defender",
		DeviceType:             "MSDefenderForCloud",
		WHSDP:                  true,
		OriginalMessage:        true,
		MaxValue:               4000,
	}
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	if c.Mode != ModeJSON && c.Mode != ModeKV {
		errs = append(errs, fmt.Errorf("logrhythm: Mode %q: want %q or %q", c.Mode, ModeJSON, ModeKV))
	}
	if c.BeatName == "" {
		errs = append(errs, errors.New("logrhythm: BeatName is required: the SIEM's Open Collector rules match on it"))
	}
	for _, f := range []struct{ name, v string }{
		{"BeatName", c.BeatName}, {"FullyQualifiedBeatName", c.FullyQualifiedBeatName}, {"DeviceType", c.DeviceType},
	} {
		if scrub(f.v, 0) != f.v {
			errs = append(errs, fmt.Errorf("logrhythm: %s %q: must not hold '|', control characters or invalid UTF-8", f.name, f.v))
		}
	}
	if c.MaxOriginalMessage < 0 {
		errs = append(errs, fmt.Errorf("logrhythm: MaxOriginalMessage %d: must be 0 (no cap) or more", c.MaxOriginalMessage))
	}
	if c.MaxValue < 0 {
		errs = append(errs, fmt.Errorf("logrhythm: MaxValue %d: must be 0 (no cap) or more", c.MaxValue))
	}
	return errors.Join(errs...)
}

// Formatter renders records in the LogRhythm layout. It is safe for concurrent use.
type Formatter struct {
	cfg Config
}

var _ format.Formatter = (*Formatter)(nil)

// New returns a Formatter for a valid cfg.
func New(cfg Config) (*Formatter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Formatter{cfg: cfg}, nil
}

// field is one schema field. Numbers are written bare in JSON mode.
type field struct {
	key    string
	value  string
	number bool
}

// Format appends rec's rendering to dst. It never fails for a record the parser produced.
func (f *Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if rec == nil {
		return dst, errors.New("logrhythm: nil record")
	}
	fields := f.fields(rec)
	if f.cfg.Mode == ModeKV {
		if f.cfg.Prefix != nil {
			dst = f.cfg.Prefix(dst, rec)
		}
		return appendKV(dst, fields), nil
	}
	return f.appendJSON(dst, fields), nil
}

// ExtendedPropertiesRead is none: the fields LogRhythm maps are the alert's own.
func (f *Formatter) ExtendedPropertiesRead() []string { return nil }

// Fields returns the schema fields Format writes for rec, values already scrubbed; `whsdp` is
// not among them. Tests compare the parsed output against it.
func (f *Formatter) Fields(rec *alert.Record) map[string]string {
	out := make(map[string]string)
	for _, fd := range f.fields(rec) {
		out[fd.key] = fd.value
	}
	return out
}

func (f *Formatter) fields(rec *alert.Record) []field {
	fs := make([]field, 0, 32)
	add := func(key, v string) {
		if v = scrub(v, f.cfg.MaxValue); v != "" {
			fs = append(fs, field{key: key, value: v})
		}
	}
	add("beatname", f.cfg.BeatName)
	add("fullyqualifiedbeatname", f.cfg.FullyQualifiedBeatName)
	add("device_type", f.cfg.DeviceType)
	add("severity", rec.Severity.String())
	add("status", rec.Status)
	add("reason", rec.Description)
	add("object", rec.ResourceID)
	add("objecttype", resourceType(rec.ResourceID))
	add("tag1", rec.SubscriptionID)
	add("tag4", string(rec.Kind))
	if !rec.Time.IsZero() {
		add("time", rec.Time.UTC().Format(timeLayout))
	}
	if a := rec.Alert; a != nil {
		f.alertFields(rec, a, add, &fs)
	} else {
		add("subject", subject(rec.Kind))
		add("vmid", string(rec.Kind))
		add("vendorinfo", rec.DisplayName)
		add("objectname", rec.ID)
	}
	if f.cfg.OriginalMessage && len(rec.Raw) > 0 {
		if v := originalMessage(rec.Raw, f.cfg.MaxOriginalMessage); v != "" {
			fs = append(fs, field{key: "original_message", value: v})
		}
	}
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
	return fs
}

func (f *Formatter) alertFields(rec *alert.Record, a *alert.Alert, add func(k, v string), fs *[]field) {
	name := firstNonEmpty(a.DisplayName, rec.DisplayName)
	ents := a.Observables()
	add("subject", subject(rec.Kind))
	add("vmid", a.AlertType)
	add("vendorinfo", name)
	add("threatname", firstNonEmpty(ents.Malware, name))
	add("threatid", firstNonEmpty(a.SystemAlertID, rec.ID))
	add("policy", strings.Join(a.Intent, ","))
	add("tag2", strings.Join(a.Techniques, ","))
	add("tag3", strings.Join(a.SubTechniques, ","))
	add("tag5", a.ProductName)
	add("tag6", a.ProductComponent)
	add("url", firstNonEmpty(ents.URL, a.AlertURI))
	add("dname", firstNonEmpty(a.CompromisedEntity, ents.Host))
	add("sip", ents.SourceIP)
	add("dip", ents.DestinationIP)
	add("protname", ents.Protocol)
	add("login", ents.Login)
	add("account", ents.Account)
	add("command", ents.CommandLine)
	add("process", ents.Process)
	add("parentprocessname", ents.ParentProcess)
	add("objectname", ents.File)
	add("hash", ents.FileHash)
	if !a.StartTime.IsZero() {
		add("timestart", a.StartTime.UTC().Format(timeLayout))
	}
	if !a.EndTime.IsZero() {
		add("timeend", a.EndTime.UTC().Format(timeLayout))
	}
	// Numbers only when they are numbers: the schema types these fields as integers.
	for _, n := range []struct{ key, v string }{
		{"sport", ents.SourcePort}, {"dport", ents.DestinationPort}, {"processid", ents.ProcessID},
	} {
		if v, ok := integer(n.v); ok {
			*fs = append(*fs, field{key: n.key, value: v, number: true})
		}
	}
}

// timeLayout is ISO 8601 in UTC with milliseconds, as the Open Collector writes its own times.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func subject(k alert.Kind) string {
	switch k {
	case alert.KindAlert:
		return "Microsoft Defender for Cloud alert"
	case alert.KindActivityLogAlert:
		return "Microsoft Defender for Cloud activity log alert"
	case alert.KindGraphAlert:
		return "Microsoft Graph security alert"
	case alert.KindRecommendation:
		return "Microsoft Defender for Cloud recommendation"
	case alert.KindSubAssessment:
		return "Microsoft Defender for Cloud sub-assessment"
	case alert.KindSecureScore:
		return "Microsoft Defender for Cloud secure score"
	case alert.KindSecureScoreControl:
		return "Microsoft Defender for Cloud secure score control"
	case alert.KindRegulatoryCompliance:
		return "Microsoft Defender for Cloud regulatory compliance"
	}
	return "Microsoft Defender for Cloud record"
}

// resourceType turns an ARM id into its resource type, e.g. Microsoft.Compute/virtualMachines
// (for nested resources the innermost provider's type path).
func resourceType(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	p := -1
	for i := range parts {
		if strings.EqualFold(parts[i], "providers") && i+2 < len(parts) {
			p = i
		}
	}
	if p < 0 {
		return ""
	}
	typ := []string{parts[p+1]}
	for i := p + 2; i < len(parts); i += 2 {
		typ = append(typ, parts[i])
	}
	return strings.Join(typ, "/")
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// integer accepts decimal and the 0x-hex Defender writes process ids in.
func integer(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil || n < 0 {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// scrub makes s safe for the pipe-delimited hop, as LogRhythm's jq transforms do: `|` → `-`,
// line breaks → space. Other control characters (which some syslog receivers cut messages
// at) also become spaces and invalid UTF-8 becomes U+FFFD. max > 0 caps the result in
// bytes on a character boundary.
func scrub(s string, max int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '|' || c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean && (max <= 0 || len(s) <= max) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '|':
			r = '-'
		case r < 0x20 || r == 0x7f:
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
