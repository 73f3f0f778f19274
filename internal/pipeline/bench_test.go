package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/samples"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
	hecformat "github.com/defender-siem/forwarder/internal/format/hec"
	"github.com/defender-siem/forwarder/internal/hostproto"
)

// benchBatch is a 100-event host envelope of the sample alert (8.7 KB), each with its own id.
func benchBatch(b *testing.B) []byte {
	raw := samples.Read(b, "elastic_eventhub_alert.json")
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

// discardSink accepts every payload without sending it.
type discardSink struct{}

func (discardSink) Send(_ context.Context, payloads [][]byte) []error {
	return make([]error, len(payloads))
}
func (discardSink) Close() error { return nil }

// BenchmarkProcessNormalPath is one invocation of 100 alerts to one HEC destination (a sink
// that accepts everything, so no network to a receiver) with nothing to dead-letter: with no
// store, and with the dead-letter store on loopback Azurite, where every delivery asks
// whether earlier letters of the batch's partition need clearing (one read of a mark that is
// not there). The difference is what no double replay costs an invocation.
func BenchmarkProcessNormalPath(b *testing.B) {
	env := benchBatch(b)
	req, err := hostproto.ParseInvokeRequest(env)
	if err != nil {
		b.Fatal(err)
	}
	batch, err := hostproto.DecodeEventHubBatch(&req, "events")
	if err != nil {
		b.Fatal(err)
	}
	az := testenv.StartAzurite(b)
	cfg, err := deadletter.ConfigFromSettings(func(k string) (string, bool) {
		if k == "AzureWebJobsStorage" {
			return az.ConnectionString(), true
		}
		return "", false
	})
	if err != nil {
		b.Fatal(err)
	}
	store, err := deadletter.New(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	dest := Destination{Name: "splunk", Formatter: hecformat.New(hecformat.DefaultConfig()), Sink: discardSink{}, Retry: fastRetry()}
	for _, tc := range []struct {
		name  string
		store Store
	}{{"no store", nil}, {"store, no letters", store}} {
		b.Run(tc.name, func(b *testing.B) {
			p := New([]Destination{dest}, Options{Store: tc.store})
			b.ReportAllocs()
			for b.Loop() {
				rep := p.Process(context.Background(), batch, time.Now().Add(time.Minute))
				if rep.Err != nil || rep.Destinations[0].Delivered != 100 {
					b.Fatalf("err %v, delivered %d", rep.Err, rep.Destinations[0].Delivered)
				}
			}
		})
	}
}
