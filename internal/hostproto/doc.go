// Package hostproto is the Azure Functions custom-handler wire contract: the invocation
// envelope the Functions host POSTs to /<FunctionName>, the response it expects back, and the
// decoding of an Event Hubs trigger batch (cardinality many) with each event's coordinates.
//
// The host encodes values unevenly (see ScriptInvocationContextExtensions in the host source):
// objects arrive as JSON objects, but arrays, strings and numbers arrive as JSON strings holding
// JSON text. Every decoder here therefore accepts a value either as it is or wrapped in a string.
package hostproto
