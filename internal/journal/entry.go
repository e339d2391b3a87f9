package journal

import "time"

// Entry is one line of a unit's journal.
type Entry struct {
	// Seq numbers a unit's entries from 1, in the order they were
	// queued, across rotation and daemon restarts. It can skip (entries
	// lost when the daemon died before writing them) but never goes
	// back, until the unit's journal is removed.
	Seq uint64
	// Time is when the journal received the line: a captured line is
	// stamped when it is read from the pipe, so the entries of one unit
	// are in time order unless the wall clock steps back.
	Time time.Time
	// Unit is the unit's name, such as web@1.service.
	Unit string
	// Stream says who wrote the line: StreamStdout, StreamStderr,
	// StreamManager or StreamJournal.
	Stream string
	// PID is the process the line came from, 0 when not known.
	PID int
	// Priority is the line's syslog level.
	Priority Priority
	// Line is the text without its newline. It holds the bytes as they
	// were written, valid UTF-8 or not.
	Line string
	// Break says why the line ended other than at a newline: BreakLineMax
	// when it was cut at Options.MaxLineBytes and continues in the next
	// entry of the same stream, BreakEOF when the stream ended without a
	// final newline; "" for a whole line.
	Break string
}

// The streams an Entry can come from.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	// StreamManager marks the unit manager's own lines about the unit
	// ("Started web.service."), written with Append.
	StreamManager = "manager"
	// StreamJournal marks the journal's lines about itself: how many
	// lines it had to drop.
	StreamJournal = "journal"
)

// Reasons a line was cut, named as journald's _LINE_BREAK field names them.
const (
	BreakLineMax = "line-max"
	BreakEOF     = "eof"
)

// Priority is a syslog level, as in journald's PRIORITY field.
type Priority int

// The syslog levels, most severe first.
const (
	PriorityEmergency Priority = iota
	PriorityAlert
	PriorityCritical
	PriorityError
	PriorityWarning
	PriorityNotice
	PriorityInfo
	PriorityDebug
)

// valid reports whether p is one of the eight syslog levels.
func (p Priority) valid() bool { return PriorityEmergency <= p && p <= PriorityDebug }

// knownStream reports whether s is one of the streams an Entry can carry.
func knownStream(s string) bool {
	switch s {
	case StreamStdout, StreamStderr, StreamManager, StreamJournal:
		return true
	}
	return false
}

// knownBreak reports whether b is a value Entry.Break can take.
func knownBreak(b string) bool {
	return b == "" || b == BreakLineMax || b == BreakEOF
}
