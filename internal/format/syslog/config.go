package syslog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
)

// Header layouts.
const (
	HeaderRFC5424 = "rfc5424"
	HeaderRFC3164 = "rfc3164"
)

// Message modes.
const (
	// MessageRaw carries the original record JSON, compacted to one line.
	MessageRaw = "raw"
	// MessageSummary carries a one-line human summary; the key fields are in STRUCTURED-DATA.
	MessageSummary = "summary"
)

// DefaultSDID is the SD-ID of the structured-data element. 32473 is the Private Enterprise
// Number RFC 5612 reserves for documentation; an organisation with its own PEN should use it.
const DefaultSDID = "defender@32473"

// DefaultAppName is the APP-NAME (RFC 5424) or TAG (RFC 3164) of every message.
const DefaultAppName = "defender-for-cloud"

// SeverityMap maps Defender severities to syslog severities, each written as a name
// ("crit", "warning", …) or a number 0–7.
type SeverityMap struct {
	High          string
	Medium        string
	Low           string
	Informational string
	// None is used for records that carry no severity (scores, compliance, unknown kinds).
	None string
}

// DefaultSeverityMap follows the usual convention for security alerts: High is critical,
// Medium a warning, Low a notice; records without severity are notices.
func DefaultSeverityMap() SeverityMap {
	return SeverityMap{High: "crit", Medium: "warning", Low: "notice", Informational: "info", None: "notice"}
}

// HeaderConfig is the part of the settings that shapes the syslog header; the CEF formatter
// shares it.
type HeaderConfig struct {
	// Header is HeaderRFC5424 or HeaderRFC3164. RFC 3164 limits a packet to 1024 bytes; the
	// formatter does not cut messages to that (alerts are often 5–30 KB and TCP receivers take
	// them whole), only the UDP transport cuts, to its MaxDatagram.
	Header string
	// Facility is a facility name ("local4", "authpriv", …) or number 0–23. Sentinel and other
	// collectors filter by facility: pick one that is not also collected as plain syslog.
	Facility string
	// SeverityMap chooses the syslog severity of each record.
	SeverityMap SeverityMap
	// Hostname is the HOSTNAME field; empty writes the nil value "-". The formatter never
	// looks up the machine's name: a function app instance name means nothing to a SIEM.
	Hostname string
	// AppName is the APP-NAME (RFC 5424) or TAG (RFC 3164).
	AppName string
	// ProcID is the PROCID (RFC 5424) or the [pid] after the TAG (RFC 3164); empty omits it.
	ProcID string
	// Now supplies the RFC 3164 timestamp of a record without a time (RFC 3164 has no nil
	// timestamp). Nil means time.Now. RFC 5424 writes "-" instead and never reads the clock.
	Now func() time.Time
}

// Config holds the RFC 5424 / RFC 3164 formatter's settings.
type Config struct {
	HeaderConfig
	// SDID is the SD-ID of the single structured-data element (RFC 5424 only).
	SDID string
	// Message is MessageRaw (default) or MessageSummary.
	Message string
	// BOM starts an RFC 5424 MSG with the UTF-8 byte order mark, as RFC 5424 §6.4 asks of
	// UTF-8 messages. Off by default: rsyslog, Sentinel and most SIEMs keep the BOM as part of
	// the text, which breaks JSON parsing of the message. MSG is always valid UTF-8 either way.
	BOM bool
}

// DefaultHeaderConfig returns the header defaults: RFC 5424, facility local4.
func DefaultHeaderConfig() HeaderConfig {
	return HeaderConfig{
		Header:      HeaderRFC5424,
		Facility:    "local4",
		SeverityMap: DefaultSeverityMap(),
		AppName:     DefaultAppName,
	}
}

// DefaultConfig returns the defaults: RFC 5424, local4, raw JSON message, no BOM.
func DefaultConfig() Config {
	return Config{HeaderConfig: DefaultHeaderConfig(), SDID: DefaultSDID, Message: MessageRaw}
}

// Validate reports every problem with the header settings at once.
func (c HeaderConfig) Validate() error {
	var errs []error
	if c.Header != HeaderRFC5424 && c.Header != HeaderRFC3164 {
		errs = append(errs, fmt.Errorf("Header %q: want %q or %q", c.Header, HeaderRFC5424, HeaderRFC3164))
	}
	if _, err := ParseFacility(c.Facility); err != nil {
		errs = append(errs, fmt.Errorf("Facility: %w", err))
	}
	for _, s := range []struct{ name, v string }{
		{"High", c.SeverityMap.High}, {"Medium", c.SeverityMap.Medium}, {"Low", c.SeverityMap.Low},
		{"Informational", c.SeverityMap.Informational}, {"None", c.SeverityMap.None},
	} {
		if _, err := ParseSeverity(s.v); err != nil {
			errs = append(errs, fmt.Errorf("SeverityMap.%s: %w", s.name, err))
		}
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"Hostname", c.Hostname, 255}, {"AppName", c.AppName, 48}, {"ProcID", c.ProcID, 128}} {
		if err := checkPrintASCII(f.v, f.max); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if c.Header == HeaderRFC3164 {
		if len(c.AppName) > 32 {
			errs = append(errs, fmt.Errorf("AppName %q: an RFC 3164 TAG has at most 32 characters", c.AppName))
		}
		if strings.ContainsAny(c.AppName, ":[]") {
			errs = append(errs, fmt.Errorf("AppName %q: an RFC 3164 TAG cannot contain ':', '[' or ']'", c.AppName))
		}
		if strings.ContainsAny(c.ProcID, ":[]") {
			errs = append(errs, fmt.Errorf("ProcID %q: cannot contain ':', '[' or ']' in RFC 3164", c.ProcID))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	errs := []error{c.HeaderConfig.Validate()}
	if err := checkSDName(c.SDID); err != nil {
		errs = append(errs, fmt.Errorf("SDID: %w", err))
	} else if !strings.Contains(c.SDID, "@") {
		errs = append(errs, fmt.Errorf("SDID %q: a private SD-ID has the form name@<enterprise number>", c.SDID))
	}
	if c.Message != MessageRaw && c.Message != MessageSummary {
		errs = append(errs, fmt.Errorf("Message %q: want %q or %q", c.Message, MessageRaw, MessageSummary))
	}
	return errors.Join(errs...)
}

func checkPrintASCII(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%q is longer than %d characters", s, max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return fmt.Errorf("%q: only printable US-ASCII without spaces is allowed", s)
		}
	}
	return nil
}

func checkSDName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if err := checkPrintASCII(s, 32); err != nil {
		return err
	}
	if strings.ContainsAny(s, "= ]\"") {
		return fmt.Errorf("%q: an SD-NAME cannot contain '=', ' ', ']' or '\"'", s)
	}
	return nil
}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4, "syslog": 5, "lpr": 6,
	"news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14,
	"clock": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21,
	"local6": 22, "local7": 23,
}

var severities = map[string]int{
	"emerg": 0, "emergency": 0, "panic": 0, "alert": 1, "crit": 2, "critical": 2, "err": 3, "error": 3,
	"warning": 4, "warn": 4, "notice": 5, "info": 6, "informational": 6, "debug": 7,
}

// ParseFacility reads a facility name (case-insensitive: "local4", "authpriv", …) or number 0–23.
func ParseFacility(s string) (int, error) {
	return parseCode(s, facilities, 23, "facility")
}

// ParseSeverity reads a syslog severity name ("crit", "warning", …) or number 0–7.
func ParseSeverity(s string) (int, error) {
	return parseCode(s, severities, 7, "severity")
}

func parseCode(s string, names map[string]int, max int, what string) (int, error) {
	if v, ok := names[strings.ToLower(strings.TrimSpace(s))]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("%q is not a syslog %s name or a number 0-%d", s, what, max)
	}
	return n, nil
}

// severityOf returns the syslog severity of a record.
func (m SeverityMap) severityOf(s alert.Severity) string {
	switch s {
	case alert.SeverityHigh:
		return m.High
	case alert.SeverityMedium:
		return m.Medium
	case alert.SeverityLow:
		return m.Low
	case alert.SeverityInformational:
		return m.Informational
	}
	return m.None
}
