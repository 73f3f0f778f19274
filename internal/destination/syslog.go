package destination

import (
	"log/slog"
	"strings"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/format/cef"
	"github.com/defender-siem/forwarder/internal/format/leef"
	syslogformat "github.com/defender-siem/forwarder/internal/format/syslog"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/sink/relp"
	syslogsink "github.com/defender-siem/forwarder/internal/sink/syslog"
)

type alertRecord = alert.Record

// readHeader reads the syslog header settings shared by syslog, CEF, LEEF and LogRhythm's
// syslog transport.
func readHeader(r *reader, h syslogformat.HeaderConfig) syslogformat.HeaderConfig {
	h.Header = r.oneOf("Header", h.Header, syslogformat.HeaderRFC5424, syslogformat.HeaderRFC3164)
	h.Facility = r.str("Facility", h.Facility)
	h.Hostname = r.str("Hostname", h.Hostname)
	h.AppName = r.str("AppName", h.AppName)
	h.ProcID = r.str("ProcId", h.ProcID)
	return h
}

// readSeverityMap reads Severity__High, Severity__Medium, Severity__Low,
// Severity__Informational and Severity__None over the defaults.
func readSeverityMap(r *reader, high, medium, low, info, none *string) {
	m := r.prefixed("Severity")
	for k, v := range m {
		switch k {
		case "high":
			*high = v
		case "medium":
			*medium = v
		case "low":
			*low = v
		case "informational":
			*info = v
		case "none":
			*none = v
		default:
			r.fail("Severity__"+k, "want Severity__High, __Medium, __Low, __Informational or __None")
		}
	}
}

func readSyslogSink(r *reader) syslogsink.Config {
	c := syslogsink.DefaultConfig()
	c.Address = r.required("Address", "tcp://host:port, tls://host:port, udp://host:port, relp://host:port or relp+tls://host:port")
	c.Framing = r.oneOf("Framing", c.Framing, syslogsink.FramingOctetCounting, syslogsink.FramingLF)
	c.TLS = readTLS(r)
	c.DialTimeout = r.duration("DialTimeout", c.DialTimeout)
	c.WriteTimeout = r.duration("WriteTimeout", c.WriteTimeout)
	if v, ok := r.raw("CloseCheck"); ok && (v == "0" || v == "0s" || v == "00:00:00") {
		c.CloseCheck = 0 // skip the wait; only the check before the next batch remains
	} else {
		c.CloseCheck = r.duration("CloseCheck", c.CloseCheck)
	}
	c.MaxDatagram = r.integer("MaxDatagram", c.MaxDatagram, 480, 65000)
	if _, set := r.raw("Window"); set && !strings.HasPrefix(strings.ToLower(c.Address), "relp") {
		r.fail("Window", "applies only to relp:// and relp+tls:// addresses")
	}
	c.Window = r.integer("Window", c.Window, relp.MinWindow, relp.MaxWindow)
	return c
}

func finishSyslog(r *reader, d *pipeline.Destination, f format.Formatter, c syslogsink.Config, log *slog.Logger) {
	if len(r.errs) > 0 {
		return
	}
	if err := c.Validate(); err != nil {
		r.check(err)
		return
	}
	client, err := syslogsink.New(c, log)
	if err != nil {
		r.check(err)
		return
	}
	d.Formatter = f
	d.Sink = client
}

// buildSyslog is Type=syslog: RFC 5424 (or an RFC 3164 header) with the key fields as
// structured data and the original record as MSG.
func buildSyslog(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := syslogformat.DefaultConfig()
	fc.HeaderConfig = readHeader(r, fc.HeaderConfig)
	sm := &fc.SeverityMap
	readSeverityMap(r, &sm.High, &sm.Medium, &sm.Low, &sm.Informational, &sm.None)
	fc.SDID = r.str("SdId", fc.SDID)
	fc.Message = r.oneOf("Message", fc.Message, syslogformat.MessageRaw, syslogformat.MessageSummary)
	fc.BOM = r.boolean("Bom", fc.BOM)
	r.check(fc.Validate())
	sc := readSyslogSink(r)
	if len(r.errs) > 0 {
		return
	}
	f, err := syslogformat.New(fc)
	if err != nil {
		r.check(err)
		return
	}
	finishSyslog(r, d, f, sc, log)
}

// buildCEF is Type=cef: ArcSight CEF in a syslog header (RFC 3164 without a tag by default, the
// form ArcSight and Microsoft Sentinel's agent expect).
func buildCEF(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := cef.DefaultConfig()
	fc.Syslog = readHeader(r, fc.Syslog)
	sm := &fc.Severity
	readSeverityMap(r, &sm.High, &sm.Medium, &sm.Low, &sm.Informational, &sm.None)
	fc.Vendor = r.str("Vendor", fc.Vendor)
	fc.Product = r.str("Product", fc.Product)
	fc.Version = r.str("Version", fc.Version)
	r.check(fc.Validate())
	sc := readSyslogSink(r)
	if len(r.errs) > 0 {
		return
	}
	f, err := cef.New(fc)
	if err != nil {
		r.check(err)
		return
	}
	finishSyslog(r, d, f, sc, log)
}

// buildLEEF is Type=leef: QRadar LEEF 2.0 in an RFC 3164 header over the syslog transports.
func buildLEEF(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := leef.DefaultConfig()
	fc.Delimiter = r.str("Delimiter", fc.Delimiter)
	fc.Vendor = r.str("Vendor", fc.Vendor)
	fc.Product = r.str("Product", fc.Product)
	fc.Version = r.str("Version", fc.Version)
	buildSyslogTransport(r, d, log, false, func(prefix func([]byte, *alertRecord) []byte) (format.Formatter, error) {
		fc.Prefix = prefix
		if err := fc.Validate(); err != nil {
			return nil, err
		}
		return leef.New(fc)
	})
}

// buildSyslogTransport serves the formats that are a payload behind a syslog header (LEEF,
// LogRhythm key/value): it reads the header and transport settings (RFC 3164 by default) and
// hands mk a prefix that writes the header.
func buildSyslogTransport(r *reader, d *pipeline.Destination, log *slog.Logger, tag bool, mk func(prefix func([]byte, *alertRecord) []byte) (format.Formatter, error)) {
	h := syslogformat.DefaultHeaderConfig()
	h.Header = syslogformat.HeaderRFC3164
	h = readHeader(r, h)
	sm := &h.SeverityMap
	readSeverityMap(r, &sm.High, &sm.Medium, &sm.Low, &sm.Informational, &sm.None)
	r.check(h.Validate())
	sc := readSyslogSink(r)
	if len(r.errs) > 0 {
		return
	}
	hw, err := syslogformat.NewHeaderWriter(h)
	if err != nil {
		r.check(err)
		return
	}
	prefix := func(dst []byte, rec *alert.Record) []byte {
		dst = hw.Append(dst, rec, tag)
		if !hw.RFC3164() {
			dst = append(dst, '-', ' ') // no structured data
		}
		return dst
	}
	f, err := mk(prefix)
	if err != nil {
		r.check(err)
		return
	}
	finishSyslog(r, d, f, sc, log)
}
