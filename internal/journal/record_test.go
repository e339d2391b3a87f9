package journal

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2025, 11, 25, 10, 51, 3, 123456789, time.UTC)
	cases := []struct {
		name  string
		entry Entry
		want  string // the record, when the test pins it
	}{
		{
			name:  "plain stdout line",
			entry: Entry{Seq: 1, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: "listening on :8080"},
			want:  `{"seq":1,"time":"2025-11-25T10:51:03.123456789Z","stream":"stdout","line":"listening on :8080"}` + "\n",
		},
		{
			name:  "every field",
			entry: Entry{Seq: 1204, Time: at, Stream: StreamStderr, PID: 812, Priority: PriorityError, Line: "disk failed", Break: BreakLineMax},
			want:  `{"seq":1204,"time":"2025-11-25T10:51:03.123456789Z","stream":"stderr","pid":812,"pri":3,"break":"line-max","line":"disk failed"}` + "\n",
		},
		{
			name:  "HTML characters stay",
			entry: Entry{Seq: 2, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: "<a href=\"x\">&</a>"},
			want:  `{"seq":2,"time":"2025-11-25T10:51:03.123456789Z","stream":"stdout","line":"<a href=\"x\">&</a>"}` + "\n",
		},
		{
			name:  "invalid UTF-8 kept as bytes",
			entry: Entry{Seq: 3, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: "caf\xe9 \xff"},
			want:  `{"seq":3,"time":"2025-11-25T10:51:03.123456789Z","stream":"stdout","line_base64":"Y2Fm6SD/"}` + "\n",
		},
		{name: "control characters", entry: Entry{Seq: 4, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: "\x1b[31mred\x1b[0m\r\t\x00\x7f\"\\"}},
		{name: "an escaped newline inside", entry: Entry{Seq: 5, Time: at, Stream: StreamManager, Priority: PriorityNotice, Line: "two\nlines"}},
		{name: "empty line", entry: Entry{Seq: 6, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: ""}},
		{name: "emergency priority is stored", entry: Entry{Seq: 7, Time: at, Stream: StreamJournal, Priority: PriorityEmergency, Line: "x", Break: BreakEOF}},
		{name: "unicode", entry: Entry{Seq: 8, Time: at, Stream: StreamStdout, Priority: PriorityDebug, Line: "héllo wörld ✓ 日本 \u2028 \ufffd"}},
		{name: "whole-second time", entry: Entry{Seq: 9, Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Stream: StreamStdout, Priority: PriorityInfo, Line: "x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := appendRecord(nil, &tc.entry)
			if tc.want != "" && string(rec) != tc.want {
				t.Errorf("record:\n got %s\nwant %s", rec, tc.want)
			}
			if bytes.IndexByte(rec, '\n') != len(rec)-1 {
				t.Fatalf("record %q: want exactly one newline, at its end", rec)
			}
			if !bytes.HasPrefix(rec, []byte(recordStart)) {
				t.Errorf("record %q does not start with %s", rec, recordStart)
			}
			got, err := decodeRecord(rec[:len(rec)-1])
			if err != nil {
				t.Fatalf("decode %s: %v", rec, err)
			}
			if !sameEntry(got, tc.entry) {
				t.Errorf("decoded %+v, want %+v", got, tc.entry)
			}
		})
	}
}

func sameEntry(a, b Entry) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Unit == b.Unit && a.Stream == b.Stream &&
		a.PID == b.PID && a.Priority == b.Priority && a.Line == b.Line && a.Break == b.Break
}

func TestDecodeRecordRefusesWhatIsNotARecord(t *testing.T) {
	ok := `{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x"}`
	if _, err := decodeRecord([]byte(ok)); err != nil {
		t.Fatalf("decode %s: %v", ok, err)
	}
	for _, bad := range []string{
		``,
		`{`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x"`, // torn
		`{"seq":0,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x"}`,
		`{"seq":1,"time":"yesterday","stream":"stdout","line":"x"}`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"fd3","line":"x"}`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout"}`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x","line_base64":"eA=="}`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","pri":9,"line":"x"}`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","pid":-4,"line":"x"}`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","break":"nul","line":"x"}`,
		`{"seq":-1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x"}`,
		`[1,2,3]`,
		`{"time":"2025-11-25T10:51:03Z","seq":1,"stream":"stdout","line":"x"}`,
		`{"seq":1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x","SEQ":7}`,
		`{"seq": 1,"time":"2025-11-25T10:51:03Z","stream":"stdout","line":"x"}`,
		"\x00\x00\x00\x00",
	} {
		if e, err := decodeRecord([]byte(bad)); err == nil {
			t.Errorf("decode %q = %+v, want an error", bad, e)
		}
	}
}

// A line made of damage with a record behind it, as a torn write that
// could not be cut off leaves, reads as that record.
func TestDecodeLineFindsTheRecordBehindDamage(t *testing.T) {
	e := Entry{Seq: 42, Time: time.Date(2025, 11, 25, 10, 0, 0, 0, time.UTC), Stream: StreamStdout, Priority: PriorityInfo, Line: "after the damage"}
	rec := appendRecord(nil, &e)
	rec = rec[:len(rec)-1]
	for _, damage := range []string{
		`{"seq":41,"time":"2025-11-25T10:00:00Z","stre`,
		strings.Repeat("\x00", 4096),
		"garbage",
	} {
		got, err := decodeLine(append([]byte(damage), rec...))
		if err != nil {
			t.Errorf("decode %.20q + record: %v", damage, err)
			continue
		}
		if !sameEntry(got, e) {
			t.Errorf("decode %.20q + record = %+v, want %+v", damage, got, e)
		}
	}
	if _, err := decodeLine([]byte(strings.Repeat("\x00", 100))); err == nil {
		t.Error("decode of zeros succeeded, want an error")
	}
}
