// Command bench measures the forwarder as it runs in Azure: it starts the real handler binary
// the way the Functions host does, with a Splunk HEC receiver, an RFC 5424 syslog collector and
// a CEF collector listening on loopback and dead letters going to a private Azurite, plays
// host invocations of sample Defender alerts at it as fast as it answers, and prints one table:
// throughput, invocation latency, CPU per record and peak memory of the handler (three
// destinations, and Splunk HEC alone with one invocation in flight), next to in-process
// figures (allocations per record) and the naive encoding/json forwarder on the same alerts.
// With -peer it also plays the same alerts at the Node.js peer most users run
// (splunk/azure-functions-splunk) against the same HEC receiver and prints the two per core.
// With -soak it plays for a long time instead and watches the handler's memory.
//
// Two modes need no handler and run in process on one core: -json compares JSON libraries
// with the product's own decoding and formatting, -gzip compares gzip libraries and levels on
// HEC request bodies; each runs its candidates interleaved and prints the ratios.
//
// Run it from the repository root after building the handler:
//
//	go run ./internal/dev/cmd/bench -handler dist/app/handler
//	go run ./internal/dev/cmd/bench -handler dist/app/handler -peer <checkout>/event-hubs-hec
//	go run ./internal/dev/cmd/bench -json
//	GOEXPERIMENT=jsonv2 go run ./internal/dev/cmd/bench -json
//	go run ./internal/dev/cmd/bench -gzip
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/server"
)

// hecToken is the loopback receiver's token: a made-up value, not a credential.
const hecToken = "00000000-0000-0000-0000-0000000bench"

// Config is what a run measures.
type Config struct {
	Handler string // the handler binary
	App     string // the app folder with host.json
	Azurite string // the azurite-table binary
	// Duration is how long each scenario plays; InProcess how long each in-process figure runs.
	Duration, InProcess time.Duration
	// Partitions are invoked in parallel, one invocation at a time each, as the host does for
	// the partitions a worker owns.
	Partitions int
	// Scenarios are shape:batch pairs (typical:100, 64k:1 …).
	Scenarios []Scenario
	// ColdStarts is how many starts the cold start median is taken over.
	ColdStarts int
	// Soak, when set, replaces the table: typical 1000-event batches for this long.
	Soak time.Duration
	// SoakEvery is how often the soak reports the handler's memory.
	SoakEvery time.Duration
	// JSON, when set, replaces the table: the JSON layer comparison (see jsoncompare.go) on
	// JSONRecords alerts, for InProcess at least, in process only.
	JSON        bool
	JSONRecords int
	// HECOnly adds the end-to-end figure: typical 100-event batches to Splunk HEC
	// alone (gzip as configured, on by default), one invocation in flight.
	HECOnly bool
	// Gzip, when set, replaces the table: the gzip comparison (see gzipcompare.go) on the HEC
	// bodies of JSONRecords alerts, in process only.
	Gzip bool
	// Settings are extra app settings (KEY=VALUE) for the handler, after the tool's own, to
	// measure a setting's cost.
	Settings []string
	// Peer, when set, is the event-hubs-hec folder of a splunk/azure-functions-splunk
	// checkout (its npm dependencies installed): the Node peer is then played on the same
	// alerts against the same HEC receiver, right after the HEC-only figure, and the tool
	// prints the two per core.
	Peer string
	// PeerRounds is how many times the HEC-only handler and the peer are played in turn when
	// Peer is set: the machine's speed drifts between minutes, so the ratio is taken per
	// round, one right after the other, and the median reported.
	PeerRounds int
}

// Scenario is one kind of batch played at the handler.
type Scenario struct {
	Shape Shape
	Batch int
}

func (s Scenario) String() string { return fmt.Sprintf("%s alerts × %d", s.Shape, s.Batch) }

// DefaultConfig is a run of a few seconds per scenario.
func DefaultConfig() Config {
	return Config{
		Handler:    "dist/app/handler",
		App:        "dist/app",
		Azurite:    ".tools/node_modules/.bin/azurite-table",
		Duration:   3 * time.Second,
		InProcess:  2 * time.Second,
		Partitions: 2,
		Scenarios: []Scenario{
			{ShapeTypical, 1}, {ShapeTypical, 100}, {ShapeTypical, 1000},
			{Shape64K, 1}, {Shape64K, 100},
		},
		ColdStarts:  20,
		SoakEvery:   30 * time.Second,
		JSONRecords: 1000,
		HECOnly:     true,
		PeerRounds:  3,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Handler == "" {
		errs = append(errs, errors.New("-handler: want the handler binary"))
	}
	if c.Duration <= 0 || c.InProcess <= 0 {
		errs = append(errs, errors.New("-duration and -inprocess: want positive durations"))
	}
	if c.Partitions < 1 {
		errs = append(errs, errors.New("-partitions: want at least 1"))
	}
	if len(c.Scenarios) == 0 && c.Soak == 0 {
		errs = append(errs, errors.New("-scenarios: want at least one shape:batch"))
	}
	for _, s := range c.Scenarios {
		if (s.Shape != ShapeTypical && s.Shape != Shape64K) || s.Batch < 1 {
			errs = append(errs, fmt.Errorf("-scenarios: %q: want typical or 64k and a batch size of at least 1", s.String()))
		}
	}
	if c.JSONRecords < 100 || c.JSONRecords%100 != 0 {
		errs = append(errs, fmt.Errorf("-json-records: want a positive multiple of 100, got %d", c.JSONRecords))
	}
	if c.Peer != "" && !c.HECOnly {
		errs = append(errs, errors.New("-peer: compares with the HEC-only figure, so -hec-only must stay on"))
	}
	if c.PeerRounds < 1 {
		errs = append(errs, errors.New("-peer-rounds: want at least 1"))
	}
	if c.ColdStarts < 1 {
		errs = append(errs, errors.New("-coldstarts: want at least 1"))
	}
	if c.Soak < 0 || c.SoakEvery <= 0 {
		errs = append(errs, errors.New("-soak and -soak-every: want positive durations"))
	}
	for _, kv := range c.Settings {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("-set %q: want KEY=VALUE", kv))
		}
	}
	return errors.Join(errs...)
}

// parseScenarios reads "typical:100,64k:1".
func parseScenarios(s string) ([]Scenario, error) {
	var out []Scenario
	var errs []error
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		shape, size, ok := strings.Cut(item, ":")
		n, err := strconv.Atoi(size)
		if !ok || err != nil {
			errs = append(errs, fmt.Errorf("scenario %q: want shape:batch, as typical:100", item))
			continue
		}
		out = append(out, Scenario{Shape: Shape(shape), Batch: n})
	}
	return out, errors.Join(errs...)
}

func main() {
	c := DefaultConfig()
	flag.StringVar(&c.Handler, "handler", c.Handler, "the handler binary")
	flag.StringVar(&c.App, "app", c.App, "the app folder (host.json)")
	flag.StringVar(&c.Azurite, "azurite", c.Azurite, "the azurite-table binary")
	flag.DurationVar(&c.Duration, "duration", c.Duration, "how long each scenario plays")
	flag.DurationVar(&c.InProcess, "inprocess", c.InProcess, "how long each in-process measurement runs")
	flag.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions invoked in parallel, one invocation at a time each")
	scenarios := flag.String("scenarios", "typical:1,typical:100,typical:1000,64k:1,64k:100", "comma-separated shape:batch list; shapes: typical, 64k")
	flag.IntVar(&c.ColdStarts, "coldstarts", c.ColdStarts, "starts the cold start median is taken over")
	flag.DurationVar(&c.Soak, "soak", 0, "play typical 1000-event batches for this long and watch the handler's memory, instead of the table")
	flag.DurationVar(&c.SoakEvery, "soak-every", c.SoakEvery, "how often -soak reports memory")
	flag.BoolVar(&c.JSON, "json", false, "compare the JSON layer candidates with ours, interleaved on one core, instead of the table (no handler needed)")
	flag.BoolVar(&c.HECOnly, "hec-only", c.HECOnly, "also play typical:100 at a handler with only the Splunk HEC destination, one invocation in flight")
	flag.BoolVar(&c.Gzip, "gzip", false, "compare compress/gzip with klauspost/compress/gzip on HEC bodies, interleaved on one core, instead of the table (no handler needed)")
	flag.IntVar(&c.PeerRounds, "peer-rounds", c.PeerRounds, "with -peer: rounds of the HEC-only handler and the peer played in turn; the median ratio is reported")
	flag.StringVar(&c.Peer, "peer", "", "the event-hubs-hec folder of a splunk/azure-functions-splunk checkout with node_modules: also measure the Node peer (needs node and -hec-only)")
	flag.IntVar(&c.JSONRecords, "json-records", c.JSONRecords, "alerts in the -json and -gzip corpus (a multiple of 100)")
	flag.Func("set", "an extra app setting KEY=VALUE for the handler (repeatable), e.g. Destinations__splunk__Compression=gzip", func(kv string) error {
		c.Settings = append(c.Settings, kv)
		return nil
	})
	flag.Parse()
	var err error
	if c.Scenarios, err = parseScenarios(*scenarios); err == nil {
		err = c.Validate()
	}
	if err == nil {
		err = run(context.Background(), c, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// rig is everything a run starts: receivers, Azurite and the handler.
type rig struct {
	hec      *hecrecv.Receiver
	syslog   *tcpReceiver
	cef      *tcpReceiver
	store    *testenv.Azurite
	storeDir string
	host     *hostsim.Host
	env      []string
	logs     *logCounter
	sent     atomic.Int64 // records in invocations the handler answered 2xx
	hecOnly  int64        // of those, records sent while only the HEC destination was on
	peer     int64        // events the Node peer posted to the HEC receiver
	failures atomic.Int64 // invocations answered otherwise
}

func startRig(ctx context.Context, c Config) (*rig, error) {
	r := &rig{logs: &logCounter{}}
	var err error
	if r.storeDir, err = os.MkdirTemp("", "bench-azurite-"); err != nil {
		return nil, err
	}
	// A fresh directory: a run never sees an earlier run's dead letters.
	if r.store, err = testenv.LaunchAzurite(c.Azurite, r.storeDir); err != nil {
		_ = os.RemoveAll(r.storeDir)
		return nil, err
	}
	if r.hec, err = hecrecv.Start(hecToken); err != nil {
		r.close()
		return nil, err
	}
	// Keeping every event would make the receiver's memory, not the handler's, the story.
	r.hec.Discard()
	if r.syslog, err = startTCPReceiver(); err != nil {
		r.close()
		return nil, err
	}
	if r.cef, err = startTCPReceiver(); err != nil {
		r.close()
		return nil, err
	}
	r.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AzureWebJobsStorage=" + r.store.ConnectionString(),
		"FUNCTIONS_WORKER_RUNTIME=custom",
		"Destinations__splunk__Type=splunk_hec",
		"Destinations__splunk__Url=" + r.hec.URL,
		"Destinations__splunk__Token=" + hecToken,
		"Destinations__splunk__Index=defender",
		"Destinations__rsyslog__Type=syslog",
		"Destinations__rsyslog__Address=" + r.syslog.Addr,
		"Destinations__rsyslog__Hostname=defender-forwarder",
		"Destinations__arcsight__Type=cef",
		"Destinations__arcsight__Address=" + r.cef.Addr,
		"Destinations__arcsight__Hostname=defender-forwarder",
	}
	r.env = append(r.env, c.Settings...)
	r.host = r.newHost(c)
	if _, err := r.host.Start(ctx, 10*time.Second); err != nil {
		r.close()
		r.logs.mu.Lock()
		defer r.logs.mu.Unlock()
		return nil, fmt.Errorf("%w\n%s%s", err, strings.Join(r.logs.first, "\n"), r.logs.partial)
	}
	return r, nil
}

// restart replaces the handler with a fresh process on the same settings.
func (r *rig) restart(ctx context.Context, c Config) error {
	if err := r.host.Stop(10 * time.Second); err != nil {
		return fmt.Errorf("stop handler: %w", err)
	}
	r.host = r.newHost(c)
	if _, err := r.host.Start(ctx, 10*time.Second); err != nil {
		return fmt.Errorf("restart handler: %w", err)
	}
	return nil
}

// splunkOnly keeps the settings of the Splunk destination and drops the other two.
func splunkOnly(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "Destinations__") || strings.HasPrefix(kv, "Destinations__splunk__") {
			out = append(out, kv)
		}
	}
	return out
}

func (r *rig) newHost(c Config) *hostsim.Host {
	return &hostsim.Host{Path: c.Handler, Dir: c.App, Env: r.env, Stdout: r.logs, Stderr: r.logs}
}

func (r *rig) close() {
	if r.host != nil {
		_ = r.host.Stop(10 * time.Second)
	}
	for _, t := range []*tcpReceiver{r.syslog, r.cef} {
		if t != nil {
			t.Close()
		}
	}
	if r.hec != nil {
		_ = r.hec.Close()
	}
	if r.store != nil {
		r.store.Stop()
		_ = os.RemoveAll(r.storeDir)
	}
}

// logCounter takes the handler's output, counts warnings and errors and keeps the first few.
type logCounter struct {
	mu       sync.Mutex
	partial  []byte
	warnings int
	errors   int
	first    []string
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := l.partial[:i]
		switch {
		case bytes.Contains(line, []byte(`"level":"ERROR"`)):
			l.errors++
		case bytes.Contains(line, []byte(`"level":"WARN"`)):
			l.warnings++
		case bytes.Contains(line, []byte(`"level":`)):
			line = nil // info and debug
		}
		if line != nil && len(l.first) < 5 {
			l.first = append(l.first, string(line))
		}
		l.partial = l.partial[i+1:]
	}
	l.partial = append([]byte(nil), l.partial...)
	return len(p), nil
}

// row is one line of the table; a zero value prints as "-".
type row struct {
	name                    string
	partitions, invocations int
	recordsPerSec, mbPerSec float64
	p50, p99                time.Duration
	cpuPer1000              time.Duration
	peakRSS                 int64
	allocsPerRecord         float64
	vsBaseline              float64
}

func run(ctx context.Context, c Config, out io.Writer) error {
	corp, err := loadCorpus()
	if err != nil {
		return err
	}
	if c.JSON {
		return runJSON(ctx, c, corp, out)
	}
	if c.Gzip {
		return runGzip(ctx, c, corp, out)
	}
	r, err := startRig(ctx, c)
	if err != nil {
		return err
	}
	defer r.close()
	if c.Soak > 0 {
		return soak(ctx, c, r, corp, out)
	}

	fmt.Fprintf(out, "measuring: baseline and in-process figures on one core, then %d scenarios of %v against the handler (pid %d)\n", len(c.Scenarios), c.Duration, r.host.PID())
	var rows []row
	typical, err := corp.bodies(ShapeTypical, 1000)
	if err != nil {
		return err
	}
	base, err := baseline(c.InProcess, typical)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	basePerSec := base.perSecond()
	baseRow := row{name: "baseline: encoding/json map decode+encode, typical alerts, 1 core", recordsPerSec: basePerSec, mbPerSec: base.mbPerSecond(), allocsPerRecord: base.allocsPerRecord(), vsBaseline: 1}

	for _, m := range []struct {
		shape Shape
		what  string
		env   []string
	}{
		{ShapeTypical, "Splunk HEC only", splunkOnly(r.env)},
		{ShapeTypical, "3 destinations", r.env},
		{Shape64K, "3 destinations", r.env},
	} {
		envs, _, err := corp.envelopes(m.shape, 100, 1, "0")
		if err != nil {
			return err
		}
		step, stepErr, err := inProcessPipeline(m.env, envs[0])
		if err != nil {
			return err
		}
		rt := measure(c.InProcess, step)
		if err := stepErr(); err != nil {
			return err
		}
		rows = append(rows, row{
			name:          fmt.Sprintf("in-process: decode+parse+format, %s, %s × 100, 1 core", m.what, m.shape),
			recordsPerSec: rt.perSecond(), mbPerSec: rt.mbPerSecond(), allocsPerRecord: rt.allocsPerRecord(),
			vsBaseline: rt.perSecond() / basePerSec,
		})
	}

	selfCPU0, err := cpuTime(os.Getpid())
	if err != nil {
		return err
	}
	var handlerCPU time.Duration
	for _, s := range c.Scenarios {
		// A fresh handler for each scenario, so that its peak memory is its own and not
		// what an earlier, larger one left in the heap.
		if err := r.restart(ctx, c); err != nil {
			return err
		}
		res, err := playScenario(ctx, r, corp, s, c.Partitions, c.Duration)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		rw := res.row(s, c.Partitions, "3 destinations")
		if res.cpu > 0 {
			// Per core: records per CPU-second of the handler against the baseline's per core.
			rw.vsBaseline = float64(res.records) / res.cpu.Seconds() / basePerSec
		}
		rows = append(rows, rw)
		handlerCPU += res.cpu
	}
	// The HEC-only figure, and with the peer one round of each after the other per PeerRounds.
	var ours, theirs []float64 // records per CPU-second, per round
	rounds := 1
	if c.Peer != "" {
		rounds = c.PeerRounds
	}
	for k := 1; c.HECOnly && k <= rounds; k++ {
		rw, cpu, err := r.playHECOnly(ctx, c, corp, basePerSec)
		if err != nil {
			return err
		}
		measured := rw.cpuPer1000 > 0
		if measured {
			ours = append(ours, 1000/rw.cpuPer1000.Seconds())
		}
		if rounds > 1 {
			rw.name += fmt.Sprintf(" (round %d of %d)", k, rounds)
		}
		rows = append(rows, rw)
		handlerCPU += cpu
		if c.Peer == "" {
			continue
		}
		bodies, err := corp.bodies(ShapeTypical, 2000)
		if err != nil {
			return err
		}
		peer, err := playPeer(ctx, c.Peer, r.hec.URL+"/services/collector/event", hecToken, bodies, 100, c.Duration)
		r.peer += peer.posted
		if err != nil {
			return err
		}
		prw := peer.row(100)
		prw.vsBaseline = peer.perCPUSecond() / basePerSec
		if rounds > 1 {
			prw.name += fmt.Sprintf(" (round %d of %d)", k, rounds)
		}
		rows = append(rows, prw)
		if measured { // a ratio needs both sides of the round
			theirs = append(theirs, peer.perCPUSecond())
		}
	}
	selfCPU1, err := cpuTime(os.Getpid())
	if err != nil {
		return err
	}
	rows = append(rows, baseRow)

	cold, err := coldStarts(ctx, c, r)
	if err != nil {
		return err
	}
	rows = append(rows, row{name: fmt.Sprintf("cold start: exec → first answer on GET /, %d starts (p50 = median, p99 = slowest)", len(cold)), p50: cold[len(cold)/2], p99: cold[len(cold)-1]})

	fmt.Fprintln(out)
	printTable(out, rows)
	fmt.Fprintln(out)
	// The receivers share the machine's cores with the handler: say how much they took.
	fmt.Fprintf(out, "CPU during the handler scenarios: handler %.1f s, this tool (receivers, envelopes, host side) %.1f s\n", handlerCPU.Seconds(), (selfCPU1 - selfCPU0).Seconds())
	fmt.Fprint(out, peerSummary(ours, theirs))
	return r.verify(ctx, out)
}

// peerSummary is the line comparing the HEC-only handler with the Node peer, per core: each
// round's figures and ratio, and the median ratio ("" without an HEC-only figure).
// theirs[i] is the peer's figure of the round of ours[i].
func peerSummary(ours, theirs []float64) string {
	if len(ours) == 0 {
		return ""
	}
	line := "Splunk HEC only, per core (records per CPU-second of the process): handler " + joinFigures(ours, "%.0f")
	if len(theirs) == 0 {
		return line + "; the Node peer was not measured (-peer)\n"
	}
	ratios := make([]float64, len(theirs))
	for i := range theirs {
		ratios[i] = ours[i] / theirs[i]
	}
	line += ", Node peer " + joinFigures(theirs, "%.0f") + ": " + joinFigures(ratios, "%.1f×") + " the peer"
	if len(ratios) > 1 {
		sorted := slices.Clone(ratios)
		slices.Sort(sorted)
		line += fmt.Sprintf(" by round, median %.1f×", sorted[len(sorted)/2])
	}
	return line + "\n"
}

func joinFigures(fs []float64, format string) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf(format, f)
	}
	return strings.Join(parts, " / ")
}

// playHECOnly restarts the handler with only the Splunk destination, plays typical 100-event
// batches at it one invocation at a time, and restores the three destinations.
func (r *rig) playHECOnly(ctx context.Context, c Config, corp *corpus, basePerSec float64) (row, time.Duration, error) {
	all := r.env
	// The figure is per core: one P, unless -set says otherwise (settings come last
	// and the last of a name wins).
	r.env = append([]string{"GOMAXPROCS=1"}, splunkOnly(all)...)
	defer func() { r.env = all }()
	if err := r.restart(ctx, c); err != nil {
		return row{}, 0, err
	}
	before := r.sent.Load()
	sc := Scenario{ShapeTypical, 100}
	res, err := playScenario(ctx, r, corp, sc, 1, c.Duration)
	r.hecOnly += r.sent.Load() - before
	if err != nil {
		return row{}, 0, fmt.Errorf("%s, HEC only: %w", sc, err)
	}
	gz := "gzip on"
	for _, kv := range c.Settings {
		if k, v, _ := strings.Cut(kv, "="); strings.EqualFold(k, "Destinations__splunk__Gzip") && v == "false" {
			gz = "gzip off"
		}
	}
	rw := res.row(sc, 1, "Splunk HEC only, "+gz+", GOMAXPROCS=1")
	if res.cpu > 0 {
		rw.vsBaseline = float64(res.records) / res.cpu.Seconds() / basePerSec
	}
	r.env = all
	if err := r.restart(ctx, c); err != nil {
		return row{}, 0, err
	}
	return rw, res.cpu, nil
}

// verify checks that every record reached every receiver and nothing was dead-lettered, as
// it must in a healthy run, and says so.
func (r *rig) verify(ctx context.Context, out io.Writer) error {
	// Records sent while only HEC was on reached HEC alone.
	want := r.sent.Load() - r.hecOnly
	wantHEC := want + r.hecOnly + r.peer
	// The TCP receivers may still be reading what the handler wrote and flushed.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (int64(r.hec.Count()) < wantHEC || r.syslog.Frames() < want || r.cef.Frames() < want) {
		time.Sleep(50 * time.Millisecond)
	}
	var problems []error
	fmt.Fprintf(out, "delivered: %d records sent in invocations answered 200 (%d of them to HEC alone), %d posted by the Node peer; Splunk HEC got %d, syslog %d, CEF %d\n", want+r.hecOnly, r.hecOnly, r.peer, r.hec.Count(), r.syslog.Frames(), r.cef.Frames())
	for name, c := range map[string][2]int64{"Splunk HEC": {int64(r.hec.Count()), wantHEC}, "syslog": {r.syslog.Frames(), want}, "CEF": {r.cef.Frames(), want}} {
		if got, want := c[0], c[1]; got != want {
			problems = append(problems, fmt.Errorf("%s received %d records, want %d", name, got, want))
		}
	}
	for _, e := range append(r.syslog.Errors(), r.cef.Errors()...) {
		problems = append(problems, fmt.Errorf("collector: %w", e))
	}
	if n := r.failures.Load(); n > 0 {
		problems = append(problems, fmt.Errorf("%d invocations were not answered 200", n))
	}
	letters, err := r.deadLetters(ctx)
	switch {
	case err != nil:
		problems = append(problems, fmt.Errorf("listing dead letters: %w", err))
	case letters == 0:
		fmt.Fprintln(out, "dead letters: none, as a healthy run must have")
	default:
		problems = append(problems, fmt.Errorf("%d dead letters in a healthy run", letters))
	}
	r.logs.mu.Lock()
	fmt.Fprintf(out, "handler log: %d warnings, %d errors\n", r.logs.warnings, r.logs.errors)
	for _, l := range r.logs.first {
		fmt.Fprintln(out, "  "+l)
	}
	r.logs.mu.Unlock()
	return errors.Join(problems...)
}

// deadLetters counts the dead letters through the operator's DeadLetters function, parked
// ones included.
func (r *rig) deadLetters(ctx context.Context) (int, error) {
	env := hostsim.HTTPEnvelope("GET", "http://localhost:7071/api/deadletters/list?parked=true&limit=1000", map[string]string{"action": "list"}, "")
	res, err := r.host.Invoke(ctx, server.DeadLettersFunction, env)
	if err != nil {
		return 0, err
	}
	var answer struct {
		StatusCode string `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(res.Response.Outputs["res"], &answer); err != nil {
		return 0, fmt.Errorf("HTTP %d, answer %.200s: %w", res.Status, res.Body, err)
	}
	if answer.StatusCode != "200" {
		return 0, fmt.Errorf("DeadLetters answered %s: %.300s", answer.StatusCode, answer.Body)
	}
	var letters []json.RawMessage
	if err := json.Unmarshal([]byte(answer.Body), &letters); err != nil {
		return 0, fmt.Errorf("DeadLetters body: %w", err)
	}
	return len(letters), nil
}

// scenarioResult is what playing one scenario measured.
type scenarioResult struct {
	records, bytes int64
	wall, cpu      time.Duration
	latencies      []time.Duration
	peakRSS        int64
}

func (s scenarioResult) row(sc Scenario, partitions int, what string) row {
	rw := row{name: "handler: " + sc.String() + ", " + what, partitions: partitions, invocations: len(s.latencies), peakRSS: s.peakRSS}
	if s.wall > 0 {
		rw.recordsPerSec = float64(s.records) / s.wall.Seconds()
		rw.mbPerSec = float64(s.bytes) / 1e6 / s.wall.Seconds()
	}
	if s.records > 0 {
		rw.cpuPer1000 = s.cpu * 1000 / time.Duration(s.records)
	}
	rw.p50, rw.p99 = percentile(s.latencies, 50), percentile(s.latencies, 99)
	return rw
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 × n)
	return s[max(rank, 1)-1]
}

// envelopeBudget bounds the envelopes prepared per partition, so the tool's own memory stays
// modest even for the largest batches.
const envelopeBudget = 24 << 20

// playScenario prepares envelopes for each partition and plays them for d, one invocation at
// a time per partition.
func playScenario(ctx context.Context, r *rig, corp *corpus, s Scenario, partitions int, d time.Duration) (scenarioResult, error) {
	var res scenarioResult
	perPart := make([][][]byte, partitions)
	for p := range partitions {
		one, _, err := corp.envelopes(s.Shape, s.Batch, 1, strconv.Itoa(p))
		if err != nil {
			return res, err
		}
		count := min(64, max(2, envelopeBudget/len(one[0])))
		more, _, err := corp.envelopes(s.Shape, s.Batch, count-1, strconv.Itoa(p))
		if err != nil {
			return res, err
		}
		perPart[p] = append(one, more...)
	}
	// Warm up: the first invocation opens connections.
	for p := range partitions {
		if _, err := r.invoke(ctx, perPart[p][0], s.Batch); err != nil {
			return res, err
		}
	}
	pid := r.host.PID()
	peakReset := resetPeak(pid) == nil
	cpu0, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	start := time.Now()
	for p := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var records, size int64
			for k := 0; time.Since(start) < d; k++ {
				env := perPart[p][k%len(perPart[p])]
				el, err := r.invoke(ctx, env, s.Batch)
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
					return
				}
				lat = append(lat, el)
				records += int64(s.Batch)
				size += int64(len(env))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.records += records
			res.bytes += size
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	if firstErr != nil {
		return res, firstErr
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	_, peak, err := memory(pid)
	if err != nil {
		return res, err
	}
	if peakReset {
		res.peakRSS = peak
	} else {
		res.peakRSS = -peak // the peak since start: marked so the table says so
	}
	return res, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// invoke sends one envelope and counts its records as sent when the handler answers 2xx.
func (r *rig) invoke(ctx context.Context, env []byte, records int) (time.Duration, error) {
	res, err := r.host.Invoke(ctx, server.ForwardFunction, env)
	if err != nil {
		return 0, err
	}
	if !res.Succeeded() {
		r.failures.Add(1)
		return 0, fmt.Errorf("invocation answered HTTP %d: %.300s", res.Status, res.Body)
	}
	r.sent.Add(int64(records))
	return res.Elapsed, nil
}

// coldStarts starts the handler n more times with the same settings and returns the sorted
// times from exec to its first answer.
func coldStarts(ctx context.Context, c Config, r *rig) ([]time.Duration, error) {
	out := make([]time.Duration, 0, c.ColdStarts)
	for range c.ColdStarts {
		h := r.newHost(c)
		d, err := h.Start(ctx, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("cold start: %w", err)
		}
		if err := h.Stop(5 * time.Second); err != nil {
			return nil, fmt.Errorf("cold start: stop: %w", err)
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}

func printTable(out io.Writer, rows []row) {
	// Numbers align right; names are padded so that they read from the left.
	width := len("what")
	for _, r := range rows {
		width = max(width, utf8.RuneCountInString(r.name))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-utf8.RuneCountInString(s)) + "\t" }
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, pad("what")+"partitions\tinvocations\trecords/s\tMB/s\tp50 ms\tp99 ms\tCPU s/1k rec\tpeak RSS MB\tallocs/rec\tvs baseline\t")
	for _, r := range rows {
		cells := []string{
			pad(r.name),
			intCell(r.partitions), intCell(r.invocations),
			floatCell(r.recordsPerSec, 0), floatCell(r.mbPerSec, 1),
			durCell(r.p50), durCell(r.p99),
			secCell(r.cpuPer1000),
			rssCell(r.peakRSS),
			floatCell(r.allocsPerRecord, 1),
			ratioCell(r.vsBaseline),
		}
		fmt.Fprintln(tw, strings.Join(cells, ""))
	}
	_ = tw.Flush()
}

func intCell(n int) string {
	if n == 0 {
		return "-\t"
	}
	return strconv.Itoa(n) + "\t"
}

func floatCell(f float64, prec int) string {
	if f == 0 {
		return "-\t"
	}
	return strconv.FormatFloat(f, 'f', prec, 64) + "\t"
}

func durCell(d time.Duration) string {
	if d == 0 {
		return "-\t"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "\t"
}

func secCell(d time.Duration) string {
	if d == 0 {
		return "-\t"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "\t"
}

func rssCell(b int64) string {
	switch {
	case b == 0:
		return "-\t"
	case b < 0:
		// The kernel would not reset the peak: this is the peak since the handler started.
		return strconv.FormatFloat(float64(-b)/(1<<20), 'f', 1, 64) + " (since start)\t"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + "\t"
}

func ratioCell(f float64) string {
	if f == 0 {
		return "-\t"
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + "×\t"
}
