package destination

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/sink"
)

// collector is a loopback Cortex XSIAM HTTP log collector with Log Format JSON: it checks the
// key, the compression it was set up with, the 10 MiB request and 5 MB record limits, and that
// every line is JSON, and answers as the collector does (a 500 for a request that does not
// match its settings).
type collector struct {
	key  string
	gzip bool
	mu   sync.Mutex
	// lines are the accepted records; sizes the decompressed request bodies.
	lines   [][]byte
	sizes   []int
	headers []http.Header
	fail    []int
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answer := func(status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
	c.mu.Lock()
	var fault int
	if len(c.fail) > 0 {
		fault, c.fail = c.fail[0], c.fail[1:]
	}
	c.mu.Unlock()
	switch {
	case r.Method != http.MethodPost || r.URL.Path != xsiamPath:
		answer(404, `{"error":"not found"}`)
		return
	case r.Header.Get("Authorization") != c.key:
		answer(401, `{"error":"Public API request unauthorized"}`)
		return
	case fault != 0:
		w.Header().Set("Retry-After", "2")
		answer(fault, `{"error":"rate limit"}`)
		return
	}
	wire, _ := io.ReadAll(io.LimitReader(r.Body, xsiamMaxRequest+1))
	if len(wire) > xsiamMaxRequest {
		answer(413, `{"error":"request too large"}`)
		return
	}
	body := wire
	if (r.Header.Get("Content-Encoding") == "gzip") != c.gzip {
		answer(500, `{"error":"error processing request, error: failed to process the request"}`)
		return
	}
	if c.gzip {
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			answer(500, `{"error":"error processing request, error: failed to process the request"}`)
			return
		}
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
		if len(l) > xsiamMaxRecord || !json.Valid(l) {
			answer(500, `{"error":"error processing request, error: failed to process the request"}`)
			return
		}
		lines = append(lines, l)
	}
	c.mu.Lock()
	c.lines = append(c.lines, lines...)
	c.sizes = append(c.sizes, len(body))
	c.headers = append(c.headers, r.Header.Clone())
	c.mu.Unlock()
	answer(200, `{"error":"false"}`)
}

func startCollector(t *testing.T, gz bool) (*collector, string, string) {
	t.Helper()
	c := &collector{key: "xsiam-collector-key-0123456789", gzip: gz}
	srv := httptest.NewTLSServer(c)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c, srv.URL + xsiamPath, ca
}

func xsiamSettings(url, ca, key string, extra ...string) []string {
	return append([]string{
		"Destinations__cortex__Type=xsiam", "Destinations__cortex__Url=" + url, "Destinations__cortex__ApiKey=" + key,
		"Destinations__cortex__CAFile=" + ca, "Destinations__cortex__Kinds=all",
		"Destinations__cortex__RetryInitialInterval=00:00:00.01", "Destinations__cortex__RetryMaxInterval=00:00:00.05", "Destinations__cortex__RetryMaxAttempts=3",
	}, extra...)
}

func alertPayloads(t *testing.T, f interface {
	Format([]byte, *alert.Record) ([]byte, error)
}, n int, pad int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		raw := fmt.Appendf(nil, `{"SystemAlertId":"a%05d","Severity":"High","Description":"%s"}`, i, strings.Repeat("d", pad))
		rec, err := alert.Parse(raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.Format(nil, &rec)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

func TestXSIAMDelivers(t *testing.T) {
	col, url, ca := startCollector(t, true)
	built, d := buildOnly(t, xsiamSettings(url, ca, col.key)...)
	if !strings.Contains(strings.Join(built.Secrets, " "), col.key) {
		t.Error("ApiKey not registered for scrubbing")
	}
	payloads := alertPayloads(t, d.Formatter, 3000, 700)
	// One record above the 1 MiB batch size but under the 5 MB record limit.
	payloads = append(payloads, []byte(`{"SystemAlertId":"big","Description":"`+strings.Repeat("b", 2_000_000)+`"}`))
	for i, err := range d.Sink.Send(ctx(t), payloads) {
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.lines) != len(payloads) {
		t.Fatalf("collector has %d records, want %d", len(col.lines), len(payloads))
	}
	seen := map[string]bool{}
	for _, l := range col.lines {
		var rec struct{ SystemAlertId string }
		_ = json.Unmarshal(l, &rec)
		seen[rec.SystemAlertId] = true
	}
	if len(seen) != len(payloads) || !seen["big"] || !seen["a02999"] {
		t.Errorf("%d distinct records arrived", len(seen))
	}
	bigAlone := false
	for i, size := range col.sizes {
		if size > xsiamDefaultRequest && size != 2_000_000+len(`{"SystemAlertId":"big","Description":""}`)+1 {
			t.Errorf("request of %d bytes exceeds the 1 MiB default", size)
		}
		if size > xsiamDefaultRequest {
			bigAlone = true
		}
		h := col.headers[i]
		if h.Get("Content-Encoding") != "gzip" || h.Get("Authorization") != col.key || h.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", h)
		}
	}
	if !bigAlone || len(col.sizes) < 3 {
		t.Errorf("%d requests; the big record alone: %v", len(col.sizes), bigAlone)
	}
}

func TestXSIAMAnswers(t *testing.T) {
	t.Run("format mismatch is explained and permanent", func(t *testing.T) {
		col, url, ca := startCollector(t, false) // collector uncompressed, destination gzip
		_, d := buildOnly(t, xsiamSettings(url, ca, col.key)...)
		err := d.Sink.Send(ctx(t), alertPayloads(t, d.Formatter, 1, 10))[0]
		if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonRejected || !strings.Contains(err.Error(), "Log Format to JSON and its Compression to gzip") {
			t.Fatalf("got %v", err)
		}
		// Through the pipeline: a dead letter that says what to fix.
		store := &memLetters{}
		raw := []byte(`{"SystemAlertId":"x1","AlertType":"T","Severity":"High"}`)
		if rep := process(t, d, store, batchOf(raw)); rep.Err != nil {
			t.Fatal(rep.Err)
		}
		if len(store.letters) != 1 || store.letters[0].Reason != sink.ReasonRejected || !strings.Contains(store.letters[0].Error, "Log Format to JSON") {
			t.Fatalf("letters %+v", store.letters)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		_, url, ca := startCollector(t, true)
		_, d := buildOnly(t, xsiamSettings(url, ca, "not-the-key-abcdef")...)
		err := d.Sink.Send(ctx(t), alertPayloads(t, d.Formatter, 1, 10))[0]
		if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized || !strings.Contains(err.Error(), "ApiKey") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "not-the-key-abcdef") {
			t.Errorf("the key is in the error: %v", err)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		col, url, ca := startCollector(t, true)
		col.mu.Lock()
		col.fail = []int{429}
		col.mu.Unlock()
		_, d := buildOnly(t, xsiamSettings(url, ca, col.key)...)
		err := d.Sink.Send(ctx(t), alertPayloads(t, d.Formatter, 1, 10))[0]
		if sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonThrottled {
			t.Fatalf("got %v", err)
		}
		if err := d.Sink.Send(ctx(t), alertPayloads(t, d.Formatter, 1, 10))[0]; err != nil {
			t.Fatalf("after the pause: %v", err)
		}
	})
	t.Run("record over 5 MB", func(t *testing.T) {
		col, url, ca := startCollector(t, true)
		_, d := buildOnly(t, xsiamSettings(url, ca, col.key)...)
		err := d.Sink.Send(ctx(t), [][]byte{[]byte(`{"a":"` + strings.Repeat("x", xsiamMaxRecord) + `"}`)})[0]
		if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonTooLarge {
			t.Fatalf("got %v", err)
		}
		col.mu.Lock()
		defer col.mu.Unlock()
		if len(col.sizes) != 0 {
			t.Error("the record was sent")
		}
	})
}

func TestXSIAMSettings(t *testing.T) {
	_, d := buildOnly(t, "Destinations__x__Type=xsiam", "Destinations__x__Url=https://api-acme.xdr.eu.paloaltonetworks.com/logs/v1/event", "Destinations__x__ApiKey=k-123456")
	if k := d.Filter.Kinds; len(k) != 3 || k[0] != alert.KindAlert || k[2] != alert.KindGraphAlert {
		t.Errorf("default kinds %v, want alerts", k)
	}
	_, err := Build(load(t,
		"Destinations__x__Type=xsiam",
		"Destinations__x__Url=https://api-acme.xdr.eu.paloaltonetworks.com/logs/v1/bulk_load",
		"Destinations__x__MaxBatchBytes=20000000",
		"Destinations__x__Headers__Authorization=k",
	), slog.New(slog.DiscardHandler))
	for _, want := range []string{"Destinations__x__Url", "bulk_load", "Destinations__x__ApiKey", "Destinations__x__MaxBatchBytes", "Destinations__x__Headers__authorization"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestXSIAMGzipLevel(t *testing.T) {
	base := []string{"Destinations__x__Type=xsiam", "Destinations__x__Url=https://api-acme.xdr.eu.paloaltonetworks.com/logs/v1/event", "Destinations__x__ApiKey=k-123456"}
	if _, err := Build(load(t, append(base, "Destinations__x__GzipLevel=BestCompression")...), nil); err != nil {
		t.Fatalf("GzipLevel=BestCompression refused: %v", err)
	}
	_, err := Build(load(t, append(base, "Destinations__x__GzipLevel=11")...), nil)
	if err == nil || !strings.Contains(err.Error(), "GzipLevel") {
		t.Fatalf("GzipLevel=11: %v", err)
	}
}
