// Package jsonx is the forwarder's one JSON layer below encoding/json: checking a value and
// slicing its members out without copying (scan.go), decoding strings exactly as encoding/json
// does (decode.go), and writing strings and compacted values that strict receivers accept
// (write.go).
//
// It exists because the forwarder reads every record several times over (the host envelope
// escapes each body twice; destinations forward the record's original bytes) and most of
// those reads need no decoded value at all, only the boundaries of one. Decoding into Go
// values is left to encoding/json, which the forwarder uses for everything small (settings,
// metadata, entity values). Everything here accepts exactly what encoding/json accepts,
// nesting limit and invalid UTF-8 in strings included: the fuzz tests hold it to that, with
// encoding/json as the oracle.
package jsonx
