package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Source says what a captured stream is.
type Source struct {
	// Stream is StreamStdout or StreamStderr.
	Stream string
	// PID is the process writing, 0 when not known.
	PID int
	// NoLevelPrefix keeps a leading "<N>" as text. By default a line
	// that starts with a syslog level in angle brackets, "<3>disk
	// failed", is stored without it at that level, as systemd does for
	// services unless SyslogLevelPrefix=no. Other lines are info.
	NoLevelPrefix bool
}

// captureReadSize is how much a Capture reads from its pipe at a time.
const captureReadSize = 4 << 10

// Capture reads lines from r, a pipe's read end, until r ends, and
// journals each one for unit, stamped with the time it was read. It
// returns nil at EOF, the read error otherwise, and ErrClosed as soon as
// it reads after the journal was closed. The caller owns r: closing r
// ends a Capture early. Run it in its own goroutine, one per stream.
//
// Capture never waits for the disk. Lines go into the unit's queue in
// memory, which one writer goroutine per unit drains to disk; when the
// queue is full (the disk is slow, or full, or failing) the line is
// dropped and counted. Where the gap is, once lines flow again, the
// journal puts a line of its own (StreamJournal) saying how many lines
// were dropped and why; Stats counts them too.
//
// A line ends at "\n", which is not kept. A line longer than
// Options.MaxLineBytes is cut, at a UTF-8 character boundary where there
// is one, into entries marked BreakLineMax; a last line without its
// newline is journaled when r ends, marked BreakEOF. Bytes that are not
// UTF-8 are kept as they are.
func (j *Journal) Capture(unit string, src Source, r io.Reader) error {
	if src.Stream != StreamStdout && src.Stream != StreamStderr {
		return fmt.Errorf("journal: capture %s: stream %q is not %s or %s", unit, src.Stream, StreamStdout, StreamStderr)
	}
	u, err := j.unit(unit)
	if err != nil {
		return fmt.Errorf("journal: capture %s: %w", unit, err)
	}
	maxLine := j.opts.MaxLineBytes
	var (
		buf        = make([]byte, captureReadSize)
		start, end int // unread bytes are buf[start:end]
		cont       bool
		contPri    Priority
	)
	emit := func(line []byte, brk string) error {
		pri := PriorityInfo
		switch {
		case cont:
			pri = contPri
		case !src.NoLevelPrefix:
			if p, rest, ok := levelPrefix(line); ok {
				pri, line = p, rest
			}
		}
		cont, contPri = brk == BreakLineMax, pri
		e := Entry{Stream: src.Stream, PID: src.PID, Priority: pri, Line: string(line), Break: brk}
		for {
			err := u.enqueue(e, j.opts.QueueBytes)
			if !errors.Is(err, errUnitRemoved) {
				return err
			}
			if u, err = j.unit(unit); err != nil {
				return err
			}
		}
	}
	for {
		if start > 0 && len(buf)-end < captureReadSize {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if len(buf)-end < captureReadSize {
			// A line longer than the buffer: grow it, up to what one
			// entry holds.
			grown := make([]byte, min(2*len(buf), maxLine+captureReadSize))
			end = copy(grown, buf[start:end])
			buf, start = grown, 0
		}
		n, rerr := r.Read(buf[end:])
		end += n
		for {
			unread := buf[start:end]
			if i := bytes.IndexByte(unread, '\n'); i >= 0 && i <= maxLine {
				if err := emit(unread[:i], ""); err != nil {
					return fmt.Errorf("journal: capture %s: %w", unit, err)
				}
				start += i + 1
				continue
			}
			if len(unread) > maxLine {
				cut := cutPoint(unread, maxLine)
				if err := emit(unread[:cut], BreakLineMax); err != nil {
					return fmt.Errorf("journal: capture %s: %w", unit, err)
				}
				start += cut
				continue
			}
			break
		}
		if rerr == nil {
			continue
		}
		if end > start {
			if err := emit(buf[start:end], BreakEOF); err != nil {
				return fmt.Errorf("journal: capture %s: %w", unit, err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		return fmt.Errorf("journal: capture %s: %w", unit, rerr)
	}
}

// cutPoint is where to cut b, longer than maxLine, so that the first part
// holds at most maxLine bytes and, when b is UTF-8 there, does not split
// a character.
func cutPoint[T ~string | ~[]byte](b T, maxLine int) int {
	for cut := maxLine; cut > maxLine-utf8.UTFMax && cut > 0; cut-- {
		if utf8.RuneStart(b[cut]) {
			return cut
		}
	}
	return maxLine
}

// levelPrefix reads a "<N>" syslog level at the start of line, as sd-daemon
// defines it.
func levelPrefix(line []byte) (Priority, []byte, bool) {
	if len(line) >= 3 && line[0] == '<' && '0' <= line[1] && line[1] <= '7' && line[2] == '>' {
		return Priority(line[1] - '0'), line[3:], true
	}
	return 0, line, false
}

// Append journals the unit manager's own line about unit, such as
// "Started web.service." or "web.service: Main process exited,
// code=exited, status=1/FAILURE", worded as systemd words them. Stream
// defaults to StreamManager; PriorityEmergency is taken as info, so that
// the zero Entry logs at info (nothing a manager says about one unit is
// an emergency); Time defaults to now; Seq and Unit are set by the
// journal. The line goes through the unit's queue like a captured one,
// but drops only when the queue holds twice Options.QueueBytes, so that
// the manager's word on why a unit died outlasts the unit's own flood.
// A line longer than Options.MaxLineBytes is cut as Capture cuts it.
func (j *Journal) Append(unit string, e Entry) error {
	if e.Stream == "" {
		e.Stream = StreamManager
	}
	if e.Stream == StreamJournal || !knownStream(e.Stream) {
		return fmt.Errorf("journal: append to %s: stream %q is not one a manager writes", unit, e.Stream)
	}
	if e.Priority == PriorityEmergency {
		e.Priority = PriorityInfo
	}
	if !e.Priority.valid() {
		return fmt.Errorf("journal: append to %s: priority %d is not a syslog level", unit, e.Priority)
	}
	if e.Break != "" {
		return fmt.Errorf("journal: append to %s: Break is set by the journal", unit)
	}
	u, err := j.unit(unit)
	if err != nil {
		return fmt.Errorf("journal: append to %s: %w", unit, err)
	}
	if e.Time.IsZero() {
		e.Time = j.opts.Now()
	}
	line := e.Line
	for {
		part := e
		part.Line = line
		if len(line) > j.opts.MaxLineBytes {
			cut := cutPoint(line, j.opts.MaxLineBytes)
			part.Line, part.Break = line[:cut], BreakLineMax
		}
		for {
			err = u.enqueue(part, 2*j.opts.QueueBytes)
			if !errors.Is(err, errUnitRemoved) {
				break
			}
			if u, err = j.unit(unit); err != nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("journal: append to %s: %w", unit, err)
		}
		line = line[len(part.Line):]
		if line == "" {
			return nil
		}
	}
}
