package jsonx

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
)

// twice is how the host writes a batch of bodies: an array of strings, in a string.
func twice(t testing.TB, bodies []string) []byte {
	inner, err := json.Marshal(bodies)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := json.Marshal(string(inner))
	if err != nil {
		t.Fatal(err)
	}
	return outer
}

// checkNested fails when AppendNestedStrings, having taken d, disagrees with decoding the two
// layers one after the other with encoding/json.
func checkNested(t *testing.T, d []byte) bool {
	t.Helper()
	if !utf8.Valid(d) {
		return false
	}
	buf, elems, end, ok := AppendNestedStrings([]byte("x"), d, 0)
	if !ok {
		return false
	}
	if string(buf[:1]) != "x" {
		t.Fatalf("buf's first byte lost: %q", buf)
	}
	outerEnd, err := Skip(d, 0, 0)
	var text string
	if err != nil || outerEnd != end || json.Unmarshal(d[:end], &text) != nil {
		t.Fatalf("AppendNestedStrings(%q) took it (end %d), encoding/json does not see one string there (%v, end %d)", d, end, err, outerEnd)
	}
	var want []string
	if err := json.Unmarshal([]byte(text), &want); err != nil || want == nil {
		t.Fatalf("AppendNestedStrings(%q) took it, encoding/json does not see an array of strings in %q: %v", d, text, err)
	}
	var got []string
	for _, e := range elems {
		got = append(got, string(e))
	}
	if len(got) == 0 {
		got = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AppendNestedStrings(%q) = %q, encoding/json %q", d, got, want)
	}
	return true
}

func TestAppendNestedStrings(t *testing.T) {
	for _, bodies := range [][]string{
		{}, {""}, {`{"a":"b"}`}, {`{"q":"a\"b\\c/d"}`, "tab\tnl\n", "\u00e9\U0001F600<&>\u2028"},
		{"\x00\x1f", `\`, `"`, `\\u0041`},
	} {
		d := twice(t, bodies)
		if !checkNested(t, d) {
			t.Errorf("%q: not taken in one pass", d)
		}
	}
	// What the host writes by hand: spaces and line breaks in the inner text, \/ and escaped
	// surrogate pairs, a lone surrogate.
	for _, d := range []string{
		`"[ \"a\" ,\n\t\"b\" ]"`, `"[\"\\/\\ud83d\\ude00\\ud800x\"]"`, `"[]"`, `" [ ] "`,
	} {
		if !checkNested(t, []byte(d)) {
			t.Errorf("%s: not taken in one pass", d)
		}
	}
	// Shapes left to the two-pass decoding.
	for _, d := range []string{
		`"{}"`, `"[1]"`, `"[\"a\"]`, `"[\"a\u0041\"]"`, `"[\"a` + "\x01" + `\"]"`, `"[\"a\nb\"]"`, `"[\"a\",]"`,
		`"[\"\\x\"]"`, `"[\"\\u12\"]"`, `"[\"a\"] x"`, `"\u005b\"a\"]"`, `[]`,
	} {
		if checkNested(t, []byte(d)) {
			t.Errorf("%s: taken, but it should be left to the two passes", d)
		}
	}
}

func FuzzAppendNestedStrings(f *testing.F) {
	f.Add([]byte(`"[\"{\\\"a\\\":\\\"b\\\\\\\"c\\\"}\",\"x\"]"`), "body")
	f.Add([]byte(`"[\"\\ud83d\\ude00\"]"`), "\u2028\x00\"\\")
	f.Fuzz(func(t *testing.T, d []byte, body string) {
		checkNested(t, d)
		if utf8.ValidString(body) {
			if enc := twice(t, []string{body, body + "x"}); !checkNested(t, enc) {
				t.Fatalf("%q (from %q): not taken in one pass", enc, body)
			}
		}
	})
}

// BenchmarkAppendNestedStrings decodes a batch of 100 ARM-shaped alerts as the host sends it.
func BenchmarkAppendNestedStrings(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "restapi_alert_get_2022-01-01.json"))
	if err != nil {
		b.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		b.Fatal(err)
	}
	bodies := make([]string, 100)
	for i := range bodies {
		bodies[i] = compact.String()
	}
	d := twice(b, bodies)
	b.SetBytes(int64(len(d)))
	var buf []byte
	for b.Loop() {
		var ok bool
		if buf, _, _, ok = AppendNestedStrings(buf[:0], d, 0); !ok {
			b.Fatal("not taken")
		}
	}
}
