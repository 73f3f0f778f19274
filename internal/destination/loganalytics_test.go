package destination

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/lasim"
	"github.com/defender-siem/forwarder/internal/dev/samples"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/sink"
)

const (
	laTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	laApp    = "bbbbbbbb-0000-0000-0000-000000000001"
	laSecret = "la-app-secret-value~1"
)

func startLA(t *testing.T, opts lasim.Options) (*lasim.Server, string) {
	t.Helper()
	sim, err := lasim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sim.AddApp(laTenant, laApp, laSecret, nil)
	return sim, ca
}

func laSettings(sim *lasim.Server, ca string, extra ...string) []string {
	return append([]string{
		"Destinations__sentinel__Type=log_analytics",
		"Destinations__sentinel__Endpoint=" + sim.URL,
		"Destinations__sentinel__RuleId=" + sim.RuleID,
		"Destinations__sentinel__TenantId=" + laTenant,
		"Destinations__sentinel__ClientId=" + laApp,
		"Destinations__sentinel__ClientSecret=" + laSecret,
		"Destinations__sentinel__AuthorityHost=" + sim.URL,
		"Destinations__sentinel__DisableInstanceDiscovery=true",
		"Destinations__sentinel__CAFile=" + ca,
		"Destinations__sentinel__RetryInitialInterval=00:00:00.01",
		"Destinations__sentinel__RetryMaxInterval=00:00:00.05",
		"Destinations__sentinel__RetryMaxAttempts=3",
	}, extra...)
}

func buildOnly(t *testing.T, env ...string) (*Built, pipeline.Destination) {
	t.Helper()
	built, err := Build(load(t, env...), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() {
		for _, d := range built.Destinations {
			_ = d.Sink.Close()
		}
	})
	return built, built.Destinations[0]
}

func TestLogAnalyticsSettings(t *testing.T) {
	sim, ca := startLA(t, lasim.Options{})
	built, d := buildOnly(t, laSettings(sim, ca, "Destinations__sentinel__Streams__Recommendations=Custom-DefenderRecommendations")...)
	if d.Filter.Kinds != nil {
		t.Errorf("default kinds %v, want every kind", d.Filter.Kinds)
	}
	if !strings.Contains(strings.Join(built.Secrets, " "), laSecret) {
		t.Error("ClientSecret not registered for scrubbing")
	}
	for _, tc := range []struct {
		file, stream string
	}{{"elastic_eventhub_alert.json", "Custom-DefenderForCloud"}, {"elastic_eventhub_assessment.json", "Custom-DefenderRecommendations"}} {
		rec, err := alert.Parse(samples.Read(t, tc.file), 0)
		if err != nil {
			t.Fatal(err)
		}
		out, err := d.Formatter.Format(nil, &rec)
		if err != nil {
			t.Fatal(err)
		}
		head, row, _ := bytes.Cut(out, []byte("\n"))
		if string(head) != tc.stream || !json.Valid(row) || row[0] != '{' {
			t.Errorf("%s: payload %.60q, want stream %s then a row", tc.file, out, tc.stream)
		}
	}
}

func TestLogAnalyticsReportsEveryProblem(t *testing.T) {
	_, err := Build(load(t,
		"Destinations__la__Type=log_analytics",
		"Destinations__la__Endpoint=http://dce.example",
		"Destinations__la__RuleId=my-rule",
		"Destinations__la__Stream=DefenderForCloud_CL",
		"Destinations__la__Streams__incidents=Custom-X",
		"Destinations__la__ClientSecret=top-secret-value",
		"Destinations__la__Cloud=Mars",
		"Destinations__la__MaxBatchBytes=2000000",
		"Destinations__la__Colour=blue",
	), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"Endpoint", "RuleId", `"DefenderForCloud_CL"`, "Streams__incidents", "TenantId and ClientId", "Destinations__la__Cloud", "Destinations__la__MaxBatchBytes", "Destinations__la__colour"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "top-secret-value") {
		t.Errorf("the secret is in the error: %v", err)
	}
	if _, err := Build(load(t, "Destinations__la__Type=log_analytics"), slog.New(slog.DiscardHandler)); err == nil ||
		!strings.Contains(err.Error(), "Destinations__la__Endpoint") || !strings.Contains(err.Error(), "Destinations__la__RuleId") {
		t.Errorf("missing settings: %v", err)
	}
}

type memLetters struct {
	mu      sync.Mutex
	letters []deadletter.Letter
}

func (m *memLetters) Put(_ context.Context, ls []deadletter.Letter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.letters = append(m.letters, ls...)
	return nil
}

func (m *memLetters) Forget(context.Context, string, []string) error { return nil }

func batchOf(bodies ...[]byte) hostproto.Batch {
	b := hostproto.Batch{Partition: hostproto.PartitionContext{PartitionID: "0"}}
	for i, body := range bodies {
		b.Events = append(b.Events, hostproto.Event{Body: body, HasCoordinates: true, SequenceNumber: int64(100 + i), Offset: fmt.Sprint(1000 + i), EnqueuedTime: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)})
	}
	return b
}

func process(t *testing.T, d pipeline.Destination, store *memLetters, b hostproto.Batch) pipeline.Report {
	t.Helper()
	p := pipeline.New([]pipeline.Destination{d}, pipeline.Options{Store: store})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return p.Process(ctx, b, time.Now().Add(30*time.Second))
}

// TestLogAnalyticsThroughPipeline: the records of a batch land as rows; a record over 1 MB
// and, once the role is gone, every record become dead letters whose reason and message say
// what to do; throttling is waited out.
func TestLogAnalyticsThroughPipeline(t *testing.T) {
	sim, ca := startLA(t, lasim.Options{})
	sim.Grant(laApp)
	_, d := buildOnly(t, laSettings(sim, ca)...)
	alertRaw := samples.Read(t, "elastic_eventhub_alert.json")
	assess := samples.Read(t, "elastic_eventhub_assessment.json")
	huge := []byte(`{"SystemAlertId":"huge","AlertType":"X","Description":"` + strings.Repeat("z", 1_100_000) + `"}`)

	store := &memLetters{}
	sim.FailNext(1, 429, "1")
	rep := process(t, d, store, batchOf(alertRaw, assess, huge))
	if rep.Err != nil {
		t.Fatalf("report: %v", rep.Err)
	}
	rows := sim.Rows("Custom-DefenderForCloud")
	if len(rows) != 2 {
		t.Fatalf("stored %d rows, want 2", len(rows))
	}
	kinds := map[string]bool{}
	for _, r := range rows {
		var k string
		_ = json.Unmarshal(r["Kind"], &k)
		kinds[k] = true
	}
	if !kinds["alert"] || !kinds["recommendation"] {
		t.Errorf("kinds stored: %v", kinds)
	}
	// The pipeline skips decoding entities for this type; the row still carries them.
	for _, r := range rows {
		var ents []any
		if string(r["Kind"]) == `"alert"` && (json.Unmarshal(r["Entities"], &ents) != nil || len(ents) == 0) {
			t.Errorf("alert row without entities: %.100s", r["Entities"])
		}
	}
	if len(store.letters) != 1 || store.letters[0].Reason != sink.ReasonTooLarge || !bytes.Equal(store.letters[0].Payload, huge) {
		t.Fatalf("letters: %+v", store.letters)
	}

	// The role is removed: a fresh lasim without the grant.
	sim2, ca2 := startLA(t, lasim.Options{})
	_, d2 := buildOnly(t, laSettings(sim2, ca2)...)
	store2 := &memLetters{}
	rep = process(t, d2, store2, batchOf(alertRaw))
	if rep.Err != nil {
		t.Fatalf("report: %v", rep.Err)
	}
	if len(store2.letters) != 1 {
		t.Fatalf("%d letters", len(store2.letters))
	}
	l := store2.letters[0]
	if l.Reason != sink.ReasonUnauthorized || !strings.Contains(l.Error, "Monitoring Metrics Publisher") || l.AlertID != "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d" {
		t.Errorf("letter: reason %s, error %q, alert %q", l.Reason, l.Error, l.AlertID)
	}
	if l.Attempts != 1 {
		t.Errorf("a permanent refusal was tried %d times", l.Attempts)
	}
}
