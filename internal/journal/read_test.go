package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestReadLastLines(t *testing.T) {
	// Small files, so that the last lines span rotated files; a reopened
	// journal, so that they come from disk; and one with lines still
	// queued, so that they come from memory too.
	dir := t.TempDir()
	opts := Options{MaxFileBytes: 1 << 10, MaxFiles: 100}
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendLines(t, j, "web.service", "line", 200)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	fs := &testFS{}
	j = openWithFS(t, dir, opts, fs)
	if st, _ := j.Stats("web.service"); st.Files < 10 {
		t.Fatalf("200 lines made %d files, want at least 10 for this test", st.Files)
	}
	check := func(t *testing.T, n int, total int) {
		t.Helper()
		got := readAll(t, j, "web.service", ReadOptions{Lines: n})
		wantN := min(n, total)
		if len(got) != wantN {
			t.Fatalf("-n %d: got %d entries, want %d", n, len(got), wantN)
		}
		for i, e := range got {
			want := fmt.Sprintf("line %d", total-wantN+1+i)
			if e.Line != want || e.Seq != uint64(total-wantN+1+i) {
				t.Fatalf("-n %d: entry %d = %d %q, want %d %q", n, i, e.Seq, e.Line, total-wantN+1+i, want)
			}
		}
	}
	t.Run("from disk", func(t *testing.T) {
		for _, n := range []int{1, 5, 20, 199, 200, 500} {
			check(t, n, 200)
		}
	})
	t.Run("from disk and memory", func(t *testing.T) {
		gate := make(chan struct{})
		fs.set(gate, nil, false)
		defer close(gate)
		for i := 201; i <= 210; i++ {
			if err := j.Append("web.service", Entry{Line: fmt.Sprintf("line %d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []int{1, 9, 10, 11, 30, 210, 500} {
			check(t, n, 210)
		}
	})
}

func TestReadSince(t *testing.T) {
	clock := newStepClock()
	start := clock.now
	j, _ := openTest(t, Options{MaxFileBytes: 1 << 10, MaxFiles: 100, Now: clock.Now})
	appendLines(t, j, "web.service", "line", 100) // line i is stamped start+i s
	waitWritten(t, j, "web.service")

	since := start.Add(91 * time.Second)
	got := readAll(t, j, "web.service", ReadOptions{Since: since})
	if len(got) != 10 || got[0].Line != "line 91" || got[9].Line != "line 100" {
		t.Errorf("--since line 91's time: got %q, want lines 91 to 100", lines(got))
	}
	got = readAll(t, j, "web.service", ReadOptions{Since: since, Lines: 3})
	if len(got) != 3 || got[0].Line != "line 98" {
		t.Errorf("--since with -n 3: got %q, want lines 98 to 100", lines(got))
	}
	got = readAll(t, j, "web.service", ReadOptions{Since: since, Lines: 50})
	if len(got) != 10 || got[0].Line != "line 91" {
		t.Errorf("--since with -n 50: got %q, want lines 91 to 100", lines(got))
	}
	if got := readAll(t, j, "web.service", ReadOptions{Since: start}); len(got) != 100 {
		t.Errorf("--since before the first line: %d entries, want 100", len(got))
	}
	if got := readAll(t, j, "web.service", ReadOptions{Since: clock.now.Add(time.Hour)}); len(got) != 0 {
		t.Errorf("--since in the future: got %q, want nothing", lines(got))
	}
}

func TestReadOfAUnitWithoutJournal(t *testing.T) {
	j, _ := openTest(t, Options{})
	if got := readAll(t, j, "none.service", ReadOptions{Lines: 10}); len(got) != 0 {
		t.Errorf("got %q, want nothing", lines(got))
	}
	names, err := j.Units()
	if err != nil || len(names) != 0 {
		t.Errorf("after reading a unit without journal, Units() = %q, %v; want none", names, err)
	}
}

func TestReadStopsAtCallbackError(t *testing.T) {
	j, _ := openTest(t, Options{})
	appendLines(t, j, "a.service", "line", 10)
	stop := errors.New("enough")
	n := 0
	err := j.Read(context.Background(), "a.service", ReadOptions{}, func(Entry) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("Read returned %v after %d entries, want the callback's error after 3", err, n)
	}
}

// follow collects a unit's entries with Follow until it has the entry with
// seq last, then cancels.
func follow(t *testing.T, j *Journal, unit string, o ReadOptions, last uint64) ([]Entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o.Follow = true
	var got []Entry
	err := j.Read(ctx, unit, o, func(e Entry) error {
		got = append(got, e)
		if e.Seq == last {
			cancel()
		}
		return nil
	})
	if errors.Is(err, context.Canceled) && len(got) > 0 && got[len(got)-1].Seq == last {
		err = nil
	}
	return got, err
}

// Followers started before, during and after a writer that rotates every
// few lines each get every line, once, in order. The writer runs free, so
// followers get lines from the disk and from the queue, as it happens.
func TestFollowAcrossRotation(t *testing.T) {
	const total = 20000
	j, dir := openTest(t, Options{MaxFileBytes: 16 << 10, MaxFiles: 100000, QueueBytes: 64 << 20})
	const unit = "web@1.service"

	var wg sync.WaitGroup
	results := make([][]Entry, 4)
	errs := make([]error, 4)
	startFollower := func(i int, o ReadOptions) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = follow(t, j, unit, o, total)
		}()
	}
	startFollower(0, ReadOptions{})
	startFollower(1, ReadOptions{Lines: 5})

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	captured := make(chan error, 1)
	go func() { captured <- j.Capture(unit, Source{Stream: StreamStdout}, r) }()
	for i := 1; i <= total; i++ {
		fmt.Fprintf(w, "line %d\n", i)
		if i == total/3 {
			startFollower(2, ReadOptions{})
			startFollower(3, ReadOptions{Lines: 100})
		}
	}
	w.Close()
	if err := <-captured; err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	for i, got := range results {
		if errs[i] != nil {
			t.Fatalf("follower %d: %v after %d entries", i, errs[i], len(got))
		}
		// Followers 0 and 2 read from the start; 1 and 3 from their -n.
		first := uint64(1)
		if i%2 == 1 {
			first = got[0].Seq
		}
		checkRun(t, fmt.Sprintf("follower %d", i), got, first, total)
	}
	waitWritten(t, j, unit)
	entries, _ := os.ReadDir(filepath.Join(dir, unit))
	if len(entries) < 20 {
		t.Errorf("the unit has %d files, want many rotations for this test", len(entries))
	}
}

// checkRun fails unless got holds "line N" for every N from first to last,
// once each and in order.
func checkRun(t *testing.T, who string, got []Entry, first, last uint64) {
	t.Helper()
	if want := int(last - first + 1); len(got) != want {
		for k := 1; k < len(got); k++ {
			if got[k].Seq != got[k-1].Seq+1 {
				t.Logf("%s: seq %d after %d", who, got[k].Seq, got[k-1].Seq)
			}
		}
		t.Fatalf("%s: got %d entries from seq %d, want %d", who, len(got), first, want)
	}
	for k, e := range got {
		seq := first + uint64(k)
		if e.Seq != seq || e.Line != fmt.Sprintf("line %d", seq) {
			t.Fatalf("%s: entry %d = %d %q, want %d %q", who, k, e.Seq, e.Line, seq, fmt.Sprintf("line %d", seq))
		}
	}
}

// Followers that only ever find new lines on disk, never in the queue,
// follow the files across every rotation. The test goes in steps: it
// writes a chunk of lines that spans rotations and waits until the chunk
// is on disk before the followers, held in their callback until then, may
// look for it.
func TestFollowAcrossRotationFromDisk(t *testing.T) {
	const total, chunk = 1500, 75
	j, _ := openTest(t, Options{MaxFileBytes: 2 << 10, MaxFiles: 100000, QueueBytes: 64 << 20})
	const unit = "web@1.service"

	type follower struct {
		opts    ReadOptions
		step    chan struct{} // one per chunk written
		started chan struct{} // closed at the first entry
		got     []Entry
		err     error
	}
	followers := []*follower{
		{opts: ReadOptions{}},
		{opts: ReadOptions{Lines: 5}},
		{opts: ReadOptions{Lines: 1}},
	}
	var wg sync.WaitGroup
	run := func(f *follower) {
		f.step = make(chan struct{}, total/chunk)
		f.started = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f.opts.Follow = true
			f.err = j.Read(ctx, unit, f.opts, func(e Entry) error {
				if f.got = append(f.got, e); len(f.got) == 1 {
					close(f.started)
				}
				switch {
				case e.Seq == total:
					cancel()
				case e.Seq%chunk == 0:
					<-f.step // hold on until the next chunk is on disk
				}
				return nil
			})
		}()
	}
	run(followers[0])
	for i := 1; i <= total; i++ {
		if err := j.Append(unit, Entry{Line: fmt.Sprintf("line %d", i)}); err != nil {
			t.Fatal(err)
		}
		if i%chunk != 0 {
			continue
		}
		waitWritten(t, j, unit)
		if i == total/2 {
			// Mid-way, and then only from disk: two more followers.
			for _, f := range followers[1:] {
				run(f)
				<-f.started
			}
		}
		for _, f := range followers {
			if f.step != nil {
				f.step <- struct{}{}
			}
		}
	}
	wg.Wait()
	for i, f := range followers {
		if !errors.Is(f.err, context.Canceled) {
			t.Fatalf("follower %d ended with %v after %d entries, want it cancelled after the last", i, f.err, len(f.got))
		}
		first := uint64(1)
		if i > 0 {
			first = total/2 - uint64(f.opts.Lines) + 1
		}
		checkRun(t, fmt.Sprintf("follower %d", i), f.got, first, total)
	}
	if st, _ := j.Stats(unit); st.Files < 40 {
		t.Errorf("the unit has %d files, want many rotations for this test", st.Files)
	}
}

// A follower that falls behind a journal that keeps few files loses what
// rotation deleted, and nothing else: what it gets is in order and ends
// with the last line.
func TestFollowBehindRotationSkipsOnlyWhatIsGone(t *testing.T) {
	const total = 600
	j, _ := openTest(t, Options{MaxFileBytes: 1 << 10, MaxFiles: 2, QueueBytes: 64 << 20})
	const unit = "a.service"
	appendLines(t, j, unit, "line", total/2)
	waitWritten(t, j, unit)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []Entry
	first := true
	err := j.Read(ctx, unit, ReadOptions{Follow: true}, func(e Entry) error {
		if first {
			// Hold the reader back while the writer rotates its file
			// away many times.
			first = false
			for i := total/2 + 1; i <= total; i++ {
				if err := j.Append(unit, Entry{Line: fmt.Sprintf("line %d", i)}); err != nil {
					return err
				}
			}
			waitWritten(t, j, unit)
		}
		got = append(got, e)
		if e.Seq == total {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("follow: %v, want it cancelled after the last line", err)
	}
	checkOrder(t, got)
	if len(got) > total-50 {
		t.Errorf("a follower held back while 300 lines went through files of 1 KiB got %d of %d lines, want lines lost to rotation for this test", len(got), total)
	}
	if last := got[len(got)-1]; last.Seq != total || last.Line != fmt.Sprintf("line %d", total) {
		t.Errorf("last entry %d %q, want %d", last.Seq, last.Line, total)
	}
	for _, e := range got {
		if e.Line != fmt.Sprintf("line %d", e.Seq) {
			t.Fatalf("entry %d holds %q", e.Seq, e.Line)
		}
	}
}

func TestFollowEnds(t *testing.T) {
	t.Run("when ctx ends", func(t *testing.T) {
		j, _ := openTest(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := j.Read(ctx, "a.service", ReadOptions{Follow: true}, func(Entry) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("follow returned %v, want the context's error", err)
		}
	})
	t.Run("on Close", func(t *testing.T) {
		j, _ := openTest(t, Options{})
		appendLines(t, j, "a.service", "line", 3)
		got, err := followUntil(t, j, "a.service", 3, j.Close)
		if !errors.Is(err, ErrClosed) || len(got) != 3 {
			t.Errorf("follow returned %v after %d entries, want ErrClosed after 3", err, len(got))
		}
	})
	t.Run("on Remove", func(t *testing.T) {
		j, _ := openTest(t, Options{})
		appendLines(t, j, "a.service", "line", 3)
		got, err := followUntil(t, j, "a.service", 3, func() error { return j.Remove("a.service") })
		if !errors.Is(err, ErrRemoved) || len(got) != 3 {
			t.Errorf("follow returned %v after %d entries, want ErrRemoved after 3", err, len(got))
		}
	})
}

// followUntil follows unit, runs action once n entries came, and returns
// what Read returned.
func followUntil(t *testing.T, j *Journal, unit string, n int, action func() error) ([]Entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []Entry
	err := j.Read(ctx, unit, ReadOptions{Follow: true}, func(e Entry) error {
		if got = append(got, e); len(got) == n {
			go func() {
				if err := action(); err != nil {
					t.Error(err)
				}
			}()
		}
		return nil
	})
	return got, err
}

// A follower gets lines while the disk holds every write back: they come
// from the queue.
func TestFollowWhileTheDiskIsStuck(t *testing.T) {
	fs := &testFS{}
	j := openWithFS(t, t.TempDir(), Options{}, fs)
	gate := make(chan struct{})
	fs.set(gate, nil, false)
	defer close(gate)
	appendLines(t, j, "a.service", "line", 3)
	got, err := follow(t, j, "a.service", ReadOptions{}, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("follow: %v after %q, want 3 lines", err, lines(got))
	}
	if st, _ := j.Stats("a.service"); st.Written != 0 {
		t.Errorf("%d entries written through a stuck disk", st.Written)
	}
}
