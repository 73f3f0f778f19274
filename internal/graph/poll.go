package graph

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/watermark"
)

// Processor delivers a batch to the destinations (pipeline.Pipeline).
type Processor interface {
	Process(ctx context.Context, batch hostproto.Batch, deliverBy time.Time) pipeline.Report
}

// Marks reads and writes tenants' watermarks (watermark.Store).
type Marks interface {
	Load(ctx context.Context, tenant string) (watermark.State, error)
	Save(ctx context.Context, tenant string, prev, next watermark.State, overlap time.Duration) (watermark.State, error)
}

// Tenant is one tenant to poll.
type Tenant struct {
	// Name is the settings name (Graph__Tenants__<name>__…, "default" for the top-level
	// settings): the watermark's key and the dead-letter partition's suffix.
	Name   string
	Client *Client
}

// Poller polls every tenant and feeds the alerts to the pipeline.
type Poller struct {
	Tenants []Tenant
	// Marks opens the watermark store; called on every poll until it succeeds, so that a
	// storage outage at start costs a failed poll, not a handler that cannot start.
	Marks   func(ctx context.Context) (Marks, error)
	Process Processor
	// Overlap is how far before the watermark each poll starts reading again.
	Overlap time.Duration
	// StartFrom is where a tenant's first poll starts, given the current time.
	StartFrom func(now time.Time) time.Time
	Now       func() time.Time
	Logger    *slog.Logger
}

// TenantResult is one tenant's outcome.
type TenantResult struct {
	Tenant string
	Since  time.Time
	Pages  int
	// Read counts the alerts Graph returned; Duplicates those skipped as already delivered;
	// Delivered those handed to the pipeline and delivered or dead-lettered.
	Read, Duplicates, Delivered int
	// Complete says every page was read and delivered, so the watermark moved.
	Complete bool
	Mark     time.Time
	// Throttled is set when Graph answered 429/503: the poll stopped early.
	Throttled *ThrottledError
	// Err is a failure (not a throttle): a page that failed every attempt, an undelivered
	// batch, the watermark store.
	Err error
}

// Result is one poll's outcome.
type Result struct {
	Tenants []TenantResult
}

// Err joins the tenants' errors; throttling is not an error.
func (r Result) Err() error {
	var errs []error
	for _, t := range r.Tenants {
		if t.Err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.Tenant, t.Err))
		}
	}
	return errors.Join(errs...)
}

// Poll reads every tenant once, one after the other, delivering until deliverBy.
func (p *Poller) Poll(ctx context.Context, deliverBy time.Time) Result {
	var res Result
	marks, err := p.Marks(ctx)
	for _, t := range p.Tenants {
		if err != nil {
			res.Tenants = append(res.Tenants, TenantResult{Tenant: t.Name, Err: fmt.Errorf("watermark store: %w", err)})
			continue
		}
		res.Tenants = append(res.Tenants, p.pollTenant(ctx, marks, t, deliverBy))
	}
	return res
}

// alertKey is what the poll reads of each alert besides its bytes.
type alertKey struct {
	ID                 string `json:"id"`
	LastUpdateDateTime string `json:"lastUpdateDateTime"`
}

func (p *Poller) pollTenant(ctx context.Context, marks Marks, t Tenant, deliverBy time.Time) TenantResult {
	r := TenantResult{Tenant: t.Name}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("tenant", t.Name)
	prev, err := marks.Load(ctx, t.Name)
	if err != nil {
		r.Err = err
		return r
	}
	r.Since = prev.Mark.Add(-p.Overlap)
	if prev.Mark.IsZero() {
		now := time.Now()
		if p.Now != nil {
			now = p.Now()
		}
		r.Since = p.StartFrom(now)
	}
	// The mark follows Graph's own timestamps, never this machine's clock, so a skewed clock
	// cannot make the window skip anything.
	newMark := prev.Mark
	if newMark.IsZero() {
		// Nothing found yet: stay where the first poll started.
		newMark = r.Since.Add(p.Overlap)
	}
	var delivered []watermark.Version
	inPoll := make(map[watermark.Version]bool, len(prev.Seen))
	for _, v := range prev.Seen {
		inPoll[v] = true
	}
	partition := "graph-" + t.Name
	err = t.Client.Alerts(ctx, r.Since, func(alerts []json.RawMessage) error {
		r.Pages++
		r.Read += len(alerts)
		batch := hostproto.Batch{Partition: hostproto.PartitionContext{PartitionID: partition, EventHubName: "graph"}}
		var versions []watermark.Version
		var times []time.Time
		for _, raw := range alerts {
			var k alertKey
			if err := json.Unmarshal(raw, &k); err != nil || k.ID == "" {
				// Still delivered (the pipeline dead-letters what it cannot route), but
				// it cannot be de-duplicated or move the mark.
				k = alertKey{ID: "undecodable-" + shortHash(raw)}
			}
			v := watermark.Version{ID: k.ID, LastUpdate: k.LastUpdateDateTime}
			if inPoll[v] {
				r.Duplicates++
				continue
			}
			inPoll[v] = true
			lu, _ := time.Parse(time.RFC3339Nano, k.LastUpdateDateTime)
			batch.Events = append(batch.Events, hostproto.Event{
				Body: raw, HasCoordinates: true,
				// Stable coordinates: the same alert version always makes the same
				// dead-letter id, a new version a new one.
				SequenceNumber: sequenceOf(k.ID), Offset: k.ID, EnqueuedTime: lu,
			})
			versions = append(versions, v)
			times = append(times, lu)
		}
		if len(batch.Events) == 0 {
			return nil
		}
		if !time.Now().Before(deliverBy) {
			return errOutOfTime
		}
		rep := p.Process.Process(ctx, batch, deliverBy)
		if rep.Err != nil {
			return fmt.Errorf("page %d not delivered: %w", r.Pages, rep.Err)
		}
		r.Delivered += len(batch.Events)
		delivered = append(delivered, versions...)
		for _, lu := range times {
			if lu.After(newMark) {
				newMark = lu
			}
		}
		return nil
	})
	var th *ThrottledError
	switch {
	case err == nil:
		r.Complete = true
	case errors.As(err, &th):
		r.Throttled = th
		log.Warn("graph throttled the poll; the watermark stays and the next run reads again", "retry_after", th.RetryAfter.String(), "pages", r.Pages)
	case errors.Is(err, errOutOfTime):
		log.Warn("poll stopped at the end of its time budget; the watermark stays", "pages", r.Pages)
	default:
		r.Err = err
	}
	next := watermark.State{Mark: prev.Mark, Seen: append(append([]watermark.Version(nil), prev.Seen...), delivered...)}
	if r.Complete {
		next.Mark = newMark
	}
	if len(delivered) == 0 && !r.Complete {
		r.Mark = prev.Mark
		return r
	}
	saved, serr := marks.Save(ctx, t.Name, prev, next, p.Overlap)
	if serr != nil {
		// Delivered but not recorded: the next poll sends these again (duplicates, no loss).
		r.Err = errors.Join(r.Err, serr)
		r.Mark = prev.Mark
		return r
	}
	r.Mark = saved.Mark
	return r
}

var errOutOfTime = errors.New("graph: out of time")

// sequenceOf maps an alert id to a stable non-negative number for its coordinates.
func sequenceOf(id string) int64 {
	sum := sha256.Sum256([]byte(id))
	return int64(binary.BigEndian.Uint64(sum[:8]) >> 1)
}

func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%x", sum[:8])
}
