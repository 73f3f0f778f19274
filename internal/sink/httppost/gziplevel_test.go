package httppost

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The level setting is the one in effect: every level sends gzip the standard library reads
// back to the exact batch, a higher level sends fewer bytes, and 0 is the default level.
func TestGzipLevel(t *testing.T) {
	var mu sync.Mutex
	var wire, plain [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("gzip: %v", err)
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Errorf("gzip: %v", err)
		}
		mu.Lock()
		wire, plain = append(wire, raw), append(plain, body)
		mu.Unlock()
	}))
	defer srv.Close()
	ps := payloads(100, 300)
	var want []byte
	for _, p := range ps {
		want = append(append(want, p...), '\n')
	}
	sizes := map[int]int{}
	for _, level := range []int{0, 1, 6, 9} {
		wire, plain = nil, nil
		c := newClient(t, srv.URL, func(c *Config) { c.Gzip, c.Batch, c.GzipLevel = true, BatchNDJSON, level })
		if errs := c.Send(t.Context(), ps); errors.Join(errs...) != nil {
			t.Fatal(errs)
		}
		if len(plain) != 1 || !bytes.Equal(plain[0], want) {
			t.Fatalf("level %d: %d requests, body differs from the batch", level, len(plain))
		}
		sizes[level] = len(wire[0])
	}
	if sizes[0] != sizes[DefaultGzipLevel] {
		t.Errorf("level 0 sent %d bytes, the default level %d sent %d", sizes[0], DefaultGzipLevel, sizes[DefaultGzipLevel])
	}
	if !(sizes[9] <= sizes[6] && sizes[6] < sizes[1] && sizes[1] < len(want)) {
		t.Errorf("sizes by level %v of %d bytes", sizes, len(want))
	}
}

func TestGzipLevelValidate(t *testing.T) {
	for _, level := range []int{-1, 10} {
		c := DefaultConfig()
		c.URL, c.GzipLevel = "https://intake.example", level
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "GzipLevel") {
			t.Errorf("level %d: %v", level, err)
		}
	}
	c := DefaultConfig()
	c.URL = "https://intake.example"
	if c.GzipLevel != DefaultGzipLevel || c.Validate() != nil {
		t.Errorf("default level %d: %v", c.GzipLevel, c.Validate())
	}
}
