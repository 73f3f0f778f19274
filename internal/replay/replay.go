// Package replay sends dead letters again. It is what the ReplayDeadLetters timer, the
// operator's HTTP function and the `handler deadletters replay` command share: each letter is
// parsed from its stored bytes, rendered by its destination's formatter and sent once through
// its destination's transport; a delivered letter is deleted, a failed one records the new
// attempt and error, and after the configured number of attempts it is parked (kept, listed,
// replayed only by hand).
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Store is the part of the dead-letter store replay needs.
type Store interface {
	List(ctx context.Context, opts deadletter.ListOptions) ([]deadletter.Letter, error)
	Get(ctx context.Context, destination, id string) (deadletter.Letter, error)
	Delete(ctx context.Context, destination, id string) error
	Update(ctx context.Context, l deadletter.Letter) error
}

// Replayer re-sends dead letters to the configured destinations.
type Replayer struct {
	store       Store
	dests       map[string]*pipeline.Destination
	order       []string
	maxAttempts int
	log         *slog.Logger
	scrub       func(string) string
	now         func() time.Time
}

// New returns a Replayer. maxAttempts is DeadLetter__MaxAttempts: a letter that has failed that
// many times is parked.
func New(store Store, dests []pipeline.Destination, maxAttempts int, log *slog.Logger, scrub func(string) string) *Replayer {
	r := &Replayer{store: store, dests: map[string]*pipeline.Destination{}, maxAttempts: maxAttempts, log: log, scrub: scrub, now: time.Now}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.scrub == nil {
		r.scrub = func(s string) string { return s }
	}
	for i := range dests {
		r.dests[dests[i].Name] = &dests[i]
		r.order = append(r.order, dests[i].Name)
	}
	return r
}

// Options select what to replay.
type Options struct {
	// Destination limits the replay to one destination; empty means every configured one.
	Destination string
	// ID replays one letter (Destination must be set).
	ID string
	// Since replays letters whose record was enqueued at or after it.
	Since time.Time
	// IncludeParked replays parked letters too (an operator's choice; the timer never does).
	IncludeParked bool
	// Limit bounds the letters replayed per destination; 0 means no bound.
	Limit int
}

// Result counts one replay run.
type Result struct {
	Considered int `json:"considered"`
	Delivered  int `json:"delivered"`
	Failed     int `json:"failed"`
	// Parked counts letters that reached the attempt limit in this run.
	Parked int `json:"parked"`
	// Skipped counts letters replay cannot send: their destination is no longer configured,
	// or they hold a message that was never JSON.
	Skipped int `json:"skipped"`
}

// ErrUnknownDestination is returned when Options name a destination that is not configured.
var ErrUnknownDestination = errors.New("replay: no such destination configured")

// Replay re-sends the letters opts select, oldest first per destination. It returns an error
// only when the store cannot be read or written; failed deliveries are counted, not errors.
func (r *Replayer) Replay(ctx context.Context, opts Options) (Result, error) {
	var res Result
	names := r.order
	if opts.Destination != "" {
		if _, ok := r.dests[opts.Destination]; !ok && opts.Destination != deadletter.UndecodablePartition {
			return res, fmt.Errorf("%w: %q", ErrUnknownDestination, opts.Destination)
		}
		names = []string{opts.Destination}
	}
	for _, name := range names {
		var letters []deadletter.Letter
		if opts.ID != "" {
			letters = []deadletter.Letter{{Destination: name, ID: opts.ID}}
		} else {
			var err error
			letters, err = r.store.List(ctx, deadletter.ListOptions{Destination: name, Since: opts.Since, IncludeParked: opts.IncludeParked, Limit: opts.Limit})
			if err != nil {
				return res, err
			}
		}
		for _, summary := range letters {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			res.Considered++
			if err := r.one(ctx, summary.Destination, summary.ID, &res); err != nil {
				return res, err
			}
		}
	}
	r.log.Info("dead-letter replay done", "considered", res.Considered, "delivered", res.Delivered, "failed", res.Failed, "parked", res.Parked, "skipped", res.Skipped)
	return res, nil
}

func (r *Replayer) one(ctx context.Context, destName, id string, res *Result) error {
	log := r.log.With("destination", destName, "letter_id", id)
	dest, ok := r.dests[destName]
	if !ok {
		res.Skipped++
		log.Warn("dead letter kept: its destination is not configured (any more)")
		return nil
	}
	l, err := r.store.Get(ctx, destName, id)
	if err != nil {
		if errors.Is(err, deadletter.ErrNotFound) {
			res.Skipped++
			return nil
		}
		if errors.Is(err, deadletter.ErrCorrupt) {
			// Report it and go on: one damaged entity must not stop every other replay.
			res.Skipped++
			log.Error("dead letter is corrupt and cannot be replayed; inspect it in Storage Explorer", "err", err.Error())
			return nil
		}
		return err
	}
	sendErr := r.send(ctx, dest, &l)
	if sendErr == nil {
		if err := r.store.Delete(ctx, destName, id); err != nil {
			return fmt.Errorf("replay: delivered %s/%s but could not delete it (it will be sent again): %w", destName, id, err)
		}
		res.Delivered++
		log.Info("dead letter delivered")
		return nil
	}
	res.Failed++
	l.Attempts++
	l.Reason = sink.ReasonOf(sendErr)
	l.Error = r.scrub(sendErr.Error())
	l.LastFailure = r.now().UTC()
	if r.maxAttempts > 0 && l.Attempts >= r.maxAttempts && !l.Parked {
		l.Parked = true
		res.Parked++
		log.Warn("dead letter parked after too many attempts; replay it by hand", "attempts", l.Attempts)
	}
	log.Warn("dead letter replay failed", "reason", l.Reason, "attempts", l.Attempts, "err", l.Error)
	if err := r.store.Update(ctx, l); err != nil && !errors.Is(err, deadletter.ErrNotFound) {
		return err
	}
	return nil
}

// send renders the letter's record and makes one delivery attempt.
func (r *Replayer) send(ctx context.Context, dest *pipeline.Destination, l *deadletter.Letter) error {
	rec, err := alert.Parse(l.Payload, l.Coordinates.Index)
	if err != nil {
		return sink.Permanent(sink.ReasonUndecodable, fmt.Errorf("stored record does not parse: %w", err))
	}
	payload, err := dest.Formatter.Format(nil, &rec)
	if err != nil {
		return sink.Permanent(sink.ReasonUnformattable, err)
	}
	if dest.Retry.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dest.Retry.AttemptTimeout)
		defer cancel()
	}
	errs := dest.Sink.Send(ctx, [][]byte{payload})
	if len(errs) != 1 {
		return sink.Retryable(sink.ReasonUnreachable, 0, errors.New("transport returned no result"))
	}
	return errs[0]
}
