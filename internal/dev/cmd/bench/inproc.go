package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/destination"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/server"
)

// rate is what one in-process measurement found.
type rate struct {
	records        int64
	bytes          int64
	elapsed        time.Duration
	allocs         uint64
	allocatedBytes uint64
}

func (r rate) perSecond() float64   { return float64(r.records) / r.elapsed.Seconds() }
func (r rate) mbPerSecond() float64 { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }
func (r rate) allocsPerRecord() float64 {
	return float64(r.allocs) / float64(r.records)
}

// measure runs step until d has passed (at least once) on one core, and counts what it
// allocated. step returns the records and bytes it handled.
func measure(d time.Duration, step func() (records, bytes int64)) rate {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	step() // warm up: first-use allocations are not per record
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var r rate
	start := time.Now()
	for r.elapsed < d {
		n, b := step()
		r.records += n
		r.bytes += b
		r.elapsed = time.Since(start)
	}
	runtime.ReadMemStats(&after)
	r.allocs = after.Mallocs - before.Mallocs
	r.allocatedBytes = after.TotalAlloc - before.TotalAlloc
	return r
}

// baseline is the naive forwarder on the same alerts: encoding/json decodes each body into a
// map and encodes it again.
func baseline(d time.Duration, bodies [][]byte) (rate, error) {
	var firstErr error
	r := measure(d, func() (int64, int64) {
		n, err := baselineStep(bodies)
		firstErr = cmpOr(firstErr, err)
		return int64(len(bodies)), n
	})
	return r, firstErr
}

// baselineStep forwards bodies the naive way and returns the bytes it read.
func baselineStep(bodies [][]byte) (int64, error) {
	var n int64
	var firstErr error
	for _, body := range bodies {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			firstErr = cmpOr(firstErr, err)
		}
		if _, err := json.Marshal(m); err != nil {
			firstErr = cmpOr(firstErr, err)
		}
		n += int64(len(body))
	}
	return n, firstErr
}

// discardSink accepts everything at once: the in-process pipeline then costs what the handler
// costs per record, minus the network.
type discardSink struct{}

func (discardSink) Send(_ context.Context, payloads [][]byte) []error {
	return make([]error, len(payloads))
}

func (discardSink) Close() error { return nil }

// inProcessPipeline builds the handler's pipeline from the same settings, with sinks that
// discard, and returns a step that decodes and processes envelope as the server does, and a
// function returning the first error a step met.
func inProcessPipeline(env []string, envelope []byte) (func() (int64, int64), func() error, error) {
	cfg, err := config.Load(append(env, "Forwarder__FunctionTimeout=00:05:00"), "")
	if err != nil {
		return nil, nil, err
	}
	built, err := destination.Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	for i := range built.Destinations {
		_ = built.Destinations[i].Sink.Close()
		built.Destinations[i].Sink = discardSink{}
	}
	p := pipeline.New(built.Destinations, pipeline.Options{})
	var stepErr error
	step := func() (int64, int64) {
		req, err := hostproto.ParseInvokeRequest(envelope)
		if err != nil {
			stepErr = err
			return 0, int64(len(envelope))
		}
		batch, err := hostproto.DecodeEventHubBatch(&req, server.TriggerBinding)
		if err != nil {
			stepErr = err
			return 0, int64(len(envelope))
		}
		rep := p.Process(context.Background(), batch, time.Now().Add(time.Minute))
		if rep.Err != nil || rep.Undecodable > 0 {
			stepErr = fmt.Errorf("in-process pipeline: %v (%d undecodable)", rep.Err, rep.Undecodable)
		}
		return int64(rep.Records), int64(len(envelope))
	}
	return step, func() error { return stepErr }, nil
}
