package drills

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

// syslogIDs reads what rsyslog wrote and counts alert ids per input ("tcp", "tls"): the
// alertId SD param of RFC 5424 messages, cs1 (AlertId) of CEF ones. It waits up to bound for
// every id in want to appear on every input listed, since rsyslog writes after it acknowledges
// nothing.
func syslogIDs(t *testing.T, rs *testenv.Rsyslog, want []string, inputs []string, bound time.Duration) map[string]map[string]int {
	t.Helper()
	var got map[string]map[string]int
	poll(bound, func() bool {
		got = map[string]map[string]int{}
		for _, in := range inputs {
			got[in] = map[string]int{}
		}
		for _, m := range rs.Messages(t, 0, 0) {
			in := m.Fields["inputname"]
			if got[in] == nil {
				continue
			}
			id := ""
			switch {
			case m.CEF != nil:
				id = m.CEF.Extensions["cs1"]
			case m.SD != nil:
				for _, el := range m.SD {
					if v, ok := el["alertId"]; ok {
						id = v
					}
				}
			}
			if id == "" {
				t.Fatalf("a message on %s without an alert id: %s", in, m.Line)
			}
			got[in][id]++
		}
		for _, in := range inputs {
			for _, id := range want {
				if got[in][id] == 0 {
					return false
				}
			}
		}
		return true
	})
	return got
}

// accountResent checks, for the two destinations of syslogRig, that every id arrived within
// bound (twice is allowed after a resend) and that none became a dead letter; why, when not
// empty, ends the error saying why none should have.
func accountResent(t *testing.T, r *rig, rs *testenv.Rsyslog, ids []string, bound time.Duration, why string) {
	t.Helper()
	got := syslogIDs(t, rs, ids, []string{"tcp", "tls"}, bound)
	all := r.account(
		ledger{Dest: "sltcp", Want: ids, Delivered: got["tcp"], DupsAllowed: dupsAfterResend},
		ledger{Dest: "ceftls", Want: ids, Delivered: got["tls"], DupsAllowed: dupsAfterResend},
	)
	for d, ls := range all {
		if len(ls) != 0 {
			t.Errorf("%s: %d dead letters %v, want none%s", d, len(ls), reasons(ls), why)
		}
	}
}

// syslogRig declares a syslog destination over TCP and a CEF one over TLS to the same rsyslog,
// with retries long enough to outlast a restart.
func syslogRig(t *testing.T) (*rig, *testenv.Rsyslog) {
	r := newRig(t)
	rs := testenv.StartRsyslog(t)
	retry := []string{"RetryMaxAttempts=40", "RetryInitialInterval=50ms", "RetryMaxInterval=250ms", "DialTimeout=00:00:02", "WriteTimeout=00:00:05"}
	r.dest("sltcp", append([]string{"Type=syslog", "Address=" + rs.TCPAddress()}, retry...)...)
	r.dest("ceftls", append([]string{"Type=cef", "Address=" + rs.TLSAddress(), "CAFile=" + rs.CAFile()}, retry...)...)
	return r, rs
}

const dupsAfterResend = "syslog over TCP has no acknowledgement: a batch whose connection broke is sent again whole, " +
	"so records the receiver already had may arrive twice"

// The collector is stopped between two batches and is down when the next one comes: the
// invocation's retries outlast the restart and every record arrives.
func TestSyslogCollectorRestartsBetweenBatches(t *testing.T) {
	r, rs := syslogRig(t)
	h := r.start()
	var want []string
	cycles := pick(1, 4)
	for c := range cycles {
		warm, warmIDs := alerts(t, fmt.Sprintf("warm-%d", c), 5)
		h.mustSucceed(t, h.invoke(t, batch(warm, int64(c*1000)), 0, time.Minute))
		want = append(want, warmIDs...)
		// The connections are open now; the collector goes away under them.
		syslogIDs(t, rs, warmIDs, []string{"tcp", "tls"}, 20*time.Second)
		rs.Stop()
		markTCP := h.lines("delivery attempt failed", `"destination":"sltcp"`)
		markTLS := h.lines("delivery attempt failed", `"destination":"ceftls"`)
		bodies, ids := alerts(t, fmt.Sprintf("restart-%d", c), pick(20, 200))
		want = append(want, ids...)
		done := invokeBatchAsync(t, h, batch(bodies, int64(c*1000+500)), time.Minute)
		// Restart only once both destinations have seen it down.
		if !poll(30*time.Second, func() bool {
			return h.lines("delivery attempt failed", `"destination":"sltcp"`) > markTCP &&
				h.lines("delivery attempt failed", `"destination":"ceftls"`) > markTLS
		}) {
			t.Fatalf("no failed attempts while the collector was down\n%s", h.output())
		}
		rs.Start(t)
		res := <-done
		if res == nil {
			t.FailNow()
		}
		h.mustSucceed(t, res)
	}
	accountResent(t, r, rs, want, 20*time.Second, ": the retries should outlast the restart")
}

// The collector is stopped while a large batch is being written and started again: what the
// invocation could not confirm is sent again (duplicates allowed), nothing is missing.
func TestSyslogCollectorRestartsMidBatch(t *testing.T) {
	// Each round has a collector of its own, so that "something of this batch arrived" is a
	// cheap question.
	for round := range pick(1, 4) {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			r, rs := syslogRig(t)
			h := r.start()
			// Many large records make the batch take long enough to be cut in the middle.
			var bodies [][]byte
			var ids []string
			pad := strings.Repeat("x", 2000)
			for i := range 3000 {
				id := fmt.Sprintf("mid-%d-%d", round, i)
				ids = append(ids, id)
				bodies = append(bodies, alertRecord(t, id, pad))
			}
			done := invokeBatchAsync(t, h, batch(bodies, 1), 2*time.Minute)
			// Stop the collector as soon as it has written something: the batch is then in
			// flight.
			if !poll(time.Minute, func() bool { return len(done) > 0 || len(rs.Messages(t, 0, 0)) > 0 }) {
				t.Fatalf("nothing arrived within a minute\n%s", h.output())
			}
			if len(done) > 0 {
				t.Log("the invocation ended before the collector was stopped")
			}
			rs.Stop()
			rs.Start(t)
			res := <-done
			if res == nil {
				t.FailNow()
			}
			h.mustSucceed(t, res)
			accountResent(t, r, rs, ids, 30*time.Second, "")
		})
	}
}

// A TLS destination configured with a CA that did not sign the collector's certificate: the
// handshake fails fast, the logs say why, and every record is dead-lettered as unauthorized
// without retries that could not help.
func TestSyslogTLSWithTheWrongCA(t *testing.T) {
	r := newRig(t)
	rs := testenv.StartRsyslog(t)
	for _, typ := range []string{"syslog", "cef"} {
		r.dest("wrongca"+typ, "Type="+typ, "Address="+rs.TLSAddress(), "CAFile="+testenv.WrongCAFile(t),
			"RetryMaxAttempts=5", "RetryInitialInterval=50ms")
	}
	h := r.start()
	bodies, ids := alerts(t, "wrongca", 10)
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, 30*time.Second))
	all := r.account(
		ledger{Dest: "wrongcasyslog", Want: ids, Delivered: map[string]int{}},
		ledger{Dest: "wrongcacef", Want: ids, Delivered: map[string]int{}},
	)
	for d, ls := range all {
		for _, l := range ls {
			if l.Reason != "unauthorized" || !strings.Contains(l.Error, "certificate") {
				t.Errorf("%s letter %s: reason %s error %q, want unauthorized naming the certificate", d, l.AlertID, l.Reason, l.Error)
				break
			}
		}
	}
	if out := h.stdout.String(); !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("the logs do not say why the handshake failed:\n%s", out)
	}
	if n := len(rs.Messages(t, 0, 0)); n != 0 {
		t.Errorf("the collector wrote %d messages over an unverified connection", n)
	}
}

// stallListener accepts TCP connections and never reads from them, as a collector whose disk
// is full or whose process is frozen does: writes succeed until the socket buffers are full and
// then block.
func stallListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "tcp://" + ln.Addr().String()
}

// A collector that accepts and then stops reading: the writes time out, the invocation answers
// within its budget, and every record is dead-lettered, including those that only reached the
// socket buffers, since nothing confirmed them.
func TestSyslogCollectorStopsReading(t *testing.T) {
	r := newRig(t)
	// The stalled writes give up after a second each, so the invocation is done in seconds;
	// the budget leaves room for the rest of it (20 MB decoded, sent to the healthy Splunk and
	// dead-lettered once), which under -race on a loaded 2-core machine has taken 15 s.
	budget := time.Minute
	r.set("Forwarder__FunctionTimeout=" + budget.String())
	r.dest("stalled", "Type=syslog", "Address="+stallListener(t), "WriteTimeout=00:00:01", "AttemptTimeout=00:00:02",
		"RetryMaxAttempts=2", "RetryInitialInterval=50ms")
	healthy := r.hec("healthy")
	h := r.start()
	// More than loopback's socket buffers hold, so the writes must block.
	n := pick(1000, 3000)
	pad := strings.Repeat("y", 20000)
	var bodies [][]byte
	var ids []string
	for i := range n {
		id := "stall-" + strconv.Itoa(i)
		ids = append(ids, id)
		bodies = append(bodies, alertRecord(t, id, pad))
	}
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, budget))
	all := r.account(
		ledger{Dest: "stalled", Want: ids, Delivered: map[string]int{}},
		ledger{Dest: "healthy", Want: ids, Delivered: hecIDs(t, healthy)},
	)
	t.Logf("stalled: letters by reason %v", reasons(all["stalled"]))
}
