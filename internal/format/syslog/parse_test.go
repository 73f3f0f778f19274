package syslog_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

// msg5424 is a message as a strict RFC 5424 reader sees it.
type msg5424 struct {
	pri                                 int
	timestamp, host, app, procID, msgID string
	sdID                                string
	params                              map[string]string
	names                               []string
	msg                                 []byte
}

// parse5424 is a small, strict reader of the RFC 5424 ABNF, independent of the formatter.
func parse5424(t testing.TB, b []byte) msg5424 {
	t.Helper()
	var m msg5424
	fail := func(why string) {
		t.Helper()
		t.Fatalf("not RFC 5424 (%s): %q", why, b)
	}
	if len(b) == 0 || b[0] != '<' {
		fail("no PRI")
	}
	end := bytes.IndexByte(b, '>')
	if end < 2 || end > 4 {
		fail("PRI")
	}
	pri, err := strconv.Atoi(string(b[1:end]))
	if err != nil || pri < 0 || pri > 191 || (end > 2 && b[1] == '0') {
		fail("PRIVAL")
	}
	m.pri = pri
	b = b[end+1:]
	if !bytes.HasPrefix(b, []byte("1 ")) {
		fail("VERSION")
	}
	b = b[2:]
	fields := make([]string, 5)
	for i, max := range []int{-1, 255, 48, 128, 32} {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			fail("header field " + strconv.Itoa(i))
		}
		f := string(b[:sp])
		if max > 0 && len(f) > max {
			fail("header field too long")
		}
		for j := 0; j < len(f); j++ {
			if f[j] < 33 || f[j] > 126 {
				fail("header field not PRINTUSASCII")
			}
		}
		fields[i] = f
		b = b[sp+1:]
	}
	m.timestamp, m.host, m.app, m.procID, m.msgID = fields[0], fields[1], fields[2], fields[3], fields[4]
	if m.timestamp != "-" {
		if _, err := time.Parse("2006-01-02T15:04:05.999999Z07:00", m.timestamp); err != nil {
			fail("TIMESTAMP")
		}
		if i := strings.IndexByte(m.timestamp, '.'); i >= 0 && len(m.timestamp)-i-2 > 6 {
			fail("more than 6 fractional digits")
		}
	}
	m.params = map[string]string{}
	switch {
	case len(b) > 0 && b[0] == '-':
		b = b[1:]
	case len(b) > 0 && b[0] == '[':
		i := 1
		for i < len(b) && b[i] != ' ' && b[i] != ']' {
			i++
		}
		m.sdID = string(b[1:i])
		for i < len(b) && b[i] == ' ' {
			i++
			eq := bytes.IndexByte(b[i:], '=')
			if eq <= 0 || eq > 32 {
				fail("PARAM-NAME")
			}
			name := string(b[i : i+eq])
			if strings.ContainsAny(name, " ]\"") {
				fail("PARAM-NAME characters")
			}
			i += eq + 1
			if i >= len(b) || b[i] != '"' {
				fail("PARAM-VALUE quote")
			}
			i++
			var v []byte
			for {
				if i >= len(b) {
					fail("unterminated PARAM-VALUE")
				}
				c := b[i]
				if c == '"' {
					i++
					break
				}
				if c == ']' {
					fail("unescaped ] in PARAM-VALUE")
				}
				if c == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\' || b[i+1] == ']') {
					v = append(v, b[i+1])
					i += 2
					continue
				}
				v = append(v, c)
				i++
			}
			if !utf8.Valid(v) {
				fail("PARAM-VALUE not UTF-8")
			}
			m.params[name] = string(v)
			m.names = append(m.names, name)
		}
		if i >= len(b) || b[i] != ']' {
			fail("SD-ELEMENT end")
		}
		b = b[i+1:]
	default:
		fail("STRUCTURED-DATA")
	}
	if len(b) > 0 {
		if b[0] != ' ' {
			fail("no SP before MSG")
		}
		m.msg = b[1:]
	}
	return m
}

// cleanSD is what an SD value should read back as: invalid bytes as U+FFFD, control
// characters as spaces, everything else unchanged.
func cleanSD(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			sb.WriteRune(utf8.RuneError)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			sb.WriteByte(' ')
		default:
			sb.WriteString(s[i : i+n])
		}
		i += n
	}
	return sb.String()
}

func TestParseGoldenSD(t *testing.T) {
	rec := alerttest.HostileFieldsAlert()
	m := parse5424(t, format(t, newFormatter(t, nil), rec))
	want := map[string]string{
		"alertId": rec.Alert.SystemAlertID, "alertType": rec.Alert.AlertType, "alertUri": rec.Alert.AlertURI,
		"compromisedEntity": rec.Alert.CompromisedEntity, "displayName": rec.Alert.DisplayName,
		"intent": "Execution," + alerttest.HostileText, "resourceId": rec.ResourceID, "severity": "High",
		"status": rec.Status, "subscriptionId": rec.SubscriptionID, "techniques": "T1059,T1059=x",
	}
	if len(m.params) != len(want) {
		t.Errorf("params %v, want %d of them", m.names, len(want))
	}
	for k, v := range want {
		if got := m.params[k]; got != cleanSD(v) {
			t.Errorf("%s = %q, want %q", k, got, cleanSD(v))
		}
	}
	if m.sdID != syslog.DefaultSDID || m.msgID != "alert" || m.timestamp != "2024-06-03T12:00:00.123456Z" {
		t.Errorf("header %+v", m)
	}
}

func FuzzFormat(f *testing.F) {
	f.Add(alerttest.HostileText, "High", `{"a":1}`, "host", "app", "rfc5424", int64(1717416000123456789))
	f.Add("", "", "", "", "", "rfc3164", int64(0))
	f.Add("a]b\\\"", "x\xff", "{\n\"a\":\"\xff\"}", "h ost", "a:p[p]", "rfc5424", int64(-1))
	f.Add(string(alerttest.ReadSample(f, "elastic_eventhub_alert.json")), "‘é’", string(alerttest.ReadSample(f, "mdc_repo_readme_eventhub_alert_sample.jsonc")), "-", "-", "rfc3164", int64(253402300800000000))
	f.Fuzz(func(t *testing.T, text, name, raw, host, app, header string, nanos int64) {
		cfg := syslog.DefaultConfig()
		cfg.Header = syslog.HeaderRFC3164
		if len(header)%2 == 0 {
			cfg.Header = syslog.HeaderRFC5424
		}
		cfg.Hostname = string(syslog.AppendHeaderField(nil, host, 255))
		if cfg.Hostname == "-" {
			cfg.Hostname = ""
		}
		cfg.Now = func() time.Time { return time.Unix(0, 0) }
		if len(app)%3 == 0 {
			cfg.Message = syslog.MessageSummary
		}
		fm, err := syslog.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rec := &alert.Record{
			Kind: alert.Kind(app), Raw: []byte(raw), ID: text, DisplayName: name, Status: text,
			Severity: alert.Severity(len(text) % 7), Time: time.Unix(0, nanos),
			SubscriptionID: name + text, ResourceID: text + name, Description: text,
		}
		if len(text)%2 == 1 {
			rec.Alert = &alert.Alert{SystemAlertID: text, AlertType: name, DisplayName: text, CompromisedEntity: name, Intent: []string{text, name}}
		}
		out, err := fm.Format(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		checkOneLine(t, out)
		if cfg.Header == syslog.HeaderRFC3164 {
			return
		}
		m := parse5424(t, out)
		for _, p := range syslog.Params(rec) {
			if got, ok := m.params[p.Name]; !ok || got != cleanSD(p.Value) {
				t.Fatalf("param %s = %q, want %q", p.Name, got, cleanSD(p.Value))
			}
		}
		if len(m.names) != len(syslog.Params(rec)) {
			t.Fatalf("params %v", m.names)
		}
		if m.msgID != string(syslog.AppendHeaderField(nil, app, 32)) {
			t.Fatalf("MSGID %q", m.msgID)
		}
	})
}
