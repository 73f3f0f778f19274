// Package alert understands what Microsoft Defender for Cloud continuous export writes to an
// Event Hub: it splits one Event Hub message into records, tells each record's kind apart and
// normalises the two alert shapes (the flat PascalCase export shape and the ARM REST shape),
// and the Activity Log "Activate Alert" event, into one model. It is pure: no I/O, no clock,
// no logging. The original bytes of every record are kept untouched, because destinations
// that ship the raw event must ship exactly what Defender wrote.
//
// Split accepts a single object, an array, an Azure Monitor {"records":[…]} envelope and
// arrays of envelopes; Parse turns one record into a Record; ParseMessage does both. Key
// casing differs between Defender's data types and sources, so every key is matched in any
// letter case. Only input that is not well-formed JSON is an error (ErrUndecodable): a
// record of no known kind is KindUnknown. A text field written as a number or boolean keeps
// its JSON text, and one that is null, an array or an object where text belongs is ignored;
// neither changes the record's kind, which comes from the shape as a whole (see detectKind).
// Times are read in every form Defender and the Azure APIs write (see readTime).
//
// The JSON is read with internal/jsonx rather than decoded by encoding/json: each object is
// scanned once and only the wanted members are decoded, which keeps parsing several times
// faster than decoding into maps, and accepts exactly what encoding/json accepts. Alert entities are the expensive part; Options.SkipEntities defers them
// to DecodeEntities for destinations that never read them.
package alert
