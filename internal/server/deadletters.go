package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/operator"
	"github.com/defender-siem/forwarder/internal/replay"
)

// operatorRequestBytes bounds the envelope of a timer or operator invocation: an HTTP request
// with a small JSON body, never a batch.
const operatorRequestBytes = 1 << 20

// The dead-letter functions: their folders under functions/ and so their paths.
const (
	ReplayFunction      = "ReplayDeadLetters"
	DeadLettersFunction = "DeadLetters"
)

// Operator is what the DeadLetters and ReplayDeadLetters functions ask of the dead letters;
// *operator.Operator is one, the same one the command line uses.
type Operator interface {
	Counts(ctx context.Context) (operator.CountsView, error)
	List(ctx context.Context, q operator.Request) ([]deadletter.Letter, error)
	Show(ctx context.Context, destination, id string) (deadletter.Letter, error)
	Replay(ctx context.Context, q operator.Request) (replay.Result, error)
	Purge(ctx context.Context, q operator.Request) (int, error)
}

// httpRequest is Data.req of an HTTP-triggered invocation.
type httpRequest struct {
	Method string            `json:"Method"`
	Query  map[string]any    `json:"Query"`
	Params map[string]string `json:"Params"`
	Body   json.RawMessage   `json:"Body"`
}

func (h *httpRequest) query(k string) string {
	for key, v := range h.Query {
		if strings.EqualFold(key, k) {
			switch x := v.(type) {
			case string:
				return x
			case []any:
				if len(x) > 0 {
					s, _ := x[0].(string)
					return s
				}
			}
		}
	}
	return ""
}

func (h *httpRequest) param(k string) string {
	for key, v := range h.Params {
		if strings.EqualFold(key, k) {
			return v
		}
	}
	return ""
}

// body returns the request body text: the host sends it as a JSON string.
func (h *httpRequest) body() []byte {
	var s string
	if json.Unmarshal(h.Body, &s) == nil {
		return []byte(s)
	}
	return h.Body
}

// httpAnswer writes the invocation result carrying the HTTP output binding "res".
func httpAnswer(w http.ResponseWriter, status int, v any, logs ...string) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	hostproto.WriteResponse(w, http.StatusOK, hostproto.InvokeResponse{
		Outputs: map[string]any{"res": map[string]any{
			"statusCode": strconv.Itoa(status),
			"body":       string(body),
			"headers":    map[string]string{"Content-Type": "application/json"},
		}},
		Logs: logs,
	})
}

type errorBody struct {
	Error string `json:"error"`
}

func deadLetters(op Operator, opts Options) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		log := opts.Logger.With("function", DeadLettersFunction, "invocation_id", req.Header.Get(hostproto.HeaderInvocationID))
		var env hostproto.InvokeRequest
		body, err := readInvocation(w, req, operatorRequestBytes, opts.BodyReadTimeout)
		if err == nil {
			err = json.Unmarshal(body, &env)
		}
		if err != nil {
			hostproto.WriteResponse(w, http.StatusBadRequest, hostproto.InvokeResponse{Logs: []string{"undecodable invocation envelope"}})
			return
		}
		var hr httpRequest
		if raw, ok := env.Data["req"]; !ok || json.Unmarshal(raw, &hr) != nil {
			httpAnswer(w, http.StatusBadRequest, errorBody{"no HTTP request in the invocation"})
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), max(opts.FunctionTimeout-opts.FunctionTimeout/10, time.Second))
		defer cancel()
		action := strings.ToLower(hr.param("action"))
		method := strings.ToUpper(hr.Method)
		log = log.With("action", action)
		switch {
		case action == "" && method == http.MethodGet:
			c, err := op.Counts(ctx)
			if err != nil {
				storeFailed(w, log, err)
				return
			}
			httpAnswer(w, http.StatusOK, c)
		case action == "list" && method == http.MethodGet:
			q := operator.Request{Destination: hr.query("destination"), Since: hr.query("since"), IncludeParked: hr.query("parked") == "true"}
			if hr.param("destination") != "" {
				q.Destination = hr.param("destination")
			}
			q.Limit = 100
			if l := hr.query("limit"); l != "" {
				n, err := strconv.Atoi(l)
				if err != nil {
					httpAnswer(w, http.StatusBadRequest, errorBody{"limit: not a number"})
					return
				}
				q.Limit = n
			}
			ls, err := op.List(ctx, q)
			if err != nil {
				operatorFailed(w, log, err)
				return
			}
			views := make([]operator.LetterView, len(ls))
			for i, l := range ls {
				views[i] = operator.View(l, false)
			}
			httpAnswer(w, http.StatusOK, views)
		case action == "show" && method == http.MethodGet:
			l, err := op.Show(ctx, hr.param("destination"), hr.param("id"))
			if err != nil {
				operatorFailed(w, log, err)
				return
			}
			httpAnswer(w, http.StatusOK, operator.View(l, true))
		case (action == "replay" || action == "purge") && method == http.MethodPost:
			var q operator.Request
			if b := hr.body(); len(strings.TrimSpace(string(b))) > 0 {
				if err := json.Unmarshal(b, &q); err != nil {
					httpAnswer(w, http.StatusBadRequest, errorBody{"body: " + err.Error()})
					return
				}
			}
			if action == "purge" {
				n, err := op.Purge(ctx, q)
				if err != nil {
					operatorFailed(w, log, err)
					return
				}
				log.Warn("dead letters purged by an operator", "destination", q.Destination, "count", n)
				httpAnswer(w, http.StatusOK, map[string]int{"purged": n})
				return
			}
			res, err := op.Replay(ctx, q)
			if err != nil {
				operatorFailed(w, log, err)
				return
			}
			httpAnswer(w, http.StatusOK, res)
		default:
			httpAnswer(w, http.StatusNotFound, errorBody{"use GET deadletters, GET deadletters/list, GET deadletters/show/{destination}/{id}, POST deadletters/replay or POST deadletters/purge"})
		}
	}
}

// operatorFailed answers an action that did not succeed: the caller's mistake (400), a letter
// that is not there (404) or cannot be read back (422), or the store (503).
func operatorFailed(w http.ResponseWriter, log interface{ Error(string, ...any) }, err error) {
	var up *operator.UnconfirmedPurgeError
	switch {
	case errors.As(err, &up):
		httpAnswer(w, http.StatusBadRequest, errorBody{fmt.Sprintf("a purge deletes dead letters for good: repeat %q in the confirm field", up.Want)})
	case operator.IsBadRequest(err):
		httpAnswer(w, http.StatusBadRequest, errorBody{err.Error()})
	case errors.Is(err, deadletter.ErrNotFound):
		httpAnswer(w, http.StatusNotFound, errorBody{err.Error()})
	case errors.Is(err, deadletter.ErrCorrupt):
		httpAnswer(w, http.StatusUnprocessableEntity, errorBody{err.Error()})
	default:
		storeFailed(w, log, err)
	}
}

func storeFailed(w http.ResponseWriter, log interface{ Error(string, ...any) }, err error) {
	log.Error("dead-letter store request failed", "err", err.Error())
	httpAnswer(w, http.StatusServiceUnavailable, errorBody{"dead-letter store: " + err.Error()})
}

// ReplayBatch is how many letters per destination one timer run replays, so a long backlog is
// worked off over several runs instead of one that outlives functionTimeout.
const ReplayBatch = 200

func replayTimer(op Operator, opts Options) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		log := opts.Logger.With("function", ReplayFunction, "invocation_id", req.Header.Get(hostproto.HeaderInvocationID))
		// The timer's envelope says nothing replay needs; read it only to hold the client to
		// the same limits as every other request.
		if _, err := readInvocation(w, req, operatorRequestBytes, opts.BodyReadTimeout); err != nil {
			hostproto.WriteResponse(w, http.StatusBadRequest, hostproto.InvokeResponse{Logs: []string{"invocation body unreadable: " + err.Error()}})
			return
		}
		_, answerBy := Budget(time.Now(), opts.FunctionTimeout)
		ctx, cancel := context.WithDeadline(req.Context(), answerBy)
		defer cancel()
		res, err := op.Replay(ctx, operator.Request{Limit: ReplayBatch})
		line := fmt.Sprintf("replay: considered=%d delivered=%d failed=%d parked=%d skipped=%d", res.Considered, res.Delivered, res.Failed, res.Parked, res.Skipped)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Error("dead-letter replay stopped", "err", err.Error())
			hostproto.WriteResponse(w, http.StatusInternalServerError, hostproto.InvokeResponse{Logs: []string{line, err.Error()}})
			return
		}
		hostproto.WriteResponse(w, http.StatusOK, hostproto.InvokeResponse{Logs: []string{line}})
	}
}
