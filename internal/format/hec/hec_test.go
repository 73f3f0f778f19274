package hec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/golden"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// restBody returns the response body of an x-ms-examples file, as the original (indented) bytes.
func restBody(t testing.TB, name string) []byte {
	t.Helper()
	var ex struct {
		Responses map[string]struct {
			Body json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(readFile(t, name), &ex); err != nil {
		t.Fatal(err)
	}
	return ex.Responses["200"].Body
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		rec  func(t *testing.T) *alert.Record
	}{
		{"eventhub_alert", DefaultConfig(), func(t *testing.T) *alert.Record {
			return &alert.Record{
				Kind: alert.KindAlert, Raw: readFile(t, "elastic_eventhub_alert.json"),
				ID: "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d", DisplayName: "[SAMPLE ALERT] Login from a suspicious IP",
				Severity: alert.SeverityMedium, Status: "Active", Time: mustTime(t, "2023-05-11T13:17:09.0170422Z"),
				SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
				Alert: &alert.Alert{
					SystemAlertID: "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d",
					AlertType:     "ARM_AnomalousServiceOperation.CredentialAccess", Severity: alert.SeverityMedium, Status: "Active",
				},
			}
		}},
		{"restapi_alert", Config{Source: "defender", Host: "fwd-01", Index: "azure_security"}, func(t *testing.T) *alert.Record {
			return &alert.Record{
				Kind: alert.KindAlert, Raw: restBody(t, "restapi_alert_get_2022-01-01.json"),
				ID:       "2518298467986649999_4d25bfef-2d77-4a08-adc0-3e35715cc92a",
				Severity: alert.SeverityHigh, Status: "Active", Time: mustTime(t, "2020-02-23T13:47:58Z"),
				SubscriptionID: "20ff7fc3-e762-44dd-bd96-b71116dcdc23",
				// Alert left nil: the fields must come from the record itself.
			}
		}},
		{"eventhub_assessment", DefaultConfig(), func(t *testing.T) *alert.Record {
			return &alert.Record{
				Kind: alert.KindRecommendation, Raw: readFile(t, "elastic_eventhub_assessment.json"),
				ID:     "/subscriptions/12cabcb4-86e8-404f-a3d2-1dc9982f45ca/resourcegroups/mbranca-esf/providers/microsoft.web/sites/mbranca-esf/providers/Microsoft.Security/assessments/7b3d4796-9400-2904-692b-4a5ede7f0a1e",
				Status: "Healthy", Time: mustTime(t, "2023-05-09T13:19:49.3381028Z"), SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
			}
		}},
		{"eventhub_subassessment", DefaultConfig(), func(t *testing.T) *alert.Record {
			return &alert.Record{
				Kind: alert.KindSubAssessment, Raw: readFile(t, "elastic_eventhub_subassessment.json"),
				Severity: alert.SeverityLow, Status: "Unhealthy", SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
			}
		}},
		{"eventhub_securescorecontrol", DefaultConfig(), func(t *testing.T) *alert.Record {
			return &alert.Record{Kind: alert.KindSecureScoreControl, Raw: readFile(t, "elastic_eventhub_securescorecontrol.json")}
		}},
		{"eventhub_regulatorycompliance", Config{SourceType: "_json"}, func(t *testing.T) *alert.Record {
			return &alert.Record{
				Kind: alert.KindRegulatoryCompliance, Raw: readFile(t, "elastic_eventhub_regulatorycompliance_assessment.json"),
				Status: "Passed", SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
			}
		}},
		{"activitylog_alert", DefaultConfig(), func(t *testing.T) *alert.Record {
			// Pretty-printed with CRLF-free indentation and a "\r\n" escape inside a string: the
			// escape stays, the indentation goes.
			return &alert.Record{
				Kind: alert.KindActivityLogAlert, Raw: readFile(t, "docs_alerts-schemas_activitylog_alert.json"),
				ID: "2518250008431989649_e7313e05-edf4-466d-adfd-35974921aeff", Severity: alert.SeverityHigh,
				Status: "Active", Time: mustTime(t, "2019-12-25T18:52:36.801035Z"), SubscriptionID: "SUBSCRIPTION_ID",
			}
		}},
		{"hostile_fields", Config{Source: "src\"x", Host: "h\\1"}, func(t *testing.T) *alert.Record {
			return &alert.Record{
				Kind: alert.KindAlert,
				Raw:  []byte("{\n  \"a\": \"line1\nline2\",\t\"b\": \"bad\xffutf8\", \"c\": [1, -0.5e+3, true, null, {}]\n}\n"),
				Time: time.Unix(1717405200, 999_999_999),
				Alert: &alert.Alert{
					SystemAlertID: "id\"},\"event\":\"forged",
					AlertType:     "type\n{\"time\":0}\u2028\x00\xfe",
					Severity:      alert.SeverityInformational,
					Status:        "New\\",
				},
			}
		}},
		{"not_json", Config{}, func(t *testing.T) *alert.Record {
			return &alert.Record{Kind: alert.Kind("surprise"), Raw: []byte("Alert: <b>\"x\"</b>\r\n\xc3\x28 tail"), Time: time.Unix(-1, 0)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil && !strings.HasPrefix(tt.name, "hostile") {
				t.Fatalf("config: %v", err)
			}
			got, err := New(tt.cfg).Format(nil, tt.rec(t))
			if err != nil {
				t.Fatal(err)
			}
			checkEnvelope(t, got)
			golden.Check(t, tt.name+".golden", append(got, '\n'))
		})
	}
}

// checkEnvelope asserts what every output must be: one valid JSON object without a raw
// newline, whose fields are flat strings.
func checkEnvelope(t *testing.T, out []byte) map[string]any {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("not valid JSON: %q", out)
	}
	if !utf8.Valid(out) {
		t.Fatalf("not valid UTF-8: %q", out)
	}
	if i := bytes.IndexAny(out, "\n\r"); i >= 0 {
		t.Fatalf("raw line break at %d: %q", i, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	if _, ok := m["event"]; !ok {
		t.Fatalf("no event: %s", out)
	}
	fields, ok := m["fields"].(map[string]any)
	if !ok {
		t.Fatalf("fields missing or not an object: %s", out)
	}
	for k, v := range fields {
		if _, ok := v.(string); !ok {
			t.Errorf("field %s is %T, want string", k, v)
		}
	}
	return m
}

func TestEventKeepsRawBytes(t *testing.T) {
	// The compact sample must pass through unchanged: no re-encoding of what Defender wrote.
	raw := readFile(t, "elastic_eventhub_alert.json")
	out, err := New(DefaultConfig()).Format(nil, &alert.Record{Kind: alert.KindAlert, Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(out, []byte(`,"event":`))
	if i < 0 {
		t.Fatalf("no event key: %s", out)
	}
	if got := out[i+len(`,"event":`) : len(out)-1]; !bytes.Equal(got, bytes.TrimSpace(raw)) {
		t.Errorf("event was re-encoded:\n got %.200s\nwant %.200s", got, raw)
	}
}

func TestTime(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string // the envelope prefix; "" means no time key
	}{
		{"zero", time.Time{}, ""},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC), ""},
		{"epoch", time.Unix(0, 0), `{"time":0.000,`},
		{"truncated not rounded", time.Unix(1433188255, 999_999_999), `{"time":1433188255.999,`},
		{"sub-millisecond", time.Unix(1433188255, 500_900), `{"time":1433188255.000,`},
		{"docs example", time.Unix(1433188255, 500_000_000), `{"time":1433188255.500,`},
		{"leading zero millis", time.Unix(1717405200, 7_000_000), `{"time":1717405200.007,`},
		{"offset zone", time.Date(2024, 6, 3, 11, 0, 0, 123_000_000, time.FixedZone("X", 2*3600)), `{"time":1717405200.123,`},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), `{"time":253402300799.000,`},
	}
	f := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.Format(nil, &alert.Record{Kind: alert.KindAlert, Raw: []byte(`{}`), Time: tt.t})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if bytes.Contains(out, []byte(`"time"`)) {
					t.Errorf("time present: %s", out)
				}
				return
			}
			if !bytes.HasPrefix(out, []byte(tt.want)) {
				t.Errorf("got %s, want prefix %s", out, tt.want)
			}
		})
	}
}

func TestSourceTypes(t *testing.T) {
	want := map[alert.Kind]string{
		alert.KindAlert:                "mscs:azure:security:alert",
		alert.KindActivityLogAlert:     "mscs:azure:security:alert",
		alert.KindRecommendation:       "mscs:azure:security:recommendation",
		alert.KindSubAssessment:        "mscs:azure:security:subassessment",
		alert.KindSecureScore:          "mscs:azure:security:securescore",
		alert.KindSecureScoreControl:   "mscs:azure:security:securescorecontrol",
		alert.KindRegulatoryCompliance: "mscs:azure:security:regulatorycompliance",
		alert.KindUnknown:              "mscs:azure:security:unknown",
		"":                             "mscs:azure:security:unknown",
		"evil\",\"index\":\"x":         "mscs:azure:security:unknown",
	}
	f := New(DefaultConfig())
	for k, st := range want {
		t.Run(string(k), func(t *testing.T) {
			out, err := f.Format(nil, &alert.Record{Kind: k, Raw: []byte(`{"a":1}`)})
			if err != nil {
				t.Fatal(err)
			}
			m := checkEnvelope(t, out)
			if m["sourcetype"] != st {
				t.Errorf("sourcetype %v, want %s", m["sourcetype"], st)
			}
			if _, ok := m["index"]; ok {
				t.Errorf("index present without config: %s", out)
			}
			kind := m["fields"].(map[string]any)["kind"]
			if wantKind := string(k); k == "" || strings.Contains(wantKind, `"`) {
				if kind != "unknown" {
					t.Errorf("kind %v, want unknown", kind)
				}
			} else if kind != wantKind {
				t.Errorf("kind %v, want %s", kind, wantKind)
			}
		})
	}
}

func TestFieldsOnlyForAlerts(t *testing.T) {
	f := New(DefaultConfig())
	rec := &alert.Record{
		Kind: alert.KindRecommendation, Raw: []byte(`{}`), ID: "/subscriptions/x/assessments/y",
		Alert: &alert.Alert{SystemAlertID: "should-not-appear", AlertType: "nor-this"},
	}
	out, err := f.Format(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	got := checkEnvelope(t, out)["fields"]
	if want := map[string]any{"kind": "recommendation"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
}

func TestEmptyRaw(t *testing.T) {
	for _, raw := range [][]byte{nil, {}, []byte(" \r\n\t")} {
		dst := []byte("keep")
		out, err := New(DefaultConfig()).Format(dst, &alert.Record{Kind: alert.KindAlert, Raw: raw})
		if !errors.Is(err, ErrEmptyEvent) {
			t.Errorf("raw %q: err %v, want ErrEmptyEvent", raw, err)
		}
		if string(out) != "keep" {
			t.Errorf("raw %q: dst changed to %q", raw, out)
		}
	}
}

func TestAppendsToDst(t *testing.T) {
	f := New(DefaultConfig())
	dst := []byte(`{"x":1}` + "\n")
	out, err := f.Format(dst, &alert.Record{Kind: alert.KindAlert, Raw: []byte(`{"y":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, dst) {
		t.Fatalf("dst not kept: %q", out)
	}
	checkEnvelope(t, out[len(dst):])
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		errs []string // substrings the error must hold; none means valid
	}{
		{"defaults", DefaultConfig(), nil},
		{"all set", Config{Index: "azure_sec-1", Source: "s", SourceType: "st", Host: "h.example"}, nil},
		{"everything wrong", Config{Index: "_Bad Index", Source: "a\nb", SourceType: " st", Host: "\xff"},
			[]string{"Host is not valid UTF-8", "Source", "control characters", "SourceType", "leading or trailing", "Index"}},
		{"index leading dash", Config{Index: "-x"}, []string{"Index"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func FuzzFormat(f *testing.F) {
	for _, name := range []string{"elastic_eventhub_alert.json", "elastic_eventhub_assessment.json", "docs_alerts-schemas_activitylog_alert.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "id\"x", "Type\\\n", "New\u2028", "sub\xff", int64(1683811029), int64(17042200))
	}
	f.Add([]byte(`"just a string"`), "", "", "", "", int64(-5), int64(0))
	f.Add([]byte("{\"a\":\"\x01\xc0\"}"), "\x00", "\t", "\r", "", int64(0), int64(999999999))
	f.Add([]byte("not json \xff\n"), "a", "b", "c", "d", int64(1), int64(1))
	f.Fuzz(func(t *testing.T, raw []byte, id, typ, status, sub string, sec, nsec int64) {
		rec := &alert.Record{
			Kind: alert.KindAlert, Raw: raw, Status: status, SubscriptionID: sub, Severity: alert.SeverityHigh,
			Time:  time.Unix(sec, nsec),
			Alert: &alert.Alert{SystemAlertID: id, AlertType: typ},
		}
		out, err := New(Config{Host: typ, Index: "main"}).Format(nil, rec)
		if isBlank(raw) {
			if !errors.Is(err, ErrEmptyEvent) {
				t.Fatalf("blank raw: err %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		if bytes.ContainsAny(out, "\n\r") {
			t.Fatalf("raw line break in %q", out)
		}
		var env struct {
			Time   *json.Number      `json:"time"`
			Host   string            `json:"host"`
			Fields map[string]string `json:"fields"`
			Event  json.RawMessage   `json:"event"`
		}
		if err := json.Unmarshal(out, &env); err != nil {
			t.Fatalf("decode %q: %v", out, err)
		}
		want := map[string]string{"kind": "alert", "severity": "High"}
		for k, v := range map[string]string{"alert_id": id, "alert_type": typ, "status": status, "subscription_id": sub} {
			if v != "" {
				want[k] = v
			}
		}
		for k, v := range want {
			// Invalid UTF-8 bytes become U+FFFD one by one, as encoding/json decodes them.
			if got := env.Fields[k]; !sameAfterRepair(got, v) {
				t.Errorf("field %s = %q, want %q", k, got, v)
			}
		}
		if len(env.Fields) != len(want) {
			t.Errorf("fields %v, want keys of %v", env.Fields, want)
		}
		if !sameAfterRepair(env.Host, typ) {
			t.Errorf("host %q, want %q", env.Host, typ)
		}
		if rec.Time.Unix() >= 0 {
			if env.Time == nil || strings.ContainsAny(env.Time.String(), "eE") || len(env.Time.String()) < 5 || env.Time.String()[len(env.Time.String())-4] != '.' {
				t.Errorf("time %v for %v", env.Time, rec.Time)
			}
		} else if env.Time != nil {
			t.Errorf("time %v present for %v", env.Time, rec.Time)
		}
		if json.Valid(raw) {
			// The event must decode to exactly what Raw decodes to.
			if !reflect.DeepEqual(decodeNumbers(t, env.Event), decodeNumbers(t, raw)) {
				t.Errorf("event changed:\n got %s\nwant %s", env.Event, raw)
			}
		}
	})
}

// sameAfterRepair reports whether got is s as JSON decoding of our output should give it back:
// every byte of s that is not valid UTF-8 replaced by U+FFFD.
func sameAfterRepair(got, s string) bool {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError is U+FFFD
		i += n
	}
	return got == b.String()
}

func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func BenchmarkFormat(b *testing.B) {
	for _, tc := range []struct{ name, file string }{
		{"alert_8.7KB", "elastic_eventhub_alert.json"},
		{"assessment_2.1KB", "elastic_eventhub_assessment.json"},
		{"pretty_activitylog_2.8KB", "docs_alerts-schemas_activitylog_alert.json"},
	} {
		raw := readFile(b, tc.file)
		rec := &alert.Record{
			Kind: alert.KindAlert, Raw: raw, Time: time.Unix(1683811029, 17042200), Severity: alert.SeverityMedium,
			Status: "Active", SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
			Alert: &alert.Alert{SystemAlertID: "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d", AlertType: "ARM_AnomalousServiceOperation.CredentialAccess"},
		}
		f := New(Config{Source: DefaultSource, Host: "fwd-01", Index: "azure_security"})
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			var dst []byte
			for b.Loop() {
				var err error
				dst, err = f.Format(dst[:0], rec)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
