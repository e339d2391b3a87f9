//go:build linux

package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LoadThread installs filter on the calling OS thread only (no TSYNC), after
// setting no_new_privs on it; both are inherited by what the thread forks
// and cannot be undone. The caller holds runtime.LockOSThread and lets the
// goroutine exit still locked, so that the thread dies with it instead of
// going back to Go's pool; the Go runtime starts new threads from its
// template thread, not from a locked one, so none inherits the filter.
//
// Three things for the caller:
//   - If the goroutine happens to run on the main thread, Go parks that
//     thread for good instead of ending it, and the process's main thread
//     (what /proc/PID/status shows) stays confined. Locking the main
//     goroutine in main's init (runtime.LockOSThread) keeps other goroutines
//     off the main thread.
//   - From LoadThread on, the thread may only make the Essential syscalls
//     and those the profile allows: prepare everything before (give the
//     exec.Cmd its Stdin, Stdout and Stderr as files, or os/exec opens
//     /dev/null with openat), and do nothing else there but Start and Wait.
//   - A parent-death signal (SysProcAttr.Pdeathsig) fires when the thread
//     that forked the app ends, that is when the goroutine returns.
func LoadThread(filter []unix.SockFilter) error {
	if len(filter) == 0 || len(filter) > maxInsns {
		return fmt.Errorf("seccomp: %w: filter of %d instructions (1 to %d)", ErrInvalid, len(filter), maxInsns)
	}
	// prctl and seccomp act on the calling thread.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: set no_new_privs: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("seccomp: install filter: %w", errno)
	}
	return nil
}
