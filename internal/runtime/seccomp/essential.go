//go:build linux

package seccomp

import (
	"fmt"
	"runtime"
	"slices"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// essential is what the confined thread and the app's fork child need
// between LoadThread and the app's execve, and at exit; Assemble allows it
// whatever the profile. Sorted; names another architecture lacks are
// skipped (the *32 and *64 forms are 386 and arm's).
//
// Read from Go 1.26's runtime, os/exec, os.StartProcess and
// syscall.forkAndExecInChild1 (syscall/exec_linux.go):
//   - the thread in PID 1, until its goroutine exits: futex, nanosleep,
//     sched_yield, mmap/mmap2, munmap, madvise (the scheduler and the
//     garbage collector), rt_sigaction, rt_sigprocmask, rt_sigreturn,
//     sigreturn, sigaltstack, getpid, gettid, tgkill (signals),
//     clock_gettime (when the vDSO is missing), restart_syscall, exit,
//     exit_group;
//   - os.StartProcess in the parent: pipe2 (the exec error pipe), clone
//     (with CLONE_VFORK|CLONE_VM|SIGCHLD, plus CLONE_PIDFD), read, close,
//     wait4, waitid, pidfd_open, pidfd_send_signal (the pidfd support check
//     Go makes once per process);
//   - the fork child: setsid, setpgid, ioctl (TIOCSPGRP, TIOCSCTTY,
//     TIOCNOTTY), setgroups, setgid, setuid (and setres[ug]id, which libcs
//     use), chdir, prctl (PR_SET_PDEATHSIG, PR_SET_KEEPCAPS), getppid and
//     kill (the parent-death check), dup3, fcntl/fcntl64, close,
//     prlimit64 (RLIMIT_NOFILE restored), execve, write (the error pipe),
//     exit.
//
// os/exec opens /dev/null for a nil Stdin, Stdout or Stderr (openat, fstat,
// fcntl, epoll_ctl on the thread): callers give the Cmd files instead.
var essential = []string{
	"chdir",
	"clock_gettime",
	"close",
	"dup3",
	"execve",
	"exit",
	"exit_group",
	"fcntl",
	"fcntl64",
	"futex",
	"getpid",
	"getppid",
	"gettid",
	"ioctl",
	"kill",
	"madvise",
	"mmap",
	"mmap2",
	"munmap",
	"nanosleep",
	"pidfd_open",
	"pidfd_send_signal",
	"pipe2",
	"prctl",
	"prlimit64",
	"read",
	"restart_syscall",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"sched_yield",
	"setgid",
	"setgid32",
	"setgroups",
	"setgroups32",
	"setpgid",
	"setresgid",
	"setresgid32",
	"setresuid",
	"setresuid32",
	"setsid",
	"setuid",
	"setuid32",
	"sigaltstack",
	"sigreturn",
	"tgkill",
	"wait4",
	"waitid",
	"write",
}

// essentialClone is the rule that keeps Go's fork working: clone without
// any namespace flag, the same condition Docker's profile puts on clone.
var essentialClone = Rule{
	Syscall: "clone",
	Args:    []Arg{{Index: 0, Op: OpMaskedEQ, Mask: dockerCloneNamespaces, Value: 0}},
	Action:  ActAllow,
}

// Essential returns the syscalls every filter this package assembles
// allows, sorted: those the Go fork and exec path and the confined thread
// need (see the package doc). clone is among them, allowed only without
// namespace flags (CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET,
// NEWCGROUP) unless the profile allows more. Names the running architecture
// lacks are left out.
func Essential() []string {
	t, err := nativeTable()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(essential)+1)
	for _, n := range essential {
		if t.has(n) {
			out = append(out, n)
		}
	}
	out = append(out, "clone")
	slices.Sort(out)
	return out
}

// isEssential reports whether name is one of the essential syscalls (clone
// included), whatever the architecture.
func isEssential(name string) bool {
	_, found := slices.BinarySearch(essential, name)
	return found || name == essentialClone.Syscall
}

// table is the syscall table of one architecture.
type table struct {
	info       *arch.Info
	dockerArch string // Docker's name for it
	x32        bool   // amd64: syscall numbers with the x32 bit are another ABI
}

// nativeTable returns the table of the running architecture.
func nativeTable() (*table, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("%w: %s (syscall tables exist for amd64, arm64, 386, arm)", ErrUnsupportedArch, runtime.GOARCH)
	}
	return &table{
		info:       info,
		dockerArch: dockerArchName(runtime.GOARCH),
		x32:        info.ID == arch.X86_64.ID,
	}, nil
}

func (t *table) nr(name string) (int, bool) {
	n, ok := t.info.SyscallNames[name]
	return n, ok
}

func (t *table) has(name string) bool {
	_, ok := t.info.SyscallNames[name]
	return ok
}

// knownAnywhere reports whether name is a syscall of some architecture:
// in one of go-seccomp-bpf's tables or in this package's lists (which name
// syscalls of s390, ppc64le and riscv64 too).
func knownAnywhere(name string) bool {
	for _, a := range []*arch.Info{arch.X86_64, arch.AARCH64, arch.I386, arch.ARM, arch.X32} {
		if _, ok := a.SyscallNames[name]; ok {
			return true
		}
	}
	for _, a := range dockerByArch {
		if slices.Contains(a.names, name) {
			return true
		}
	}
	for _, s := range systemdSets {
		if slices.Contains(s.names, name) {
			return true
		}
	}
	return slices.Contains(dockerAllowed, name)
}
