package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/dev/samples"
)

// Every test here holds the package to encoding/json: what it accepts, where a value ends,
// what a string decodes to, what a compacted value means.

var decodeStringCases = []string{
	``, `plain`, `caf\u00e9`, "caf\u00e9", `\"\\\/\b\f\n\r\t`, `\ud83d\ude00`, `\ud83d`, `\ud83dx`,
	`\ude00\ud83d`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`, "a\xffb", "\xed\xa0\x80", `\u0000`, `x\u20ACy`,
	"\xf0\x9f\x98\x80", `long string without anything special at all, longer than eight bytes`,
}

func seeds(f *testing.F) {
	f.Add(samples.Read(f, "elastic_eventhub_alert.json"))
	for _, name := range []string{"docs_alerts-schemas_activitylog_alert.json", "restapi_alert_get_2022-01-01.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{
		`{"a":[1,2.5e-3,"\u00e9\n"]}`, "[\"\x7f\xff\", -0, {}]", `"\ud800"`, `01`, `{"a":}`,
		` {"k\u0041":"v","k\"":[true,false,null]} `, `[1,]`, `{"a":1,}`, `"\u12"`, "\"a\x01\"",
	} {
		f.Add([]byte(s))
	}
}

// checkString fails when AppendDecoded, AppendUnquoted or DecodeString disagree with
// encoding/json on the JSON string at the start of d: whether it is one, where it ends and
// what it holds.
func checkString(t *testing.T, d []byte) {
	t.Helper()
	end, scanErr := Skip(d, 0, 0)
	var want string
	isString := len(d) > 0 && d[0] == '"' && scanErr == nil && json.Unmarshal(d[:end], &want) == nil
	for _, valid := range []bool{false, true} {
		if valid && !utf8.Valid(d) {
			continue
		}
		got, gotEnd, err := AppendDecoded([]byte("x"), d, 0, valid)
		if (err == nil) != isString {
			t.Fatalf("AppendDecoded(%q, valid=%v) error %v; encoding/json string: %v", d, valid, err, isString)
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("AppendDecoded(%q) error %v does not wrap ErrSyntax", d, err)
			}
			continue
		}
		if gotEnd != end || string(got) != "x"+want {
			t.Fatalf("AppendDecoded(%q, valid=%v) = %q, end %d; want %q, end %d", d, valid, got, gotEnd, "x"+want, end)
		}
		if u := AppendUnquoted([]byte("x"), d[:end]); string(u) != "x"+want {
			t.Fatalf("AppendUnquoted(%q) = %q, want %q", d[:end], u, "x"+want)
		}
		if s, ok := DecodeString(d[:end]); !ok || s != want {
			t.Fatalf("DecodeString(%q) = %q, %v; want %q", d[:end], s, ok, want)
		}
	}
}

func TestStrings(t *testing.T) {
	cases := []string{
		`""`, `"abc"`, `"a\"b"`, `"\\\\\""`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`,
		`"\udc00\ud800"`, `"\ud800\ud800\udc00"`, `"\ud83d\ude0"`, `"\ud83d\"`, `"\x"`, `"\u12"`,
		"\"a\x01\"", "\"\xff\xfe\"", "\"\xe2\x82\"", `"unterminated`, `"a\`, `abc`, ``,
		`"x" trailing`, `"` + "\u2028" + `"`,
	}
	for _, c := range decodeStringCases {
		cases = append(cases, `"`+c+`"`)
	}
	for _, c := range cases {
		t.Run(c, func(t *testing.T) { checkString(t, []byte(c)) })
	}
}

// Decoding valid text in place, over the very bytes being read, gives the same result.
func TestAppendDecodedInPlace(t *testing.T) {
	for _, c := range []string{`"abc"`, `"a\"b\\c\/d\n\u00e9\ud83d\ude00\ud800x"`, `"plain text, long enough to copy in runs"`} {
		buf := []byte(c)
		var want string
		if err := json.Unmarshal(buf, &want); err != nil {
			t.Fatal(err)
		}
		got, _, err := AppendDecoded(buf[:0], buf, 0, true)
		if err != nil || string(got) != want {
			t.Errorf("in place %s = %q, %v; want %q", c, got, err, want)
		}
	}
}

func FuzzDecodeString(f *testing.F) {
	for _, s := range decodeStringCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		val := append(append([]byte{'"'}, content...), '"')
		var want string
		if json.Unmarshal(val, &want) != nil {
			return
		}
		if got, ok := DecodeString(val); !ok || got != want {
			t.Fatalf("DecodeString(%q) = %q, %v; encoding/json says %q", val, got, ok, want)
		}
	})
}

func FuzzAppendDecoded(f *testing.F) {
	for _, c := range decodeStringCases {
		f.Add([]byte(`"` + c + `"`))
	}
	f.Add([]byte(`"\ud83d\ude00\ud800\"\\\/\b\f\n\r\t"`))
	f.Add([]byte("\"\xff\\u0041\""))
	f.Fuzz(func(t *testing.T, d []byte) {
		checkString(t, d)
		if utf8.Valid(d) && len(d) > 0 && d[0] == '"' {
			// In place must match a separate buffer.
			sep, end, err := AppendDecoded(nil, d, 0, true)
			buf := append([]byte(nil), d...)
			inPlace, end2, err2 := AppendDecoded(buf[:0], buf, 0, true)
			if (err == nil) != (err2 == nil) || err == nil && (end != end2 || string(sep) != string(inPlace)) {
				t.Fatalf("in place %q: %q %v, separate %q %v", d, inPlace, err2, sep, err)
			}
		}
	})
}

// refMembers reads the object raw with encoding/json, member by member, in order.
func refMembers(raw []byte) (keys []string, vals []json.RawMessage, ok bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, false
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, nil, false
		}
		keys, vals = append(keys, tok.(string)), append(vals, v)
	}
	if _, err := d.Token(); err != nil {
		return nil, nil, false
	}
	return keys, vals, true
}

// cursorWalk checks the value at d[i] with Open, MemberKey and AfterMember, as a caller that
// recurses into values does, and returns the index past it.
func cursorWalk(d []byte, i, depth int) (int, error) {
	if i >= len(d) || (d[i] != '{' && d[i] != '[') {
		return Skip(d, i, depth)
	}
	if depth >= MaxDepth {
		return i, SyntaxError(i, "nesting too deep")
	}
	object, closer := d[i] == '{', byte(']')
	if object {
		closer = '}'
	}
	next, closed := Open(d, i)
	for !closed {
		vs := next
		if object {
			var err error
			if _, _, vs, err = MemberKey(d, next); err != nil {
				return vs, err
			}
		}
		ve, err := cursorWalk(d, vs, depth+1)
		if err != nil {
			return ve, err
		}
		if next, closed, err = AfterMember(d, ve, closer); err != nil {
			return next, err
		}
	}
	return next, nil
}

// FuzzScan holds Valid, Skip, the member cursor, EachMember and DecodeKey to encoding/json
// on any input.
func FuzzScan(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := Valid(in), json.Valid(in); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid %v", in, got, want)
		}
		end, err := cursorWalk(in, SkipSpace(in, 0), 0)
		if got, want := err == nil && SkipSpace(in, end) == len(in), json.Valid(in); got != want {
			t.Fatalf("the cursor walk of %q: %d, %v; json.Valid %v", in, end, err, want)
		}
		if !json.Valid(in) {
			return
		}
		start, end := Trim(in)
		if bytes.HasPrefix(in, []byte("\xEF\xBB\xBF")) {
			return // json.Valid refuses a BOM; Trim's is a separate promise
		}
		stop, err := Skip(in, start, 0)
		if err != nil || stop != end {
			t.Fatalf("Skip(%q) = %d, %v; want %d", in, stop, err, end)
		}
		if in[start] != '{' {
			return
		}
		wantKeys, wantVals, ok := refMembers(in[start:end])
		if !ok {
			t.Fatalf("encoding/json could not walk %q", in)
		}
		var keys []string
		var vals [][]byte
		n, err := EachMember(in[start:end], 0, func(key, val []byte, esc bool) {
			keys = append(keys, DecodeKey(key, esc))
			vals = append(vals, val)
		})
		if err != nil || start+n != end {
			t.Fatalf("EachMember(%q) = %d, %v", in, n, err)
		}
		if !reflect.DeepEqual(keys, wantKeys) && !(len(keys) == 0 && len(wantKeys) == 0) {
			t.Fatalf("keys %q, encoding/json %q", keys, wantKeys)
		}
		for i := range vals {
			if !bytes.Equal(bytes.TrimSpace(vals[i]), bytes.TrimSpace(wantVals[i])) {
				// encoding/json's RawMessage is the value as written, spaces inside kept.
				t.Fatalf("value %d: %q, encoding/json %q", i, vals[i], wantVals[i])
			}
		}
	})
}

func TestScanErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `01`, `1.`, `1e`, `-`, `.5`, `tru`, `nul`,
		`"\x"`, `"\u12g4"`, `"open`, `{"a":`, `[`, "\"a\x01\"", `{"a":1}{`,
		strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)} {
		if Valid([]byte(in)) {
			t.Errorf("Valid(%.40q) = true", in)
		}
		i := SkipSpace([]byte(in), 0)
		if end, err := Skip([]byte(in), i, 0); err == nil && end == len(in) {
			t.Errorf("Skip(%.40q) accepted it", in)
		} else if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("Skip(%.40q): %v does not wrap ErrSyntax", in, err)
		}
	}
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if !Valid([]byte(deep)) {
		t.Error("nesting at the limit refused")
	}
}

func TestAppendCompact(t *testing.T) {
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
		{`{"a":[}`, ``, false},
		{`["a":1]`, ``, false},
		{strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), true},
		{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ``, false},
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

func TestAppendQuote(t *testing.T) {
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
			got := string(AppendQuote(nil, tt.in))
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

// FuzzAppendQuote: whatever the string, the output is one JSON string, with no raw line break
// of any kind, that decodes to the input with invalid bytes replaced.
func FuzzAppendQuote(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\u2028\x00\n", "\xff\xed\xa0\x80", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendQuote([]byte("x"), s)[1:]
		end, err := Skip(out, 0, 0)
		if err != nil || end != len(out) || out[0] != '"' {
			t.Fatalf("AppendQuote(%q) = %q: not one JSON string (%v)", s, out, err)
		}
		if bytes.ContainsAny(out, "\n\r\u2028\u2029") || !utf8.Valid(out) {
			t.Fatalf("AppendQuote(%q) = %q holds a raw line break or invalid UTF-8", s, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil || !sameAfterRepair(back, s) {
			t.Fatalf("AppendQuote(%q) = %q decodes to %q (%v)", s, out, back, err)
		}
	})
}

func FuzzCompactJSON(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, ok := AppendCompact(nil, in)
		if json.Valid(in) && !ok {
			t.Fatalf("valid JSON refused: %q", in)
		}
		if json.Valid(in) {
			var want bytes.Buffer
			if err := json.Compact(&want, in); err != nil {
				t.Fatal(err)
			}
			if s := AppendStripped(nil, in[SkipSpace(in, 0):len(bytes.TrimRight(in, " \t\r\n"))]); !bytes.Equal(s, want.Bytes()) {
				t.Fatalf("AppendStripped(%q) = %q, json.Compact %q", in, s, want.Bytes())
			}
			if utf8.Valid(in) && !bytes.Equal(out, want.Bytes()) {
				t.Fatalf("AppendCompact(%q) = %q, json.Compact %q", in, out, want.Bytes())
			}
		}
		if !ok {
			return
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("output not valid: %q from %q", out, in)
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
