package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/replay"
	"github.com/defender-siem/forwarder/internal/sink"
)

// operatorRequestBytes bounds the envelope of a timer or operator invocation: an HTTP request
// with a small JSON body, never a batch.
const operatorRequestBytes = 1 << 20

// The dead-letter functions: their folders under functions/ and so their paths.
const (
	ReplayFunction      = "ReplayDeadLetters"
	DeadLettersFunction = "DeadLetters"
)

// Operator is what an operator can do with dead letters; the HTTP function and the command line
// both go through it.
type Operator interface {
	Counts(ctx context.Context) (map[string]map[sink.Reason]deadletter.Count, error)
	List(ctx context.Context, opts deadletter.ListOptions) ([]deadletter.Letter, error)
	Get(ctx context.Context, destination, id string) (deadletter.Letter, error)
	Purge(ctx context.Context, opts deadletter.ListOptions) (int, error)
	Replay(ctx context.Context, opts replay.Options) (replay.Result, error)
}

// LetterView is how a letter is shown to an operator (JSON).
type LetterView struct {
	Destination    string    `json:"destination"`
	ID             string    `json:"id"`
	Kind           string    `json:"kind,omitempty"`
	Reason         string    `json:"reason"`
	Error          string    `json:"error,omitempty"`
	Attempts       int       `json:"attempts"`
	Parked         bool      `json:"parked"`
	FirstFailure   time.Time `json:"firstFailure"`
	LastFailure    time.Time `json:"lastFailure"`
	Partition      string    `json:"eventHubPartition"`
	SequenceNumber int64     `json:"sequenceNumber"`
	Offset         string    `json:"offset,omitempty"`
	EnqueuedTime   time.Time `json:"enqueuedTime"`
	RecordIndex    int       `json:"recordIndex"`
	AlertID        string    `json:"alertId,omitempty"`
	Severity       string    `json:"severity,omitempty"`
	// Record is the stored record when it is JSON; RecordBase64 holds it otherwise.
	Record       json.RawMessage `json:"record,omitempty"`
	RecordBase64 string          `json:"recordBase64,omitempty"`
}

// View renders a letter; the payload only when withPayload.
func View(l deadletter.Letter, withPayload bool) LetterView {
	v := LetterView{Destination: l.Destination, ID: l.ID, Kind: l.Kind, Reason: string(l.Reason), Error: l.Error,
		Attempts: l.Attempts, Parked: l.Parked, FirstFailure: l.FirstFailure, LastFailure: l.LastFailure,
		Partition: l.Coordinates.Partition, SequenceNumber: l.Coordinates.SequenceNumber, Offset: l.Coordinates.Offset,
		EnqueuedTime: l.Coordinates.EnqueuedTime, RecordIndex: l.Coordinates.Index, AlertID: l.AlertID, Severity: l.Severity}
	if withPayload {
		if utf8.Valid(l.Payload) && json.Valid(l.Payload) {
			v.Record = l.Payload
		} else {
			v.RecordBase64 = base64.StdEncoding.EncodeToString(l.Payload)
		}
	}
	return v
}

// CountsView is the body of the counts answer.
type CountsView struct {
	Total        int                                         `json:"total"`
	Parked       int                                         `json:"parked"`
	Destinations map[string]map[sink.Reason]deadletter.Count `json:"destinations"`
}

// NewCountsView totals counts.
func NewCountsView(c map[string]map[sink.Reason]deadletter.Count) CountsView {
	v := CountsView{Destinations: c}
	for _, byReason := range c {
		for _, n := range byReason {
			v.Total += n.Active + n.Parked
			v.Parked += n.Parked
		}
	}
	return v
}

// ReplayRequest is the body of a replay or purge request, and what the command line's flags
// fill in.
type ReplayRequest struct {
	Destination   string `json:"destination"`
	ID            string `json:"id"`
	Since         string `json:"since"`
	IncludeParked bool   `json:"includeParked"`
	Limit         int    `json:"limit"`
	// Confirm must repeat the destination (or say "all destinations") for a purge.
	Confirm string `json:"confirm"`
}

// PurgeConfirmation returns the text a purge of destination must be confirmed with.
func PurgeConfirmation(destination string) string {
	if destination == "" {
		return "all destinations"
	}
	return destination
}

// ListOptions turns the request into store options.
func (q ReplayRequest) ListOptions() (deadletter.ListOptions, error) {
	o := deadletter.ListOptions{Destination: q.Destination, IncludeParked: q.IncludeParked, Limit: q.Limit}
	if q.Since != "" {
		t, err := hostproto.ParseTime(q.Since)
		if err != nil {
			return o, fmt.Errorf("since: %w", err)
		}
		o.Since = t
	}
	if q.Limit < 0 {
		return o, errors.New("limit must not be negative")
	}
	return o, nil
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
			httpAnswer(w, http.StatusOK, NewCountsView(c))
		case action == "list" && method == http.MethodGet:
			q := ReplayRequest{Destination: hr.query("destination"), Since: hr.query("since"), IncludeParked: hr.query("parked") == "true"}
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
			lo, err := q.ListOptions()
			if err != nil {
				httpAnswer(w, http.StatusBadRequest, errorBody{err.Error()})
				return
			}
			ls, err := op.List(ctx, lo)
			if err != nil {
				storeFailed(w, log, err)
				return
			}
			views := make([]LetterView, len(ls))
			for i, l := range ls {
				views[i] = View(l, false)
			}
			httpAnswer(w, http.StatusOK, views)
		case action == "show" && method == http.MethodGet:
			l, err := op.Get(ctx, hr.param("destination"), hr.param("id"))
			switch {
			case errors.Is(err, deadletter.ErrNotFound):
				httpAnswer(w, http.StatusNotFound, errorBody{err.Error()})
			case errors.Is(err, deadletter.ErrCorrupt):
				httpAnswer(w, http.StatusUnprocessableEntity, errorBody{err.Error()})
			case err != nil:
				storeFailed(w, log, err)
			default:
				httpAnswer(w, http.StatusOK, View(l, true))
			}
		case (action == "replay" || action == "purge") && method == http.MethodPost:
			var q ReplayRequest
			if b := hr.body(); len(strings.TrimSpace(string(b))) > 0 {
				if err := json.Unmarshal(b, &q); err != nil {
					httpAnswer(w, http.StatusBadRequest, errorBody{"body: " + err.Error()})
					return
				}
			}
			lo, err := q.ListOptions()
			if err != nil {
				httpAnswer(w, http.StatusBadRequest, errorBody{err.Error()})
				return
			}
			if action == "purge" {
				if q.Confirm != PurgeConfirmation(q.Destination) {
					httpAnswer(w, http.StatusBadRequest, errorBody{fmt.Sprintf("a purge deletes dead letters for good: repeat %q in the confirm field", PurgeConfirmation(q.Destination))})
					return
				}
				n, err := op.Purge(ctx, lo)
				if err != nil {
					storeFailed(w, log, err)
					return
				}
				log.Warn("dead letters purged by an operator", "destination", q.Destination, "count", n)
				httpAnswer(w, http.StatusOK, map[string]int{"purged": n})
				return
			}
			res, err := op.Replay(ctx, replay.Options{Destination: q.Destination, ID: q.ID, Since: lo.Since, IncludeParked: q.IncludeParked, Limit: q.Limit})
			if errors.Is(err, replay.ErrUnknownDestination) {
				httpAnswer(w, http.StatusBadRequest, errorBody{err.Error()})
				return
			}
			if err != nil {
				storeFailed(w, log, err)
				return
			}
			httpAnswer(w, http.StatusOK, res)
		default:
			httpAnswer(w, http.StatusNotFound, errorBody{"use GET deadletters, GET deadletters/list, GET deadletters/show/{destination}/{id}, POST deadletters/replay or POST deadletters/purge"})
		}
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
		res, err := op.Replay(ctx, replay.Options{Limit: ReplayBatch})
		line := fmt.Sprintf("replay: considered=%d delivered=%d failed=%d parked=%d skipped=%d", res.Considered, res.Delivered, res.Failed, res.Parked, res.Skipped)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Error("dead-letter replay stopped", "err", err.Error())
			hostproto.WriteResponse(w, http.StatusInternalServerError, hostproto.InvokeResponse{Logs: []string{line, err.Error()}})
			return
		}
		hostproto.WriteResponse(w, http.StatusOK, hostproto.InvokeResponse{Logs: []string{line}})
	}
}
