package leef

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"
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

// event is a LEEF event as a reference parser reads it.
type event struct {
	header [6]string // LEEF:2.0, vendor, product, version, event id, delimiter field
	attrs  []Attr
}

// parse reads a LEEF 2.0 event: six header fields separated by unescaped pipes (with `\\`
// and `\|` unescaped), then attributes split on the delimiter and on the first `=`.
func parse(t testing.TB, b []byte) event {
	t.Helper()
	var ev event
	s := string(b)
	for i := range ev.header {
		var field strings.Builder
		j := 0
		for ; j < len(s); j++ {
			if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '\\' || s[j+1] == '|') {
				field.WriteByte(s[j+1])
				j++
				continue
			}
			if s[j] == '|' {
				break
			}
			field.WriteByte(s[j])
		}
		if j == len(s) {
			t.Fatalf("header field %d not closed by a pipe: %q", i, b)
		}
		ev.header[i] = field.String()
		s = s[j+1:]
	}
	if ev.header[0] != "LEEF:2.0" {
		t.Fatalf("not LEEF 2.0: %q", b)
	}
	delim := ev.header[5]
	if strings.HasPrefix(delim, "x") {
		var d byte
		if _, err := fmt.Sscanf(delim, "x%02X", &d); err != nil {
			t.Fatalf("delimiter field %q: %v", delim, err)
		}
		delim = string(d)
	}
	if len(delim) != 1 {
		t.Fatalf("delimiter field %q is not one character", ev.header[5])
	}
	if s == "" {
		return ev
	}
	for _, part := range strings.Split(s, delim) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			t.Fatalf("attribute without '=': %q in %q", part, b)
		}
		ev.attrs = append(ev.attrs, Attr{k, v})
	}
	return ev
}

func checkSafe(t testing.TB, out []byte) {
	t.Helper()
	if !utf8.Valid(out) {
		t.Errorf("output is not valid UTF-8: %q", out)
	}
	for _, c := range out {
		if c == '\r' || c == '\n' || c == 0 {
			t.Fatalf("output holds byte %#x: %q", c, out)
		}
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		rec   *alert.Record
		delim string
	}{
		{"alert_elastic", alerttest.ExportAlertJSON(t, alerttest.ReadSample(t, "elastic_eventhub_alert.json")), ""},
		{"alert_elastic_caret", alerttest.ExportAlertJSON(t, alerttest.ReadSample(t, "elastic_eventhub_alert.json")), "^"},
		{"recommendation_elastic", alerttest.ExportRecommendationJSON(t, alerttest.ReadSample(t, "elastic_eventhub_assessment.json")), ""},
		{"alert_hostile", alerttest.HostileAlert(), "x09"},
		{"alert_hostile_caret", alerttest.HostileAlert(), "^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFormatter(t, func(c *Config) { c.Delimiter = tt.delim })
			got, err := f.Format(nil, tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tt.name+".leef.golden", got)
			checkSafe(t, got)
			ev := parse(t, got)
			if want := f.Attrs(tt.rec); !reflect.DeepEqual(ev.attrs, want) {
				t.Errorf("parsed attributes differ:\n got %q\nwant %q", ev.attrs, want)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	f := newFormatter(t, func(c *Config) { c.Vendor = `Mi|cro\soft`; c.Product = "P\r\nQ"; c.Version = "2.0" })
	rec := alerttest.HostileAlert()
	out, _ := f.Format(nil, rec)
	want := `LEEF:2.0|Mi\|cro\\soft|P  Q|2.0|VM_Hostile\|Type|x09|`
	if !bytes.HasPrefix(out, []byte(want)) {
		t.Errorf("header = %q, want prefix %q", out, want)
	}
	ev := parse(t, out)
	if ev.header[1] != `Mi|cro\soft` || ev.header[4] != "VM_Hostile|Type" {
		t.Errorf("header does not parse back: %q", ev.header)
	}
}

func TestSeverity(t *testing.T) {
	tests := []struct {
		sev  alert.Severity
		want string
	}{
		{alert.SeverityNone, ""}, {alert.SeverityInformational, "1"}, {alert.SeverityLow, "3"},
		{alert.SeverityMedium, "5"}, {alert.SeverityHigh, "8"},
	}
	f := newFormatter(t, nil)
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.sev), func(t *testing.T) {
			got := ""
			for _, a := range f.Attrs(&alert.Record{Kind: alert.KindAlert, Severity: tt.sev}) {
				if a.Key == "sev" {
					got = a.Value
				}
			}
			if got != tt.want {
				t.Errorf("sev = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		name, in string
		delim    byte
		max      int
		want     string
	}{
		{"clean", "a=b|c d", '\t', 0, "a=b|c d"},
		{"tab delimiter", "a\tb", '\t', 0, "a b"},
		{"caret delimiter", "a^b\tc", '^', 0, "a b c"},
		{"newlines", "a\r\nb", '^', 0, "a  b"},
		{"controls", "a\x00b\x7fc", '^', 0, "a b c"},
		{"invalid utf8", "a\xffb", '^', 0, "a\uFFFDb"},
		{"C1 and Unicode line ends", "a\u0085b\u2028c\u2029d\u0080e\u009ff", '^', 0, "a b c d e f"},
		{"cap counts the replaced character", "ab\u2028", '^', 3, "ab "},
		{"cap", "ab€", '^', 4, "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replace(tt.in, tt.delim, tt.max); got != tt.want {
				t.Errorf("replace(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	good := []string{"", "x09", "0x09", "\t", "^", "x5E", "~", ";"}
	for _, d := range good {
		t.Run("good "+d, func(t *testing.T) {
			c := DefaultConfig()
			c.Delimiter = d
			if err := c.Validate(); err != nil {
				t.Errorf("Delimiter %q rejected: %v", d, err)
			}
		})
	}
	bad := []string{"|", "=", "\\", " ", "\n", "x0A", "x7C", "xZZ", "ab", "é", "a", "7", "x00"}
	for _, d := range bad {
		t.Run("bad "+d, func(t *testing.T) {
			c := DefaultConfig()
			c.Delimiter = d
			if err := c.Validate(); err == nil {
				t.Errorf("Delimiter %q accepted", d)
			}
		})
	}
	err := Config{Delimiter: "|", MaxValue: -1}.Validate()
	for _, want := range []string{"Delimiter", "Vendor", "Product", "Version", "MaxValue"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

func TestCaretHeader(t *testing.T) {
	f := newFormatter(t, func(c *Config) { c.Delimiter = "x5E" })
	out, _ := f.Format(nil, &alert.Record{Kind: alert.KindSecureScore})
	if want := "LEEF:2.0|Microsoft|Microsoft Defender for Cloud|1.0|securescore|^|cat=securescore^kind=securescore"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestPrefix(t *testing.T) {
	f := newFormatter(t, func(c *Config) {
		c.Prefix = func(dst []byte, _ *alert.Record) []byte { return append(dst, "<13>Jan 18 11:07:53 host "...) }
	})
	out, _ := f.Format(nil, &alert.Record{Kind: alert.KindUnknown})
	if !bytes.HasPrefix(out, []byte("<13>Jan 18 11:07:53 host LEEF:2.0|")) {
		t.Errorf("prefix missing: %q", out)
	}
	if _, err := f.Format(nil, nil); err == nil {
		t.Error("nil record accepted")
	}
}

func refClean(s string, delim byte) string {
	// strings.Map turns each invalid byte into U+FFFD, as the encoders do.
	return strings.Map(func(r rune) rune {
		if r == rune(delim) || r < 0x20 || r == 0x7f || unicode.Is(unicode.Cc, r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

func FuzzFormat(f *testing.F) {
	h := alerttest.HostileAlert()
	f.Add(h.Alert.AlertType, h.DisplayName, h.Description, "root", byte('^'))
	f.Add("ARM_AnomalousServiceOperation.CredentialAccess", "[SAMPLE ALERT] Login", "desc", "Sample-account", byte('\t'))
	f.Add(`a\|b\\`, "x=y", "\t^|", "", byte('~'))
	f.Fuzz(func(t *testing.T, typ, name, desc, user string, d byte) {
		delim := string([]byte{d})
		if d < 0x20 || d > 0x7e {
			delim = fmt.Sprintf("x%02X", d)
		}
		c := DefaultConfig()
		c.Delimiter, c.MaxValue, c.Version = delim, 0, name
		fm, err := New(c)
		if err != nil {
			return // a delimiter Validate refuses
		}
		rec := &alert.Record{
			Kind: alert.KindAlert, DisplayName: name, Description: desc, Status: user,
			Alert: &alert.Alert{AlertType: typ, DisplayName: name, Entities: []alert.Entity{
				{Type: "account", Fields: map[string]any{"Name": user}},
				{Type: "process", Fields: map[string]any{"CommandLine": desc}},
			}},
		}
		out, err := fm.Format(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		checkSafe(t, out)
		ev := parse(t, out)
		wantAttrs := fm.Attrs(rec)
		if len(ev.attrs) != len(wantAttrs) {
			t.Fatalf("%d attributes, want %d: %q", len(ev.attrs), len(wantAttrs), out)
		}
		if !reflect.DeepEqual(ev.attrs, wantAttrs) {
			t.Fatalf("attributes differ:\n got %q\nwant %q", ev.attrs, wantAttrs)
		}
		hdr := func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.Is(unicode.Cc, r) || r == '\u2028' || r == '\u2029' {
					return ' '
				}
				return r
			}, s)
		}
		if ev.header[3] != hdr(name) {
			t.Fatalf("version header = %q, want %q", ev.header[3], hdr(name))
		}
		if typ != "" && ev.header[4] != hdr(typ) {
			t.Fatalf("event id header = %q, want %q", ev.header[4], hdr(typ))
		}
		got := map[string]string{}
		for _, a := range ev.attrs {
			got[a.Key] = a.Value
		}
		for key, in := range map[string]string{"alertName": name, "description": desc, "cmdLine": desc, "usrName": user, "status": user} {
			if want := refClean(in, fm.delim); got[key] != want {
				t.Fatalf("%s = %q, want %q", key, got[key], want)
			}
		}
	})
}

func BenchmarkFormat(b *testing.B) {
	rec := alerttest.ExportAlertJSON(b, alerttest.ReadSample(b, "elastic_eventhub_alert.json"))
	f := newFormatter(b, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.Raw)))
	var buf []byte
	for b.Loop() {
		buf, _ = f.Format(buf[:0], rec)
	}
}
