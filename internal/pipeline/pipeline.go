// Package pipeline is where the parts meet: it splits each Event Hub message into records,
// hands every record to each destination whose filter takes it, formats and sends it with
// retries inside the invocation's budget, writes whatever still failed to the dead-letter
// store, and clears the earlier dead letters of what it delivered. Its Report tells the handler whether every (record, destination) pair was delivered
// or stored, which is the only condition under which the invocation may succeed.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/retry"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Destination is one configured SIEM: what it takes, how it renders, where it sends.
type Destination struct {
	// Name is the configured name (Destinations__<name>__…), also the dead-letter partition.
	Name string
	// Type is the configured type (splunk_hec, syslog, cef, …), for logs.
	Type      string
	Filter    Filter
	Formatter format.Formatter
	Sink      sink.Sink
	Retry     retry.Policy
	// NeedsEntities says the formatter reads Alert.Entities. Decoding entities is most of
	// the cost of parsing an alert, so it is skipped when no destination reads them.
	NeedsEntities bool
}

// Store keeps what could not be delivered. Put returns nil only when every letter is stored.
type Store interface {
	Put(ctx context.Context, letters []deadletter.Letter) error
	// Forget deletes the letters with these ids, if stored: their records have just been
	// delivered. It is called after every delivery, so it must be cheap when nothing is
	// stored (deadletter.Store keeps marks for that).
	Forget(ctx context.Context, destination string, ids []string) error
}

// Options are the pipeline's collaborators.
type Options struct {
	// Store receives dead letters. When nil, any undelivered record fails the invocation so
	// that the host retries it.
	Store Store
	// Logger receives one line per problem and one summary per invocation.
	Logger *slog.Logger
	// Scrub removes secrets from error text before it is logged or stored.
	Scrub func(string) string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Pipeline processes Event Hubs batches. It is safe for concurrent use: the host may invoke
// the handler for several partitions at once.
type Pipeline struct {
	dests []Destination
	opts  Options
	parse alert.Options
	// lazyEntities says the one destination that reads entities decodes them record by
	// record as it formats, instead of every record carrying them for the whole invocation.
	lazyEntities bool
}

// extendedPropertiesRead is the union of the extended properties the destinations'
// formatters read: nil (all of them) when one does not say, empty when none reads any.
func extendedPropertiesRead(dests []Destination) []string {
	if len(dests) == 0 {
		return nil
	}
	names := []string{}
	for _, d := range dests {
		r, ok := d.Formatter.(format.ExtendedPropertiesReader)
		if !ok {
			return nil
		}
		for _, n := range r.ExtendedPropertiesRead() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// New returns a pipeline over dests.
func New(dests []Destination, opts Options) *Pipeline {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Scrub == nil {
		opts.Scrub = func(s string) string { return s }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Pipeline{dests: dests, opts: opts, parse: alert.Options{SkipEntities: true}}
	p.parse.OnlyExtendedProperties = extendedPropertiesRead(dests)
	p.parse.SkipExtendedProperties = p.parse.OnlyExtendedProperties != nil && len(p.parse.OnlyExtendedProperties) == 0
	p.parse.SummaryOnly = len(dests) > 0
	for _, d := range dests {
		if r, ok := d.Formatter.(format.SummaryReader); !ok || !r.ReadsSummaryOnly() {
			p.parse.SummaryOnly = false
		}
	}
	readers := 0
	for _, d := range dests {
		if d.NeedsEntities {
			readers++
		}
	}
	// Decoded entities are several times the size of their JSON and would otherwise be
	// held for the whole invocation (most of its memory for a large batch). With a single
	// reader, decoding them where they are used costs no more CPU; with several, decoding
	// once up front is cheaper.
	switch {
	case readers == 1:
		p.lazyEntities = true
	case readers > 1:
		p.parse.SkipEntities = false
	}
	return p
}

// DestinationReport counts one destination's outcome for one invocation.
type DestinationReport struct {
	Name         string
	Taken        int // records the filter took
	Delivered    int
	DeadLettered int
	Attempts     int // Send calls made
}

// Report is the outcome of one invocation.
type Report struct {
	Events      int
	Records     int
	Undecodable int
	// Unrouted counts records no destination took: counted and logged, not an error.
	Unrouted int
	// UnroutedKinds counts them by kind.
	UnroutedKinds map[alert.Kind]int
	// TimeFallbacks counts records whose time field was present but unreadable, whose time
	// then came from another field (alert.Record.TimeFallback).
	TimeFallbacks int
	Destinations  []DestinationReport
	// Err is non-nil when some (record, destination) pair is neither delivered nor stored:
	// the invocation must fail so that the host retries the batch.
	Err error
	// Logs are short lines for the invocation result, which the host writes to the
	// invocation's log.
	Logs []string
}

// Process delivers one batch. Deliveries stop retrying at deliverBy, leaving the rest of
// ctx's time to store dead letters.
func (p *Pipeline) Process(ctx context.Context, batch hostproto.Batch, deliverBy time.Time) Report {
	rep := Report{Events: len(batch.Events)}
	log := p.opts.Logger.With("partition", batch.Partition.PartitionID)

	var records []item
	var letters []deadletter.Letter
	for i := range batch.Events {
		ev := &batch.Events[i]
		recs, err := p.parse.ParseMessage(ev.Body)
		if err != nil {
			rep.Undecodable++
			msg := p.opts.Scrub(err.Error())
			log.Warn("undecodable message", "sequence", ev.SequenceNumber, "bytes", len(ev.Body), "err", msg)
			letters = append(letters, p.letter(batch, letterOf{ev: ev, dest: deadletter.UndecodablePartition, reason: sink.ReasonUndecodable, msg: msg, attempts: 1}))
			continue
		}
		for j := range recs {
			records = append(records, item{ev: ev, rec: &recs[j]})
		}
	}
	rep.Records = len(records)

	routed := make([]bool, len(records))
	dreps := make([]DestinationReport, len(p.dests))
	dletters := make([][]deadletter.Letter, len(p.dests))
	dctx, cancel := context.WithDeadline(ctx, deliverBy)
	defer cancel()
	var wg sync.WaitGroup
	for d := range p.dests {
		dest := &p.dests[d]
		var taken []int
		for i := range records {
			if dest.Filter.Accepts(records[i].rec) {
				taken = append(taken, i)
				routed[i] = true
			}
		}
		dreps[d] = DestinationReport{Name: dest.Name, Taken: len(taken)}
		if len(taken) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var delivered []string
			dletters[d], delivered = p.deliver(dctx, dest, batch, records, taken, &dreps[d])
			p.forget(dctx, log, dest, delivered)
		}()
	}
	wg.Wait()
	rep.Unrouted, rep.UnroutedKinds = reportUnrouted(log, records, routed)
	rep.TimeFallbacks = reportTimeFallbacks(log, records)
	for _, l := range dletters {
		letters = append(letters, l...)
	}

	if len(letters) > 0 {
		rep.Err = p.store(ctx, letters)
		if rep.Err == nil {
			for d := range dreps {
				dreps[d].DeadLettered = dreps[d].Taken - dreps[d].Delivered
			}
		}
	}
	rep.Destinations = dreps
	rep.summarise(log)
	return rep
}

// unroutedLogged is how many records taken by no destination are logged one by one in an
// invocation; the rest are only counted, so that a batch of 10,000 such records costs a few
// lines, not 10,000.
const unroutedLogged = 5

// reportUnrouted counts the records no destination took, by kind, and logs the first few with
// their coordinates and then one summary. Such a record is not an error (the settings chose
// to leave it out), but it must never vanish without a trace.
func reportUnrouted(log *slog.Logger, records []item, routed []bool) (int, map[alert.Kind]int) {
	n := 0
	var kinds map[alert.Kind]int
	for i, r := range routed {
		if r {
			continue
		}
		if kinds == nil {
			kinds = map[alert.Kind]int{}
		}
		n++
		it := records[i]
		kinds[it.rec.Kind]++
		if n <= unroutedLogged {
			log.Warn("record taken by no destination", "kind", it.rec.Kind, "sequence", it.ev.SequenceNumber, "record", it.rec.Index, "id", clip(it.rec.ID, 256))
		}
	}
	if n > 0 {
		log.Warn("records taken by no destination: no destination's Kinds, MinSeverity or subscription filter takes them", "records", n, "kinds", kindCounts(kinds), "logged", min(n, unroutedLogged))
	}
	return n, kinds
}

// reportTimeFallbacks counts the records whose time field could not be read and logs them
// once for the invocation, with one example's coordinates, whatever the destinations: every
// format then carries a time from another field.
func reportTimeFallbacks(log *slog.Logger, records []item) int {
	n := 0
	var first *item
	for i := range records {
		if records[i].rec.TimeFallback == "" {
			continue
		}
		if n == 0 {
			first = &records[i]
		}
		n++
	}
	if n > 0 {
		log.Warn("record times could not be read; their time comes from another field", "records", n,
			"fallback", clip(first.rec.TimeFallback, 256), "kind", first.rec.Kind, "sequence", first.ev.SequenceNumber, "record", first.rec.Index, "id", clip(first.rec.ID, 256))
	}
	return n
}

// kindCounts writes counts by kind as "alert=2,unknown=1", sorted by kind.
func kindCounts(kinds map[alert.Kind]int) string {
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%d", k, kinds[alert.Kind(k)])
	}
	return b.String()
}

// clip cuts s to at most n bytes, for record fields quoted in logs: the record may come from
// an attacker and be large.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// forget clears the earlier letters of records this invocation delivered to dest. The host
// may deliver a batch again with a retry context (its retry policy) or without one (after an
// instance failure or a rebalance, the batch is read again from the last checkpoint); either
// way a letter that outlives its record's delivery would make the replay send it a second
// time, and operators would chase failures that healed. It runs within the delivery budget,
// so the time kept for storing letters is not spent on it, and failing costs a duplicate
// later, not a record, so it does not fail the invocation.
func (p *Pipeline) forget(ctx context.Context, log *slog.Logger, dest *Destination, ids []string) {
	if p.opts.Store == nil || len(ids) == 0 {
		return
	}
	// A store that hangs must not hold every healthy invocation for the whole budget.
	ctx, cancel := context.WithTimeout(ctx, forgetTimeout)
	defer cancel()
	if err := p.opts.Store.Forget(ctx, dest.Name, ids); err != nil {
		log.Warn("could not clear earlier dead letters of records delivered now; a replay may send them again", "destination", dest.Name, "records", len(ids), "err", p.opts.Scrub(err.Error()))
	}
}

// forgetTimeout bounds the clearing of earlier letters after a delivery: normally one read
// of the store, so this is only reached when the store is unreachable or very slow.
const forgetTimeout = 10 * time.Second

type item struct {
	ev  *hostproto.Event
	rec *alert.Record
}

// deliver formats and sends one destination's records and returns the letters for what it
// could not deliver and the letter ids of what it delivered.
func (p *Pipeline) deliver(ctx context.Context, dest *Destination, batch hostproto.Batch, records []item, taken []int, rep *DestinationReport) (letters []deadletter.Letter, delivered []string) {
	d := &delivery{p: p, dest: dest, batch: batch, log: p.opts.Logger.With("destination", dest.Name, "partition", batch.Partition.PartitionID)}
	var sendable []int // the record of each payload, by position
	ws := [][]int{taken}
	if !sink.NeedsWholeBatch(dest.Sink) {
		ws = windows(records, taken)
	}
	s := d.send(ctx, rep, func(yield func(payloads [][]byte)) {
		for _, w := range ws {
			r := d.render(records, w)
			letters = append(letters, r.letters...)
			sendable = append(sendable, r.sendable...)
			yield(r.payloads)
		}
	})
	for k, i := range sendable {
		it := records[i]
		if s.ok[k] {
			if p.opts.Store != nil { // the ids are only for clearing earlier letters
				delivered = append(delivered, letterID(batch, it.ev, it.rec.Index))
			}
			continue
		}
		letters = append(letters, d.undelivered(it, s.failure(k), s.attempts))
	}
	return letters, delivered
}

// windowRawBytes bounds the input rendered for a destination before it is sent: a large batch
// is rendered and sent a window at a time in the first attempt, so that a destination holds one
// window of rendered records, not the whole batch, beside the batch itself. The default batch
// (100 events) is one window. A sink that can only vouch for a whole batch (sink.WholeBatch:
// syslog without RELP) gets the batch in one piece, as its failure must cover all of it.
const windowRawBytes = 2 << 20

// windows cuts taken into runs of at most windowRawBytes of raw records (at least one record
// each).
func windows(records []item, taken []int) [][]int {
	return sink.Runs(taken, func(i int) int { return len(records[i].rec.Raw) }, windowRawBytes, 0)
}

// delivery is one destination's share of one invocation.
type delivery struct {
	p     *Pipeline
	dest  *Destination
	batch hostproto.Batch
	log   *slog.Logger
}

// rendered is what the render step made of a destination's records: a payload for each
// record the formatter could render (sendable[k] is the record of payloads[k]) and a letter
// for each it could not.
type rendered struct {
	payloads [][]byte
	sendable []int
	letters  []deadletter.Letter
}

// render formats every taken record into chunks (see chunker); a record the formatter refuses
// becomes an unformattable letter at once, since sending it again cannot help.
func (d *delivery) render(records []item, taken []int) rendered {
	rawTotal := 0
	for _, i := range taken {
		rawTotal += len(records[i].rec.Raw)
	}
	c := chunker{rawLeft: rawTotal}
	r := rendered{payloads: make([][]byte, 0, len(taken)), sendable: make([]int, 0, len(taken))}
	for _, i := range taken {
		it := records[i]
		buf := c.next(len(it.rec.Raw))
		rec := it.rec
		if d.p.lazyEntities && d.dest.NeedsEntities {
			rec = withEntities(rec)
		}
		out, err := d.dest.Formatter.Format(buf, rec)
		if err != nil {
			// Formatters return plain errors: the record itself cannot be rendered.
			msg := d.p.opts.Scrub(err.Error())
			d.log.Warn("record cannot be formatted", "sequence", it.ev.SequenceNumber, "record", it.rec.Index, "kind", it.rec.Kind, "reason", sink.ReasonUnformattable, "err", msg)
			r.letters = append(r.letters, d.p.letter(d.batch, letterOf{ev: it.ev, rec: it.rec, dest: d.dest.Name, reason: sink.ReasonUnformattable, msg: msg}))
			continue
		}
		r.payloads = append(r.payloads, c.keep(out, len(it.rec.Raw)))
		r.sendable = append(r.sendable, i)
	}
	return r
}

// sent is the outcome of the send step, by position in the payloads.
type sent struct {
	ok       []bool
	lastErr  []error
	attempts int
	// err is what the retry loop ended with: the last retryable error, or the context's.
	err error
}

// failure is the error to store for payload k, which was not delivered.
func (s *sent) failure(k int) error {
	if e := s.lastErr[k]; e != nil {
		return e
	}
	// Never attempted: the budget ended first.
	if s.err != nil {
		return s.err
	}
	return sink.Retryable(sink.ReasonTimeout, 0, errors.New("not attempted before the deadline"))
}

// send delivers what render yields with the destination's retry policy. The first attempt
// sends each window of payloads as render yields it and keeps only those still to deliver;
// each later attempt sends only what is still pending, all at once, so a receiver that
// accepted a payload never sees it again in this invocation. render runs exactly once, even
// when no attempt could start, so that every record is accounted for.
func (d *delivery) send(ctx context.Context, rep *DestinationReport, render func(yield func(payloads [][]byte))) sent {
	var s sent
	var payloads [][]byte
	var pending []int // positions in payloads still to deliver
	rendered := false
	s.err = retry.Do(ctx, d.dest.Retry, func(actx context.Context) error {
		s.attempts++
		if rendered {
			var first error
			pending, first = d.attempt(actx, &s, payloads, pending, rep)
			return first
		}
		rendered = true
		var first error
		render(func(window [][]byte) {
			if len(window) == 0 {
				return // every record of the window was unformattable
			}
			base := len(payloads)
			payloads = append(payloads, window...)
			s.ok = append(s.ok, make([]bool, len(window))...)
			s.lastErr = append(s.lastErr, make([]error, len(window))...)
			positions := make([]int, len(window))
			for k := range positions {
				positions[k] = base + k
			}
			left, err := d.attempt(actx, &s, payloads, positions, rep)
			if first == nil {
				first = err
			}
			pending = append(pending, left...)
			// What was delivered or refused for good is not sent again: let its chunks go.
			for _, pos := range positions {
				if s.ok[pos] || s.lastErr[pos] != nil && sink.IsPermanent(s.lastErr[pos]) {
					payloads[pos] = nil
				}
			}
		})
		return first
	}, func(err error, attempt int, wait time.Duration) {
		d.log.Warn("delivery attempt failed, retrying", "attempt", attempt, "records", len(pending), "wait", wait, "reason", sink.ReasonOf(err), "err", d.p.opts.Scrub(err.Error()))
	})
	if !rendered {
		render(func(window [][]byte) {
			s.ok = append(s.ok, make([]bool, len(window))...)
			s.lastErr = append(s.lastErr, make([]error, len(window))...)
		})
	}
	rep.Attempts = s.attempts
	return s
}

// attempt sends the payloads at positions once and returns the positions still to deliver
// and the first retryable error.
func (d *delivery) attempt(ctx context.Context, s *sent, payloads [][]byte, positions []int, rep *DestinationReport) ([]int, error) {
	batchPayloads := make([][]byte, len(positions))
	for k, pos := range positions {
		batchPayloads[k] = payloads[pos]
	}
	errs := d.dest.Sink.Send(ctx, batchPayloads)
	var next []int
	var first error
	for k, pos := range positions {
		var e error
		if k < len(errs) {
			e = errs[k]
		} else {
			e = errNoResult
		}
		switch {
		case e == nil:
			s.ok[pos] = true
			rep.Delivered++
		case sink.IsPermanent(e):
			s.lastErr[pos] = e
		default:
			s.lastErr[pos] = e
			next = append(next, pos)
			if first == nil {
				first = e
			}
		}
	}
	return next, first
}

// errNoResult is the failure of a payload a sink returned no result for.
var errNoResult = sink.Retryable(sink.ReasonUnreachable, 0, errors.New("transport returned no result"))

// undelivered logs a record the send step could not deliver and returns its letter. A letter
// counts this invocation's attempts; the store adds those of earlier host runs of the same
// batch when it overwrites their letter.
func (d *delivery) undelivered(it item, e error, attempts int) deadletter.Letter {
	reason := sink.ReasonOf(e)
	msg := d.p.opts.Scrub(e.Error())
	d.log.Error("record not delivered", "sequence", it.ev.SequenceNumber, "record", it.rec.Index, "kind", it.rec.Kind, "reason", reason, "attempts", attempts, "err", msg)
	return d.p.letter(d.batch, letterOf{ev: it.ev, rec: it.rec, dest: d.dest.Name, reason: reason, msg: msg, attempts: attempts})
}

// chunker hands out the buffers records are rendered into, each payload a slice of one chunk.
// One buffer for the whole batch would double its way up to the batch's size, leaving as much
// garbage as it keeps; chunks are written once and waste at most the end of each. A chunk is
// sized for the input still to render, at the output-to-input ratio seen so far plus a tenth,
// capped at maxChunkBytes; the first, before there is a ratio, at most firstChunkBytes.
type chunker struct {
	chunk   []byte
	before  int // where the record being rendered starts in chunk
	rawLeft int // raw bytes of the records not yet handed a buffer
	largest int // largest rendered record so far
	rawDone int // raw bytes of the records rendered so far
	outDone int // their rendered bytes
}

// next returns the buffer to append a record of rawLen raw bytes to.
func (c *chunker) next(rawLen int) []byte {
	if need := max(2*c.largest, rawLen+chunkHeadroom); cap(c.chunk)-len(c.chunk) < need {
		// Until a record shows how output compares with input (a CEF line is shorter than
		// its alert, an HEC event a little longer), start small.
		size := min(c.rawLeft+c.rawLeft/4+chunkHeadroom, firstChunkBytes)
		if c.rawDone > 0 {
			size = int(int64(c.rawLeft) * int64(c.outDone) / int64(c.rawDone) * 11 / 10)
		}
		c.chunk = make([]byte, 0, max(need, min(size, maxChunkBytes)))
	}
	c.rawLeft -= rawLen
	c.before = len(c.chunk)
	return c.chunk
}

// keep takes the buffer next returned with the record appended (out) and returns the
// record's payload, capped so that appending to it cannot overwrite the next one. A record
// the formatter refused is simply not kept.
func (c *chunker) keep(out []byte, rawLen int) []byte {
	before := c.before
	if before > 0 && cap(out) != cap(c.chunk) {
		// The record outgrew the chunk, which append copied: start a chunk with just this
		// record, so that the copy of the earlier ones is not kept.
		out = append(make([]byte, 0, max(2*(len(out)-before), chunkHeadroom)), out[before:]...)
		before = 0
	}
	c.chunk = out
	c.largest = max(c.largest, len(out)-before)
	c.rawDone += rawLen
	c.outDone += len(out) - before
	return out[before:len(out):len(out)]
}

// withEntities returns rec with its alert's entities decoded, as a copy: rec is shared with
// the other destinations' goroutines and must not change.
func withEntities(rec *alert.Record) *alert.Record {
	if rec.Alert == nil || rec.Alert.Entities != nil || len(rec.Alert.EntitiesJSON) == 0 {
		return rec
	}
	a := *rec.Alert
	a.DecodeEntities()
	r := *rec
	r.Alert = &a
	return &r
}

// Chunk sizes (see chunker). chunkHeadroom is what a format may add to a small record.
const (
	maxChunkBytes   = 1 << 20
	firstChunkBytes = 64 << 10
	chunkHeadroom   = 4 << 10
)

// letterOf is what a dead letter is made from.
type letterOf struct {
	ev *hostproto.Event
	// rec is the record that failed; nil when the message itself could not be split into
	// records, whose letter then holds the whole message.
	rec      *alert.Record
	dest     string
	reason   sink.Reason
	msg      string // the error text, already scrubbed
	attempts int    // this invocation's attempts
}

func (p *Pipeline) letter(batch hostproto.Batch, o letterOf) deadletter.Letter {
	now := p.opts.Now().UTC()
	index, kind, payload := 0, "", o.ev.Body
	if o.rec != nil {
		index, kind, payload = o.rec.Index, string(o.rec.Kind), o.rec.Raw
	}
	l := deadletter.Letter{
		Destination:  o.dest,
		Kind:         kind,
		Reason:       o.reason,
		Error:        o.msg,
		Attempts:     o.attempts,
		FirstFailure: now,
		LastFailure:  now,
		Coordinates: deadletter.Coordinates{
			Partition:      batch.Partition.PartitionID,
			SequenceNumber: o.ev.SequenceNumber,
			Offset:         o.ev.Offset,
			EnqueuedTime:   o.ev.EnqueuedTime,
			Index:          index,
		},
		Payload: payload,
	}
	l.ID = letterID(batch, o.ev, index)
	if rec := o.rec; rec != nil {
		if rec.Alert != nil {
			l.AlertID = rec.Alert.SystemAlertID
		}
		if l.AlertID == "" && rec.Kind == alert.KindAlert {
			l.AlertID = rec.ID
		}
		l.Severity = rec.Severity.String()
	}
	return l
}

// letterID is the dead-letter id of a record: its Event Hub coordinates, so that a retried
// batch overwrites (or clears) its own letters.
func letterID(batch hostproto.Batch, ev *hostproto.Event, index int) string {
	if !ev.HasCoordinates {
		// Without coordinates the content is the only stable identity: a host retry of the
		// same batch must still overwrite, and two different records must never collide.
		sum := sha256.Sum256(ev.Body)
		return "nocoord-" + hex.EncodeToString(sum[:16]) + "-" + strconv.Itoa(index)
	}
	return deadletter.RowKey(deadletter.Coordinates{
		Partition:      batch.Partition.PartitionID,
		SequenceNumber: ev.SequenceNumber,
		Offset:         ev.Offset,
		EnqueuedTime:   ev.EnqueuedTime,
		Index:          index,
	})
}

func (p *Pipeline) store(ctx context.Context, letters []deadletter.Letter) error {
	if p.opts.Store == nil {
		return fmt.Errorf("%d record deliveries failed and no dead-letter store is configured", len(letters))
	}
	if err := p.opts.Store.Put(ctx, letters); err != nil {
		return fmt.Errorf("dead-letter store: %d letters not stored: %w", len(letters), err)
	}
	return nil
}

func (r *Report) summarise(log *slog.Logger) {
	r.Logs = append(r.Logs, fmt.Sprintf("events=%d records=%d undecodable=%d unrouted=%d", r.Events, r.Records, r.Undecodable, r.Unrouted))
	if r.Unrouted > 0 {
		r.Logs = append(r.Logs, "unrouted_kinds="+kindCounts(r.UnroutedKinds))
	}
	if r.TimeFallbacks > 0 {
		r.Logs = append(r.Logs, fmt.Sprintf("time_fallbacks=%d", r.TimeFallbacks))
	}
	for _, d := range r.Destinations {
		r.Logs = append(r.Logs, fmt.Sprintf("destination=%s taken=%d delivered=%d dead_lettered=%d attempts=%d", d.Name, d.Taken, d.Delivered, d.DeadLettered, d.Attempts))
	}
	if r.Err != nil {
		r.Logs = append(r.Logs, "failed: "+r.Err.Error())
		log.Error("invocation failed, the host will retry the batch", "events", r.Events, "records", r.Records, "err", r.Err.Error())
		return
	}
	log.Info("invocation done", "events", r.Events, "records", r.Records, "undecodable", r.Undecodable, "unrouted", r.Unrouted)
}
