package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/samples"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

var handlerBin string

// TestMain builds the real handler once; every drill runs that binary as the host would.
func TestMain(m *testing.M) { testenv.MainWithHandler(m, &handlerBin) }

// soak reports whether the long variants were asked for.
func soak() bool { return os.Getenv("DRILLS_SOAK") == "1" }

// pick returns short, or long under DRILLS_SOAK=1.
func pick[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

const hecToken = "drill-hec-token-0c9b7e41"

// handler is one running handler process with its output.
type handler struct {
	host           *hostsim.Host
	stdout, stderr *testenv.SyncBuffer
}

// output is everything the process wrote, for failure messages.
func (h *handler) output() string {
	return "stdout:\n" + h.stdout.String() + "\nstderr:\n" + h.stderr.String()
}

// rig is a private Azurite plus whatever receivers a drill adds, and the settings the handler
// is started with.
type rig struct {
	t   *testing.T
	az  *testenv.Azurite
	env []string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	az := testenv.StartAzurite(t)
	return &rig{t: t, az: az, env: []string{
		"AzureWebJobsStorage=" + az.ConnectionString(),
		"Forwarder__LogLevel=debug",
		"Forwarder__FunctionTimeout=00:01:00",
	}}
}

// hec starts a loopback HEC receiver and declares destination name for it, with fast retries;
// extra are "Key=Value" settings of that destination that override the defaults.
func (r *rig) hec(name string, extra ...string) *hecrecv.Receiver {
	r.t.Helper()
	rc, err := hecrecv.Start(hecToken)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { rc.Close() })
	r.dest(name, append([]string{"Type=splunk_hec", "Url=" + rc.URL, "Token=" + hecToken, "Kinds=all",
		"RetryMaxAttempts=3", "RetryInitialInterval=20ms", "RetryMaxInterval=200ms"}, extra...)...)
	return rc
}

// dest declares destination name with the given "Key=Value" settings; a later key replaces an
// earlier one.
func (r *rig) dest(name string, kv ...string) {
	var keys []string
	vals := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	for _, k := range keys {
		r.env = append(r.env, "Destinations__"+name+"__"+k+"="+vals[k])
	}
}

// set adds or replaces a top-level setting.
func (r *rig) set(kv string) {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range r.env {
		if strings.HasPrefix(e, k+"=") {
			r.env[i] = kv
			return
		}
	}
	r.env = append(r.env, kv)
}

// start runs a handler with the rig's settings; it is stopped when the test ends.
func (r *rig) start() *handler {
	r.t.Helper()
	h := &handler{stdout: &testenv.SyncBuffer{}, stderr: &testenv.SyncBuffer{}}
	h.host = &hostsim.Host{Path: handlerBin, Env: append([]string(nil), r.env...), Dir: r.t.TempDir(), Stdout: h.stdout, Stderr: h.stderr}
	if _, err := h.host.Start(context.Background(), 15*time.Second); err != nil {
		r.t.Fatalf("start: %v\n%s", err, h.output())
	}
	r.t.Cleanup(func() { _ = h.host.Stop(30 * time.Second) })
	return h
}

// invoke sends b and, while it fails, retries it as the host would (at most retries times). It
// bounds the whole exchange so that a hung handler fails the drill instead of stalling it.
func (h *handler) invoke(t *testing.T, b hostsim.Batch, retries int, bound time.Duration) []hostsim.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	res, err := h.host.InvokeBatch(ctx, "ForwardAlerts", b, retries)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, h.output())
	}
	return res
}

// mustSucceed fails the drill unless the last result is the host's success.
func (h *handler) mustSucceed(t *testing.T, res []hostsim.Result) hostsim.Result {
	t.Helper()
	last := res[len(res)-1]
	if !last.Succeeded() {
		t.Fatalf("invocation answered HTTP %d %s after %d attempts\n%s", last.Status, last.Body, len(res), h.output())
	}
	return last
}

// waitLog polls the handler's stdout until it holds every one of want, for up to bound.
func (h *handler) waitLog(t *testing.T, bound time.Duration, want ...string) {
	t.Helper()
	if !poll(bound, func() bool {
		out := h.stdout.String()
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the handler never logged %q\n%s", want, h.output())
	}
}

// lines counts the handler's log lines that contain every one of subs.
func (h *handler) lines(subs ...string) int {
	n := 0
	for _, line := range strings.Split(h.stdout.String(), "\n") {
		all := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}

// poll checks cond every 10 ms until it holds or bound passes.
func poll(bound time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// batch wraps bodies as partition 3's messages starting at firstSeq.
func batch(bodies [][]byte, firstSeq int64) hostsim.Batch {
	return hostsim.Batch{DataType: hostsim.DataTypeString, Bodies: bodies, PartitionID: "3", EventHub: "defender",
		Namespace: "drills.servicebus.windows.net", ConsumerGroup: "forwarder", FirstSequence: firstSeq,
		FirstOffset: 4096, Enqueued: time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC), MethodName: "ForwardAlerts"}
}

var (
	templateOnce sync.Once
	template     map[string]any
)

// alertRecord returns the sample alert with SystemAlertId set to id and, when extra is not
// empty, extra appended to its description. Keys are sorted by encoding/json, so the bytes are
// the same on every run.
func alertRecord(t testing.TB, id, extra string) []byte {
	t.Helper()
	templateOnce.Do(func() {
		if err := json.Unmarshal(samples.Read(t, "elastic_eventhub_alert.json"), &template); err != nil {
			panic(fmt.Sprintf("elastic_eventhub_alert.json: %v", err))
		}
	})
	rec := make(map[string]any, len(template))
	for k, v := range template {
		rec[k] = v
	}
	rec["SystemAlertId"] = id
	if extra != "" {
		rec["Description"] = rec["Description"].(string) + extra
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// alerts returns n one-record messages whose alert ids are prefix-0 … prefix-(n-1), and those ids.
func alerts(t testing.TB, prefix string, n int) (bodies [][]byte, ids []string) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		ids = append(ids, id)
		bodies = append(bodies, alertRecord(t, id, ""))
	}
	return bodies, ids
}

// hecIDs counts the events a HEC receiver accepted by the alert id inside the event.
func hecIDs(t testing.TB, rc *hecrecv.Receiver) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, ev := range rc.Events() {
		var rec struct{ SystemAlertId string }
		if err := json.Unmarshal(ev.Event, &rec); err != nil || rec.SystemAlertId == "" {
			t.Fatalf("HEC event without an alert id (%v): %.200s", err, ev.Event)
		}
		got[rec.SystemAlertId]++
	}
	return got
}

// store opens the rig's dead-letter table as the handler does.
func (r *rig) store() *deadletter.Store {
	r.t.Helper()
	cfg, err := deadletter.ConfigFromSettings(func(k string) (string, bool) {
		if k == "AzureWebJobsStorage" {
			return r.az.ConnectionString(), true
		}
		return "", false
	})
	if err != nil {
		r.t.Fatal(err)
	}
	s, err := deadletter.New(context.Background(), cfg, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// letters lists every dead letter, parked ones included, by destination.
func (r *rig) letters() map[string][]deadletter.Letter {
	r.t.Helper()
	ls, err := r.store().List(context.Background(), deadletter.ListOptions{IncludeParked: true})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string][]deadletter.Letter{}
	for _, l := range ls {
		out[l.Destination] = append(out[l.Destination], l)
	}
	return out
}

// rawEntities returns every entity of the dead-letter table as its JSON text.
func (r *rig) rawEntities() []string {
	r.t.Helper()
	cred, err := aztables.NewSharedKeyCredential(testenv.AzuriteAccount, testenv.AzuriteAccountKey)
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := aztables.NewClientWithSharedKey(r.az.TableEndpoint()+"/"+deadletter.DefaultTable, cred, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	pager := c.NewListEntitiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		for _, e := range page.Entities {
			out = append(out, string(e))
		}
	}
	return out
}

// ledger is one destination's side of the accounting check.
type ledger struct {
	// Dest is the destination's name (its dead-letter partition).
	Dest string
	// Want are the alert ids the destination should get, each once.
	Want []string
	// Delivered counts what its receiver holds, by alert id.
	Delivered map[string]int
	// DupsAllowed says why at-least-once permits a duplicate here; empty means none may occur.
	DupsAllowed string
}

// account checks the promise for every destination: each wanted record is delivered or
// dead-lettered, never both, nothing else arrived, and each dead letter is there once. It
// returns the letters by destination so that a drill can check reasons.
func (r *rig) account(ledgers ...ledger) map[string][]deadletter.Letter {
	r.t.Helper()
	all := r.letters()
	for _, lg := range ledgers {
		lettered := map[string]int{}
		for _, l := range all[lg.Dest] {
			lettered[l.AlertID]++
		}
		want := map[string]bool{}
		for _, id := range lg.Want {
			want[id] = true
		}
		delivered, stored, dups := 0, 0, 0
		var problems []string
		for _, id := range lg.Want {
			d, l := lg.Delivered[id], lettered[id]
			switch {
			case d > 0 && l > 0:
				problems = append(problems, fmt.Sprintf("%s both delivered (%d) and dead-lettered", id, d))
			case d == 0 && l == 0:
				problems = append(problems, id+" lost: neither delivered nor dead-lettered")
			case l > 1:
				problems = append(problems, fmt.Sprintf("%s dead-lettered %d times", id, l))
			}
			if d > 1 {
				dups += d - 1
				if lg.DupsAllowed == "" {
					problems = append(problems, fmt.Sprintf("%s delivered %d times", id, d))
				}
			}
			if d > 0 {
				delivered++
			}
			if l > 0 {
				stored++
			}
		}
		for id := range lg.Delivered {
			if !want[id] {
				problems = append(problems, id+" delivered but never sent")
			}
		}
		for id := range lettered {
			if !want[id] {
				problems = append(problems, fmt.Sprintf("dead letter %q for a record never sent", id))
			}
		}
		sort.Strings(problems)
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("… and %d more", len(problems)-10))
		}
		if len(problems) > 0 {
			r.t.Errorf("accounting for %s: %d records, %d delivered + %d dead-lettered:\n  %s", lg.Dest, len(lg.Want), delivered, stored, strings.Join(problems, "\n  "))
			continue
		}
		r.t.Logf("accounting for %s: %d records = %d delivered + %d dead-lettered (%d duplicate deliveries)", lg.Dest, len(lg.Want), delivered, stored, dups)
	}
	return all
}

// reasons counts letters by reason.
func reasons(ls []deadletter.Letter) map[string]int {
	out := map[string]int{}
	for _, l := range ls {
		out[string(l.Reason)]++
	}
	return out
}

// anyEntity reports whether the dead-letter table holds at least one entity (false while it
// does not exist or cannot be read).
func (r *rig) anyEntity() bool {
	cred, err := aztables.NewSharedKeyCredential(testenv.AzuriteAccount, testenv.AzuriteAccountKey)
	if err != nil {
		return false
	}
	c, err := aztables.NewClientWithSharedKey(r.az.TableEndpoint()+"/"+deadletter.DefaultTable, cred, nil)
	if err != nil {
		return false
	}
	top := int32(1)
	page, err := c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Top: &top}).NextPage(context.Background())
	return err == nil && len(page.Entities) > 0
}
