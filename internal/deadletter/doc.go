// Package deadletter keeps the records a destination would not take, in Azure Table storage,
// with everything needed to send them again: the original bytes (whole and byte-identical, of
// any size), the reason, the last error, the attempts and the Event Hub coordinates.
//
// # Layout
//
// One table; the PartitionKey is the destination name and the RowKey the letter id, derived
// from the Event Hub coordinates (see RowKey) so that ids sort by enqueued time and a retried
// batch overwrites its own letters. The main entity holds the metadata and the first payload
// chunks: the payload is gzip-compressed when that helps, and cut into binary properties
// Payload00, Payload01… of at most 64 KiB. When one entity cannot hold it, the rest goes into
// continuation entities with
// RowKey `<id>~001`, `<id>~002`…, which sort after their main entity and carry Part > 0; List
// and Counts skip them. Continuations are written before the main entity, so a reader that
// finds a main entity finds its chunks; the payload's size and SHA-256 are checked on every
// Get.
//
// Beside its letters, a destination's partition holds one mark per Event Hub partition it may
// have letters for (RowKey `~partition:<id>`, Part -1, never listed). Put writes it with the
// first letters; Forget, which the pipeline calls after every delivery, reads it and looks
// for letters to clear only where it is, so that a delivery with nothing stored costs one
// point read (see markPrefix).
//
// # Limits
//
// Azure allows 1 MiB per entity, counted with strings in UTF-16 and binary as raw bytes, 252
// properties, 64 KiB per binary property and 1 KiB per key; Azurite instead refuses an entity
// whose JSON body passes 1 MiB, where base64 makes binary a third larger. The encoder keeps
// every entity within both (about 11 chunks, 704 KiB of payload, per entity) and checks each
// entity before it is sent, because the emulator would not catch what only Azure refuses.
// Transactions stay within 100 operations and 3 MiB of body.
//
// # Failure
//
// Any error from Put means the letters are not known to be stored: the caller must answer 500
// so the Functions host runs the batch again. Duplicates are possible, loss is not.
package deadletter
