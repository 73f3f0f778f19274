package drills

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
)

// A Splunk that is busy for fewer requests than the invocation's retries loses nothing and
// stores nothing; one busy for longer costs dead letters, which the replay timer delivers once
// it is back.
func TestHECBusyThenRecovers(t *testing.T) {
	r := newRig(t)
	r.set("DeadLetter__ReplaySchedule=0 */5 * * * *")
	hec := r.hec("splunk", "RetryMaxAttempts=5")
	h := r.start()

	t.Run("within the invocation's retries", func(t *testing.T) {
		bodies, ids := alerts(t, "busy-short", 20)
		hec.RefuseNext(503, 4) // attempt 5 succeeds
		h.mustSucceed(t, h.invoke(t, batch(bodies, 100), 0, time.Minute))
		if n := hec.Requests(); n != 5 {
			t.Errorf("%d requests, want 5 (four refused, then the one that delivered)", n)
		}
		all := r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
		if n := len(all["splunk"]); n != 0 {
			t.Errorf("%d dead letters, want none", n)
		}
	})

	t.Run("beyond them, then replayed", func(t *testing.T) {
		before := hecIDs(t, hec)
		hec.Refuse(503)
		var want []string
		rounds := pick(1, 5)
		for round := range rounds {
			bodies, ids := alerts(t, fmt.Sprintf("busy-long-%d", round), pick(20, 200))
			want = append(want, ids...)
			h.mustSucceed(t, h.invoke(t, batch(bodies, int64(1000+round*1000)), 0, time.Minute))
		}
		got := subtract(hecIDs(t, hec), before)
		all := r.account(ledger{Dest: "splunk", Want: want, Delivered: got})
		if rs := reasons(all["splunk"]); rs["throttled"] != len(want) {
			t.Fatalf("dead letters by reason %v, want %d throttled", rs, len(want))
		}
		hec.Refuse(0)
		// Each timer run replays the oldest 200 letters of a destination; the schedule runs it
		// again until none are left.
		for run := 0; run <= len(want)/200 && len(r.letters()["splunk"]) > 0; run++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			tr, err := h.host.Invoke(ctx, "ReplayDeadLetters", hostsim.TimerEnvelope("ReplayDeadLetters", time.Now()))
			cancel()
			if err != nil || !tr.Succeeded() {
				t.Fatalf("timer run %d: %v HTTP %d %s\n%s", run, err, tr.Status, tr.Body, h.output())
			}
			t.Logf("timer run %d: %v", run, tr.Response.Logs)
		}
		got = subtract(hecIDs(t, hec), before)
		all = r.account(ledger{Dest: "splunk", Want: want, Delivered: got})
		if n := len(all["splunk"]); n != 0 {
			t.Errorf("%d dead letters left after the replay", n)
		}
	})
}

// subtract removes what a receiver already held before a phase of a drill.
func subtract(now, before map[string]int) map[string]int {
	out := map[string]int{}
	for id, n := range now {
		if n -= before[id]; n > 0 {
			out[id] = n
		}
	}
	return out
}

// Splunks that accept connections and never answer: every attempt times out, the invocation
// still answers within its budget, and what was not acknowledged is dead-lettered, whether the
// attempts run out first ("few") or the invocation's delivery deadline ends them ("many"). A
// healthy destination in the same invocation gets everything meanwhile.
func TestHECHangsPastTheAttemptTimeout(t *testing.T) {
	r := newRig(t)
	budget := pick(10*time.Second, 20*time.Second)
	r.set("Forwarder__FunctionTimeout=" + budget.String())
	few := r.hec("few", "AttemptTimeout=00:00:01", "RetryMaxAttempts=2")
	many := r.hec("many", "AttemptTimeout=00:00:01", "RetryMaxAttempts=1000", "RetryInitialInterval=50ms", "RetryMaxInterval=500ms")
	healthy := r.hec("healthy")
	h := r.start()
	few.Hang()
	many.Hang()
	bodies, ids := alerts(t, "hang", pick(10, 100))
	// The host would give up at the function timeout; allow it and no more.
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, budget))
	if n := few.Requests(); n != 2 {
		t.Errorf("%d requests to the destination allowed 2 attempts", n)
	}
	if n := many.Requests(); n < 3 {
		t.Errorf("%d requests: the attempts did not time out and retry until the deadline", n)
	}
	all := r.account(
		ledger{Dest: "few", Want: ids, Delivered: hecIDs(t, few)},
		ledger{Dest: "many", Want: ids, Delivered: hecIDs(t, many)},
		ledger{Dest: "healthy", Want: ids, Delivered: hecIDs(t, healthy)},
	)
	for _, d := range []string{"few", "many"} {
		if rs := reasons(all[d]); rs["timeout"] != len(ids) {
			t.Errorf("%s: dead letters by reason %v, want %d timeout", d, rs, len(ids))
		}
	}
	for _, rc := range []*hecrecv.Receiver{few, many} {
		rc.Release()
		if !poll(5*time.Second, func() bool { return rc.Held() == 0 }) {
			t.Errorf("%d requests still held after the handler answered", rc.Held())
		}
	}
}

// A Splunk that asks for an hour's pause (Retry-After) is not waited for past the
// invocation's delivery deadline: the invocation answers within its budget and the records
// are dead-lettered as throttled.
func TestHECRetryAfterLongerThanTheBudget(t *testing.T) {
	r := newRig(t)
	budget := 10 * time.Second
	r.set("Forwarder__FunctionTimeout=" + budget.String())
	hec := r.hec("splunk", "RetryMaxAttempts=5", "RetryMaxInterval=00:05:00")
	h := r.start()
	hec.Refuse(503)
	hec.RetryAfter(time.Hour)
	bodies, ids := alerts(t, "retry-after", 10)
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, budget))
	if n := hec.Requests(); n != 1 {
		t.Errorf("%d requests: the receiver's Retry-After was not honoured", n)
	}
	all := r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
	if rs := reasons(all["splunk"]); rs["throttled"] != len(ids) {
		t.Errorf("dead letters by reason %v, want %d throttled", rs, len(ids))
	}
}

// A Splunk (or a proxy before it) that cuts connections without answering for a few requests:
// the retries deliver every record once.
func TestHECClosesConnectionsMidRequest(t *testing.T) {
	r := newRig(t)
	hec := r.hec("splunk", "RetryMaxAttempts=6", "MaxBatchEvents=10")
	h := r.start()
	cuts := pick(3, 5)
	hec.CloseNext(cuts)
	bodies, ids := alerts(t, "cut", pick(40, 400))
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, time.Minute))
	all := r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
	if n := len(all["splunk"]); n != 0 {
		t.Errorf("%d dead letters, want none: %v", n, reasons(all["splunk"]))
	}
	if hec.Requests() <= cuts {
		t.Errorf("%d requests for %d cut ones: the receiver never recovered", hec.Requests(), cuts)
	}
}

// One event Splunk cannot parse inside a batch: it alone is dead-lettered as rejected, the
// events before it are indexed once, the ones after it are sent again and indexed once.
func TestHECRejectsOnePoisonEvent(t *testing.T) {
	r := newRig(t)
	hec := r.hec("splunk", "MaxBatchEvents=500")
	h := r.start()
	const marker = "POISON-4f0c"
	hec.RejectMarker(marker)
	n := pick(30, 300)
	bodies, ids := alerts(t, "poison", n)
	poison := []int{n / 3}
	if soak() {
		poison = append(poison, n/2, n-1)
	}
	for _, p := range poison {
		bodies[p] = alertRecord(t, ids[p], " "+marker)
	}
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, time.Minute))
	all := r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
	if len(all["splunk"]) != len(poison) {
		t.Fatalf("%d dead letters, want %d (the poison events)", len(all["splunk"]), len(poison))
	}
	isPoison := map[string]bool{}
	for _, p := range poison {
		isPoison[ids[p]] = true
	}
	for _, l := range all["splunk"] {
		if l.Reason != "rejected" || !strings.Contains(strings.ToLower(l.Error), "invalid") {
			t.Errorf("letter %s: reason %s, error %q; want rejected with Splunk's text", l.AlertID, l.Reason, l.Error)
		}
		if !isPoison[l.AlertID] {
			t.Errorf("letter for %s, which carries no poison", l.AlertID)
		}
	}
}
