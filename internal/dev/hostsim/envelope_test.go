package hostsim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/samples"
)

var (
	netTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$`)
	guid    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// shape describes a JSON value by its structure: object keys (sorted) with the shape of each
// value, arrays by the shape of their elements, strings by what they hold (a .NET UTC time, a
// GUID, JSON text, other text), and the kind of every other value. Two envelopes with the same
// shape differ only in their data.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shape(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		seen := map[string]bool{}
		var parts []string
		for _, e := range x {
			if s := shape(e); !seen[s] {
				seen[s] = true
				parts = append(parts, s)
			}
		}
		sort.Strings(parts)
		return "[" + strings.Join(parts, "|") + "]"
	case string:
		var inner any
		switch {
		case netTime.MatchString(x):
			return "time"
		case guid.MatchString(x):
			return "guid"
		case json.Unmarshal([]byte(x), &inner) == nil:
			return "json(" + shape(inner) + ")"
		}
		return "string"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", x)
	}
}

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	return v
}

func captured(t *testing.T, name string) map[string]any {
	t.Helper()
	return decode(t, samples.Read(t, name))
}

// The timer and HTTP invocations hostsim builds have the shape of the ones a real host sent.
func TestEnvelopesMatchRealHostCaptures(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 30, 0, 123456700, time.UTC)
	tests := []struct {
		name, capture string
		built         []byte
	}{
		{"timer", "timer-invocation.json", TimerEnvelope("ReplayDeadLetters", at)},
		// The capture is a POST to an anonymous route with a JSON body and no query.
		{"http", "http-invocation.json", HTTPEnvelope("POST", "http://localhost:7071/api/endpoint", nil, `{"message":"hello","number":2}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, got := shape(captured(t, tc.capture)), shape(decode(t, tc.built))
			if got != want {
				t.Errorf("hostsim's %s envelope differs from the real host's:\n got %s\nwant %s", tc.name, got, want)
			}
		})
	}
}

// The parts of an Event Hubs invocation a host writes as it does for every trigger match the
// captures: Metadata.sys, and times in Json.NET's format.
func TestEventHubEnvelopeSharesTheHostsEncoding(t *testing.T) {
	env, err := Batch{DataType: DataTypeString, Bodies: [][]byte{[]byte(`{"a":1}`), []byte(`not json`)}, PartitionID: "3",
		EventHub: "defender", ConsumerGroup: "$Default", FirstSequence: 7, MethodName: "ForwardAlerts",
		Enqueued: time.Date(2026, 11, 28, 8, 0, 0, 500000000, time.UTC)}.Envelope(&RetryContext{RetryCount: 1, MaxRetryCount: -1})
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, env)
	md := got["Metadata"].(map[string]any)
	realSys := captured(t, "timer-invocation.json")["Metadata"].(map[string]any)["sys"]
	if shape(md["sys"]) != shape(realSys) {
		t.Errorf("sys: %s, the host writes %s", shape(md["sys"]), shape(realSys))
	}
	// Arrays go out as JSON text inside a string (the host's JObject.FromObject fails on
	// them); the trigger value too. Objects stay objects.
	for _, k := range []string{"OffsetArray", "SequenceNumberArray", "EnqueuedTimeUtcArray", "PartitionKeyArray", "PropertiesArray", "SystemPropertiesArray"} {
		if s := shape(md[k]); !strings.HasPrefix(s, "json([") {
			t.Errorf("%s is %s, want a JSON array as text", k, s)
		}
	}
	if s := shape(got["Data"].(map[string]any)["events"]); s != "json([json({a:float64})|string])" {
		t.Errorf("events %s", s)
	}
	for _, k := range []string{"PartitionContext", "RetryContext"} {
		if _, ok := md[k].(map[string]any); !ok {
			t.Errorf("%s is %T, want an object", k, md[k])
		}
	}
	var times []string
	if err := json.Unmarshal([]byte(md["EnqueuedTimeUtcArray"].(string)), &times); err != nil {
		t.Fatal(err)
	}
	// Json.NET drops trailing zeros of the fraction, as in the captures' "…49.640002Z".
	if want := []string{"2026-11-28T08:00:00.5Z", "2026-11-28T08:00:00.501Z"}; strings.Join(times, " ") != strings.Join(want, " ") {
		t.Errorf("enqueued times %v, want %v", times, want)
	}
}
