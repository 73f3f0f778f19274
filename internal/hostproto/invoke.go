package hostproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// InvokeRequest is the body the host POSTs for every invocation.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
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
