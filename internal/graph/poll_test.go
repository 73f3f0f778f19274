package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/graphsim"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/watermark"
)

// recorder is a pipeline stand-in that records every alert version it is given.
type recorder struct {
	mu      sync.Mutex
	got     []watermark.Version
	batches []hostproto.Batch
	fail    int // batches still to fail
}

func (r *recorder) Process(_ context.Context, b hostproto.Batch, _ time.Time) pipeline.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return pipeline.Report{Err: errors.New("dead-letter store unreachable")}
	}
	r.batches = append(r.batches, b)
	for _, ev := range b.Events {
		var k alertKey
		_ = json.Unmarshal(ev.Body, &k)
		r.got = append(r.got, watermark.Version{ID: k.ID, LastUpdate: k.LastUpdateDateTime})
	}
	return pipeline.Report{Events: len(b.Events)}
}

func (r *recorder) versions() []watermark.Version {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]watermark.Version(nil), r.got...)
}

func openMarks(t *testing.T) *watermark.Store {
	t.Helper()
	az := testenv.StartAzurite(t)
	cfg, err := deadletter.ConfigFromSettings(func(k string) (string, bool) {
		if k == "AzureWebJobsStorage" {
			return az.ConnectionString(), true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := watermark.Open(ctx, cfg, watermark.DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newPoller(t *testing.T, s *graphsim.Server, marks *watermark.Store, rec *recorder, pageSize int) *Poller {
	return &Poller{
		Tenants: []Tenant{{Name: "contoso", Client: newTestClient(t, s, ClientOptions{PageSize: pageSize})}},
		Marks:   func(context.Context) (Marks, error) { return marks, nil },
		Process: rec, Overlap: 5 * time.Minute,
		StartFrom: func(now time.Time) time.Time { return now.Add(-time.Hour) },
		Now:       time.Now, Logger: slog.New(slog.DiscardHandler),
	}
}

func poll(t *testing.T, p *Poller) TenantResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := p.Poll(ctx, time.Now().Add(50*time.Second))
	if len(res.Tenants) != 1 {
		t.Fatalf("results %+v", res)
	}
	return res.Tenants[0]
}

// allOnce checks that every version the imitation holds now was delivered exactly once.
func countVersions(got []watermark.Version) map[watermark.Version]int {
	m := map[watermark.Version]int{}
	for _, v := range got {
		m[v]++
	}
	return m
}

func TestPollWatermarkAndOverlap(t *testing.T) {
	s := startSim(t)
	s.AddApp("contoso", "app-a", "s3cret")
	marks := openMarks(t)
	rec := &recorder{}
	p := newPoller(t, s, marks, rec, 2)
	p.Tenants[0].Client = newTenantClient(t, s, "contoso", 2)
	putN(s, "contoso", 5, graphsim.MDC)

	r := poll(t, p)
	if !r.Complete || r.Delivered != 5 || r.Err != nil {
		t.Fatalf("first poll %+v", r)
	}
	// Nothing changed: the overlap reads the same alerts again and skips them all.
	r = poll(t, p)
	if !r.Complete || r.Delivered != 0 || r.Duplicates != 5 {
		t.Fatalf("second poll %+v, want 5 duplicates skipped", r)
	}
	// An alert updated while a poll is between pages is delivered once per update: the
	// version read before the update in that poll, the new one in that poll or the next.
	s.OnPage(func(_ string, page int) {
		if page == 2 {
			s.Update("contoso", "dc000_000", map[string]any{"status": "inProgress"})
			s.Update("contoso", "dc004_004", map[string]any{"status": "resolved"})
		}
	})
	r = poll(t, p)
	s.OnPage(nil)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	// The updated versions moved to the front of the list after their page was read, so
	// the next poll brings them; the one after has nothing new.
	r = poll(t, p)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r = poll(t, p); r.Err != nil || r.Delivered != 0 {
		t.Fatalf("settled poll %+v, want nothing new", r)
	}
	counts := countVersions(rec.versions())
	if len(counts) != 7 {
		t.Errorf("%d versions delivered, want 7 (5 first versions, 2 updates): %v", len(counts), counts)
	}
	for v, n := range counts {
		if n != 1 {
			t.Errorf("%v delivered %d times", v, n)
		}
	}
	st, _ := marks.Load(context.Background(), "contoso")
	if st.Mark.IsZero() {
		t.Error("no watermark stored")
	}
	// Coordinates are stable: one alert version, one dead-letter partition and sequence.
	b := rec.batches[0]
	if b.Partition.PartitionID != "graph-contoso" || !b.Events[0].HasCoordinates || b.Events[0].SequenceNumber != sequenceOf(b.Events[0].Offset) {
		t.Errorf("batch coordinates %+v", b.Partition)
	}
}

func newTenantClient(t *testing.T, s *graphsim.Server, tenant string, pageSize int) *Client {
	cred, err := NewCredential(Auth{TenantID: tenant, ClientID: "app-" + tenant, ClientSecret: "s3cret", AuthorityHost: s.URL, DisableInstanceDiscovery: true}, s.Client())
	if err != nil {
		t.Fatal(err)
	}
	s.AddApp(tenant, "app-"+tenant, "s3cret")
	return NewClient(cred, ClientOptions{BaseURL: s.URL, HTTP: s.Client(), Sources: []string{graphsim.MDC}, PageSize: pageSize, RetryDelay: 10 * time.Millisecond})
}

func TestPollThrottledLeavesWatermark(t *testing.T) {
	s := startSim(t)
	marks := openMarks(t)
	rec := &recorder{}
	p := newPoller(t, s, marks, rec, 2)
	p.Tenants[0].Client = newTenantClient(t, s, "contoso", 2)
	putN(s, "contoso", 3, graphsim.MDC)
	if r := poll(t, p); !r.Complete {
		t.Fatalf("first poll %+v", r)
	}
	before, _ := marks.Load(context.Background(), "contoso")
	putN2 := func(from, n int) {
		for i := from; i < from+n; i++ {
			s.Put("contoso", graphsim.Alert("contoso", fmt.Sprintf("dn%03d_%03d", i, i), graphsim.MDC, "new", "medium", "new"))
		}
	}
	putN2(0, 5)
	s.OnPage(func(_ string, page int) {
		if page == 1 {
			s.Throttle(1, "30")
		}
	})
	r := poll(t, p)
	s.OnPage(nil)
	if r.Throttled == nil || r.Throttled.RetryAfter != 30*time.Second || r.Complete || r.Err != nil {
		t.Fatalf("throttled poll %+v", r)
	}
	after, _ := marks.Load(context.Background(), "contoso")
	if !after.Mark.Equal(before.Mark) {
		t.Errorf("watermark moved from %v to %v on a throttled poll", before.Mark, after.Mark)
	}
	if r = poll(t, p); !r.Complete || r.Err != nil {
		t.Fatalf("poll after the throttle %+v", r)
	}
	counts := countVersions(rec.versions())
	if len(counts) != 8 {
		t.Errorf("%d versions, want 8", len(counts))
	}
	for v, n := range counts {
		if n != 1 {
			t.Errorf("%v delivered %d times", v, n)
		}
	}
}

func TestPollUndeliveredKeepsWatermarkAndRetries(t *testing.T) {
	s := startSim(t)
	marks := openMarks(t)
	rec := &recorder{fail: 1}
	p := newPoller(t, s, marks, rec, 10)
	p.Tenants[0].Client = newTenantClient(t, s, "contoso", 10)
	putN(s, "contoso", 4, graphsim.MDC)
	r := poll(t, p)
	if r.Err == nil || r.Complete {
		t.Fatalf("poll with a failing pipeline %+v, want an error", r)
	}
	st, _ := marks.Load(context.Background(), "contoso")
	if !st.Mark.IsZero() {
		t.Errorf("watermark %v written for undelivered alerts", st.Mark)
	}
	if r = poll(t, p); !r.Complete || r.Delivered != 4 {
		t.Fatalf("retry poll %+v", r)
	}
}

// The imitation's clock runs apart from ours: the window follows Graph's timestamps, so
// alerts stamped by a clock behind or ahead of ours are all read, once.
func TestPollClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			s := startSim(t)
			s.SetSkew(skew)
			marks := openMarks(t)
			rec := &recorder{}
			p := newPoller(t, s, marks, rec, 3)
			p.Tenants[0].Client = newTenantClient(t, s, "contoso", 3)
			putN(s, "contoso", 4, graphsim.MDC)
			if r := poll(t, p); !r.Complete || r.Delivered != 4 {
				t.Fatalf("first poll %+v", r)
			}
			s.Update("contoso", "dc001_001", map[string]any{"status": "resolved"})
			s.Put("contoso", graphsim.Alert("contoso", "late_1", graphsim.MDC, "late", "high", "new"))
			if r := poll(t, p); !r.Complete || r.Delivered != 2 {
				t.Fatalf("second poll %+v, want the update and the new alert", r)
			}
			if r := poll(t, p); r.Delivered != 0 {
				t.Fatalf("third poll %+v, want nothing", r)
			}
		})
	}
}

// Two tenants: each has its own watermark and dead-letter partition, and one being throttled
// does not stop the other.
func TestPollTwoTenants(t *testing.T) {
	s := startSim(t)
	marks := openMarks(t)
	rec := &recorder{}
	p := newPoller(t, s, marks, rec, 5)
	p.Tenants = []Tenant{
		{Name: "contoso", Client: newTenantClient(t, s, "contoso", 5)},
		{Name: "fabrikam", Client: newTenantClient(t, s, "fabrikam", 5)},
	}
	putN(s, "contoso", 2, graphsim.MDC)
	putN(s, "fabrikam", 3, graphsim.MDC)
	s.Throttle(1, "5") // taken by the first tenant's first page
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := p.Poll(ctx, time.Now().Add(50*time.Second))
	if len(res.Tenants) != 2 || res.Tenants[0].Throttled == nil || !res.Tenants[1].Complete || res.Tenants[1].Delivered != 3 || res.Err() != nil {
		t.Fatalf("first poll %+v", res)
	}
	res = p.Poll(ctx, time.Now().Add(50*time.Second))
	if !res.Tenants[0].Complete || res.Tenants[0].Delivered != 2 || res.Tenants[1].Delivered != 0 {
		t.Fatalf("second poll %+v", res)
	}
	parts := map[string]int{}
	for _, b := range rec.batches {
		parts[b.Partition.PartitionID] += len(b.Events)
	}
	if parts["graph-contoso"] != 2 || parts["graph-fabrikam"] != 3 {
		t.Errorf("events by partition %v", parts)
	}
	for _, tn := range []string{"contoso", "fabrikam"} {
		if st, _ := marks.Load(ctx, tn); st.Mark.IsZero() {
			t.Errorf("%s has no watermark", tn)
		}
	}
}
