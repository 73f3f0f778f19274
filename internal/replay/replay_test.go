package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/retry"
	"github.com/defender-siem/forwarder/internal/sink"
)

// store is an in-memory dead-letter store that keeps the letters by destination and id and
// can be told to fail.
type store struct {
	letters   map[string]deadletter.Letter // destination/id
	listed    []deadletter.ListOptions
	listErr   error
	getErr    map[string]error // by id
	deleteErr error
	updateErr error
	deleted   []string
	updated   []deadletter.Letter
}

func newStore(ls ...deadletter.Letter) *store {
	s := &store{letters: map[string]deadletter.Letter{}, getErr: map[string]error{}}
	for _, l := range ls {
		s.letters[l.Destination+"/"+l.ID] = l
	}
	return s
}

func (s *store) List(_ context.Context, o deadletter.ListOptions) ([]deadletter.Letter, error) {
	s.listed = append(s.listed, o)
	if s.listErr != nil {
		return nil, s.listErr
	}
	var out []deadletter.Letter
	for _, l := range s.letters {
		if l.Destination == o.Destination && (o.IncludeParked || !l.Parked) {
			out = append(out, deadletter.Letter{Destination: l.Destination, ID: l.ID})
		}
	}
	slices.SortFunc(out, func(a, b deadletter.Letter) int { return strings.Compare(a.ID, b.ID) })
	if o.Limit > 0 && len(out) > o.Limit {
		out = out[:o.Limit]
	}
	return out, nil
}

func (s *store) Get(_ context.Context, dest, id string) (deadletter.Letter, error) {
	if err := s.getErr[id]; err != nil {
		return deadletter.Letter{}, err
	}
	l, ok := s.letters[dest+"/"+id]
	if !ok {
		return deadletter.Letter{}, deadletter.ErrNotFound
	}
	return l, nil
}

func (s *store) Delete(_ context.Context, dest, id string) error {
	if s.deleteErr != nil {
		return s.deleteErr
	}
	s.deleted = append(s.deleted, dest+"/"+id)
	delete(s.letters, dest+"/"+id)
	return nil
}

func (s *store) Update(_ context.Context, l deadletter.Letter) error {
	s.updated = append(s.updated, l)
	if s.updateErr != nil {
		return s.updateErr
	}
	s.letters[l.Destination+"/"+l.ID] = l
	return nil
}

// formatter renders a record as "<kind>:<id>".
type formatter struct{ err error }

func (f formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return append(dst, fmt.Sprintf("%s:%s", rec.Kind, rec.ID)...), nil
}

// transport answers each Send with the next error of its script (nil: delivered) and keeps
// what it was sent.
type transport struct {
	script  []error
	sent    []string
	results int // how many results to return; 0 means one per payload
	hasDL   []bool
}

func (t *transport) Send(ctx context.Context, payloads [][]byte) []error {
	_, dl := ctx.Deadline()
	t.hasDL = append(t.hasDL, dl)
	for _, p := range payloads {
		t.sent = append(t.sent, string(p))
	}
	var err error
	if len(t.script) > 0 {
		err, t.script = t.script[0], t.script[1:]
	}
	n := len(payloads)
	if t.results < 0 {
		n = 0
	}
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

func (t *transport) Close() error { return nil }

var (
	now      = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	earlier  = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	alertRaw = []byte(`{"AlertType":"ARM_Test","SystemAlertId":"A1","AlertDisplayName":"Test","Severity":"High"}`)
)

func letter(dest, id string, attempts int, parked bool) deadletter.Letter {
	return deadletter.Letter{Destination: dest, ID: id, Kind: "alert", Reason: sink.ReasonThrottled, Attempts: attempts, Parked: parked,
		FirstFailure: earlier, LastFailure: earlier, Payload: alertRaw}
}

func replayer(s *store, maxAttempts int, dests ...pipeline.Destination) *Replayer {
	r := New(s, dests, maxAttempts, nil, func(x string) string { return strings.ReplaceAll(x, "s3cret", "***") })
	r.now = func() time.Time { return now }
	return r
}

func dest(name string, t *transport) pipeline.Destination {
	return pipeline.Destination{Name: name, Type: "test", Formatter: formatter{}, Sink: t}
}

func TestDeliveredLettersAreDeleted(t *testing.T) {
	s := newStore(letter("splunk", "b", 2, false), letter("splunk", "a", 1, false))
	tr := &transport{}
	res, err := replayer(s, 10, dest("splunk", tr)).Replay(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Considered: 2, Delivered: 2}) {
		t.Errorf("result %+v", res)
	}
	// Oldest (smallest id) first, each rendered by the destination's formatter.
	if !slices.Equal(s.deleted, []string{"splunk/a", "splunk/b"}) || !slices.Equal(tr.sent, []string{"alert:A1", "alert:A1"}) {
		t.Errorf("deleted %v, sent %v", s.deleted, tr.sent)
	}
	if len(s.updated) != 0 || len(s.letters) != 0 {
		t.Errorf("updated %v, left %v", s.updated, s.letters)
	}
}

// A failed replay records one more attempt, the new reason and the scrubbed error, and parks
// the letter when it reaches the attempt limit.
func TestFailedReplays(t *testing.T) {
	refused := sink.Permanent(sink.ReasonUnauthorized, errors.New("HTTP 403: token s3cret disabled"))
	tests := []struct {
		name        string
		letter      deadletter.Letter
		maxAttempts int
		sendErr     error
		wantReason  sink.Reason
		wantParked  bool
		res         Result
	}{
		{"below the limit", letter("splunk", "a", 3, false), 10, refused, sink.ReasonUnauthorized, false,
			Result{Considered: 1, Failed: 1}},
		{"reaches the limit", letter("splunk", "a", 9, false), 10, refused, sink.ReasonUnauthorized, true,
			Result{Considered: 1, Failed: 1, Parked: 1}},
		{"already parked: not parked again", letter("splunk", "a", 12, true), 10, refused, sink.ReasonUnauthorized, true,
			Result{Considered: 1, Failed: 1}},
		{"no limit", letter("splunk", "a", 500, false), 0, sink.Retryable(sink.ReasonUnreachable, 0, errors.New("connection refused")), sink.ReasonUnreachable, false,
			Result{Considered: 1, Failed: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(tc.letter)
			tr := &transport{script: []error{tc.sendErr}}
			res, err := replayer(s, tc.maxAttempts, dest("splunk", tr)).Replay(context.Background(), Options{IncludeParked: true})
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.res {
				t.Errorf("result %+v, want %+v", res, tc.res)
			}
			if len(s.updated) != 1 {
				t.Fatalf("%d updates, want 1", len(s.updated))
			}
			u := s.updated[0]
			if u.Attempts != tc.letter.Attempts+1 || u.Reason != tc.wantReason || u.Parked != tc.wantParked || !u.LastFailure.Equal(now) || !u.FirstFailure.Equal(earlier) {
				t.Errorf("updated letter: attempts %d reason %s parked %v last %v first %v", u.Attempts, u.Reason, u.Parked, u.LastFailure, u.FirstFailure)
			}
			if strings.Contains(u.Error, "s3cret") || u.Error == "" {
				t.Errorf("stored error %q: want it, scrubbed", u.Error)
			}
			if string(u.Payload) != string(alertRaw) {
				t.Error("the update lost the payload")
			}
			if len(s.deleted) != 0 {
				t.Error("a failed letter was deleted")
			}
		})
	}
}

// Letters replay cannot send are kept: a record that no longer parses or formats fails for
// good, with that reason and without a send.
func TestUnsendableLetters(t *testing.T) {
	bad := letter("splunk", "a", 1, false)
	bad.Payload = []byte("not json at all")
	s := newStore(bad)
	tr := &transport{}
	res, _ := replayer(s, 10, dest("splunk", tr)).Replay(context.Background(), Options{})
	if res.Failed != 1 || len(s.updated) != 1 || s.updated[0].Reason != sink.ReasonUndecodable || len(tr.sent) != 0 {
		t.Errorf("undecodable: %+v, updates %+v, sent %v", res, s.updated, tr.sent)
	}

	s = newStore(letter("splunk", "a", 1, false))
	d := dest("splunk", tr)
	d.Formatter = formatter{err: errors.New("no field the format needs")}
	res, _ = replayer(s, 10, d).Replay(context.Background(), Options{})
	if res.Failed != 1 || len(s.updated) != 1 || s.updated[0].Reason != sink.ReasonUnformattable || len(tr.sent) != 0 {
		t.Errorf("unformattable: %+v, updates %+v, sent %v", res, s.updated, tr.sent)
	}
}

func TestSkippedLetters(t *testing.T) {
	t.Run("destination no longer configured", func(t *testing.T) {
		l := letter(deadletter.UndecodablePartition, "u", 1, false)
		s := newStore(l)
		res, err := replayer(s, 10, dest("splunk", &transport{})).Replay(context.Background(), Options{Destination: deadletter.UndecodablePartition})
		if err != nil || res != (Result{Considered: 1, Skipped: 1}) || len(s.letters) != 1 {
			t.Errorf("%+v %v, %d left", res, err, len(s.letters))
		}
	})
	t.Run("gone or corrupt: the rest go on", func(t *testing.T) {
		s := newStore(letter("splunk", "a", 1, false), letter("splunk", "b", 1, false), letter("splunk", "c", 1, false))
		s.getErr["a"] = deadletter.ErrNotFound
		s.getErr["b"] = fmt.Errorf("chunk 2: %w", deadletter.ErrCorrupt)
		tr := &transport{}
		res, err := replayer(s, 10, dest("splunk", tr)).Replay(context.Background(), Options{})
		if err != nil || res != (Result{Considered: 3, Delivered: 1, Skipped: 2}) || !slices.Equal(s.deleted, []string{"splunk/c"}) {
			t.Errorf("%+v %v, deleted %v", res, err, s.deleted)
		}
	})
	t.Run("deleted while it was being replayed", func(t *testing.T) {
		s := newStore(letter("splunk", "a", 1, false))
		s.updateErr = deadletter.ErrNotFound
		res, err := replayer(s, 10, dest("splunk", &transport{script: []error{sink.Retryable(sink.ReasonTimeout, 0, errors.New("slow"))}})).Replay(context.Background(), Options{})
		if err != nil || res.Failed != 1 {
			t.Errorf("%+v %v", res, err)
		}
	})
}

func TestSelection(t *testing.T) {
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := newStore(letter("splunk", "a", 1, false), letter("splunk", "b", 1, true), letter("arc", "c", 1, false), letter("arc", "d", 1, false))
	tra, trs := &transport{}, &transport{}
	r := replayer(s, 10, dest("arc", tra), dest("splunk", trs))

	res, err := r.Replay(context.Background(), Options{Since: since, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Every configured destination, in configuration order, with the options passed on; the
	// limit counts per destination; parked letters stay.
	if res.Delivered != 2 || !slices.Equal(s.deleted, []string{"arc/c", "splunk/a"}) {
		t.Errorf("%+v, deleted %v", res, s.deleted)
	}
	want := []deadletter.ListOptions{{Destination: "arc", Since: since, Limit: 1}, {Destination: "splunk", Since: since, Limit: 1}}
	if len(s.listed) != 2 || s.listed[0] != want[0] || s.listed[1] != want[1] {
		t.Errorf("listed %+v, want %+v", s.listed, want)
	}

	// One id, parked or not, without a listing.
	s.listed = nil
	res, err = r.Replay(context.Background(), Options{Destination: "splunk", ID: "b"})
	if err != nil || res.Delivered != 1 || s.listed != nil || !slices.Contains(s.deleted, "splunk/b") {
		t.Errorf("one id: %+v %v, listed %v", res, err, s.listed)
	}

	if _, err := r.Replay(context.Background(), Options{Destination: "nope"}); !errors.Is(err, ErrUnknownDestination) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown destination: %v", err)
	}
}

func TestStoreFailuresStopTheReplay(t *testing.T) {
	down := errors.New("table service unavailable")

	s := newStore(letter("splunk", "a", 1, false))
	s.listErr = down
	if _, err := replayer(s, 10, dest("splunk", &transport{})).Replay(context.Background(), Options{}); !errors.Is(err, down) {
		t.Errorf("list failure: %v", err)
	}

	s = newStore(letter("splunk", "a", 1, false))
	s.getErr["a"] = down
	if _, err := replayer(s, 10, dest("splunk", &transport{})).Replay(context.Background(), Options{}); !errors.Is(err, down) {
		t.Errorf("get failure: %v", err)
	}

	// Delivered but not deleted: the error says it will be sent again.
	s = newStore(letter("splunk", "a", 1, false))
	s.deleteErr = down
	res, err := replayer(s, 10, dest("splunk", &transport{})).Replay(context.Background(), Options{})
	if !errors.Is(err, down) || !strings.Contains(err.Error(), "sent again") || res.Delivered != 0 {
		t.Errorf("delete failure: %+v %v", res, err)
	}

	s = newStore(letter("splunk", "a", 1, false))
	s.updateErr = down
	if _, err := replayer(s, 10, dest("splunk", &transport{script: []error{sink.Permanent(sink.ReasonRejected, errors.New("400"))}})).Replay(context.Background(), Options{}); !errors.Is(err, down) {
		t.Errorf("update failure: %v", err)
	}
}

func TestCancelledReplayStops(t *testing.T) {
	s := newStore(letter("splunk", "a", 1, false), letter("splunk", "b", 1, false))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr := &transport{}
	res, err := replayer(s, 10, dest("splunk", tr)).Replay(ctx, Options{})
	if !errors.Is(err, context.Canceled) || res.Considered != 0 || len(tr.sent) != 0 {
		t.Errorf("%+v %v, sent %v", res, err, tr.sent)
	}
}

func TestAttemptTimeoutBoundsTheSend(t *testing.T) {
	s := newStore(letter("splunk", "a", 1, false), letter("other", "b", 1, false))
	bounded, unbounded := &transport{}, &transport{}
	d := dest("splunk", bounded)
	d.Retry = retry.Policy{AttemptTimeout: time.Minute}
	if _, err := replayer(s, 10, d, dest("other", unbounded)).Replay(context.Background(), Options{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bounded.hasDL, []bool{true}) || !slices.Equal(unbounded.hasDL, []bool{false}) {
		t.Errorf("deadlines: with AttemptTimeout %v, without %v", bounded.hasDL, unbounded.hasDL)
	}
}

// A transport that answers with no result is a failed delivery, never a delivered one.
func TestTransportWithoutAResult(t *testing.T) {
	s := newStore(letter("splunk", "a", 1, false))
	res, err := replayer(s, 10, dest("splunk", &transport{results: -1})).Replay(context.Background(), Options{})
	if err != nil || res.Failed != 1 || len(s.deleted) != 0 || s.updated[0].Reason != sink.ReasonUnreachable {
		t.Errorf("%+v %v, deleted %v", res, err, s.deleted)
	}
}
