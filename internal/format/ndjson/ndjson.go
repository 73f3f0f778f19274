// Package ndjson renders a Defender for Cloud record as one line of JSON: the original record
// compacted, or, when wrapped, the record under "record" beside a few metadata fields that
// log intakes (Sumo Logic, Logz.io, any HTTPS collector) can index without parsing it.
//
// The output has no trailing newline: the transport joins lines. It is always valid UTF-8
// and never holds a raw line break, so one record is always exactly one line.
package ndjson

import (
	"errors"
	"fmt"
	"slices"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/jsonx"
)

// Field names a metadata field the wrapper can carry.
type Field string

// The metadata fields, written in this order before "record".
const (
	FieldID             Field = "id"
	FieldKind           Field = "kind"
	FieldSeverity       Field = "severity"
	FieldStatus         Field = "status"
	FieldSubscriptionID Field = "subscription_id"
	FieldResourceID     Field = "resource_id"
	FieldTime           Field = "time"
)

// AllFields lists every metadata field in output order.
var AllFields = []Field{FieldID, FieldKind, FieldSeverity, FieldStatus, FieldSubscriptionID, FieldResourceID, FieldTime}

// Config holds the NDJSON settings.
type Config struct {
	// Wrap writes {"kind":…,…,"record":<original>} instead of the bare original record.
	// Default false.
	Wrap bool
	// Fields are the metadata fields a wrapped line carries, in any order (written in
	// AllFields order). Default kind, severity, subscription_id, time.
	Fields []Field
}

// DefaultConfig returns the defaults: the bare record.
func DefaultConfig() Config {
	return Config{Fields: []Field{FieldKind, FieldSeverity, FieldSubscriptionID, FieldTime}}
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	seen := map[Field]bool{}
	for _, f := range c.Fields {
		if !slices.Contains(AllFields, f) {
			errs = append(errs, fmt.Errorf("ndjson: Fields: unknown field %q (allowed: %v)", f, AllFields))
		}
		if seen[f] {
			errs = append(errs, fmt.Errorf("ndjson: Fields: %q listed twice", f))
		}
		seen[f] = true
	}
	return errors.Join(errs...)
}

// Formatter renders NDJSON lines. It is safe for concurrent use.
type Formatter struct {
	wrap   bool
	fields []Field
}

var _ format.Formatter = (*Formatter)(nil)

// New returns a Formatter for a valid cfg.
func New(cfg Config) (*Formatter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Formatter{wrap: cfg.Wrap}
	for _, fd := range AllFields {
		if slices.Contains(cfg.Fields, fd) {
			f.fields = append(f.fields, fd)
		}
	}
	return f, nil
}

// Format appends rec as one JSON line to dst. A record whose bytes are not JSON is carried
// as a JSON string rather than refused, so that it still reaches the intake.
func (f *Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if rec == nil {
		return dst, errors.New("ndjson: nil record")
	}
	if !f.wrap {
		return rec.AppendRawJSON(dst), nil
	}
	dst = append(dst, '{')
	for _, fd := range f.fields {
		v := f.value(fd, rec)
		if v == "" {
			continue
		}
		dst = jsonx.AppendQuote(dst, string(fd))
		dst = append(dst, ':')
		dst = jsonx.AppendQuote(dst, v)
		dst = append(dst, ',')
	}
	dst = append(dst, `"record":`...)
	dst = rec.AppendRawJSON(dst)
	return append(dst, '}'), nil
}

// ReadsSummaryOnly is true: the wrapper's fields are the record's id, kind, severity,
// status, subscription, resource and time.
func (f *Formatter) ReadsSummaryOnly() bool { return true }

// ExtendedPropertiesRead is none: the line is the raw record and, when wrapped, fields that
// are not extended properties.
func (f *Formatter) ExtendedPropertiesRead() []string { return nil }

func (f *Formatter) value(fd Field, rec *alert.Record) string {
	switch fd {
	case FieldID:
		return rec.ID
	case FieldKind:
		return string(rec.Kind)
	case FieldSeverity:
		return rec.Severity.String()
	case FieldStatus:
		return rec.Status
	case FieldSubscriptionID:
		return rec.SubscriptionID
	case FieldResourceID:
		return rec.ResourceID
	case FieldTime:
		if !rec.Time.IsZero() {
			return rec.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
	}
	return ""
}
