package hec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
)

// envelope reads an envelope as Splunk does, keeping the time's digits.
func envelope(t *testing.T, out []byte) (fields map[string]any, tm string) {
	t.Helper()
	checkEnvelope(t, out)
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	n, _ := m["time"].(json.Number)
	return m["fields"].(map[string]any), string(n)
}

func epochText(tm time.Time) string {
	return fmt.Sprintf("%d.%03d", tm.Unix(), tm.Nanosecond()/1e6)
}

// TestOddAlerts: an alert with an odd field type reaches Splunk as an alert, with its time
// and the alert fields it carries.
func TestOddAlerts(t *testing.T) {
	f := New(DefaultConfig())
	for _, o := range alerttest.OddAlerts() {
		t.Run(o.Name, func(t *testing.T) {
			out, err := f.Format(nil, alerttest.ParseOdd(t, o))
			if err != nil {
				t.Fatal(err)
			}
			fields, tm := envelope(t, out)
			if !bytes.Contains(out, []byte(`"sourcetype":"mscs:azure:security:alert"`)) {
				t.Errorf("sourcetype: %s", out)
			}
			want := map[string]any{"kind": "alert", "severity": o.Severity.String()}
			if o.ID != "" {
				want["alert_id"] = o.ID
			}
			if o.Type != "" {
				want["alert_type"] = o.Type
			}
			if o.Subscription != "" {
				want["subscription_id"] = o.Subscription
			}
			if fmt.Sprint(fields) != fmt.Sprint(want) {
				t.Errorf("fields %v, want %v", fields, want)
			}
			if tm != epochText(o.Time) {
				t.Errorf("time %q, want %s", tm, epochText(o.Time))
			}
		})
	}
}

// TestTimeForms: every time form Defender writes gives the HEC time; a form that is no time
// falls back to StartTimeUtc.
func TestTimeForms(t *testing.T) {
	f := New(DefaultConfig())
	for _, tf := range alerttest.TimeForms() {
		t.Run(tf.Name, func(t *testing.T) {
			rec, err := alert.Parse(alerttest.TimeFormAlert(tf), 0)
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.Format(nil, &rec)
			if err != nil {
				t.Fatal(err)
			}
			if _, tm := envelope(t, out); tm != epochText(tf.Expected()) {
				t.Errorf("time %q, want %s", tm, epochText(tf.Expected()))
			}
		})
	}
}
