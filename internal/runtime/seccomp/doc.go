// Package seccomp builds, compiles and installs the seccomp filter that
// confines an atoll app: by default Docker's default profile, or what rkt's
// --seccomp flag asks for.
//
// How it is used: the pod's PID 1 confines one locked OS thread per app
// (LoadThread sets no_new_privs and installs the filter on that thread only,
// without TSYNC) and forks the app from it with os/exec; the child inherits
// the filter, Go's fork child still runs a few syscalls before execve, and
// the thread itself keeps running Go code until its goroutine exits. So
// whatever the profile, Assemble keeps allowed the syscalls that path needs
// (see Essential), and a blocklist that names one of them is refused.
//
// The package imports nothing from atoll but caps (the capabilities an app
// retains decide parts of Docker's profile). It uses the syscall tables of
// github.com/elastic/go-seccomp-bpf/arch (Linux 6.15; amd64, arm64, 386,
// arm) and writes the BPF instructions itself: that module's policy
// compiler tests syscalls one after the other, lets a foreign architecture
// through to the default action (a hole in a blocklist) and can only answer
// EPERM. The tests run every filter they check in two interpreters, their
// own and golang.org/x/net/bpf's.
//
// Sources of the lists, all kept in Go source as sorted data:
//   - docker.go: moby's default profile, seccomp/default.json of
//     github.com/moby/profiles at commit 190fa92cb275 (2025; the file moved
//     there from moby's profiles/seccomp/default.json). Podman's
//     /usr/share/containers/seccomp.json (containers/common) derives from
//     it but allows more (mount, unshare, setns, ptrace... for rootless
//     containers) and answers ENOSYS by default: atoll follows moby;
//   - systemd.go: the filter sets of systemd's src/shared/seccomp-util.c at
//     commit 000c05207d68 (systemd v246), which rkt's @systemd/ groups name;
//   - essential.go: this package's own list, from reading Go's
//     syscall/exec_linux.go, os/exec and the runtime (Go 1.26).
//
// Choices:
//   - The filter is for the running architecture only. Its first test is the
//     audit architecture; any other (i386 or x32 calls on amd64) kills the
//     process: Docker lets 32-bit code through, atoll does not.
//   - Syscall numbers are found by a binary search tree over ranges of
//     numbers that share an outcome, not a linear chain: about ten tests per
//     syscall instead of up to three hundred, with long jumps where a branch
//     is farther than 255 instructions.
//   - Arguments are compared as 64-bit values, as libseccomp does.
//   - Docker's rules for other architectures (s390, ppc64le, riscv64 and so
//     on) are kept as data but only the running architecture's apply; its
//     "minKernel 4.8" rule (ptrace, process_vm_readv/writev) always applies,
//     since atoll needs a newer kernel anyway. Docker's profile has no group
//     for CAP_SYS_RESOURCE (nor for several others): retaining one of those
//     changes nothing here either.
//   - ParseRkt without errno= answers EPERM, where rkt killed the app with
//     SIGSYS: the filter also sits on a thread of PID 1 until the app's
//     execve, and a kill action there would take the whole pod down. A caller
//     who wants a kill can set Profile.Default or a Rule's Action.
//   - No cache: Assemble takes about 30µs of CPU for Default (see
//     BenchmarkAssembleDefault), so the package has no mutable state at
//     all.
package seccomp
