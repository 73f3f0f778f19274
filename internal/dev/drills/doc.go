// Package drills holds fault drills: automated tests that start the real handler binary, drive
// it as the Functions host does, break what it depends on (a Splunk that is busy, stalls, cuts
// connections or rejects one event; a syslog collector that dies or stops reading; the
// dead-letter store going away; the handler itself being told to stop; batches that are huge,
// repeated or full of garbage; receivers that refuse and quote the credentials back) and then
// check the product's promise by accounting: for every destination, the records delivered at
// the receiver (counted by alert id, so duplicates show) plus the dead letters in Table storage
// equal the records sent, and no record is both delivered and dead-lettered.
//
// The drills are short by default so that `./build.sh test` stays quick. With DRILLS_SOAK=1 in
// the environment they run longer variants: more batches, more records, longer outages.
//
// There is no non-test code here; this file only gives the package its documentation.
package drills
