package cef_test

import (
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
)

// The samples read by the real parser give the same bytes as the hand-built records behind
// the golden files, so the goldens describe what production sends.
func TestParsedSamplesMatchGolden(t *testing.T) {
	f := newFormatter(t, nil)
	alerttest.ParsedMatchGolden(t, map[string]string{
		"elastic_eventhub_alert.json":              "alert_rfc3164.golden",
		"elastic_eventhub_assessment.json":         "assessment_rfc3164.golden",
		"elastic_eventhub_securescorecontrol.json": "scorecontrol_rfc3164.golden",
	}, func(t testing.TB, rec *alert.Record) []byte { return format(t, f, rec) })
}
