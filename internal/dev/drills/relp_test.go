package drills

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

const dupsAfterRELPResend = "RELP sends again what a broken session left unanswered, and rsyslog may have written some of " +
	"those before it died, so they may arrive twice"

// relpDests are the two ways a record reaches imrelp in the drill: syslog over plain RELP and
// CEF over RELP with TLS (mutual, as imrelp with a certificate demands).
var relpDests = []struct {
	name, input string
	settings    func(rs *testenv.Rsyslog) []string
}{
	{"relpsys", "relp", func(rs *testenv.Rsyslog) []string {
		return []string{"Type=syslog", "Address=" + rs.RELPAddress()}
	}},
	{"relpcef", "relptls", func(rs *testenv.Rsyslog) []string {
		return []string{"Type=cef", "Address=" + rs.RELPTLSAddress(), "CAFile=" + rs.CAFile(),
			"ClientCert=" + rs.ClientCertFile(), "ClientKey=" + rs.ClientKeyFile()}
	}},
}

// rsyslog is killed with SIGKILL while a window of RELP transactions is open, and started
// again. Every record ends in rsyslog's output (a record whose answer was lost may be there
// twice) or, if the retries ran out, in a dead letter: none is lost. The test rsyslog writes
// before it answers (a direct queue), so what it acknowledged is in its output; with the default
// in-memory queue an acknowledged record could die in rsyslog's queue, out of the sender's sight.
func TestRELPCollectorKilledMidWindow(t *testing.T) {
	for _, d := range relpDests {
		for round := range pick(1, 3) {
			t.Run(fmt.Sprintf("%s round %d", d.name, round), func(t *testing.T) {
				r := newRig(t)
				rs := testenv.StartRsyslogRELP(t)
				// A window smaller than the batch, and retries long enough to outlast a restart.
				r.dest(d.name, append(d.settings(rs), "Window=32", "RetryMaxAttempts=60", "RetryInitialInterval=50ms",
					"RetryMaxInterval=250ms", "DialTimeout=00:00:02", "WriteTimeout=00:00:05")...)
				h := r.start()
				var bodies [][]byte
				var ids []string
				for i := range pick(2000, 5000) {
					id := fmt.Sprintf("%s-%d-%d", d.name, round, i)
					ids = append(ids, id)
					bodies = append(bodies, alertRecord(t, id, strings.Repeat("r", 500)))
				}
				done := invokeBatchAsync(t, h, batch(bodies, 1), 3*time.Minute)
				// Kill as soon as records arrive: the session is then open with a window in flight
				// (checked below in the logs). The poll only looks at the file's size, so it reacts
				// within milliseconds however large the output grows.
				if !poll(2*time.Minute, func() bool { return len(done) > 0 || rs.Written() > 0 }) {
					t.Fatalf("nothing arrived within two minutes\n%s", h.output())
				}
				if len(done) > 0 {
					t.Fatalf("the invocation ended before rsyslog could be killed: the batch is too small to prove anything\n%s", h.output())
				}
				rs.Kill()
				before := rs.Lines()
				rs.Start(t)
				res := <-done
				if res == nil {
					t.FailNow()
				}
				h.mustSucceed(t, res)
				got := syslogIDs(t, rs, ids, []string{d.input}, time.Minute)
				all := r.account(ledger{Dest: d.name, Want: ids, Delivered: got[d.input], DupsAllowed: dupsAfterRELPResend})
				broke := h.lines("relp session broke", `"destination":"`+d.name+`"`)
				failed := h.lines("delivery attempt failed", `"destination":"`+d.name+`"`)
				t.Logf("rsyslog had written %d of %d records when it was killed; %d sessions broke with their unanswered records resent at once, %d attempts failed and were retried",
					before, len(ids), broke, failed)
				if broke+failed == 0 {
					t.Errorf("the session never broke: the kill did not land in a window\n%s", h.output())
				}
				if ls := all[d.name]; len(ls) != 0 {
					t.Errorf("%d dead letters %v, want none: the retries should outlast the restart", len(ls), reasons(ls))
				}
			})
		}
	}
}

// Every destination type that rides on syslog takes a RELP address: syslog and LEEF over plain
// RELP, CEF and LogRhythm's key/value syslog over RELP with TLS, all to one imrelp. Each record
// arrives once per destination and nothing is dead-lettered.
func TestRELPEverySyslogType(t *testing.T) {
	r := newRig(t)
	rs := testenv.StartRsyslogRELP(t)
	tls := []string{"CAFile=" + rs.CAFile(), "ClientCert=" + rs.ClientCertFile(), "ClientKey=" + rs.ClientKeyFile()}
	r.dest("relpsyslog", "Type=syslog", "Address="+rs.RELPAddress(), "Window=4")
	r.dest("relpleef", "Type=leef", "Address="+rs.RELPAddress())
	r.dest("relpcef", append([]string{"Type=cef", "Address=" + rs.RELPTLSAddress()}, tls...)...)
	r.dest("relplr", append([]string{"Type=logrhythm", "Transport=syslog", "Address=" + rs.RELPTLSAddress(), "Window=1"}, tls...)...)
	h := r.start()
	bodies, ids := alerts(t, "relpall", 30)
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, time.Minute))
	// Two destinations share each input; the payload tells them apart.
	idRE := regexp.MustCompile(`relpall-[0-9]{5}`)
	got := map[string]map[string]int{"relpsyslog": {}, "relpleef": {}, "relpcef": {}, "relplr": {}}
	poll(30*time.Second, func() bool { return len(rs.Messages(t, 0, 0)) >= 4*len(ids) })
	for _, m := range rs.Messages(t, 0, 0) {
		raw := m.Fields["rawmsg"]
		var dest string
		switch in := m.Fields["inputname"]; {
		case in == "relp" && strings.Contains(raw, "LEEF:2.0|"):
			dest = "relpleef"
		case in == "relp":
			dest = "relpsyslog"
		case in == "relptls" && strings.Contains(raw, "CEF:0|"):
			dest = "relpcef"
		case in == "relptls":
			dest = "relplr"
		default:
			t.Fatalf("a message on input %q: %.200s", in, raw)
		}
		seen := map[string]bool{}
		for _, id := range idRE.FindAllString(raw, -1) {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Fatalf("%s: want exactly one alert id in %.300q, found %v", dest, raw, seen)
		}
		for id := range seen {
			got[dest][id]++
		}
	}
	var ledgers []ledger
	for _, d := range []string{"relpsyslog", "relpleef", "relpcef", "relplr"} {
		ledgers = append(ledgers, ledger{Dest: d, Want: ids, Delivered: got[d]})
	}
	all := r.account(ledgers...)
	for d, ls := range all {
		if len(ls) != 0 {
			t.Errorf("%s: %d dead letters %v, want none", d, len(ls), reasons(ls))
		}
	}
}
