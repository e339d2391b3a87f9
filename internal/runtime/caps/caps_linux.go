//go:build linux

package caps

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lastCapFile is where the kernel tells its highest capability number.
const lastCapFile = "/proc/sys/kernel/cap_last_cap"

// lastCap returns the highest capability number the running kernel knows,
// or the table's last when /proc does not say.
func lastCap() Cap {
	b, err := os.ReadFile(lastCapFile)
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && n < 64 {
			return Cap(n)
		}
	}
	return Cap(len(names) - 1)
}

// All returns every capability the running kernel knows, as read from
// /proc/sys/kernel/cap_last_cap; when that file cannot be read it returns
// Known.
func All() Set {
	return Set(1)<<(uint(lastCap())+1) - 1
}

// ConfineThread limits the calling OS thread (the caller holds
// runtime.LockOSThread) so that a program it executes gets at most s: every
// capability not in s is dropped from the bounding set (PR_CAPBSET_DROP),
// the inheritable and ambient sets are cleared. The thread's own effective and
// permitted sets are left alone so that the forked child can still switch
// user before execve.
//
// Dropping from the bounding set needs CAP_SETPCAP in the thread's
// effective set. None of this can be undone: the thread must never return
// to Go's thread pool, so the caller's goroutine must exit still locked.
// On error the thread is partly confined and must not run the app. If the
// goroutine runs on the process's main thread, Go parks that thread instead
// of ending it, confined for good: PID 1 should lock its main goroutine
// (runtime.LockOSThread in main's init) to keep other goroutines off it.
func ConfineThread(s Set) error {
	last := lastCap()
	for c := Cap(0); c <= last; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			if errors.Is(err, unix.EINVAL) {
				continue // not a capability of this kernel
			}
			return fmt.Errorf("caps: read %s in the bounding set: %w", c, err)
		}
		if in == 0 {
			continue
		}
		if s.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("caps: drop %s from the bounding set: %w", c, err)
		}
	}

	// Pid 0 in the header means the calling thread, for capget and capset.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("caps: capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("caps: clear the inheritable set: %w", err)
	}

	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil &&
		!errors.Is(err, unix.EINVAL) { // EINVAL: a kernel before 4.3 has no ambient set
		return fmt.Errorf("caps: clear the ambient set: %w", err)
	}
	return nil
}

// Sets is the capability state of a process or thread, as /proc shows it.
type Sets struct{ Inheritable, Permitted, Effective, Bounding, Ambient Set }

// Current reads the capability sets of a process from /proc/PID/status
// (CapInh, CapPrm, CapEff, CapBnd, CapAmb); pid 0 means self. For a process
// that is its main thread's sets; see CurrentThread for the calling thread.
func Current(pid int) (Sets, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	return readStatus(path)
}

// CurrentThread reads the capability sets of the calling OS thread from
// /proc/thread-self/status. The caller should hold runtime.LockOSThread for
// the answer to mean anything.
func CurrentThread() (Sets, error) {
	return readStatus("/proc/thread-self/status")
}

// ThreadOf reads the capability sets of thread tid of process pid (pid 0
// means self) from /proc/PID/task/TID/status.
func ThreadOf(pid, tid int) (Sets, error) {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	return readStatus("/proc/" + p + "/task/" + strconv.Itoa(tid) + "/status")
}

func readStatus(path string) (Sets, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Sets{}, fmt.Errorf("caps: %w", err)
	}
	s, err := parseStatus(b)
	if err != nil {
		return Sets{}, fmt.Errorf("caps: %s: %w", path, err)
	}
	return s, nil
}

// parseStatus reads the Cap* lines of a /proc status file.
func parseStatus(b []byte) (Sets, error) {
	var s Sets
	fields := map[string]*Set{
		"CapInh": &s.Inheritable,
		"CapPrm": &s.Permitted,
		"CapEff": &s.Effective,
		"CapBnd": &s.Bounding,
		"CapAmb": &s.Ambient,
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		dst := fields[key]
		if !ok || dst == nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return Sets{}, fmt.Errorf("bad %s line: %w", key, err)
		}
		*dst = Set(v)
		seen++
	}
	if seen < 4 { // CapAmb is missing before Linux 4.3
		return Sets{}, errors.New("no capability lines")
	}
	return s, nil
}
