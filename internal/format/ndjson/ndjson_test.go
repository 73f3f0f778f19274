package ndjson

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/golden"
)

func record(t testing.TB, path string, kind alert.Kind, sev alert.Severity, tm time.Time) *alert.Record {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &alert.Record{
		Kind: kind, Raw: raw, Severity: sev, Time: tm, SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
	}
}

func checkLine(t testing.TB, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("not JSON: %q", out)
	}
	if !utf8.Valid(out) {
		t.Fatalf("not UTF-8: %q", out)
	}
	if bytes.ContainsAny(out, "\r\n") {
		t.Fatalf("holds a line break: %q", out)
	}
}

func TestGolden(t *testing.T) {
	recs := map[string]*alert.Record{
		"alert_elastic": record(t, "testdata/alert_elastic.json", alert.KindAlert,
			alert.SeverityMedium, time.Date(2023, 5, 11, 13, 17, 9, 17042200, time.UTC)),
		"recommendation_elastic": record(t, "testdata/recommendation_elastic.json", alert.KindRecommendation,
			alert.SeverityLow, time.Date(2023, 5, 9, 13, 19, 49, 338102800, time.UTC)),
	}
	for name, rec := range recs {
		for _, wrap := range []bool{false, true} {
			suffix := ".bare.golden"
			if wrap {
				suffix = ".wrap.golden"
			}
			t.Run(name+suffix, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.Wrap = wrap
				f, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				out, err := f.Format(nil, rec)
				if err != nil {
					t.Fatal(err)
				}
				golden.Check(t, name+suffix, out)
				checkLine(t, out)
				var got, want any
				_ = json.Unmarshal(rec.Raw, &want)
				if wrap {
					var w map[string]any
					_ = json.Unmarshal(out, &w)
					got = w["record"]
				} else {
					_ = json.Unmarshal(out, &got)
				}
				if !reflect.DeepEqual(got, want) {
					t.Error("the line does not decode to the original record")
				}
			})
		}
	}
}

func TestFormat(t *testing.T) {
	full := &alert.Record{Kind: alert.KindAlert, Raw: []byte("{\n \"a\" : \"<b>&\u2028\" }"), ID: "i\"d", Severity: alert.SeverityHigh,
		Status: "Active", SubscriptionID: "s", ResourceID: "/r", Time: time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("x", 3600))}
	tests := []struct {
		name string
		cfg  Config
		rec  *alert.Record
		want string
	}{
		{"bare compacts, keeps HTML characters", DefaultConfig(), full, "{\"a\":\"<b>&\u2028\"}"},
		{"wrap default fields", Config{Wrap: true, Fields: DefaultConfig().Fields}, full,
			"{\"kind\":\"alert\",\"severity\":\"High\",\"subscription_id\":\"s\",\"time\":\"2024-01-02T02:04:05.006Z\",\"record\":{\"a\":\"<b>&\u2028\"}}"},
		{"wrap all fields in fixed order", Config{Wrap: true, Fields: []Field{FieldTime, FieldID, FieldResourceID, FieldStatus, FieldKind, FieldSeverity, FieldSubscriptionID}}, full,
			"{\"id\":\"i\\\"d\",\"kind\":\"alert\",\"severity\":\"High\",\"status\":\"Active\",\"subscription_id\":\"s\",\"resource_id\":\"/r\",\"time\":\"2024-01-02T02:04:05.006Z\",\"record\":{\"a\":\"<b>&\u2028\"}}"},
		{"wrap no fields", Config{Wrap: true}, full, "{\"record\":{\"a\":\"<b>&\u2028\"}}"},
		{"empty values omitted", Config{Wrap: true, Fields: AllFields}, &alert.Record{Kind: alert.KindUnknown, Raw: []byte(`[1]`)},
			`{"kind":"unknown","record":[1]}`},
		{"invalid utf8 replaced", DefaultConfig(), &alert.Record{Raw: []byte("{\"a\":\"x\xffy\xc3\"}")}, "{\"a\":\"x\uFFFDy\uFFFD\"}"}, // each invalid byte becomes U+FFFD
		{"not json carried as string", DefaultConfig(), &alert.Record{Raw: []byte("oops\n{\x01\xff")}, "\"oops\\n{\\u0001\uFFFD\""},
		{"empty raw", DefaultConfig(), &alert.Record{}, `""`},
		{"whitespace inside strings kept", DefaultConfig(), &alert.Record{Raw: []byte("{ \"a b\" : \"x \\\" y\\\\\" ,\t\"c\":[ 1 ,\r\n 2 ] }\n")},
			`{"a b":"x \" y\\","c":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.Format([]byte("x"), tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != "x"+tt.want {
				t.Errorf("got  %s\nwant %s", out[1:], tt.want)
			}
			checkLine(t, out[1:])
		})
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	err := Config{Fields: []Field{"nope", FieldKind, FieldKind}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("Validate = %v, want both problems", err)
	}
	if _, err := New(Config{Fields: []Field{"x"}}); err == nil {
		t.Error("New accepted a bad config")
	}
	f, _ := New(DefaultConfig())
	if _, err := f.Format(nil, nil); err == nil {
		t.Error("nil record accepted")
	}
}

func FuzzFormat(f *testing.F) {
	for _, p := range []string{"testdata/alert_elastic.json", "testdata/recommendation_elastic.json"} {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, true)
	}
	f.Add([]byte("{\"a\":\"\xff\"}"), false)
	f.Add([]byte("not json\n"), true)
	f.Fuzz(func(t *testing.T, raw []byte, wrap bool) {
		cfg := DefaultConfig()
		cfg.Wrap = wrap
		fm, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out, err := fm.Format(nil, &alert.Record{Kind: alert.KindAlert, Raw: raw, Time: time.Unix(1, 0)})
		if err != nil {
			t.Fatal(err)
		}
		checkLine(t, out)
		if !json.Valid(raw) || !utf8.Valid(raw) {
			return
		}
		var got, want any
		_ = json.Unmarshal(raw, &want)
		if wrap {
			var w map[string]any
			_ = json.Unmarshal(out, &w)
			got = w["record"]
		} else {
			_ = json.Unmarshal(out, &got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("line decodes to %v, want %v", got, want)
		}
	})
}

func BenchmarkFormat(b *testing.B) {
	raw, err := os.ReadFile("testdata/alert_elastic.json")
	if err != nil {
		b.Fatal(err)
	}
	rec := &alert.Record{Kind: alert.KindAlert, Raw: raw, Severity: alert.SeverityMedium, Time: time.Unix(1, 0)}
	for _, wrap := range []bool{false, true} {
		name := "bare"
		if wrap {
			name = "wrap"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Wrap = wrap
			f, _ := New(cfg)
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			var buf []byte
			for b.Loop() {
				buf, _ = f.Format(buf[:0], rec)
			}
		})
	}
}
