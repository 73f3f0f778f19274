package hostproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// InvokeRequest is the body the host POSTs for every invocation.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`

	// decoded holds the content of the large strings in Data, which ParseInvokeRequest
	// decodes while checking them, so that the trigger value is read once, not twice.
	decoded []decodedString
}

// decodedString is a large string of Data, decoded: either its elements, when it held an
// array of strings (a batch as the host sends it) and both layers were undone in one pass, or
// its text.
type decodedString struct {
	raw, text []byte
	elems     [][]byte
}

// decodedMinBytes is the size from which a string in Data is decoded as it is checked: the
// trigger value of any real batch, and nothing small enough to be cheaper to skip.
const decodedMinBytes = 1024

// takeDecoded returns what ParseInvokeRequest decoded of raw, if anything, and forgets it:
// the caller decodes the events in place over it, so it can serve only once.
func (r *InvokeRequest) takeDecoded(raw []byte) decodedString {
	for k, d := range r.decoded {
		if len(d.raw) == len(raw) && len(raw) > 0 && &d.raw[0] == &raw[0] {
			r.decoded = append(r.decoded[:k], r.decoded[k+1:]...)
			return d
		}
	}
	return decodedString{}
}

// ParseInvokeRequest decodes an invocation body exactly as encoding/json's Decoder decodes it
// into an InvokeRequest (member names matched case-insensitively, a repeated member merged
// into the same map, whatever follows the first value left unread), but in a single pass and
// without copying: the RawMessage values are slices of body, which must outlive them.
//
// Decoding the envelope is most of an invocation's CPU time when done with encoding/json,
// which checks and copies the megabyte of escaped events several times over.
func ParseInvokeRequest(body []byte) (InvokeRequest, error) {
	return ParseInvokeRequestInto(body, nil)
}

// ParseInvokeRequestInto is ParseInvokeRequest decoding the large strings of Data (the
// events) into buffers from alloc, which returns an empty slice with room for at least n
// bytes (nil alloc: make). The events of the batch DecodeEventHubBatch then reads are slices
// of those buffers, so a caller that reuses them must be done with the batch first.
func ParseInvokeRequestInto(body []byte, alloc func(n int) []byte) (InvokeRequest, error) {
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, 0, n) }
	}
	var req InvokeRequest
	i := jsonx.SkipSpace(body, 0)
	if i == len(body) {
		return req, errors.New("empty invocation body")
	}
	if body[i] != '{' {
		if _, err := jsonx.Skip(body, i, 0); err != nil {
			return req, fmt.Errorf("invocation envelope: %w", err)
		}
		if string(body[i:min(i+4, len(body))]) == "null" {
			return req, nil
		}
		return req, errors.New("invocation envelope is not a JSON object")
	}
	// Checked once here, so that the strings need not be checked run by run.
	validUTF8 := utf8.Valid(body)
	var typeErr error
	_, err := jsonx.EachMemberLazy(body[i:], 0, func(key []byte, esc bool) (func(val []byte) (int, error), bool) {
		var dst *map[string]json.RawMessage
		switch k := jsonx.DecodeKey(key, esc); {
		case strings.EqualFold(k, "Data"):
			dst = &req.Data
		case strings.EqualFold(k, "Metadata"):
			dst = &req.Metadata
		default:
			return nil, false
		}
		return func(val []byte) (int, error) {
			switch val[0] {
			case '{':
				if *dst == nil {
					*dst = map[string]json.RawMessage{}
				}
				m := *dst
				decode := dst == &req.Data
				return jsonx.EachMemberLazy(val, 1, func(k []byte, esc bool) (func([]byte) (int, error), bool) {
					name := jsonx.DecodeKey(k, esc)
					return func(v []byte) (int, error) {
						var end int
						var err error
						if decode && v[0] == '"' && len(v) >= decodedMinBytes {
							buf := alloc(len(v))
							if validUTF8 {
								var elems [][]byte
								var n int
								var ok bool
								if buf, elems, n, ok = jsonx.AppendNestedStrings(buf, v, 0); ok {
									req.decoded = append(req.decoded, decodedString{raw: v[:n:n], elems: elems})
									m[name] = json.RawMessage(v[:n:n])
									return n, nil
								}
							}
							// Not a batch of strings: the same buffer takes the text.
							var text []byte
							text, end, err = jsonx.AppendDecoded(buf[:0], v, 0, validUTF8)
							if err == nil && end >= decodedMinBytes {
								req.decoded = append(req.decoded, decodedString{raw: v[:end:end], text: text})
							}
						} else {
							end, err = jsonx.Skip(v, 0, 2)
						}
						if err == nil {
							m[name] = json.RawMessage(v[:end:end])
						}
						return end, err
					}, true
				})
			case 'n':
				*dst = nil
			default:
				if typeErr == nil {
					typeErr = fmt.Errorf("invocation envelope: %s is not an object", key)
				}
			}
			return jsonx.Skip(val, 0, 1)
		}, true
	})
	if err != nil {
		return InvokeRequest{}, fmt.Errorf("invocation envelope: %w", err)
	}
	if typeErr != nil {
		return InvokeRequest{}, typeErr
	}
	return req, nil
}

// InvokeResponse is the body the handler answers with. The host reads it only for a 2xx
// status: on any other status the invocation fails and Outputs and Logs are ignored, so
// failures must also be logged on the handler's own output.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Header names the host sets on every invocation request.
const (
	HeaderInvocationID = "X-Azure-Functions-InvocationId"
	HeaderHostVersion  = "X-Azure-Functions-HostVersion"
)

// WriteResponse answers an invocation. Outputs and Logs are never null, because the host
// deserialises them into a dictionary and a list.
func WriteResponse(w http.ResponseWriter, status int, resp InvokeResponse) {
	if resp.Outputs == nil {
		resp.Outputs = map[string]any{}
	}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		// Only a ReturnValue of an unmarshalable type can get here: a programming error.
		status = http.StatusInternalServerError
		body = []byte(`{"Outputs":{},"Logs":["response encoding failed"],"ReturnValue":null}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// unwrap returns the JSON text a value carries: the value itself, or, when the host wrapped it
// in a JSON string, the string's content. It unwraps at most twice (metadata strings are
// sometimes double-quoted).
func unwrap(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	for range 2 {
		if len(raw) == 0 || raw[0] != '"' {
			return raw, nil
		}
		if end, err := jsonx.Skip(raw, 0, 0); err != nil || end != len(raw) {
			return nil, fmt.Errorf("undecodable string value: %w", orTrailing(err))
		}
		inner := bytes.TrimSpace(jsonx.AppendUnquoted(nil, raw))
		if !jsonx.Valid(inner) {
			// A plain string, not JSON text: keep it as the JSON string it was.
			return raw, nil
		}
		raw = inner
	}
	return raw, nil
}
