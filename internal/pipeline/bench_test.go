package pipeline

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	hecformat "github.com/defender-siem/forwarder/internal/format/hec"
	"github.com/defender-siem/forwarder/internal/hostproto"
)

// benchBatch is a 100-event host envelope of the sample alert (8.7 KB), each with its own id.
func benchBatch(b *testing.B) []byte {
	raw, err := os.ReadFile("testdata/alert.json")
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 100)
	for i := range bodies {
		bodies[i] = []byte(strings.Replace(string(raw), "2517184898549829577_", fmt.Sprintf("%019d_", i), 1))
	}
	env, err := hostsim.Batch{DataType: hostsim.DataTypeString, Bodies: bodies, PartitionID: "0"}.Envelope(nil)
	if err != nil {
		b.Fatal(err)
	}
	return env
}

// BenchmarkDecodeBatch100 measures the host envelope decode of a 100-event batch, as the
// server does it.
func BenchmarkDecodeBatch100(b *testing.B) {
	env := benchBatch(b)
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := hostproto.ParseInvokeRequest(env)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := hostproto.DecodeEventHubBatch(&req, "events"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeParseFormatHEC100 is the per-record CPU path of an invocation: envelope
// decode, record parse (entities skipped, as with only HEC destinations) and HEC formatting of
// 100 alerts (no network).
func BenchmarkDecodeParseFormatHEC100(b *testing.B) {
	env := benchBatch(b)
	f := hecformat.New(hecformat.DefaultConfig())
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		req, err := hostproto.ParseInvokeRequest(env)
		if err != nil {
			b.Fatal(err)
		}
		batch, err := hostproto.DecodeEventHubBatch(&req, "events")
		if err != nil {
			b.Fatal(err)
		}
		buf = buf[:0]
		for _, ev := range batch.Events {
			recs, err := alert.Options{SkipEntities: true}.ParseMessage(ev.Body)
			if err != nil {
				b.Fatal(err)
			}
			for i := range recs {
				if buf, err = f.Format(buf, &recs[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "alerts/s")
}
