package jsontext

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCompactJSON(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`{}`, `{}`, true},
		{" { \"a\" : [ 1 , 2 ] }\n", `{"a":[1,2]}`, true},
		{`"\u00e9\/\"\\"`, `"\u00e9\/\"\\"`, true},
		{`[0, -0, 1.5e-10, 2E+3, 10]`, `[0,-0,1.5e-10,2E+3,10]`, true},
		{"\"tab\tnl\nnul\x00\"", `"tab\u0009nl\u000anul\u0000"`, true},
		{"\"a\xffb\xc3\"", "\"a\uFFFDb\uFFFD\"", true},
		{"\"\u2028 \U0001F600 é\"", "\"\u2028 \U0001F600 é\"", true},
		{`{"a":1}{"b":2}`, ``, false},
		{`{"a":1,}`, ``, false},
		{`[1,]`, ``, false},
		{`{"a" 1}`, ``, false},
		{`{a:1}`, ``, false},
		{`01`, ``, false},
		{`1.`, ``, false},
		{`1e`, ``, false},
		{`-`, ``, false},
		{`.5`, ``, false},
		{`tru`, ``, false},
		{`nul`, ``, false},
		{`"\x"`, ``, false},
		{`"\u12g4"`, ``, false},
		{`"\u12"`, ``, false},
		{`"open`, ``, false},
		{`"ends in backslash\`, ``, false},
		{`{"a":`, ``, false},
		{`[`, ``, false},
		{strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), true},
		{strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), ``, false},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			got, ok := AppendCompact([]byte("x"), []byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if !ok {
				if string(got) != "x" {
					t.Errorf("dst not restored: %q", got)
				}
				return
			}
			if string(got[1:]) != tt.want {
				t.Errorf("got %q, want %q", got[1:], tt.want)
			}
			if !json.Valid(got[1:]) {
				t.Errorf("output not valid JSON: %q", got[1:])
			}
		})
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain <&>", `"plain <&>"`},
		{"q\"b\\s/", `"q\"b\\s/"`},
		{"\n\r\t\x00\x1f\x7f", `"\n\r\t\u0000\u001f` + "\x7f" + `"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"a\xffb", "\"a\uFFFDb\""},
		{"\xed\xa0\x80", "\"\uFFFD\uFFFD\uFFFD\""}, // an encoded surrogate is not UTF-8
		{"日本\U0001F600", "\"日本\U0001F600\""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := string(AppendString(nil, tt.in))
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			var back string
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatal(err)
			}
			if !sameAfterRepair(back, tt.in) {
				t.Errorf("round trip %q, want %q", back, tt.in)
			}
		})
	}
}

func FuzzCompactJSON(f *testing.F) {
	for _, name := range []string{"elastic_eventhub_alert.json", "docs_alerts-schemas_activitylog_alert.json", "restapi_alert_get_2022-01-01.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{`{"a":[1,2.5e-3,"\u00e9\n"]}`, "[\"\x7f\xff\", -0, {}]", `"\ud800"`, `01`, `{"a":}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, ok := AppendCompact(nil, in)
		if json.Valid(in) && !ok {
			t.Fatalf("valid JSON refused: %q", in)
		}
		if !ok {
			return
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("output not valid: %q from %q", out, in)
		}
		if bytes.ContainsAny(out, " \t\r\n") && !bytes.Contains(in, []byte{'"'}) {
			t.Fatalf("whitespace kept outside strings: %q", out)
		}
		if json.Valid(in) && !reflect.DeepEqual(decodeNumbers(t, out), decodeNumbers(t, in)) {
			t.Fatalf("meaning changed: %q became %q", in, out)
		}
	})
}

// sameAfterRepair reports whether got is s as JSON decoding of our output should give it back:
// every invalid UTF-8 byte replaced by U+FFFD.
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
