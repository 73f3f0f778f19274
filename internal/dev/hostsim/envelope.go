// Package hostsim imitates the Azure Functions host towards a custom handler, envelope for
// envelope: it starts the handler process the way the host does (port and worker settings in
// the environment, readiness polling on GET /), builds Event Hubs trigger invocations with the
// host's value encoding, and replays a failed invocation under the function's retry policy
// with Metadata.RetryContext. Core Tools cannot run here, so this is what `./build.sh run`
// and the end-to-end tests drive the real handler binary with.
package hostsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DataType is the function.json dataType of the trigger binding.
type DataType string

// The dataType values the Event Hubs trigger takes; DataTypeNone means the key is absent.
const (
	DataTypeString DataType = "string"
	DataTypeBinary DataType = "binary"
	DataTypeNone   DataType = ""
)

// Batch describes one Event Hubs trigger invocation.
type Batch struct {
	// Binding is the trigger's name in function.json ("events").
	Binding string
	// DataType is the binding's dataType.
	DataType DataType
	// Bodies are the message bodies.
	Bodies [][]byte
	// Namespace, EventHub, ConsumerGroup and PartitionID fill PartitionContext.
	Namespace, EventHub, ConsumerGroup, PartitionID string
	// FirstSequence is the first message's sequence number; the rest follow.
	FirstSequence int64
	// FirstOffset is the first message's offset; each next offset adds the previous body size.
	FirstOffset int64
	// Enqueued is the first message's enqueued time; the rest follow a millisecond apart.
	Enqueued time.Time
	// MethodName is the function name reported in Metadata.sys.
	MethodName string
}

// RetryContext is what the host adds to Metadata when it runs an invocation again.
type RetryContext struct {
	RetryCount    int
	MaxRetryCount int
	Exception     string
}

// Envelope renders the invocation body the host would POST. It follows the host's value
// encoding: the trigger value (an array) and every *Array metadata entry are serialised to JSON
// text and sent as a JSON string; PartitionContext, sys and RetryContext are objects.
func (b Batch) Envelope(retry *RetryContext) ([]byte, error) {
	if b.Binding == "" {
		b.Binding = "events"
	}
	n := len(b.Bodies)
	var events any
	switch b.DataType {
	case DataTypeString:
		// The Event Hubs extension decodes each body as UTF-8, replacing invalid bytes.
		s := make([]string, n)
		for i, body := range b.Bodies {
			s[i] = strings.ToValidUTF8(string(body), "\uFFFD")
		}
		events = s
	case DataTypeBinary:
		s := make([]string, n)
		for i, body := range b.Bodies {
			s[i] = base64.StdEncoding.EncodeToString(body)
		}
		events = s
	case DataTypeNone:
		// Json.NET parses every body; one that is not JSON fails the whole binding.
		vals := make([]json.RawMessage, n)
		for i, body := range b.Bodies {
			body = bytes.TrimPrefix(body, []byte("\ufeff"))
			if !json.Valid(body) || !utf8.Valid(body) {
				return nil, fmt.Errorf("body %d is not JSON: without a dataType the host fails the binding", i)
			}
			vals[i] = json.RawMessage(body)
		}
		events = vals
	default:
		return nil, fmt.Errorf("unknown dataType %q", b.DataType)
	}

	seqs := make([]int64, n)
	offsets := make([]string, n)
	times := make([]string, n)
	keys := make([]*string, n)
	props := make([]map[string]any, n)
	sysProps := make([]map[string]any, n)
	off := b.FirstOffset
	enq := b.Enqueued
	if enq.IsZero() {
		enq = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	}
	for i := range n {
		seqs[i] = b.FirstSequence + int64(i)
		offsets[i] = fmt.Sprint(off)
		off += int64(len(b.Bodies[i]))
		t := enq.Add(time.Duration(i) * time.Millisecond).UTC()
		times[i] = netDateTime(t)
		props[i] = map[string]any{}
		sysProps[i] = map[string]any{
			"x-opt-sequence-number": seqs[i],
			"x-opt-offset":          offsets[i],
			"x-opt-enqueued-time":   times[i],
			"SequenceNumber":        seqs[i],
			"Offset":                offsets[i],
			"PartitionKey":          nil,
			"EnqueuedTimeUtc":       times[i],
		}
	}

	md := map[string]any{
		"PartitionContext": map[string]any{
			"FullyQualifiedNamespace":        b.Namespace,
			"EventHubName":                   b.EventHub,
			"ConsumerGroup":                  b.ConsumerGroup,
			"PartitionId":                    b.PartitionID,
			"IsCheckpointingAfterInvocation": true,
		},
		"PartitionKeyArray":     jsonText(keys),
		"OffsetArray":           jsonText(offsets),
		"SequenceNumberArray":   jsonText(seqs),
		"EnqueuedTimeUtcArray":  jsonText(times),
		"PropertiesArray":       jsonText(props),
		"SystemPropertiesArray": jsonText(sysProps),
		"sys": map[string]any{
			"MethodName": b.MethodName,
			"UtcNow":     netDateTime(time.Now().UTC()),
			"RandGuid":   uuid.NewString(),
		},
	}
	if retry != nil {
		md["RetryContext"] = map[string]any{
			"RetryCount":    retry.RetryCount,
			"MaxRetryCount": retry.MaxRetryCount,
			"Exception":     map[string]any{"ClassName": "System.Net.Http.HttpRequestException", "Message": retry.Exception},
		}
	}
	env := map[string]any{
		"Data":     map[string]any{b.Binding: jsonText(events)},
		"Metadata": md,
	}
	return marshal(env), nil
}

// jsonText is JsonConvert.SerializeObject: the value's JSON text, which the host then sends as
// a JSON string.
func jsonText(v any) string { return string(marshal(v)) }

// marshal encodes like Json.NET's defaults: no HTML escaping.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("hostsim: marshal: %v", err)) // only our own plain values get here
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// netDateTime formats a UTC time as Json.NET does: up to seven fractional digits, trailing
// zeros dropped, "Z".
func netDateTime(t time.Time) string {
	t = t.UTC().Truncate(100 * time.Nanosecond)
	return t.Format("2006-01-02T15:04:05.9999999Z07:00")
}
