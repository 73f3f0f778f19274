package hostproto_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/hostproto"
)

var bodies = [][]byte{
	[]byte(`{"SystemAlertId":"a1","AlertType":"T","Severity":"High"}`),
	[]byte(`[{"id":"x"},{"id":"y"}]`),
	[]byte("\ufeff{\"records\":[{\"time\":\"2024-01-01T00:00:00Z\"}]}"),
}

func decode(t *testing.T, env []byte) hostproto.Batch {
	t.Helper()
	var req hostproto.InvokeRequest
	if err := json.Unmarshal(env, &req); err != nil {
		t.Fatalf("envelope: %v", err)
	}
	b, err := hostproto.DecodeEventHubBatch(&req, "events")
	if err != nil {
		t.Fatalf("DecodeEventHubBatch: %v", err)
	}
	return b
}

// Every dataType the trigger can be given delivers the same bodies with the same coordinates.
func TestDecodeEventHubBatchDataTypes(t *testing.T) {
	enq := time.Date(2026, 3, 4, 5, 6, 7, 123456700, time.UTC)
	for _, dt := range []hostsim.DataType{hostsim.DataTypeString, hostsim.DataTypeBinary, hostsim.DataTypeNone} {
		t.Run("dataType="+string(dt), func(t *testing.T) {
			sim := hostsim.Batch{DataType: dt, Bodies: bodies, PartitionID: "3", EventHub: "defender", ConsumerGroup: "$Default",
				Namespace: "ns.servicebus.windows.net", FirstSequence: 41, FirstOffset: 4294967296, Enqueued: enq}
			env, err := sim.Envelope(nil)
			if err != nil {
				t.Fatal(err)
			}
			b := decode(t, env)
			if len(b.Events) != len(bodies) {
				t.Fatalf("got %d events, want %d", len(b.Events), len(bodies))
			}
			for i, e := range b.Events {
				want := bodies[i]
				if dt == hostsim.DataTypeNone {
					// The host sends the parsed value: compare as JSON, the BOM is gone.
					var a, w any
					_ = json.Unmarshal(e.Body, &a)
					_ = json.Unmarshal(bytes.TrimPrefix(want, []byte("\ufeff")), &w)
					if mustJSON(a) != mustJSON(w) {
						t.Errorf("event %d body %s, want %s", i, e.Body, want)
					}
				} else if !bytes.Equal(e.Body, want) {
					t.Errorf("event %d body %q, want %q", i, e.Body, want)
				}
				if !e.HasCoordinates || e.SequenceNumber != 41+int64(i) {
					t.Errorf("event %d sequence %d (has=%v), want %d", i, e.SequenceNumber, e.HasCoordinates, 41+i)
				}
				if wantT := enq.Add(time.Duration(i) * time.Millisecond); !e.EnqueuedTime.Equal(wantT) {
					t.Errorf("event %d enqueued %v, want %v", i, e.EnqueuedTime, wantT)
				}
			}
			if b.Events[0].Offset != "4294967296" {
				t.Errorf("offset %q", b.Events[0].Offset)
			}
			if b.Partition.PartitionID != "3" || b.Partition.EventHubName != "defender" || b.Partition.ConsumerGroup != "$Default" {
				t.Errorf("partition context %+v", b.Partition)
			}
			if b.Retry != nil {
				t.Errorf("retry context on a first attempt: %+v", b.Retry)
			}
			if len(b.Problems) != 0 {
				t.Errorf("problems: %v", b.Problems)
			}
		})
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// Hand-written envelopes for the shapes a host may send besides its usual encoding.
func TestDecodeEventHubBatchShapes(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		want     []string
		seq      []int64
		retry    int
		problems int
	}{
		{
			name: "bare array of strings, metadata as real arrays",
			env: `{"Data":{"events":["{\"a\":1}","{\"b\":2}"]},"Metadata":{"SequenceNumberArray":[7,8],
				"OffsetArray":["10","20"],"EnqueuedTimeUtcArray":["2024-01-01T00:00:00Z","2024-01-01T00:00:01Z"],
				"PartitionContext":{"PartitionId":"0"}}}`,
			want: []string{`{"a":1}`, `{"b":2}`}, seq: []int64{7, 8},
		},
		{
			name: "bare array of objects",
			env:  `{"Data":{"events":[{"a":1},[{"b":2}]]},"Metadata":{"SequenceNumberArray":"[1,2]"}}`,
			want: []string{`{"a":1}`, `[{"b":2}]`}, seq: []int64{1, 2},
		},
		{
			name: "metadata strings double-quoted, retry context as a string",
			env: `{"Data":{"events":"[\"{}\"]"},"Metadata":{"SequenceNumberArray":"\"[5]\"",
				"PartitionContext":"{\"PartitionId\":\"2\"}","RetryContext":{"RetryCount":3,"MaxRetryCount":-1,"Exception":{}}}}`,
			want: []string{`{}`}, seq: []int64{5}, retry: 3,
		},
		{
			name: "base64 bodies (dataType binary)",
			env:  `{"Data":{"events":"[\"eyJhIjoxfQ==\"]"},"Metadata":{}}`,
			want: []string{`{"a":1}`},
		},
		{
			name: "not-JSON text body stays text",
			env:  `{"Data":{"events":"[\"hello world\"]"},"Metadata":{}}`,
			want: []string{`hello world`},
		},
		{
			name: "single value, cardinality one",
			env:  `{"Data":{"events":"{\"a\":1}"},"Metadata":{}}`,
			want: []string{`{"a":1}`},
		},
		{
			name: "lower-case keys",
			env:  `{"data":{"Events":"[\"{}\"]"},"metadata":{"sequenceNumberArray":"[9]"}}`,
			want: []string{`{}`}, seq: []int64{9},
		},
		{
			name: "metadata length mismatch costs coordinates, not events",
			env:  `{"Data":{"events":"[\"{}\",\"{}\"]"},"Metadata":{"SequenceNumberArray":"[1]","EnqueuedTimeUtcArray":"[\"bad\",\"bad\"]"}}`,
			want: []string{`{}`, `{}`}, problems: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req hostproto.InvokeRequest
			if err := json.Unmarshal([]byte(tc.env), &req); err != nil {
				t.Fatal(err)
			}
			b, err := hostproto.DecodeEventHubBatch(&req, "events")
			if err != nil {
				t.Fatalf("DecodeEventHubBatch: %v", err)
			}
			if len(b.Events) != len(tc.want) {
				t.Fatalf("got %d events, want %d", len(b.Events), len(tc.want))
			}
			for i, w := range tc.want {
				if string(b.Events[i].Body) != w {
					t.Errorf("event %d: %q, want %q", i, b.Events[i].Body, w)
				}
				if tc.seq != nil && (!b.Events[i].HasCoordinates || b.Events[i].SequenceNumber != tc.seq[i]) {
					t.Errorf("event %d: sequence %d, want %d", i, b.Events[i].SequenceNumber, tc.seq[i])
				}
				if tc.seq == nil && b.Events[i].HasCoordinates {
					t.Errorf("event %d has coordinates it was never given", i)
				}
			}
			if tc.retry != 0 && (b.Retry == nil || b.Retry.RetryCount != tc.retry) {
				t.Errorf("retry %+v, want count %d", b.Retry, tc.retry)
			}
			if len(b.Problems) != tc.problems {
				t.Errorf("problems %q, want %d", b.Problems, tc.problems)
			}
		})
	}
}

func TestDecodeEventHubBatchErrors(t *testing.T) {
	for _, env := range []string{
		`{"Data":{},"Metadata":{}}`,
		`{"Data":{"events":null},"Metadata":{}}`,
		`{"Data":{"other":"[]"},"Metadata":{}}`,
	} {
		var req hostproto.InvokeRequest
		if err := json.Unmarshal([]byte(env), &req); err != nil {
			t.Fatal(err)
		}
		if _, err := hostproto.DecodeEventHubBatch(&req, "events"); !errors.Is(err, hostproto.ErrNoEvents) {
			t.Errorf("%s: err %v, want ErrNoEvents", env, err)
		}
	}
	var req hostproto.InvokeRequest
	_ = json.Unmarshal([]byte(`{"Data":{"events":"[\"a\", 1"},"Metadata":{}}`), &req)
	// A string that is not an array is one text event, not an error.
	if b, err := hostproto.DecodeEventHubBatch(&req, "events"); err != nil || len(b.Events) != 1 {
		t.Errorf("truncated array text: %v, %d events", err, len(b.Events))
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2024, 1, 2, 3, 4, 5, 123456700, time.UTC)
	for _, s := range []string{"2024-01-02T03:04:05.1234567Z", "2024-01-02T03:04:05.1234567", "2024-01-02T04:04:05.1234567+01:00"} {
		got, err := hostproto.ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := hostproto.ParseTime("yesterday"); err == nil {
		t.Error("ParseTime accepted garbage")
	}
}

func FuzzDecodeEventHubBatch(f *testing.F) {
	for _, dt := range []hostsim.DataType{hostsim.DataTypeString, hostsim.DataTypeBinary, hostsim.DataTypeNone} {
		env, err := hostsim.Batch{DataType: dt, Bodies: bodies[:2], PartitionID: "1"}.Envelope(&hostsim.RetryContext{RetryCount: 1})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
	}
	f.Add([]byte(`{"Data":{"events":"[\"eyJhIjoxfQ==\"]"},"Metadata":{"SequenceNumberArray":"\"[5]\""}}`))
	f.Fuzz(func(t *testing.T, env []byte) {
		var req hostproto.InvokeRequest
		if json.Unmarshal(env, &req) != nil {
			return
		}
		b, err := hostproto.DecodeEventHubBatch(&req, "events")
		if err != nil {
			return
		}
		for i, e := range b.Events {
			if e.Body == nil {
				t.Fatalf("event %d has a nil body", i)
			}
		}
	})
}
