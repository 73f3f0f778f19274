package drills

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
)

// The dead-letter store goes away during an invocation whose destination refuses: nothing may
// be acknowledged, so the answer is 500; the host's retries, once storage is back, succeed and
// leave exactly one letter per record however often they run.
func TestStoreGoesAwayDuringAnInvocation(t *testing.T) {
	r := newRig(t)
	r.set("Forwarder__FunctionTimeout=00:00:30")
	hec := r.hec("splunk")
	h := r.start()
	// Open the table first, so the outage hits a handler that has already used it.
	warm, warmIDs := alerts(t, "store-warm", 3)
	hec.Refuse(400)
	h.mustSucceed(t, h.invoke(t, batch(warm, 1), 0, time.Minute))

	hec.Refuse(0)
	hec.Hang()
	bodies, ids := alerts(t, "store", pick(10, 100))
	b := batch(bodies, 100)
	done := invokeAsync(t, h, b, time.Minute, "invoke")
	if !poll(10*time.Second, func() bool { return hec.Held() > 0 }) {
		t.Fatalf("the delivery never reached the receiver\n%s", h.output())
	}
	r.az.Stop()
	hec.Refuse(400)
	hec.Release()
	res := <-done
	if res.Status != 500 {
		t.Fatalf("with the store down: HTTP %d %s, want 500\n%s", res.Status, res.Body, h.output())
	}
	r.az.Start()
	// The host runs the batch again, and again (say its answer to the first retry was lost).
	for retry := 1; retry <= pick(2, 5); retry++ {
		env, _ := b.Envelope(&hostsim.RetryContext{RetryCount: retry, MaxRetryCount: -1, Exception: "500"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := h.host.Invoke(ctx, "ForwardAlerts", env)
		cancel()
		if err != nil || !res.Succeeded() {
			t.Fatalf("host retry %d with the store back: %v HTTP %d %s\n%s", retry, err, res.Status, res.Body, h.output())
		}
	}
	all := r.account(ledger{Dest: "splunk", Want: append(warmIDs, ids...), Delivered: hecIDs(t, hec)})
	if rs := reasons(all["splunk"]); rs["rejected"] != len(warmIDs)+len(ids) {
		t.Errorf("dead letters by reason %v, want all rejected", rs)
	}
	for _, l := range all["splunk"] {
		if l.Coordinates.SequenceNumber >= 100 && l.Attempts < 2 {
			t.Errorf("letter %s counts %d attempts after several host runs", l.AlertID, l.Attempts)
			break
		}
	}
}

// SIGTERM while an invocation is in flight and its destination is slow: the handler takes no
// new invocation, finishes the one in flight with 200, and exits 0.
func TestSIGTERMFinishesTheInvocationInFlight(t *testing.T) {
	r := newRig(t)
	hec := r.hec("splunk")
	// Slow, but not so slow that the handler's grace period (25 s, in-flight work cancelled
	// at 20 s) cuts the invocation: that case is the next drill.
	hec.Delay(pick(time.Second, 3*time.Second))
	h := r.start()
	bodies, ids := alerts(t, "sigterm-finish", pick(20, 100))
	done := invokeAsync(t, h, batch(bodies, 1), time.Minute, "in-flight invocation")
	terminateWhen(t, h, func() bool { return hec.Requests() > 0 })
	res := <-done
	if !res.Succeeded() {
		t.Fatalf("in-flight invocation: HTTP %d %s\n%s", res.Status, res.Body, h.output())
	}
	exited(t, h)
	r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
}

// invokeAsync runs the invocation of b on h in the background, within timeout; its result
// arrives on the channel. An error fails the test, named what, unless what is "": a drill
// that kills the handler expects one.
func invokeAsync(t *testing.T, h *handler, b hostsim.Batch, timeout time.Duration, what string) <-chan hostsim.Result {
	done := make(chan hostsim.Result, 1)
	go func() {
		env, _ := b.Envelope(nil)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		res, err := h.host.Invoke(ctx, "ForwardAlerts", env)
		if err != nil && what != "" {
			t.Errorf("%s: %v", what, err)
		}
		done <- res
	}()
	return done
}

// invokeBatchAsync is invokeAsync for InvokeBatch, whose results (nil after an error that
// failed the test) arrive on the channel.
func invokeBatchAsync(t *testing.T, h *handler, b hostsim.Batch, timeout time.Duration) <-chan []hostsim.Result {
	done := make(chan []hostsim.Result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		res, err := h.host.InvokeBatch(ctx, "ForwardAlerts", b, 0)
		if err != nil {
			t.Errorf("invoke: %v", err)
		}
		done <- res
	}()
	return done
}

// terminateWhen sends h SIGTERM once reached reports the delivery under way, waits for the
// handler to say it is shutting down, and checks that it takes no new invocation.
func terminateWhen(t *testing.T, h *handler, reached func() bool) {
	t.Helper()
	if !poll(10*time.Second, reached) {
		t.Fatalf("the delivery never reached the receiver\n%s", h.output())
	}
	if err := h.host.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	h.waitLog(t, 10*time.Second, "shutting down")
	refused(t, h)
}

// refused checks that a stopping handler takes no new invocation.
func refused(t *testing.T, h *handler) {
	t.Helper()
	env, _ := batch([][]byte{[]byte(`{}`)}, 1).Envelope(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := h.host.Invoke(ctx, "ForwardAlerts", env)
	if err == nil {
		t.Errorf("a new invocation after SIGTERM was answered HTTP %d", res.Status)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a new invocation after SIGTERM: %v, want connection refused", err)
	}
}

// exited waits for the handler to exit and checks it did so cleanly.
func exited(t *testing.T, h *handler) {
	t.Helper()
	select {
	case <-h.host.Exited():
	case <-time.After(40 * time.Second):
		t.Fatalf("the handler did not exit after SIGTERM\n%s", h.output())
	}
	if code := h.host.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, h.output())
	}
	if !strings.Contains(h.stdout.String(), "handler stopped") {
		t.Errorf("no clean stop logged\n%s", h.output())
	}
}

// SIGTERM while an invocation is stuck on a destination that never answers: before the grace
// period ends the handler answers it, either with 200 and every record dead-lettered or with
// 500 (nothing acknowledged), and exits 0; after a 500 the host runs the batch again on a new
// handler, which delivers every record.
func TestSIGTERMFailsAStuckInvocationAndTheHostRetries(t *testing.T) {
	r := newRig(t)
	r.set("Forwarder__FunctionTimeout=00:02:00")
	hec := r.hec("splunk", "AttemptTimeout=00:02:00", "RequestTimeout=00:02:00")
	hec.Hang()
	h := r.start()
	bodies, ids := alerts(t, "sigterm-stuck", pick(20, 200))
	b := batch(bodies, 1)
	done := invokeAsync(t, h, b, time.Minute, "in-flight invocation")
	terminateWhen(t, h, func() bool { return hec.Held() > 0 })
	res := <-done
	exited(t, h)
	hec.Release()
	switch {
	case res.Succeeded():
		// Cleanly finished: whatever was not delivered must be in the dead letters already.
		r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
		return
	case res.Status != 500:
		t.Fatalf("stuck invocation: HTTP %d %s, want 200 or 500\n%s", res.Status, res.Body, h.output())
	}
	// Failed: the host runs the batch again, here on a new handler.
	h2 := r.start()
	retry, _ := b.Envelope(&hostsim.RetryContext{RetryCount: 1, MaxRetryCount: -1, Exception: "500"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res2, err := h2.host.Invoke(ctx, "ForwardAlerts", retry)
	if err != nil || !res2.Succeeded() {
		t.Fatalf("host retry on a new handler: %v HTTP %d\n%s", err, res2.Status, h2.output())
	}
	all := r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
	if n := len(all["splunk"]); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// The host gives up on an invocation (its timeout) and runs the same batch again while the
// first run may still be working, then once more: the refusing destination ends with exactly
// one letter per record, the healthy one with every record (once per run that reached it,
// which at-least-once permits).
func TestSameBatchTwiceAfterAHostTimeout(t *testing.T) {
	r := newRig(t)
	r.set("Forwarder__FunctionTimeout=00:00:30")
	bad := r.hec("refusing", "RetryMaxAttempts=2")
	good := r.hec("healthy")
	h := r.start()
	bad.Delay(2 * time.Second)
	bad.Refuse(400)
	bodies, ids := alerts(t, "twice", pick(20, 200))
	b := batch(bodies, 50)
	env, _ := b.Envelope(nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// The host's own timeout: it stops waiting while the delivery is slow.
		poll(10*time.Second, func() bool { return bad.Requests() > 0 })
		cancel()
	}()
	if _, err := h.host.Invoke(ctx, "ForwardAlerts", env); err == nil {
		t.Fatal("the first run was answered before the host gave up: the drill proves nothing")
	}
	retries := pick(2, 4)
	for retry := 1; retry <= retries; retry++ {
		env, _ := b.Envelope(&hostsim.RetryContext{RetryCount: retry, MaxRetryCount: -1, Exception: "timeout"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := h.host.Invoke(ctx, "ForwardAlerts", env)
		cancel()
		if err != nil || !res.Succeeded() {
			t.Fatalf("host retry %d: %v HTTP %d\n%s", retry, err, res.Status, h.output())
		}
	}
	// Let the abandoned first run finish whatever it still does before counting.
	if !poll(30*time.Second, func() bool { return strings.Count(h.stdout.String(), `"invocation answered"`) > retries }) {
		t.Fatalf("the abandoned first run never ended\n%s", h.output())
	}
	all := r.account(
		ledger{Dest: "refusing", Want: ids, Delivered: hecIDs(t, bad)},
		ledger{Dest: "healthy", Want: ids, Delivered: hecIDs(t, good),
			DupsAllowed: "every host run delivers the batch again to a healthy destination"},
	)
	if n := len(all["refusing"]); n != len(ids) {
		t.Errorf("%d letters, want %d", n, len(ids))
	}
}

// The store fails in the middle of writing an invocation's dead letters: the invocation
// answers 500, and the host's retry, with the destination healthy again, delivers every
// record. Letters the failed run did manage to write must not outlive that delivery, or the
// replay timer sends those records a second time and an operator sees failures that are not.
func TestStoreFailsMidWriteThenTheRetryDelivers(t *testing.T) {
	r := newRig(t)
	hec := r.hec("splunk", "RetryMaxAttempts=1")
	h := r.start()
	hec.Refuse(400)
	bodies, ids := alerts(t, "midwrite", pick(3000, 10000))
	b := batch(bodies, 1)
	done := invokeAsync(t, h, b, 2*time.Minute, "invoke")
	if !poll(time.Minute, func() bool { return r.anyEntity() }) {
		t.Fatalf("no dead letter was ever written\n%s", h.output())
	}
	r.az.Stop()
	res := <-done
	if res.Status != 500 {
		t.Fatalf("with the store gone mid-write: HTTP %d %s, want 500\n%s", res.Status, res.Body, h.output())
	}
	r.az.Start()
	written := len(r.letters()["splunk"])
	t.Logf("the failed run stored %d of %d letters before the store went away", written, len(ids))
	hec.Refuse(0)
	env, _ := b.Envelope(&hostsim.RetryContext{RetryCount: 1, MaxRetryCount: -1, Exception: "500"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.host.Invoke(ctx, "ForwardAlerts", env)
	if err != nil || !res.Succeeded() {
		t.Fatalf("host retry: %v HTTP %d\n%s", err, res.Status, h.output())
	}
	r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
}
