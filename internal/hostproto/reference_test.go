package hostproto_test

// The decoder as it was when it used encoding/json throughout, kept as the oracle the fast
// decoder is checked against: same input, same batch.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/defender-siem/forwarder/internal/hostproto"
)

type refBatch struct{ hostproto.Batch }

// refDecode decodes an invocation body the way the server did before: json.Decoder into
// InvokeRequest, then the batch.
func refDecode(body []byte) (hostproto.Batch, error) {
	var req hostproto.InvokeRequest
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
		return hostproto.Batch{}, err
	}
	b, err := refDecodeEventHubBatch(&req, "events")
	return b.Batch, err
}

func refDecodeEventHubBatch(req *hostproto.InvokeRequest, binding string) (refBatch, error) {
	var b refBatch
	raw, ok := refLookup(req.Data, binding)
	if !ok || len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return b, fmt.Errorf("%w: Data.%s is missing", hostproto.ErrNoEvents, binding)
	}
	bodies, err := refDecodeBodies(raw)
	if err != nil {
		return b, fmt.Errorf("Data.%s: %w", binding, err)
	}
	b.Events = make([]hostproto.Event, len(bodies))
	for i, body := range bodies {
		b.Events[i].Body = body
	}
	b.refDecodeMetadata(req.Metadata)
	return b, nil
}

// refLookup finds a key case-insensitively: the host serialises with Newtonsoft, whose readers
// are case-insensitive, and nothing promises the casing.
func refLookup(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
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

func refDecodeBodies(raw json.RawMessage) ([][]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("undecodable string: %w", err)
		}
		inner := bytes.TrimSpace([]byte(s))
		if len(inner) > 0 && inner[0] == '[' && json.Valid(inner) {
			return refDecodeArray(inner)
		}
		// One event whose body is this string.
		return [][]byte{refBodyFromString(s)}, nil
	}
	if len(raw) > 0 && raw[0] == '[' {
		return refDecodeArray(raw)
	}
	if !json.Valid(raw) {
		return nil, errors.New("not JSON")
	}
	return [][]byte{append([]byte(nil), raw...)}, nil
}

func refDecodeArray(arr []byte) ([][]byte, error) {
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
			out[i] = refBodyFromString(s)
			continue
		}
		// No dataType: the host parsed the body as JSON and sends the value itself.
		out[i] = append([]byte(nil), e...)
	}
	return out, nil
}

// refBodyFromString turns one array element into the message body. With dataType string the
// element is the body's text; with dataType binary it is the body in base64. A Defender body
// is JSON, which always starts with '{', '[' or a BOM once trimmed and is never valid base64,
// so only a string that is not JSON-looking and decodes as strict base64 is taken as binary.
func refBodyFromString(s string) []byte {
	t := strings.TrimLeft(s, " \t\r\n\ufeff")
	if t != "" && t[0] != '{' && t[0] != '[' && len(s)%4 == 0 {
		if b, err := base64.StdEncoding.Strict().DecodeString(s); err == nil {
			return b
		}
	}
	return []byte(s)
}

func (b *refBatch) refDecodeMetadata(md map[string]json.RawMessage) {
	if raw, ok := refLookup(md, "PartitionContext"); ok {
		if v, err := refUnwrap(raw); err == nil {
			if err := json.Unmarshal(v, &b.Partition); err != nil {
				b.refProblem("PartitionContext: %v", err)
			}
		}
	}
	if raw, ok := refLookup(md, "RetryContext"); ok {
		if v, err := refUnwrap(raw); err == nil && string(v) != "null" {
			var rc hostproto.RetryContext
			if err := json.Unmarshal(v, &rc); err != nil {
				b.refProblem("RetryContext: %v", err)
			} else {
				b.Retry = &rc
			}
		}
	}
	n := len(b.Events)
	seqs, okSeq := refMetaArray[json.Number](b, md, "SequenceNumberArray", n)
	offs, _ := refMetaArray[json.RawMessage](b, md, "OffsetArray", n)
	times, _ := refMetaArray[string](b, md, "EnqueuedTimeUtcArray", n)
	keys, _ := refMetaArray[*string](b, md, "PartitionKeyArray", n)
	for i := range b.Events {
		e := &b.Events[i]
		if okSeq {
			if v, err := strconv.ParseInt(seqs[i].String(), 10, 64); err == nil {
				e.SequenceNumber = v
				e.HasCoordinates = true
			} else {
				b.refProblem("SequenceNumberArray[%d]: %v", i, err)
			}
		}
		if offs != nil {
			e.Offset = refScalarText(offs[i])
		}
		if times != nil {
			if t, err := hostproto.ParseTime(times[i]); err == nil {
				e.EnqueuedTime = t
			} else {
				b.refProblem("EnqueuedTimeUtcArray[%d]: %v", i, err)
			}
		}
		if keys != nil && keys[i] != nil {
			e.PartitionKey = *keys[i]
		}
	}
}

// refMetaArray decodes a metadata array that must line up with the events. It returns false when
// the key is absent or unusable.
func refMetaArray[T any](b *refBatch, md map[string]json.RawMessage, key string, n int) ([]T, bool) {
	raw, ok := refLookup(md, key)
	if !ok {
		return nil, false
	}
	v, err := refUnwrap(raw)
	if err != nil {
		b.refProblem("%s: %v", key, err)
		return nil, false
	}
	var out []T
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		b.refProblem("%s: %v", key, err)
		return nil, false
	}
	if len(out) != n {
		b.refProblem("%s has %d entries for %d events", key, len(out), n)
		return nil, false
	}
	return out, true
}

// refScalarText renders a JSON string or number as its text (offsets arrive as either).
func refScalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

func (b *refBatch) refProblem(format string, args ...any) {
	b.Problems = append(b.Problems, fmt.Sprintf(format, args...))
}

// refUnwrap returns the JSON text a value carries: the value itself, or, when the host wrapped it
// in a JSON string, the string's content. It unwraps at most twice (metadata strings are
// sometimes double-quoted).
func refUnwrap(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	for range 2 {
		if len(raw) == 0 || raw[0] != '"' {
			return raw, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("undecodable string value: %w", err)
		}
		inner := bytes.TrimSpace([]byte(s))
		if !json.Valid(inner) {
			// A plain string, not JSON text: keep it as the JSON string it was.
			return raw, nil
		}
		raw = inner
	}
	return raw, nil
}
