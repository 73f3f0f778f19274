package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, filepath.Join("testdata", "elastic_mdc_eventhub_test-alert.log"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "[]", `{"records":[]}`, "\xEF\xBB\xBF{}", `[{"records":[{"AlertType":"a","SystemAlertId":"b"}]},1,"x"]`,
		`{"AlertType":"a","SystemAlertId":"b","Entities":[{"$id":"1","x":{"$ref":"1"}},{"$ref":"1"},{"$ref":"2"}]}`,
		`{"AlertType":"a","SystemAlertId":"b","Entities":"[{\"$id\":\"1\"}]","Intent":"[\"x\"]"}`,
		`{"AlertType":"a","SystemAlertId":"b","Entities":[{"$ref":"2"},{"$id":"1","c":{"$id":"2","p":{"$ref":"1"}}}]}`,
		`{"category":"Security","operationName":"x","properties":{"eventProperties":"{\"severity\":\"High\"}"}}`,
		`{"records":[{"a":1}],"records":[{"b":2}]}`, `{"a":1}{`, "[1,2",
	} {
		f.Add([]byte(s))
	}
}

// FuzzSplit checks that Split never panics, agrees with encoding/json about what is JSON, and
// returns records that are well-formed sub-slices of the message.
func FuzzSplit(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		recs, err := Split(msg)
		trimmed := msg
		if bytes.HasPrefix(trimmed, []byte("\xEF\xBB\xBF")) {
			trimmed = trimmed[3:]
		}
		if valid := json.Valid(trimmed); valid != (err == nil) {
			t.Fatalf("Split error %v, but encoding/json says valid=%v", err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrUndecodable) || recs != nil {
				t.Fatalf("error %v with %d records", err, len(recs))
			}
			return
		}
		for i, r := range recs {
			if !json.Valid(r) {
				t.Fatalf("record %d is not valid JSON: %q", i, r)
			}
			if !subSlice(msg, r) {
				t.Fatalf("record %d is not a sub-slice of the message", i)
			}
		}
	})
}

// FuzzParse checks that Parse never panics, never fails on well-formed JSON, keeps the raw
// bytes, and produces a model that encodes (no cycles, no unencodable values).
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := Parse(raw, 1)
		valid := json.Valid(bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF")))
		if valid && err != nil {
			t.Fatalf("Parse of valid JSON failed: %v", err)
		}
		if !valid && !errors.Is(err, ErrUndecodable) {
			t.Fatalf("Parse of invalid JSON: %v", err)
		}
		if !bytes.Equal(rec.Raw, raw) || rec.Index != 1 {
			t.Fatal("Raw or Index not kept")
		}
		if err != nil {
			return
		}
		if (rec.Alert != nil) != (rec.Kind == KindAlert || rec.Kind == KindActivityLogAlert) {
			t.Fatalf("Alert set for kind %s", rec.Kind)
		}
		if rec.Alert != nil {
			if _, err := json.Marshal(rec.Alert); err != nil {
				t.Fatalf("alert does not encode: %v", err)
			}
			_ = rec.Alert.EntityValues("ip", "Address")
		}
	})
}

// FuzzDecodeString checks the string decoder against encoding/json.
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
		if got, ok := decodeString(val); !ok || got != want {
			t.Fatalf("decodeString(%q) = %q, %v; encoding/json says %q", val, got, ok, want)
		}
	})
}
