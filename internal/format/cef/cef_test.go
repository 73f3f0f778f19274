package cef_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/dev/golden"
	"github.com/defender-siem/forwarder/internal/format/cef"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

func newFormatter(t testing.TB, mod func(*cef.Config)) *cef.Formatter {
	t.Helper()
	cfg := cef.DefaultConfig()
	cfg.Syslog.Hostname = "fwd-1"
	cfg.Syslog.Now = func() time.Time { return time.Date(2025, 2, 9, 8, 7, 6, 0, time.UTC) }
	if mod != nil {
		mod(&cfg)
	}
	f, err := cef.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func format(t testing.TB, f *cef.Formatter, rec *alert.Record) []byte {
	t.Helper()
	out, err := f.Format(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGolden(t *testing.T) {
	rfc5424 := func(c *cef.Config) { c.Syslog.Header = syslog.HeaderRFC5424; c.Syslog.ProcID = "42" }
	hostile := func(testing.TB) *alert.Record { return alerttest.HostileFieldsAlert() }
	tests := []struct {
		name string
		rec  func(testing.TB) *alert.Record
		mod  func(*cef.Config)
	}{
		{"alert_rfc3164", alerttest.ElasticAlert, nil},
		{"alert_rfc5424", alerttest.ElasticAlert, rfc5424},
		{"alert_no_extension_space", alerttest.ElasticAlert, func(c *cef.Config) { c.NoExtensionSpace = true }},
		{"mdc_alert_rfc3164", alerttest.MDCAlert, nil},
		{"assessment_rfc3164", alerttest.Assessment, nil},
		{"scorecontrol_rfc3164", alerttest.ScoreControl, nil},
		{"hostile_rfc3164", hostile, nil},
		{"hostile_rfc5424", hostile, rfc5424},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := format(t, newFormatter(t, tt.mod), tt.rec(t))
			golden.Check(t, tt.name+".golden", got)
			checkCEF(t, got)
		})
	}
}

// checkCEF checks the properties every output has: one line of UTF-8 and a CEF part with
// exactly seven unescaped header pipes.
func checkCEF(t testing.TB, msg []byte) parsed {
	t.Helper()
	if i := bytes.IndexAny(msg, "\r\n\x00"); i >= 0 {
		t.Fatalf("CR, LF or NUL at %d: %q", i, msg)
	}
	if !utf8.Valid(msg) {
		t.Fatalf("not UTF-8: %q", msg)
	}
	i := bytes.Index(msg, []byte("CEF:0|"))
	if i < 0 {
		t.Fatalf("no CEF:0| in %q", msg)
	}
	p, err := parseCEF(string(msg[i:]))
	if err != nil {
		t.Fatalf("%v: %q", err, msg)
	}
	return p
}

func TestSyslogHeader(t *testing.T) {
	rec := alerttest.ElasticAlert(t)
	tests := []struct {
		name string
		mod  func(*cef.Config)
		want string
	}{
		{"rfc3164 has no tag", nil, "<164>May 11 13:17:09 fwd-1 CEF:0|Microsoft|Microsoft Defender for Cloud|1.0|"},
		{"rfc5424 has nil SD and no BOM", func(c *cef.Config) { c.Syslog.Header = syslog.HeaderRFC5424 }, "<164>1 2023-05-11T13:17:09.017042Z fwd-1 defender-for-cloud - alert - CEF:0|"},
		{"facility", func(c *cef.Config) { c.Syslog.Facility = "local5"; c.Syslog.SeverityMap.Medium = "err" }, "<171>May 11 "},
		{"empty hostname", func(c *cef.Config) { c.Syslog.Hostname = "" }, "<164>May 11 13:17:09 - CEF:0|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := format(t, newFormatter(t, tt.mod), rec); !bytes.HasPrefix(got, []byte(tt.want)) {
				t.Errorf("got %q, want prefix %q", got, tt.want)
			}
		})
	}
}

func TestHeaderEscaping(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"pipe", "a|b", `a\|b`},
		{"backslash first", `a\|b`, `a\\\|b`},
		{"equals untouched", "a=b", "a=b"},
		{"CR LF become spaces", "a\r\nb", "a  b"},
		{"controls become spaces", "a\x00\t\x7f\u0085b", "a    b"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"UTF-8 kept", "‘é’", "‘é’"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &alert.Record{Kind: alert.KindAlert, Alert: &alert.Alert{AlertType: tt.in, DisplayName: tt.in}}
			got := string(newFormatter(t, nil).AppendCEF(nil, rec))
			want := "CEF:0|Microsoft|Microsoft Defender for Cloud|1.0|" + tt.want + "|" + tt.want + "|Unknown|"
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestHeaderLimits(t *testing.T) {
	f := newFormatter(t, nil)
	long := strings.Repeat("é", 600) // 1200 bytes
	rec := &alert.Record{Kind: alert.KindAlert, Alert: &alert.Alert{AlertType: strings.Repeat("|", 600), DisplayName: "x" + long}}
	p := checkCEF(t, f.AppendCEF(nil, rec))
	raw := strings.Split(string(f.AppendCEF(nil, rec)), "|")
	_ = raw
	if len(p.rawHeader[4]) > 1023 || len(p.rawHeader[5]) > 512 {
		t.Errorf("header fields too long: %d %d", len(p.rawHeader[4]), len(p.rawHeader[5]))
	}
	if p.header[4] != strings.Repeat("|", 511) {
		t.Errorf("signature cut inside an escape: %d pipes", len(p.header[4]))
	}
	if p.header[5] != "x"+strings.Repeat("é", 255) {
		t.Errorf("name cut inside a character: %q", p.header[5])
	}
}

func TestSeverity(t *testing.T) {
	f := newFormatter(t, nil)
	for sev, want := range map[alert.Severity]string{
		alert.SeverityHigh: "8", alert.SeverityMedium: "5", alert.SeverityLow: "3",
		alert.SeverityInformational: "1", alert.SeverityNone: "Unknown", alert.Severity(42): "Unknown",
	} {
		p := checkCEF(t, f.AppendCEF(nil, &alert.Record{Kind: alert.KindAlert, Severity: sev}))
		if p.header[6] != want {
			t.Errorf("severity %d: got %q, want %q", sev, p.header[6], want)
		}
	}
	custom := newFormatter(t, func(c *cef.Config) { c.Severity.High = "Very-High"; c.Severity.None = "0" })
	if p := checkCEF(t, custom.AppendCEF(nil, &alert.Record{Severity: alert.SeverityHigh})); p.header[6] != "Very-High" {
		t.Errorf("custom high: %q", p.header[6])
	}
}

func TestNoExtension(t *testing.T) {
	got := string(newFormatter(t, nil).AppendCEF(nil, &alert.Record{Kind: alert.KindSecureScore}))
	if want := "CEF:0|Microsoft|Microsoft Defender for Cloud|1.0|securescore|securescore|Unknown| cat=securescore"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	got = string(newFormatter(t, nil).AppendCEF(nil, &alert.Record{}))
	if want := "CEF:0|Microsoft|Microsoft Defender for Cloud|1.0|unknown||Unknown|"; got != want {
		t.Errorf("got %q, want %q (seven pipes, nothing after)", got, want)
	}
}

func TestExtensionEscaping(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain with spaces", "a b  c", "a b  c"},
		{"equals", "a=b", `a\=b`},
		{"backslash first", `a\=b`, `a\\\=b`},
		{"pipe not escaped", "a|b", "a|b"},
		{"LF and CR", "a\nb\r\nc", `a\nb\r\nc`},
		{"other controls become spaces", "a\x00b\tc\x7fd\u0085e", "a b c d e"},
		{"outer spaces trimmed", "  a b  ", "a b"},
		{"control at the ends trimmed", "\ta\t", "a"},
		{"invalid UTF-8", "a\xff", "a\uFFFD"},
		{"forged key", "x act=deny", `x act\=deny`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &alert.Record{Kind: alert.KindRecommendation, Description: tt.in}
			got := string(newFormatter(t, nil).AppendCEF(nil, rec))
			want := "CEF:0|Microsoft|Microsoft Defender for Cloud|1.0|recommendation|recommendation|Unknown| cat=recommendation msg=" + tt.want
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	rec := &alert.Record{Kind: alert.KindRecommendation, Description: "  \t "}
	if got := string(newFormatter(t, nil).AppendCEF(nil, rec)); strings.Contains(got, "msg=") {
		t.Errorf("blank value written: %q", got)
	}
}

func TestExtensionLimits(t *testing.T) {
	f := newFormatter(t, nil)
	tests := []struct {
		name, key string
		rec       *alert.Record
		max       int
		want      string
	}{
		{"msg 1023 not splitting an escape", "msg", &alert.Record{Description: strings.Repeat("=", 600)}, 1023, strings.Repeat("=", 511)},
		{"msg 1023 not splitting a character", "msg", &alert.Record{Description: "a" + strings.Repeat("€", 400)}, 1023, "a" + strings.Repeat("€", 340)},
		{"cs1 4000", "cs1", &alert.Record{ID: strings.Repeat("ab", 2500)}, 4000, strings.Repeat("ab", 2000)},
		{"act 63", "act", &alert.Record{Alert: &alert.Alert{ExtendedProperties: map[string]string{"ActionTaken": strings.Repeat("\n", 40)}}}, 63, strings.Repeat("\n", 31)},
		{"externalId fits", "externalId", &alert.Record{Alert: &alert.Alert{SystemAlertID: strings.Repeat("i", 40)}}, 40, strings.Repeat("i", 40)},
		{"externalId too long is left out", "externalId", &alert.Record{Alert: &alert.Alert{SystemAlertID: strings.Repeat("i", 41)}}, 40, ""},
		{"externalId escaped too long", "externalId", &alert.Record{Alert: &alert.Alert{SystemAlertID: strings.Repeat("=", 21)}}, 40, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := checkCEF(t, f.AppendCEF(nil, tt.rec))
			if got := p.ext[tt.key]; got != tt.want {
				t.Errorf("%s = %q (%d bytes), want %q", tt.key, got, len(got), tt.want)
			}
			if raw := p.rawExt[tt.key]; len(raw) > tt.max {
				t.Errorf("%s is %d bytes escaped, limit %d", tt.key, len(raw), tt.max)
			}
		})
	}
}

func TestExtensionSorted(t *testing.T) {
	for _, rec := range []*alert.Record{alerttest.HostileFieldsAlert(), alerttest.ElasticAlert(t), alerttest.Assessment(t), alerttest.MDCAlert(t)} {
		ps := cef.Extension(rec)
		for i := 1; i < len(ps); i++ {
			if ps[i-1].Key >= ps[i].Key {
				t.Errorf("%s: key %q after %q", rec.Kind, ps[i].Key, ps[i-1].Key)
			}
		}
		for _, p := range ps {
			for _, c := range p.Key {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
					t.Errorf("key %q is not alphanumeric", p.Key)
				}
			}
		}
	}
}

func TestAlertMapping(t *testing.T) {
	p := checkCEF(t, format(t, newFormatter(t, nil), alerttest.ElasticAlert(t)))
	want := map[string]string{
		"cat": "PreAttack", "cs1": "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d", "cs1Label": "AlertId",
		"cs3": "12cabcb4-86e8-404f-a3d2-1dc9982f45ca", "cs3Label": "SubscriptionId", "cs6": "Sample-VM",
		"deviceExternalId": "12cabcb4-86e8-404f-a3d2-1dc9982f45ca", "dhost": "Sample-VM",
		"rt": "1683811029017", "start": "1683810945017", "end": "1683810945017",
		"src": "81.2.69.142", "suser": "Sample-account", "fname": "Sample-Name", "flexString1": "Active",
	}
	for k, v := range want {
		if p.ext[k] != v {
			t.Errorf("%s = %q, want %q", k, p.ext[k], v)
		}
	}
	if _, ok := p.ext["externalId"]; ok {
		t.Errorf("externalId longer than 40 written")
	}
	if p.header[4] != "ARM_AnomalousServiceOperation.CredentialAccess" || p.header[5] != "[SAMPLE ALERT] Login from a suspicious IP" || p.header[6] != "5" {
		t.Errorf("header %q", p.header)
	}
}

func TestSignature(t *testing.T) {
	tests := []struct {
		rec  *alert.Record
		want string
	}{
		{alerttest.Assessment(t), "7b3d4796-9400-2904-692b-4a5ede7f0a1e"},
		{&alert.Record{Kind: alert.KindSubAssessment, ID: "/subscriptions/s/providers/Microsoft.Security/Assessments/key1/subAssessments/x"}, "key1"},
		{&alert.Record{Kind: alert.KindRecommendation, ID: "no-assessment"}, "recommendation"},
		{alerttest.ScoreControl(t), "securescorecontrol"},
		{&alert.Record{Kind: alert.KindAlert, Alert: &alert.Alert{}}, "alert"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if p := checkCEF(t, newFormatter(t, nil).AppendCEF(nil, tt.rec)); p.header[4] != tt.want {
				t.Errorf("signature %q, want %q", p.header[4], tt.want)
			}
		})
	}
}

func TestTimesInMilliseconds(t *testing.T) {
	rec := &alert.Record{Kind: alert.KindAlert, Alert: &alert.Alert{
		TimeGenerated: time.Date(2024, 6, 3, 12, 0, 0, 999999999, time.UTC),
		StartTime:     time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
	}}
	p := checkCEF(t, newFormatter(t, nil).AppendCEF(nil, rec))
	if p.ext["rt"] != "1717416000999" {
		t.Errorf("rt %q: milliseconds must be truncated", p.ext["rt"])
	}
	if _, ok := p.ext["start"]; ok {
		t.Errorf("time before 1970 written")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := cef.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := cef.DefaultConfig()
	c.Vendor = ""
	c.Product = strings.Repeat("|", 40)
	c.Version = strings.Repeat("v", 32)
	c.Severity = cef.SeverityMap{High: "11", Medium: "05", Low: "low", Informational: "-1", None: ""}
	c.Syslog.Facility = "nope"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Vendor", "Product", "Version", "Severity.High", "Severity.Medium", "Severity.Low", "Severity.Informational", "Severity.None", "Facility"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if _, err := cef.New(c); err == nil {
		t.Error("New accepted a bad config")
	}
}

func BenchmarkFormat(b *testing.B) {
	f := newFormatter(b, nil)
	rec := alerttest.ElasticAlert(b)
	buf := make([]byte, 0, 8<<10)
	out, _ := f.Format(nil, rec)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = f.Format(buf[:0], rec)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func TestEntities(t *testing.T) {
	tests := []struct {
		name string
		a    *alert.Alert
		want map[string]string
	}{
		{"decoded from EntitiesJSON when not parsed", &alert.Alert{EntitiesJSON: []byte(`[{"$id":"1","Type":"ip","Address":"10.0.0.1"},{"$id":"2","Type":"account","Name":"alice","Host":{"$ref":"3"}},{"$id":"3","Type":"host","HostName":"web1"}]`)},
			map[string]string{"src": "10.0.0.1", "suser": "alice", "dhost": "web1"}},
		{"first valid IP", &alert.Alert{Entities: []alert.Entity{
			{Type: "ip", Fields: map[string]any{"Address": "not an ip"}},
			{Type: "ip", Fields: map[string]any{"address": "::ffff:10.1.2.3"}},
		}}, map[string]string{"src": "::ffff:10.1.2.3"}},
		{"compromised entity when no host", &alert.Alert{CompromisedEntity: "vm1", Entities: []alert.Entity{
			{Type: "url", Fields: map[string]any{"Url": "https://x/?a=b"}},
			{Type: "file", Fields: map[string]any{"Name": "evil.exe"}},
		}}, map[string]string{"dhost": "vm1", "request": "https://x/?a=b", "fname": "evil.exe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := checkCEF(t, newFormatter(t, nil).AppendCEF(nil, &alert.Record{Kind: alert.KindAlert, Alert: tt.a}))
			for k, v := range tt.want {
				if p.ext[k] != v {
					t.Errorf("%s = %q, want %q", k, p.ext[k], v)
				}
			}
		})
	}
}
