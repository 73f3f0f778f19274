package hec

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkSend sends 100 alert-sized events (4.5 KB, the mean of a mixed Defender export) per
// Send to a loopback server that reads and discards the body.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `{"text":"Success","code":0}`)
	}))
	defer srv.Close()
	p := events(100, 4500)
	total := 0
	for _, e := range p {
		total += len(e)
	}
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%t", gz), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Token, cfg.Gzip = srv.URL, testToken, gz
			c, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				for i, err := range c.Send(b.Context(), p) {
					if err != nil {
						b.Fatalf("event %d: %v", i, err)
					}
				}
			}
		})
	}
}
