package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/graph"
)

type fakePoller struct {
	res   graph.Result
	calls int
}

func (f *fakePoller) Poll(context.Context, time.Time) graph.Result { f.calls++; return f.res }

func postTimer(t *testing.T, srv *httptest.Server) (int, []string) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/"+GraphFunction, "application/json", bytes.NewReader(hostsim.TimerEnvelope(GraphFunction, time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Logs []string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Logs
}

func TestPollGraphRoute(t *testing.T) {
	for _, tc := range []struct {
		name   string
		poller *fakePoller
		status int
		log    string
	}{
		{"not configured", nil, http.StatusOK, "graph: not configured"},
		{"complete", &fakePoller{res: graph.Result{Tenants: []graph.TenantResult{{Tenant: "contoso", Pages: 2, Read: 3, Delivered: 3, Complete: true}}}}, http.StatusOK, "tenant=contoso pages=2 read=3 duplicates=0 delivered=3 complete=true"},
		{"throttled is no failure", &fakePoller{res: graph.Result{Tenants: []graph.TenantResult{{Tenant: "contoso", Throttled: &graph.ThrottledError{Status: 429, RetryAfter: time.Second}}}}}, http.StatusOK, "complete=false"},
		{"failure answers 500", &fakePoller{res: graph.Result{Tenants: []graph.TenantResult{{Tenant: "contoso", Err: errors.New("page 2 not read")}}}}, http.StatusInternalServerError, "tenant contoso: page 2 not read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.SyncBuffer
			opts := Options{FunctionTimeout: time.Minute, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			if tc.poller != nil {
				opts.Graph = tc.poller
			}
			srv := httptest.NewServer(New(&recorder{}, nil, opts))
			defer srv.Close()
			status, lines := postTimer(t, srv)
			if status != tc.status || !strings.Contains(strings.Join(lines, "\n"), tc.log) {
				t.Errorf("status %d logs %q; want %d and %q", status, lines, tc.status, tc.log)
			}
			if tc.poller == nil {
				// The "not configured" line is logged once, not at every tick.
				postTimer(t, srv)
				if n := strings.Count(logs.String(), "Graph input not configured"); n != 1 {
					t.Errorf("logged %d times, want once", n)
				}
			} else if tc.poller.calls != 1 {
				t.Errorf("%d polls", tc.poller.calls)
			}
		})
	}
}
