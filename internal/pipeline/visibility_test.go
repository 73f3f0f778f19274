package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/hostproto"
)

// logLines captures a JSON slog logger's output and decodes it line by line.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// find returns the decoded lines at level whose message starts with msg.
func (l *logLines) find(t *testing.T, level, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if m["level"] == level && strings.HasPrefix(m["msg"].(string), msg) {
			out = append(out, m)
		}
	}
	return out
}

func scoreBody(i int) string {
	return fmt.Sprintf(`{"id":"/subscriptions/s/providers/Microsoft.Security/secureScores/ascScore-%d","type":"Microsoft.Security/secureScores"}`, i)
}

// Records no destination takes are counted, by kind, and the first few are logged at WARN
// with their coordinates, then one summary; a large batch of them costs a few lines.
func TestUnroutedRecordsAreVisible(t *testing.T) {
	tests := []struct {
		name      string
		unrouted  int
		inRecords bool // the unrouted records sit in one {"records":[…]} message
	}{
		{name: "a few, one message each", unrouted: 3},
		{name: "10,000 in one batch", unrouted: 10000},
		{name: "several records of one message", unrouted: 7, inRecords: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bodies := []string{alertBody("kept", "High")}
			if tc.inRecords {
				parts := make([]string, tc.unrouted)
				for i := range parts {
					parts[i] = scoreBody(i)
				}
				bodies = append(bodies, `{"records":[`+strings.Join(parts, ",")+`]}`)
			} else {
				for i := range tc.unrouted {
					bodies = append(bodies, scoreBody(i))
				}
			}
			var logs logLines
			sk := &scriptedSink{}
			p := New([]Destination{{Name: "alerts-only", Formatter: kindFormatter{}, Sink: sk, Retry: fastRetry(),
				Filter: Filter{Kinds: []alert.Kind{alert.KindAlert}}}}, Options{Store: &memStore{}, Logger: logs.logger()})
			rep := p.Process(context.Background(), batchOf(bodies...), time.Now().Add(time.Minute))
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if rep.Unrouted != tc.unrouted || rep.UnroutedKinds[alert.KindSecureScore] != tc.unrouted {
				t.Errorf("unrouted %d %v, want %d securescore", rep.Unrouted, rep.UnroutedKinds, tc.unrouted)
			}
			if len(sk.delivered) != 1 {
				t.Errorf("delivered %v, want the one alert", sk.delivered)
			}
			wantLogs := []string{fmt.Sprintf("events=%d records=%d undecodable=0 unrouted=%d", len(bodies), tc.unrouted+1, tc.unrouted),
				fmt.Sprintf("unrouted_kinds=securescore=%d", tc.unrouted)}
			if !slices.Equal(rep.Logs[:2], wantLogs) {
				t.Errorf("answer logs %q, want them to start with %q", rep.Logs, wantLogs)
			}

			each := logs.find(t, "WARN", "record taken by no destination")
			if want := min(tc.unrouted, unroutedLogged); len(each) != want {
				t.Fatalf("%d per-record lines, want %d", len(each), want)
			}
			for k, m := range each {
				wantSeq, wantIndex := float64(101+k), float64(0)
				if tc.inRecords {
					wantSeq, wantIndex = 101, float64(k)
				}
				if m["kind"] != "securescore" || m["partition"] != "4" || m["sequence"] != wantSeq || m["record"] != wantIndex {
					t.Errorf("line %d: %v; want kind securescore, partition 4, sequence %v, record %v", k, m, wantSeq, wantIndex)
				}
				if id, _ := m["id"].(string); !strings.HasSuffix(id, fmt.Sprintf("ascScore-%d", k)) {
					t.Errorf("line %d names record %q", k, id)
				}
			}
			sum := logs.find(t, "WARN", "records taken by no destination")
			if len(sum) != 1 || sum[0]["records"] != float64(tc.unrouted) || sum[0]["kinds"] != fmt.Sprintf("securescore=%d", tc.unrouted) {
				t.Errorf("summary lines %v, want one with records=%d kinds=securescore=%d", sum, tc.unrouted, tc.unrouted)
			}
			if all := logs.find(t, "WARN", ""); len(all) != len(each)+1 {
				t.Errorf("%d WARN lines in all, want %d", len(all), len(each)+1)
			}
		})
	}
}

// Every record routed somewhere: nothing about unrouted records is logged or answered.
func TestNoUnroutedNoNoise(t *testing.T) {
	var logs logLines
	p := New([]Destination{{Name: "all", Formatter: kindFormatter{}, Sink: &scriptedSink{}, Retry: fastRetry()}},
		Options{Store: &memStore{}, Logger: logs.logger()})
	rep := p.Process(context.Background(), batchOf(alertBody("a", "High"), scoreBody(1)), time.Now().Add(time.Minute))
	if rep.Err != nil || rep.Unrouted != 0 {
		t.Fatalf("err %v, unrouted %d", rep.Err, rep.Unrouted)
	}
	if w := logs.find(t, "WARN", ""); len(w) != 0 {
		t.Errorf("WARN lines %v", w)
	}
	for _, l := range rep.Logs {
		if strings.HasPrefix(l, "unrouted_kinds") || strings.HasPrefix(l, "time_fallbacks") {
			t.Errorf("answer log %q with nothing to report", l)
		}
	}
}

// Records whose time field could not be read are reported once per invocation, whatever the
// destinations, with their count and the first one's coordinates.
func TestTimeFallbacksLoggedOnce(t *testing.T) {
	evs := []hostproto.Event{{SequenceNumber: 7}, {SequenceNumber: 8}, {SequenceNumber: 9}}
	recs := []alert.Record{
		{Kind: alert.KindAlert, ID: "fine"},
		{Kind: alert.KindAlert, ID: "odd-1", Index: 2, TimeFallback: "StartTimeUtc"},
		{Kind: alert.KindRecommendation, ID: "odd-2", TimeFallback: "TimeGenerated"},
	}
	items := []item{{ev: &evs[0], rec: &recs[0]}, {ev: &evs[1], rec: &recs[1]}, {ev: &evs[2], rec: &recs[2]}}
	tests := []struct {
		name  string
		items []item
		want  int
	}{
		{name: "two of three", items: items, want: 2},
		{name: "none", items: items[:1], want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logLines
			if n := reportTimeFallbacks(logs.logger().With("partition", "4"), tc.items); n != tc.want {
				t.Errorf("counted %d, want %d", n, tc.want)
			}
			lines := logs.find(t, "WARN", "record times could not be read")
			if tc.want == 0 {
				if len(lines) != 0 {
					t.Errorf("lines %v with nothing to report", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("%d lines, want one for the invocation", len(lines))
			}
			m := lines[0]
			if m["records"] != float64(tc.want) || m["fallback"] != "StartTimeUtc" || m["sequence"] != float64(8) ||
				m["record"] != float64(2) || m["kind"] != "alert" || m["id"] != "odd-1" || m["partition"] != "4" {
				t.Errorf("line %v; want records=2, the first example (odd-1 at sequence 8, record 2) and its fallback", m)
			}
		})
	}
	rep := Report{Events: 3, Records: 3, TimeFallbacks: 2}
	rep.summarise(slog.New(slog.DiscardHandler))
	if !slices.Contains(rep.Logs, "time_fallbacks=2") {
		t.Errorf("answer logs %q lack time_fallbacks=2", rep.Logs)
	}
}

func TestClipKeepsUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abcd", "abcd"},
		{"abcdef", "abcd…"},
		{"abcé", "abc…"}, // é is two bytes: cut before it, not through it
	}
	for _, tc := range tests {
		if got := clip(tc.in, 4); got != tc.want {
			t.Errorf("clip(%q, 4) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
