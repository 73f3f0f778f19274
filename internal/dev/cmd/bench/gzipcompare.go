package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
)

// The gzip comparison decides the HEC and HTTP sinks' compressor and default level: it
// compresses the HEC request bodies of the corpus (100 events each, as ours formats them)
// with each library and level, interleaved on one core, and reports the CPU it took per byte
// it saved.

// gzipWriter is what both libraries' *gzip.Writer offer.
type gzipWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// gzipWay is one library at one level.
type gzipWay struct {
	name string
	w    gzipWriter
}

func gzipWays() ([]gzipWay, error) {
	var ways []gzipWay
	var errs []error
	for _, c := range []struct {
		name  string
		level int
		klaus bool
	}{
		{"compress/gzip DefaultCompression (6)", gzip.DefaultCompression, false},
		{"compress/gzip BestSpeed (1)", gzip.BestSpeed, false},
		{"klauspost/compress/gzip DefaultCompression (6)", kgzip.DefaultCompression, true},
		{"klauspost/compress/gzip BestSpeed (1)", kgzip.BestSpeed, true},
	} {
		var w gzipWriter
		var err error
		if c.klaus {
			w, err = kgzip.NewWriterLevel(io.Discard, c.level)
		} else {
			w, err = gzip.NewWriterLevel(io.Discard, c.level)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
			continue
		}
		ways = append(ways, gzipWay{name: c.name, w: w})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("gzip writers: %v", errs)
	}
	return ways, nil
}

// hecBodies joins ours' HEC envelopes of the corpus into request bodies of batch events,
// each envelope followed by a newline, as the HEC sink sends them.
func hecBodies(jc *jsonCorpus, batch int) ([][]byte, error) {
	var envs [][]byte
	if _, err := oursRecordsWay(jc).run(func(b []byte) { envs = append(envs, bytes.Clone(b)) }); err != nil {
		return nil, err
	}
	var bodies [][]byte
	for i := 0; i < len(envs); i += batch {
		var b []byte
		for _, e := range envs[i:min(i+batch, len(envs))] {
			b = append(append(b, e...), '\n')
		}
		bodies = append(bodies, b)
	}
	return bodies, nil
}

// gzipResult is what one way measured over the interleaved rounds.
type gzipResult struct {
	name    string
	in, out int64
	cpu     time.Duration
}

func (g gzipResult) ratio() float64 { return float64(g.in) / float64(g.out) }

// nsPerSaved is the CPU spent per byte the compression saved.
func (g gzipResult) nsPerSaved() float64 { return float64(g.cpu.Nanoseconds()) / float64(g.in-g.out) }

// processCPU is this process's user plus system CPU time, in microseconds' resolution.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// compareGzip compresses every body with every way, interleaved (see interleave), on one
// core.
func compareGzip(ctx context.Context, ways []gzipWay, bodies [][]byte, d time.Duration, minRounds int) ([]gzipResult, error) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	var buf bytes.Buffer
	compress := func(w gzipWriter) (int64, int64, error) {
		var in, out int64
		for _, b := range bodies {
			buf.Reset()
			w.Reset(&buf)
			if _, err := w.Write(b); err != nil {
				return 0, 0, err
			}
			if err := w.Close(); err != nil {
				return 0, 0, err
			}
			in += int64(len(b))
			out += int64(buf.Len())
		}
		return in, out, nil
	}
	res := make([]gzipResult, len(ways))
	for i, w := range ways {
		res[i].name = w.name
		if _, _, err := compress(w.w); err != nil { // warm up
			return nil, fmt.Errorf("%s: %w", w.name, err)
		}
	}
	err := interleave(ctx, len(ways), d, minRounds, func(i int) error {
		c0, err := processCPU()
		if err != nil {
			return err
		}
		in, out, err := compress(ways[i].w)
		if err != nil {
			return fmt.Errorf("%s: %w", ways[i].name, err)
		}
		c1, err := processCPU()
		if err != nil {
			return err
		}
		res[i].in += in
		res[i].out += out
		res[i].cpu += c1 - c0
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func printGzipTable(out io.Writer, bodies int, res []gzipResult) {
	fmt.Fprintf(out, "gzip of %d HEC request bodies of 100 events (ours' envelopes of the corpus), interleaved, GOMAXPROCS=1\n", bodies)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "way\tratio\tMB/s in per CPU-s\tCPU ns per byte saved\tvs compress/gzip BestSpeed\t")
	base := res[1].nsPerSaved()
	for _, g := range res {
		fmt.Fprintf(tw, "%s\t%.1f×\t%.0f\t%.2f\t%.2f×\t\n", g.name, g.ratio(), float64(g.in)/1e6/g.cpu.Seconds(), g.nsPerSaved(), g.nsPerSaved()/base)
	}
	_ = tw.Flush()
}

// runGzip is the -gzip mode.
func runGzip(ctx context.Context, c Config, corp *corpus, out io.Writer) error {
	jc, err := newJSONCorpus(corp, c.JSONRecords)
	if err != nil {
		return err
	}
	bodies, err := hecBodies(jc, 100)
	if err != nil {
		return err
	}
	ways, err := gzipWays()
	if err != nil {
		return err
	}
	res, err := compareGzip(ctx, ways, bodies, c.InProcess, 3)
	if err != nil {
		return err
	}
	printGzipTable(out, len(bodies), res)
	return nil
}
