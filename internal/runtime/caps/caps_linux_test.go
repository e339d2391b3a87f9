//go:build linux

package caps

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The main goroutine keeps the main thread, as PID 1 should: a goroutine
// that confines its thread then never runs there, and Current(0) (the main
// thread's sets) must not change.
func init() { runtime.LockOSThread() }

func TestAll(t *testing.T) {
	b, err := os.ReadFile(lastCapFile)
	if err != nil {
		t.Skipf("no %s: %v", lastCapFile, err)
	}
	all := All()
	if !all.Has(unix.CAP_CHOWN) || !all.Has(unix.CAP_SYS_ADMIN) {
		t.Errorf("All() = %v, want it to hold CAP_CHOWN and CAP_SYS_ADMIN", all)
	}
	want := Set(1)<<(uint(lastCap())+1) - 1
	if all != want {
		t.Errorf("All() = %#x, want %#x (cap_last_cap %q)", uint64(all), uint64(want), b)
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\tcat\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n" +
		"CapEff:\t000001ffffffffff\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n"
	got, err := parseStatus([]byte(in))
	want := Sets{Permitted: 0x1ffffffffff, Effective: 0x1ffffffffff, Bounding: Default()}
	if err != nil || got != want {
		t.Errorf("parseStatus = %+v, %v; want %+v, nil", got, err, want)
	}
	if _, err := parseStatus([]byte("Name:\tcat\n")); err == nil {
		t.Errorf("parseStatus without Cap lines: got nil error, want one")
	}
	if _, err := parseStatus([]byte("CapInh:\tzz\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\n")); err == nil {
		t.Errorf("parseStatus with a bad value: got nil error, want one")
	}
}

func TestCurrent(t *testing.T) {
	self, err := Current(0)
	if err != nil {
		t.Fatalf("Current(0): %v", err)
	}
	byPid, err := Current(os.Getpid())
	if err != nil {
		t.Fatalf("Current(pid): %v", err)
	}
	if self != byPid {
		t.Errorf("Current(0) = %+v, Current(%d) = %+v; want equal", self, os.Getpid(), byPid)
	}
	if _, err := Current(-5); err == nil {
		t.Errorf("Current(-5): got nil error, want one")
	}
}

// TestConfineThread confines one locked thread, runs cat from it and checks
// that the child got exactly Default while the test's other threads kept
// their sets.
func TestConfineThread(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root: capability bounding set")
	}
	before, err := Current(0)
	if err != nil {
		t.Fatal(err)
	}
	if !before.Effective.Has(unix.CAP_SETPCAP) {
		t.Skip("needs CAP_SETPCAP: capability bounding set")
	}
	want := Default() & before.Bounding

	// This goroutine stays on its own thread, to be checked afterwards.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	otherTid := unix.Gettid()

	type result struct {
		tid    int
		thread Sets
		child  Sets
		err    error
	}
	done := make(chan result, 1)
	stop := make(chan struct{})
	confineAndRun := func() (r result) {
		r.tid = unix.Gettid()
		if r.err = ConfineThread(Default()); r.err != nil {
			return r
		}
		if r.thread, r.err = CurrentThread(); r.err != nil {
			return r
		}
		out, err := exec.Command("/bin/cat", "/proc/self/status").Output()
		if err != nil {
			r.err = err
			return r
		}
		r.child, r.err = parseStatus(out)
		return r
	}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		done <- confineAndRun()
		<-stop // keep the thread alive while the test reads its status
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("confined thread: %v", r.err)
	}

	if r.child.Bounding != want || r.child.Effective != want || r.child.Permitted != want {
		t.Errorf("child CapBnd/CapEff/CapPrm = %v / %v / %v, want %v for all",
			r.child.Bounding, r.child.Effective, r.child.Permitted, want)
	}
	if r.child.Ambient != 0 {
		t.Errorf("child CapAmb = %v, want empty", r.child.Ambient)
	}
	if r.thread.Bounding != want || r.thread.Inheritable != 0 || r.thread.Ambient != 0 {
		t.Errorf("confined thread CapBnd/CapInh/CapAmb = %v / %v / %v, want %v / empty / empty",
			r.thread.Bounding, r.thread.Inheritable, r.thread.Ambient, want)
	}
	if r.child.Inheritable != 0 {
		t.Errorf("child CapInh = %v, want empty (CVE-2022-24769)", r.child.Inheritable)
	}
	if r.thread.Effective != before.Effective || r.thread.Permitted != before.Permitted {
		t.Errorf("confined thread CapEff/CapPrm = %v / %v, want them unchanged: %v / %v",
			r.thread.Effective, r.thread.Permitted, before.Effective, before.Permitted)
	}
	viaTask, err := ThreadOf(0, r.tid)
	if err != nil || viaTask != r.thread {
		t.Errorf("ThreadOf(0, %d) = %+v, %v; want %+v, nil", r.tid, viaTask, err, r.thread)
	}
	close(stop)

	other, err := ThreadOf(0, otherTid)
	if err != nil {
		t.Fatal(err)
	}
	if other != before {
		t.Errorf("another thread's sets = %+v, want them unchanged: %+v", other, before)
	}
	after, err := Current(0)
	if err != nil || after != before {
		t.Errorf("process sets after = %+v, %v; want unchanged %+v", after, err, before)
	}
}
