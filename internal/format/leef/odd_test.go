package leef

import (
	"strconv"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
)

func attrMap(ev event) map[string]string {
	m := map[string]string{}
	for _, a := range ev.attrs {
		m[a.Key] = a.Value
	}
	return m
}

// TestOddAlerts: an alert with an odd field type is a LEEF alert event carrying what it has;
// a missing alert type leaves the kind as event id and cat, as for any record without one.
func TestOddAlerts(t *testing.T) {
	f := newFormatter(t, nil)
	for _, o := range alerttest.OddAlerts() {
		t.Run(o.Name, func(t *testing.T) {
			out, err := f.Format(nil, alerttest.ParseOdd(t, o))
			if err != nil {
				t.Fatal(err)
			}
			checkSafe(t, out)
			ev := parse(t, out)
			id := o.Type
			if id == "" {
				id = "alert"
			}
			if ev.header[4] != id {
				t.Errorf("event id %q, want %q", ev.header[4], id)
			}
			want := map[string]string{"cat": id, "kind": "alert", "alertId": o.ID, "alertName": o.DisplayName,
				"sev": strconv.Itoa(sev(o.Severity)), "subscriptionId": o.Subscription,
				"devTime": o.Time.UTC().Format(devTimeLayout)}
			if o.Severity == alert.SeverityNone {
				want["sev"] = ""
			}
			got := attrMap(ev)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (attributes %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// TestTimeForms: every time form Defender writes gives devTime; a form that is no time
// falls back to StartTimeUtc.
func TestTimeForms(t *testing.T) {
	f := newFormatter(t, nil)
	for _, tf := range alerttest.TimeForms() {
		t.Run(tf.Name, func(t *testing.T) {
			rec := alerttest.ParseTimeForm(t, tf)
			out, err := f.Format(nil, rec)
			if err != nil {
				t.Fatal(err)
			}
			got := attrMap(parse(t, out))
			// Written in the layout devTimeFormat declares, so QRadar reads it back.
			if want := tf.Expected().UTC().Format("Jan 02 2006 15:04:05.000 GMT"); got["devTime"] != want || got["devTimeFormat"] != "MMM dd yyyy HH:mm:ss.SSS z" {
				t.Errorf("devTime %q (%q), want %q", got["devTime"], got["devTimeFormat"], want)
			}
		})
	}
}

// TestLineSeparators: NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR end a line for Java and
// Unicode-aware readers, so LEEF carries them as a space, in values and in the header, as
// the syslog and CEF formats do with C1 controls.
func TestLineSeparators(t *testing.T) {
	const evil = "a\u0085b\u2028c\u2029d\u009be"
	rec := &alert.Record{Kind: alert.KindAlert, Description: evil, Alert: &alert.Alert{AlertType: evil, DisplayName: evil}}
	out, err := newFormatter(t, nil).Format(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"\u0085", "\u2028", "\u2029", "\u009b"} {
		if strings.Contains(string(out), r) {
			t.Errorf("output holds %U: %q", []rune(r)[0], out)
		}
	}
	ev := parse(t, out)
	got := attrMap(ev)
	if ev.header[4] != "a b c d e" || got["description"] != "a b c d e" || got["alertName"] != "a b c d e" {
		t.Errorf("event id %q, attributes %v", ev.header[4], got)
	}
}

// TestDefaultValueCap: by default every attribute value stops at 1024 bytes, on a character
// boundary, and the other attributes are all still there.
func TestDefaultValueCap(t *testing.T) {
	long := strings.Repeat("a", 1023) + "é" + strings.Repeat("b", 4000)
	rec := &alert.Record{Kind: alert.KindAlert, Description: long, Status: "Active",
		Alert: &alert.Alert{AlertType: "VM_X", DisplayName: long}}
	out, err := newFormatter(t, nil).Format(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	got := attrMap(parse(t, out))
	want := strings.Repeat("a", 1023)
	if got["description"] != want || got["alertName"] != want || got["status"] != "Active" || got["cat"] != "VM_X" {
		t.Errorf("description %d bytes, alertName %d bytes, status %q, cat %q", len(got["description"]), len(got["alertName"]), got["status"], got["cat"])
	}
	if DefaultConfig().MaxValue != 1024 {
		t.Errorf("default MaxValue %d", DefaultConfig().MaxValue)
	}
}
