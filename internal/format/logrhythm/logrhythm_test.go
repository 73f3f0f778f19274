package logrhythm

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/dev/golden"
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

// parseKV is a reference parser for the `|k=v|` layout: split on `|`, then on the first `=`.
func parseKV(t testing.TB, b []byte) map[string]string {
	t.Helper()
	s := string(b)
	if !strings.HasPrefix(s, "|") || !strings.HasSuffix(s, "|") || len(s) < 2 {
		t.Fatalf("kv output not framed by pipes: %q", s)
	}
	out := map[string]string{}
	for _, part := range strings.Split(s[1:len(s)-1], "|") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			t.Fatalf("kv pair without '=': %q in %q", part, s)
		}
		if _, dup := out[k]; dup {
			t.Fatalf("duplicate key %q in %q", k, s)
		}
		out[k] = v
	}
	return out
}

// parseJSON decodes the flat object and checks that it is flat.
func parseJSON(t testing.TB, b []byte) map[string]string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	out := map[string]string{}
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = x
		case json.Number:
			out[k] = x.String()
		case bool:
			if k != "whsdp" || !x {
				t.Fatalf("boolean %q=%v: only whsdp:true may be a boolean", k, x)
			}
		default:
			t.Fatalf("%q is %T, not a string or number: the object must be flat", k, v)
		}
	}
	return out
}

func TestGolden(t *testing.T) {
	records := map[string]*alert.Record{
		"alert_elastic":          alerttest.ExportAlert(t, "testdata/alert_elastic.json"),
		"recommendation_elastic": alerttest.ExportRecommendation(t, "testdata/recommendation_elastic.json"),
		"alert_hostile":          alerttest.HostileAlert(),
	}
	for name, rec := range records {
		for _, mode := range []Mode{ModeJSON, ModeKV} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				f := newFormatter(t, func(c *Config) { c.Mode = mode })
				got, err := f.Format(nil, rec)
				if err != nil {
					t.Fatal(err)
				}
				golden.Check(t, name+"."+string(mode)+".golden", got)
				checkSafe(t, got)
				want := f.Fields(rec)
				var parsed map[string]string
				if mode == ModeKV {
					parsed = parseKV(t, got)
				} else {
					parsed = parseJSON(t, got)
				}
				if !reflect.DeepEqual(parsed, want) {
					t.Errorf("parsed fields differ from Fields:\n got %v\nwant %v", parsed, want)
				}
			})
		}
	}
}

// checkSafe asserts what the pipe-delimited, line-based next hop needs.
func checkSafe(t testing.TB, out []byte) {
	t.Helper()
	if !utf8.Valid(out) {
		t.Errorf("output is not valid UTF-8: %q", out)
	}
	for _, c := range out {
		if c < 0x20 || c == 0x7f {
			t.Fatalf("output holds control byte %#x: %q", c, out)
		}
	}
	if out[0] == '{' && bytes.IndexByte(out, '|') >= 0 {
		t.Errorf("JSON output holds a pipe: %s", out)
	}
}

func TestMapping(t *testing.T) {
	f := newFormatter(t, nil)
	got := f.Fields(alerttest.ExportAlert(t, "testdata/alert_elastic.json"))
	want := map[string]string{
		"vmid":        "ARM_AnomalousServiceOperation.CredentialAccess",
		"vendorinfo":  "[SAMPLE ALERT] Login from a suspicious IP",
		"threatid":    "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d",
		"severity":    "Medium",
		"status":      "Active",
		"policy":      "PreAttack",
		"dname":       "Sample-VM",
		"sip":         "81.2.69.142",
		"login":       "Sample-account",
		"command":     "php",
		"processid":   "125339",
		"objecttype":  "Microsoft.Compute/virtualMachines",
		"tag1":        "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
		"time":        "2023-05-11T13:17:09.017Z",
		"timestart":   "2023-05-11T13:15:45.017Z",
		"beatname":    "webhookbeat",
		"device_type": "MSDefenderForCloud",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"clean", "plain text = ok", 0, "plain text = ok"},
		{"pipe", "a|b||c", 0, "a-b--c"},
		{"newlines", "a\nb\r\nc\rd", 0, "a b  c d"},
		{"tab and controls", "a\tb\x00c\x1bd\x7fe", 0, "a b c d e"},
		{"invalid utf8", "a\xffb\xc3", 0, "a\uFFFDb\uFFFD"},
		{"multibyte kept", "Zürich ‘x’ 東京", 0, "Zürich ‘x’ 東京"},
		{"cap on rune boundary", "ab€cd", 4, "ab"},
		{"cap exact", "abcd", 4, "abcd"},
		{"cap after scrub", "a|b|c", 3, "a-b"},
		{"empty", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrub(tt.in, tt.max); got != tt.want {
				t.Errorf("scrub(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestOriginalMessage(t *testing.T) {
	tests := []struct {
		name, raw string
		max       int
		want      string
	}{
		{"compacted", "{\n  \"a\": [1, 2],\n  \"b\": \"x y\"\n}", 0, `{"a":[1,2],"b":"x y"}`},
		{"pipe escaped", `{"c":"a|b"}`, 0, `{"c":"a\u007cb"}`},
		{"strings kept whole", "{ \"k \\\" |\" : [ \"a\\\\\" , 1 ] }", 0, `{"k \" \u007c":["a\\",1]}`},
		{"invalid utf8", "{\"c\":\"a\xffb\"}", 0, `{"c":"a\ufffdb"}`},
		{"not json is scrubbed", "not|json\n", 0, "not-json "},
		{"cap never splits an escape", `{"c":"a|b"}`, 9, `{"c":"a`},
		{"cap keeps a whole escape", `{"c":"a|b"}`, 13, `{"c":"a\u007c`},
		{"cap never splits a rune", `{"c":"€"}`, 8, `{"c":"`},
		{"cap keeps an escaped backslash", `{"c":"\\x"}`, 8, `{"c":"\\`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := originalMessage([]byte(tt.raw), tt.max); got != tt.want {
				t.Errorf("originalMessage(%q, %d) = %q, want %q", tt.raw, tt.max, got, tt.want)
			}
		})
	}
}

func TestOriginalMessageRoundTrip(t *testing.T) {
	raw, err := os.ReadFile("testdata/alert_elastic.json")
	if err != nil {
		t.Fatal(err)
	}
	raw = append(bytes.Clone(raw[:len(raw)-1]), []byte(`,"Extra":"a|b"}`)...)
	var want, got any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	msg := originalMessage(raw, 0)
	if strings.ContainsAny(msg, "|\r\n") {
		t.Fatalf("original_message holds a pipe or line break")
	}
	if err := json.Unmarshal([]byte(msg), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("original_message does not decode to the original record")
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{Mode: "xml", BeatName: "", FullyQualifiedBeatName: "a|b", DeviceType: "x\n", MaxOriginalMessage: -1, MaxValue: -2}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"Mode", "BeatName is required", "FullyQualifiedBeatName", "DeviceType", "MaxOriginalMessage", "MaxValue"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if _, err := New(bad); err == nil {
		t.Error("New accepted a bad config")
	}
}

func TestOptions(t *testing.T) {
	rec := alerttest.HostileAlert()
	t.Run("no whsdp, no original", func(t *testing.T) {
		f := newFormatter(t, func(c *Config) { c.WHSDP = false; c.OriginalMessage = false })
		out, _ := f.Format(nil, rec)
		if bytes.Contains(out, []byte("whsdp")) || bytes.Contains(out, []byte("original_message")) {
			t.Errorf("disabled fields present: %s", out)
		}
	})
	t.Run("kv has no whsdp", func(t *testing.T) {
		f := newFormatter(t, func(c *Config) { c.Mode = ModeKV })
		out, _ := f.Format(nil, rec)
		if _, ok := parseKV(t, out)["whsdp"]; ok {
			t.Errorf("whsdp in kv output: %s", out)
		}
	})
	t.Run("prefix in kv", func(t *testing.T) {
		f := newFormatter(t, func(c *Config) {
			c.Mode = ModeKV
			c.Prefix = func(dst []byte, _ *alert.Record) []byte { return append(dst, "<13>Jan  2 03:04:05 host "...) }
		})
		out, _ := f.Format([]byte("keep:"), rec)
		if !bytes.HasPrefix(out, []byte("keep:<13>Jan  2 03:04:05 host |")) {
			t.Errorf("prefix not written first: %q", out)
		}
	})
	t.Run("max value", func(t *testing.T) {
		f := newFormatter(t, func(c *Config) { c.MaxValue = 5; c.MaxOriginalMessage = 10 })
		for k, v := range f.Fields(rec) {
			if len(v) > 10 || (k != "original_message" && len(v) > 5) {
				t.Errorf("%s = %q exceeds its cap", k, v)
			}
		}
	})
	t.Run("nil record", func(t *testing.T) {
		if _, err := newFormatter(t, nil).Format(nil, nil); err == nil {
			t.Error("nil record accepted")
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		got := newFormatter(t, nil).Fields(&alert.Record{Kind: alert.KindUnknown, Raw: []byte(`{"x":1}`)})
		if got["vmid"] != "unknown" || got["subject"] != "Microsoft Defender for Cloud record" || got["original_message"] != `{"x":1}` {
			t.Errorf("unknown kind fields: %v", got)
		}
	})
}

func TestResourceType(t *testing.T) {
	tests := []struct{ id, want string }{
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm", "Microsoft.Compute/virtualMachines"},
		{"/subscriptions/s/resourcegroups/rg/providers/microsoft.web/sites/app/providers/Microsoft.Security/assessments/k", "Microsoft.Security/assessments"},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv/databases/db", "Microsoft.Sql/servers/databases"},
		{"/subscriptions/s", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := resourceType(tt.id); got != tt.want {
				t.Errorf("resourceType = %q, want %q", got, tt.want)
			}
		})
	}
}

// refScrub is the test's own statement of the scrubbing rule.
func refScrub(s string) string {
	// strings.Map turns each invalid byte into U+FFFD, as the encoders do.
	return strings.Map(func(r rune) rune {
		switch {
		case r == '|':
			return '-'
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
}

func FuzzFormat(f *testing.F) {
	h := alerttest.HostileAlert()
	f.Add(h.DisplayName, h.Alert.Entities[3].Fields["CommandLine"].(string), h.Description, "root", h.Raw)
	raw, err := os.ReadFile("testdata/alert_elastic.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("[SAMPLE ALERT] Login", "php", "desc", "Sample-account", raw)
	f.Add("", "", "", "", []byte(`{"a":"|"}`))
	f.Fuzz(func(t *testing.T, name, cmd, desc, user string, raw []byte) {
		rec := &alert.Record{
			Kind: alert.KindAlert, Raw: raw, DisplayName: name, Description: desc, Status: name,
			Alert: &alert.Alert{AlertType: name, DisplayName: name, Entities: []alert.Entity{
				{Type: "process", Fields: map[string]any{"CommandLine": cmd}},
				{Type: "account", Fields: map[string]any{"Name": user}},
				{Type: "ip", Fields: map[string]any{"Address": desc}},
			}},
		}
		fj := newFormatter(t, func(c *Config) { c.MaxValue = 0 })
		fk := newFormatter(t, func(c *Config) { c.MaxValue = 0; c.Mode = ModeKV })
		js, err := fj.Format(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := fk.Format(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		checkSafe(t, js)
		checkSafe(t, kv)
		pj, pk := parseJSON(t, js), parseKV(t, kv)
		if !reflect.DeepEqual(pj, pk) {
			t.Fatalf("json and kv carry different fields:\n%v\n%v", pj, pk)
		}
		if want := len(fj.Fields(rec)); len(pk) != want {
			t.Fatalf("kv has %d fields, want %d", len(pk), want)
		}
		for key, in := range map[string]string{"vmid": name, "vendorinfo": name, "command": cmd, "reason": desc, "sip": desc} {
			want := refScrub(in)
			if pk[key] != want {
				t.Fatalf("%s = %q, want %q", key, pk[key], want)
			}
		}
		if user != "" && pk["login"] != refScrub(user) {
			t.Fatalf("login = %q, want %q", pk["login"], refScrub(user))
		}
		if json.Valid(raw) && utf8.Valid(raw) {
			var want, got any
			_ = json.Unmarshal(raw, &want)
			if err := json.Unmarshal([]byte(pk["original_message"]), &got); err != nil {
				t.Fatalf("original_message is not JSON: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("original_message decodes to %v, want %v", got, want)
			}
		}
	})
}

func BenchmarkFormat(b *testing.B) {
	rec := alerttest.ExportAlert(b, "testdata/alert_elastic.json")
	for _, mode := range []Mode{ModeJSON, ModeKV} {
		b.Run(string(mode), func(b *testing.B) {
			f := newFormatter(b, func(c *Config) { c.Mode = mode })
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf, _ = f.Format(buf[:0], rec)
			}
			b.SetBytes(int64(len(rec.Raw)))
		})
	}
}
