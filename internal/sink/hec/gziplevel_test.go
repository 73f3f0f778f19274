package hec

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
)

// The level setting is the one in effect: every level writes gzip the standard library reads
// back to the exact body, a higher level writes fewer bytes, and 0 is the default level.
func TestGzipLevel(t *testing.T) {
	payloads := make([][]byte, 100)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, `{"time":1683811029.%03d,"sourcetype":"mscs:azure:security:alert","event":{"SystemAlertId":"%016d","Description":"Process \"svchost.exe\" ran from c:\\temp as Contoso\\admin %d"}}`, i, i*7919, i*i)
	}
	idx := make([]int, len(payloads))
	for i := range idx {
		idx[i] = i
	}
	want := append(bytes.Join(payloads, []byte("\n")), '\n')
	sizes := map[int][]byte{}
	for _, level := range []int{0, 1, 6, 9} {
		cfg := DefaultConfig()
		cfg.URL, cfg.Token, cfg.GzipLevel = "http://127.0.0.1:9", testToken, level
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := c.body(payloads, idx)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("level %d: round trip: %v, %d bytes, want %d", level, err, len(got), len(want))
		}
		sizes[level] = body
	}
	if !bytes.Equal(sizes[0], sizes[DefaultGzipLevel]) {
		t.Errorf("level 0 wrote %d bytes, the default level %d wrote %d", len(sizes[0]), DefaultGzipLevel, len(sizes[DefaultGzipLevel]))
	}
	if !(len(sizes[9]) <= len(sizes[6]) && len(sizes[6]) < len(sizes[1]) && len(sizes[1]) < len(want)) {
		t.Errorf("sizes: level 1 %d, 6 %d, 9 %d bytes of %d", len(sizes[1]), len(sizes[6]), len(sizes[9]), len(want))
	}
}
