// Package format defines what every output format shares. Each format lives in a sub-package
// and is pure: it turns an alert.Record into the exact bytes its SIEM parses, deterministically
// (sorted keys, explicit layouts, no clock), with no I/O.
package format

import "github.com/defender-siem/forwarder/internal/alert"

// Formatter renders one record.
//
// Format appends the rendered record to dst and returns the extended slice. An error means the
// record cannot be rendered in this format at all; it is permanent and the record is
// dead-lettered with sink.ReasonUnformattable (or sink.ReasonTooLarge). A Formatter is safe
// for concurrent use.
type Formatter interface {
	Format(dst []byte, rec *alert.Record) ([]byte, error)
}
