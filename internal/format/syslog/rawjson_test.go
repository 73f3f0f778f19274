package syslog

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/defender-siem/forwarder/internal/dev/alerttest"
)

// compactReference is AppendRawJSON as json.Compact defines it.
func compactReference(dst, raw []byte) []byte {
	from := len(dst)
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, raw); err == nil {
		dst = buf.Bytes()
	} else {
		dst = append(dst[:from], raw...)
	}
	return sanitizeLine(dst, from)
}

func TestAppendRawJSONMatchesCompact(t *testing.T) {
	sample := alerttest.ReadSample(t, "elastic_eventhub_alert.json")
	for name, in := range map[string]string{
		"sample":              string(sample),
		"spaces everywhere":   " {\n\t\"a\" : [ 1 , 2.5e3 , true , null ] ,\r\n \"b\" : { } } \n",
		"spaces in strings":   `{"a b":" c \" d \\ ","e":"\n"}`,
		"not JSON":            "{\"a\":1} trailing\nline",
		"two values":          `{} {}`,
		"empty":               ``,
		"only space":          " \n ",
		"invalid UTF-8":       "{\"a\":\"\xff\"}",
		"invalid UTF-8 raw":   "\xff{",
		"control in string":   "{\"a\":\"\x01\"}",
		"NUL outside":         "{\"a\":1}\x00",
		"deep":                string(bytes.Repeat([]byte("["), 10001)) + string(bytes.Repeat([]byte("]"), 10001)),
		"number then garbage": `1x`,
		"scalar":              ` "x" `,
	} {
		t.Run(name, func(t *testing.T) {
			got := AppendRawJSON([]byte("prefix "), []byte(in))
			want := compactReference([]byte("prefix "), []byte(in))
			if !bytes.Equal(got, want) {
				t.Errorf("AppendRawJSON(%q)\n = %q\nwant %q", in, got, want)
			}
		})
	}
}

func FuzzAppendRawJSON(f *testing.F) {
	sample := alerttest.ReadSample(f, "elastic_eventhub_alert.json")
	f.Add(sample)
	f.Add([]byte(" {\n\t\"a\" : [ 1 , 2.5e3 , true , null ] ,\r\n \"b\" : { } } \n"))
	f.Add([]byte("{\"a\":\"\xff\\u2028\"} x"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got := AppendRawJSON([]byte("p"), in)
		want := compactReference([]byte("p"), in)
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendRawJSON(%q)\n = %q\nwant %q", in, got, want)
		}
	})
}
