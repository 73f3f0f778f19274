package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/samples"
	"github.com/defender-siem/forwarder/internal/operator"
	"github.com/defender-siem/forwarder/internal/replay"
)

// fakeOperator answers with err when set and records what it was asked.
type fakeOperator struct {
	err   error
	asked []string
	req   operator.Request
}

func (f *fakeOperator) Counts(context.Context) (operator.CountsView, error) {
	f.asked = append(f.asked, "counts")
	return operator.CountsView{Total: 4, Parked: 1}, f.err
}

func (f *fakeOperator) List(_ context.Context, q operator.Request) ([]deadletter.Letter, error) {
	f.asked, f.req = append(f.asked, "list"), q
	return []deadletter.Letter{{Destination: "splunk", ID: "a", Payload: []byte(`{"x":1}`)}}, f.err
}

func (f *fakeOperator) Show(_ context.Context, dest, id string) (deadletter.Letter, error) {
	f.asked = append(f.asked, "show "+dest+"/"+id)
	return deadletter.Letter{Destination: dest, ID: id, Payload: []byte(`{"x":1}`)}, f.err
}

func (f *fakeOperator) Replay(_ context.Context, q operator.Request) (replay.Result, error) {
	f.asked, f.req = append(f.asked, "replay"), q
	return replay.Result{Considered: 2, Delivered: 2}, f.err
}

func (f *fakeOperator) Purge(_ context.Context, q operator.Request) (int, error) {
	f.asked, f.req = append(f.asked, "purge"), q
	if want := operator.PurgeConfirmation(q.Destination); q.Confirm != want {
		return 0, &operator.UnconfirmedPurgeError{Want: want}
	}
	return 3, f.err
}

// invoke posts an envelope to a function and returns the host-level status and, for HTTP
// functions, the "res" output's status code and body.
func invoke(t *testing.T, h http.Handler, function string, env []byte) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+function, bytes.NewReader(env)))
	var out struct {
		Outputs map[string]struct {
			StatusCode string `json:"statusCode"`
			Body       string `json:"body"`
		}
		Logs []string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer is not an invocation result: %v\n%s", err, rec.Body)
	}
	res := out.Outputs["res"]
	if res.StatusCode == "" {
		return rec.Code, "", strings.Join(out.Logs, "\n")
	}
	return rec.Code, res.StatusCode, res.Body
}

func TestDeadLettersFunction(t *testing.T) {
	notFound := fmt.Errorf("get: %w", deadletter.ErrNotFound)
	tests := []struct {
		name         string
		method, path string
		params       map[string]string
		body         string
		err          error
		wantStatus   string
		wantInBody   string
		wantAsked    string
	}{
		{"counts", "GET", "deadletters", nil, "", nil, "200", `"total": 4`, "counts"},
		{"counts, store down", "GET", "deadletters", nil, "", errors.New("table down"), "503", "dead-letter store: table down", "counts"},
		{"list", "GET", "deadletters/list?destination=splunk&limit=5&parked=true", map[string]string{"action": "list"}, "", nil, "200", `"destination": "splunk"`, "list"},
		{"list, bad limit", "GET", "deadletters/list?limit=many", map[string]string{"action": "list"}, "", nil, "400", "limit: not a number", ""},
		{"list, bad since", "GET", "deadletters/list?since=soon", map[string]string{"action": "list"}, "", &operator.BadRequestError{Err: errors.New("since: bad time")}, "400", "since: bad time", "list"},
		{"show", "GET", "deadletters/show/splunk/a", map[string]string{"action": "show", "destination": "splunk", "id": "a"}, "", nil, "200", `"record": {`, "show splunk/a"},
		{"show, missing", "GET", "deadletters/show/splunk/b", map[string]string{"action": "show", "destination": "splunk", "id": "b"}, "", notFound, "404", "not found", "show splunk/b"},
		{"show, corrupt", "GET", "deadletters/show/splunk/b", map[string]string{"action": "show", "destination": "splunk", "id": "b"}, "", deadletter.ErrCorrupt, "422", "corrupt", "show splunk/b"},
		{"replay", "POST", "deadletters/replay", map[string]string{"action": "replay"}, `{"destination":"splunk","limit":2}`, nil, "200", `"delivered": 2`, "replay"},
		{"replay, unknown destination", "POST", "deadletters/replay", map[string]string{"action": "replay"}, `{"destination":"x"}`, fmt.Errorf("%w: %q", replay.ErrUnknownDestination, "x"), "400", "no such destination", "replay"},
		{"replay, bad body", "POST", "deadletters/replay", map[string]string{"action": "replay"}, `{"limit":"all"}`, nil, "400", "body: ", ""},
		{"purge, unconfirmed", "POST", "deadletters/purge", map[string]string{"action": "purge"}, `{"destination":"splunk"}`, nil, "400", `repeat \"splunk\" in the confirm field`, "purge"},
		{"purge", "POST", "deadletters/purge", map[string]string{"action": "purge"}, `{"destination":"splunk","confirm":"splunk"}`, nil, "200", `"purged": 3`, "purge"},
		{"wrong method", "GET", "deadletters/replay", map[string]string{"action": "replay"}, "", nil, "404", "use GET deadletters", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := &fakeOperator{err: tc.err}
			h := New(&recorder{}, op, Options{FunctionTimeout: time.Minute, MaxRequestBytes: 1 << 20})
			code, status, body := invoke(t, h, DeadLettersFunction, hostsim.HTTPEnvelope(tc.method, "http://localhost:7071/api/"+tc.path, tc.params, tc.body))
			if code != http.StatusOK {
				t.Fatalf("invocation answered HTTP %d: an HTTP function's failure belongs in its res output", code)
			}
			if status != tc.wantStatus || !strings.Contains(body, tc.wantInBody) {
				t.Errorf("res %s %s, want %s containing %q", status, body, tc.wantStatus, tc.wantInBody)
			}
			if got := strings.Join(op.asked, ","); got != tc.wantAsked {
				t.Errorf("operator asked %q, want %q", got, tc.wantAsked)
			}
		})
	}
}

// The list's query reaches the operator as a request, with the HTTP default limit.
func TestDeadLettersListQuery(t *testing.T) {
	op := &fakeOperator{}
	h := New(&recorder{}, op, Options{FunctionTimeout: time.Minute, MaxRequestBytes: 1 << 20})
	invoke(t, h, DeadLettersFunction, hostsim.HTTPEnvelope("GET", "http://localhost:7071/api/deadletters/list?destination=splunk&since=2026-11-01T00:00:00Z&parked=true", map[string]string{"action": "list"}, ""))
	if want := (operator.Request{Destination: "splunk", Since: "2026-11-01T00:00:00Z", IncludeParked: true, Limit: 100}); op.req != want {
		t.Errorf("request %+v, want %+v", op.req, want)
	}
}

// Envelopes exactly as a real host sent them are understood: the timer's runs a replay, the
// HTTP one (a POST without an action) gets the function's help as a 404 in its res output.
func TestRealHostCaptures(t *testing.T) {
	op := &fakeOperator{}
	h := New(&recorder{}, op, Options{FunctionTimeout: time.Minute, MaxRequestBytes: 1 << 20})
	code, _, logs := invoke(t, h, ReplayFunction, samples.Read(t, "timer-invocation.json"))
	if code != http.StatusOK || !strings.Contains(logs, "replay: considered=2 delivered=2") || op.req.Limit != ReplayBatch {
		t.Errorf("timer: HTTP %d, logs %q, request %+v", code, logs, op.req)
	}
	code, status, body := invoke(t, h, DeadLettersFunction, samples.Read(t, "http-invocation.json"))
	if code != http.StatusOK || status != "404" || !strings.Contains(body, "use GET deadletters") {
		t.Errorf("http: HTTP %d, res %s %s", code, status, body)
	}
}
