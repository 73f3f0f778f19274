package syslog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

func stamp5424(tm time.Time) string {
	return tm.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.999999Z07:00")
}

// TestOddAlerts: an alert with an odd field type is an alert message (MSGID alert) with the
// alert fields it carries, its time in the header and its original JSON as MSG.
func TestOddAlerts(t *testing.T) {
	f := newFormatter(t, nil)
	for _, o := range alerttest.OddAlerts() {
		t.Run(o.Name, func(t *testing.T) {
			rec := alerttest.ParseOdd(t, o)
			out := format(t, f, rec)
			checkOneLine(t, out)
			m := parse5424(t, out)
			if m.msgID != "alert" || m.timestamp != stamp5424(o.Time) || m.sdID != syslog.DefaultSDID {
				t.Errorf("header: MSGID %q TIMESTAMP %q SD-ID %q; want alert, %s", m.msgID, m.timestamp, m.sdID, stamp5424(o.Time))
			}
			want := map[string]string{"severity": o.Severity.String(), "displayName": o.DisplayName,
				"alertId": o.ID, "alertType": o.Type, "subscriptionId": o.Subscription}
			for k, v := range want {
				if m.params[k] != v {
					t.Errorf("%s = %q, want %q (params %v)", k, m.params[k], v, m.params)
				}
			}
			if !strings.HasPrefix(string(m.msg), "{") {
				t.Errorf("MSG %q", m.msg)
			}
		})
	}
}

// TestTimeForms: every time form Defender writes gives the TIMESTAMP of both headers; a form
// that is no time falls back to StartTimeUtc.
func TestTimeForms(t *testing.T) {
	f5424 := newFormatter(t, nil)
	f3164 := newFormatter(t, func(c *syslog.Config) { c.Header = syslog.HeaderRFC3164 })
	for _, tf := range alerttest.TimeForms() {
		t.Run(tf.Name, func(t *testing.T) {
			rec, err := alert.Parse(alerttest.TimeFormAlert(tf), 0)
			if err != nil {
				t.Fatal(err)
			}
			if m := parse5424(t, format(t, f5424, &rec)); m.timestamp != stamp5424(tf.Expected()) {
				t.Errorf("RFC 5424 TIMESTAMP %q, want %s", m.timestamp, stamp5424(tf.Expected()))
			}
			out := string(format(t, f3164, &rec))
			stamp := tf.Expected().UTC().Format("Jan _2 15:04:05")
			if i := strings.IndexByte(out, '>'); i < 0 || !strings.HasPrefix(out[i+1:], stamp+" ") {
				t.Errorf("RFC 3164 header %.40q, want timestamp %s", out, stamp)
			}
		})
	}
}
