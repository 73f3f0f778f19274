package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// soakBatch is the batch size the soak plays: the largest the host sends by default settings
// allow, where a leak per record shows soonest.
const soakBatch = 1000

// soak plays typical 1000-event batches for c.Soak and reports the handler's memory every
// c.SoakEvery. Memory must be bounded by the batch size, not grow with what was processed:
// the verdict compares the last report with the first, which is taken after the heap has
// reached its working size.
func soak(ctx context.Context, c Config, r *rig, corp *corpus, out io.Writer) error {
	perPart := make([][][]byte, c.Partitions)
	for p := range c.Partitions {
		envs, _, err := corp.envelopes(ShapeTypical, soakBatch, 4, strconv.Itoa(p))
		if err != nil {
			return err
		}
		perPart[p] = envs
	}
	pid := r.host.PID()
	fmt.Fprintf(out, "soak: typical alerts × %d, %d partitions, for %v; handler pid %d\n", soakBatch, c.Partitions, c.Soak, pid)
	fmt.Fprintf(out, "%10s  %12s  %10s  %10s  %12s\n", "elapsed", "records", "records/s", "RSS MB", "peak RSS MB")

	ctx, cancel := context.WithTimeout(ctx, c.Soak)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, c.Partitions)
	for p := range c.Partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				if _, err := r.invoke(context.WithoutCancel(ctx), perPart[p][k%len(perPart[p])], soakBatch); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}

	start := time.Now()
	tick := time.NewTicker(c.SoakEvery)
	defer tick.Stop()
	var first, last int64
	var lastRecords int64
	lastAt := start
	report := func() error {
		rss, peak, err := memory(pid)
		if err != nil {
			return err
		}
		now := time.Now()
		sent := r.sent.Load()
		rate := float64(sent-lastRecords) / now.Sub(lastAt).Seconds()
		lastRecords, lastAt = sent, now
		fmt.Fprintf(out, "%10s  %12d  %10.0f  %10.1f  %12.1f\n", now.Sub(start).Round(time.Second), sent, rate, mb(rss), mb(peak))
		if first == 0 {
			first = rss
		}
		last = rss
		return nil
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if err := report(); err != nil {
				return err
			}
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := report(); err != nil {
		return err
	}
	grew := growth(first, last)
	if grew {
		fmt.Fprintf(out, "RSS grew from %.1f MB to %.1f MB: memory is not bounded by the batch size\n", mb(first), mb(last))
	} else {
		fmt.Fprintf(out, "RSS stayed flat (%.1f MB at the first report, %.1f MB at the end): bounded by the batch size, not by history\n", mb(first), mb(last))
	}
	if err := r.verify(context.Background(), out); err != nil {
		return err
	}
	if grew {
		return fmt.Errorf("handler memory grew during the soak")
	}
	return nil
}

// growth says whether RSS went from first to last by more than the heap's ordinary swing
// between collections: a fifth, and at least 16 MB.
func growth(first, last int64) bool {
	return last-first > max(first/5, 16<<20)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
