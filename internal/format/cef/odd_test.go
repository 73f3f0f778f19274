package cef_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/format/cef"
)

func cefSeverity(s alert.Severity) string {
	m := cef.DefaultSeverityMap()
	return map[alert.Severity]string{alert.SeverityNone: m.None, alert.SeverityInformational: m.Informational,
		alert.SeverityLow: m.Low, alert.SeverityMedium: m.Medium, alert.SeverityHigh: m.High}[s]
}

// TestOddAlerts: an alert with an odd field type is a CEF alert event carrying what it has;
// a missing alert type leaves the kind as the signature, as for any record without one.
func TestOddAlerts(t *testing.T) {
	f := newFormatter(t, nil)
	for _, o := range alerttest.OddAlerts() {
		t.Run(o.Name, func(t *testing.T) {
			p := checkCEF(t, format(t, f, alerttest.ParseOdd(t, o)))
			sig := o.Type
			if sig == "" {
				sig = "alert"
			}
			name := o.DisplayName
			if name == "" {
				name = "alert"
			}
			if p.header[4] != sig || p.header[5] != name || p.header[6] != cefSeverity(o.Severity) {
				t.Errorf("header %q, want signature %q name %q severity %q", p.header, sig, name, cefSeverity(o.Severity))
			}
			want := map[string]string{"rt": strconv.FormatInt(o.Time.UnixMilli(), 10), "cs1": o.ID, "cs3": o.Subscription}
			if o.ID != "" {
				want["cs1Label"] = "AlertId"
				want["externalId"] = o.ID
			}
			for k, v := range want {
				if p.ext[k] != v {
					t.Errorf("%s = %q, want %q (extension %v)", k, p.ext[k], v, p.ext)
				}
			}
		})
	}
}

// TestTimeForms: every time form Defender writes gives rt and the syslog timestamp; a form
// that is no time falls back to StartTimeUtc.
func TestTimeForms(t *testing.T) {
	f := newFormatter(t, nil)
	for _, tf := range alerttest.TimeForms() {
		t.Run(tf.Name, func(t *testing.T) {
			rec := alerttest.ParseTimeForm(t, tf)
			out := string(format(t, f, rec))
			p := checkCEF(t, []byte(out))
			if want := strconv.FormatInt(tf.Expected().UnixMilli(), 10); p.ext["rt"] != want {
				t.Errorf("rt %q, want %s", p.ext["rt"], want)
			}
			if stamp := tf.Expected().UTC().Format("Jan _2 15:04:05"); !strings.HasPrefix(out[strings.IndexByte(out, '>')+1:], stamp+" ") {
				t.Errorf("syslog header %.40q, want timestamp %s", out, stamp)
			}
		})
	}
}
