// Package pipeline is where the parts meet: it splits each Event Hub message into records,
// hands every record to each destination whose filter takes it, formats and sends it with
// retries inside the invocation's budget, and writes whatever still failed to the dead-letter
// store. Its Report tells the handler whether every (record, destination) pair was delivered
// or stored, which is the only condition under which the invocation may succeed.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

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
	// Forget deletes the letters with these ids, if stored: their records were delivered on
	// a later attempt.
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
	Unrouted     int
	Destinations []DestinationReport
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
			letters = append(letters, p.letter(batch, ev, 0, deadletter.UndecodablePartition, "", sink.ReasonUndecodable, msg, 1, ev.Body, nil))
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
	dforget := make([][]string, len(p.dests))
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
			dletters[d], dforget[d] = p.deliver(dctx, dest, batch, records, taken, &dreps[d])
		}()
	}
	wg.Wait()
	for i := range routed {
		if !routed[i] {
			rep.Unrouted++
		}
	}
	if rep.Unrouted > 0 {
		log.Info("records taken by no destination", "records", rep.Unrouted)
	}
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
	// A host retry may deliver what its failed run stored: clear those letters, or the replay
	// would send them again and operators would chase failures that healed. Failing to clear
	// them costs a duplicate later, not a record, so it does not fail the invocation.
	if p.opts.Store != nil {
		for d, ids := range dforget {
			if len(ids) == 0 {
				continue
			}
			if err := p.opts.Store.Forget(ctx, p.dests[d].Name, ids); err != nil {
				log.Warn("could not clear dead letters of records delivered on this retry; a replay will send them again", "destination", p.dests[d].Name, "records", len(ids), "err", p.opts.Scrub(err.Error()))
			}
		}
	}
	rep.Destinations = dreps
	rep.summarise(log)
	return rep
}

type item struct {
	ev  *hostproto.Event
	rec *alert.Record
}

// deliver formats and sends one destination's records and returns the letters for what it
// could not deliver and, on a host retry, the letter ids of what it delivered.
func (p *Pipeline) deliver(ctx context.Context, dest *Destination, batch hostproto.Batch, records []item, taken []int, rep *DestinationReport) (letters []deadletter.Letter, delivered []string) {
	log := p.opts.Logger.With("destination", dest.Name, "partition", batch.Partition.PartitionID)
	// A letter counts this invocation's attempts; the store adds those of earlier host runs
	// of the same batch when it overwrites their letter.
	fail := func(it item, reason sink.Reason, msg string, attempts int) {
		letters = append(letters, p.letter(batch, it.ev, it.rec.Index, dest.Name, string(it.rec.Kind), reason, msg, attempts, it.rec.Raw, it.rec))
	}

	// Render into chunks sized from the input still to come, each payload a slice of one
	// chunk. One buffer for the whole batch would double its way up to the batch's size,
	// leaving as much garbage as it keeps; chunks are written once and waste at most the
	// end of each.
	rawLeft := 0
	for _, i := range taken {
		rawLeft += len(records[i].rec.Raw)
	}
	var chunk []byte
	payloads := make([][]byte, 0, len(taken))
	sendable := make([]int, 0, len(taken))
	largest, rawDone, outDone := 0, 0, 0
	for _, i := range taken {
		it := records[i]
		if need := max(2*largest, len(it.rec.Raw)+chunkHeadroom); cap(chunk)-len(chunk) < need {
			// Until a record shows how output compares with input (a CEF line is
			// shorter than its alert, an HEC event a little longer), start small.
			size := min(rawLeft+rawLeft/4+chunkHeadroom, firstChunkBytes)
			if rawDone > 0 {
				size = int(int64(rawLeft) * int64(outDone) / int64(rawDone) * 11 / 10)
			}
			chunk = make([]byte, 0, max(need, min(size, maxChunkBytes)))
		}
		rawLeft -= len(it.rec.Raw)
		before := len(chunk)
		rec := it.rec
		if p.lazyEntities && dest.NeedsEntities {
			rec = withEntities(rec)
		}
		out, err := dest.Formatter.Format(chunk, rec)
		if err != nil {
			reason := sink.ReasonUnformattable
			var se *sink.Error
			if errors.As(err, &se) && se.Reason != "" {
				reason = se.Reason
			}
			msg := p.opts.Scrub(err.Error())
			log.Warn("record cannot be formatted", "sequence", it.ev.SequenceNumber, "record", it.rec.Index, "kind", it.rec.Kind, "reason", reason, "err", msg)
			fail(it, reason, msg, 0)
			continue
		}
		if before > 0 && cap(out) != cap(chunk) {
			// The record outgrew the chunk, which append copied: start a chunk with
			// just this record, so that the copy of the earlier ones is not kept.
			out = append(make([]byte, 0, max(2*(len(out)-before), chunkHeadroom)), out[before:]...)
			before = 0
		}
		chunk = out
		largest = max(largest, len(chunk)-before)
		rawDone += len(it.rec.Raw)
		outDone += len(chunk) - before
		payloads = append(payloads, chunk[before:len(chunk):len(chunk)])
		sendable = append(sendable, i)
	}

	pending := make([]int, len(sendable)) // positions in payloads still to deliver
	for k := range pending {
		pending[k] = k
	}
	lastErr := make([]error, len(sendable))
	ok := make([]bool, len(sendable))
	attempts := 0
	err := retry.Do(ctx, dest.Retry, func(actx context.Context) error {
		attempts++
		batchPayloads := make([][]byte, len(pending))
		for k, pos := range pending {
			batchPayloads[k] = payloads[pos]
		}
		errs := dest.Sink.Send(actx, batchPayloads)
		var next []int
		var first error
		for k, pos := range pending {
			e := sink.Retryable(sink.ReasonUnreachable, 0, errors.New("transport returned no result"))
			if k < len(errs) {
				e = errs[k]
			}
			switch {
			case e == nil:
				ok[pos] = true
				rep.Delivered++
			case sink.IsPermanent(e):
				lastErr[pos] = e
			default:
				lastErr[pos] = e
				next = append(next, pos)
				if first == nil {
					first = e
				}
			}
		}
		pending = next
		return first
	}, func(err error, attempt int, wait time.Duration) {
		log.Warn("delivery attempt failed, retrying", "attempt", attempt, "records", len(pending), "wait", wait, "reason", sink.ReasonOf(err), "err", p.opts.Scrub(err.Error()))
	})
	rep.Attempts = attempts
	for k := range sendable {
		if ok[k] {
			if batch.Retry != nil {
				it := records[sendable[k]]
				delivered = append(delivered, letterID(batch, it.ev, it.rec.Index))
			}
			continue
		}
		e := lastErr[k]
		if e == nil {
			// Never attempted: the budget ended first.
			e = err
		}
		if e == nil {
			e = sink.Retryable(sink.ReasonTimeout, 0, errors.New("not attempted before the deadline"))
		}
		it := records[sendable[k]]
		reason := sink.ReasonOf(e)
		msg := p.opts.Scrub(e.Error())
		log.Error("record not delivered", "sequence", it.ev.SequenceNumber, "record", it.rec.Index, "kind", it.rec.Kind, "reason", reason, "attempts", attempts, "err", msg)
		fail(it, reason, msg, attempts)
	}
	return letters, delivered
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

// A chunk of rendered payloads is sized for the input still to render, at the output-to-input
// ratio seen so far plus a tenth, capped at maxChunkBytes; the first, before there is a ratio,
// at most firstChunkBytes. chunkHeadroom is what a format may add to a small record.
const (
	maxChunkBytes   = 1 << 20
	firstChunkBytes = 64 << 10
	chunkHeadroom   = 4 << 10
)

func (p *Pipeline) letter(batch hostproto.Batch, ev *hostproto.Event, index int, dest, kind string, reason sink.Reason, msg string, attempts int, payload []byte, rec *alert.Record) deadletter.Letter {
	now := p.opts.Now().UTC()
	l := deadletter.Letter{
		Destination:  dest,
		Kind:         kind,
		Reason:       reason,
		Error:        msg,
		Attempts:     attempts,
		FirstFailure: now,
		LastFailure:  now,
		Coordinates: deadletter.Coordinates{
			Partition:      batch.Partition.PartitionID,
			SequenceNumber: ev.SequenceNumber,
			Offset:         ev.Offset,
			EnqueuedTime:   ev.EnqueuedTime,
			Index:          index,
		},
		Payload: payload,
	}
	l.ID = letterID(batch, ev, index)
	if rec != nil {
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
