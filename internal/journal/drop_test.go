package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pump writes lines "line 1" to "line n" into a pipe that unit's stdout
// is captured from, and returns once both the writer and Capture are done.
// The test fails if the writer is held up for 10s: the capture side must
// never wait for the disk.
func pump(t *testing.T, j *Journal, unit string, n int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	captured := make(chan error, 1)
	go func() { captured <- j.Capture(unit, Source{Stream: StreamStdout}, r) }()
	written := make(chan error, 1)
	go func() {
		var b bytes.Buffer
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		_, err := w.Write(b.Bytes())
		w.Close()
		written <- err
	}()
	select {
	case err := <-written:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("writing %d lines into the pipe took over 10s: the capture side waited for the disk", n)
	}
	if err := <-captured; err != nil {
		t.Fatal(err)
	}
}

// waitWriteErr waits until the unit's writes fail with want.
func waitWriteErr(t *testing.T, j *Journal, unit string, want error) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := j.Stats(unit)
		if err != nil {
			t.Fatal(err)
		}
		if errors.Is(st.WriteErr, want) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after 10s Stats = %+v, want writes failing with %v", unit, st, want)
		}
		time.Sleep(time.Millisecond)
	}
}

var dropNotice = regexp.MustCompile(`^atoll-journal: (\d+) lines? dropped: (.+)$`)

// checkDrops checks a unit's entries after lines "line 1" to "line n" went
// through drops: the lines kept are in order, a notice stands before the
// line after each gap and counts exactly the lines missing there. It
// returns the lines counted as dropped and the notices' reasons.
func checkDrops(t *testing.T, got []Entry, n int) (dropped int, reasons []string) {
	t.Helper()
	checkOrder(t, got)
	next, noticed := 1, 0 // noticed: lines the notices since the last line count
	for _, e := range got {
		if m := dropNotice.FindStringSubmatch(e.Line); m != nil {
			if e.Stream != StreamJournal || e.Priority != PriorityWarning {
				t.Errorf("notice %q has stream %s priority %d, want journal at warning", e.Line, e.Stream, e.Priority)
			}
			count, _ := strconv.Atoi(m[1])
			noticed += count
			dropped += count
			reasons = append(reasons, m[2])
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(e.Line, "line "))
		if err != nil || i < next {
			t.Fatalf("entry %d %q: want line %d or later", e.Seq, e.Line, next)
		}
		if gap := i - next; gap != noticed {
			t.Fatalf("before %q, %d lines are missing and notices count %d", e.Line, gap, noticed)
		}
		next, noticed = i+1, 0
	}
	if gap := n + 1 - next; gap != noticed {
		t.Errorf("after the last line kept, %d lines are missing and notices count %d", gap, noticed)
	}
	return dropped, reasons
}

// checkUnitDrops is checkDrops over a unit's journal, whose Stats must
// count the same drops.
func checkUnitDrops(t *testing.T, j *Journal, unit string, n int) []string {
	t.Helper()
	dropped, reasons := checkDrops(t, readAll(t, j, unit, ReadOptions{}), n)
	st, err := j.Stats(unit)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped != uint64(dropped) {
		t.Errorf("Stats counts %d dropped, the notices %d", st.Dropped, dropped)
	}
	return reasons
}

// A disk that holds every write: the pipe never waits, lines drop and are
// counted, and when the disk comes back a notice says how many.
func TestCaptureNeverWaitsForAStuckDisk(t *testing.T) {
	fs := &testFS{}
	j := openWithFS(t, t.TempDir(), Options{QueueBytes: 16 << 10, MaxLineBytes: 1 << 10}, fs)
	gate := make(chan struct{})
	fs.set(gate, nil, false)

	const n = 50000 // about 500 KiB: far more than a pipe holds
	pump(t, j, "a.service", n)
	st, _ := j.Stats("a.service")
	if st.Dropped == 0 || st.Written != 0 {
		t.Fatalf("with the disk stuck: Stats = %+v, want lines dropped and none written", st)
	}
	if st.Queued*(entryOverhead+len("line 1")) > 16<<10 {
		t.Errorf("%d lines queued: more than QueueBytes holds", st.Queued)
	}

	fs.set(nil, nil, false)
	close(gate)
	waitWritten(t, j, "a.service")
	reasons := checkUnitDrops(t, j, "a.service", n)
	if len(reasons) != 1 || reasons[0] != "writing fell behind" {
		t.Errorf("drop notices give reasons %q, want one: writing fell behind", reasons)
	}
}

// A full disk (ENOSPC, each write half done): writes are cut back and
// tried again, lines drop meanwhile, and once there is room everything
// kept is on disk whole, with the reason in the notice.
func TestDiskFullIsSurvived(t *testing.T) {
	dir := t.TempDir()
	fs := &testFS{}
	j := openWithFS(t, dir, Options{QueueBytes: 16 << 10, MaxLineBytes: 1 << 10}, fs)
	appendLines(t, j, "a.service", "before", 1)
	waitWritten(t, j, "a.service")
	fs.set(nil, syscall.ENOSPC, false)

	pump(t, j, "a.service", 20000)
	if st := waitWriteErr(t, j, "a.service", syscall.ENOSPC); st.Dropped == 0 {
		t.Fatalf("with the disk full: Stats = %+v, want lines dropped", st)
	}
	fs.set(nil, nil, false)
	waitWritten(t, j, "a.service")
	if st, _ := j.Stats("a.service"); st.WriteErr != nil {
		t.Errorf("after the disk has room again, WriteErr = %v, want nil", st.WriteErr)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = openWithFS(t, dir, Options{}, &testFS{})
	got := readAll(t, j, "a.service", ReadOptions{})
	if got[0].Line != "before 1" {
		t.Fatalf("first entry %q, want %q", got[0].Line, "before 1")
	}
	_, reasons := checkDrops(t, got[1:], 20000)
	for _, r := range reasons {
		if !strings.Contains(r, "no space left on device") {
			t.Errorf("drop notice gives reason %q, want no space left on device", r)
		}
	}
	if len(reasons) == 0 {
		t.Error("no drop notice")
	}
}

// When a failed write cannot even be cut back off the file, the torn
// record stays, a newline ends it, and readers skip it: every entry still
// reads once and in order.
func TestTornWriteThatCannotBeCutOff(t *testing.T) {
	dir := t.TempDir()
	fs := &testFS{}
	j := openWithFS(t, dir, Options{QueueBytes: 64 << 20}, fs)
	appendLines(t, j, "a.service", "line", 100)
	waitWritten(t, j, "a.service")

	fs.set(nil, syscall.EIO, true)
	for i := 101; i <= 200; i++ {
		if err := j.Append("a.service", Entry{Line: fmt.Sprintf("line %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitWriteErr(t, j, "a.service", syscall.EIO)
	time.Sleep(20 * time.Millisecond) // a few failed tries, each leaving a torn record
	fs.set(nil, nil, false)
	waitWritten(t, j, "a.service")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(filepath.Join(dir, "a.service", currentName))
	if err != nil {
		t.Fatal(err)
	}
	if records := bytes.Count(raw, []byte("\n")); records <= 200 {
		t.Fatalf("the file holds %d lines, want damage beyond the 200 records for this test", records)
	}
	j = openWithFS(t, dir, Options{}, &testFS{})
	checkRun(t, "after torn writes", readAll(t, j, "a.service", ReadOptions{}), 1, 200)
	checkRun(t, "after torn writes, -n 150", readAll(t, j, "a.service", ReadOptions{Lines: 150}), 51, 200)
}

// A real full file system: a 64 KiB tmpfs. The unit's output goes on being
// read while writes fail with ENOSPC, and once space is freed the journal
// writes again, saying what it dropped and why.
func TestFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a 64 KiB tmpfs to fill")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	filler := filepath.Join(dir, "filler")
	// Leave two pages: the journal fills them with far fewer lines than
	// the pump sends, however slow its writer is next to the reader.
	if err := os.WriteFile(filler, make([]byte, 56<<10), 0o600); err != nil {
		t.Fatal(err)
	}

	j, err := open(filepath.Join(dir, "journal"), Options{QueueBytes: 16 << 10, MaxLineBytes: 1 << 10}, openAppend)
	if err != nil {
		t.Fatal(err)
	}
	j.retryMin, j.retryMax = time.Millisecond, 10*time.Millisecond
	defer j.Close()
	pump(t, j, "a.service", 20000) // about 600 KiB of records
	if st := waitWriteErr(t, j, "a.service", syscall.ENOSPC); st.Dropped == 0 {
		t.Fatalf("on a full tmpfs: Stats = %+v, want lines dropped", st)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, j, "a.service")
	// Some drops may come before the disk is full, from a reader faster
	// than the writer; the last must be for want of space.
	reasons := checkUnitDrops(t, j, "a.service", 20000)
	if len(reasons) == 0 || !strings.Contains(reasons[len(reasons)-1], "no space left on device") {
		t.Errorf("drop notices give reasons %q, want the last to be no space left on device", reasons)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// Every line of every file is a whole record.
	files, _ := filepath.Glob(filepath.Join(dir, "journal", "a.service", "*"+fileSuffix))
	for _, name := range files {
		data, _ := os.ReadFile(name)
		for i, line := range bytes.SplitAfter(data, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if _, err := decodeRecord(bytes.TrimSuffix(line, []byte("\n"))); err != nil || line[len(line)-1] != '\n' {
				t.Errorf("%s line %d: %v: %.60q", name, i+1, err, line)
			}
		}
	}
}
