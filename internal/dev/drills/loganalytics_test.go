package drills

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/lasim"
)

// laRows counts the rows the imitation stored, by SystemAlertId.
func laRows(t *testing.T, sim *lasim.Server) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, row := range sim.Rows("Custom-DefenderForCloud") {
		var id string
		if err := json.Unmarshal(row["SystemAlertId"], &id); err != nil || id == "" {
			t.Fatalf("row without SystemAlertId: %v", row)
		}
		got[id]++
	}
	return got
}

// The real handler, its function app's managed identity (App Service's identity endpoint) and
// a Log Analytics destination: records sent before the identity has the role on the rule are
// dead-lettered with a message naming it, replayed once it is granted, and throttling is
// waited out; one token serves the whole run.
func TestLogAnalyticsRoleMissingThenGranted(t *testing.T) {
	sim, err := lasim.Start(lasim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.AddManagedIdentity("") // system-assigned, not yet granted
	ca, err := sim.WriteCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	r := newRig(t)
	r.set("DeadLetter__ReplaySchedule=0 */5 * * * *")
	r.set("IDENTITY_ENDPOINT=" + sim.IdentityEndpoint)
	r.set("IDENTITY_HEADER=" + sim.IdentityHeader)
	r.dest("sentinel", "Type=log_analytics", "Endpoint="+sim.URL, "RuleId="+sim.RuleID, "CAFile="+ca,
		"RetryMaxAttempts=4", "RetryInitialInterval=20ms", "RetryMaxInterval=2s")
	h := r.start()

	bodies, ids := alerts(t, "la-norole", 20)
	h.mustSucceed(t, h.invoke(t, batch(bodies, 100), 0, time.Minute))
	all := r.account(ledger{Dest: "sentinel", Want: ids, Delivered: laRows(t, sim)})
	if rs := reasons(all["sentinel"]); rs["unauthorized"] != len(ids) {
		t.Fatalf("dead letters by reason %v, want %d unauthorized", rs, len(ids))
	}
	if l := all["sentinel"][0]; !strings.Contains(l.Error, "Monitoring Metrics Publisher") || l.Attempts != 1 {
		t.Errorf("letter: %d attempts, error %q", l.Attempts, l.Error)
	}

	sim.Grant("system")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tr, err := h.host.Invoke(ctx, "ReplayDeadLetters", hostsim.TimerEnvelope("ReplayDeadLetters", time.Now()))
	cancel()
	if err != nil || !tr.Succeeded() {
		t.Fatalf("replay: %v HTTP %d %s\n%s", err, tr.Status, tr.Body, h.output())
	}
	all = r.account(ledger{Dest: "sentinel", Want: ids, Delivered: laRows(t, sim)})
	if n := len(all["sentinel"]); n != 0 {
		t.Fatalf("%d dead letters left after the replay", n)
	}

	// Throttled twice, with Retry-After: waited out inside the invocation.
	sim.FailNext(2, 429, "1")
	more, moreIDs := alerts(t, "la-throttled", 20)
	start := time.Now()
	h.mustSucceed(t, h.invoke(t, batch(more, 1000), 0, time.Minute))
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("finished in %v: Retry-After: 1 was not honoured twice", d)
	}
	all = r.account(ledger{Dest: "sentinel", Want: append(ids, moreIDs...), Delivered: laRows(t, sim)})
	if n := len(all["sentinel"]); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if n := sim.TokensIssued("system"); n != 1 {
		t.Errorf("%d tokens for the run, want 1", n)
	}
}
