package destination

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/dev/samples"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/format/leef"
	"github.com/defender-siem/forwarder/internal/format/logrhythm"
	"github.com/defender-siem/forwarder/internal/pipeline"
)

// hostileDescription tries to end the LEEF attribute, forge a LogRhythm field and start a new
// syslog message.
const hostileDescription = "cmd.exe /c \"evil\"\tsev=1|reason=forged\r\n<13>Nov 28 00:00:00 forged LEEF:2.0|Forged|x|1|y|x09|src=6.6.6.6"

// records returns the sample alert and a hostile copy of it.
func records(t *testing.T) []alert.Record {
	t.Helper()
	raw := samples.Read(t, "elastic_eventhub_alert.json")
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["Description"] = hostileDescription
	m["SystemAlertId"] = "hostile-1"
	m["AlertDisplayName"] = "name|with|pipes\tand tab"
	hostile, _ := json.Marshal(m)
	var out []alert.Record
	for _, b := range [][]byte{raw, hostile} {
		rec, err := alert.Parse(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func buildFor(t *testing.T, env ...string) pipeline.Destination {
	t.Helper()
	c, err := config.Load(env, "")
	if err != nil {
		t.Fatal(err)
	}
	built, err := Build(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := built.Destinations[0]
	t.Cleanup(func() { d.Sink.Close() })
	return d
}

func send(t *testing.T, d pipeline.Destination, recs []alert.Record) [][]byte {
	t.Helper()
	var payloads [][]byte
	for i := range recs {
		p, err := d.Formatter.Format(nil, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	for i, err := range d.Sink.Send(context.Background(), payloads) {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	return payloads
}

// LEEF through the syslog transport reaches a real rsyslog as one message per record, exactly
// as sent, and its attributes split back into exactly the attributes the formatter meant:
// nothing in a value ends the attribute or the message.
func TestLEEFReachesRsyslog(t *testing.T) {
	rs := testenv.StartRsyslog(t)
	for _, framing := range []string{"octet-counting", "lf"} {
		t.Run(framing, func(t *testing.T) {
			d := buildFor(t, "Destinations__qradar__Type=leef", "Destinations__qradar__Address="+rs.TCPAddress(),
				"Destinations__qradar__Framing="+framing, "Destinations__qradar__Hostname=fwd")
			before := len(rs.Messages(t, 0, time.Second))
			recs := records(t)
			sent := send(t, d, recs)
			msgs := rs.Messages(t, before+len(recs), 10*time.Second)[before:]
			if len(msgs) != len(recs) {
				t.Fatalf("rsyslog got %d messages, want %d", len(msgs), len(recs))
			}
			f := d.Formatter.(*leef.Formatter)
			for i, m := range msgs {
				raw := m.Fields["rawmsg"]
				if raw != string(sent[i]) {
					t.Fatalf("message %d arrived changed:\n got %q\nsent %q", i, raw, sent[i])
				}
				if !strings.HasPrefix(raw, "<") || !strings.Contains(raw, " fwd LEEF:2.0|Microsoft|Microsoft Defender for Cloud|1.0|ARM_AnomalousServiceOperation.CredentialAccess|x09|") {
					t.Fatalf("message %d header: %q", i, raw)
				}
				attrs := strings.Split(raw[strings.Index(raw, "|x09|")+len("|x09|"):], "\t")
				want := f.Attrs(&recs[i])
				if len(attrs) != len(want) {
					t.Fatalf("message %d: %d attributes arrived, %d sent", i, len(attrs), len(want))
				}
				for j, a := range attrs {
					k, v, _ := strings.Cut(a, "=")
					if k != want[j].Key || v != want[j].Value {
						t.Errorf("attribute %d: %s=%q, want %s=%q", j, k, v, want[j].Key, want[j].Value)
					}
				}
			}
			// The hostile description is one attribute, its tab and line breaks now spaces.
			if !strings.Contains(msgs[1].Fields["rawmsg"], "\t") || strings.Count(msgs[1].Fields["rawmsg"], "src=6.6.6.6") != 1 ||
				strings.Contains(msgs[1].Fields["rawmsg"], "\tsev=1|") {
				t.Errorf("hostile value escaped its attribute: %q", msgs[1].Fields["rawmsg"])
			}
		})
	}
}

// LogRhythm's syslog variant reaches rsyslog as RFC 3164 with a tag and |key=value| fields; the
// hostile description cannot forge a field.
func TestLogRhythmSyslogReachesRsyslog(t *testing.T) {
	rs := testenv.StartRsyslog(t)
	d := buildFor(t, "Destinations__lr__Type=logrhythm", "Destinations__lr__Transport=syslog",
		"Destinations__lr__Address="+rs.TLSAddress(), "Destinations__lr__CAFile="+rs.CAFile(), "Destinations__lr__Hostname=fwd")
	recs := records(t)
	sent := send(t, d, recs)
	msgs := rs.Messages(t, len(recs), 10*time.Second)
	f := d.Formatter.(*logrhythm.Formatter)
	for i, m := range msgs {
		if m.Fields["rawmsg"] != string(sent[i]) {
			t.Fatalf("message %d arrived changed:\n got %q\nsent %q", i, m.Fields["rawmsg"], sent[i])
		}
		if m.Fields["hostname"] != "fwd" || m.Fields["app-name"] != "defender-for-cloud" {
			t.Errorf("message %d header parsed as host %q tag %q", i, m.Fields["hostname"], m.Fields["app-name"])
		}
		body := strings.TrimPrefix(m.Fields["msg"], " ")
		if !strings.HasPrefix(body, "|") || !strings.HasSuffix(body, "|") {
			t.Fatalf("message %d body %q", i, body)
		}
		got := map[string]string{}
		for _, kv := range strings.Split(strings.Trim(body, "|"), "|") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("message %d: field %q has no '='", i, kv)
			}
			if _, dup := got[k]; dup {
				t.Fatalf("message %d: field %s appears twice (forged)", i, k)
			}
			got[k] = v
		}
		want := f.Fields(&recs[i])
		if len(got) != len(want) {
			t.Errorf("message %d: %d fields arrived, %d sent", i, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("message %d field %s = %q, want %q", i, k, got[k], v)
			}
		}
	}
	wantReason := "cmd.exe /c \"evil\" sev=1-reason=forged  <13>Nov 28 00:00:00 forged LEEF:2.0-Forged-x-1-y-x09-src=6.6.6.6"
	if got := f.Fields(&recs[1])["reason"]; got != wantReason {
		t.Errorf("hostile reason scrubbed to %q, want %q", got, wantReason)
	}
}
