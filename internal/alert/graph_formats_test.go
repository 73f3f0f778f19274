package alert_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/format/cef"
	"github.com/defender-siem/forwarder/internal/format/hec"
	"github.com/defender-siem/forwarder/internal/format/leef"
	"github.com/defender-siem/forwarder/internal/format/logrhythm"
	"github.com/defender-siem/forwarder/internal/format/ndjson"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

var updateFormats = flag.Bool("update-formats", false, "rewrite testdata/golden/formats")

// TestGraphAlertInEveryFormat renders the Graph documentation's alerts_v2 sample with each
// SIEM format's defaults. The golden files were read by eye against the sample: title,
// severity, status, providerAlertId, alertWebUrl, the evidence (host tempDns, file
// MsSense.exe) and the verdict where each format has a place for them.
func TestGraphAlertInEveryFormat(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "graph_docs_alerts_v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := alert.Parse(raw, 0)
	if err != nil || rec.Kind != alert.KindGraphAlert {
		t.Fatalf("Parse: kind %s, %v", rec.Kind, err)
	}
	sys := syslog.DefaultConfig()
	sys.Hostname = "forwarder"
	sysSummary := sys
	sysSummary.Message = syslog.MessageSummary
	wrapped := ndjson.DefaultConfig()
	wrapped.Wrap = true
	build := map[string]func() (format.Formatter, error){
		"hec.json":            func() (format.Formatter, error) { return hec.New(hec.DefaultConfig()), nil },
		"rfc5424.txt":         func() (format.Formatter, error) { return syslog.New(sys) },
		"rfc5424-summary.txt": func() (format.Formatter, error) { return syslog.New(sysSummary) },
		"cef.txt":             func() (format.Formatter, error) { return cef.New(cef.DefaultConfig()) },
		"leef.txt":            func() (format.Formatter, error) { return leef.New(leef.DefaultConfig()) },
		"logrhythm.txt":       func() (format.Formatter, error) { return logrhythm.New(logrhythm.DefaultConfig()) },
		"ndjson-wrapped.json": func() (format.Formatter, error) { return ndjson.New(wrapped) },
	}
	for name, mk := range build {
		t.Run(name, func(t *testing.T) {
			f, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.Format(nil, &rec)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			path := filepath.Join("testdata", "golden", "formats", "graph_"+name)
			if *updateFormats {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-formats to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs:\n got %s\nwant %s", path, out, want)
			}
		})
	}
}
