package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON form of an Entry is the one `journalctl -o json` writes, so
// that scripts written against journald read atoll's journal unchanged.
// The package documentation lists the fields.

// MarshalJSON writes e as one object of `journalctl -o json`. (Through
// encoding/json, <, > and & in the message come out escaped as \u003c and
// so on; AppendJSON leaves them, as journalctl does.)
func (e Entry) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// AppendJSON appends e as one object of `journalctl -o json`, without a
// newline. Time is written in microseconds, as journald keeps it.
func (e Entry) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"__REALTIME_TIMESTAMP":"`...)
	dst = strconv.AppendInt(dst, e.Time.UnixMicro(), 10)
	dst = append(dst, `","__SEQNUM":"`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `","PRIORITY":"`...)
	dst = strconv.AppendInt(dst, int64(e.Priority), 10)
	dst = append(dst, '"')
	transport, unitField, identifier := journaldSource(e.Stream)
	dst = append(dst, `,"_TRANSPORT":"`...)
	dst = append(dst, transport...)
	dst = append(dst, `",`...)
	dst = appendJSONString(dst, unitField)
	dst = append(dst, ':')
	dst = appendJSONString(dst, validUTF8(e.Unit))
	if identifier != "" {
		dst = append(dst, `,"SYSLOG_IDENTIFIER":`...)
		dst = appendJSONString(dst, identifier)
	}
	if e.PID != 0 {
		dst = append(dst, `,"_PID":"`...)
		dst = strconv.AppendInt(dst, int64(e.PID), 10)
		dst = append(dst, '"')
	}
	if e.Break != "" {
		dst = append(dst, `,"_LINE_BREAK":`...)
		dst = appendJSONString(dst, validUTF8(e.Break))
	}
	dst = append(dst, `,"_ATOLL_STREAM":`...)
	dst = appendJSONString(dst, validUTF8(e.Stream))
	dst = append(dst, `,"MESSAGE":`...)
	if printable(e.Line) {
		dst = appendJSONString(dst, e.Line)
	} else {
		dst = append(dst, '[')
		for i := 0; i < len(e.Line); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(dst, uint64(e.Line[i]), 10)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// journaldSource maps a stream to the fields journald gives lines from
// the same kind of source: a service's output comes in over a stdout
// stream and names its unit in _SYSTEMD_UNIT; the manager's messages
// about a unit come from the manager (_TRANSPORT=journal) and name the
// unit in UNIT, as systemd's "Started web.service." does; the journal's
// own notices are driver messages.
func journaldSource(stream string) (transport, unitField, identifier string) {
	switch stream {
	case StreamStdout, StreamStderr:
		return "stdout", "_SYSTEMD_UNIT", ""
	case StreamManager:
		return "journal", "UNIT", "atoll"
	default:
		return "driver", "UNIT", "atoll-journal"
	}
}

// UnmarshalJSON reads an object written by MarshalJSON. It also reads
// journald's own objects for the fields an Entry has: the stream is taken
// from _TRANSPORT when _ATOLL_STREAM is missing, and a missing PRIORITY is
// info.
func (e *Entry) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("journal entry: %w", err)
	}
	str := func(name string) (string, bool, error) {
		raw, ok := fields[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Errorf("journal entry: %s: want a string: %w", name, err)
		}
		return s, true, nil
	}
	num := func(name string, bits int) (int64, bool, error) {
		s, ok, err := str(name)
		if !ok || err != nil {
			return 0, ok, err
		}
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return 0, false, fmt.Errorf("journal entry: %s: %w", name, err)
		}
		return n, true, nil
	}

	var out Entry
	usec, ok, err := num("__REALTIME_TIMESTAMP", 64)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("journal entry: no __REALTIME_TIMESTAMP")
	}
	out.Time = time.UnixMicro(usec).UTC()
	if s, ok, err := str("__SEQNUM"); err != nil {
		return err
	} else if ok {
		if out.Seq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("journal entry: __SEQNUM: %w", err)
		}
	}
	out.Priority = PriorityInfo
	if p, ok, err := num("PRIORITY", 8); err != nil {
		return err
	} else if ok {
		out.Priority = Priority(p)
		if !out.Priority.valid() {
			return fmt.Errorf("journal entry: PRIORITY %d is not a syslog level", p)
		}
	}
	if pid, _, err := num("_PID", 32); err != nil {
		return err
	} else {
		out.PID = int(pid)
	}
	if out.Break, _, err = str("_LINE_BREAK"); err != nil {
		return err
	}
	stream, ok, err := str("_ATOLL_STREAM")
	if err != nil {
		return err
	}
	if !ok {
		transport, _, err := str("_TRANSPORT")
		if err != nil {
			return err
		}
		switch transport {
		case "stdout":
			stream = StreamStdout
		case "driver":
			stream = StreamJournal
		default:
			stream = StreamManager
		}
	}
	out.Stream = stream
	for _, name := range []string{"_SYSTEMD_UNIT", "UNIT"} {
		if unit, ok, err := str(name); err != nil {
			return err
		} else if ok {
			out.Unit = unit
			break
		}
	}
	raw, ok := fields["MESSAGE"]
	if !ok {
		return errors.New("journal entry: no MESSAGE")
	}
	if string(raw) == "null" {
		// journalctl writes null for a field it found too large to show.
		return errors.New("journal entry: MESSAGE is null, left out as too large")
	}
	if err := json.Unmarshal(raw, &out.Line); err != nil {
		var numbers []int
		if err := json.Unmarshal(raw, &numbers); err != nil {
			return fmt.Errorf("journal entry: MESSAGE: want a string or an array of bytes: %w", err)
		}
		line := make([]byte, len(numbers))
		for i, n := range numbers {
			if n < 0 || n > 255 {
				return fmt.Errorf("journal entry: MESSAGE: %d is not a byte", n)
			}
			line[i] = byte(n)
		}
		out.Line = string(line)
	}
	*e = out
	return nil
}

// printable reports whether journald writes s as a JSON string rather than
// as an array of bytes: valid UTF-8 without control characters other than
// tab and newline.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' || 0x7f <= r && r <= 0x9f {
			return false
		}
	}
	return true
}

// validUTF8 keeps the JSON form valid when a field that should be text is
// not; such fields (unit, stream) never come from a journal file.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}

// NDJSON returns a reader callback (for Read) that writes each entry to w
// as one JSON object per line, journald's export shape, and with follow
// flushes after each so a follower sees lines as they come. flush may be
// nil.
func NDJSON(w io.Writer, flush func(), follow bool) func(Entry) error {
	var buf []byte
	return func(e Entry) error {
		buf = append(e.AppendJSON(buf[:0]), '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if follow && flush != nil {
			flush()
		}
		return nil
	}
}
