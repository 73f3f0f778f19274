// Package server is the handler's HTTP face towards the Functions host: the readiness probe on
// GET / and one POST route per function, each decoding the host's invocation envelope and
// answering with an invocation result. A 2xx answer tells the host the batch is done (it then
// checkpoints); anything else fails the invocation and makes the host retry it.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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

// Processor handles one decoded batch.
type Processor interface {
	Process(ctx context.Context, batch hostproto.Batch, deliverBy time.Time) pipeline.Report
}

// Options configure the server.
type Options struct {
	// FunctionTimeout is host.json's functionTimeout: the host abandons an invocation after
	// it, so the handler answers before.
	FunctionTimeout time.Duration
	// MaxRequestBytes bounds an invocation body; larger ones get 413.
	MaxRequestBytes int64
	Logger          *slog.Logger
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
		var env hostproto.InvokeRequest
		body := http.MaxBytesReader(w, req.Body, opts.MaxRequestBytes)
		if err := json.NewDecoder(body).Decode(&env); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				// Failing here makes the host retry the same batch forever: say clearly
				// which setting to raise.
				log.Error("invocation body too large, raise Forwarder__MaxRequestBytes or lower extensions.eventHubs.maxEventBatchSize", "limit_bytes", tooBig.Limit)
				hostproto.WriteResponse(w, http.StatusRequestEntityTooLarge, hostproto.InvokeResponse{Logs: []string{fmt.Sprintf("body larger than %d bytes", tooBig.Limit)}})
				return
			}
			log.Error("undecodable invocation envelope", "err", err.Error())
			hostproto.WriteResponse(w, http.StatusBadRequest, hostproto.InvokeResponse{Logs: []string{"undecodable invocation envelope: " + err.Error()}})
			return
		}
		batch, err := hostproto.DecodeEventHubBatch(&env, TriggerBinding)
		if err != nil {
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
