package journal

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// A record is one entry as a line of a journal file: a JSON object that
// starts with its sequence number and ends with "\n". See the package
// documentation for the fields.

// recordStart is how every record begins; a reader that finds a damaged
// line looks for it to pick up the record glued behind the damage.
const recordStart = `{"seq":`

// errCorrupt marks a line of a journal file that is not a record.
var errCorrupt = errors.New("not a journal record")

// appendRecord appends e as a record, newline included. The unit is not
// stored: the directory names it.
func appendRecord(dst []byte, e *Entry) []byte {
	dst = append(dst, recordStart...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","stream":`...)
	dst = appendJSONString(dst, e.Stream)
	if e.PID != 0 {
		dst = append(dst, `,"pid":`...)
		dst = strconv.AppendInt(dst, int64(e.PID), 10)
	}
	if e.Priority != PriorityInfo {
		dst = append(dst, `,"pri":`...)
		dst = strconv.AppendInt(dst, int64(e.Priority), 10)
	}
	if e.Break != "" {
		dst = append(dst, `,"break":`...)
		dst = appendJSONString(dst, e.Break)
	}
	if utf8.ValidString(e.Line) {
		dst = append(dst, `,"line":`...)
		dst = appendJSONString(dst, e.Line)
	} else {
		dst = append(dst, `,"line_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(e.Line))
		dst = append(dst, '"')
	}
	return append(dst, "}\n"...)
}

// diskRecord is a record as encoding/json reads it.
type diskRecord struct {
	Seq     uint64  `json:"seq"`
	Time    string  `json:"time"`
	Stream  string  `json:"stream"`
	PID     int     `json:"pid"`
	Pri     *int    `json:"pri"`
	Break   string  `json:"break"`
	Line    *string `json:"line"`
	LineB64 []byte  `json:"line_base64"`
}

// decodeRecord reads one record (without its newline). Fields it does not
// know are ignored, so that a newer writer's files stay readable.
func decodeRecord(line []byte) (Entry, error) {
	// A record starts with its sequence number; a reader that finds the
	// highest one by its bytes (maxSeq) must find what the decoder does,
	// whatever encoding/json makes of key order, case and repeats.
	rest, ok := bytes.CutPrefix(line, []byte(recordStart))
	digits := 0
	for ok && digits < len(rest) && '0' <= rest[digits] && rest[digits] <= '9' {
		digits++
	}
	if !ok || digits == 0 {
		return Entry{}, fmt.Errorf("%w: does not start with %s and a number", errCorrupt, recordStart)
	}
	prefixSeq, err := strconv.ParseUint(string(rest[:digits]), 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: seq: %w", errCorrupt, err)
	}
	var r diskRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: time: %w", errCorrupt, err)
	}
	e := Entry{Seq: r.Seq, Time: t, Stream: r.Stream, PID: r.PID, Priority: PriorityInfo, Break: r.Break}
	if r.Pri != nil {
		e.Priority = Priority(*r.Pri)
	}
	switch {
	case r.Line != nil && r.LineB64 == nil:
		e.Line = *r.Line
	case r.Line == nil && r.LineB64 != nil:
		e.Line = string(r.LineB64)
	default:
		return Entry{}, fmt.Errorf("%w: want exactly one of line and line_base64", errCorrupt)
	}
	switch {
	case e.Seq != prefixSeq:
		return Entry{}, fmt.Errorf("%w: seq %d, then seq %d", errCorrupt, prefixSeq, e.Seq)
	case e.Seq == 0:
		return Entry{}, fmt.Errorf("%w: seq 0", errCorrupt)
	case !knownStream(e.Stream):
		return Entry{}, fmt.Errorf("%w: unknown stream %q", errCorrupt, e.Stream)
	case e.PID < 0:
		return Entry{}, fmt.Errorf("%w: pid %d", errCorrupt, e.PID)
	case !e.Priority.valid():
		return Entry{}, fmt.Errorf("%w: priority %d", errCorrupt, e.Priority)
	case !knownBreak(e.Break):
		return Entry{}, fmt.Errorf("%w: unknown break %q", errCorrupt, e.Break)
	}
	return e, nil
}

// decodeLine reads a line of a journal file. A line that is not a record
// may be damage glued to the front of one: a torn write that could not be
// cut off, or a block of zeros a crash left behind. Then the record after
// the damage is read, if there is one.
func decodeLine(line []byte) (Entry, error) {
	e, err := decodeRecord(line)
	if err == nil {
		return e, nil
	}
	if i := bytes.LastIndex(line, []byte(recordStart)); i > 0 {
		if e, err2 := decodeRecord(line[i:]); err2 == nil {
			return e, nil
		}
	}
	return Entry{}, err
}

// appendJSONString appends s, which must be valid UTF-8, as a JSON string.
// Unlike encoding/json it leaves <, > and & alone, so that a record
// reads like the line it holds.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
