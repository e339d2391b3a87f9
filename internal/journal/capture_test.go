package journal

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// capturePipe runs a Capture of unit's src from a new pipe and returns the
// write end and a channel with Capture's result.
func capturePipe(t *testing.T, j *Journal, unit string, src Source) (*os.File, <-chan error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	done := make(chan error, 1)
	go func() { done <- j.Capture(unit, src, r) }()
	return w, done
}

func waitCapture(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("capture did not return 10s after its pipe was closed")
	}
}

func TestCaptureSplitsLines(t *testing.T) {
	j, _ := openTest(t, Options{MaxLineBytes: 16})
	w, done := capturePipe(t, j, "web.service", Source{Stream: StreamStdout, PID: 812})
	writes := []string{
		"first\n",
		"second line in ", "two writes\n", // longer than 16: cut
		"\n",                    // empty line
		"exactly sixteen!\n",    // 16 bytes: one entry
		"<3>disk failed\n",      // level prefix
		"<9>not a level\n",      // not a prefix
		"héllo wörld ✓ ✓✓✓\n",   // cut at a character boundary
		"caf\xe9 \xff\n",        // not UTF-8
		"windows\r\n",           // \r is kept, as journald keeps it
		"no newline at the end", // flushed at EOF
	}
	for _, s := range writes {
		if _, err := w.WriteString(s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // let the reads split as the writes do
	}
	w.Close()
	waitCapture(t, done)

	type want struct {
		line string
		brk  string
		pri  Priority
	}
	wants := []want{
		{"first", "", PriorityInfo},
		{"second line in t", BreakLineMax, PriorityInfo},
		{"wo writes", "", PriorityInfo},
		{"", "", PriorityInfo},
		{"exactly sixteen!", "", PriorityInfo},
		{"disk failed", "", PriorityError},
		{"<9>not a level", "", PriorityInfo},
		{"héllo wörld ", BreakLineMax, PriorityInfo}, // 14 bytes: ✓ would cross 16
		{"✓ ✓✓✓", "", PriorityInfo},
		{"caf\xe9 \xff", "", PriorityInfo},
		{"windows\r", "", PriorityInfo},
		{"no newline at th", BreakLineMax, PriorityInfo},
		{"e end", BreakEOF, PriorityInfo},
	}
	got := readAll(t, j, "web.service", ReadOptions{})
	if len(got) != len(wants) {
		t.Fatalf("got %d entries %q, want %d", len(got), lines(got), len(wants))
	}
	for i, w := range wants {
		e := got[i]
		if e.Line != w.line || e.Break != w.brk || e.Priority != w.pri {
			t.Errorf("entry %d = %q break %q priority %d, want %q break %q priority %d", i, e.Line, e.Break, e.Priority, w.line, w.brk, w.pri)
		}
		if e.Seq != uint64(i+1) || e.Unit != "web.service" || e.Stream != StreamStdout || e.PID != 812 || e.Time.IsZero() {
			t.Errorf("entry %d = %+v, want seq %d of web.service stdout pid 812 with a time", i, e, i+1)
		}
	}
	// The same entries come back from disk, after the queue is written.
	waitWritten(t, j, "web.service")
	again := readAll(t, j, "web.service", ReadOptions{})
	for i := range got {
		if i >= len(again) || !sameEntry(again[i], got[i]) {
			t.Fatalf("from disk, entry %d differs: %+v, want %+v", i, again[i:], got[i])
		}
	}
}

// A level prefix on a line cut in parts sets the level of every part.
func TestCaptureLevelPrefixCoversTheWholeLine(t *testing.T) {
	j, _ := openTest(t, Options{MaxLineBytes: 16})
	w, done := capturePipe(t, j, "a.service", Source{Stream: StreamStderr})
	w.WriteString("<4>a warning longer than sixteen bytes\n<7>debug\n")
	w.Close()
	waitCapture(t, done)
	got := readAll(t, j, "a.service", ReadOptions{})
	want := []Priority{PriorityWarning, PriorityWarning, PriorityWarning, PriorityDebug}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %d entries", lines(got), len(want))
	}
	for i, p := range want {
		if got[i].Priority != p {
			t.Errorf("entry %d %q has priority %d, want %d", i, got[i].Line, got[i].Priority, p)
		}
	}
}

func TestCaptureNoLevelPrefixKeepsIt(t *testing.T) {
	j, _ := openTest(t, Options{})
	if err := j.Capture("a.service", Source{Stream: StreamStdout, NoLevelPrefix: true}, strings.NewReader("<3>kept\n")); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, j, "a.service", ReadOptions{})
	if len(got) != 1 || got[0].Line != "<3>kept" || got[0].Priority != PriorityInfo {
		t.Errorf("got %+v, want one info entry %q", got, "<3>kept")
	}
}

func TestCaptureOfManyUnitsAndStreamsAtOnce(t *testing.T) {
	// A queue that holds everything: this test is about order, not drops.
	j, _ := openTest(t, Options{QueueBytes: 64 << 20})
	const units, perStream = 8, 2000
	var dones []<-chan error
	var writers []*os.File
	for u := range units {
		for _, stream := range []string{StreamStdout, StreamStderr} {
			w, done := capturePipe(t, j, unitName(u), Source{Stream: stream})
			writers, dones = append(writers, w), append(dones, done)
		}
	}
	for i, w := range writers {
		go func() {
			var b strings.Builder
			for n := range perStream {
				b.WriteString(streamLine(i, n))
			}
			w.WriteString(b.String())
			w.Close()
		}()
	}
	for _, done := range dones {
		waitCapture(t, done)
	}
	for u := range units {
		got := readAll(t, j, unitName(u), ReadOptions{})
		checkOrder(t, got)
		if len(got) != 2*perStream {
			t.Fatalf("%s: %d entries, want %d", unitName(u), len(got), 2*perStream)
		}
		// Each stream's lines are in the order written.
		next := map[string]int{}
		for _, e := range got {
			w := 2*u + map[string]int{StreamStdout: 0, StreamStderr: 1}[e.Stream]
			if want := strings.TrimSuffix(streamLine(w, next[e.Stream]), "\n"); e.Line != want {
				t.Fatalf("%s %s: got %q, want %q", unitName(u), e.Stream, e.Line, want)
			}
			next[e.Stream]++
		}
	}
	names, err := j.Units()
	if err != nil || len(names) != units {
		t.Errorf("Units() = %q, %v; want %d units", names, err, units)
	}
}

func unitName(i int) string { return "web@" + string(rune('a'+i)) + ".service" }

func streamLine(writer, n int) string {
	return "writer " + itoa(writer) + " line " + itoa(n) + "\n"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestCaptureRefusesAnUnknownStream(t *testing.T) {
	j, _ := openTest(t, Options{})
	if err := j.Capture("a.service", Source{Stream: "fd3"}, strings.NewReader("x\n")); err == nil {
		t.Error("capture of stream fd3 succeeded, want an error")
	}
	if err := j.Capture("", Source{Stream: StreamStdout}, strings.NewReader("x\n")); !errors.Is(err, ErrInvalidUnit) {
		t.Errorf("capture for an empty unit name: %v, want ErrInvalidUnit", err)
	}
}

func TestCaptureAfterCloseEnds(t *testing.T) {
	j, _ := openTest(t, Options{})
	w, done := capturePipe(t, j, "a.service", Source{Stream: StreamStdout})
	w.WriteString("before\n")
	for readAll(t, j, "a.service", ReadOptions{}) == nil {
		time.Sleep(time.Millisecond)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	w.WriteString("after\n")
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("capture after Close returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("capture still running 10s after Close and another line")
	}
}

func TestAppend(t *testing.T) {
	clock := newStepClock()
	j, _ := openTest(t, Options{MaxLineBytes: 32, Now: clock.Now})
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := []Entry{
		{Line: "Started web.service."},
		{Line: "web.service: Main process exited, code=exited, status=1/FAILURE", Priority: PriorityNotice, PID: 812, Time: at},
		{Line: "from stdout", Stream: StreamStdout},
	}
	for _, e := range steps {
		if err := j.Append("web.service", e); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, j, "web.service", ReadOptions{})
	want := []Entry{
		{Seq: 1, Time: clock.now.Add(-time.Second), Unit: "web.service", Stream: StreamManager, Priority: PriorityInfo, Line: "Started web.service."},
		{Seq: 2, Time: at, Unit: "web.service", Stream: StreamManager, PID: 812, Priority: PriorityNotice, Line: "web.service: Main process exited", Break: BreakLineMax},
		{Seq: 3, Time: at, Unit: "web.service", Stream: StreamManager, PID: 812, Priority: PriorityNotice, Line: ", code=exited, status=1/FAILURE"},
		{Seq: 4, Time: clock.now, Unit: "web.service", Stream: StreamStdout, Priority: PriorityInfo, Line: "from stdout"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %d entries", lines(got), len(want))
	}
	for i := range want {
		if !sameEntry(got[i], want[i]) {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []Entry{{Stream: StreamJournal}, {Stream: "fd3"}, {Priority: 8}, {Break: BreakEOF}} {
		if err := j.Append("web.service", bad); err == nil {
			t.Errorf("Append(%+v) succeeded, want an error", bad)
		}
	}
}
