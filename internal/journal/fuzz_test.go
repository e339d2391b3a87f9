package journal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeLine feeds arbitrary lines to the record decoder, which reads
// files left behind by crashes. It must never panic; what it accepts must
// be a valid entry that encodes to a record decoding to the same entry.
func FuzzDecodeLine(f *testing.F) {
	at := time.Date(2025, 11, 25, 10, 51, 3, 123456789, time.UTC)
	for _, e := range []Entry{
		{Seq: 1, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: "hello"},
		{Seq: 1204, Time: at, Stream: StreamStderr, PID: 812, Priority: PriorityError, Line: "disk \"failed\"\t\x1b[0m", Break: BreakLineMax},
		{Seq: 9, Time: at, Stream: StreamManager, Priority: PriorityNotice, Line: "caf\xe9 \xff", Break: BreakEOF},
	} {
		rec := appendRecord(nil, &e)
		f.Add(rec[:len(rec)-1])
		f.Add(rec[:len(rec)/2])                                             // torn
		f.Add(append(bytes.Repeat([]byte{0}, 16), rec[:len(rec)-1]...))     // zeros glued in front
		f.Add(append([]byte(`{"seq":3,"time":"2025`), rec[:len(rec)-1]...)) // torn record glued in front
	}
	f.Add([]byte(`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x","SEQ":2}`))
	f.Add([]byte(`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line_base64":"////"}`))
	f.Add([]byte(`{"seq":18446744073709551615,"time":"9999-12-31T23:59:59.999999999+14:00","stream":"journal","pri":0,"line":"\u2028\ud800"}`))

	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := decodeLine(line)
		if err != nil {
			return
		}
		if e.Seq == 0 || !knownStream(e.Stream) || !e.Priority.valid() || !knownBreak(e.Break) || e.PID < 0 {
			t.Fatalf("decoded an invalid entry %+v from %q", e, line)
		}
		rec := appendRecord(nil, &e)
		if bytes.IndexByte(rec, '\n') != len(rec)-1 {
			t.Fatalf("entry %+v encodes to %q: want one newline, at the end", e, rec)
		}
		again, err := decodeRecord(rec[:len(rec)-1])
		if err != nil {
			t.Fatalf("entry %+v from %q encodes to %q, which does not decode: %v", e, line, rec, err)
		}
		if !sameEntry(again, e) {
			t.Fatalf("entry %+v from %q encodes to %q, which decodes to %+v", e, line, rec, again)
		}
	})
}

// FuzzReadDamagedFile opens a journal whose current file holds arbitrary
// bytes, as a crash or a bad disk could leave it, and reads it whole and
// with -n. Neither may fail or panic; both must give entries in order of
// sequence number, -n the tail of what a whole read gives; and a line
// appended afterwards must read back last.
func FuzzReadDamagedFile(f *testing.F) {
	at := time.Date(2025, 11, 25, 10, 0, 0, 0, time.UTC)
	var good []byte
	for i := uint64(1); i <= 5; i++ {
		good = appendRecord(good, &Entry{Seq: i, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: strings.Repeat("x", int(i))})
	}
	f.Add(good, uint8(2))
	f.Add(good[:len(good)-7], uint8(3))                                               // torn at the end
	f.Add(append(append(good[:40:40], make([]byte, 30)...), good[40:]...), uint8(10)) // zeros inside
	f.Add(bytes.Repeat([]byte("\n"), 10), uint8(1))
	f.Add([]byte(`{"seq":5,"time":"2025-11-25T10:00:00Z","stream":"stdout","line":"a"}`+"\n"+
		`{"seq":3,"time":"2025-11-25T10:00:00Z","stream":"stdout","line":"b"}`+"\n"), uint8(1)) // seqs going back
	f.Add([]byte{}, uint8(0))

	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		dir := t.TempDir()
		unitDir := filepath.Join(dir, "a.service")
		if err := os.Mkdir(unitDir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(unitDir, currentName), data, 0o640); err != nil {
			t.Fatal(err)
		}
		j, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { j.Close() }() // the j last opened
		ctx := context.Background()
		read := func(o ReadOptions) []Entry {
			var got []Entry
			if err := j.Read(ctx, "a.service", o, func(e Entry) error {
				got = append(got, e)
				return nil
			}); err != nil {
				t.Fatalf("read %+v: %v", o, err)
			}
			return got
		}
		all := read(ReadOptions{})
		checkOrder(t, all)
		if n > 0 {
			tail := read(ReadOptions{Lines: int(n)})
			want := all[max(0, len(all)-int(n)):]
			if len(tail) != len(want) {
				t.Fatalf("-n %d gave %d entries, a whole read ends with %d", n, len(tail), len(want))
			}
			for i := range want {
				if !sameEntry(tail[i], want[i]) {
					t.Fatalf("-n %d: entry %d = %+v, a whole read has %+v", n, i, tail[i], want[i])
				}
			}
		}
		if err := j.Append("a.service", Entry{Line: "appended"}); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j, err = Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		after := read(ReadOptions{})
		checkOrder(t, after)
		if len(after) == 0 || after[len(after)-1].Line != "appended" {
			t.Fatalf("after appending to the damaged file, the last entry is not the appended one: %+v", after)
		}
	})
}
