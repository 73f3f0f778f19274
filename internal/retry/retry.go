// Package retry runs one delivery attempt after another, with exponential backoff and jitter,
// until it succeeds, fails permanently, runs out of attempts or would pass the context's
// deadline. It wraps cenkalti/backoff/v4 and keeps what that library loses: the last error
// (backoff returns ctx.Err() when the context ends), the error's classification (backoff
// unwraps Permanent) and the receiver's Retry-After.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/defender-siem/forwarder/internal/sink"
)

// Policy bounds the attempts for one destination inside one invocation.
type Policy struct {
	// InitialInterval is the first pause between attempts. Default 500ms.
	InitialInterval time.Duration
	// MaxInterval caps any pause, including a receiver's Retry-After. Default 30s.
	MaxInterval time.Duration
	// Multiplier grows the pause after each attempt. Default 2.
	Multiplier float64
	// MaxAttempts caps the attempts, the first one included; 0 means no cap (the deadline
	// still applies). Default 8.
	MaxAttempts int
	// AttemptTimeout, when positive, bounds one whole attempt: one Send of every record still
	// pending, however many requests or writes that takes. Default 0, no bound beyond the
	// deadline: each transport bounds its own requests and writes (RequestTimeout,
	// WriteTimeout), since a bound on the whole attempt grows no longer with the batch and
	// would cut off a request the receiver had already accepted, which is then sent twice.
	AttemptTimeout time.Duration
}

// DefaultPolicy returns the documented defaults.
func DefaultPolicy() Policy {
	return Policy{
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		Multiplier:      2,
		MaxAttempts:     8,
	}
}

// Validate reports every problem at once.
func (p Policy) Validate() error {
	var errs []error
	if p.InitialInterval <= 0 {
		errs = append(errs, errors.New("retry initial interval must be positive"))
	}
	if p.MaxInterval < p.InitialInterval {
		errs = append(errs, errors.New("retry max interval must not be below the initial interval"))
	}
	if p.Multiplier < 1 {
		errs = append(errs, errors.New("retry multiplier must be at least 1"))
	}
	if p.MaxAttempts < 0 {
		errs = append(errs, errors.New("retry max attempts must not be negative"))
	}
	if p.AttemptTimeout < 0 {
		errs = append(errs, errors.New("retry attempt timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Notify is told about every failed attempt that will be retried, and the pause before the
// next one.
type Notify func(err error, attempt int, wait time.Duration)

// Do runs op until it returns nil or a permanent error (sink.IsPermanent), the attempts are
// spent, or the next attempt could not start before ctx's deadline. It returns nil on success,
// otherwise the last error op returned, still classified; when no attempt could run at all it
// returns a timeout error.
//
// With a positive AttemptTimeout each attempt gets a context bounded by it. A Retry-After carried by the error
// (sink.RetryAfter) lengthens the next pause, up to MaxInterval.
func Do(ctx context.Context, p Policy, op func(ctx context.Context) error, notify Notify) error {
	return do(ctx, p, op, notify, nil)
}

func do(ctx context.Context, p Policy, op func(ctx context.Context) error, notify Notify, timer backoff.Timer) error {
	exp := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.InitialInterval),
		backoff.WithMaxInterval(p.MaxInterval),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithMaxElapsedTime(0), // the context's deadline is the budget
	)
	b := &bounded{exp: exp, ctx: ctx, max: p.MaxInterval}
	var policy backoff.BackOff = b
	if p.MaxAttempts > 0 {
		policy = backoff.WithMaxRetries(policy, uint64(p.MaxAttempts-1))
	}
	policy = backoff.WithContext(policy, ctx)

	var last error
	attempt := 0
	operation := func() error {
		attempt++
		actx := ctx
		if p.AttemptTimeout > 0 {
			var cancel context.CancelFunc
			actx, cancel = context.WithTimeout(ctx, p.AttemptTimeout)
			defer cancel()
		}
		err := op(actx)
		if err == nil {
			return nil
		}
		last = err
		b.retryAfter, _ = sink.RetryAfter(err)
		if sink.IsPermanent(err) {
			return backoff.Permanent(err)
		}
		return err
	}
	var n backoff.Notify
	if notify != nil {
		n = func(err error, wait time.Duration) { notify(err, attempt, wait) }
	}
	err := backoff.RetryNotifyWithTimer(operation, policy, n, timer)
	if err == nil {
		return nil
	}
	if last == nil {
		// The context ended before the first attempt.
		return sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("no delivery attempt before the deadline: %w", err))
	}
	return last
}

// bounded is the exponential policy, lengthened to honour Retry-After and stopped when the
// pause would end past the context's deadline (a late attempt would only be cut short).
type bounded struct {
	exp        *backoff.ExponentialBackOff
	ctx        context.Context
	max        time.Duration
	retryAfter time.Duration
}

func (b *bounded) NextBackOff() time.Duration {
	d := b.exp.NextBackOff()
	if d == backoff.Stop {
		return d
	}
	if b.retryAfter > d {
		d = min(b.retryAfter, b.max)
	}
	if dl, ok := b.ctx.Deadline(); ok && time.Now().Add(d).After(dl) {
		return backoff.Stop
	}
	return d
}

func (b *bounded) Reset() { b.exp.Reset(); b.retryAfter = 0 }
