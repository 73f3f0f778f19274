package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/retry"
	"github.com/defender-siem/forwarder/internal/sink"
)

// kindFormatter renders "<kind>:<id>" and refuses records whose id says so.
type kindFormatter struct{}

func (kindFormatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if strings.Contains(rec.ID, "unformattable") {
		return dst, errors.New("cannot render")
	}
	return append(dst, string(rec.Kind)+":"+rec.ID...), nil
}

// scriptedSink answers each payload by what its text asks for: "perm" is refused for good,
// "flaky<n>" fails n times and then succeeds, "down" always fails; it records deliveries.
type scriptedSink struct {
	mu        sync.Mutex
	seen      map[string]int
	delivered []string
	calls     int
}

func (s *scriptedSink) Send(_ context.Context, payloads [][]byte) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	errs := make([]error, len(payloads))
	for i, p := range payloads {
		txt := string(p)
		s.seen[txt]++
		switch {
		case strings.Contains(txt, "perm"):
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("400 bad event"))
		case strings.Contains(txt, "down"):
			errs[i] = sink.Retryable(sink.ReasonUnreachable, 0, errors.New("connection refused secret-token-123"))
		case strings.Contains(txt, "flaky") && s.seen[txt] <= 2:
			errs[i] = sink.Retryable(sink.ReasonThrottled, 0, errors.New("503 busy"))
		default:
			s.delivered = append(s.delivered, txt)
		}
	}
	return errs
}

func (s *scriptedSink) Close() error { return nil }

type memStore struct {
	mu          sync.Mutex
	letters     map[string]deadletter.Letter
	fail        bool
	forgetFails bool
	forgets     int
}

func (m *memStore) Put(_ context.Context, ls []deadletter.Letter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("storage unreachable")
	}
	if m.letters == nil {
		m.letters = map[string]deadletter.Letter{}
	}
	for _, l := range ls {
		id := l.ID
		if id == "" {
			id = deadletter.RowKey(l.Coordinates)
		}
		m.letters[l.Destination+"/"+id] = l
	}
	return nil
}

func (m *memStore) Forget(_ context.Context, dest string, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgets++
	if m.forgetFails {
		return errors.New("storage unreachable")
	}
	for _, id := range ids {
		delete(m.letters, dest+"/"+id)
	}
	return nil
}

func fastRetry() retry.Policy {
	return retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Multiplier: 2, MaxAttempts: 5, AttemptTimeout: time.Second}
}

func batchOf(bodies ...string) hostproto.Batch {
	b := hostproto.Batch{Partition: hostproto.PartitionContext{PartitionID: "4"}}
	for i, body := range bodies {
		b.Events = append(b.Events, hostproto.Event{Body: []byte(body), HasCoordinates: true, SequenceNumber: int64(100 + i),
			EnqueuedTime: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)})
	}
	return b
}

func alertBody(id, severity string) string {
	return fmt.Sprintf(`{"SystemAlertId":%q,"AlertType":"T","Severity":%q,"AlertDisplayName":"x","AzureResourceSubscriptionId":"sub-a"}`, id, severity)
}

func TestProcessOutcomes(t *testing.T) {
	tests := []struct {
		name          string
		bodies        []string
		storeFails    bool
		wantDelivered int
		wantLetters   map[string]sink.Reason // "<destination>/<reason>" counts via reason per letter id suffix
		wantErr       bool
	}{
		{name: "all delivered", bodies: []string{alertBody("a1", "High"), alertBody("a2", "Low")}, wantDelivered: 2},
		{name: "flaky receiver recovers within the retries", bodies: []string{alertBody("flaky1", "High")}, wantDelivered: 1},
		{name: "permanent refusal is dead-lettered at once", bodies: []string{alertBody("perm1", "High"), alertBody("ok", "High")}, wantDelivered: 1,
			wantLetters: map[string]sink.Reason{"perm1": sink.ReasonRejected}},
		{name: "receiver down: dead letters after the retries", bodies: []string{alertBody("down1", "High")}, wantDelivered: 0,
			wantLetters: map[string]sink.Reason{"down1": sink.ReasonUnreachable}},
		{name: "unformattable record", bodies: []string{alertBody("unformattable1", "High")},
			wantLetters: map[string]sink.Reason{"unformattable1": sink.ReasonUnformattable}},
		{name: "undecodable message", bodies: []string{`{"SystemAlertId":`, alertBody("ok", "High")}, wantDelivered: 1,
			wantLetters: map[string]sink.Reason{"": sink.ReasonUndecodable}},
		{name: "store down: the invocation fails", bodies: []string{alertBody("down1", "High")}, storeFails: true, wantErr: true},
		{name: "store down but nothing to store", bodies: []string{alertBody("a1", "High")}, storeFails: true, wantDelivered: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sk := &scriptedSink{}
			store := &memStore{fail: tc.storeFails}
			p := New([]Destination{{Name: "siem", Formatter: kindFormatter{}, Sink: sk, Retry: fastRetry()}},
				Options{Store: store, Scrub: func(s string) string { return strings.ReplaceAll(s, "secret-token-123", "[REDACTED]") }})
			rep := p.Process(context.Background(), batchOf(tc.bodies...), time.Now().Add(time.Minute))
			if (rep.Err != nil) != tc.wantErr {
				t.Fatalf("Err = %v, want error %v", rep.Err, tc.wantErr)
			}
			if got := rep.Destinations[0].Delivered; got != tc.wantDelivered {
				t.Errorf("delivered %d, want %d", got, tc.wantDelivered)
			}
			if tc.wantErr {
				return
			}
			if len(store.letters) != len(tc.wantLetters) {
				t.Fatalf("letters %v, want %v", store.letters, tc.wantLetters)
			}
			for _, l := range store.letters {
				want, ok := tc.wantLetters[l.AlertID]
				if !ok || l.Reason != want {
					t.Errorf("letter for %q reason %s; want %v", l.AlertID, l.Reason, tc.wantLetters)
				}
				if strings.Contains(l.Error, "secret-token-123") {
					t.Errorf("secret in letter error: %s", l.Error)
				}
				if len(l.Payload) == 0 || l.Coordinates.Partition != "4" || l.Coordinates.SequenceNumber < 100 {
					t.Errorf("letter lacks payload or coordinates: %+v", l)
				}
			}
			// Accounting: every (record, destination) pair is delivered or stored, once.
			routed := rep.Destinations[0].Taken
			if rep.Destinations[0].Delivered+rep.Destinations[0].DeadLettered != routed {
				t.Errorf("delivered %d + dead-lettered %d != taken %d", rep.Destinations[0].Delivered, rep.Destinations[0].DeadLettered, routed)
			}
		})
	}
}

// A destination that never answers in time must not hold the others: each runs on its own.
func TestProcessDestinationsAreIndependent(t *testing.T) {
	ok := &scriptedSink{}
	slow := &blockingSink{}
	store := &memStore{}
	p := New([]Destination{
		{Name: "slow", Formatter: kindFormatter{}, Sink: slow, Retry: fastRetry()},
		{Name: "ok", Formatter: kindFormatter{}, Sink: ok, Retry: fastRetry()},
	}, Options{Store: store})
	start := time.Now()
	rep := p.Process(context.Background(), batchOf(alertBody("a1", "High")), time.Now().Add(300*time.Millisecond))
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if len(ok.delivered) != 1 {
		t.Errorf("fast destination delivered %v", ok.delivered)
	}
	if len(store.letters) != 1 {
		t.Fatalf("letters: %v", store.letters)
	}
	for _, l := range store.letters {
		if l.Destination != "slow" || l.Reason != sink.ReasonTimeout {
			t.Errorf("letter %s/%s, want slow/timeout", l.Destination, l.Reason)
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the slow destination held the invocation past its delivery deadline")
	}
}

type blockingSink struct{}

func (blockingSink) Send(ctx context.Context, payloads [][]byte) []error {
	<-ctx.Done()
	errs := make([]error, len(payloads))
	for i := range errs {
		errs[i] = sink.Retryable(sink.ReasonTimeout, 0, ctx.Err())
	}
	return errs
}
func (blockingSink) Close() error { return nil }

func TestProcessFiltersAndUnrouted(t *testing.T) {
	sk := &scriptedSink{}
	p := New([]Destination{{Name: "high-only", Formatter: kindFormatter{}, Sink: sk, Retry: fastRetry(),
		Filter: Filter{Kinds: []alert.Kind{alert.KindAlert}, MinSeverity: alert.SeverityHigh}}}, Options{Store: &memStore{}})
	rep := p.Process(context.Background(), batchOf(alertBody("h", "High"), alertBody("l", "Low"), `{"id":"/x","type":"Microsoft.Security/secureScores"}`), time.Now().Add(time.Minute))
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if len(sk.delivered) != 1 || !strings.HasSuffix(sk.delivered[0], ":h") {
		t.Errorf("delivered %v, want only the high alert", sk.delivered)
	}
	if rep.Unrouted != 2 {
		t.Errorf("unrouted %d, want 2", rep.Unrouted)
	}
}

func TestProcessWithoutStoreFailsOnUndelivered(t *testing.T) {
	p := New([]Destination{{Name: "siem", Formatter: kindFormatter{}, Sink: &scriptedSink{}, Retry: fastRetry()}}, Options{})
	rep := p.Process(context.Background(), batchOf(alertBody("perm", "High")), time.Now().Add(time.Minute))
	if rep.Err == nil {
		t.Fatal("an undelivered record with no store must fail the invocation")
	}
}

// Retries send only what is still pending, never what was already accepted.
func TestProcessResendsOnlyPending(t *testing.T) {
	sk := &scriptedSink{}
	p := New([]Destination{{Name: "siem", Formatter: kindFormatter{}, Sink: sk, Retry: fastRetry()}}, Options{Store: &memStore{}})
	rep := p.Process(context.Background(), batchOf(alertBody("flaky", "High"), alertBody("fine", "High")), time.Now().Add(time.Minute))
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if sk.seen["alert:fine"] != 1 {
		t.Errorf("accepted record sent %d times", sk.seen["alert:fine"])
	}
	if sk.seen["alert:flaky"] != 3 || len(sk.delivered) != 2 {
		t.Errorf("flaky sent %d times, delivered %v", sk.seen["alert:flaky"], sk.delivered)
	}
}

// A batch delivered again clears the letters an earlier run stored for the records it now
// delivers, whether the host sends it as a retry (with a retry context) or reads it again
// after an instance failure or a rebalance (without one): otherwise a replay sends those
// records a second time.
func TestRedeliveryClearsLettersOfDeliveredRecords(t *testing.T) {
	tests := []struct {
		name  string
		retry *hostproto.RetryContext
	}{
		{name: "host retry", retry: &hostproto.RetryContext{RetryCount: 1, MaxRetryCount: -1}},
		{name: "redelivery without a retry context", retry: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sk := &scriptedSink{}
			store := &memStore{}
			p := New([]Destination{{Name: "siem", Formatter: kindFormatter{}, Sink: sk, Retry: fastRetry()}}, Options{Store: store})
			b := batchOf(alertBody("flaky", "High"), alertBody("perm", "High"))
			// The earlier run stored both (say its instance then died before answering).
			for i := range b.Events {
				if err := store.Put(context.Background(), []deadletter.Letter{p.letter(b, letterOf{ev: &b.Events[i], dest: "siem", reason: sink.ReasonUnreachable, msg: "x", attempts: 1})}); err != nil {
					t.Fatal(err)
				}
			}
			b.Retry = tc.retry
			if rep := p.Process(context.Background(), b, time.Now().Add(time.Minute)); rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if len(store.letters) != 1 {
				t.Fatalf("letters %v, want only the refused record's", store.letters)
			}
			for _, l := range store.letters {
				if l.Reason != sink.ReasonRejected || l.Coordinates.SequenceNumber != 101 {
					t.Errorf("left letter %+v", l)
				}
			}
			if store.forgets != 1 {
				t.Errorf("%d Forget calls, want one for the destination", store.forgets)
			}
		})
	}
}

// A store that cannot clear earlier letters costs a warning, not the invocation.
func TestForgetFailureDoesNotFailTheInvocation(t *testing.T) {
	var logs logLines
	store := &memStore{forgetFails: true}
	p := New([]Destination{{Name: "siem", Formatter: kindFormatter{}, Sink: &scriptedSink{}, Retry: fastRetry()}}, Options{Store: store, Logger: logs.logger()})
	rep := p.Process(context.Background(), batchOf(alertBody("a", "High")), time.Now().Add(time.Minute))
	if rep.Err != nil || rep.Destinations[0].Delivered != 1 {
		t.Fatalf("err %v, delivered %d", rep.Err, rep.Destinations[0].Delivered)
	}
	if w := logs.find(t, "WARN", "could not clear earlier dead letters"); len(w) != 1 || w[0]["destination"] != "siem" {
		t.Errorf("warnings %v, want one naming the destination", w)
	}
}

// Without coordinates two different messages must still get different dead-letter ids.
func TestLetterIDsWithoutCoordinates(t *testing.T) {
	store := &memStore{}
	p := New([]Destination{{Name: "siem", Formatter: kindFormatter{}, Sink: &scriptedSink{}, Retry: fastRetry()}}, Options{Store: store})
	b := batchOf(alertBody("perm-a", "High"), alertBody("perm-b", "High"))
	for i := range b.Events {
		b.Events[i].HasCoordinates = false
		b.Events[i].SequenceNumber = 0
		b.Events[i].EnqueuedTime = time.Time{}
	}
	if rep := p.Process(context.Background(), b, time.Now().Add(time.Minute)); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if len(store.letters) != 2 {
		t.Errorf("got %d letters, want 2 distinct", len(store.letters))
	}
}

// propsFormatter renders a record's extended properties, claiming nothing about which.
type propsFormatter struct{}

func (f propsFormatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	return fmt.Appendf(dst, "%v", rec.Alert.ExtendedProperties), nil
}

// namedFormatter renders them too, claiming to read only names.
type namedFormatter struct {
	propsFormatter
	names []string
}

func (f namedFormatter) ExtendedPropertiesRead() []string { return f.names }

// Extended properties are parsed only as far as the destinations say they read them: none
// when none reads any, the union of their names when each says, and all of them as soon as
// one does not say.
func TestExtendedPropertiesParsedAsFarAsRead(t *testing.T) {
	body := `{"SystemAlertId":"1","AlertType":"T","Severity":"High","ExtendedProperties":{"ActionTaken":"Blocked","Other":"x","classification":"c"}}`
	none := namedFormatter{}
	act := namedFormatter{names: []string{"ActionTaken"}}
	verdict := namedFormatter{names: []string{"classification", "determination"}}
	for _, tc := range []struct {
		name string
		fs   []format.Formatter
		want string
	}{
		{"none read", []format.Formatter{none, none}, "map[]"},
		{"one name", []format.Formatter{none, act}, "map[ActionTaken:Blocked]"},
		{"union", []format.Formatter{act, verdict}, "map[ActionTaken:Blocked classification:c]"},
		{"one reads all", []format.Formatter{act, propsFormatter{}}, "map[ActionTaken:Blocked Other:x classification:c]"},
		{"reader alone", []format.Formatter{propsFormatter{}}, "map[ActionTaken:Blocked Other:x classification:c]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dests []Destination
			var sinks []*scriptedSink
			for i, f := range tc.fs {
				sk := &scriptedSink{}
				sinks = append(sinks, sk)
				dests = append(dests, Destination{Name: fmt.Sprint("d", i), Formatter: f, Sink: sk, Retry: fastRetry()})
			}
			rep := New(dests, Options{}).Process(context.Background(), batchOf(body), time.Now().Add(time.Minute))
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			for i, sk := range sinks {
				if len(sk.delivered) != 1 || sk.delivered[0] != tc.want {
					t.Errorf("destination %d got %q, want %q", i, sk.delivered, tc.want)
				}
			}
		})
	}
}

// describer renders a record's description; summary says whether it claims to read only the
// summary (a false claim, which shows whether the pipeline took it).
type describer struct{ summary bool }

func (f describer) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	return fmt.Appendf(dst, "%q", rec.Alert.Description), nil
}

func (f describer) ReadsSummaryOnly() bool { return f.summary }

// Alerts are parsed to their summary only when every destination's formatter says it reads
// no more.
func TestSummaryOnlyWhenEveryFormatterSays(t *testing.T) {
	body := `{"SystemAlertId":"1","AlertType":"T","Severity":"High","Description":"what happened"}`
	for _, tc := range []struct {
		name string
		fs   []format.Formatter
		want string
	}{
		{"all say", []format.Formatter{describer{true}, describer{true}}, `""`},
		{"one does not", []format.Formatter{describer{true}, describer{false}}, `"what happened"`},
		{"one cannot say", []format.Formatter{describer{true}, propsFormatter{}}, `"what happened"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk := &scriptedSink{}
			dests := []Destination{{Name: "d0", Formatter: tc.fs[0], Sink: sk, Retry: fastRetry()}}
			for i, f := range tc.fs[1:] {
				dests = append(dests, Destination{Name: fmt.Sprint("d", i+1), Formatter: f, Sink: &scriptedSink{}, Retry: fastRetry()})
			}
			rep := New(dests, Options{}).Process(context.Background(), batchOf(body), time.Now().Add(time.Minute))
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if len(sk.delivered) != 1 || sk.delivered[0] != tc.want {
				t.Errorf("got %q, want %q", sk.delivered, tc.want)
			}
		})
	}
}

// callSink is a scriptedSink that also notes how many payloads each Send carried.
type callSink struct {
	scriptedSink
	sizes []int
}

func (s *callSink) Send(ctx context.Context, payloads [][]byte) []error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(payloads))
	s.mu.Unlock()
	return s.scriptedSink.Send(ctx, payloads)
}

// A batch larger than a window is rendered and sent a window at a time in the first attempt,
// and what fails is retried with nothing else; every record still ends delivered or lettered.
func TestLargeBatchIsSentWindowByWindow(t *testing.T) {
	pad := strings.Repeat("p", 200<<10)
	var bodies []string
	for i := range 25 {
		id := fmt.Sprintf("r%02d", i)
		switch i {
		case 2:
			id = "flaky"
		case 13:
			id = "perm"
		case 20:
			id = "unformattable"
		}
		bodies = append(bodies, fmt.Sprintf(`{"SystemAlertId":%q,"AlertType":"T","Severity":"High","AlertDisplayName":"x","Description":%q}`, id, pad))
	}
	records := 0
	for _, b := range bodies {
		records += len(b)
	}
	wantWindows := (records + windowRawBytes - 1) / windowRawBytes
	if wantWindows < 3 {
		t.Fatalf("test batch of %d bytes makes %d windows, want several", records, wantWindows)
	}
	sk := &callSink{}
	store := &memStore{}
	p := New([]Destination{{Name: "siem", Formatter: kindFormatter{}, Sink: sk, Retry: fastRetry()}}, Options{Store: store})
	rep := p.Process(context.Background(), batchOf(bodies...), time.Now().Add(time.Minute))
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	// A window is whole records of at most windowRawBytes together.
	perWindow := windowRawBytes / len(bodies[0])
	var first, retries []int
	sent := 0
	for _, n := range sk.sizes {
		if sent < len(bodies)-1 { // the unformattable record is never sent
			first = append(first, n)
			sent += n
			continue
		}
		retries = append(retries, n)
	}
	if len(first) < 3 || slices.Max(first) > perWindow {
		t.Errorf("first attempt sent %v payloads per call, want windows of at most %d records", first, perWindow)
	}
	if !slices.Equal(retries, []int{1, 1}) || sk.seen["alert:flaky"] != 3 {
		t.Errorf("retries sent %v payloads per call, flaky seen %d times: want only the flaky record, twice", retries, sk.seen["alert:flaky"])
	}
	if d := rep.Destinations[0]; d.Taken != 25 || d.Delivered != 23 || d.Attempts != 3 {
		t.Errorf("report %+v: want 25 taken, 23 delivered in 3 attempts", d)
	}
	var lettered []string
	for _, l := range store.letters {
		lettered = append(lettered, l.AlertID+"/"+string(l.Reason))
	}
	slices.Sort(lettered)
	if want := []string{"perm/" + string(sink.ReasonRejected), "unformattable/" + string(sink.ReasonUnformattable)}; !slices.Equal(lettered, want) {
		t.Errorf("dead letters %v, want %v", lettered, want)
	}
	if len(sk.delivered) != 23 {
		t.Errorf("delivered %d records, want 23", len(sk.delivered))
	}
}

// wholeSink is a callSink that, like syslog over TCP, can only vouch for a whole batch.
type wholeSink struct{ callSink }

func (*wholeSink) WholeBatch() bool { return true }

// A sink that can only vouch for a whole batch gets all of a large batch in one call, so
// that a failure anywhere in it covers every record (the syslog drills depend on it).
func TestWholeBatchSinkGetsTheBatchInOneCall(t *testing.T) {
	pad := strings.Repeat("p", 200<<10)
	var bodies []string
	for i := range 25 {
		bodies = append(bodies, fmt.Sprintf(`{"SystemAlertId":"r%02d","AlertType":"T","Severity":"High","AlertDisplayName":"x","Description":%q}`, i, pad))
	}
	sk := &wholeSink{}
	p := New([]Destination{{Name: "syslog", Formatter: kindFormatter{}, Sink: sk, Retry: fastRetry()}}, Options{Store: &memStore{}})
	if rep := p.Process(context.Background(), batchOf(bodies...), time.Now().Add(time.Minute)); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if !slices.Equal(sk.sizes, []int{25}) {
		t.Errorf("Send calls carried %v payloads, want one call with all 25", sk.sizes)
	}
}
