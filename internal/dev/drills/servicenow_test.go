package drills

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/snowsim"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

const (
	snowUser     = "svc-defender-drill"
	snowPassword = "snowPASSWORD-5e0c1a77-drill"
)

// snow starts a ServiceNow imitation and declares destination name for it; extra are
// "Key=Value" settings that override the defaults.
func (r *rig) snow(name string, extra ...string) *snowsim.Server {
	r.t.Helper()
	s, err := snowsim.Start(snowsim.Options{User: snowUser, Password: snowPassword})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(s.Close)
	r.dest(name, append([]string{"Type=servicenow", "Url=" + s.URL, "Username=" + snowUser, "Password=" + snowPassword,
		"RetryMaxAttempts=4", "RetryInitialInterval=20ms", "RetryMaxInterval=1s"}, extra...)...)
	return s
}

// snowAlert is the sample alert with SystemAlertId id, Defender status status, extra added to
// its description, and IsSnapshot set for a weekly snapshot export.
func snowAlert(t *testing.T, id, status, extra string, snapshot bool) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(alertRecord(t, id, extra), &m); err != nil {
		t.Fatal(err)
	}
	m["Status"] = status
	if snapshot {
		m["IsSnapshot"] = true
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// incidents counts, by correlation id, the incidents that carry one: what the SOC sees.
func incidents(s *snowsim.Server) map[string]int {
	out := map[string]int{}
	for _, rec := range s.Records("incident") {
		if id := rec["correlation_id"]; id != "" {
			out[id]++
		}
	}
	return out
}

// oneIncident returns the incident of id, failing the drill unless there is exactly one.
func oneIncident(t *testing.T, s *snowsim.Server, id string) map[string]string {
	t.Helper()
	got := s.Find("incident", "correlation_id", id)
	if len(got) != 1 {
		t.Fatalf("%d incidents for %s, want 1", len(got), id)
	}
	return got[0]
}

// One alert through its life, as Defender exports it: created, updated, resolved, re-exported
// in the weekly snapshot, delivered twice by the host; then a 429 storm the retries ride out,
// one they do not, and a password change, whose dead letters the replay timer delivers into
// the incidents they belong to once the instance is back.
func TestServiceNowIncidentLifecycle(t *testing.T) {
	r := newRig(t)
	r.set("DeadLetter__ReplaySchedule=0 */5 * * * *")
	s := r.snow("snow")
	h := r.start()
	const id = "2517184898549829577_snow-lifecycle"
	seq := int64(100)
	deliver := func(t *testing.T, bodies ...[]byte) {
		t.Helper()
		h.mustSucceed(t, h.invoke(t, batch(bodies, seq), 0, time.Minute))
		seq += int64(len(bodies))
	}
	writes := func(t *testing.T, phase string, before, want int) {
		t.Helper()
		if got := s.Writes() - before; got != want {
			t.Errorf("%s: %d writes to the instance, want %d", phase, got, want)
		}
	}
	noLetters := func(t *testing.T) {
		t.Helper()
		all := r.account(ledger{Dest: "snow", Want: []string{id}, Delivered: incidents(s)})
		if n := len(all["snow"]); n != 0 {
			t.Errorf("%d dead letters, want none", n)
		}
	}

	var number string
	t.Run("create", func(t *testing.T) {
		deliver(t, snowAlert(t, id, "New", "", false))
		inc := oneIncident(t, s, id)
		number = inc["number"]
		if inc["state"] != "1" || inc["impact"] != "2" || inc["urgency"] != "2" || inc["short_description"] != "[SAMPLE ALERT] Login from a suspicious IP" {
			t.Errorf("created %s: state %q impact %q urgency %q short_description %q", number, inc["state"], inc["impact"], inc["urgency"], inc["short_description"])
		}
		noLetters(t)
	})
	t.Run("update", func(t *testing.T) {
		before := s.Writes()
		deliver(t, snowAlert(t, id, "InProgress", " Seen again.", false))
		writes(t, "update", before, 1)
		inc := oneIncident(t, s, id)
		if inc["number"] != number || inc["state"] != "2" || !strings.Contains(inc["description"], "Seen again.") {
			t.Errorf("updated %s: state %q, description %.300q", inc["number"], inc["state"], inc["description"])
		}
		noLetters(t)
	})
	t.Run("resolve", func(t *testing.T) {
		before := s.Writes()
		deliver(t, snowAlert(t, id, "Resolved", " Seen again.", false))
		writes(t, "resolve", before, 1)
		inc := oneIncident(t, s, id)
		if inc["number"] != number || inc["state"] != "6" || inc["close_code"] == "" || inc["close_notes"] == "" {
			t.Errorf("resolved %s: state %q close_code %q close_notes %q", inc["number"], inc["state"], inc["close_code"], inc["close_notes"])
		}
		noLetters(t)
	})
	t.Run("snapshot re-export", func(t *testing.T) {
		before := s.Writes()
		deliver(t, snowAlert(t, id, "Resolved", " Seen again.", true))
		writes(t, "snapshot", before, 0)
		noLetters(t)
	})
	t.Run("duplicate delivery", func(t *testing.T) {
		before := s.Writes()
		b := batch([][]byte{snowAlert(t, id, "Resolved", " Seen again.", false), snowAlert(t, id, "Resolved", " Seen again.", false)}, seq)
		for retry := range 2 {
			var rc *hostsim.RetryContext
			if retry > 0 {
				rc = &hostsim.RetryContext{RetryCount: retry, MaxRetryCount: -1, Exception: "500"}
			}
			env, _ := b.Envelope(rc)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			res, err := h.host.Invoke(ctx, "ForwardAlerts", env)
			cancel()
			if err != nil || !res.Succeeded() {
				t.Fatalf("delivery %d: %v HTTP %d %s\n%s", retry, err, res.Status, res.Body, h.output())
			}
		}
		seq += 2
		writes(t, "duplicate delivery", before, 0)
		if inc := oneIncident(t, s, id); inc["number"] != number {
			t.Errorf("the incident is now %s, want %s", inc["number"], number)
		}
		noLetters(t)
	})

	const stormID, lockedID = "2517184898549829577_snow-storm", "2517184898549829577_snow-locked"
	var stormNumber string
	t.Run("429 storm within the retries", func(t *testing.T) {
		s.Throttle(2, 1) // two refusals, Retry-After 1 s; the third attempt goes through
		start := time.Now()
		deliver(t, snowAlert(t, stormID, "New", "", false))
		if el := time.Since(start); el < 2*time.Second {
			t.Errorf("delivered after %v: the handler did not wait the 1 s Retry-After twice", el)
		}
		stormNumber = oneIncident(t, s, stormID)["number"]
		all := r.account(ledger{Dest: "snow", Want: []string{id, stormID}, Delivered: incidents(s)})
		if n := len(all["snow"]); n != 0 {
			t.Errorf("%d dead letters, want none", n)
		}
	})
	t.Run("429 storm beyond the retries, then 401", func(t *testing.T) {
		s.Throttle(1000, 1)
		deliver(t, snowAlert(t, stormID, "Resolved", "", false))
		s.Throttle(0, 0)
		s.RejectCredentials(true)
		deliver(t, snowAlert(t, lockedID, "New", "", false))
		all := r.letters()
		if rs := reasons(all["snow"]); rs["throttled"] != 1 || rs["unauthorized"] != 1 {
			t.Fatalf("dead letters by reason %v, want one throttled and one unauthorized", rs)
		}
		for _, l := range all["snow"] {
			if l.Reason == "unauthorized" && !strings.Contains(l.Error, "User Not Authenticated") {
				t.Errorf("the unauthorized letter does not carry the instance's message: %s", l.Error)
			}
		}
		for _, out := range append(r.rawEntities(), h.stdout.String(), h.stderr.String()) {
			if strings.Contains(out, snowPassword) {
				t.Fatal("the ServiceNow password appears in the handler's output or a dead letter")
			}
		}
		if inc := oneIncident(t, s, stormID); inc["state"] != "1" {
			t.Errorf("the throttled resolve changed the incident: state %q", inc["state"])
		}
	})
	t.Run("dead letters replayed into the right incidents", func(t *testing.T) {
		s.RejectCredentials(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tr, err := h.host.Invoke(ctx, "ReplayDeadLetters", hostsim.TimerEnvelope("ReplayDeadLetters", time.Now()))
		cancel()
		if err != nil || !tr.Succeeded() {
			t.Fatalf("timer run: %v HTTP %d %s\n%s", err, tr.Status, tr.Body, h.output())
		}
		all := r.account(ledger{Dest: "snow", Want: []string{id, stormID, lockedID}, Delivered: incidents(s)})
		if n := len(all["snow"]); n != 0 {
			t.Errorf("%d dead letters left after the replay", n)
		}
		if inc := oneIncident(t, s, stormID); inc["number"] != stormNumber || inc["state"] != "6" {
			t.Errorf("the replayed resolve: %s state %q, want %s resolved", inc["number"], inc["state"], stormNumber)
		}
		oneIncident(t, s, lockedID)
		if n := len(s.Records("incident")); n != 3 {
			t.Errorf("%d incidents, want 3", n)
		}
	})
}

// Two handler instances get the same new alert at the same moment (two partitions, or a
// redelivery to another instance): both look it up, find nothing and create; the lookup after
// the create leaves one incident, the older, and resolves the newer as its duplicate.
func TestServiceNowTwoHandlersRace(t *testing.T) {
	r := newRig(t)
	s := r.snow("snow")
	a, b := r.start(), r.start()
	const id = "2517184898549829577_snow-race"
	s.HoldLookups(2, 20*time.Second)
	var wg sync.WaitGroup
	for i, h := range []*handler{a, b} {
		wg.Go(func() {
			env, _ := batch([][]byte{snowAlert(t, id, "New", "", false)}, int64(10+i)).Envelope(nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := h.host.Invoke(ctx, "ForwardAlerts", env)
			if err != nil || !res.Succeeded() {
				t.Errorf("handler %d: %v HTTP %d %s\n%s", i, err, res.Status, res.Body, h.output())
			}
		})
	}
	wg.Wait()
	all := s.Records("incident")
	if len(all) != 2 {
		t.Fatalf("%d incidents created, want 2: the handlers did not race", len(all))
	}
	kept := oneIncident(t, s, id)
	if kept["number"] != all[0]["number"] {
		t.Errorf("kept %s, want the older %s", kept["number"], all[0]["number"])
	}
	if dup := all[1]; dup["state"] != "6" || dup["close_code"] != "Duplicate" {
		t.Errorf("the newer incident %s: state %q close_code %q, want resolved as a duplicate", dup["number"], dup["state"], dup["close_code"])
	}
	r.account(ledger{Dest: "snow", Want: []string{id}, Delivered: incidents(s)})
	// Later exports go to the one kept, from either handler.
	b.mustSucceed(t, b.invoke(t, batch([][]byte{snowAlert(t, id, "Resolved", "", false)}, 20), 0, time.Minute))
	if inc := oneIncident(t, s, id); inc["number"] != kept["number"] || inc["state"] != "6" {
		t.Errorf("after Resolved: %s state %q", inc["number"], inc["state"])
	}
}

// Wrong ServiceNow settings stop the handler at start, every problem named at once, and the
// secrets among them are not echoed.
func TestServiceNowBadSettingsStopTheStart(t *testing.T) {
	r := newRig(t)
	const clientSecret = "snowCLIENTSECRET-b71d0c39"
	r.dest("snow", "Type=servicenow", "Url=ftp://instance", "ClientSecret="+clientSecret, "Impact__High=5",
		"Fields__state=1", "ResolveState=7", "Tabel=incident")
	stdout, stderr := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	host := &hostsim.Host{Path: handlerBin, Env: r.env, Dir: t.TempDir(), Stdout: stdout, Stderr: stderr}
	if _, err := host.Start(context.Background(), 15*time.Second); err == nil {
		_ = host.Stop(10 * time.Second)
		t.Fatal("the handler started with wrong ServiceNow settings")
	}
	out := stdout.String() + stderr.String()
	for _, want := range []string{
		`Destinations__snow: servicenow: Url "ftp://instance"`,
		"Destinations__snow: servicenow: ClientSecret is set without ClientId",
		`Destinations__snow__Impact__High: "5": want one of 1, 2, 3`,
		"Destinations__snow: servicenow: Fields__state: this column is written by the forwarder itself",
		`Destinations__snow: servicenow: ResolveState "7" is one of ClosedStates`,
		"Destinations__snow__tabel: unknown setting",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the start-up error does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, clientSecret) {
		t.Error("the start-up error shows the client secret")
	}
}
