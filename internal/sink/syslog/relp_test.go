package syslog_test

// RELP addresses against the real rsyslog imrelp (testenv.StartRsyslogRELP), plain and TLS:
// what rsyslog writes must be byte for byte what was sent, and rsyslog must parse it exactly
// as it parses the same bytes from TLS syslog (RFC 5425), whose parse the tests above check
// field by field.

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/format/cef"
	fsyslog "github.com/defender-siem/forwarder/internal/format/syslog"
	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/syslog"
)

func relpClient(t testing.TB, r *testenv.Rsyslog, addr string, mod func(*syslog.Config)) *syslog.Client {
	return newClient(t, addr, func(c *syslog.Config) {
		c.TLS.CAFile = r.CAFile()
		c.TLS.ClientCert = r.ClientCertFile()
		c.TLS.ClientKey = r.ClientKeyFile()
		if mod != nil {
			mod(c)
		}
	})
}

// parsed is what rsyslog made of a message, less what depends on the input it came by.
func parsed(m testenv.RsyslogMessage) map[string]any {
	out := map[string]any{}
	for k, v := range m.Fields {
		if k != "inputname" {
			out[k] = v
		}
	}
	out["SD"] = m.SD
	out["CEF"] = m.CEF
	return out
}

func TestFormatsThroughImrelp(t *testing.T) {
	recs := records(t)
	names := []string{"elastic alert", "mdc alert (not JSON)", "hostile alert", "assessment", "score control"}
	mk := func(f format.Formatter, err error) format.Formatter {
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	rfc5424 := fsyslog.DefaultConfig()
	rfc5424.Hostname = "fwd-1.example.net"
	rfc3164 := fsyslog.DefaultConfig()
	rfc3164.Header = fsyslog.HeaderRFC3164
	rfc3164.Hostname = "fwd-1"
	cefCfg := cef.DefaultConfig()
	cefCfg.Syslog.Hostname = "fwd-1"
	formats := []struct {
		name string
		f    format.Formatter
	}{
		{"rfc5424", mk(fsyslog.New(rfc5424))},
		{"rfc3164", mk(fsyslog.New(rfc3164))},
		{"cef", mk(cef.New(cefCfg))},
	}
	var batch [][]byte
	for _, fm := range formats {
		for _, n := range names {
			out, err := fm.f.Format(nil, recs[n])
			if err != nil {
				t.Fatalf("%s %s: %v", fm.name, n, err)
			}
			batch = append(batch, out)
		}
	}
	// A message no formatter writes: line breaks and a forged second header. A RELP frame is
	// counted, so it stays one message, as over TLS.
	batch = append(batch, []byte("<14>1 2024-06-03T12:00:00Z fwd-1 app - multi - \xef\xbb\xbfline1\nline2\r\n<13>1 2024-06-03T12:00:00Z forged app - - - injected"))

	// The reference: the same bytes over TLS syslog.
	ref := testenv.StartRsyslog(t)
	allNil(t, newClient(t, ref.TLSAddress(), func(c *syslog.Config) { c.TLS.CAFile = ref.CAFile() }).Send(context.Background(), batch))
	want := ref.Messages(t, len(batch), wait)

	rs := testenv.StartRsyslogRELP(t)
	seen := 0
	for _, tc := range []struct{ name, addr, input string }{
		{"relp", rs.RELPAddress(), "relp"},
		{"relp+tls", rs.RELPTLSAddress(), "relptls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := relpClient(t, rs, tc.addr, func(c *syslog.Config) { c.Window = 4 })
			allNil(t, c.Send(context.Background(), batch))
			// Delivered means answered, and this rsyslog answers after writing: no wait.
			got := rs.Messages(t, seen+len(batch), 0)[seen:]
			seen += len(got)
			if len(got) != len(batch) {
				t.Fatalf("rsyslog wrote %d messages, want %d", len(got), len(batch))
			}
			for i := range batch {
				if raw := got[i].Fields["rawmsg"]; raw != string(batch[i]) {
					t.Errorf("message %d arrived as %.200q, want %.200q", i, raw, batch[i])
				}
				if in := got[i].Fields["inputname"]; in != tc.input {
					t.Errorf("message %d came in on %q, want %q", i, in, tc.input)
				}
				g, w := parsed(got[i]), parsed(want[i])
				// RFC 3164 has no year and a "-" time is the time of receipt: both may differ.
				if strings.HasPrefix(string(batch[i]), "<") && !strings.Contains(string(batch[i][:6]), ">1 ") {
					delete(g, "timereported")
					delete(w, "timereported")
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("message %d parsed differently over %s than over TLS syslog:\n got %v\nwant %v", i, tc.name, g, w)
				}
			}
		})
	}
}

func TestRELPAddresses(t *testing.T) {
	tests := []struct {
		addr, wantErr string
		mod           func(*syslog.Config)
	}{
		{addr: "relp://collector.example:20514"},
		{addr: "relp+tls://collector.example:20514"},
		{addr: "relp://collector.example:20514", mod: func(c *syslog.Config) { c.Framing = syslog.FramingLF }},
		{addr: "relp://collector.example", wantErr: "host:port"},
		{addr: "relp+tls://collector.example:20514/x", wantErr: "only scheme://host:port"},
		{addr: "relps://collector.example:20514", wantErr: "relp+tls://"},
		{addr: "relp://collector.example:20514", mod: func(c *syslog.Config) { c.Window = 0 }, wantErr: "Window 0: want 1 to 10000"},
		{addr: "relp+tls://collector.example:20514", mod: func(c *syslog.Config) { c.TLS.ClientCert = "/nonexistent.pem" }, wantErr: "ClientCert and ClientKey must be set together"},
	}
	for _, tc := range tests {
		t.Run(tc.addr+" "+tc.wantErr, func(t *testing.T) {
			cfg := syslog.DefaultConfig()
			cfg.Address = tc.addr
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				c, err := syslog.New(cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if w := syslog.DefaultConfig().Window; w != 128 {
		t.Errorf("default Window %d, want 128", w)
	}
}

// The TLS settings work for relp+tls:// as for tls://: the server name defaults to the
// address's host, a wrong CA or server name fails permanently as unauthorized, and imrelp, which
// demands a client certificate, refuses a client without one.
func TestRELPTLSSettings(t *testing.T) {
	rs := testenv.StartRsyslogRELP(t)
	port := fmt.Sprint(rs.RELPTLSPort)
	tests := []struct {
		name       string
		addr       string
		mod        func(*syslog.Config)
		wantReason sink.Reason // "" means delivered
		wantText   string
	}{
		{name: "name from address", addr: "relp+tls://localhost:" + port},
		{name: "InsecureSkipVerify", addr: rs.RELPTLSAddress(), mod: func(c *syslog.Config) { c.TLS.CAFile = ""; c.TLS.InsecureSkipVerify = true }},
		{name: "wrong CA", addr: rs.RELPTLSAddress(), mod: func(c *syslog.Config) { c.TLS.CAFile = testenv.WrongCAFile(t) }, wantReason: sink.ReasonUnauthorized, wantText: "certificate"},
		{name: "wrong server name", addr: rs.RELPTLSAddress(), mod: func(c *syslog.Config) { c.TLS.ServerName = "siem.example.net" }, wantReason: sink.ReasonUnauthorized, wantText: "certificate"},
		{name: "no client certificate", addr: rs.RELPTLSAddress(), mod: func(c *syslog.Config) { c.TLS.ClientCert, c.TLS.ClientKey = "", "" }, wantReason: sink.ReasonUnauthorized, wantText: "certificate"},
		{name: "plain to the TLS port", addr: "relp://127.0.0.1:" + port, wantReason: sink.ReasonUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := relpClient(t, rs, tc.addr, func(c *syslog.Config) {
				c.DialTimeout = 5e9
				c.WriteTimeout = 5e9
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			err := c.Send(context.Background(), payloads("<13>1 - - - - - "+tc.name))[0]
			if tc.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || sink.ReasonOf(err) != tc.wantReason || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("got %v (%s), want %s mentioning %q", err, sink.ReasonOf(err), tc.wantReason, tc.wantText)
			}
			if tc.wantReason == sink.ReasonUnauthorized && !sink.IsPermanent(err) {
				t.Errorf("%v is retryable; a TLS trust problem needs a settings change", err)
			}
		})
	}
}
