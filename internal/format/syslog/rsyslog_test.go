package syslog_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/format/cef"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

// TestOddAlertsThroughRsyslog sends every odd alert, as RFC 5424 and as CEF, to a real
// rsyslogd and checks what its parsers (mmpstrucdata for the structured data, liblognorm for
// CEF) make of them: each is an alert with its id, type, name and time.
func TestOddAlertsThroughRsyslog(t *testing.T) {
	r := testenv.StartRsyslog(t)
	f5424 := newFormatter(t, nil)
	cfg := cef.DefaultConfig()
	cfg.Syslog.Hostname = "fwd-1"
	fcef, err := cef.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	odd := alerttest.OddAlerts()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.TCPPort), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, o := range odd {
		rec := alerttest.ParseOdd(t, o)
		// One LF-framed RFC 5424 message, then one CEF message, per alert.
		out, err := fcef.Format(append(format(t, f5424, rec), '\n'), rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(append(out, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	msgs := r.Messages(t, 2*len(odd), 60*time.Second)
	if len(msgs) != 2*len(odd) {
		t.Fatalf("rsyslog wrote %d messages, want %d", len(msgs), 2*len(odd))
	}
	for i, o := range odd {
		t.Run(o.Name, func(t *testing.T) {
			m5424, mcef := msgs[2*i], msgs[2*i+1]
			if m5424.Fields["msgid"] != "alert" {
				t.Errorf("MSGID %q", m5424.Fields["msgid"])
			}
			if ts, err := time.Parse(time.RFC3339Nano, m5424.Fields["timereported"]); err != nil || !ts.Equal(o.Time) {
				t.Errorf("timereported %q, want %s", m5424.Fields["timereported"], o.Time.Format(time.RFC3339Nano))
			}
			sd := m5424.SD[syslog.DefaultSDID]
			for k, v := range map[string]string{"alertId": o.ID, "alertType": o.Type, "displayName": o.DisplayName, "severity": o.Severity.String()} {
				if sd[k] != v {
					t.Errorf("SD %s = %q, want %q (SD %v)", k, sd[k], v, m5424.SD)
				}
			}
			c := mcef.CEF
			if c == nil {
				t.Fatalf("liblognorm found no CEF in %q", mcef.Fields["rawmsg"])
			}
			sig, name := o.Type, o.DisplayName
			if sig == "" {
				sig = string(alert.KindAlert)
			}
			if name == "" {
				name = string(alert.KindAlert)
			}
			if c.SignatureID != sig || c.Name != name {
				t.Errorf("CEF signature %q name %q, want %q %q", c.SignatureID, c.Name, sig, name)
			}
			if c.Extensions["cs1"] != o.ID || c.Extensions["rt"] != strconv.FormatInt(o.Time.UnixMilli(), 10) {
				t.Errorf("CEF cs1 %q rt %q, want %q %d", c.Extensions["cs1"], c.Extensions["rt"], o.ID, o.Time.UnixMilli())
			}
		})
	}
}
