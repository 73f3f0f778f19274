package deadletter

import (
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
)

// UndecodablePartition is the reserved partition (destination name) under which messages that
// could not be split into records are stored. No destination may take this name.
const UndecodablePartition = "~undecodable"

// Coordinates locate a record in the Event Hub: they make a dead letter unique, so a batch the
// host retries overwrites its own dead letters instead of adding new ones.
type Coordinates struct {
	// Partition is the Event Hub partition id.
	Partition string
	// SequenceNumber is the message's sequence number in its partition.
	SequenceNumber int64
	// Offset is the message's offset, as the host reports it.
	Offset string
	// EnqueuedTime is when Event Hubs accepted the message.
	EnqueuedTime time.Time
	// Index is the record's position inside its message (0 for one record a message).
	Index int
}

// Letter is one record that one destination did not take.
type Letter struct {
	// Destination is the destination's configured name (the PartitionKey), or
	// UndecodablePartition.
	Destination string
	// ID is the RowKey. Put fills it from the coordinates when empty; it is sortable by time.
	ID string
	// Kind is the record kind (alert.Kind as text), empty for undecodable messages.
	Kind string
	// Reason says why delivery failed.
	Reason sink.Reason
	// Error is the last error text, with secrets already scrubbed by the caller.
	Error string
	// Attempts counts delivery attempts so far (invocation retries plus replays).
	Attempts int
	// FirstFailure and LastFailure bound the failures seen.
	FirstFailure time.Time
	LastFailure  time.Time
	// Parked letters are no longer replayed automatically.
	Parked bool
	// Coordinates locate the record in the Event Hub.
	Coordinates Coordinates
	// AlertID and Severity are set when the record is an alert, for operators' filters.
	AlertID  string
	Severity string
	// Payload is the original record bytes, stored whole whatever its size. List leaves it nil.
	Payload []byte
	// PayloadSize and PayloadSHA256 (lower-case hex) describe the stored payload. Put computes
	// them and ignores what the caller set; Get and List fill them, so a summary tells an
	// operator how big a letter is without loading it.
	PayloadSize   int64
	PayloadSHA256 string
}
