// Package relp is a client of RELP, the Reliable Event Logging Protocol that rsyslog's imrelp
// serves: every syslog message is a transaction the receiver answers, so a message counts as
// delivered only when its answer says 200. It opens a session with offers, keeps a window of
// unanswered transactions, reconnects when a session breaks and sends the unanswered messages
// again on the new session (duplicates are possible, loss is not), and closes politely.
//
// TLS, when configured, starts right after the TCP connect, as librelp does; there is no
// starttls command. Frames are parsed by a strict, bounded reader (ReadFrame) that a hostile
// peer cannot make panic or allocate without limit.
//
// A 200 from rsyslog means the message was accepted into rsyslog's queue, not that it was
// written to its final output: what the collector then loses (an in-memory queue at a crash)
// is outside what any sender can see.
package relp
