package drills

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
)

// The handler is killed (SIGKILL, as when its instance fails) in the middle of a batch, after
// it has stored some dead letters for a destination that refused. The Event Hubs trigger then
// delivers the same batch again from the last checkpoint, on a new handler and without a
// retry context, and the destination works again: the redelivery must clear the letters the
// killed run stored, or the replay timer sends those records a second time. Counted at the
// end, after a replay: every record exactly once per destination.
func TestRedeliveredBatchAfterAKillIsNotReplayedTwice(t *testing.T) {
	start := time.Now()
	r := newRig(t)
	r.set("DeadLetter__ReplaySchedule=0 */5 * * * *")
	splunk := r.hec("splunk", "RetryMaxAttempts=1")
	healthy := r.hec("healthy")
	splunk.Refuse(400)
	h1 := r.start()
	// Enough records that writing their letters takes a while, so the kill lands among them.
	bodies, ids := alerts(t, "redeliver", pick(2000, 10000))
	b := batch(bodies, 7000)
	// The kill cuts the connection: an error here is what the drill expects.
	done := invokeAsync(t, h1, b, 2*time.Minute, "")
	store := r.store()
	if !poll(time.Minute, func() bool { return anyLetter(store, "splunk") }) {
		t.Fatalf("no dead letter was ever written\n%s", h1.output())
	}
	if err := h1.host.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h1.host.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("the handler did not die of SIGKILL\n%s", h1.output())
	}
	stored := len(r.letters()["splunk"])
	if res := <-done; res.Status != 0 {
		// Rare on a loaded machine: the run stored every letter and answered just before the
		// kill. The host may still read the batch again (a rebalance before the checkpoint),
		// and the promise is the same, so the drill goes on.
		t.Logf("the first run answered HTTP %d before the kill, having stored all %d letters", res.Status, stored)
	}
	t.Logf("%s: the killed run stored %d of %d letters for splunk before SIGKILL", time.Since(start).Round(time.Millisecond), stored, len(ids))

	// The trigger reads the batch again from the checkpoint: no retry context.
	splunk.Refuse(0)
	h2 := r.start()
	env, err := b.Envelope(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h2.host.Invoke(ctx, "ForwardAlerts", env)
	if err != nil || !res.Succeeded() {
		t.Fatalf("redelivery without a retry context: %v HTTP %d %s\n%s", err, res.Status, res.Body, h2.output())
	}
	t.Logf("%s: redelivered", time.Since(start).Round(time.Millisecond))
	if n := len(r.letters()["splunk"]); n != 0 {
		t.Errorf("%d of the killed run's letters outlived the redelivery that delivered their records", n)
	}

	// The replay timer runs as scheduled; it must find nothing to send again.
	for run := 0; run <= len(ids)/200 && len(r.letters()["splunk"]) > 0; run++ {
		replay(t, h2)
	}
	replay(t, h2)
	r.account(
		ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, splunk)},
		ledger{Dest: "healthy", Want: ids, Delivered: hecIDs(t, healthy),
			DupsAllowed: "the batch reaches a healthy destination once per run, and it ran twice"},
	)
	if marks := markEntities(t, r); len(marks) != 0 {
		t.Errorf("marks left with no letters: %v", marks)
	}
}

// replay runs the ReplayDeadLetters timer once.
func replay(t *testing.T, h *handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := h.host.Invoke(ctx, "ReplayDeadLetters", hostsim.TimerEnvelope("ReplayDeadLetters", time.Now()))
	if err != nil || !tr.Succeeded() {
		t.Fatalf("replay timer: %v HTTP %d %s\n%s", err, tr.Status, tr.Body, h.output())
	}
	t.Logf("replay timer: %v", tr.Response.Logs)
}

// anyLetter reports whether destination has at least one dead letter (false while the table
// cannot be read).
func anyLetter(s *deadletter.Store, destination string) bool {
	ls, err := s.List(context.Background(), deadletter.ListOptions{Destination: destination, IncludeParked: true, Limit: 1})
	return err == nil && len(ls) > 0
}

// markEntities returns the table's partition marks (RowKey "~partition:<id>" in a
// destination's partition) as "<destination>/<RowKey>", read straight from the table.
func markEntities(t *testing.T, r *rig) []string {
	t.Helper()
	var out []string
	for _, raw := range r.rawEntities() {
		var e struct{ PartitionKey, RowKey string }
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.RowKey, "~partition:") {
			out = append(out, e.PartitionKey+"/"+e.RowKey)
		}
	}
	return out
}
