package hostproto_test

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/hostproto"
)

// decodeFast is the server's path: the single-pass envelope decoder, then the batch.
func decodeFast(body []byte) (hostproto.InvokeRequest, hostproto.Batch, error) {
	req, err := hostproto.ParseInvokeRequest(body)
	if err != nil {
		return req, hostproto.Batch{}, err
	}
	b, err := hostproto.DecodeEventHubBatch(&req, "events")
	return req, b, err
}

// foldDuplicates reports whether m has two keys that differ only in case, which the lookup
// resolves in map order: then two decodes may rightly pick different values.
func foldDuplicates(m map[string][]byte) bool {
	seen := map[string]bool{}
	for k := range m {
		u := strings.ToLower(k)
		if seen[u] {
			return true
		}
		seen[u] = true
	}
	return false
}

func asPlain[V ~[]byte](m map[string]V) map[string][]byte {
	if m == nil {
		return nil
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

// checkAgrees fails when the fast decoder and the encoding/json decoder disagree on body.
func checkAgrees(t *testing.T, body []byte) {
	t.Helper()
	want, werr := refDecode(body)
	req, got, gerr := decodeFast(body)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("encoding/json error %v, fast error %v\ninput %q", werr, gerr, body)
	}
	if werr != nil {
		if errors.Is(werr, hostproto.ErrNoEvents) != errors.Is(gerr, hostproto.ErrNoEvents) {
			t.Fatalf("encoding/json error %v, fast error %v\ninput %q", werr, gerr, body)
		}
		return
	}
	data, md := asPlain(req.Data), asPlain(req.Metadata)
	if foldDuplicates(data) || foldDuplicates(md) {
		return
	}
	if len(got.Events) != len(want.Events) {
		t.Fatalf("%d events, encoding/json %d\ninput %q", len(got.Events), len(want.Events), body)
	}
	for i := range want.Events {
		g, w := got.Events[i], want.Events[i]
		if !bytes.Equal(g.Body, w.Body) || (g.Body == nil) != (w.Body == nil) {
			t.Fatalf("event %d body %q, encoding/json %q\ninput %q", i, g.Body, w.Body, body)
		}
		g.Body, w.Body = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("event %d %+v, encoding/json %+v\ninput %q", i, g, w, body)
		}
	}
	if got.Partition != want.Partition || !reflect.DeepEqual(got.Retry, want.Retry) || !reflect.DeepEqual(got.Problems, want.Problems) {
		t.Fatalf("metadata %+v %+v %q, encoding/json %+v %+v %q\ninput %q", got.Partition, got.Retry, got.Problems, want.Partition, want.Retry, want.Problems, body)
	}
}

func TestFastDecodeAgreesWithEncodingJSON(t *testing.T) {
	for name, body := range map[string]string{
		"empty":                  ``,
		"spaces":                 " \n\t",
		"null":                   `null`,
		"null then garbage":      `null x`,
		"array":                  `[]`,
		"number":                 `12`,
		"string":                 `"x"`,
		"unterminated":           `{"Data":{"events":"[]"}`,
		"trailing garbage":       `{"Data":{"events":"[\"a\"]"}} trailing`,
		"no Data":                `{"Metadata":{}}`,
		"Data null":              `{"Data":null}`,
		"Data string":            `{"Data":"x","Metadata":{}}`,
		"Data array":             `{"Data":[1],"Metadata":{}}`,
		"Metadata number":        `{"Data":{"events":"[\"a\"]"},"Metadata":1}`,
		"lower case names":       `{"data":{"EVENTS":"[\"a\"]"},"metadata":{"sequencenumberarray":"[7]"}}`,
		"escaped names":          `{"\u0044ata":{"ev\u0065nts":"[\"a\"]"}}`,
		"repeated Data merges":   `{"Data":{"events":"[\"a\"]"},"Data":{"other":1}}`,
		"Data reset by null":     `{"Data":{"events":"[\"a\"]"},"Data":null}`,
		"repeated key":           `{"Data":{"events":"[\"a\"]","events":"[\"b\",\"c\"]"}}`,
		"unwrapped strings":      `{"Data":{"events":["{\"a\":1}","b"]}}`,
		"unwrapped values":       `{"Data":{"events":[{"a":1}, [2] ,3,null,true]}}`,
		"single object":          `{"Data":{"events":{"a":1}}}`,
		"single string":          `{"Data":{"events":"not an array"}}`,
		"string of bad array":    `{"Data":{"events":"[\"a\", 1"}}`,
		"string with space":      `{"Data":{"events":"  [\"a\"]\u00a0 "}}`,
		"base64":                 `{"Data":{"events":"[\"eyJhIjoxfQ==\",\"{}\",\"\"]"}}`,
		"base64 newline":         `{"Data":{"events":"[\"eyJh\\nIjoxfQ==\"]"}}`,
		"escapes":                `{"Data":{"events":"[\"\\u00e9\\ud83d\\ude00\\ud800x\\\\\\\"\\/\\b\\f\\n\\r\\t\"]"}}`,
		"invalid UTF-8 outer":    "{\"Data\":{\"events\":\"[\\\"a\xff\xfeb\\\"]\"}}",
		"invalid UTF-8 unwrap":   "{\"Data\":{\"events\":[\"a\xffb\",{\"k\":\"\xc3\"}]}}",
		"invalid UTF-8 key":      "{\"Da\xffta\":{}}",
		"control char":           "{\"Data\":{\"events\":\"a\x01\"}}",
		"bad escape":             `{"Data":{"events":"\x"}}`,
		"events empty string":    `{"Data":{"events":""}}`,
		"events spaces":          `{"Data":{"events":"   "}}`,
		"coordinates":            `{"Data":{"events":"[\"a\",\"b\"]"},"Metadata":{"SequenceNumberArray":"[1,2]","OffsetArray":"[\"10\",20]","EnqueuedTimeUtcArray":"[\"2026-01-01T00:00:00.1234567Z\",\"bad\"]","PartitionKeyArray":"[null,\"k\"]","PartitionContext":{"PartitionId":"4"},"RetryContext":{"RetryCount":2}}}`,
		"coordinates wrong len":  `{"Data":{"events":"[\"a\",\"b\"]"},"Metadata":{"SequenceNumberArray":"[1]","OffsetArray":"[null,{}]"}}`,
		"double-quoted metadata": `{"Data":{"events":"[\"a\"]"},"Metadata":{"SequenceNumberArray":"\"[5]\"","PartitionContext":"{\"PartitionId\":\"9\"}"}}`,
		"deep":                   `{"Data":{"events":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`,
		"deep ok":                `{"Data":{"events":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}}`,
		"deep in Data":           `{"Data":{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `,"events":"[]"}}`,
		"deep in Data ok":        `{"Data":{"x":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `,"events":"[]"}}`,
		"large truncated array":  `{"Data":{"events":"[\"` + strings.Repeat("ab\\\"", 600) + `\", 1"}}`,
		"large array then text":  `{"Data":{"events":"[\"` + strings.Repeat("ab\\\"", 600) + `\"] x"}}`,
		"large base64 element":   `{"Data":{"events":"[\"` + strings.Repeat("eyJhIjoxfQ==", 200) + `\"]"}}`,
		"large repeated binding": `{"Data":{"events":"[\"` + strings.Repeat("a", 1500) + `\"]","events":"[\"` + strings.Repeat("b", 1500) + `\"]"}}`,
		"deep elsewhere":         `{"Other":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `,"Data":{"events":"[]"}}`,
	} {
		t.Run(name, func(t *testing.T) { checkAgrees(t, []byte(body)) })
	}
}

func TestFastDecodeAgreesOnHostEnvelopes(t *testing.T) {
	alertBody, err := os.ReadFile("testdata/alert.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []hostsim.DataType{hostsim.DataTypeString, hostsim.DataTypeBinary, hostsim.DataTypeNone} {
		t.Run("dataType="+string(dt), func(t *testing.T) {
			env, err := hostsim.Batch{DataType: dt, Bodies: [][]byte{alertBody, alertBody, []byte(`{}`)}, PartitionID: "2", FirstSequence: 9}.Envelope(&hostsim.RetryContext{RetryCount: 3})
			if err != nil {
				t.Fatal(err)
			}
			checkAgrees(t, env)
			_, b, err := decodeFast(env)
			if err != nil || len(b.Events) != 3 || !bytes.Equal(b.Events[0].Body, bytes.TrimPrefix(alertBody, []byte("\ufeff"))) && dt != hostsim.DataTypeNone {
				t.Fatalf("decode: %v, %d events", err, len(b.Events))
			}
		})
	}
}

// The events are decoded in place over text the envelope decoder kept: a second decode of the
// same request must not see it spoiled.
func TestFastDecodeTwice(t *testing.T) {
	body := []byte(`{"Data":{"events":"[\"` + strings.Repeat("x", 2001) + `\",\"{}\"]"}}`)
	req, err := hostproto.ParseInvokeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		b, err := hostproto.DecodeEventHubBatch(&req, "events")
		if err != nil || len(b.Events) != 2 || len(b.Events[0].Body) != 2001 || string(b.Events[1].Body) != "{}" {
			t.Fatalf("decode %d: %v, %d events", i, err, len(b.Events))
		}
	}
}

// The bodies share one buffer: appending to one must not overwrite the next.
func TestFastDecodeBodiesAreCapped(t *testing.T) {
	_, b, err := decodeFast([]byte(`{"Data":{"events":"[\"ab\",\"cd\"]"}}`))
	if err != nil || len(b.Events) != 2 {
		t.Fatalf("decode: %v", err)
	}
	_ = append(b.Events[0].Body, 'X')
	if string(b.Events[1].Body) != "cd" {
		t.Fatalf("second body %q after appending to the first", b.Events[1].Body)
	}
}

func FuzzFastDecodeAgrees(f *testing.F) {
	alertBody, err := os.ReadFile("testdata/alert.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, dt := range []hostsim.DataType{hostsim.DataTypeString, hostsim.DataTypeBinary, hostsim.DataTypeNone} {
		env, err := hostsim.Batch{DataType: dt, Bodies: [][]byte{bodies[0], bodies[1]}, PartitionID: "1"}.Envelope(&hostsim.RetryContext{RetryCount: 1})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
	}
	env, err := hostsim.Batch{DataType: hostsim.DataTypeString, Bodies: [][]byte{alertBody}}.Envelope(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte(`{"Data":{"events":"[\"eyJhIjoxfQ==\"]"},"Metadata":{"SequenceNumberArray":"\"[5]\""}}`))
	f.Add([]byte("{\"data\":{\"events\":[\"a\xffb\",{\"k\":\"\\ud800\"}]},\"Data\":null}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgrees(t, body)
	})
}
