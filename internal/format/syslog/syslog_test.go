package syslog_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/dev/golden"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

func newFormatter(t testing.TB, mod func(*syslog.Config)) *syslog.Formatter {
	t.Helper()
	cfg := syslog.DefaultConfig()
	cfg.Hostname = "fwd-1.example.net"
	cfg.ProcID = "42"
	cfg.Now = func() time.Time { return time.Date(2025, 2, 9, 8, 7, 6, 0, time.UTC) }
	if mod != nil {
		mod(&cfg)
	}
	f, err := syslog.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func format(t testing.TB, f *syslog.Formatter, rec *alert.Record) []byte {
	t.Helper()
	out, err := f.Format(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGolden(t *testing.T) {
	rfc3164 := func(c *syslog.Config) { c.Header = syslog.HeaderRFC3164 }
	summaryBOM := func(c *syslog.Config) { c.Message = syslog.MessageSummary; c.BOM = true }
	tests := []struct {
		name string
		rec  func(testing.TB) *alert.Record
		mod  func(*syslog.Config)
	}{
		{"alert_rfc5424", alerttest.ElasticAlert, nil},
		{"alert_rfc5424_summary_bom", alerttest.ElasticAlert, summaryBOM},
		{"alert_rfc3164", alerttest.ElasticAlert, rfc3164},
		{"mdc_alert_not_json_rfc5424", alerttest.MDCAlert, nil},
		{"assessment_rfc5424", alerttest.Assessment, nil},
		{"scorecontrol_rfc5424", alerttest.ScoreControl, nil},
		{"scorecontrol_rfc3164_summary", alerttest.ScoreControl, func(c *syslog.Config) { rfc3164(c); c.Message = syslog.MessageSummary }},
		{"hostile_rfc5424", func(testing.TB) *alert.Record { return alerttest.HostileFieldsAlert() }, nil},
		{"hostile_rfc5424_summary", func(testing.TB) *alert.Record { return alerttest.HostileFieldsAlert() }, func(c *syslog.Config) { c.Message = syslog.MessageSummary }},
		{"hostile_rfc3164", func(testing.TB) *alert.Record { return alerttest.HostileFieldsAlert() }, rfc3164},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := format(t, newFormatter(t, tt.mod), tt.rec(t))
			golden.Check(t, tt.name+".golden", got)
			checkOneLine(t, got)
		})
	}
}

func checkOneLine(t testing.TB, msg []byte) {
	t.Helper()
	if i := bytes.IndexAny(msg, "\r\n\x00"); i >= 0 {
		t.Fatalf("message has a CR, LF or NUL at %d: %q", i, msg)
	}
	if !utf8.Valid(msg) {
		t.Fatalf("message is not valid UTF-8: %q", msg)
	}
}

func TestPRI(t *testing.T) {
	rec := func(s alert.Severity) *alert.Record { return &alert.Record{Kind: alert.KindAlert, Severity: s} }
	tests := []struct {
		facility, severity string
		sev                alert.Severity
		want               string
	}{
		{"kern", "emerg", alert.SeverityHigh, "<0>1 "},
		{"0", "0", alert.SeverityNone, "<0>1 "},
		{"local7", "debug", alert.SeverityHigh, "<191>1 "},
		{"23", "7", alert.SeverityHigh, "<191>1 "},
		{"user", "notice", alert.SeverityHigh, "<13>1 "},
		{"local4", "crit", alert.SeverityHigh, "<162>1 "},
		{"LOCAL4", "Warning", alert.SeverityHigh, "<164>1 "},
		{"authpriv", "info", alert.SeverityHigh, "<86>1 "},
		{"security", "alert", alert.SeverityHigh, "<33>1 "},
	}
	for _, tt := range tests {
		t.Run(tt.facility+"/"+tt.severity, func(t *testing.T) {
			got := format(t, newFormatter(t, func(c *syslog.Config) {
				c.Facility = tt.facility
				c.SeverityMap.High = tt.severity
				c.SeverityMap.None = tt.severity
			}), rec(tt.sev))
			if !bytes.HasPrefix(got, []byte(tt.want)) {
				t.Errorf("got %q, want prefix %q", got, tt.want)
			}
		})
	}
	// Every facility and severity, to catch a wrong table entry.
	for fac := 0; fac <= 23; fac++ {
		for sev := 0; sev <= 7; sev++ {
			got := format(t, newFormatter(t, func(c *syslog.Config) {
				c.Facility = strconv.Itoa(fac)
				c.SeverityMap.None = strconv.Itoa(sev)
			}), rec(alert.SeverityNone))
			want := fmt.Sprintf("<%d>1 ", fac*8+sev)
			if !bytes.HasPrefix(got, []byte(want)) {
				t.Errorf("facility %d severity %d: got %q", fac, sev, got)
			}
		}
	}
}

func TestDefaultSeverityMap(t *testing.T) {
	f := newFormatter(t, nil) // local4 = 20
	for sev, want := range map[alert.Severity]string{
		alert.SeverityHigh: "<162>", alert.SeverityMedium: "<164>", alert.SeverityLow: "<165>",
		alert.SeverityInformational: "<166>", alert.SeverityNone: "<165>", alert.Severity(99): "<165>",
	} {
		got := format(t, f, &alert.Record{Kind: alert.KindAlert, Severity: sev})
		if !bytes.HasPrefix(got, []byte(want)) {
			t.Errorf("severity %d: got %q, want prefix %q", sev, got, want)
		}
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"zero", time.Time{}, "-"},
		{"whole second", time.Date(2024, 6, 3, 12, 0, 0, 0, time.UTC), "2024-06-03T12:00:00Z"},
		{"nanoseconds truncated", time.Date(2024, 6, 3, 12, 0, 59, 999999999, time.UTC), "2024-06-03T12:00:59.999999Z"},
		{"trailing zeros dropped", time.Date(2024, 6, 3, 12, 0, 0, 500000000, time.UTC), "2024-06-03T12:00:00.5Z"},
		{"offset converted to UTC", time.Date(2024, 6, 3, 14, 0, 0, 0, time.FixedZone("CEST", 7200)), "2024-06-03T12:00:00Z"},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "-"},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC), "0001-01-01T00:00:00.000001Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(syslog.AppendTimestamp(nil, tt.t)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTimestamp3164(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2024, 6, 3, 9, 5, 7, 999, time.UTC), "Jun  3 09:05:07"},
		{time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), "Dec 31 23:59:59"},
		{time.Date(2024, 1, 1, 1, 0, 0, 0, time.FixedZone("X", 3*3600)), "Dec 31 22:00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(syslog.AppendTimestamp3164(nil, tt.t)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRFC3164ZeroTimeUsesClock(t *testing.T) {
	f := newFormatter(t, func(c *syslog.Config) {
		c.Header = syslog.HeaderRFC3164
		c.Now = func() time.Time { return time.Date(2025, 2, 9, 8, 7, 6, 0, time.UTC) }
	})
	got := format(t, f, &alert.Record{Kind: alert.KindUnknown, Raw: []byte(`{}`)})
	if want := "<165>Feb  9 08:07:06 fwd-1.example.net defender-for-cloud[42]: {}"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestHeaderField(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"empty is nil", "", 48, "-"},
		{"dash stays dash", "-", 48, "-"},
		{"space replaced", "my host", 255, "my_host"},
		{"tab and newline replaced", "a\tb\nc", 255, "a_b_c"},
		{"non-ASCII one mark per character", "hôst", 255, "h_st"},
		{"invalid byte", "a\xffb", 255, "a?b"},
		{"DEL replaced", "a\x7fb", 255, "a_b"},
		{"cap 32", strings.Repeat("m", 40), 32, strings.Repeat("m", 32)},
		{"cap 48", strings.Repeat("a", 49), 48, strings.Repeat("a", 48)},
		{"cap 128", strings.Repeat("p", 129), 128, strings.Repeat("p", 128)},
		{"cap 255", strings.Repeat("h", 300), 255, strings.Repeat("h", 255)},
		{"all printable kept", "!~\"[]=", 255, "!~\"[]="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(syslog.AppendHeaderField(nil, tt.in, tt.max)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMSGIDIsKind(t *testing.T) {
	f := newFormatter(t, nil)
	for _, k := range alert.Kinds {
		got := format(t, f, &alert.Record{Kind: k, Raw: []byte(`{}`)})
		h := parse5424(t, got)
		if h.msgID != string(k) || len(h.msgID) > 32 {
			t.Errorf("kind %s: MSGID %q", k, h.msgID)
		}
	}
	got := format(t, f, &alert.Record{Kind: alert.Kind("a kind with spaces that is far too long to fit")})
	if h := parse5424(t, got); h.msgID != "a_kind_with_spaces_that_is_far_t" {
		t.Errorf("MSGID %q", h.msgID)
	}
}

func TestSDValue(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "abc", "abc"},
		{"quote", `a"b`, `a\"b`},
		{"backslash", `a\b`, `a\\b`},
		{"bracket", `a]b`, `a\]b`},
		{"already escaped quote is escaped again", `\"`, `\\\"`},
		{"backslash then other char", `\n`, `\\n`},
		{"open bracket and equals untouched", `[x=y]`, `[x=y\]`},
		{"LF CR TAB NUL become spaces", "a\nb\rc\td\x00e", "a b c d e"},
		{"DEL and C1 become spaces", "a\x7fb\u0085c", "a b c"},
		{"invalid bytes one mark each", "a\xff\xfeb", "a\uFFFD\uFFFDb"},
		{"truncated UTF-8", "a\xe2\x82", "a\uFFFD\uFFFD"},
		{"UTF-8 kept", "‘é’ 日本", "‘é’ 日本"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(syslog.AppendSDValue(nil, tt.in)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParamsSorted(t *testing.T) {
	for _, rec := range []*alert.Record{alerttest.HostileFieldsAlert(), alerttest.Assessment(t), alerttest.ElasticAlert(t), {Kind: alert.KindAlert, Alert: &alert.Alert{}}} {
		ps := syslog.Params(rec)
		for i := range ps {
			if i > 0 && ps[i-1].Name >= ps[i].Name {
				t.Errorf("%s: param %q after %q", rec.Kind, ps[i].Name, ps[i-1].Name)
			}
			if ps[i].Value == "" {
				t.Errorf("%s: empty param %q", rec.Kind, ps[i].Name)
			}
		}
	}
}

func TestNoStructuredData(t *testing.T) {
	got := string(format(t, newFormatter(t, nil), &alert.Record{Kind: alert.KindUnknown, Raw: []byte(` { "a" : 1 } `)}))
	if want := `<165>1 - fwd-1.example.net defender-for-cloud 42 unknown - {"a":1}`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRawJSON(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"compacted", "{\n  \"a\": [1, 2],\n\t\"b\": \"x y\"\n}\n", `{"a":[1,2],"b":"x y"}`},
		{"escapes kept", `{"a":"line\nnext \u2028 \"q\""}`, `{"a":"line\nnext \u2028 \"q\""}`},
		{"not JSON kept with line breaks replaced", "{a: 1,\r\n}", "{a: 1,  }"},
		{"invalid UTF-8 replaced", "{\"a\":\"\xff\"}", "{\"a\":\"\uFFFD\"}"},
		{"NUL replaced", "x\x00y", "x y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(syslog.AppendRawJSON([]byte("p:"), []byte(tt.in))); got != "p:"+tt.want {
				t.Errorf("got %q, want %q", got, "p:"+tt.want)
			}
		})
	}
}

func TestAppendsToDst(t *testing.T) {
	f := newFormatter(t, nil)
	rec := alerttest.ElasticAlert(t)
	alone := format(t, f, rec)
	got, err := f.Format([]byte("prefix"), rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append([]byte("prefix"), alone...)) {
		t.Errorf("Format does not append to dst")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := syslog.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := syslog.Config{
		HeaderConfig: syslog.HeaderConfig{
			Header: "rfc9999", Facility: "local9",
			SeverityMap: syslog.SeverityMap{High: "8", Medium: "warn", Low: "", Informational: "info", None: "x"},
			Hostname:    "has space", AppName: strings.Repeat("a", 49), ProcID: "p\n",
		},
		SDID:    "no-at-sign",
		Message: "full",
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Header", "Facility", "SeverityMap.High", "SeverityMap.Low", "SeverityMap.None", "Hostname", "AppName", "ProcID", "SDID", "Message"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "SeverityMap.Medium") {
		t.Errorf("warn is a valid severity: %v", err)
	}
	if _, err := syslog.New(bad); err == nil {
		t.Error("New accepted a bad config")
	}
	c := syslog.DefaultConfig()
	c.Header = syslog.HeaderRFC3164
	c.AppName = "tag:x"
	c.ProcID = "1]"
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "AppName") || !strings.Contains(err.Error(), "ProcID") {
		t.Errorf("RFC 3164 TAG rules not enforced: %v", err)
	}
	c = syslog.DefaultConfig()
	c.SDID = "a=b@1"
	if err := c.Validate(); err == nil {
		t.Error("SD-ID with '=' accepted")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(bad.Validate(), &joined) || len(joined.Unwrap()) < 2 {
		t.Error("Validate does not join the problems")
	}
}

func TestParseNames(t *testing.T) {
	for in, want := range map[string]int{"kern": 0, "local0": 16, "LOCAL7": 23, " 10 ": 10, "authpriv": 10, "audit": 13} {
		if got, err := syslog.ParseFacility(in); err != nil || got != want {
			t.Errorf("ParseFacility(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "24", "-1", "local8", "1.5"} {
		if _, err := syslog.ParseFacility(in); err == nil {
			t.Errorf("ParseFacility(%q) accepted", in)
		}
	}
	for in, want := range map[string]int{"emerg": 0, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7, "7": 7} {
		if got, err := syslog.ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"8", "fatal", ""} {
		if _, err := syslog.ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q) accepted", in)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	for _, tt := range []struct {
		name string
		mod  func(*syslog.Config)
	}{{"rfc5424_raw", nil}, {"rfc5424_summary", func(c *syslog.Config) { c.Message = syslog.MessageSummary }}, {"rfc3164_raw", func(c *syslog.Config) { c.Header = syslog.HeaderRFC3164 }}} {
		b.Run(tt.name, func(b *testing.B) {
			f := newFormatter(b, tt.mod)
			rec := alerttest.ElasticAlert(b)
			buf := make([]byte, 0, 16<<10)
			b.SetBytes(int64(len(rec.Raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = f.Format(buf[:0], rec)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
