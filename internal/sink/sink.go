// Package sink holds what every transport shares: the Sink contract and the classification of
// delivery errors into retryable and permanent. Transports live in sub-packages; they send
// bytes that a formatter produced and never look inside a record.
package sink

import (
	"context"
	"errors"
	"time"
)

// Sink delivers already-formatted payloads to one destination.
//
// Send makes one delivery attempt for every payload and never retries by itself: retries,
// their budget and dead-lettering belong to the caller. It returns one error per payload, in
// the same order, nil for each payload the receiver accepted. A transport batches as its
// protocol allows (a HEC request carries many events); when a whole request fails, every
// payload in it gets that request's error. Errors are classified with Permanent and
// RetryAfter; an unclassified error counts as retryable.
type Sink interface {
	Send(ctx context.Context, payloads [][]byte) []error
	// Close releases connections. It does not flush anything: Send returns only when its
	// payloads are delivered or failed.
	Close() error
}

// WholeBatch is implemented by a sink whose success means only that the bytes were written
// (syslog over TCP or TLS, which has no acknowledgement): a failure later in the same batch
// can mean the receiver lost what an earlier Send call reported as sent. Such a sink reports
// a failure for every payload of the Send call it happens in, so the caller gives it the whole
// batch in one call rather than in windows.
type WholeBatch interface {
	WholeBatch() bool
}

// NeedsWholeBatch reports whether s asks for every payload of a batch in one Send call.
func NeedsWholeBatch(s Sink) bool {
	w, ok := s.(WholeBatch)
	return ok && w.WholeBatch()
}

// Reason is the short, fixed vocabulary that explains why a payload was not delivered. It is
// what an operator filters dead letters by.
type Reason string

// The reasons a delivery can fail for.
const (
	ReasonRejected      Reason = "rejected"      // the receiver refused the payload (4xx, bad format)
	ReasonUnreachable   Reason = "unreachable"   // connection refused, DNS, reset, 5xx
	ReasonTimeout       Reason = "timeout"       // the attempt or the invocation ran out of time
	ReasonThrottled     Reason = "throttled"     // 429 / busy until the budget ran out
	ReasonUnauthorized  Reason = "unauthorized"  // bad or disabled token, TLS verification failure
	ReasonTooLarge      Reason = "too-large"     // the payload exceeds what the receiver takes
	ReasonUndecodable   Reason = "undecodable"   // the message is not JSON (no destination saw it)
	ReasonUnformattable Reason = "unformattable" // the formatter could not render the record
)

// Error is a classified delivery error.
type Error struct {
	// Reason is the dead-letter reason.
	Reason Reason
	// Permanent is true when trying again cannot help (a 400, a bad token).
	Permanent bool
	// RetryAfter is the receiver's requested pause (Retry-After), zero when none.
	RetryAfter time.Duration
	// Status is the HTTP status of the answer the error stands for, 0 when there was none.
	Status int
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying, with reason r.
func Permanent(r Reason, err error) error {
	return &Error{Reason: r, Permanent: true, Err: err}
}

// Retryable marks err as worth another attempt, with reason r and an optional pause the
// receiver asked for.
func Retryable(r Reason, retryAfter time.Duration, err error) error {
	return &Error{Reason: r, RetryAfter: retryAfter, Err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked permanent.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// RetryAfter returns the pause the receiver asked for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// StatusOf returns the HTTP status err stands for (see HTTPStatus), 0 when none. An Error
// that wraps another (a transport adding advice) stands for the status of the one inside.
func StatusOf(err error) int {
	var e *Error
	for errors.As(err, &e) {
		if e.Status != 0 {
			return e.Status
		}
		err = e.Err
	}
	return 0
}

// ReasonOf returns err's reason. A context deadline reads as a timeout, anything else that was
// not classified as unreachable, because an unknown failure is most often the network.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	return ReasonUnreachable
}
