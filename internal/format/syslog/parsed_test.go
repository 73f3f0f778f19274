package syslog_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
)

// The samples read by the real parser give the same bytes as the hand-built records behind
// the golden files, so the goldens describe what production sends.
func TestParsedSamplesMatchGolden(t *testing.T) {
	f := newFormatter(t, nil)
	for sample, golden := range map[string]string{
		"elastic_eventhub_alert.json":              "alert_rfc5424.golden",
		"elastic_eventhub_assessment.json":         "assessment_rfc5424.golden",
		"elastic_eventhub_securescorecontrol.json": "scorecontrol_rfc5424.golden",
	} {
		t.Run(sample, func(t *testing.T) {
			rec, err := alert.Parse(alerttest.ReadSample(t, sample), 0)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", golden))
			if err != nil {
				t.Fatal(err)
			}
			if got := format(t, f, &rec); !bytes.Equal(got, want) {
				t.Errorf("parsed sample differs from %s\n got: %q\nwant: %q", golden, got, want)
			}
		})
	}
}
