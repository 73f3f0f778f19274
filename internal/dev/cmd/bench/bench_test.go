package main

import (
	"testing"
)

// benchSettings are the tool's three destinations; nothing is dialled in-process.
var benchSettings = []string{
	"Destinations__splunk__Type=splunk_hec",
	"Destinations__splunk__Url=http://127.0.0.1:9",
	"Destinations__splunk__Token=" + hecToken,
	"Destinations__splunk__Index=defender",
	"Destinations__rsyslog__Type=syslog",
	"Destinations__rsyslog__Address=tcp://127.0.0.1:9",
	"Destinations__rsyslog__Hostname=defender-forwarder",
	"Destinations__arcsight__Type=cef",
	"Destinations__arcsight__Address=tcp://127.0.0.1:9",
	"Destinations__arcsight__Hostname=defender-forwarder",
}

func benchPipeline(b *testing.B, shape Shape, settings []string) {
	corp, err := loadCorpus()
	if err != nil {
		b.Fatal(err)
	}
	envs, records, err := corp.envelopes(shape, 100, 1, "0")
	if err != nil {
		b.Fatal(err)
	}
	step, stepErr, err := inProcessPipeline(settings, envs[0])
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(envs[0])))
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
	if err := stepErr(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPipelineTypical100 is the handler's per-record CPU for a typical 100-event batch
// to the tool's three destinations, without the network.
func BenchmarkPipelineTypical100(b *testing.B) { benchPipeline(b, ShapeTypical, benchSettings) }

// BenchmarkPipeline64K100 is the same with 64 KiB alerts.
func BenchmarkPipeline64K100(b *testing.B) { benchPipeline(b, Shape64K, benchSettings) }

// BenchmarkPipelineTypical100HEC is the same to Splunk alone.
func BenchmarkPipelineTypical100HEC(b *testing.B) {
	benchPipeline(b, ShapeTypical, benchSettings[:4])
}

// BenchmarkBaseline is the naive encoding/json forwarder on the typical alerts.
func BenchmarkBaseline(b *testing.B) {
	corp, err := loadCorpus()
	if err != nil {
		b.Fatal(err)
	}
	bodies, err := corp.bodies(ShapeTypical, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := baselineStep(bodies); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(bodies))/b.Elapsed().Seconds(), "records/s")
}
