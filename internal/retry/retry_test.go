package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
)

// instantTimer fires at once, so tests see the pauses without waiting for them.
type instantTimer struct{ c chan time.Time }

func (t *instantTimer) Start(time.Duration) {
	t.c = make(chan time.Time, 1)
	t.c <- time.Now()
}
func (t *instantTimer) Stop()               {}
func (t *instantTimer) C() <-chan time.Time { return t.c }

func TestDo(t *testing.T) {
	busy := sink.Retryable(sink.ReasonThrottled, 0, errors.New("503 busy"))
	bad := sink.Permanent(sink.ReasonRejected, errors.New("400 bad format"))
	tests := []struct {
		name      string
		results   []error // what each attempt returns; past the end, success
		policy    Policy
		wantErr   error
		wantCalls int
	}{
		{name: "first attempt succeeds", results: nil, policy: DefaultPolicy(), wantCalls: 1},
		{name: "succeeds on the third", results: []error{busy, busy}, policy: DefaultPolicy(), wantCalls: 3},
		{name: "permanent stops at once", results: []error{bad, nil}, policy: DefaultPolicy(), wantErr: bad, wantCalls: 1},
		{name: "attempts spent", results: []error{busy, busy, busy, busy}, policy: Policy{InitialInterval: time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxAttempts: 3, AttemptTimeout: time.Second}, wantErr: busy, wantCalls: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			op := func(context.Context) error {
				calls++
				if calls <= len(tc.results) {
					return tc.results[calls-1]
				}
				return nil
			}
			err := do(context.Background(), tc.policy, op, nil, &instantTimer{})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr != nil && sink.IsPermanent(err) != sink.IsPermanent(tc.wantErr) {
				t.Errorf("classification lost: permanent=%v", sink.IsPermanent(err))
			}
		})
	}
}

func TestDoHonoursRetryAfter(t *testing.T) {
	var waits []time.Duration
	calls := 0
	op := func(context.Context) error {
		calls++
		if calls == 1 {
			return sink.Retryable(sink.ReasonThrottled, 7*time.Second, errors.New("429"))
		}
		return nil
	}
	p := DefaultPolicy()
	err := do(context.Background(), p, op, func(_ error, _ int, w time.Duration) { waits = append(waits, w) }, &instantTimer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 || waits[0] != 7*time.Second {
		t.Errorf("waits = %v, want [7s]", waits)
	}
}

// A pause that would end past the deadline is not taken: the last error comes back at once,
// with its own reason rather than the context's.
func TestDoStopsBeforeTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	calls := 0
	unreachable := sink.Retryable(sink.ReasonUnreachable, 0, errors.New("connection refused"))
	op := func(context.Context) error { calls++; return unreachable }
	p := DefaultPolicy()
	p.InitialInterval = 5 * time.Second
	p.MaxInterval = 10 * time.Second
	start := time.Now()
	err := do(ctx, p, op, nil, nil)
	if !errors.Is(err, unreachable) || sink.ReasonOf(err) != sink.ReasonUnreachable {
		t.Fatalf("err = %v (reason %s)", err, sink.ReasonOf(err))
	}
	if calls != 1 {
		t.Errorf("calls = %d, want 1", calls)
	}
	if time.Since(start) >= 2*time.Second {
		t.Errorf("waited for the deadline instead of stopping")
	}
}

func TestDoContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := Do(ctx, DefaultPolicy(), func(context.Context) error { calls++; return nil }, nil)
	// backoff runs the operation once even on a cancelled context; either outcome must be
	// classified.
	if err != nil && sink.ReasonOf(err) != sink.ReasonTimeout {
		t.Errorf("err = %v, reason %s", err, sink.ReasonOf(err))
	}
}

func TestDoAttemptTimeout(t *testing.T) {
	p := DefaultPolicy()
	p.AttemptTimeout = 20 * time.Millisecond
	p.MaxAttempts = 1
	err := Do(context.Background(), p, func(ctx context.Context) error {
		<-ctx.Done()
		return sink.Retryable(sink.ReasonTimeout, 0, ctx.Err())
	}, nil)
	if sink.ReasonOf(err) != sink.ReasonTimeout {
		t.Errorf("err = %v", err)
	}
}

// By default an attempt ends only with the budget: one attempt sends every pending record, in
// as many requests as that takes, and a bound on the whole would cut off a request the
// receiver had already accepted.
func TestDoDefaultAttemptKeepsTheBudget(t *testing.T) {
	want := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), want)
	defer cancel()
	err := Do(ctx, DefaultPolicy(), func(actx context.Context) error {
		got, ok := actx.Deadline()
		if !ok || !got.Equal(want) {
			t.Errorf("attempt deadline %v (set %v), want the budget's %v", got, ok, want)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Errorf("default policy invalid: %v", err)
	}
	err := Policy{Multiplier: 0.5, MaxAttempts: -1, AttemptTimeout: -time.Second}.Validate()
	if err == nil {
		t.Fatal("invalid policy accepted")
	}
	// Every problem at once: initial, multiplier, attempts, timeout.
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 4 {
		t.Errorf("got %d problems, want 4: %v", n, err)
	}
}
