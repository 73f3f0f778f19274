// Package format defines what every output format shares. Each format lives in a sub-package
// and is pure: it turns an alert.Record into the bytes its SIEM parses, with no I/O, and
// deterministically: the same record and settings give the same bytes (fixed key order,
// explicit layouts). The one clock a formatter may read is the RFC 3164 syslog header's
// (syslog.HeaderConfig.Now), because that header has no nil timestamp for a record that
// carries no time.
package format

import "github.com/defender-siem/forwarder/internal/alert"

// Formatter renders one record.
//
// Format appends the rendered record to dst and returns the extended slice. It renders any
// record the parser produced, of any kind, with whatever fields it carries: a field the
// record lacks is left out or replaced by a documented fallback (the kind for a missing alert
// type, say), never a reason to drop the record. An error means the record cannot be
// rendered in this format at all (an empty record for HEC, a nil record); the returned slice
// is then to be ignored. The pipeline does not retry such a record: it dead-letters it with
// sink.ReasonUnformattable and the error's text, so the text must say what is wrong. A
// Formatter is safe for concurrent use.
type Formatter interface {
	Format(dst []byte, rec *alert.Record) ([]byte, error)
}

// ExtendedPropertiesReader is implemented by formatters whose output depends on no extended
// properties but the ones ExtendedPropertiesRead names (none for the formats that forward
// the raw record). When every destination's formatter says which it reads, the pipeline
// parses only those (alert.Options.OnlyExtendedProperties), or none; a formatter that does
// not implement it gets them all. TestExtendedPropertiesRead holds each formatter to its list.
type ExtendedPropertiesReader interface {
	ExtendedPropertiesRead() []string
}

// SummaryReader is implemented by formatters whose output depends on no more of a record
// than its raw bytes and what alert.Options.SummaryOnly keeps, when ReadsSummaryOnly says so.
// When every destination's formatter does, the pipeline parses alerts that way.
// TestSummaryReaders holds each to it.
type SummaryReader interface {
	ReadsSummaryOnly() bool
}
