package hec

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/defender-siem/forwarder/internal/dev/samples"
)

// BenchmarkSend sends 100 events per Send to a loopback server that reads and discards the
// body. Each event is a HEC envelope around a real 8.7 KB Defender alert whose ids differ per
// event; gzip still finds the repeats across events, so its ratio flatters real traffic.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `{"text":"Success","code":0}`)
	}))
	defer srv.Close()
	raw := samples.Read(b, "elastic_eventhub_alert.json")
	p := make([][]byte, 100)
	for i := range p {
		ev := bytes.ReplaceAll(raw, []byte("cdcf9f94-ec53-47a6-ab87"), []byte(fmt.Sprintf("%08x-%04x-%04x-%04x", i*7919, i, i*31, i*131)))
		p[i] = fmt.Appendf(nil, `{"time":%d.%03d,"source":"azure:defender-for-cloud","sourcetype":"mscs:azure:security:alert","fields":{"kind":"alert","severity":"Medium"},"event":%s}`, 1683811029+i, i, ev)
	}
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
