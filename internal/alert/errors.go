package alert

import "github.com/defender-siem/forwarder/internal/jsonx"

// ErrUndecodable marks a message or record that is not well-formed JSON. Callers dead-letter
// such input as undecodable; the wrapped error says where the JSON went wrong.
var ErrUndecodable = jsonx.ErrSyntax
