package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"

	"github.com/defender-siem/forwarder/internal/alert"
	hecformat "github.com/defender-siem/forwarder/internal/format/hec"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/server"
)

// The JSON comparison decides which JSON layer the forwarder should use: it runs the same
// work (one alert body in, one HEC envelope out) through the candidate libraries and through
// the product's own code, interleaved in one process on one core, and reports the ratios.

// alertFields is the 15-field struct the library candidates decode each alert into. The
// ARM shape keeps its fields under "properties", hence the one nested field, and names two
// of them differently (its id and timeGeneratedUtc).
type alertFields struct {
	SystemAlertID     string       `json:"SystemAlertId"`
	AlertType         string       `json:"AlertType"`
	AlertDisplayName  string       `json:"AlertDisplayName"`
	Severity          string       `json:"Severity"`
	Status            string       `json:"Status"`
	Intent            string       `json:"Intent"`
	CompromisedEntity string       `json:"CompromisedEntity"`
	ID                string       `json:"id"`
	AzureResourceID   string       `json:"AzureResourceId"`
	Description       string       `json:"Description"`
	StartTimeUTC      time.Time    `json:"StartTimeUtc"`
	EndTimeUTC        time.Time    `json:"EndTimeUtc"`
	TimeGenerated     time.Time    `json:"TimeGenerated"`
	TimeGeneratedUTC  time.Time    `json:"timeGeneratedUtc"`
	Properties        *alertFields `json:"properties"`
}

// hecEnvelope is the HEC event the candidates write, with the members the product's
// formatter writes; the event is the body as it came.
type hecEnvelope struct {
	Time       float64         `json:"time,omitempty"`
	Source     string          `json:"source,omitempty"`
	SourceType string          `json:"sourcetype"`
	Index      string          `json:"index,omitempty"`
	Fields     hecFields       `json:"fields"`
	Event      json.RawMessage `json:"event"`
}

type hecFields struct {
	AlertID        string `json:"alert_id,omitempty"`
	AlertType      string `json:"alert_type,omitempty"`
	Kind           string `json:"kind,omitempty"`
	Severity       string `json:"severity,omitempty"`
	Status         string `json:"status,omitempty"`
	SubscriptionID string `json:"subscription_id,omitempty"`
}

// envelopeOf fills the HEC envelope from a decoded alert: the same choices as the product's
// formatter (the time generated, else the start; epoch seconds to the millisecond; the export's
// status "New" under its REST name "Active"; the subscription id in lower case).
func envelopeOf(a *alertFields, body []byte) hecEnvelope {
	resource := a.AzureResourceID
	if a.Properties != nil {
		resource = a.ID
		a = a.Properties
	}
	t := a.TimeGenerated
	if t.IsZero() {
		t = a.TimeGeneratedUTC
	}
	if t.IsZero() {
		t = a.StartTimeUTC
	}
	status := a.Status
	if strings.EqualFold(status, "New") {
		status = "Active"
	}
	env := hecEnvelope{
		Source:     hecformat.DefaultSource,
		SourceType: "mscs:azure:security:alert",
		Index:      "defender",
		Fields: hecFields{
			AlertID: a.SystemAlertID, AlertType: a.AlertType, Kind: "alert",
			Severity: a.Severity, Status: status, SubscriptionID: strings.ToLower(subscriptionOf(resource)),
		},
		Event: body,
	}
	if t.Unix() > 0 {
		env.Time = float64(t.UnixMilli()) / 1000
	}
	return env
}

// subscriptionOf returns the subscription id of an ARM resource id.
func subscriptionOf(id string) string {
	const marker = "/subscriptions/"
	i := strings.Index(strings.ToLower(id), marker)
	if i < 0 {
		return ""
	}
	rest := id[i+len(marker):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// jsonWay is one candidate. run turns every record of the corpus into a HEC envelope and
// hands each to emit, returning the records done.
type jsonWay struct {
	name string
	run  func(emit func([]byte)) (int, error)
}

// jsonCorpus is the comparison's input: the alert bodies, and the same bodies as 100-event
// host invocations for the product's path, which starts from what the host sends.
type jsonCorpus struct {
	bodies    [][]byte
	envelopes [][]byte
	bytes     int64 // of the bodies
}

func newJSONCorpus(c *corpus, records int) (*jsonCorpus, error) {
	const batch = 100
	if records < batch || records%batch != 0 {
		return nil, fmt.Errorf("records: want a positive multiple of %d, got %d", batch, records)
	}
	jc := &jsonCorpus{}
	envs, _, err := c.envelopes(ShapeTypical, batch, records/batch, "0")
	if err != nil {
		return nil, err
	}
	jc.envelopes = envs
	// The bodies are read back from the envelopes, so that every way handles the same alerts.
	for _, env := range envs {
		req, err := hostproto.ParseInvokeRequest(env)
		if err != nil {
			return nil, err
		}
		b, err := hostproto.DecodeEventHubBatch(&req, server.TriggerBinding)
		if err != nil {
			return nil, err
		}
		for _, ev := range b.Events {
			jc.bodies = append(jc.bodies, ev.Body)
			jc.bytes += int64(len(ev.Body))
		}
	}
	return jc, nil
}

// codec is one library's pair of functions.
type codec struct {
	unmarshal func([]byte, any) error
	marshal   func(any) ([]byte, error)
}

// record is the classic approach for one alert body: decode into alertFields, marshal the
// envelope with the event as a raw message.
func (c codec) record(name string, n int, body []byte, emit func([]byte)) error {
	var a alertFields
	if err := c.unmarshal(body, &a); err != nil {
		return fmt.Errorf("%s: record %d: %w", name, n, err)
	}
	env := envelopeOf(&a, body)
	out, err := c.marshal(&env)
	if err != nil {
		return fmt.Errorf("%s: record %d: %w", name, n, err)
	}
	emit(out)
	return nil
}

// structWay is the classic approach with the given library, from the alert bodies.
func structWay(name string, jc *jsonCorpus, c codec) jsonWay {
	return jsonWay{name: name, run: func(emit func([]byte)) (int, error) {
		for i, body := range jc.bodies {
			if err := c.record(name, i, body, emit); err != nil {
				return i, err
			}
		}
		return len(jc.bodies), nil
	}}
}

// hostEnvelope is the part of a Functions host invocation the library ways decode: the
// events, a JSON array of strings inside a JSON string, and the coordinates, JSON arrays
// inside strings too.
type hostEnvelope struct {
	Data struct {
		Events string `json:"events"`
	} `json:"Data"`
	Metadata struct {
		SequenceNumberArray  string `json:"SequenceNumberArray"`
		OffsetArray          string `json:"OffsetArray"`
		EnqueuedTimeUtcArray string `json:"EnqueuedTimeUtcArray"`
		PartitionContext     struct {
			PartitionID string `json:"PartitionId"`
		} `json:"PartitionContext"`
	} `json:"Metadata"`
}

// envelopeWay is structWay starting, as ours does, from the host invocations: the library
// undoes the two layers of the envelope (the string, then the array of strings) and reads
// each event's coordinates, then does what structWay does.
func envelopeWay(name string, jc *jsonCorpus, c codec) jsonWay {
	return jsonWay{name: name, run: func(emit func([]byte)) (int, error) {
		n := 0
		for _, raw := range jc.envelopes {
			var env hostEnvelope
			if err := c.unmarshal(raw, &env); err != nil {
				return n, fmt.Errorf("%s: envelope: %w", name, err)
			}
			var events []string
			var seqs []int64
			var offsets []string
			var enqueued []time.Time
			for _, f := range []struct {
				text string
				dst  any
			}{
				{env.Data.Events, &events}, {env.Metadata.SequenceNumberArray, &seqs},
				{env.Metadata.OffsetArray, &offsets}, {env.Metadata.EnqueuedTimeUtcArray, &enqueued},
			} {
				if err := c.unmarshal([]byte(f.text), f.dst); err != nil {
					return n, fmt.Errorf("%s: envelope: %w", name, err)
				}
			}
			if len(seqs) != len(events) || len(offsets) != len(events) || len(enqueued) != len(events) {
				return n, fmt.Errorf("%s: envelope: %d events, %d coordinates", name, len(events), len(seqs))
			}
			for _, ev := range events {
				if err := c.record(name, n, []byte(ev), emit); err != nil {
					return n, err
				}
				n++
			}
		}
		return n, nil
	}}
}

// oursHEC is the product's record path for a HEC destination: record parse with entities and
// extended properties skipped (as the pipeline does when no destination reads them) and the
// HEC formatter, through the packages' public API.
type oursHEC struct {
	f   *hecformat.Formatter
	buf []byte
}

func newOursHEC() *oursHEC {
	cfg := hecformat.DefaultConfig()
	cfg.Index = "defender"
	return &oursHEC{f: hecformat.New(cfg)}
}

func (o *oursHEC) record(n int, body []byte, emit func([]byte)) error {
	recs, err := alert.Options{SkipEntities: true, SkipExtendedProperties: true}.ParseMessage(body)
	if err != nil {
		return fmt.Errorf("ours: record %d: %w", n, err)
	}
	for i := range recs {
		if o.buf, err = o.f.Format(o.buf[:0], &recs[i]); err != nil {
			return fmt.Errorf("ours: record %d: %w", n, err)
		}
		emit(o.buf)
	}
	return nil
}

// oursWay is the product's path from the host invocations: the host envelope decode as the
// server does it, then oursHEC.
func oursWay(jc *jsonCorpus) jsonWay {
	o := newOursHEC()
	return jsonWay{name: "ours: envelope decode + alert.Parse + HEC formatter", run: func(emit func([]byte)) (int, error) {
		n := 0
		for _, env := range jc.envelopes {
			req, err := hostproto.ParseInvokeRequest(env)
			if err != nil {
				return n, err
			}
			b, err := hostproto.DecodeEventHubBatch(&req, server.TriggerBinding)
			if err != nil {
				return n, err
			}
			for _, ev := range b.Events {
				if err := o.record(n, ev.Body, emit); err != nil {
					return n, err
				}
				n++
			}
		}
		return n, nil
	}}
}

// Names of the ways the ratios are taken against.
const (
	wayClassic = "a: encoding/json, 15-field struct + HEC envelope"
	wayGoccy   = "b: goccy/go-json v0.10.5, the same code"
	waySonic   = "b2: bytedance/sonic v1.15.5 (ConfigDefault), the same code"
	// ConfigStd behaves as encoding/json does: it validates strings and escapes HTML, which
	// ConfigDefault skips.
	waySonicStd = "b3: bytedance/sonic v1.15.5 (ConfigStd), the same code"
	// ConfigDefault passes bytes that are not UTF-8 through, which Splunk may refuse; this is
	// what the UTF-8 check the product promises adds to it.
	waySonicUTF8 = "b4: bytedance/sonic ConfigDefault + utf8.Valid of each body"
)

// jsonWays returns every way this build can measure: the classic code, with goccy, with the
// encoding/json/v2 API when built with GOEXPERIMENT=jsonv2; the first two again from the
// host envelopes, as ours starts; ours from the bodies; and ours from the host envelopes last
// (the one the ratios are of).
func jsonWays(jc *jsonCorpus) []jsonWay {
	classic := wayClassic
	if jsonv2Experiment {
		classic += " (built with GOEXPERIMENT=jsonv2: the v2 engine underneath)"
	}
	std := codec{json.Unmarshal, func(v any) ([]byte, error) { return json.Marshal(v) }}
	goccy := codec{gojson.Unmarshal, func(v any) ([]byte, error) { return gojson.Marshal(v) }}
	sonicDefault := codec{sonic.Unmarshal, sonic.Marshal}
	ways := []jsonWay{
		structWay(classic, jc, std),
		structWay(wayGoccy, jc, goccy),
		structWay(waySonic, jc, sonicDefault),
		structWay(waySonicStd, jc, codec{sonic.ConfigStd.Unmarshal, sonic.ConfigStd.Marshal}),
		structWay(waySonicUTF8, jc, codec{func(b []byte, v any) error {
			if !utf8.Valid(b) {
				return errors.New("not UTF-8: the repairing path would take it")
			}
			return sonic.Unmarshal(b, v)
		}, sonic.Marshal}),
	}
	if v2Way != nil {
		ways = append(ways, v2Way(jc))
	}
	ways = append(ways,
		envelopeWay("a+: encoding/json, the same from the host envelopes", jc, std),
		envelopeWay("b+: goccy/go-json, the same from the host envelopes", jc, goccy),
		envelopeWay("b2+: bytedance/sonic, the same from the host envelopes", jc, sonicDefault),
	)
	return append(ways, oursRecordsWay(jc), oursWay(jc))
}

// oursRecordsWay is ours without the host envelope decode: the same work as the library
// ways, which start from the alert bodies, so that the two parts of ours can be told apart.
func oursRecordsWay(jc *jsonCorpus) jsonWay {
	o := newOursHEC()
	return jsonWay{name: "ours, bodies only: alert.Parse + HEC formatter (no host envelope)", run: func(emit func([]byte)) (int, error) {
		for n, body := range jc.bodies {
			if err := o.record(n, body, emit); err != nil {
				return n, err
			}
		}
		return len(jc.bodies), nil
	}}
}

// v2Way is set by the file built with GOEXPERIMENT=jsonv2.
var v2Way func(*jsonCorpus) jsonWay

// wayResult is what the interleaved runs measured for one way.
type wayResult struct {
	name    string
	records int64
	elapsed time.Duration
	cpu     time.Duration
	allocs  uint64
}

// perSecond is the way's records per second of this process's CPU time: on a machine shared
// with other work, wall time also counts the waits for a core, which interleaving spreads
// over every way but does not remove. Wall time stands in where no CPU time was measured.
func (w wayResult) perSecond() float64 {
	if w.cpu > 0 {
		return float64(w.records) / w.cpu.Seconds()
	}
	return w.perWallSecond()
}

func (w wayResult) perWallSecond() float64 { return float64(w.records) / w.elapsed.Seconds() }

// compareJSON runs every way over the whole corpus, interleaved (see interleave), on one
// core. Interleaving is what makes the ratios worth reading on a shared machine: a burst of
// load slows every way alike.
func compareJSON(ctx context.Context, ways []jsonWay, d time.Duration, minRounds int) ([]wayResult, error) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	sink := 0
	emit := func(b []byte) { sink += len(b) }
	res := make([]wayResult, len(ways))
	for i, w := range ways {
		res[i].name = w.name
		if _, err := w.run(emit); err != nil { // warm up
			return nil, err
		}
	}
	var before, after runtime.MemStats
	err := interleave(ctx, len(ways), d, minRounds, func(i int) error {
		runtime.ReadMemStats(&before)
		c0, cerr := processCPU()
		t0 := time.Now()
		n, err := ways[i].run(emit)
		el := time.Since(t0)
		c1, cerr1 := processCPU()
		runtime.ReadMemStats(&after)
		res[i].records += int64(n)
		res[i].elapsed += el
		if cerr == nil && cerr1 == nil {
			res[i].cpu += c1 - c0
		}
		res[i].allocs += after.Mallocs - before.Mallocs
		return err
	})
	runtime.KeepAlive(sink)
	return res, err
}

// interleave calls step for each of n ways in turn, round after round, the order rotating so
// that no way always follows the same one, until d has passed and at least minRounds rounds
// are done, or step or ctx fails.
func interleave(ctx context.Context, n int, d time.Duration, minRounds int, step func(i int) error) error {
	start := time.Now()
	for round := 0; round < minRounds || time.Since(start) < d; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		for k := range n {
			if err := step((k + round) % n); err != nil {
				return err
			}
		}
	}
	return nil
}

// ratio returns ours' records/s over the named way's, or 0 when that way was not measured.
func ratio(res []wayResult, of string) float64 {
	ours := res[len(res)-1]
	i := slices.IndexFunc(res, func(w wayResult) bool { return strings.HasPrefix(w.name, of) })
	if i < 0 {
		return 0
	}
	return ours.perSecond() / res[i].perSecond()
}

// printJSONTable prints the comparison: each way's rate, against the classic way and against
// ours, then the two ratios the goal names.
func printJSONTable(out io.Writer, jc *jsonCorpus, res []wayResult) {
	classic := res[0].perSecond()
	ours := res[len(res)-1].perSecond()
	fmt.Fprintf(out, "JSON layer, %d alerts (%.1f MB, %.0f bytes mean), interleaved, GOMAXPROCS=1, ratios of CPU time, %s\n",
		len(jc.bodies), float64(jc.bytes)/1e6, float64(jc.bytes)/float64(len(jc.bodies)), runtime.Version())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "way\trecords per CPU-second\tMB per CPU-second\trecords/s of wall time\tallocs/record\tvs a\tours / this\t")
	mb := float64(jc.bytes) / float64(len(jc.bodies)) / 1e6
	for _, w := range res {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.0f\t%.1f\t%.2f×\t%.2f×\t\n", w.name, w.perSecond(), w.perSecond()*mb, w.perWallSecond(),
			float64(w.allocs)/float64(w.records), w.perSecond()/classic, ours/w.perSecond())
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "ours/(a) = %.2f×   ours/(b) = %.2f×   ours/(b2) = %.2f×   ours/(b3) = %.2f×   ours/(b4) = %.2f×", ratio(res, "a:"), ratio(res, "b:"), ratio(res, "b2:"), ratio(res, "b3:"), ratio(res, "b4:"))
	if r := ratio(res, "c:"); r > 0 {
		fmt.Fprintf(out, "   ours/(c) = %.2f×", r)
	}
	fmt.Fprintln(out, "   (goal: ours/(b) ≥ 1)")
	fmt.Fprintf(out, "from the host envelopes alike: ours/(a+) = %.2f×   ours/(b+) = %.2f×   ours/(b2+) = %.2f×\n", ratio(res, "a+:"), ratio(res, "b+:"), ratio(res, "b2+:"))
}

// runJSON is the -json mode: the comparison on its own, in process.
func runJSON(ctx context.Context, c Config, corp *corpus, out io.Writer) error {
	jc, err := newJSONCorpus(corp, c.JSONRecords)
	if err != nil {
		return err
	}
	res, err := compareJSON(ctx, jsonWays(jc), c.InProcess, 3)
	if err != nil {
		return err
	}
	printJSONTable(out, jc, res)
	return nil
}
