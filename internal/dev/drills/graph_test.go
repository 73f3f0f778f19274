package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/graphsim"
	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
)

// The Graph drills run the real handler against graphsim (token endpoint and alerts_v2 over
// TLS with a test CA) and a loopback HEC, with the watermark and the dead letters in Azurite.

const graphTenant = "contoso"

// graphRig adds graphsim and the Graph settings for one tenant to a rig.
func graphRig(t *testing.T, r *rig, pageSize int) *graphsim.Server {
	t.Helper()
	sim, err := graphsim.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.AddApp("tid-contoso", "app-contoso", "graph-secret-7f3a1c")
	ca, err := sim.WriteCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{
		"Graph__Schedule=0 */1 * * * *",
		"Graph__Tenants__" + graphTenant + "__TenantId=tid-contoso",
		"Graph__Tenants__" + graphTenant + "__ClientId=app-contoso",
		"Graph__Tenants__" + graphTenant + "__ClientSecret=graph-secret-7f3a1c",
		"Graph__AuthorityHost=" + sim.URL,
		"Graph__DisableInstanceDiscovery=true",
		"Graph__BaseUrl=" + sim.URL,
		"Graph__CAFile=" + ca,
		fmt.Sprintf("Graph__PageSize=%d", pageSize),
	} {
		r.set(kv)
	}
	return sim
}

// graphPut stores n new Defender for Cloud alerts named prefix-i in the imitation (the tenant
// the app registration's token is for) and returns their providerAlertIds.
func graphPut(sim *graphsim.Server, prefix string, n int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("dc6385_%s-%d", prefix, i)
		sim.Put("tid-contoso", graphsim.Alert("tid-contoso", id, graphsim.MDC, "Suspicious command "+prefix, "high", "new"))
		ids = append(ids, fmt.Sprintf("%s-%d", prefix, i))
	}
	return ids
}

// pollGraph runs the PollGraphAlerts timer once and returns its result.
func pollGraph(t *testing.T, h *handler) hostsim.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.host.Invoke(ctx, "PollGraphAlerts", hostsim.TimerEnvelope("PollGraphAlerts", time.Now()))
	if err != nil {
		t.Fatalf("PollGraphAlerts: %v\n%s", err, h.output())
	}
	t.Logf("PollGraphAlerts HTTP %d %v", res.Status, res.Response.Logs)
	return res
}

func mustPoll(t *testing.T, h *handler) {
	t.Helper()
	if res := pollGraph(t, h); !res.Succeeded() {
		t.Fatalf("PollGraphAlerts answered HTTP %d %s\n%s", res.Status, res.Body, h.output())
	}
}

// graphVersion is one alert version as a HEC event carries it.
type graphVersion struct{ providerAlertID, lastUpdate string }

// graphEvents counts HEC events by alert (providerAlertId) and by version, checking that each
// is a graphalert under our sourcetype.
func graphEvents(t *testing.T, rc *hecrecv.Receiver) (byAlert map[string]int, byVersion map[graphVersion]int) {
	t.Helper()
	byAlert, byVersion = map[string]int{}, map[graphVersion]int{}
	for _, ev := range rc.Events() {
		var a struct {
			ProviderAlertID    string `json:"providerAlertId"`
			LastUpdateDateTime string `json:"lastUpdateDateTime"`
		}
		if err := json.Unmarshal(ev.Event, &a); err != nil || a.ProviderAlertID == "" {
			t.Fatalf("HEC event that is not a Graph alert (%v): %.200s", err, ev.Event)
		}
		if ev.SourceType != "ms:graph:security:alert_v2" || ev.Fields["kind"] != "graphalert" {
			t.Errorf("event of %s has sourcetype %q kind %v", a.ProviderAlertID, ev.SourceType, ev.Fields["kind"])
		}
		byAlert[a.ProviderAlertID]++
		byVersion[graphVersion{a.ProviderAlertID, a.LastUpdateDateTime}]++
	}
	return byAlert, byVersion
}

// Several polls with alerts arriving and changing between and during them: each version
// reaches the SIEM once, nothing is missed, and the accounting holds across the polls.
func TestGraphWatermarkOverlapAndAccounting(t *testing.T) {
	r := newRig(t)
	hec := r.hec("splunk")
	sim := graphRig(t, r, 3)
	h := r.start()

	want := graphPut(sim, "first", 7)
	mustPoll(t, h)
	mustPoll(t, h) // nothing new: the overlap re-reads and skips every alert

	// Updated between polls, new ones arriving, and two updated while a poll is between
	// pages (they move to the front of Graph's list after their page was read).
	sim.Update("tid-contoso", "dc6385_first-0", map[string]any{"status": "inProgress"})
	want = append(want, graphPut(sim, "second", 4)...)
	sim.OnPage(func(_ string, page int) {
		if page == 2 {
			sim.OnPage(nil)
			sim.Update("tid-contoso", "dc6385_first-3", map[string]any{"status": "resolved", "classification": "truePositive", "determination": "malware"})
			sim.Update("tid-contoso", "dc6385_second-1", map[string]any{"severity": "medium"})
		}
	})
	mustPoll(t, h)
	mustPoll(t, h)
	mustPoll(t, h)

	byAlert, byVersion := graphEvents(t, hec)
	for v, n := range byVersion {
		if n != 1 {
			t.Errorf("version %v delivered %d times", v, n)
		}
	}
	// 11 alerts, 3 of them updated once: 14 versions.
	if len(byVersion) != 14 {
		t.Errorf("%d versions delivered, want 14: %v", len(byVersion), byVersion)
	}
	r.account(ledger{Dest: "splunk", Want: want, Delivered: byAlert, DupsAllowed: "one event per version: three alerts were updated"})
	if h.lines("graph-secret-7f3a1c") != 0 {
		t.Error("the client secret appears in the handler's log")
	}
	for _, rq := range sim.Requests() {
		if rq.Prefer != "include-unknown-enum-members" {
			t.Errorf("request %s without the Prefer header", rq.Query)
		}
	}
}

// The handler dies (SIGKILL) after the first page was delivered and before the watermark is
// written: the next poll, on a new handler, delivers those alerts again (duplicates allowed)
// and the rest; nothing is lost.
func TestGraphKillBetweenDeliveryAndWatermark(t *testing.T) {
	r := newRig(t)
	hec := r.hec("splunk")
	sim := graphRig(t, r, 4)
	h1 := r.start()
	want := graphPut(sim, "kill", 10)
	killed := make(chan struct{})
	sim.OnPage(func(_ string, page int) {
		// Page 2 is asked for only after page 1 went through the pipeline.
		if page == 2 {
			sim.OnPage(nil)
			_ = h1.host.Signal(syscall.SIGKILL)
			<-h1.host.Exited()
			close(killed)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The kill cuts the connection: an error here is what the drill expects.
	res, _ := h1.host.Invoke(ctx, "PollGraphAlerts", hostsim.TimerEnvelope("PollGraphAlerts", time.Now()))
	select {
	case <-killed:
	case <-time.After(time.Minute):
		t.Fatalf("the second page was never asked for (HTTP %d)\n%s", res.Status, h1.output())
	}
	first, _ := graphEvents(t, hec)
	if len(first) != 4 {
		t.Fatalf("%d alerts delivered before the kill, want the first page's 4", len(first))
	}
	h2 := r.start()
	mustPoll(t, h2)
	mustPoll(t, h2)
	byAlert, _ := graphEvents(t, hec)
	r.account(ledger{Dest: "splunk", Want: want, Delivered: byAlert, DupsAllowed: "the first page was delivered by the killed handler and again after it"})
	dups := 0
	for _, n := range byAlert {
		dups += n - 1
	}
	if dups > 4 {
		t.Errorf("%d duplicates, want at most the first page's 4", dups)
	}
}

// A Graph alert the SIEM refuses is dead-lettered under the poll's partition, the watermark
// moves past it, and ReplayDeadLetters delivers it, read back from its stored bytes as a
// graphalert.
func TestGraphDeadLetterReplayed(t *testing.T) {
	r := newRig(t)
	r.set("DeadLetter__ReplaySchedule=0 */5 * * * *")
	hec := r.hec("splunk", "RetryMaxAttempts=1")
	sim := graphRig(t, r, 10)
	h := r.start()
	want := graphPut(sim, "refused", 3)
	hec.Refuse(400)
	mustPoll(t, h)
	letters := r.letters()["splunk"]
	if len(letters) != 3 {
		t.Fatalf("%d dead letters, want 3\n%s", len(letters), h.output())
	}
	for _, l := range letters {
		if l.Kind != "graphalert" || !strings.HasPrefix(l.Coordinates.Partition, "graph-") {
			t.Errorf("letter %s kind %q partition %q", l.ID, l.Kind, l.Coordinates.Partition)
		}
	}
	hec.Refuse(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := h.host.Invoke(ctx, "ReplayDeadLetters", hostsim.TimerEnvelope("ReplayDeadLetters", time.Now()))
	if err != nil || !tr.Succeeded() {
		t.Fatalf("replay: %v HTTP %d %s\n%s", err, tr.Status, tr.Body, h.output())
	}
	byAlert, _ := graphEvents(t, hec)
	r.account(ledger{Dest: "splunk", Want: want, Delivered: byAlert})
	if n := len(r.letters()["splunk"]); n != 0 {
		t.Errorf("%d letters left after the replay", n)
	}
	// The watermark moved past the dead-lettered alerts: the next poll sends nothing again.
	mustPoll(t, h)
	if again, _ := graphEvents(t, hec); len(again) != 3 || again["refused-0"] != 1 {
		t.Errorf("after another poll: %v", again)
	}
}

// Without Graph settings the function succeeds and does nothing, and says so once.
func TestGraphNotConfigured(t *testing.T) {
	r := newRig(t)
	r.hec("splunk")
	h := r.start()
	mustPoll(t, h)
	mustPoll(t, h)
	if n := h.lines("Graph input not configured"); n != 1 {
		t.Errorf("logged %d times, want once\n%s", n, h.output())
	}
}
