package hostproto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event is one Event Hub message of a batch, with the coordinates the host reported for it.
type Event struct {
	// Body is the message body: the UTF-8 text the host decoded (dataType string), the bytes
	// of a base64 string (dataType binary), or the JSON text of a value (no dataType).
	Body []byte
	// HasCoordinates is false when the host's metadata did not say where the event sits, in
	// which case SequenceNumber, Offset and EnqueuedTime are zero.
	HasCoordinates bool
	SequenceNumber int64
	Offset         string
	EnqueuedTime   time.Time
	PartitionKey   string
}

// PartitionContext is the host's PartitionContext metadata object.
type PartitionContext struct {
	FullyQualifiedNamespace string `json:"FullyQualifiedNamespace"`
	EventHubName            string `json:"EventHubName"`
	ConsumerGroup           string `json:"ConsumerGroup"`
	PartitionID             string `json:"PartitionId"`
}

// RetryContext is present when the host runs the invocation again under the function's retry
// policy.
type RetryContext struct {
	RetryCount    int `json:"RetryCount"`
	MaxRetryCount int `json:"MaxRetryCount"`
}

// Batch is a decoded Event Hubs trigger invocation.
type Batch struct {
	Events    []Event
	Partition PartitionContext
	// Retry is nil on a first attempt.
	Retry *RetryContext
	// Problems lists metadata the decoder could not use (a malformed array, a length that
	// does not match the events). The events are still delivered; only their coordinates
	// may be missing.
	Problems []string
}

// ErrNoEvents means the request carries no value for the trigger binding at all.
var ErrNoEvents = errors.New("no event data in the invocation")

// DecodeEventHubBatch decodes the trigger binding named binding (the "name" in function.json)
// and the batch metadata. Every shape the host can send for cardinality many is accepted: a
// JSON string holding an array of strings (dataType string), of base64 strings (dataType
// binary) or of JSON values (no dataType), and the same arrays unwrapped. A single value is
// taken as a batch of one.
//
// A malformed envelope is an error; malformed metadata is not (it only costs coordinates) and
// is reported in Batch.Problems.
func DecodeEventHubBatch(req *InvokeRequest, binding string) (Batch, error) {
	var b Batch
	raw, ok := lookup(req.Data, binding)
	if !ok || len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return b, fmt.Errorf("%w: Data.%s is missing", ErrNoEvents, binding)
	}
	bodies, err := decodeBodies(raw)
	if err != nil {
		return b, fmt.Errorf("Data.%s: %w", binding, err)
	}
	b.Events = make([]Event, len(bodies))
	for i, body := range bodies {
		b.Events[i].Body = body
	}
	b.decodeMetadata(req.Metadata)
	return b, nil
}

// lookup finds a key case-insensitively: the host serialises with Newtonsoft, whose readers
// are case-insensitive, and nothing promises the casing.
func lookup(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func decodeBodies(raw json.RawMessage) ([][]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("undecodable string: %w", err)
		}
		inner := bytes.TrimSpace([]byte(s))
		if len(inner) > 0 && inner[0] == '[' && json.Valid(inner) {
			return decodeArray(inner)
		}
		// One event whose body is this string.
		return [][]byte{bodyFromString(s)}, nil
	}
	if len(raw) > 0 && raw[0] == '[' {
		return decodeArray(raw)
	}
	if !json.Valid(raw) {
		return nil, errors.New("not JSON")
	}
	return [][]byte{append([]byte(nil), raw...)}, nil
}

func decodeArray(arr []byte) ([][]byte, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(arr, &elems); err != nil {
		return nil, fmt.Errorf("undecodable event array: %w", err)
	}
	out := make([][]byte, len(elems))
	for i, e := range elems {
		if len(e) > 0 && e[0] == '"' {
			var s string
			if err := json.Unmarshal(e, &s); err != nil {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			out[i] = bodyFromString(s)
			continue
		}
		// No dataType: the host parsed the body as JSON and sends the value itself.
		out[i] = append([]byte(nil), e...)
	}
	return out, nil
}

// bodyFromString turns one array element into the message body. With dataType string the
// element is the body's text; with dataType binary it is the body in base64. A Defender body
// is JSON, which always starts with '{', '[' or a BOM once trimmed and is never valid base64,
// so only a string that is not JSON-looking and decodes as strict base64 is taken as binary.
func bodyFromString(s string) []byte {
	t := strings.TrimLeft(s, " \t\r\n\ufeff")
	if t != "" && t[0] != '{' && t[0] != '[' && len(s)%4 == 0 {
		if b, err := base64.StdEncoding.Strict().DecodeString(s); err == nil {
			return b
		}
	}
	return []byte(s)
}

func (b *Batch) decodeMetadata(md map[string]json.RawMessage) {
	if raw, ok := lookup(md, "PartitionContext"); ok {
		if v, err := unwrap(raw); err == nil {
			if err := json.Unmarshal(v, &b.Partition); err != nil {
				b.problem("PartitionContext: %v", err)
			}
		}
	}
	if raw, ok := lookup(md, "RetryContext"); ok {
		if v, err := unwrap(raw); err == nil && string(v) != "null" {
			var rc RetryContext
			if err := json.Unmarshal(v, &rc); err != nil {
				b.problem("RetryContext: %v", err)
			} else {
				b.Retry = &rc
			}
		}
	}
	n := len(b.Events)
	seqs, okSeq := metaArray[json.Number](b, md, "SequenceNumberArray", n)
	offs, _ := metaArray[json.RawMessage](b, md, "OffsetArray", n)
	times, _ := metaArray[string](b, md, "EnqueuedTimeUtcArray", n)
	keys, _ := metaArray[*string](b, md, "PartitionKeyArray", n)
	for i := range b.Events {
		e := &b.Events[i]
		if okSeq {
			if v, err := strconv.ParseInt(seqs[i].String(), 10, 64); err == nil {
				e.SequenceNumber = v
				e.HasCoordinates = true
			} else {
				b.problem("SequenceNumberArray[%d]: %v", i, err)
			}
		}
		if offs != nil {
			e.Offset = scalarText(offs[i])
		}
		if times != nil {
			if t, err := ParseTime(times[i]); err == nil {
				e.EnqueuedTime = t
			} else {
				b.problem("EnqueuedTimeUtcArray[%d]: %v", i, err)
			}
		}
		if keys != nil && keys[i] != nil {
			e.PartitionKey = *keys[i]
		}
	}
}

// metaArray decodes a metadata array that must line up with the events. It returns false when
// the key is absent or unusable.
func metaArray[T any](b *Batch, md map[string]json.RawMessage, key string, n int) ([]T, bool) {
	raw, ok := lookup(md, key)
	if !ok {
		return nil, false
	}
	v, err := unwrap(raw)
	if err != nil {
		b.problem("%s: %v", key, err)
		return nil, false
	}
	var out []T
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		b.problem("%s: %v", key, err)
		return nil, false
	}
	if len(out) != n {
		b.problem("%s has %d entries for %d events", key, len(out), n)
		return nil, false
	}
	return out, true
}

// scalarText renders a JSON string or number as its text (offsets arrive as either).
func scalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

func (b *Batch) problem(format string, args ...any) {
	b.Problems = append(b.Problems, fmt.Sprintf(format, args...))
}

// ParseTime parses the ISO 8601 times .NET writes: RFC 3339 with up to seven fractional digits,
// with a zone or without one (then UTC).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO 8601 time: %q", s)
}
