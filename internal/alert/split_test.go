package alert

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// subSlice reports whether b lies inside msg's memory.
func subSlice(msg, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	m := msg[:cap(msg)]
	for i := range m {
		if &m[i] == &b[0] {
			return i+len(b) <= len(msg)
		}
	}
	return false
}

func TestSplit(t *testing.T) {
	a := `{"AlertType":"A","SystemAlertId":"1"}`
	b := `{"AlertType":"B","SystemAlertId":"2"}`
	tests := []struct {
		name string
		msg  string
		want []string
	}{
		{"object", a, []string{a}},
		{"object with surrounding whitespace", " \r\n\t" + a + "\n ", []string{a}},
		{"BOM", "\xEF\xBB\xBF" + a, []string{a}},
		{"BOM and whitespace", "\xEF\xBB\xBF \n[" + a + "]\n", []string{a}},
		{"array", "[" + a + ", " + b + "]", []string{a, b}},
		{"array with whitespace", "[\n  " + a + " ,\n  " + b + "\n]", []string{a, b}},
		{"empty array", "[]", []string{}},
		{"empty array with spaces", " [ ] ", []string{}},
		{"records envelope", `{"records":[` + a + `,` + b + `]}`, []string{a, b}},
		{"records envelope any case", `{"Records": [ ` + a + ` ]}`, []string{a}},
		{"RECORDS envelope", `{"RECORDS":[` + a + `]}`, []string{a}},
		{"escaped records key", `{"rec\u006frds":[` + a + `]}`, []string{a}},
		{"empty envelope", `{"records":[]}`, []string{}},
		{"array of envelopes", `[{"records":[` + a + `]},{"records":[` + b + `]}]`, []string{a, b}},
		{"array mixing envelopes and records", `[{"records":[` + a + `]},` + b + `]`, []string{a, b}},
		{"non-object elements kept", `[1,"x",null,[2],` + a + `]`, []string{"1", `"x"`, "null", "[2]", a}},
		{"non-object records in envelope", `{"records":[true,` + a + `]}`, []string{"true", a}},
		{"records not an array is a record", `{"records":"x"}`, []string{`{"records":"x"}`}},
		{"records beside other members is a record", `{"records":[],"time":"t"}`, []string{`{"records":[],"time":"t"}`}},
		{"envelope inside envelope not expanded", `{"records":[{"records":[` + a + `]}]}`, []string{`{"records":[` + a + `]}`}},
		{"scalar message", `"just a string"`, []string{`"just a string"`}},
		{"empty object", `{}`, []string{`{}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte(tc.msg)
			got, err := Split(msg)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records %q, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Errorf("record %d = %s, want %s", i, got[i], tc.want[i])
				}
				if !subSlice(msg, got[i]) {
					t.Errorf("record %d is not a sub-slice of the message", i)
				}
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	alert := string(readTestdata(t, "elastic_eventhub_alert.json"))
	tests := []struct {
		name string
		msg  string
	}{
		{"empty", ""},
		{"whitespace only", " \n\t "},
		{"BOM only", "\xEF\xBB\xBF"},
		{"not JSON", "hello, world"},
		{"XML", "<alert/>"},
		{"truncated object", alert[:len(alert)/2]},
		{"truncated array", `[{"a":1},`},
		{"truncated string", `{"a":"b`},
		{"unclosed array", `[1,2`},
		{"two values", `{"a":1}{"b":2}`},
		{"trailing garbage", `{"a":1} x`},
		{"trailing comma", `[1,2,]`},
		{"unquoted key (JSONC)", `{a:1}`},
		{"single quotes", `{'a':1}`},
		{"bad escape", `{"a":"\x"}`},
		{"control character", "{\"a\":\"\x01\"}"},
		{"bad number", `[01]`},
		{"bad literal", `[tru]`},
		{"two BOMs", "\xEF\xBB\xBF\xEF\xBB\xBF{}"},
		{"deep nesting", strings.Repeat("[", 20000) + strings.Repeat("]", 20000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Split([]byte(tc.msg))
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("Split = %d records, %v; want ErrUndecodable", len(got), err)
			}
			if got != nil {
				t.Errorf("records returned with the error: %q", got)
			}
			recs, err := ParseMessage([]byte(tc.msg))
			if !errors.Is(err, ErrUndecodable) || recs != nil {
				t.Errorf("ParseMessage = %d records, %v; want ErrUndecodable", len(recs), err)
			}
		})
	}
}

// The strict JSON scanner accepts exactly what encoding/json accepts.
func TestSplitAgreesWithEncodingJSON(t *testing.T) {
	inputs := []string{
		`{"a":[1,-0,0.5,1e5,1E-5,-1.5e+3,true,false,null,"\u00e9\n\"\\\/"]}`,
		"\"\xff\xfe invalid UTF-8 is accepted by encoding/json\"",
		`[-]`, `[1.]`, `[.5]`, `[1e]`, `[+1]`, `["\u12"]`, `{"a" 1}`, `{"a":1,}`, `{,}`, `[,1]`, `nul`,
		"[1]\x00", `{"a":1}  `, `  []`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	}
	for _, in := range inputs {
		_, err := Split([]byte(in))
		if (err == nil) != jsonValid([]byte(in)) {
			t.Errorf("Split(%.40q) error %v, encoding/json valid %v", in, err, jsonValid([]byte(in)))
		}
	}
}

func TestParseMessage(t *testing.T) {
	alert := readTestdata(t, "elastic_eventhub_alert.json")
	assess := readTestdata(t, "elastic_eventhub_assessment.json")
	activity := readTestdata(t, "docs_alerts-schemas_activitylog_alert.json")
	var msg bytes.Buffer
	msg.WriteString("\xEF\xBB\xBF[")
	msg.Write(alert)
	msg.WriteString(",\n{\"records\":[")
	msg.Write(activity)
	msg.WriteString("]},")
	msg.Write(assess)
	msg.WriteString(",42]")
	recs, err := ParseMessage(msg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind Kind
		raw  []byte
	}{
		{KindAlert, alert},
		{KindActivityLogAlert, bytes.TrimRight(activity, "\n")},
		{KindRecommendation, assess},
		{KindUnknown, []byte("42")},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		if recs[i].Kind != w.kind || recs[i].Index != i || !bytes.Equal(recs[i].Raw, w.raw) {
			t.Errorf("record %d: kind %s index %d raw %d bytes; want %s, %d, %d bytes",
				i, recs[i].Kind, recs[i].Index, len(recs[i].Raw), w.kind, i, len(w.raw))
		}
	}
}

func TestSplitErrorOffset(t *testing.T) {
	_, err := Split([]byte(`[{"a":1},{"b":x}]`))
	if err == nil || !strings.Contains(err.Error(), "offset 14") {
		t.Errorf("error %v, want it at offset 14 of the message", err)
	}
}
