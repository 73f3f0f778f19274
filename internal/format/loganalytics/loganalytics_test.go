package loganalytics

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/golden"
)

func parse(t testing.TB, name string) *alert.Record {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := alert.Parse(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &rec
}

// checkRow asserts what the ingestion endpoint needs of a row: one JSON object without a
// raw line break, only declared columns, in declared order, each of its declared JSON type.
func checkRow(t testing.TB, out []byte) map[string]any {
	t.Helper()
	if !utf8.Valid(out) || bytes.ContainsAny(out, "\r\n") {
		t.Fatalf("not one line of UTF-8: %q", out)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var row map[string]any
	if err := dec.Decode(&row); err != nil {
		t.Fatalf("not a JSON object: %v: %q", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one value: %q", out)
	}
	// Key order, read with a token stream.
	tok := json.NewDecoder(bytes.NewReader(out))
	tok.UseNumber()
	if _, err := tok.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for tok.More() {
		k, err := tok.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := tok.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	next := 0
	for _, k := range keys {
		i := slices.IndexFunc(Columns, func(c Column) bool { return c.Name == k })
		if i < 0 {
			t.Fatalf("undeclared column %q in %s", k, out)
		}
		if i < next {
			t.Fatalf("column %q out of order (or twice) in %s", k, out)
		}
		next = i + 1
		v := row[k]
		switch Columns[i].Type {
		case TypeString:
			if _, ok := v.(string); !ok {
				t.Errorf("%s: want a string, got %T", k, v)
			}
		case TypeDateTime:
			s, _ := v.(string)
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
				t.Errorf("%s: %q is not a UTC datetime", k, s)
			}
		case TypeLong:
			if _, ok := v.(json.Number); !ok {
				t.Errorf("%s: want a number, got %T", k, v)
			}
		}
	}
	return row
}

func TestSamples(t *testing.T) {
	for _, tc := range []struct {
		file, golden string
		kind         alert.Kind
	}{
		{"elastic_eventhub_alert.json", "alert.golden", alert.KindAlert},
		{"elastic_eventhub_assessment.json", "recommendation.golden", alert.KindRecommendation},
		{"elastic_eventhub_securescorecontrol.json", "securescorecontrol.golden", alert.KindSecureScoreControl},
		{"elastic_eventhub_regulatorycompliance_assessment.json", "regulatorycompliance.golden", alert.KindRegulatoryCompliance},
		{"graph_docs_alerts_v2.json", "graphalert.golden", alert.KindGraphAlert},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			rec := parse(t, tc.file)
			if rec.Kind != tc.kind {
				t.Fatalf("kind %s, want %s", rec.Kind, tc.kind)
			}
			out, err := New().Format(nil, rec)
			if err != nil {
				t.Fatal(err)
			}
			row := checkRow(t, out)
			if row["Kind"] != string(tc.kind) {
				t.Errorf("Kind = %v", row["Kind"])
			}
			// The whole original record travels, so nothing Defender wrote is lost.
			var want, got any
			if err := json.Unmarshal(rec.Raw, &want); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(row["Record"])
			_ = json.Unmarshal(b, &got)
			wb, _ := json.Marshal(want)
			gb, _ := json.Marshal(got)
			if !bytes.Equal(wb, gb) {
				t.Errorf("Record is not the original record")
			}
			if row["RecordSize"] != json.Number(itoa(len(rec.Raw))) {
				t.Errorf("RecordSize = %v, want %d", row["RecordSize"], len(rec.Raw))
			}
			golden.Check(t, tc.golden, out)
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestAlertColumns checks the values a SOC queries by, against the sample as Defender wrote it.
func TestAlertColumns(t *testing.T) {
	rec := parse(t, "elastic_eventhub_alert.json")
	out, _ := New().Format(nil, rec)
	row := checkRow(t, out)
	want := map[string]string{
		"SystemAlertId":     "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d",
		"RecordId":          "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d",
		"AlertType":         "ARM_AnomalousServiceOperation.CredentialAccess",
		"DisplayName":       "[SAMPLE ALERT] Login from a suspicious IP",
		"Severity":          "Medium",
		"Status":            "Active",
		"TimeGenerated":     "2023-05-11T13:17:09.017Z",
		"StartTime":         "2023-05-11T13:15:45.017Z",
		"EndTime":           "2023-05-11T13:15:45.017Z",
		"SubscriptionId":    "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
		"CompromisedEntity": "Sample-VM",
		"ProductName":       "Microsoft Defender for Cloud",
		"ResourceId":        "/SUBSCRIPTIONS/12cabcb4-86e8-404f-a3d2-1dc9982f45ca/RESOURCEGROUPS/Sample-RG/providers/Microsoft.Compute/virtualMachines/Sample-VM",
	}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("%s = %v, want %q", k, row[k], v)
		}
	}
	var doc struct{ Entities []any }
	_ = json.Unmarshal(rec.Raw, &doc)
	ents, ok := row["Entities"].([]any)
	if !ok || len(ents) != len(doc.Entities) || len(ents) == 0 {
		t.Errorf("Entities: %d entities, want the sample's %d", len(ents), len(doc.Entities))
	}
	if tac, _ := row["Tactics"].([]any); len(tac) != 1 || tac[0] != "PreAttack" {
		t.Errorf("Tactics = %v", row["Tactics"])
	}
	if _, ok := row["ExtendedProperties"].(map[string]any); !ok {
		t.Errorf("ExtendedProperties = %T, want an object", row["ExtendedProperties"])
	}
}

func TestEmptyAndOdd(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  alert.Record
		want string
	}{
		{"unknown kind, not JSON", alert.Record{Kind: alert.KindUnknown, Raw: []byte("not json\n\x00")},
			`{"Kind":"unknown","Record":"not json\n\u0000","RecordSize":10}`},
		{"no time: left to the DCR transform", alert.Record{Kind: alert.KindSecureScore, Raw: []byte(`{ "a" : 1 }`), ID: "/x"},
			`{"Kind":"securescore","Record":{"a":1},"RecordId":"/x","RecordSize":11}`},
		{"time in another zone is written in UTC", alert.Record{Kind: alert.KindRecommendation, Raw: []byte(`{}`),
			Time: time.Date(2024, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("x", 3600))},
			`{"Kind":"recommendation","Record":{},"RecordSize":2,"TimeGenerated":"2024-01-02T02:04:05.600Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := New().Format([]byte("prefix"), &tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(out); got != "prefix"+tc.want {
				t.Errorf("got  %s\nwant prefix%s", got, tc.want)
			}
			checkRow(t, out[len("prefix"):])
		})
	}
	if _, err := New().Format(nil, nil); err == nil {
		t.Error("nil record: want an error")
	}
}

// TestHostile: attacker-controlled strings stay inside their column and come back as written
// (invalid UTF-8 repaired).
func TestHostile(t *testing.T) {
	evil := "x\",\"Severity\":\"Informational\"}\n{\"Kind\":\"forged\u2028\xff"
	rec := &alert.Record{
		Kind: alert.KindAlert, Raw: []byte(`{"a":"` + "\u2028" + `"}`), ID: evil, DisplayName: evil, Severity: alert.SeverityHigh,
		Status: evil, Description: evil,
		Alert: &alert.Alert{SystemAlertID: evil, AlertType: evil, Intent: []string{evil}, ExtendedProperties: map[string]string{evil: evil},
			EntitiesJSON: []byte(`[{"Type":"ip","Address":"` + "\\u0000" + `"}]`)},
	}
	out, _ := New().Format(nil, rec)
	row := checkRow(t, out)
	clean := repair(evil)
	for _, k := range []string{"RecordId", "DisplayName", "Status", "Description", "SystemAlertId", "AlertType"} {
		if row[k] != clean {
			t.Errorf("%s = %q, want %q", k, row[k], clean)
		}
	}
	if row["Severity"] != "High" || row["Kind"] != "alert" {
		t.Errorf("forged: Severity %v Kind %v", row["Severity"], row["Kind"])
	}
}

func FuzzFormat(f *testing.F) {
	f.Add([]byte(`{"SystemAlertId":"a","Entities":[{"$id":"1"},{"$ref":"1"}]}`), "d", "s")
	f.Add([]byte("\xff\n"), "\x00\"}", "\u2028")
	raw, _ := os.ReadFile(filepath.Join("testdata", "elastic_eventhub_alert.json"))
	f.Add(raw, "x", "y")
	f.Fuzz(func(t *testing.T, raw []byte, s1, s2 string) {
		rec, err := alert.Parse(raw, 0)
		if err != nil {
			rec = alert.Record{Kind: alert.KindUnknown, Raw: raw}
		}
		rec.DisplayName, rec.Status = s1, s2
		out, err := New().Format(nil, &rec)
		if err != nil {
			t.Fatal(err)
		}
		row := checkRow(t, out)
		if s1 != "" && row["DisplayName"] != repair(s1) {
			t.Errorf("DisplayName = %q, want %q", row["DisplayName"], s1)
		}
		if s2 != "" && row["Status"] != repair(s2) {
			t.Errorf("Status = %q, want %q", row["Status"], s2)
		}
	})
}

// repair is what the encoder does to invalid UTF-8: each bad byte becomes U+FFFD.
func repair(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func BenchmarkFormat(b *testing.B) {
	rec := parse(b, "elastic_eventhub_alert.json")
	b.SetBytes(int64(len(rec.Raw)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = New().Format(buf[:0], rec)
	}
}
