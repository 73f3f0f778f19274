package logrhythm

import (
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
)

// TestOddAlerts: an alert with an odd field type is a LogRhythm alert, in both layouts, with
// the schema fields it can fill.
func TestOddAlerts(t *testing.T) {
	fj := newFormatter(t, nil)
	fk := newFormatter(t, func(c *Config) { c.Mode = ModeKV })
	for _, o := range alerttest.OddAlerts() {
		t.Run(o.Name, func(t *testing.T) {
			rec := alerttest.ParseOdd(t, o)
			want := map[string]string{
				"tag4": "alert", "subject": "Microsoft Defender for Cloud alert", "threatid": o.ID, "vmid": o.Type,
				"vendorinfo": o.DisplayName, "severity": o.Severity.String(), "tag1": o.Subscription,
				"time": o.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			}
			for mode, f := range map[string]*Formatter{"json": fj, "kv": fk} {
				out, err := f.Format(nil, rec)
				if err != nil {
					t.Fatal(err)
				}
				checkSafe(t, out)
				got := parseKV
				if mode == "json" {
					got = parseJSON
				}
				m := got(t, out)
				for k, v := range want {
					if m[k] != v {
						t.Errorf("%s: %s = %q, want %q", mode, k, m[k], v)
					}
				}
			}
		})
	}
}

// TestTimeForms: every time form Defender writes gives the time field; a form that is no
// time falls back to StartTimeUtc.
func TestTimeForms(t *testing.T) {
	f := newFormatter(t, nil)
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
			if got, want := parseJSON(t, out)["time"], tf.Expected().UTC().Format("2006-01-02T15:04:05.000Z"); got != want {
				t.Errorf("time %q, want %q", got, want)
			}
		})
	}
}

// TestDefaultValueCap: by default every value but original_message stops at 4000 bytes, on a
// character boundary; original_message is whole.
func TestDefaultValueCap(t *testing.T) {
	long := strings.Repeat("a", 3999) + "é" + strings.Repeat("b", 4000)
	raw := `{"AlertType":"VM_X","SystemAlertId":"s","Description":"` + long + `"}`
	rec, err := alert.Parse([]byte(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newFormatter(t, nil).Format(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	m := parseJSON(t, out)
	if m["reason"] != strings.Repeat("a", 3999) || m["vmid"] != "VM_X" {
		t.Errorf("reason %d bytes, vmid %q", len(m["reason"]), m["vmid"])
	}
	if m["original_message"] != raw {
		t.Errorf("original_message cut: %d bytes of %d", len(m["original_message"]), len(raw))
	}
}
