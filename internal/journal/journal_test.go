package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenRefusesBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{MaxFiles: 1},
		{MaxFileBytes: -1},
		{QueueBytes: -1},
		{MaxLineBytes: 8},
		{QueueBytes: 4 << 10}, // below the default MaxLineBytes
	} {
		if _, err := Open(t.TempDir(), opts); err == nil {
			t.Errorf("Open with %+v succeeded, want an error", opts)
		}
	}
}

func TestOneJournalPerDirectory(t *testing.T) {
	j, dir := openTest(t, Options{})
	if second, err := Open(dir, Options{}); err == nil {
		second.Close()
		t.Fatal("a second Open of an open journal's directory succeeded, want an error")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

// Many megabytes through a unit with small files leave at most MaxFiles
// files of about MaxFileBytes each, the newest lines among them.
func TestRotationBoundsTheUnitsSize(t *testing.T) {
	const maxFile, maxFiles = 256 << 10, 4
	j, dir := openTest(t, Options{MaxFileBytes: maxFile, MaxFiles: maxFiles, QueueBytes: 64 << 20})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	captured := make(chan error, 1)
	go func() { captured <- j.Capture("big.service", Source{Stream: StreamStdout}, r) }()
	const total = 8 << 10 // lines of 1 KiB: 8 MiB
	pad := strings.Repeat("x", 1000)
	for i := 1; i <= total; i++ {
		fmt.Fprintf(w, "%06d %s\n", i, pad)
	}
	w.Close()
	if err := <-captured; err != nil {
		t.Fatal(err)
	}
	waitWritten(t, j, "big.service")

	st, err := j.Stats("big.service")
	if err != nil {
		t.Fatal(err)
	}
	const slack = 2 << 10 // one record past MaxFileBytes, per file
	if st.Files > maxFiles || st.Bytes > maxFiles*(maxFile+slack) {
		t.Errorf("after 8 MiB the unit holds %d files, %d bytes; want at most %d files, %d bytes", st.Files, st.Bytes, maxFiles, maxFiles*(maxFile+slack))
	}
	var onDisk int64
	entries, _ := os.ReadDir(filepath.Join(dir, "big.service"))
	for _, de := range entries {
		info, _ := de.Info()
		onDisk += info.Size()
	}
	if onDisk != st.Bytes || len(entries) != st.Files {
		t.Errorf("the directory holds %d files, %d bytes; Stats says %d, %d", len(entries), onDisk, st.Files, st.Bytes)
	}
	got := readAll(t, j, "big.service", ReadOptions{})
	checkOrder(t, got)
	if last := got[len(got)-1]; last.Seq != total || !strings.HasPrefix(last.Line, fmt.Sprintf("%06d ", total)) {
		t.Errorf("last entry %d %.10q, want %d", last.Seq, last.Line, total)
	}
	if first := got[0].Seq; first < total-uint64(maxFiles*maxFile/1000) {
		t.Errorf("the oldest entry kept is %d: more than %d files' worth", first, maxFiles)
	}
	// The rest is contiguous: rotation deletes whole files only.
	if int(total-got[0].Seq+1) != len(got) {
		t.Errorf("kept %d entries from seq %d to %d, want them contiguous", len(got), got[0].Seq, total)
	}
}

// Closing and opening the journal again, as a daemon restart does, keeps
// every entry and carries on the sequence numbers.
func TestRestartKeepsTheJournal(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxFileBytes: 1 << 10, MaxFiles: 100}
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendLines(t, j, "web@1.service", "line", 50)
	appendLines(t, j, `foo\x2dbar.service`, "other", 5)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	names, err := j.Units()
	if err != nil || strings.Join(names, " ") != `foo\x2dbar.service web@1.service` {
		t.Errorf("after a restart Units() = %q, %v; want both units", names, err)
	}
	if st, _ := j.Stats("web@1.service"); st.LastSeq != 50 || st.Files < 2 {
		t.Errorf("after a restart Stats = %+v, want LastSeq 50 over several files", st)
	}
	for i := 51; i <= 100; i++ {
		if err := j.Append("web@1.service", Entry{Line: fmt.Sprintf("line %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	checkRun(t, "web@1.service", readAll(t, j, "web@1.service", ReadOptions{}), 1, 100)
	if got := readAll(t, j, `foo\x2dbar.service`, ReadOptions{}); len(got) != 5 {
		t.Errorf(`foo\x2dbar.service: got %q, want 5 lines`, lines(got))
	}
}

// A record torn by a crash (the process killed mid-write, or the machine
// losing the end of a file) is cut off when the journal opens, and the
// sequence numbers go on from the last whole record.
func TestTornLastRecordIsSkipped(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendLines(t, j, "a.service", "line", 10)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, "a.service", currentName)
	data, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	lastRecord := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	torn := data[:lastRecord+20]
	if err := os.WriteFile(cur, torn, 0o640); err != nil {
		t.Fatal(err)
	}

	// Read before any write: the torn record is not an entry.
	j, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	checkRun(t, "after the crash", readAll(t, j, "a.service", ReadOptions{}), 1, 9)
	checkRun(t, "after the crash, -n 3", readAll(t, j, "a.service", ReadOptions{Lines: 3}), 7, 9)
	if after, _ := os.ReadFile(cur); !bytes.Equal(after, data[:lastRecord]) {
		t.Errorf("after Open the current file holds %d bytes, want the %d before the torn record", len(after), lastRecord)
	}
	if err := j.Append("a.service", Entry{Line: "line 10"}); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, j, "a.service")
	checkRun(t, "after the crash and a new line", readAll(t, j, "a.service", ReadOptions{}), 1, 10)
}

// Damage inside a file (a block of zeros a crash left where a record was)
// costs that record only.
func TestDamageInsideAFileCostsOnlyTheDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendLines(t, j, "a.service", "line", 10)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, "a.service", currentName)
	data, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	recs := bytes.SplitAfter(data, []byte("\n"))
	recs[4] = make([]byte, len(recs[4])) // record 5, newline and all
	recs[7] = []byte("garbage\n")        // record 8, newline kept
	if err := os.WriteFile(cur, bytes.Join(recs, nil), 0o640); err != nil {
		t.Fatal(err)
	}
	j, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var seqs []uint64
	for _, e := range readAll(t, j, "a.service", ReadOptions{}) {
		seqs = append(seqs, e.Seq)
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 6 7 9 10]" {
		t.Errorf("read seqs %v, want all but the damaged 5 and 8", seqs)
	}
	if got := readAll(t, j, "a.service", ReadOptions{Lines: 4}); len(got) != 4 || got[0].Seq != 6 {
		t.Errorf("-n 4 over damage: got %d entries from %d, want 4 from 6", len(got), got[0].Seq)
	}
}

func TestRemove(t *testing.T) {
	j, dir := openTest(t, Options{MaxFileBytes: 1 << 10})
	appendLines(t, j, "a.service", "line", 50)
	appendLines(t, j, "b.service", "line", 1)
	if err := j.Remove("a.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.service")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove the unit's directory: %v, want it gone", err)
	}
	if names, _ := j.Units(); strings.Join(names, " ") != "b.service" {
		t.Errorf("after Remove Units() = %q, want only b.service", names)
	}
	if got := readAll(t, j, "a.service", ReadOptions{}); len(got) != 0 {
		t.Errorf("after Remove read %q, want nothing", lines(got))
	}
	if err := j.Append("a.service", Entry{Line: "again"}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, j, "a.service", ReadOptions{}); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("a new journal after Remove: got %+v, want one entry with seq 1", got)
	}
	if err := j.Remove("never.service"); err != nil {
		t.Errorf("Remove of a unit without a journal: %v, want nil", err)
	}
}

// A Capture running while its unit's journal is removed goes on into a
// new journal.
func TestRemoveDuringCapture(t *testing.T) {
	j, _ := openTest(t, Options{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	captured := make(chan error, 1)
	go func() { captured <- j.Capture("a.service", Source{Stream: StreamStdout}, r) }()
	fmt.Fprintln(w, "before")
	for len(readAll(t, j, "a.service", ReadOptions{})) == 0 {
	}
	if err := j.Remove("a.service"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "after")
	w.Close()
	if err := <-captured; err != nil {
		t.Fatal(err)
	}
	got := readAll(t, j, "a.service", ReadOptions{})
	if len(got) != 1 || got[0].Line != "after" || got[0].Seq != 1 {
		t.Errorf("got %+v, want only %q with seq 1", got, "after")
	}
}

func TestStats(t *testing.T) {
	j, _ := openTest(t, Options{MaxFileBytes: 1 << 10})
	if st, err := j.Stats("none.service"); err != nil || st != (Stats{}) {
		t.Errorf("Stats of a unit without journal = %+v, %v; want zero", st, err)
	}
	appendLines(t, j, "a.service", "line", 40)
	waitWritten(t, j, "a.service")
	st, err := j.Stats("a.service")
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != 40 || st.LastSeq != 40 || st.Dropped != 0 || st.Queued != 0 || st.Files < 2 || st.Bytes < 40*50 || st.WriteErr != nil {
		t.Errorf("Stats = %+v, want 40 written over several files", st)
	}
}

func TestCallsAfterClose(t *testing.T) {
	j, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendLines(t, j, "a.service", "line", 1)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	checks := map[string]error{
		"Append": j.Append("a.service", Entry{Line: "x"}),
		"Remove": j.Remove("a.service"),
		"Read":   j.Read(t.Context(), "a.service", ReadOptions{}, func(Entry) error { return nil }),
	}
	_, checks["Units"] = j.Units()
	_, checks["Stats"] = j.Stats("a.service")
	for call, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", call, err)
		}
	}
}

// maxSeq finds the largest record start wherever it falls, across the
// chunks it reads the file in.
func TestMaxSeqAcrossChunks(t *testing.T) {
	at := time.Date(2025, 11, 25, 10, 0, 0, 0, time.UTC)
	var records []byte
	for i := uint64(1); len(records) < 3*readChunk; i++ {
		seq := i
		if i%300 == 0 {
			seq = 1000000 + i // digits flipped, say: the largest wins
		}
		records = appendRecord(records, &Entry{Seq: seq, Time: at, Stream: StreamStdout, Priority: PriorityInfo, Line: strings.Repeat("y", int(i%97))})
	}
	// naive is maxSeq the slow way.
	naive := func(data []byte) uint64 {
		var best uint64
		for i := 0; ; {
			k := bytes.Index(data[i:], []byte(recordStart))
			if k < 0 {
				return best
			}
			i += k + len(recordStart)
			j := i
			for j < len(data) && '0' <= data[j] && data[j] <= '9' {
				j++
			}
			var n uint64
			fmt.Sscan(string(data[i:j]), &n)
			best = max(best, n)
		}
	}
	// Shift the records against the chunk boundaries one byte at a time,
	// so that a record start and its digits fall across each boundary.
	for pad := range 40 {
		data := append(append(bytes.Repeat([]byte("z"), pad), '\n'), records...)
		for _, end := range []int{len(data), readChunk + 3, 2*readChunk - 7, 2 * readChunk} {
			want := naive(data[:end])
			got, err := maxSeq(bytes.NewReader(data), int64(end))
			if err != nil || got != want {
				t.Fatalf("pad %d, end %d: maxSeq = %d, %v; want %d", pad, end, got, err, want)
			}
		}
	}
}

// A unit whose current file cannot be read when the journal opens goes on
// with sequence numbers from the clock, above any it had, and says why in
// Stats.
func TestUnreadableUnitAtOpen(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a.service", currentName), 0o750); err != nil {
		t.Fatal(err) // a directory where the file should be
	}
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	st, err := j.Stats("a.service")
	if err != nil {
		t.Fatal(err)
	}
	if st.WriteErr == nil || st.LastSeq < uint64(time.Now().Add(-time.Hour).UnixNano()) {
		t.Errorf("Stats = %+v, want the error and sequence numbers from the clock", st)
	}
}
