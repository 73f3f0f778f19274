package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

// These tests drive the real handler binary through hostsim, as the Functions host would, with
// a real Table service (Azurite) for dead letters and a loopback HEC receiver.

var handlerBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := testenv.BuildHandler()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handlerBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

const token = "e2e-hec-token-5f1d2c9a"

type rig struct {
	host           *hostsim.Host
	hec            *hecrecv.Receiver
	az             *testenv.Azurite
	stdout, stderr *testenv.SyncBuffer
}

// start runs the handler with one HEC destination (all kinds, fast retries) and dead letters in
// a private Azurite. extra settings override or add.
func start(t *testing.T, extra ...string) *rig {
	t.Helper()
	az := testenv.StartAzurite(t)
	hec, err := hecrecv.Start(token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hec.Close() })
	r := &rig{hec: hec, az: az, stdout: &testenv.SyncBuffer{}, stderr: &testenv.SyncBuffer{}}
	env := []string{
		"AzureWebJobsStorage=" + az.ConnectionString(),
		"Destinations__splunk__Type=splunk_hec",
		"Destinations__splunk__Url=" + hec.URL,
		"Destinations__splunk__Token=" + token,
		"Destinations__splunk__Kinds=all",
		"Destinations__splunk__RetryMaxAttempts=3",
		"Destinations__splunk__RetryInitialInterval=20ms",
		"Forwarder__LogLevel=debug",
	}
	env = append(env, extra...)
	r.host = &hostsim.Host{Path: handlerBin, Env: env, Dir: t.TempDir(), Stdout: r.stdout, Stderr: r.stderr}
	if _, err := r.host.Start(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("start: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	t.Cleanup(func() { _ = r.host.Stop(5 * time.Second) })
	return r
}

// eventually polls cond for up to five seconds.
func (r *rig) eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func samples(t *testing.T) (names []string, bodies [][]byte) {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("samples: %v", err)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(f))
		bodies = append(bodies, b)
	}
	return names, bodies
}

func batch(bodies [][]byte, firstSeq int64) hostsim.Batch {
	return hostsim.Batch{DataType: hostsim.DataTypeString, Bodies: bodies, PartitionID: "7", EventHub: "defender",
		ConsumerGroup: "$Default", FirstSequence: firstSeq, FirstOffset: 1 << 32, Enqueued: time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC),
		MethodName: "ForwardAlerts"}
}

// letters lists every main dead-letter entity, parked ones included.
func (r *rig) letters(t *testing.T) []deadletter.Letter {
	t.Helper()
	cfg, err := deadletter.ConfigFromSettings(func(k string) (string, bool) {
		if k == "AzureWebJobsStorage" {
			return r.az.ConnectionString(), true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := deadletter.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := s.List(context.Background(), deadletter.ListOptions{IncludeParked: true})
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// rawEntities returns every entity of the dead-letter table as JSON text, continuations too.
func (r *rig) rawEntities(t *testing.T) []string {
	t.Helper()
	cred, err := aztables.NewSharedKeyCredential("devstoreaccount1", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
	if err != nil {
		t.Fatal(err)
	}
	c, err := aztables.NewClientWithSharedKey(r.az.TableEndpoint()+"/"+deadletter.DefaultTable, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	pager := c.NewListEntitiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entities {
			out = append(out, string(e))
		}
	}
	return out
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, bytes.TrimPrefix(b, []byte("\ufeff"))); err != nil {
		t.Fatalf("compact: %v", err)
	}
	return buf.String()
}

func TestForwardsEverySampleToHEC(t *testing.T) {
	r := start(t)
	names, bodies := samples(t)
	bodies = append(bodies, []byte("definitely not json"))
	res, err := r.host.InvokeBatch(context.Background(), "ForwardAlerts", batch(bodies, 500), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Succeeded() {
		t.Fatalf("invocation failed: HTTP %d %s\n%s", res[0].Status, res[0].Body, r.stdout)
	}
	evs := r.hec.Events()
	if len(evs) != len(names) {
		t.Fatalf("HEC got %d events, want %d (one per sample record)", len(evs), len(names))
	}
	// Each sample arrives once, its event the original record, with the sourcetype for its kind.
	wantType := map[string]string{
		"activitylog-records.json": "mscs:azure:security:alert", "alert-arm-shape.json": "mscs:azure:security:alert",
		"alert.json": "mscs:azure:security:alert", "recommendation.json": "mscs:azure:security:recommendation",
	}
	got := map[string]hecrecv.Event{}
	for _, ev := range evs {
		got[compact(t, ev.Event)] = ev
	}
	for i, name := range names {
		want := compact(t, bodies[i])
		if name == "activitylog-records.json" {
			var env struct{ Records []json.RawMessage }
			_ = json.Unmarshal(bodies[i], &env)
			want = compact(t, env.Records[0])
		}
		ev, ok := got[want]
		if !ok {
			t.Errorf("%s: not received as sent", name)
			continue
		}
		if wt, ok := wantType[name]; ok && ev.SourceType != wt {
			t.Errorf("%s: sourcetype %q, want %q", name, ev.SourceType, wt)
		}
		if ev.Header["X-Splunk-Request-Channel"] == "" {
			t.Errorf("%s: no request channel", name)
		}
	}
	// The alert's time is its TimeGenerated, to the millisecond.
	ev := got[compact(t, bodies[indexOf(names, "alert.json")])]
	if ev.Time == nil || fmt.Sprintf("%.3f", *ev.Time) != "1683811029.017" {
		t.Errorf("alert time %v, want 1683811029.017 (2023-05-11T13:17:09.017Z)", ev.Time)
	}
	// The message that is not JSON is kept, whole, under the reserved partition.
	ls := r.letters(t)
	if len(ls) != 1 || ls[0].Destination != deadletter.UndecodablePartition || ls[0].Reason != "undecodable" || ls[0].Coordinates.SequenceNumber != 500+int64(len(names)) {
		t.Fatalf("dead letters %+v, want the one undecodable message", ls)
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// Splunk down for a whole batch: every record is dead-lettered, the invocation still succeeds,
// and delivered + stored = records × destinations.
func TestDestinationDownDeadLettersEverything(t *testing.T) {
	r := start(t)
	r.hec.Refuse(503)
	_, bodies := samples(t)
	res, err := r.host.InvokeBatch(context.Background(), "ForwardAlerts", batch(bodies, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Succeeded() {
		t.Fatalf("invocation failed: HTTP %d\n%s", res[0].Status, r.stdout)
	}
	ls := r.letters(t)
	if r.hec.Count()+len(ls) != len(bodies) {
		t.Fatalf("delivered %d + dead letters %d != %d records", r.hec.Count(), len(ls), len(bodies))
	}
	for _, l := range ls {
		if l.Destination != "splunk" || l.Reason != "throttled" || l.Attempts != 3 {
			t.Errorf("letter %s/%s reason %s attempts %d, want splunk/throttled after 3 attempts", l.Destination, l.ID, l.Reason, l.Attempts)
		}
	}
	// The host retries the same batch: the letters are overwritten, not duplicated.
	if _, err := r.host.InvokeBatch(context.Background(), "ForwardAlerts", batch(bodies, 1), 0); err != nil {
		t.Fatal(err)
	}
	if again := r.letters(t); len(again) != len(ls) {
		t.Errorf("after the same batch again: %d letters, want %d", len(again), len(ls))
	}
}

// With the store down and Splunk refusing, nothing may be acknowledged: 500, and the host's
// retry succeeds once storage is back.
func TestStoreDownFailsTheInvocationUntilItIsBack(t *testing.T) {
	r := start(t)
	r.hec.Refuse(400)
	r.az.Stop()
	_, bodies := samples(t)
	b := batch(bodies[:2], 10)
	env, _ := b.Envelope(nil)
	res, err := r.host.Invoke(context.Background(), "ForwardAlerts", env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 500 {
		t.Fatalf("with storage down: HTTP %d, want 500\n%s", res.Status, r.stdout)
	}
	r.az.Start()
	env, _ = b.Envelope(&hostsim.RetryContext{RetryCount: 1, MaxRetryCount: -1})
	res, err = r.host.Invoke(context.Background(), "ForwardAlerts", env)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() {
		t.Fatalf("host retry with storage back: HTTP %d\n%s", res.Status, r.stdout)
	}
	if n := len(r.letters(t)); n != 2 {
		t.Errorf("%d letters, want 2", n)
	}
}

// Known secret values in every secret setting never reach the output, the invocation logs or
// the dead letters, even when the receiver's refusal is logged and stored.
func TestSecretsNeverLeak(t *testing.T) {
	r := start(t)
	r.hec.Refuse(400)
	_, bodies := samples(t)
	res, err := r.host.InvokeBatch(context.Background(), "ForwardAlerts", batch(bodies[:3], 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Succeeded() {
		t.Fatalf("HTTP %d", res[0].Status)
	}
	accountKey := "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	haystacks := map[string]string{
		"stdout": r.stdout.String(), "stderr": r.stderr.String(),
		"invocation logs": strings.Join(res[0].Response.Logs, "\n"),
		"dead letters":    strings.Join(r.rawEntities(t), "\n"),
	}
	if !strings.Contains(haystacks["dead letters"], "splunk") {
		t.Fatal("no dead letters were written: the test would prove nothing")
	}
	for where, text := range haystacks {
		for _, secret := range []string{token, accountKey} {
			if strings.Contains(text, secret) {
				t.Errorf("a secret appears in %s", where)
			}
		}
	}
}

func TestRefusesOversizedBodies(t *testing.T) {
	r := start(t, "Forwarder__MaxRequestBytes=4096")
	_, bodies := samples(t)
	env, _ := batch(bodies, 1).Envelope(nil)
	res, err := r.host.Invoke(context.Background(), "ForwardAlerts", env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 413 {
		t.Fatalf("HTTP %d, want 413", res.Status)
	}
	// The log line travels through a pipe and may land just after the answer.
	if !r.eventually(func() bool { return strings.Contains(r.stdout.String(), "Forwarder__MaxRequestBytes") }) {
		t.Errorf("no log line naming the setting to raise:\n%s", r.stdout)
	}
}

// The handler binds 127.0.0.1 only: /proc/net/tcp lists its listening socket on 0100007F.
func TestListensOnLoopbackOnly(t *testing.T) {
	r := start(t)
	port := strings.TrimPrefix(r.host.URL(""), "http://127.0.0.1:")
	var p int
	fmt.Sscanf(port, "%d", &p)
	want := fmt.Sprintf("0100007F:%04X", p)
	raw, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[3] == "0A" { // LISTEN
			if strings.HasSuffix(f[1], fmt.Sprintf(":%04X", p)) {
				if f[1] != want {
					t.Errorf("listening on %s, want %s", f[1], want)
				}
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no listening socket on port %d", p)
	}
}

// SIGTERM during an invocation: the handler stops taking new work, finishes the invocation in
// flight, answers it, and exits cleanly.
func TestSIGTERMFinishesTheInvocationInFlight(t *testing.T) {
	r := start(t)
	r.hec.Delay(700 * time.Millisecond)
	_, bodies := samples(t)
	done := make(chan hostsim.Result, 1)
	go func() {
		env, _ := batch(bodies, 1).Envelope(nil)
		res, err := r.host.Invoke(context.Background(), "ForwardAlerts", env)
		if err != nil {
			t.Errorf("in-flight invocation: %v", err)
		}
		done <- res
	}()
	time.Sleep(200 * time.Millisecond)
	if err := r.host.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if !res.Succeeded() || r.hec.Count() != len(bodies) {
		t.Fatalf("in-flight invocation: HTTP %d, %d of %d delivered", res.Status, r.hec.Count(), len(bodies))
	}
	select {
	case <-r.host.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not exit after SIGTERM")
	}
	if !strings.Contains(r.stdout.String(), "handler stopped") {
		t.Errorf("no clean stop logged:\n%s", r.stdout)
	}
}

func TestBadSettingsStopTheHandlerAtStart(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"no destination", []string{"FUNCTIONS_CUSTOMHANDLER_PORT=1234", "AzureWebJobsStorage=UseDevelopmentStorage=true"},
			[]string{"Destinations__<name>__Type"}},
		{"bad type and missing token", []string{"FUNCTIONS_CUSTOMHANDLER_PORT=1234", "AzureWebJobsStorage=UseDevelopmentStorage=true",
			"Destinations__a__Type=splunk", "Destinations__b__Type=splunk_hec", "Destinations__b__Url=https://x:8088", "Destinations__b__Tokn=x"},
			[]string{"Destinations__a__Type", "splunk_hec", "Destinations__b__Token", "Destinations__b__tokn"}},
		{"no port", []string{"AzureWebJobsStorage=UseDevelopmentStorage=true", "Destinations__b__Type=splunk_hec", "Destinations__b__Url=https://x:8088", "Destinations__b__Token=abcdefgh"},
			[]string{"FUNCTIONS_CUSTOMHANDLER_PORT"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(handlerBin)
			cmd.Env = tc.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if err == nil || !errorsAs(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want code 2", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not name %s:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}
