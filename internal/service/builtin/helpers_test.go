package builtin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/servicetest"
)

// The test binary doubles as the programs some units run: with
// BUILTIN_TEST_HELPER set (or servicetest's variable) it runs that helper
// instead of the tests.
func TestMain(m *testing.M) {
	servicetest.RunHelper()
	if h := os.Getenv("BUILTIN_TEST_HELPER"); h != "" {
		os.Exit(runHelper(h, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runHelper runs a helper program:
//
//	daemon   run a Manager over $BUILTIN_TEST_DIRS, start
//	         $BUILTIN_TEST_UNIT, print "ready", sleep
func runHelper(name string, args []string) int {
	switch name {
	case "daemon":
		dirs := strings.Split(os.Getenv("BUILTIN_TEST_DIRS"), ":")
		m, err := New(Options{UnitDir: dirs[0], RunDir: dirs[1], CgroupParent: dirs[2]})
		if err != nil {
			fmt.Println(err)
			return 1
		}
		if err := m.Start(context.Background(), os.Getenv("BUILTIN_TEST_UNIT")); err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
	}
	return 0
}

// requireRoot skips a test that needs root for cgroups.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes cgroups and runs units as other users")
	}
}

// memLogger keeps what units write and what the manager says, by unit.
type memLogger struct {
	mu    sync.Mutex
	lines map[string][]string
}

func newMemLogger() *memLogger { return &memLogger{lines: map[string][]string{}} }

func (l *memLogger) Capture(unit, stream string, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.Append(unit, stream+": "+sc.Text())
	}
}

func (l *memLogger) Append(unit, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines[unit] = append(l.lines[unit], line)
}

func (l *memLogger) get(unit string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[unit]...)
}

// count is how many lines of unit equal line.
func (l *memLogger) count(unit, line string) int {
	n := 0
	for _, got := range l.get(unit) {
		if got == line {
			n++
		}
	}
	return n
}

func (l *memLogger) hasLine(unit, line string) bool { return l.count(unit, line) > 0 }

// waitPrefix waits until unit logged a line starting with prefix.
func (l *memLogger) waitPrefix(t *testing.T, unit, prefix string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range l.get(unit) {
			if strings.HasPrefix(line, prefix) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged a line starting %q; it logged:\n%s", unit, prefix, strings.Join(l.get(unit), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLine waits until unit logged line, failing the test after a while.
func (l *memLogger) waitLine(t *testing.T, unit, line string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.count(unit, line) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q; it logged:\n%s", unit, line, strings.Join(l.get(unit), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testEnv is a manager's directories and cgroup parent, for one test.
type testEnv struct {
	t            *testing.T
	unitDir      string
	runDir       string
	cgroupParent string
	log          *memLogger
}

var cgroupSeq atomic.Int64

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	requireRoot(t)
	return newTestEnvIn(t, t.TempDir())
}

// newTestEnvIn is newTestEnv with the directories under dir.
func newTestEnvIn(t *testing.T, dir string) *testEnv {
	t.Helper()
	os.Chmod(dir, 0o755)
	e := &testEnv{
		t:            t,
		unitDir:      filepath.Join(dir, "units"),
		runDir:       filepath.Join(dir, "run"),
		cgroupParent: fmt.Sprintf("/atoll-test/builtin-%d-%d", os.Getpid(), cgroupSeq.Add(1)),
		log:          newMemLogger(),
	}
	t.Cleanup(func() { cleanupCgroups(t, e.cgroupParent) })
	return e
}

// manager starts a manager over the test's directories, closed when the
// test ends.
func (e *testEnv) manager() *Manager {
	e.t.Helper()
	m, err := New(Options{UnitDir: e.unitDir, RunDir: e.runDir, CgroupParent: e.cgroupParent, Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// cleanupCgroups kills whatever a test left in its cgroups and removes
// them, failing the test if it left processes.
func cleanupCgroups(t *testing.T, parent string) {
	cg, err := openUnitCgroup(parent)
	if err != nil {
		t.Errorf("cgroup %s: %v", parent, err)
		return
	}
	if pids, _ := cg.pids(); len(pids) > 0 {
		t.Errorf("processes left in %s: %v", parent, pids)
		cg.signal(syscall.SIGKILL)
		cg.waitEmpty(5 * time.Second)
	}
	if err := cg.destroy(); err != nil {
		t.Errorf("remove %s: %v", parent, err)
	}
}

// load loads a unit file, failing the test on error.
func load(t *testing.T, m *Manager, name, content string) {
	t.Helper()
	if err := m.Load(context.Background(), name, []byte(content)); err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitState waits until the unit's state satisfies ok, failing the test
// after a while with the last state seen.
func waitState(t *testing.T, m *Manager, name string, what string, ok func(service.UnitState) bool) service.UnitState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.State(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never %s; last state %s/%s result %s", name, what, st.Active, st.Sub, st.Result)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantState checks a unit's active and sub-state now.
func wantState(t *testing.T, m *Manager, name string, active service.ActiveState, sub string) service.UnitState {
	t.Helper()
	st, err := m.State(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != active || st.Sub != sub {
		t.Fatalf("%s: state %s/%s (result %s), want %s/%s", name, st.Active, st.Sub, st.Result, active, sub)
	}
	return st
}

func alive(pid int) bool {
	if unix.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is dead for this purpose.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	return !strings.Contains(s[strings.LastIndexByte(s, ')'):], ") Z")
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PID in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testBinary(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	c     chan time.Time
	done  bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// advance moves the clock on, firing the timers due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			t.c <- c.now
		}
	}
}

func (t *fakeTimer) Chan() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}
