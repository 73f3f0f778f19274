package main

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/hostproto"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestFrameCounter(t *testing.T) {
	for _, tt := range []struct {
		name           string
		in             string
		frames, bytes  int64
		wantErr, atEnd bool
	}{
		{name: "empty", in: ""},
		{name: "one", in: "5 hello", frames: 1, bytes: 5},
		{name: "two", in: "5 hello3 abc", frames: 2, bytes: 8},
		{name: "message with spaces and digits", in: "11 12 34 56 78", frames: 1, bytes: 11},
		{name: "cut in the message", in: "5 hel", bytes: 3, atEnd: true},
		{name: "cut in the header", in: "5 hello1", frames: 1, bytes: 5, atEnd: true},
		{name: "LF framing", in: "<14>1 x\n", wantErr: true},
		{name: "leading zero", in: "05 hello", wantErr: true},
		{name: "no length", in: " hello", wantErr: true},
		{name: "too long a length", in: "1234567890 x", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFrameCounter()
			f.feed([]byte(tt.in))
			if (f.err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", f.err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if f.frames != tt.frames || f.bytes != tt.bytes {
				t.Errorf("%d frames of %d bytes, want %d of %d", f.frames, f.bytes, tt.frames, tt.bytes)
			}
			if err := f.done(); (err != nil) != tt.atEnd {
				t.Errorf("done: %v, want an error: %v", err, tt.atEnd)
			}
		})
	}
}

// frames renders messages with octet counting, as the syslog sink does.
func frames(msgs [][]byte) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString(strconv.Itoa(len(m)))
		b.WriteByte(' ')
		b.Write(m)
	}
	return b.Bytes()
}

// FuzzFrameCounter feeds well-formed frames in arbitrary pieces: the count must not depend
// on how the stream was cut.
func FuzzFrameCounter(f *testing.F) {
	f.Add([]byte("hello"), []byte("a b c"), uint8(3))
	f.Add([]byte("1234567890 "), []byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, step uint8) {
		var msgs [][]byte
		for _, m := range [][]byte{a, b, a} {
			if len(m) > 0 {
				msgs = append(msgs, m)
			}
		}
		stream := frames(msgs)
		var total int64
		for _, m := range msgs {
			total += int64(len(m))
		}
		fc := newFrameCounter()
		n := int(step)%17 + 1
		for i := 0; i < len(stream); i += n {
			fc.feed(stream[i:min(i+n, len(stream))])
		}
		if err := fc.done(); err != nil {
			t.Fatalf("%q in pieces of %d: %v", stream, n, err)
		}
		if fc.frames != int64(len(msgs)) || fc.bytes != total {
			t.Fatalf("%q in pieces of %d: %d frames of %d bytes, want %d of %d", stream, n, fc.frames, fc.bytes, len(msgs), total)
		}
	})
}

func TestParseStatCPU(t *testing.T) {
	for _, tt := range []struct {
		name, line string
		want       time.Duration
		wantErr    bool
	}{
		{name: "plain", line: "1234 (handler) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 100 1000 100 18446744073709551615", want: 3250 * time.Millisecond},
		{name: "command with spaces and parens", line: "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 6 7", want: 70 * time.Millisecond},
		{name: "too short", line: "7 (x) R 1 2 3", wantErr: true},
		{name: "no command", line: "7 x R", wantErr: true},
		{name: "not a number", line: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 a 4 0", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.line))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\thandler\nVmPeak:\t  900000 kB\nVmHWM:\t   65536 kB\nVmRSS:\t   32768 kB\nThreads:\t8\n"
	rss, peak, err := parseStatusMemory([]byte(status))
	if err != nil || rss != 32<<20 || peak != 64<<20 {
		t.Errorf("parseStatusMemory = %d, %d, %v; want %d, %d", rss, peak, err, 32<<20, 64<<20)
	}
	if _, _, err := parseStatusMemory([]byte("Name:\tx\nVmRSS:\t1 kB\n")); err == nil {
		t.Error("parseStatusMemory accepted a status without VmHWM")
	}
	if _, _, err := parseStatusMemory([]byte("VmHWM:\t1 MB\nVmRSS:\t1 kB\n")); err == nil {
		t.Error("parseStatusMemory accepted a unit other than kB")
	}
}

// The handler's own process can be measured: the functions read real /proc files.
func TestProcSelf(t *testing.T) {
	pid := os.Getpid()
	if _, err := cpuTime(pid); err != nil {
		t.Fatal(err)
	}
	rss, peak, err := memory(pid)
	if err != nil || rss <= 0 || peak < rss {
		t.Fatalf("memory = %d, %d, %v", rss, peak, err)
	}
}

func TestCorpus(t *testing.T) {
	c, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.big.body) != size64K {
		t.Errorf("64k alert is %d bytes, want %d", len(c.big.body), size64K)
	}
	for _, shape := range []Shape{ShapeTypical, Shape64K} {
		t.Run(string(shape), func(t *testing.T) {
			bodies, err := c.bodies(shape, 20)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			for i, b := range bodies {
				recs, err := alert.Options{}.ParseMessage(b)
				if err != nil || len(recs) != 1 || recs[0].Alert == nil {
					t.Fatalf("body %d: %v, %d records", i, err, len(recs))
				}
				id := recs[0].Alert.SystemAlertID
				if id == "" || ids[id] {
					t.Fatalf("body %d: alert id %q empty or repeated", i, id)
				}
				ids[id] = true
			}
		})
	}
	if _, err := c.bodies("huge", 1); err == nil {
		t.Error("an unknown shape was accepted")
	}
}

// The envelopes are what the host sends, so the handler's decoder reads them back whole.
func TestEnvelopes(t *testing.T) {
	c, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	envs, records, err := c.envelopes(ShapeTypical, 10, 2, "1")
	if err != nil || len(envs) != 2 || records != 20 {
		t.Fatalf("envelopes: %v, %d envelopes, %d records", err, len(envs), records)
	}
	var last int64
	for _, env := range envs {
		req, err := hostproto.ParseInvokeRequest(env)
		if err != nil {
			t.Fatal(err)
		}
		b, err := hostproto.DecodeEventHubBatch(&req, "events")
		if err != nil || len(b.Events) != 10 || len(b.Problems) > 0 || b.Partition.PartitionID != "1" {
			t.Fatalf("decode: %v, %d events, problems %q, partition %q", err, len(b.Events), b.Problems, b.Partition.PartitionID)
		}
		if b.Events[0].SequenceNumber <= last {
			t.Errorf("sequence numbers do not follow on: %d after %d", b.Events[0].SequenceNumber, last)
		}
		last = b.Events[9].SequenceNumber
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tt := range []struct {
		p    int
		want time.Duration
	}{{50, 5}, {99, 10}, {100, 10}, {1, 1}, {10, 1}, {11, 2}} {
		if got := percentile(ds, tt.p); got != tt.want {
			t.Errorf("percentile(%d) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	got, err := parseScenarios(" typical:1, 64k:100 ,")
	if err != nil || len(got) != 2 || got[0] != (Scenario{ShapeTypical, 1}) || got[1] != (Scenario{Shape64K, 100}) {
		t.Errorf("parseScenarios = %v, %v", got, err)
	}
	if _, err := parseScenarios("typical,64k:x"); err == nil {
		t.Error("parseScenarios accepted malformed items")
	}
	bad := Config{Scenarios: []Scenario{{"huge", 0}}, Settings: []string{"novalue"}, Soak: -1, PeerRounds: 0}
	err = bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted a config with every field wrong")
	}
	// Every problem is reported at once.
	for _, want := range []string{"-handler", "-duration", "-partitions", "-scenarios", "-coldstarts", "-peer-rounds", "-soak", "-set"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Validate error does not mention %s: %v", want, err)
		}
	}
}

// The summary gives each round's figures and ratio, and the median, which is what to read
// when the machine's speed drifts between rounds.
func TestPeerSummary(t *testing.T) {
	for _, tt := range []struct {
		name         string
		ours, theirs []float64
		want         string
	}{
		{"no HEC-only figure", nil, nil, ""},
		{"no peer", []float64{20000}, nil, "Splunk HEC only, per core (records per CPU-second of the process): handler 20000; the Node peer was not measured (-peer)\n"},
		{"one round", []float64{20000}, []float64{2000}, "Splunk HEC only, per core (records per CPU-second of the process): handler 20000, Node peer 2000: 10.0× the peer\n"},
		{"three rounds", []float64{18000, 20000, 19000}, []float64{2000, 1600, 2400}, "Splunk HEC only, per core (records per CPU-second of the process): handler 18000 / 20000 / 19000, Node peer 2000 / 1600 / 2400: 9.0× / 12.5× / 7.9× the peer by round, median 9.0×\n"},
	} {
		if got := peerSummary(tt.ours, tt.theirs); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestGrowth(t *testing.T) {
	for _, tt := range []struct {
		first, last int64
		want        bool
	}{
		{100 << 20, 110 << 20, false},
		{100 << 20, 130 << 20, true},
		{20 << 20, 30 << 20, false}, // under 16 MB is the heap's ordinary swing
		{20 << 20, 40 << 20, true},
		{100 << 20, 60 << 20, false},
	} {
		if got := growth(tt.first, tt.last); got != tt.want {
			t.Errorf("growth(%d MB, %d MB) = %v, want %v", tt.first>>20, tt.last>>20, got, tt.want)
		}
	}
}

// The table's layout is what the report copies: checked against a golden file.
func TestPrintTable(t *testing.T) {
	rows := []row{
		{name: "in-process: x", recordsPerSec: 12345.6, mbPerSec: 78.9, allocsPerRecord: 26.5, vsBaseline: 1.234},
		{name: "handler: typical alerts × 100, 3 destinations", partitions: 2, invocations: 151, recordsPerSec: 3736, mbPerSec: 24.3,
			p50: 46860 * time.Microsecond, p99: 105280 * time.Microsecond, cpuPer1000: 153 * time.Millisecond, peakRSS: 33 << 20, vsBaseline: 0.77},
		{name: "handler: peak not reset", partitions: 1, invocations: 1, recordsPerSec: 1, peakRSS: -(100 << 20)},
		{name: "cold start", p50: 5270 * time.Microsecond, p99: 5870 * time.Microsecond},
	}
	var out bytes.Buffer
	printTable(&out, rows)
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("table:\n%s\nwant:\n%s", out.Bytes(), want)
	}
}

func TestLogCounter(t *testing.T) {
	var l logCounter
	for _, piece := range []string{`{"level":"INFO","msg":"a"}` + "\n" + `{"level":"WA`, `RN","msg":"b"}` + "\n", `{"level":"ERROR","msg":"c"}` + "\nplain stderr line\n"} {
		if _, err := l.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	if l.warnings != 1 || l.errors != 1 || len(l.first) != 3 {
		t.Errorf("%d warnings, %d errors, kept %q", l.warnings, l.errors, l.first)
	}
}

// The corpus is the same on every run, yet no two alerts share an id or a start time, and a
// copy differs from its sample only in the id and the times.
func TestCorpusDeterministic(t *testing.T) {
	a, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	x, err := a.bodies(ShapeTypical, 40)
	if err != nil {
		t.Fatal(err)
	}
	y, err := b.bodies(ShapeTypical, 40)
	if err != nil {
		t.Fatal(err)
	}
	starts := map[string]bool{}
	sizes := map[int]int{}
	for i := range x {
		if !bytes.Equal(x[i], y[i]) {
			t.Fatalf("body %d differs between two corpora with the same seed", i)
		}
		recs, err := alert.Options{}.ParseMessage(x[i])
		if err != nil || len(recs) != 1 || recs[0].Alert == nil {
			t.Fatalf("body %d: %v", i, err)
		}
		start := recs[0].Time.String()
		if starts[start] {
			t.Errorf("body %d: time %s repeated", i, start)
		}
		starts[start] = true
		sizes[len(x[i])]++
	}
	// Five in ten 1.5 KB hostile, four 8.7 KB, one 2.6 KB: the sizes of the samples.
	want := map[int]int{len(a.hostile.body): 20, len(a.manyEntities.body): 16, len(a.arm.body): 4}
	if !maps.Equal(sizes, want) {
		t.Errorf("body sizes %v, want %v", sizes, want)
	}
	for _, hostile := range []string{`\"`, `\\`, `\u0001`, "\u2028", "|", "^", "]", `\n`} {
		if !bytes.Contains(x[0], []byte(hostile)) {
			t.Errorf("hostile alert lacks %q", hostile)
		}
	}
	// Outside the id and the times, a copy is its sample byte for byte.
	mask := func(body []byte, tp template) []byte {
		m := bytes.Clone(body)
		for _, at := range tp.ids {
			copy(m[at:], strings.Repeat("#", len(tp.id)))
		}
		for _, s := range tp.times {
			copy(m[s.at:], strings.Repeat("#", s.n))
		}
		return m
	}
	if !bytes.Equal(mask(x[0], a.hostile), mask(a.hostile.body, a.hostile)) {
		t.Error("a copy differs from its sample outside the id and the times")
	}
	if bytes.Equal(x[0], a.hostile.body) || len(a.hostile.times) < 3 || len(a.hostile.ids) != 1 {
		t.Errorf("copy not varied: %d times, %d ids found in the sample", len(a.hostile.times), len(a.hostile.ids))
	}
}
