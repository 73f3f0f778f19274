package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/defender-siem/forwarder/internal/graph"
	"github.com/defender-siem/forwarder/internal/hostproto"
)

// GraphFunction is the timer-triggered Graph alert poll: its folder under functions/.
const GraphFunction = "PollGraphAlerts"

// GraphPoller is what PollGraphAlerts runs; *graph.Poller is one.
type GraphPoller interface {
	Poll(ctx context.Context, deliverBy time.Time) graph.Result
}

// pollGraph serves the timer. Timer functions are singletons across instances (the host takes
// a lease), so two polls of one app do not overlap; the watermark's conditional writes still
// guard against a second app on the same storage.
func pollGraph(p GraphPoller, opts Options) http.HandlerFunc {
	var once sync.Once
	return func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		log := opts.Logger.With("function", GraphFunction, "invocation_id", req.Header.Get(hostproto.HeaderInvocationID))
		if _, err := readInvocation(w, req, operatorRequestBytes, opts.BodyReadTimeout); err != nil {
			hostproto.WriteResponse(w, http.StatusBadRequest, hostproto.InvokeResponse{Logs: []string{"invocation body unreadable: " + err.Error()}})
			return
		}
		if p == nil {
			once.Do(func() {
				log.Info("Graph input not configured (no Graph__TenantId, Graph__Tenants__… or Graph__Enabled): PollGraphAlerts does nothing")
			})
			hostproto.WriteResponse(w, http.StatusOK, hostproto.InvokeResponse{Logs: []string{"graph: not configured"}})
			return
		}
		deliverBy, answerBy := Budget(start, opts.FunctionTimeout)
		ctx, cancel := context.WithDeadline(req.Context(), answerBy)
		defer cancel()
		res := p.Poll(ctx, deliverBy)
		var lines []string
		for _, t := range res.Tenants {
			line := fmt.Sprintf("graph tenant=%s pages=%d read=%d duplicates=%d delivered=%d complete=%t mark=%s",
				t.Tenant, t.Pages, t.Read, t.Duplicates, t.Delivered, t.Complete, t.Mark.UTC().Format(time.RFC3339Nano))
			lines = append(lines, line)
			attrs := []any{"tenant", t.Tenant, "pages", t.Pages, "read", t.Read, "duplicates", t.Duplicates, "delivered", t.Delivered,
				"complete", t.Complete, "since", t.Since.UTC().Format(time.RFC3339Nano), "mark", t.Mark.UTC().Format(time.RFC3339Nano)}
			switch {
			case t.Err != nil:
				log.Error("graph poll failed; the watermark stays and the next run reads again", append(attrs, "err", t.Err.Error())...)
			case t.Throttled != nil:
				log.Warn("graph poll throttled", append(attrs, "retry_after", t.Throttled.RetryAfter.String())...)
			default:
				log.Log(ctx, slog.LevelInfo, "graph poll done", attrs...)
			}
		}
		status := http.StatusOK
		if err := res.Err(); err != nil {
			status = http.StatusInternalServerError
			lines = append(lines, err.Error())
		}
		log.Info("invocation answered", "status", status, "duration_ms", time.Since(start).Milliseconds())
		hostproto.WriteResponse(w, status, hostproto.InvokeResponse{Logs: lines})
	}
}
