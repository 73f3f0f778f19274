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
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/jsonx"
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
	bodies, err := decodeBodies(raw, req.takeDecoded(raw))
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

// decodeBodies returns the message bodies the trigger value raw carries; raw must be valid
// JSON, as ParseInvokeRequest and encoding/json leave it. Bodies arrive escaped twice (a string
// in an array in a string). ParseInvokeRequest undoes both layers of a large batch in one pass
// where it can (dec.elems); otherwise a batch is decoded in two linear passes over one buffer:
// the outer string into it (or dec.text, when ParseInvokeRequest already did that), then every
// element in place over that text, which never grows because the first pass leaves only valid
// UTF-8. The bodies share the buffer.
func decodeBodies(raw []byte, dec decodedString) ([][]byte, error) {
	raw = bytes.TrimSpace(raw)
	if dec.elems != nil {
		return binaryBodies(dec.elems), nil
	}
	text := dec.text
	if len(raw) > 0 && raw[0] == '"' {
		if text == nil {
			valid := utf8.Valid(raw)
			buf := make([]byte, 0, len(raw))
			if valid {
				var elems [][]byte
				var end int
				var ok bool
				if buf, elems, end, ok = jsonx.AppendNestedStrings(buf, raw, 0); ok && end == len(raw) {
					return binaryBodies(elems), nil
				}
			}
			var end int
			var err error
			text, end, err = jsonx.AppendDecoded(buf[:0], raw, 0, valid)
			if err == nil && end != len(raw) {
				err = errors.New("data after the string")
			}
			if err != nil {
				return nil, fmt.Errorf("undecodable string: %w", err)
			}
		}
		inner := bytes.TrimSpace(text)
		if len(inner) > 0 && inner[0] == '[' {
			if bodies, ok := splitArray(inner, inner[:0], true); ok {
				return bodies, nil
			}
			// Not a JSON array after all, and decoding in place spoiled the text: decode
			// the string again.
			text, _, _ = jsonx.AppendDecoded(text[:0], raw, 0, false)
		}
		// One event whose body is this string.
		if b, ok := binaryBody(text); ok {
			return [][]byte{b}, nil
		}
		return [][]byte{text[:len(text):len(text)]}, nil
	}
	if len(raw) > 0 && raw[0] == '[' {
		// The request body may hold invalid UTF-8, which decodes longer: use a fresh buffer.
		if bodies, ok := splitArray(raw, make([]byte, 0, len(raw)), false); ok {
			return bodies, nil
		}
		return nil, errors.New("undecodable event array")
	}
	if !jsonx.Valid(raw) {
		return nil, errors.New("not JSON")
	}
	return [][]byte{append([]byte(nil), raw...)}, nil
}

// splitArray checks that arr is one JSON array and nothing else but whitespace, and splits it
// into bodies appended to buf: strings decoded, other values as they are. buf may share arr's
// array, starting at or before arr, when arr is valid UTF-8 (validUTF8); then arr is spoiled
// even when it turns out not to be an array.
func splitArray(arr, buf []byte, validUTF8 bool) ([][]byte, bool) {
	out := [][]byte{}
	i := jsonx.SkipSpace(arr, 1)
	if i < len(arr) && arr[i] == ']' {
		return out, jsonx.SkipSpace(arr, i+1) == len(arr)
	}
	for {
		if i >= len(arr) {
			return nil, false
		}
		start := len(buf)
		var end int
		if arr[i] == '"' {
			var err error
			if buf, end, err = jsonx.AppendDecoded(buf, arr, i, validUTF8); err != nil {
				return nil, false
			}
			if b, ok := binaryBody(buf[start:]); ok {
				buf = buf[:start]
				out = append(out, b)
			} else {
				out = append(out, buf[start:len(buf):len(buf)])
			}
		} else {
			// No dataType: the host parsed the body as JSON and sends the value itself.
			var err error
			if end, err = jsonx.Skip(arr, i, 1); err != nil {
				return nil, false
			}
			buf = append(buf, arr[i:end]...)
			out = append(out, buf[start:len(buf):len(buf)])
		}
		i = jsonx.SkipSpace(arr, end)
		if i >= len(arr) {
			return nil, false
		}
		switch arr[i] {
		case ',':
			i = jsonx.SkipSpace(arr, i+1)
		case ']':
			return out, jsonx.SkipSpace(arr, i+1) == len(arr)
		default:
			return nil, false
		}
	}
}

// binaryBodies replaces each element that is a body in base64 (see binaryBody) by its bytes.
func binaryBodies(elems [][]byte) [][]byte {
	for i, e := range elems {
		if b, ok := binaryBody(e); ok {
			elems[i] = b
		}
	}
	return elems
}

// binaryBody decodes s when it is a body in base64. With dataType string the element is the
// body's text; with dataType binary it is the body in base64. A Defender body is JSON, which
// always starts with '{', '[' or a BOM once trimmed and is never valid base64, so only a
// string that is not JSON-looking and decodes as strict base64 is taken as binary.
func binaryBody(s []byte) ([]byte, bool) {
	t := bytes.TrimLeft(s, " \t\r\n\ufeff")
	if len(t) == 0 || t[0] == '{' || t[0] == '[' || len(s)%4 != 0 {
		return nil, false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Strict().Decode(b, s)
	if err != nil {
		return nil, false
	}
	return b[:n], true
}

func orTrailing(err error) error {
	if err == nil {
		return errors.New("data after the string")
	}
	return err
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
	seqs, okSeq := metaArray(b, md, "SequenceNumberArray", n, func(e []byte) (json.Number, bool) {
		return json.Number(e), e[0] == '-' || jsonx.IsDigit(e[0])
	})
	offs, _ := metaArray(b, md, "OffsetArray", n, func(e []byte) (json.RawMessage, bool) {
		return json.RawMessage(e), true
	})
	times, _ := metaArray(b, md, "EnqueuedTimeUtcArray", n, jsonx.DecodeString)
	keys, _ := metaArray(b, md, "PartitionKeyArray", n, func(e []byte) (*string, bool) {
		if string(e) == "null" {
			return nil, true
		}
		s, ok := jsonx.DecodeString(e)
		return &s, ok
	})
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
// the key is absent or unusable. elem converts one element of the shape the host writes
// (false for any other); an array of other shapes, or of the wrong length, is left to
// encoding/json, whose errors the problems then quote.
func metaArray[T any](b *Batch, md map[string]json.RawMessage, key string, n int, elem func([]byte) (T, bool)) ([]T, bool) {
	raw, ok := lookup(md, key)
	if !ok {
		return nil, false
	}
	v, err := unwrap(raw)
	if err != nil {
		b.problem("%s: %v", key, err)
		return nil, false
	}
	if out, ok := hostArray(v, n, elem); ok {
		return out, true
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

// hostArray reads the array v of n elements that elem converts, in one pass. encoding/json's
// reflection took a tenth of a batch's decoding for these four arrays.
func hostArray[T any](v []byte, n int, elem func([]byte) (T, bool)) ([]T, bool) {
	out := make([]T, 0, n)
	good := true
	end, err := jsonx.EachElement(v, 0, func(e []byte) {
		if !good {
			return
		}
		t, ok := elem(e)
		good = ok
		out = append(out, t)
	})
	if err != nil || !good || end != len(v) || len(out) != n {
		return nil, false
	}
	return out, true
}

// scalarText renders a JSON string or number as its text (offsets arrive as either).
func scalarText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		return string(jsonx.AppendUnquoted(nil, raw))
	case string(raw) == "null":
		return ""
	}
	return string(raw)
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
