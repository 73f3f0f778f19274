package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testJSONCorpus(tb testing.TB, records int) *jsonCorpus {
	tb.Helper()
	c, err := loadCorpus()
	if err != nil {
		tb.Fatal(err)
	}
	jc, err := newJSONCorpus(c, records)
	if err != nil {
		tb.Fatal(err)
	}
	return jc
}

// The comparison is only fair if every way does the same work: each must write, for every
// record, the envelope the product's HEC formatter writes (the same members and values once
// decoded; byte forms such as the escaping of U+2028 may differ).
func TestJSONWaysAgree(t *testing.T) {
	jc := testJSONCorpus(t, 200)
	ways := jsonWays(jc)
	outputs := make([][][]byte, len(ways))
	for i, w := range ways {
		n, err := w.run(func(b []byte) { outputs[i] = append(outputs[i], bytes.Clone(b)) })
		if err != nil || n != len(jc.bodies) || len(outputs[i]) != n {
			t.Fatalf("%s: %v, %d records, %d envelopes, want %d", w.name, err, n, len(outputs[i]), len(jc.bodies))
		}
	}
	ours := outputs[len(ways)-1]
	if !reflect.DeepEqual(outputs[len(ways)-2], ours) {
		t.Error("ours from the bodies and ours from the envelopes wrote different envelopes")
	}
	for i, w := range ways[:len(ways)-2] {
		for r, env := range outputs[i] {
			var got, want map[string]any
			if err := json.Unmarshal(env, &got); err != nil {
				t.Fatalf("%s: record %d: not JSON: %v", w.name, r, err)
			}
			if err := json.Unmarshal(ours[r], &want); err != nil {
				t.Fatalf("ours: record %d: not JSON: %v", r, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: record %d differs from ours:\n got %.600s\nwant %.600s", w.name, r, env, ours[r])
			}
		}
	}
	// The event is the alert itself, hostile strings and all.
	var first struct{ Event json.RawMessage }
	if err := json.Unmarshal(ours[0], &first); err != nil || !bytes.Contains(first.Event, []byte(`\"svchost\"`)) {
		t.Errorf("first envelope lacks the hostile alert: %v, %.300s", err, ours[0])
	}
}

func TestCompareJSON(t *testing.T) {
	jc := testJSONCorpus(t, 100)
	res, err := compareJSON(context.Background(), jsonWays(jc), time.Millisecond, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res {
		// Two rounds at least: each way handled the corpus twice, after the warm-up.
		if w.records < int64(2*len(jc.bodies)) || w.elapsed <= 0 {
			t.Errorf("%s: %d records in %s", w.name, w.records, w.elapsed)
		}
	}
	var out strings.Builder
	printJSONTable(&out, jc, res)
	for _, want := range []string{wayClassic, wayGoccy, waySonic, "a+: ", "b+: ", "b2+: ", "ours: ", "ours/(a) = ", "ours/(b) = ", "ours/(b+) = "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// BenchmarkJSON measures each way on the whole corpus (1,000 alerts, 4.5 MB) as its own
// benchmark; run with -cpu 1. BenchmarkJSONInterleaved is the one to read ratios from.
func BenchmarkJSON(b *testing.B) {
	jc := testJSONCorpus(b, 1000)
	for _, w := range jsonWays(jc) {
		name, _, _ := strings.Cut(w.name, ":")
		b.Run(name, func(b *testing.B) {
			b.SetBytes(jc.bytes)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				k, err := w.run(func([]byte) {})
				if err != nil {
					b.Fatal(err)
				}
				n += k
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkJSONInterleaved runs every way once per iteration, in turn, and reports each
// way's records/s and ours against (a), (b) and (c): a load burst slows all of them alike.
func BenchmarkJSONInterleaved(b *testing.B) {
	jc := testJSONCorpus(b, 1000)
	ways := jsonWays(jc)
	res := make([]wayResult, len(ways))
	round := 0
	for b.Loop() {
		for k := range ways {
			i := (k + round) % len(ways)
			t0 := time.Now()
			n, err := ways[i].run(func([]byte) {})
			if err != nil {
				b.Fatal(err)
			}
			res[i].name = ways[i].name
			res[i].records += int64(n)
			res[i].elapsed += time.Since(t0)
		}
		round++
	}
	for _, w := range res {
		name, _, _ := strings.Cut(w.name, ":")
		b.ReportMetric(w.perSecond(), strings.ReplaceAll(name, " ", "")+"-records/s")
	}
	for _, of := range []string{"a", "b", "b2", "c", "a+", "b+", "b2+"} {
		if r := ratio(res, of+":"); r > 0 {
			b.ReportMetric(r, "ours/"+of)
		}
	}
}
