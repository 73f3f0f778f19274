// Package operator is what an operator does with dead letters: count, list, show, replay and
// purge them. The `handler deadletters` command line (cli.go) and the DeadLetters HTTP function
// (internal/server) both go through it, so a request is checked and carried out the same way
// whichever door it comes in by; each door only translates its own input and answers.
package operator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/replay"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Store is the part of the dead-letter store the operator's actions use; *deadletter.Store is
// one.
type Store interface {
	replay.Store
	Counts(ctx context.Context) (map[string]map[sink.Reason]deadletter.Count, error)
	Purge(ctx context.Context, opts deadletter.ListOptions) (int, error)
}

// Options are the operator's collaborators.
type Options struct {
	// Open returns the dead-letter store. It is called for every action, so that a handler
	// can open the table on first use and a storage outage fails one action, not the start.
	Open func(ctx context.Context) (Store, error)
	// Destinations are the configured destinations replay sends to.
	Destinations []pipeline.Destination
	// MaxAttempts is DeadLetter__MaxAttempts: replay parks a letter that has failed that
	// often.
	MaxAttempts int
	Logger      *slog.Logger
	// Scrub removes secrets from error text before it is stored.
	Scrub func(string) string
}

// Operator carries out operator actions on the dead-letter store.
type Operator struct {
	opts Options
}

// New returns an Operator.
func New(opts Options) *Operator {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Operator{opts: opts}
}

// Request selects letters for a list, replay or purge: the body of an HTTP replay or purge,
// and what the command line's flags fill in.
type Request struct {
	Destination   string `json:"destination"`
	ID            string `json:"id"`
	Since         string `json:"since"`
	IncludeParked bool   `json:"includeParked"`
	Limit         int    `json:"limit"`
	// Confirm must repeat the destination (or say "all destinations") for a purge.
	Confirm string `json:"confirm"`
}

// BadRequestError says a request cannot be carried out as asked; nothing was read or changed.
type BadRequestError struct {
	Err error
}

func (e *BadRequestError) Error() string { return e.Err.Error() }
func (e *BadRequestError) Unwrap() error { return e.Err }

// UnconfirmedPurgeError is a purge whose Confirm does not repeat Want. Each door says in its
// own words where to put it.
type UnconfirmedPurgeError struct {
	Want string
}

func (e *UnconfirmedPurgeError) Error() string {
	return fmt.Sprintf("a purge deletes dead letters for good: confirm with %q", e.Want)
}

// IsBadRequest reports whether err is the caller's mistake rather than the store's: a request
// that does not make sense, an unconfirmed purge, a destination that is not configured.
func IsBadRequest(err error) bool {
	var br *BadRequestError
	var up *UnconfirmedPurgeError
	return errors.As(err, &br) || errors.As(err, &up) || errors.Is(err, replay.ErrUnknownDestination)
}

// PurgeConfirmation returns the text a purge of destination must be confirmed with.
func PurgeConfirmation(destination string) string {
	if destination == "" {
		return "all destinations"
	}
	return destination
}

// ListOptions turns the request into store options.
func (q Request) ListOptions() (deadletter.ListOptions, error) {
	o := deadletter.ListOptions{Destination: q.Destination, IncludeParked: q.IncludeParked, Limit: q.Limit}
	if q.Since != "" {
		t, err := hostproto.ParseTime(q.Since)
		if err != nil {
			return o, &BadRequestError{fmt.Errorf("since: %w", err)}
		}
		o.Since = t
	}
	if q.Limit < 0 {
		return o, &BadRequestError{errors.New("limit must not be negative")}
	}
	return o, nil
}

func (o *Operator) store(ctx context.Context) (Store, error) {
	if o.opts.Open == nil {
		return nil, errors.New("operator: no dead-letter store")
	}
	return o.opts.Open(ctx)
}

// Counts returns the number of letters per destination and reason, with totals.
func (o *Operator) Counts(ctx context.Context) (CountsView, error) {
	s, err := o.store(ctx)
	if err != nil {
		return CountsView{}, err
	}
	c, err := s.Counts(ctx)
	if err != nil {
		return CountsView{}, err
	}
	return NewCountsView(c), nil
}

// List returns the letters q selects, oldest first, without their records.
func (o *Operator) List(ctx context.Context, q Request) ([]deadletter.Letter, error) {
	lo, err := q.ListOptions()
	if err != nil {
		return nil, err
	}
	s, err := o.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.List(ctx, lo)
}

// Show returns one letter with its record. A missing letter is deadletter.ErrNotFound, one that
// cannot be read back whole deadletter.ErrCorrupt.
func (o *Operator) Show(ctx context.Context, destination, id string) (deadletter.Letter, error) {
	s, err := o.store(ctx)
	if err != nil {
		return deadletter.Letter{}, err
	}
	return s.Get(ctx, destination, id)
}

// Replay sends the letters q selects again. Failed deliveries are counted in the result, not
// errors.
func (o *Operator) Replay(ctx context.Context, q Request) (replay.Result, error) {
	lo, err := q.ListOptions()
	if err != nil {
		return replay.Result{}, err
	}
	s, err := o.store(ctx)
	if err != nil {
		return replay.Result{}, err
	}
	r := replay.New(s, o.opts.Destinations, o.opts.MaxAttempts, o.opts.Logger, o.opts.Scrub)
	return r.Replay(ctx, replay.Options{Destination: q.Destination, ID: q.ID, Since: lo.Since, IncludeParked: q.IncludeParked, Limit: q.Limit})
}

// Purge deletes the letters q selects for good, once q.Confirm repeats PurgeConfirmation.
func (o *Operator) Purge(ctx context.Context, q Request) (int, error) {
	lo, err := q.ListOptions()
	if err != nil {
		return 0, err
	}
	if want := PurgeConfirmation(q.Destination); q.Confirm != want {
		return 0, &UnconfirmedPurgeError{Want: want}
	}
	s, err := o.store(ctx)
	if err != nil {
		return 0, err
	}
	return s.Purge(ctx, lo)
}

// LetterView is how a letter is shown to an operator (JSON).
type LetterView struct {
	Destination    string    `json:"destination"`
	ID             string    `json:"id"`
	Kind           string    `json:"kind,omitempty"`
	Reason         string    `json:"reason"`
	Error          string    `json:"error,omitempty"`
	Attempts       int       `json:"attempts"`
	Parked         bool      `json:"parked"`
	FirstFailure   time.Time `json:"firstFailure"`
	LastFailure    time.Time `json:"lastFailure"`
	Partition      string    `json:"eventHubPartition"`
	SequenceNumber int64     `json:"sequenceNumber"`
	Offset         string    `json:"offset,omitempty"`
	EnqueuedTime   time.Time `json:"enqueuedTime"`
	RecordIndex    int       `json:"recordIndex"`
	AlertID        string    `json:"alertId,omitempty"`
	Severity       string    `json:"severity,omitempty"`
	// Record is the stored record when it is JSON; RecordBase64 holds it otherwise.
	Record       json.RawMessage `json:"record,omitempty"`
	RecordBase64 string          `json:"recordBase64,omitempty"`
}

// View renders a letter; the payload only when withPayload.
func View(l deadletter.Letter, withPayload bool) LetterView {
	v := LetterView{Destination: l.Destination, ID: l.ID, Kind: l.Kind, Reason: string(l.Reason), Error: l.Error,
		Attempts: l.Attempts, Parked: l.Parked, FirstFailure: l.FirstFailure, LastFailure: l.LastFailure,
		Partition: l.Coordinates.Partition, SequenceNumber: l.Coordinates.SequenceNumber, Offset: l.Coordinates.Offset,
		EnqueuedTime: l.Coordinates.EnqueuedTime, RecordIndex: l.Coordinates.Index, AlertID: l.AlertID, Severity: l.Severity}
	if withPayload {
		if utf8.Valid(l.Payload) && json.Valid(l.Payload) {
			v.Record = l.Payload
		} else {
			v.RecordBase64 = base64.StdEncoding.EncodeToString(l.Payload)
		}
	}
	return v
}

// CountsView is the body of the counts answer.
type CountsView struct {
	Total        int                                         `json:"total"`
	Parked       int                                         `json:"parked"`
	Destinations map[string]map[sink.Reason]deadletter.Count `json:"destinations"`
}

// NewCountsView totals counts.
func NewCountsView(c map[string]map[sink.Reason]deadletter.Count) CountsView {
	v := CountsView{Destinations: c}
	for _, byReason := range c {
		for _, n := range byReason {
			v.Total += n.Active + n.Parked
			v.Parked += n.Parked
		}
	}
	return v
}
