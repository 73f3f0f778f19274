// Package alert understands what Microsoft Defender for Cloud continuous export writes to an
// Event Hub: it splits one Event Hub message into records, tells each record's kind apart and
// normalises the two alert shapes (the flat PascalCase export shape and the ARM REST shape) into
// one model. It is pure: no I/O, no clock, no logging. The original bytes of every record are
// kept untouched, because destinations that ship the raw event must ship exactly what Defender
// wrote.
package alert
