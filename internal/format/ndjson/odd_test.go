package ndjson

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
)

func wrapped(t *testing.T) *Formatter {
	t.Helper()
	c := DefaultConfig()
	c.Wrap, c.Fields = true, AllFields
	f, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOddAlerts: an alert with an odd field type is a line of kind alert with the metadata
// it carries, and the record itself, value for value.
func TestOddAlerts(t *testing.T) {
	f := wrapped(t)
	for _, o := range alerttest.OddAlerts() {
		t.Run(o.Name, func(t *testing.T) {
			out, err := f.Format(nil, alerttest.ParseOdd(t, o))
			if err != nil {
				t.Fatal(err)
			}
			checkLine(t, out)
			var line struct {
				ID, Kind, Severity, Time string
				Subscription             string `json:"subscription_id"`
				Record                   json.RawMessage
			}
			if err := json.Unmarshal(out, &line); err != nil {
				t.Fatal(err)
			}
			if line.ID != o.ID || line.Kind != "alert" || line.Severity != o.Severity.String() ||
				line.Subscription != o.Subscription || line.Time != o.Time.UTC().Format("2006-01-02T15:04:05.000Z") {
				t.Errorf("metadata %+v, want %+v", line, o)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, []byte(o.Raw)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(line.Record, compact.Bytes()) {
				t.Errorf("record %s, want %s", line.Record, compact.Bytes())
			}
		})
	}
}

// TestTimeForms: every time form Defender writes gives the time field; a form that is no
// time falls back to StartTimeUtc.
func TestTimeForms(t *testing.T) {
	f := wrapped(t)
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
			var line struct{ Time string }
			if err := json.Unmarshal(out, &line); err != nil {
				t.Fatal(err)
			}
			if want := tf.Expected().UTC().Format("2006-01-02T15:04:05.000Z"); line.Time != want {
				t.Errorf("time %q, want %q", line.Time, want)
			}
		})
	}
}
