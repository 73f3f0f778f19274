package alert

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// checkAppendString fails when AppendString disagrees with encoding/json on the JSON string
// at the start of d: whether it is one, where it ends and what it holds.
func checkAppendString(t *testing.T, d []byte) {
	t.Helper()
	end, scanErr := ScanValue(d, 0, 0)
	var want string
	isString := len(d) > 0 && d[0] == '"' && scanErr == nil && json.Unmarshal(d[:end], &want) == nil
	for _, valid := range []bool{false, true} {
		if valid && !utf8.Valid(d) {
			continue
		}
		got, gotEnd, err := AppendString([]byte("x"), d, 0, valid)
		if (err == nil) != isString {
			t.Fatalf("AppendString(%q, valid=%v) error %v; encoding/json string: %v", d, valid, err, isString)
		}
		if err != nil {
			continue
		}
		if gotEnd != end || string(got) != "x"+want {
			t.Fatalf("AppendString(%q, valid=%v) = %q, end %d; want %q, end %d", d, valid, got, gotEnd, "x"+want, end)
		}
		if u := AppendUnquoted([]byte("x"), d[:end]); string(u) != "x"+want {
			t.Fatalf("AppendUnquoted(%q) = %q, want %q", d[:end], u, "x"+want)
		}
	}
}

func TestAppendString(t *testing.T) {
	cases := append([]string{
		`""`, `"abc"`, `"a\"b"`, `"\\\\\""`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`,
		`"\udc00\ud800"`, `"\ud800\ud800\udc00"`, `"\ud83d\ude0"`, `"\ud83d\"`, `"\x"`, `"\u12"`,
		"\"a\x01\"", "\"\xff\xfe\"", "\"\xe2\x82\"", `"unterminated`, `"a\`, `abc`, ``,
		`"x" trailing`, `"` + "\u2028" + `"`,
	}, decodeStringCases...)
	for _, c := range cases {
		t.Run(c, func(t *testing.T) { checkAppendString(t, []byte(c)) })
	}
}

// Decoding valid text in place, over the very bytes being read, gives the same result.
func TestAppendStringInPlace(t *testing.T) {
	for _, c := range []string{`"abc"`, `"a\"b\\c\/d\n\u00e9\ud83d\ude00\ud800x"`, `"plain text, long enough to copy in runs"`} {
		buf := []byte(c)
		var want string
		if err := json.Unmarshal(buf, &want); err != nil {
			t.Fatal(err)
		}
		got, _, err := AppendString(buf[:0], buf, 0, true)
		if err != nil || string(got) != want {
			t.Errorf("in place %s = %q, %v; want %q", c, got, err, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, c := range decodeStringCases {
		f.Add([]byte(c))
	}
	f.Add([]byte(`"\ud83d\ude00\ud800\"\\\/\b\f\n\r\t"`))
	f.Add([]byte("\"\xff\\u0041\""))
	f.Fuzz(func(t *testing.T, d []byte) {
		checkAppendString(t, d)
		if utf8.Valid(d) && len(d) > 0 && d[0] == '"' {
			// In place must match a separate buffer.
			sep, end, err := AppendString(nil, d, 0, true)
			buf := append([]byte(nil), d...)
			inPlace, end2, err2 := AppendString(buf[:0], buf, 0, true)
			if (err == nil) != (err2 == nil) || err == nil && (end != end2 || string(sep) != string(inPlace)) {
				t.Fatalf("in place %q: %q %v, separate %q %v", d, inPlace, err2, sep, err)
			}
		}
	})
}
