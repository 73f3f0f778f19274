package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Every way must write gzip that decompresses to the body: a compressor that loses data
// would win the comparison.
func TestGzipWaysRoundTrip(t *testing.T) {
	jc := testJSONCorpus(t, 100)
	bodies, err := hecBodies(jc, 100)
	if err != nil || len(bodies) != 1 || bytes.Count(bodies[0], []byte("\n")) != 100 {
		t.Fatalf("bodies: %v, %d", err, len(bodies))
	}
	ways, err := gzipWays()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ways {
		var buf bytes.Buffer
		w.w.Reset(&buf)
		if _, err := w.w.Write(bodies[0]); err != nil {
			t.Fatal(err)
		}
		if err := w.w.Close(); err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(&buf)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, bodies[0]) {
			t.Errorf("%s: round trip: %v, %d bytes of %d", w.name, err, len(got), len(bodies[0]))
		}
	}
	res, err := compareGzip(context.Background(), ways, bodies, time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	printGzipTable(&out, len(bodies), res)
	for _, g := range res {
		if g.in != int64(len(bodies[0])) || g.out <= 0 || g.out >= g.in {
			t.Errorf("%s: %d bytes in, %d out", g.name, g.in, g.out)
		}
		if !strings.Contains(out.String(), g.name) {
			t.Errorf("table lacks %s", g.name)
		}
	}
}
