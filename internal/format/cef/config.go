package cef

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/defender-siem/forwarder/internal/format/syslog"
)

// SeverityMap maps Defender severities to CEF severities: an integer 0–10 or one of
// Unknown, Low, Medium, High, Very-High.
type SeverityMap struct {
	High, Medium, Low, Informational string
	// None is used for records without a severity.
	None string
}

// DefaultSeverityMap uses the middle of the CEF bands (0-3 Low, 4-6 Medium, 7-8 High):
// High 8, Medium 5, Low 3, Informational 1, and "Unknown" when the record has none.
func DefaultSeverityMap() SeverityMap {
	return SeverityMap{High: "8", Medium: "5", Low: "3", Informational: "1", None: "Unknown"}
}

// Config holds the CEF formatter's settings.
type Config struct {
	// Syslog is the header the CEF line travels in. The default is RFC 3164 with no TAG, the
	// form ArcSight documents and Sentinel's agent recognises ("<PRI>Mmm dd hh:mm:ss host
	// CEF:0|…"); RFC 5424 carries CEF as MSG with "-" structured data and no BOM.
	Syslog syslog.HeaderConfig
	// Vendor, Product and Version fill the first CEF header fields.
	Vendor, Product, Version string
	// Severity maps Defender severities to the CEF Severity field.
	Severity SeverityMap
	// NoExtensionSpace writes the first extension key right after the last header '|'.
	// By default one space separates them: the CEF rules treat spaces before a key as a
	// separator, and liblognorm (rsyslog mmnormalize, up to 2.0.6 at least) drops the first
	// character of the first key without it.
	NoExtensionSpace bool
}

// DefaultConfig returns the defaults: RFC 3164 header without TAG, facility local4,
// CEF:0|Microsoft|Microsoft Defender for Cloud|1.0|…
func DefaultConfig() Config {
	h := syslog.DefaultHeaderConfig()
	h.Header = syslog.HeaderRFC3164
	return Config{
		Syslog:   h,
		Vendor:   "Microsoft",
		Product:  "Microsoft Defender for Cloud",
		Version:  "1.0",
		Severity: DefaultSeverityMap(),
	}
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	errs := []error{c.Syslog.Validate()}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"Vendor", c.Vendor, 63}, {"Product", c.Product, 63}, {"Version", c.Version, 31}} {
		switch {
		case f.v == "":
			errs = append(errs, fmt.Errorf("%s: empty", f.name))
		case len(appendHeaderField(nil, f.v, 1<<20)) > f.max:
			errs = append(errs, fmt.Errorf("%s %q: longer than %d characters once escaped", f.name, f.v, f.max))
		}
	}
	for _, s := range []struct{ name, v string }{
		{"High", c.Severity.High}, {"Medium", c.Severity.Medium}, {"Low", c.Severity.Low},
		{"Informational", c.Severity.Informational}, {"None", c.Severity.None},
	} {
		if err := checkSeverity(s.v); err != nil {
			errs = append(errs, fmt.Errorf("Severity.%s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

func checkSeverity(s string) error {
	switch s {
	case "Unknown", "Low", "Medium", "High", "Very-High":
		return nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 10 && !strings.HasPrefix(s, "+") && (len(s) == 1 || s[0] != '0') {
		return nil
	}
	return fmt.Errorf("%q: want 0-10 or Unknown, Low, Medium, High, Very-High", s)
}
