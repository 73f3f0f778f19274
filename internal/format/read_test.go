package format_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/format/cef"
	"github.com/defender-siem/forwarder/internal/format/hec"
	"github.com/defender-siem/forwarder/internal/format/leef"
	"github.com/defender-siem/forwarder/internal/format/loganalytics"
	"github.com/defender-siem/forwarder/internal/format/logrhythm"
	"github.com/defender-siem/forwarder/internal/format/ndjson"
	"github.com/defender-siem/forwarder/internal/format/servicenow"
	"github.com/defender-siem/forwarder/internal/format/syslog"
)

// formatters builds every formatter with its defaults (and syslog in both header layouts).
func formatters(t *testing.T) map[string]format.Formatter {
	t.Helper()
	must := func(f format.Formatter, err error) format.Formatter {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	fixed := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	rfc5424 := syslog.DefaultConfig()
	rfc3164 := syslog.DefaultConfig()
	rfc3164.Header, rfc3164.Now = syslog.HeaderRFC3164, fixed
	summary := syslog.DefaultConfig()
	summary.Message = syslog.MessageSummary
	return map[string]format.Formatter{
		"cef":          must(cef.New(cef.DefaultConfig())),
		"hec":          hec.New(hec.DefaultConfig()),
		"leef":         must(leef.New(leef.DefaultConfig())),
		"loganalytics": loganalytics.New(),
		"logrhythm":    must(logrhythm.New(logrhythm.DefaultConfig())),
		"ndjson":       must(ndjson.New(ndjson.DefaultConfig())),
		"servicenow":   must(servicenow.New(servicenow.DefaultConfig())),
		"syslog5424":   must(syslog.New(rfc5424)),
		"syslog3164":   must(syslog.New(rfc3164)),
		"syslogsum":    must(syslog.New(summary)),
	}
}

// richProperties are extended properties under the names formats might be tempted to read,
// each value hostile, so that output depending on any of them shows.
func richProperties() map[string]any {
	m := map[string]any{}
	for _, k := range []string{
		"ActionTaken", "classification", "determination", "resourceType", "Compromised Host",
		"User Name", "Account Session Id", "Suspicious Process", "Client IP address",
		"Client principal name", "Investigation steps", "Potential causes", "Alert Id",
		"killChainIntent", "ProcessName", "Tactics", "Techniques", "Severity", "Status",
	} {
		m[k] = k + " " + alerttest.HostileText
	}
	m["Number"] = 42
	m["Nested"] = map[string]any{"a": []any{1, "b"}}
	return m
}

// withProperties returns the sample raw with its ExtendedProperties replaced by props.
func withProperties(t *testing.T, raw []byte, props map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["ExtendedProperties"] = props
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sampleBodies are the alerts both tests render: the export and REST samples, the export one
// with hostile values under many names, and with near misses of ActionTaken (one with a key
// written with an escape, which means ActionTaken itself).
func sampleBodies(t *testing.T) map[string][]byte {
	t.Helper()
	elastic := alerttest.ReadSample(t, "elastic_eventhub_alert.json")
	near := bytes.Replace(elastic, []byte(`"ExtendedProperties":{`),
		[]byte(`"ExtendedProperties":{"Action\u0054aken":"escaped key","actiontaken":"other case","ActionTaken ":"space",`), 1)
	if bytes.Equal(near, elastic) {
		t.Fatal("the sample has no ExtendedProperties object")
	}
	return map[string][]byte{
		"elastic":    elastic,
		"restapi":    alerttest.ReadSample(t, "restapi_alert.json"),
		"rich":       withProperties(t, elastic, richProperties()),
		"near names": near,
	}
}

// A formatter that names the extended properties it reads must render every record the same
// whether the parser kept all of them or only those: the pipeline parses only what the
// destinations' formatters name. Log Analytics, which ships them all, is the check that a
// formatter reading more than it names shows here.
func TestExtendedPropertiesRead(t *testing.T) {
	bodies := sampleBodies(t)
	render := func(t *testing.T, f format.Formatter, body []byte, opt alert.Options) ([]byte, int) {
		t.Helper()
		rec, err := opt.Parse(body, 0)
		if err != nil || rec.Alert == nil {
			t.Fatalf("parse: %v", err)
		}
		out, err := f.Format(nil, &rec)
		if err != nil {
			t.Fatalf("format: %v", err)
		}
		return out, len(rec.Alert.ExtendedProperties)
	}
	for name, f := range formatters(t) {
		r, names := f.(format.ExtendedPropertiesReader)
		for bname, body := range bodies {
			t.Run(name+"/"+bname, func(t *testing.T) {
				full, all := render(t, f, body, alert.Options{})
				if !names {
					if name != "loganalytics" {
						t.Fatalf("%s does not say which extended properties it reads", name)
					}
					// The check can fail: keeping only CEF's names changes what Log
					// Analytics ships.
					only, _ := render(t, f, body, alert.Options{OnlyExtendedProperties: []string{"ActionTaken"}})
					if bname == "rich" && bytes.Equal(full, only) {
						t.Fatal("Log Analytics rendered the same without most properties")
					}
					return
				}
				opt := alert.Options{OnlyExtendedProperties: r.ExtendedPropertiesRead()}
				opt.SkipExtendedProperties = len(opt.OnlyExtendedProperties) == 0
				only, kept := render(t, f, body, opt)
				if kept >= all {
					t.Fatalf("kept %d of %d properties: the record does not test the list", kept, all)
				}
				if !bytes.Equal(full, only) {
					t.Errorf("output depends on properties it does not name %q:\nall:  %q\nonly: %q", r.ExtendedPropertiesRead(), full, only)
				}
			})
		}
	}
}

// A formatter that reads only the summary must render every record the same whether it was
// parsed whole or with alert.Options.SummaryOnly; the pipeline parses that way when every
// destination's formatter says so. CEF, which writes the descriptive fields, is the check
// that a formatter reading more shows here.
func TestSummaryReaders(t *testing.T) {
	bodies := sampleBodies(t)
	wrapped := ndjson.DefaultConfig()
	wrapped.Wrap, wrapped.Fields = true, ndjson.AllFields
	fs := formatters(t)
	w, err := ndjson.New(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	fs["ndjson wrapped"] = w
	claimed := 0
	for name, f := range fs {
		r, ok := f.(format.SummaryReader)
		summary := ok && r.ReadsSummaryOnly()
		if summary {
			claimed++
		}
		differs := false
		for bname, body := range bodies {
			full, err := alert.Options{}.Parse(body, 0)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := alert.Options{SummaryOnly: true}.Parse(body, 0)
			if err != nil {
				t.Fatal(err)
			}
			a, errA := f.Format(nil, &full)
			b, errB := f.Format(nil, &sum)
			if errA != nil || errB != nil {
				t.Fatalf("%s/%s: %v, %v", name, bname, errA, errB)
			}
			if !bytes.Equal(a, b) {
				differs = true
				if summary {
					t.Errorf("%s/%s: output depends on more than the summary:\nwhole:   %q\nsummary: %q", name, bname, a, b)
				}
			}
		}
		if name == "cef" && !differs {
			t.Error("CEF rendered the same from the summary: the records do not test it")
		}
	}
	if claimed < 3 {
		t.Errorf("%d formatters read only the summary, want HEC and NDJSON both ways", claimed)
	}
}
