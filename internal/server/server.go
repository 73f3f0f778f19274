// Package server is the handler's HTTP face towards the Functions host: the readiness probe on
// GET / and one POST route per function, each decoding the host's invocation envelope and
// answering with an invocation result. A 2xx answer tells the host the batch is done (it then
// checkpoints); anything else fails the invocation and makes the host retry it.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/pipeline"
)

// ForwardFunction is the Event Hubs triggered function's name: its folder under functions/
// and so its path.
const ForwardFunction = "ForwardAlerts"

// TriggerBinding is the trigger's name in ForwardAlerts/function.json.
const TriggerBinding = "events"

// Processor handles one decoded batch. The events' bodies live in buffers the server reuses
// for later invocations once Process has returned, so Process must not leave anything (a
// goroutine, a queue) reading them after it returns.
type Processor interface {
	Process(ctx context.Context, batch hostproto.Batch, deliverBy time.Time) pipeline.Report
}

// Options configure the server.
type Options struct {
	// FunctionTimeout is host.json's functionTimeout: the host abandons an invocation after
	// it, so the handler answers before.
	FunctionTimeout time.Duration
	// MaxRequestBytes bounds an invocation body; larger ones get 413, before any of the body
	// is read when Content-Length says so.
	MaxRequestBytes int64
	// BodyReadTimeout bounds how long a request's body may take to arrive in full; a body
	// still arriving after it is cut and answered 408. Zero means no bound.
	BodyReadTimeout time.Duration
	Logger          *slog.Logger
	// Graph runs the PollGraphAlerts timer; nil when the Graph input is not configured, in
	// which case the function answers success and does nothing.
	Graph GraphPoller
}

// Budget splits an invocation's time: deliveries may retry until deliverBy; the rest is kept
// for writing dead letters and answering. It leaves a tenth of functionTimeout (at most a
// minute) unused so the answer reaches the host before it gives up.
func Budget(start time.Time, functionTimeout time.Duration) (deliverBy, answerBy time.Time) {
	margin := min(functionTimeout/10, time.Minute)
	total := functionTimeout - margin
	reserve := min(total/4, time.Minute)
	return start.Add(total - reserve), start.Add(total)
}

// New returns the router. op may be nil, which leaves the dead-letter functions out.
func New(p Processor, op Operator, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := chi.NewRouter()
	// The host probes GET / until it answers and then now and again: answer at once.
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	r.Post("/"+ForwardFunction, forward(p, opts))
	r.Post("/"+GraphFunction, pollGraph(opts.Graph, opts))
	if op != nil {
		r.Post("/"+ReplayFunction, replayTimer(op, opts))
		r.Post("/"+DeadLettersFunction, deadLetters(op, opts))
	}
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		opts.Logger.Warn("request for an unknown function", "path", req.URL.Path)
		http.Error(w, "no such function", http.StatusNotFound)
	})
	return r
}

func forward(p Processor, opts Options) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		invocation := req.Header.Get(hostproto.HeaderInvocationID)
		log := opts.Logger.With("function", ForwardFunction, "invocation_id", invocation)
		body, err := readInvocation(w, req, opts.MaxRequestBytes, opts.BodyReadTimeout)
		if err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				// Failing here makes the host retry the same batch forever: say clearly
				// which setting to raise.
				log.Error("invocation body too large, raise Forwarder__MaxRequestBytes or lower extensions.eventHubs.maxEventBatchSize", "limit_bytes", tooBig.Limit, "content_length", req.ContentLength)
				hostproto.WriteResponse(w, http.StatusRequestEntityTooLarge, hostproto.InvokeResponse{Logs: []string{fmt.Sprintf("body larger than %d bytes", tooBig.Limit)}})
			case errors.Is(err, os.ErrDeadlineExceeded):
				log.Error("invocation body still arriving after Forwarder__BodyReadTimeout; connection cut", "timeout", opts.BodyReadTimeout.String())
				hostproto.WriteResponse(w, http.StatusRequestTimeout, hostproto.InvokeResponse{Logs: []string{"invocation body not received within " + opts.BodyReadTimeout.String()}})
			default:
				log.Error("invocation body unreadable", "err", err.Error())
				hostproto.WriteResponse(w, http.StatusBadRequest, hostproto.InvokeResponse{Logs: []string{"invocation body unreadable: " + err.Error()}})
			}
			return
		}
		var events eventBuffers
		defer events.release()
		batch, err := decodeInvocation(body, events.get)
		releaseBody(body)
		body = nil
		if err != nil {
			var undecodable envelopeError
			if errors.As(err, &undecodable) {
				log.Error("undecodable invocation envelope", "err", err.Error())
				hostproto.WriteResponse(w, http.StatusBadRequest, hostproto.InvokeResponse{Logs: []string{"undecodable invocation envelope: " + err.Error()}})
				return
			}
			log.Error("invocation carries no events", "err", err.Error())
			hostproto.WriteResponse(w, http.StatusBadRequest, hostproto.InvokeResponse{Logs: []string{err.Error()}})
			return
		}
		for _, pr := range batch.Problems {
			log.Warn("batch metadata problem", "problem", pr)
		}
		if batch.Retry != nil {
			log = log.With("retry_count", batch.Retry.RetryCount)
		}
		deliverBy, answerBy := Budget(start, opts.FunctionTimeout)
		ctx, cancel := context.WithDeadline(req.Context(), answerBy)
		defer cancel()
		rep := p.Process(ctx, batch, deliverBy)
		status := http.StatusOK
		if rep.Err != nil {
			status = http.StatusInternalServerError
		}
		log.Info("invocation answered", "status", status, "events", rep.Events, "records", rep.Records, "duration_ms", time.Since(start).Milliseconds())
		hostproto.WriteResponse(w, status, hostproto.InvokeResponse{Logs: rep.Logs})
	}
}

// envelopeError is an invocation body that is not a host envelope at all.
type envelopeError struct{ error }

func (e envelopeError) Unwrap() error { return e.error }

// decodeInvocation decodes the envelope and the batch it carries. It is a function of its own
// so that nothing in the caller keeps the body or the envelope (whose raw values are slices of
// it) reachable: the batch's events have a buffer of their own, and a 1,000-event body is
// megabytes the collector may then take back while the batch is delivered.
func decodeInvocation(body []byte, alloc func(n int) []byte) (hostproto.Batch, error) {
	env, err := hostproto.ParseInvokeRequestInto(body, alloc)
	if err != nil {
		return hostproto.Batch{}, envelopeError{err}
	}
	return hostproto.DecodeEventHubBatch(&env, TriggerBinding)
}

// readInvocation reads a request's body, at most limit bytes (0: no limit) within timeout (0:
// none). A Content-Length above limit is refused before a byte of the body is read, so a
// request that announces its size costs nothing; a body without one is cut at limit+1 bytes.
// The deadline runs from the end of the headers and is lifted once the body is in, so that
// nothing that reads the connection later (the server watching for the client going away
// while the batch is delivered) can run into it.
func readInvocation(w http.ResponseWriter, req *http.Request, limit int64, timeout time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	deadline := false
	if timeout > 0 {
		// Set before anything else: after a refusal the server may still read what is left
		// of a short body, and that read must be bounded too.
		err := rc.SetReadDeadline(time.Now().Add(timeout))
		if err != nil && !errors.Is(err, http.ErrNotSupported) {
			return nil, err
		}
		deadline = err == nil
	}
	if limit > 0 && req.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	var r io.Reader = req.Body
	if limit > 0 {
		r = http.MaxBytesReader(w, req.Body, limit)
	}
	body, err := readBody(r, req.ContentLength, limit)
	if err != nil {
		// The deadline stays: the connection is done with, and a read of the rest of the
		// body must not wait for a client that trickles.
		return nil, err
	}
	if deadline {
		if err := rc.SetReadDeadline(time.Time{}); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// readBody reads a whole invocation body into one buffer sized from Content-Length (which
// only the host, on loopback, sets, and never above limit), so that a large batch is not
// copied again and again while a buffer grows. The envelope decoder reads it in place and
// copies the events once, into a buffer of their own, so the caller hands it back to
// releaseBody once the batch is decoded.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	size := int64(512)
	if contentLength > 0 {
		size = contentLength + 1 // room to see EOF without growing
	}
	if limit > 0 {
		size = min(size, limit+1)
	}
	var buf []byte
	if size <= pooledBodyBytes {
		if p, ok := bodyPool.Get().(*[]byte); ok && int64(cap(*p)) >= size {
			buf = (*p)[:0]
		}
	}
	if buf == nil {
		buf = make([]byte, 0, size)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// bodyPool keeps body buffers for the next invocation: at the default batch size every
// invocation would otherwise allocate, and the runtime clear, a buffer the size of its batch
// only to drop it once the envelope is decoded. Buffers above pooledBodyBytes are not kept, so
// that a rare large batch does not hold its size for long.
var bodyPool sync.Pool

const pooledBodyBytes = 2 << 20

// eventBuffers hands the envelope decoder the buffers an invocation's events are decoded
// into, from the pool the bodies use (the two are about the same size), and gives them back
// once the invocation is answered: a fresh buffer per invocation was, with its clearing, the
// page faults of memory the runtime had returned and the collections its size brought on,
// about a twentieth of the handler's CPU.
type eventBuffers struct{ held [][]byte }

func (e *eventBuffers) get(n int) []byte {
	var buf []byte
	if n <= pooledBodyBytes {
		if p, ok := bodyPool.Get().(*[]byte); ok {
			if cap(*p) >= n {
				buf = (*p)[:0]
			} else {
				bodyPool.Put(p)
			}
		}
	}
	if buf == nil {
		buf = make([]byte, 0, n)
	}
	e.held = append(e.held, buf)
	return buf
}

// release gives the buffers back; the batch decoded into them must no longer be read.
func (e *eventBuffers) release() {
	for _, b := range e.held {
		releaseBody(b)
	}
	e.held = nil
}

// releaseBody gives a decoded body's buffer back. Nothing decodeInvocation returns points
// into it (TestDecodedBatchOwnsItsBytes).
func releaseBody(body []byte) {
	if c := cap(body); c > 0 && c <= pooledBodyBytes {
		body = body[:0]
		bodyPool.Put(&body)
	}
}
