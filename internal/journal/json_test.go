package journal

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEntryJSONIsJournalctls(t *testing.T) {
	at := time.Date(2025, 11, 25, 10, 51, 3, 123456789, time.UTC)
	cases := []struct {
		name  string
		entry Entry
		want  string
	}{
		{
			name:  "a service's output",
			entry: Entry{Seq: 7, Time: at, Unit: "web@1.service", Stream: StreamStderr, PID: 812, Priority: PriorityInfo, Line: "listening on :8080"},
			want:  `{"__REALTIME_TIMESTAMP":"1764067863123456","__SEQNUM":"7","PRIORITY":"6","_TRANSPORT":"stdout","_SYSTEMD_UNIT":"web@1.service","_PID":"812","_ATOLL_STREAM":"stderr","MESSAGE":"listening on :8080"}`,
		},
		{
			name:  "the manager's line",
			entry: Entry{Seq: 8, Time: at, Unit: "web.service", Stream: StreamManager, Priority: PriorityNotice, Line: "web.service: Main process exited, code=exited, status=1/FAILURE"},
			want:  `{"__REALTIME_TIMESTAMP":"1764067863123456","__SEQNUM":"8","PRIORITY":"5","_TRANSPORT":"journal","UNIT":"web.service","SYSLOG_IDENTIFIER":"atoll","_ATOLL_STREAM":"manager","MESSAGE":"web.service: Main process exited, code=exited, status=1/FAILURE"}`,
		},
		{
			name:  "the journal's drop notice",
			entry: Entry{Seq: 9, Time: at, Unit: "web.service", Stream: StreamJournal, Priority: PriorityWarning, Line: "atoll-journal: 3 lines dropped: writing fell behind"},
			want:  `{"__REALTIME_TIMESTAMP":"1764067863123456","__SEQNUM":"9","PRIORITY":"4","_TRANSPORT":"driver","UNIT":"web.service","SYSLOG_IDENTIFIER":"atoll-journal","_ATOLL_STREAM":"journal","MESSAGE":"atoll-journal: 3 lines dropped: writing fell behind"}`,
		},
		{
			name:  "a colour escape makes a byte array, as in journald",
			entry: Entry{Seq: 10, Time: at, Unit: "web.service", Stream: StreamStdout, Priority: PriorityInfo, Line: "\x1b[1mok"},
			want:  `{"__REALTIME_TIMESTAMP":"1764067863123456","__SEQNUM":"10","PRIORITY":"6","_TRANSPORT":"stdout","_SYSTEMD_UNIT":"web.service","_ATOLL_STREAM":"stdout","MESSAGE":[27,91,49,109,111,107]}`,
		},
		{
			name:  "invalid UTF-8 makes a byte array",
			entry: Entry{Seq: 11, Time: at, Unit: "web.service", Stream: StreamStdout, Priority: PriorityInfo, Line: "caf\xe9", Break: BreakEOF},
			want:  `{"__REALTIME_TIMESTAMP":"1764067863123456","__SEQNUM":"11","PRIORITY":"6","_TRANSPORT":"stdout","_SYSTEMD_UNIT":"web.service","_LINE_BREAK":"eof","_ATOLL_STREAM":"stdout","MESSAGE":[99,97,102,233]}`,
		},
		{
			name:  "tabs, quotes and HTML stay a string",
			entry: Entry{Seq: 12, Time: at, Unit: "web.service", Stream: StreamStdout, Priority: PriorityInfo, Line: "a\t\"<b>\" & ✓"},
			want:  `{"__REALTIME_TIMESTAMP":"1764067863123456","__SEQNUM":"12","PRIORITY":"6","_TRANSPORT":"stdout","_SYSTEMD_UNIT":"web.service","_ATOLL_STREAM":"stdout","MESSAGE":"a\t\"<b>\" & ✓"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.entry.AppendJSON(nil)
			if string(got) != tc.want {
				t.Errorf("JSON:\n got %s\nwant %s", got, tc.want)
			}
			marshalled, err := json.Marshal(tc.entry)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.entry
			want.Time = want.Time.Truncate(time.Microsecond)
			for _, data := range [][]byte{got, marshalled} {
				var back Entry
				if err := json.Unmarshal(data, &back); err != nil {
					t.Fatalf("unmarshal %s: %v", data, err)
				}
				if !sameEntry(back, want) {
					t.Errorf("round trip of %s gave %+v, want %+v", data, back, want)
				}
			}
		})
	}
}

// UnmarshalJSON reads what journalctl -o json writes for a service.
func TestEntryUnmarshalsJournaldsOwnJSON(t *testing.T) {
	const fromJournalctl = `{"_BOOT_ID":"6c7c6013a26343b29e964691ff25d04c","__CURSOR":"s=739a;i=4ece8","__REALTIME_TIMESTAMP":"1342540861421465","__MONOTONIC_TIMESTAMP":"21415221039","_TRANSPORT":"stdout","PRIORITY":"3","SYSLOG_FACILITY":"3","SYSLOG_IDENTIFIER":"nginx","_PID":"8278","_UID":"0","_COMM":"nginx","_SYSTEMD_UNIT":"nginx.service","MESSAGE":[104,105,7],"__SEQNUM":"323784"}`
	var e Entry
	if err := json.Unmarshal([]byte(fromJournalctl), &e); err != nil {
		t.Fatal(err)
	}
	want := Entry{Seq: 323784, Time: time.UnixMicro(1342540861421465), Unit: "nginx.service", Stream: StreamStdout, PID: 8278, Priority: PriorityError, Line: "hi\a"}
	if !sameEntry(e, want) {
		t.Errorf("got %+v, want %+v", e, want)
	}
	for _, bad := range []string{
		`{"MESSAGE":"x"}`,
		`{"__REALTIME_TIMESTAMP":"1"}`,
		`{"__REALTIME_TIMESTAMP":1,"MESSAGE":"x"}`,
		`{"__REALTIME_TIMESTAMP":"1","PRIORITY":"9","MESSAGE":"x"}`,
		`{"__REALTIME_TIMESTAMP":"1","MESSAGE":[256]}`,
		`{"__REALTIME_TIMESTAMP":"1","MESSAGE":null}`,
		`[]`,
	} {
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("unmarshal %s succeeded, want an error", bad)
		}
	}
}
