package journal

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// openTest opens a journal in a fresh directory and closes it when the
// test ends.
func openTest(t testing.TB, opts Options) (*Journal, string) {
	t.Helper()
	dir := t.TempDir()
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, dir
}

// readAll reads a unit's journal without following.
func readAll(t testing.TB, j *Journal, unit string, o ReadOptions) []Entry {
	t.Helper()
	var got []Entry
	err := j.Read(context.Background(), unit, o, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", unit, err)
	}
	return got
}

// lines returns the text of entries.
func lines(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Line
	}
	return out
}

// waitWritten waits until nothing of unit is queued.
func waitWritten(t testing.TB, j *Journal, unit string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := j.Stats(unit)
		if err != nil {
			t.Fatal(err)
		}
		if st.Queued == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d entries still queued after 10s (write error: %v)", unit, st.Queued, st.WriteErr)
		}
		time.Sleep(time.Millisecond)
	}
}

// appendLines appends n manager lines "prefix i" for i from 1.
func appendLines(t testing.TB, j *Journal, unit, prefix string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if err := j.Append(unit, Entry{Line: fmt.Sprintf("%s %d", prefix, i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkOrder fails unless es have strictly increasing sequence numbers.
func checkOrder(t testing.TB, es []Entry) {
	t.Helper()
	for i := 1; i < len(es); i++ {
		if es[i].Seq <= es[i-1].Seq {
			t.Fatalf("entry %d has seq %d after seq %d, want increasing", i, es[i].Seq, es[i-1].Seq)
		}
	}
}

// stepClock is a clock that moves one second per reading.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2025, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// testFS opens a unit's current file through a file whose writes a test
// can hold (gate) or fail (fail, after writing half), and whose
// truncation it can fail too.
type testFS struct {
	mu           sync.Mutex
	gate         chan struct{}
	fail         error
	failTruncate bool
	writes       int
}

func (fs *testFS) open(path string) (logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &testFile{File: f, fs: fs}, nil
}

func (fs *testFS) set(gate chan struct{}, fail error, failTruncate bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.gate, fs.fail, fs.failTruncate = gate, fail, failTruncate
}

type testFile struct {
	*os.File
	fs *testFS
}

func (f *testFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	gate, fail := f.fs.gate, f.fs.fail
	f.fs.writes++
	f.fs.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: fail}
	}
	return f.File.Write(p)
}

func (f *testFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	failTruncate := f.fs.failTruncate
	f.fs.mu.Unlock()
	if failTruncate {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: fmt.Errorf("test: truncate refused")}
	}
	return f.File.Truncate(size)
}

// openWithFS opens a journal whose current files go through fs, with
// quick retries.
func openWithFS(t testing.TB, dir string, opts Options, fs *testFS) *Journal {
	t.Helper()
	j, err := open(dir, opts, fs.open)
	if err != nil {
		t.Fatal(err)
	}
	j.retryMin, j.retryMax = time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { j.Close() })
	return j
}
