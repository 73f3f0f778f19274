package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/samples"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

// These tests drive the real handler binary through hostsim, as the Functions host would, with
// a real Table service (Azurite) for dead letters and a loopback HEC receiver. They check the
// wiring (settings reach the parts, every function is routed, the command line works) and the
// handler's HTTP edge; what the product promises under faults is proven by the drills in
// internal/dev/drills.

var handlerBin string

func TestMain(m *testing.M) { testenv.MainWithHandler(m, &handlerBin) }

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

// eventually polls cond every 10 ms for up to bound.
func eventually(bound time.Duration, cond func() bool) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(bound)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// sharedSamples are the public Defender samples (internal/dev/samples) every forwarding test
// sends after the handler's own bodies in testdata/: the REST API's alert (the ARM shape),
// then the Elastic integration's records.
var sharedSamples = []string{
	"restapi_alert.json", "elastic_eventhub_alert.json", "elastic_eventhub_assessment.json",
	"elastic_eventhub_regulatorycompliance_assessment.json", "elastic_eventhub_securescorecontrol.json",
	"elastic_eventhub_subassessment.json",
}

func allSamples(t *testing.T) (names []string, bodies [][]byte) {
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
	for _, name := range sharedSamples {
		names = append(names, name)
		bodies = append(bodies, samples.Read(t, name))
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
	names, bodies := allSamples(t)
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
		"activitylog-records.json": "mscs:azure:security:alert", "restapi_alert.json": "mscs:azure:security:alert",
		"elastic_eventhub_alert.json": "mscs:azure:security:alert", "elastic_eventhub_assessment.json": "mscs:azure:security:recommendation",
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
	ev := got[compact(t, bodies[indexOf(names, "elastic_eventhub_alert.json")])]
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
		{"bad read timeouts", []string{"FUNCTIONS_CUSTOMHANDLER_PORT=1234", "AzureWebJobsStorage=UseDevelopmentStorage=true", "Destinations__b__Type=splunk_hec",
			"Destinations__b__Url=https://x:8088", "Destinations__b__Token=abcdefgh", "Forwarder__BodyReadTimeout=0s", "Forwarder__ReadHeaderTimeout=soon"},
			[]string{"Forwarder__BodyReadTimeout", "Forwarder__ReadHeaderTimeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(handlerBin)
			cmd.Env = tc.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
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
