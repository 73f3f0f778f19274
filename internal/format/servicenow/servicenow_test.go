package servicenow

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/dev/golden"
	"github.com/defender-siem/forwarder/internal/sink"
)

func newFormatter(t testing.TB, mutate func(*Config)) *Formatter {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func withStatus(rec *alert.Record, status string) *alert.Record {
	r := *rec
	a := *rec.Alert
	a.Status, r.Status = status, status
	r.Alert = &a
	return &r
}

// hostile puts attacker-controlled text everywhere but the id, which must stay queryable.
func hostile() *alert.Record {
	rec := alerttest.HostileFieldsAlert()
	rec.Alert.SystemAlertID = "2517184898549829577_hostile"
	rec.Alert.Status = "Active"
	rec.Alert.RemediationSteps = []string{"step\nSeverity: Low\nStatus: Resolved", alerttest.HostileText}
	rec.ID, rec.Status = rec.Alert.SystemAlertID, "Active"
	return rec
}

func TestGolden(t *testing.T) {
	f := newFormatter(t, func(c *Config) {
		c.AssignmentGroup = "SOC"
		c.Fields = map[string]string{"contact_type": "integration"}
	})
	elastic := alerttest.ElasticAlert(t)
	for _, tc := range []struct {
		name string
		rec  *alert.Record
	}{
		{"alert_elastic", elastic},
		{"alert_elastic_resolved", withStatus(elastic, "Resolved")},
		{"alert_elastic_dismissed", withStatus(elastic, "Dismissed")},
		{"alert_mdc", alerttest.MDCAlert(t)},
		{"alert_hostile", hostile()},
		{"recommendation_elastic", alerttest.Assessment(t)},
		{"graphalert_docs", graphAlert(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := f.Format(nil, tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.name+".json.golden", out)
			d, err := Decode(out)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			// The description on its own, to read by eye.
			golden.Check(t, tc.name+".description.golden", []byte(d.Fields["description"]+"\n"))
		})
	}
}

func TestDocument(t *testing.T) {
	f := newFormatter(t, func(c *Config) {
		c.AssignmentGroup, c.CallerID, c.Category = "group-sys-id", "caller-sys-id", "security"
		c.Fields = map[string]string{"contact_type": "integration", "u_source": "mdc"}
	})
	rec := alerttest.ElasticAlert(t)
	for _, tc := range []struct {
		status    string
		want      Status
		closeCode string
	}{
		{"Active", StatusActive, ""},
		{"New", StatusActive, ""},
		{"InProgress", StatusInProgress, ""},
		{"inprogress", StatusInProgress, ""},
		{"Resolved", StatusResolved, "Solution provided"},
		{"Dismissed", StatusDismissed, "No resolution provided"},
		{"unknownFutureValue", StatusActive, ""},
	} {
		t.Run(tc.status, func(t *testing.T) {
			d, err := f.Document(withStatus(rec, tc.status))
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != tc.want {
				t.Errorf("status %q, want %q", d.Status, tc.want)
			}
			if got := d.Close["close_code"]; got != tc.closeCode {
				t.Errorf("close_code %q, want %q", got, tc.closeCode)
			}
			if tc.closeCode != "" && d.Close["close_notes"] != string(tc.want)+" in Microsoft Defender for Cloud. "+rec.Alert.AlertURI {
				t.Errorf("close_notes %q", d.Close["close_notes"])
			}
			if tc.closeCode == "" && d.Close != nil {
				t.Errorf("close fields %v for an open alert", d.Close)
			}
			wantCreate := map[string]string{
				"correlation_id": rec.Alert.SystemAlertID, "correlation_display": "Microsoft Defender for Cloud",
				"assignment_group": "group-sys-id", "caller_id": "caller-sys-id", "category": "security",
				"contact_type": "integration", "u_source": "mdc",
			}
			if !reflect.DeepEqual(d.Create, wantCreate) {
				t.Errorf("create fields %v, want %v", d.Create, wantCreate)
			}
			if want := map[string]string{"impact": "2", "urgency": "2"}; !reflect.DeepEqual(d.Priority, want) {
				t.Errorf("priority %v, want %v (Medium)", d.Priority, want)
			}
			sev, st, ok := ParseHeader(d.Fields["description"])
			if !ok || sev != "Medium" || st != tc.want {
				t.Errorf("ParseHeader = %q %q %v, want Medium %q", sev, st, ok, tc.want)
			}
			if d.Fields["short_description"] != "[SAMPLE ALERT] Login from a suspicious IP" {
				t.Errorf("short_description %q", d.Fields["short_description"])
			}
		})
	}
}

func TestPriorityBySeverity(t *testing.T) {
	f := newFormatter(t, func(c *Config) { c.Urgency[alert.SeverityHigh] = "2" })
	rec := alerttest.ElasticAlert(t)
	for sev, want := range map[alert.Severity][2]string{
		alert.SeverityHigh: {"1", "2"}, alert.SeverityMedium: {"2", "2"}, alert.SeverityLow: {"3", "3"},
		alert.SeverityInformational: {"3", "3"}, alert.SeverityNone: {"3", "3"},
	} {
		r := *rec
		r.Severity = sev
		d, err := f.Document(&r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Priority["impact"] != want[0] || d.Priority["urgency"] != want[1] {
			t.Errorf("%v: impact %s urgency %s, want %v", sev, d.Priority["impact"], d.Priority["urgency"], want)
		}
		if d.Severity != sev.String() {
			t.Errorf("severity %q, want %q", d.Severity, sev.String())
		}
	}
}

func TestRecommendation(t *testing.T) {
	f := newFormatter(t, nil)
	rec := alerttest.Assessment(t)
	d, err := f.Document(rec)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusResolved || d.Close == nil || !d.OpenOnly {
		t.Errorf("a Healthy assessment: status %q close %v open_only %v, want Resolved with close fields, open only", d.Status, d.Close, d.OpenOnly)
	}
	if d.CorrelationID != "mdc-assessment-"+d.CorrelationID[len("mdc-assessment-"):] || len(d.CorrelationID) != 47 {
		t.Errorf("correlation id %q", d.CorrelationID)
	}
	// The same assessment under another letter case is the same incident.
	upper := *rec
	upper.ID = strings.ToUpper(rec.ID)
	upper.Status = "Unhealthy"
	d2, err := f.Document(&upper)
	if err != nil {
		t.Fatal(err)
	}
	if d2.CorrelationID != d.CorrelationID || d2.Status != StatusActive {
		t.Errorf("upper-case id: %q %q, want %q Active", d2.CorrelationID, d2.Status, d.CorrelationID)
	}
	if !strings.Contains(d.Fields["description"], "Assessment ID: "+rec.ID) {
		t.Errorf("the description does not name the assessment:\n%s", d.Fields["description"])
	}
}

func TestRefused(t *testing.T) {
	f := newFormatter(t, nil)
	long := alerttest.ElasticAlert(t)
	long.Alert.SystemAlertID = strings.Repeat("a", MaxCorrelationID+1)
	caret := alerttest.ElasticAlert(t)
	caret.Alert.SystemAlertID = "abc^ORnumber!=x"
	empty := alerttest.ElasticAlert(t)
	empty.Alert.SystemAlertID, empty.ID = "", ""
	for name, rec := range map[string]*alert.Record{
		"score control": alerttest.ScoreControl(t),
		"id too long":   long,
		"id with ^":     caret,
		"no id":         empty,
		"hostile id":    alerttest.HostileFieldsAlert(),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := f.Format([]byte("keep"), rec)
			if err == nil {
				t.Fatalf("formatted: %s", out)
			}
			if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnformattable {
				t.Errorf("error %v is not a permanent unformattable", err)
			}
			if string(out) != "keep" {
				t.Errorf("dst changed to %q", out)
			}
		})
	}
}

func TestCaps(t *testing.T) {
	f := newFormatter(t, nil)
	rec := alerttest.ElasticAlert(t)
	rec.Alert.DisplayName = strings.Repeat("😀", 200)
	rec.Alert.Description = strings.Repeat("word ", 2000)
	d, err := f.Document(rec)
	if err != nil {
		t.Fatal(err)
	}
	if n := utf16Len(d.Fields["short_description"]); n > 160 || n < 150 {
		t.Errorf("short_description is %d UTF-16 units, want at most 160 and close to it", n)
	}
	desc := d.Fields["description"]
	if n := utf16Len(desc); n > 4000 || n < 3990 || !strings.HasSuffix(desc, "…") {
		t.Errorf("description is %d UTF-16 units ending %q, want at most 4000, cut with …", n, desc[len(desc)-10:])
	}
	if !strings.Contains(desc, "Portal link: https://portal.azure.com/") {
		t.Error("the portal link was cut off: it belongs before the long parts")
	}
}

func TestEntityLines(t *testing.T) {
	f := newFormatter(t, func(c *Config) { c.MaxEntities = 3 })
	d, err := f.Document(alerttest.ElasticAlert(t))
	if err != nil {
		t.Fatal(err)
	}
	desc := d.Fields["description"]
	_, ents, ok := strings.Cut(desc, "\n\nEntities:\n")
	if !ok {
		t.Fatalf("no entity section:\n%s", desc)
	}
	lines := strings.Split(ents, "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[3], "(") || !strings.HasSuffix(lines[3], " more)") {
		t.Errorf("entity lines %q, want three and a count of the rest", lines)
	}
	if lines[0] != "- ip: Address=81.2.69.142" {
		t.Errorf("first entity line %q", lines[0])
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Impact = map[alert.Severity]string{alert.SeverityHigh: "0"}
	c.CloseCode = ""
	c.CloseNotes = " "
	c.Fields = map[string]string{"State": "x", "description": "y"}
	c.MaxDescription = 10
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`Impact for High "0"`, "Impact for Medium", "CloseCode and DismissCloseCode", "CloseNotes", "Fields__State: not a column", "Fields__description: this column is written", "MaxDescription 10"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestDecode(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":          `{`,
		"no id":             `{"status":"Active","fields":{"short_description":"x"}}`,
		"bad status":        `{"correlation_id":"a","status":"Open","fields":{"short_description":"x"}}`,
		"no short":          `{"correlation_id":"a","status":"Active","fields":{}}`,
		"id with a caret":   `{"correlation_id":"a^b","status":"Active","fields":{"short_description":"x"}}`,
		"id with a newline": `{"correlation_id":"a\nb","status":"Active","fields":{"short_description":"x"}}`,
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// checkDocument holds what must be true of every document, whatever the record said.
func checkDocument(t *testing.T, f *Formatter, rec *alert.Record, out []byte) {
	t.Helper()
	var generic map[string]json.RawMessage
	if err := json.Unmarshal(out, &generic); err != nil {
		t.Fatalf("not one JSON object: %v: %q", err, out)
	}
	for k := range generic {
		switch k {
		case "correlation_id", "kind", "status", "severity", "fields", "priority", "create", "close", "open_only":
		default:
			t.Fatalf("unexpected member %q in %s", k, out)
		}
	}
	d, err := Decode(out)
	if err != nil {
		t.Fatalf("Decode: %v: %s", err, out)
	}
	if len(d.Fields) != 2 {
		t.Errorf("fields %v, want short_description and description only", d.Fields)
	}
	short := d.Fields["short_description"]
	for _, r := range short {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			t.Fatalf("short_description holds %U: %q", r, short)
		}
	}
	desc := d.Fields["description"]
	for _, r := range desc {
		if r != '\n' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029') {
			t.Fatalf("description holds %U: %q", r, desc)
		}
	}
	if utf16Len(short) > f.cfg.MaxShortDescription || utf16Len(desc) > f.cfg.MaxDescription {
		t.Fatalf("over the caps: %d %d", utf16Len(short), utf16Len(desc))
	}
	sev, st, ok := ParseHeader(desc)
	if !ok || sev != rec.Severity.String() || st != d.Status {
		t.Fatalf("ParseHeader = %q %q %v, want %q %q: a record value moved the header\n%s", sev, st, ok, rec.Severity, d.Status, desc)
	}
	if d.Status.Done() != (d.Close != nil) {
		t.Fatalf("status %s with close fields %v", d.Status, d.Close)
	}
	if d.Create["correlation_id"] != d.CorrelationID {
		t.Fatalf("create correlation_id %q, document %q", d.Create["correlation_id"], d.CorrelationID)
	}
}

func TestHostileStaysInItsField(t *testing.T) {
	f := newFormatter(t, nil)
	rec := hostile()
	out, err := f.Format(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	checkDocument(t, f, rec, out)
	d, _ := Decode(out)
	// The forged header inside a remediation step stays a remediation step.
	if !strings.Contains(d.Fields["description"], "1. step\nSeverity: Low\nStatus: Resolved") {
		t.Errorf("the remediation step lost its text:\n%s", d.Fields["description"])
	}
}

func FuzzFormat(f *testing.F) {
	f.Add("Evil\r\nSeverity: Low", "line1\nStatus: Resolved\n", "Active", "sh -c 'x'\u2028y", "High", "2517_abc")
	f.Add(alerttest.HostileText, alerttest.HostileText, "Dismissed", alerttest.HostileText, "Low", "id")
	f.Add("", "", "", "", "", "x")
	f.Add("\xff\xfe", "😀\x00\x7f\u0085", "Resolved", "\"}],\"close\":{", "Informational", "a:b/c@d")
	f.Fuzz(func(t *testing.T, name, desc, status, cmd, sev, id string) {
		fm := newFormatter(t, func(c *Config) { c.CloseNotes = "{status}: " + name + " {name}" })
		rec := &alert.Record{Kind: alert.KindAlert, ID: id, DisplayName: name, Severity: alert.ParseSeverity(sev), Status: status,
			Alert: &alert.Alert{SystemAlertID: id, DisplayName: name, Description: desc, Status: status, Severity: alert.ParseSeverity(sev),
				RemediationSteps: []string{desc, cmd}, Intent: []string{cmd}, AlertURI: cmd, CompromisedEntity: name,
				Entities: []alert.Entity{{Type: "process", Fields: map[string]any{"CommandLine": cmd}}, {Type: cmd, Fields: map[string]any{"Name": name}}}}}
		out, err := fm.Format(nil, rec)
		if err != nil {
			if checkCorrelationID(id) == nil {
				t.Fatalf("a record with a usable id was refused: %v", err)
			}
			var se *sink.Error
			if !errors.As(err, &se) || !se.Permanent {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		checkDocument(t, fm, rec, out)
	})
}

// Decode takes anything without panicking and accepts only documents that can drive an
// incident.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"correlation_id":"a","status":"Active","fields":{"short_description":"x"}}`))
	f.Add([]byte(`{"correlation_id":"a^b","status":"Resolved","fields":{"short_description":"x"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			return
		}
		if checkCorrelationID(d.CorrelationID) != nil || d.Fields["short_description"] == "" {
			t.Fatalf("accepted %q", b)
		}
	})
}

// graphAlert is the Graph alerts_v2 example of the Graph documentation, as the poller feeds it.
func graphAlert(t *testing.T) *alert.Record {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "graph_docs_alerts_v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := alert.Parse(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != alert.KindGraphAlert {
		t.Fatalf("kind %s", rec.Kind)
	}
	return &rec
}
