//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/caps"
)

// helperEnv makes the test binary, run as a child, try a few syscalls and
// print their errnos instead of running tests.
const helperEnv = "ATOLL_SECCOMP_TEST_HELPER"

// The main goroutine keeps the main thread, as PID 1 should: a goroutine
// that confines its thread then never runs there, and /proc/self/status
// (the main thread's) must show no filter.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helper()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper prints "name errno" for syscalls a filter may deny. None of them
// changes anything outside this short-lived process.
func helper() {
	errnoOf := func(err error) int {
		var e unix.Errno
		if errors.As(err, &e) {
			return int(e)
		}
		if err != nil {
			return -1
		}
		return 0
	}
	raw := func(nr uintptr, args ...uintptr) int {
		var a [6]uintptr
		copy(a[:], args)
		_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		return int(e)
	}
	res := []struct {
		name  string
		errno int
	}{
		{"getpid", raw(unix.SYS_GETPID)},
		{"unshare_user", errnoOf(unix.Unshare(unix.CLONE_NEWUSER))},
		{"mount", errnoOf(unix.Mount("none", "/nonexistent-atoll-seccomp-test", "tmpfs", 0, ""))},
		{"clone3", raw(unix.SYS_CLONE3, 0, 0)},
		{"syslog_size", raw(unix.SYS_SYSLOG, unix.SYSLOG_ACTION_SIZE_BUFFER, 0, 0)},
		{"io_uring_setup", raw(unix.SYS_IO_URING_SETUP, 0, 0)},
		{"socket_vsock", func() int {
			fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
			if err == nil {
				unix.Close(fd)
			}
			return errnoOf(err)
		}()},
		{"personality_query", raw(unix.SYS_PERSONALITY, 0xffffffff)},
		{"personality_1", raw(unix.SYS_PERSONALITY, 1)},
	}
	for _, r := range res {
		fmt.Printf("%s %d\n", r.name, r.errno)
	}
}

// runHelper runs the helper with out as its output and returns its
// results.
func helperCmd(out *os.File) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stdout = out
	cmd.Stderr = out
	return cmd
}

func readHelper(t *testing.T, out *os.File) map[string]unix.Errno {
	t.Helper()
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]unix.Errno{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, v, ok := strings.Cut(line, " ")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			t.Fatalf("helper printed %q", b)
		}
		res[name] = unix.Errno(n)
	}
	return res
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// onConfinedThread runs fn on a new OS thread after LoadThread(filter);
// the goroutine never unlocks, so the thread dies with it. It returns
// LoadThread's or fn's error.
func onConfinedThread(filter []unix.SockFilter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked
		if err := LoadThread(filter); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func threadStatus(t *testing.T, path string) (seccomp, nnp string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Seccomp":
			seccomp = strings.TrimSpace(v)
		case "NoNewPrivs":
			nnp = strings.TrimSpace(v)
		}
	}
	return seccomp, nnp
}

// With only the essential syscalls allowed (and read), the thread can
// still fork and execute a program: the essential list is enough for Go's
// fork and exec path. This test comes first so that Go's one-time pidfd
// check also runs under the filter.
func TestLoadThreadEssentialsOnly(t *testing.T) {
	f, err := mustParse(t, "mode=retain,read", caps.Default()).Assemble()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := tempFile(t)
	cmd := exec.Command("/bin/true")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, out

	var openErr, startErr, waitErr error
	err = onConfinedThread(f, func() error {
		_, openErr = unix.Open("/proc/self/status", unix.O_RDONLY, 0)
		startErr = cmd.Start()
		if startErr == nil {
			waitErr = cmd.Wait()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("LoadThread: %v", err)
	}
	if !errors.Is(openErr, unix.EPERM) {
		t.Errorf("openat on the confined thread: got %v, want EPERM", openErr)
	}
	if startErr != nil {
		t.Fatalf("cmd.Start on the confined thread: %v, want nil (the essential syscalls should suffice)", startErr)
	}
	// /bin/true itself cannot load its libraries without openat: it fails,
	// but it ran.
	b, _ := os.ReadFile(out.Name())
	t.Logf("/bin/true under mode=retain,read: %v, output %q", waitErr, b)
	if s, _ := threadStatus(t, "/proc/thread-self/status"); s != "0" {
		t.Errorf("the test goroutine's thread has Seccomp %s, want 0", s)
	}
}

// The fork child's credential switch, new session and parent-death signal
// pass the essential-only filter too.
func TestLoadThreadEssentialsOnlyAsUser(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root: switching the child to another user")
	}
	f, err := mustParse(t, "mode=retain,read", caps.Default()).Assemble()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := tempFile(t)
	cmd := exec.Command("/bin/true")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:     true,
		Pdeathsig:  unix.SIGKILL,
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}},
	}
	var startErr error
	err = onConfinedThread(f, func() error {
		if startErr = cmd.Start(); startErr == nil {
			cmd.Wait()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("LoadThread: %v", err)
	}
	if startErr != nil {
		t.Errorf("cmd.Start with Setsid, Pdeathsig and Credential on the confined thread: %v, want nil", startErr)
	}
}

func TestLoadThreadDefault(t *testing.T) {
	f, err := mustDefault(t, caps.Default()).Assemble()
	if err != nil {
		t.Fatal(err)
	}
	out := tempFile(t)
	helperRun := helperCmd(out)

	var (
		status, nnp string
		trueErr     error
		shOut       []byte
		shErr       error
	)
	err = onConfinedThread(f, func() error {
		status, nnp = threadStatus(t, "/proc/thread-self/status")
		if err := helperRun.Run(); err != nil {
			return fmt.Errorf("helper: %w", err)
		}
		trueErr = exec.Command("/bin/true").Run()
		shOut, shErr = exec.Command("/bin/sh", "-c", "unshare -U true").CombinedOutput()
		return nil
	})
	if err != nil {
		t.Fatalf("confined thread: %v", err)
	}
	if status != "2" || nnp != "1" {
		t.Errorf("confined thread: Seccomp %q, NoNewPrivs %q; want 2 (filter), 1", status, nnp)
	}
	if s, n := threadStatus(t, "/proc/self/status"); s != "0" || n != "0" {
		t.Errorf("main thread: Seccomp %q, NoNewPrivs %q; want 0, 0 (only the locked thread is confined)", s, n)
	}
	if s, n := threadStatus(t, "/proc/thread-self/status"); s != "0" || n != "0" {
		t.Errorf("the test goroutine's thread: Seccomp %q, NoNewPrivs %q; want 0, 0", s, n)
	}
	if trueErr != nil {
		t.Errorf("/bin/true under Default: %v, want it to run normally", trueErr)
	}
	if shErr == nil || !strings.Contains(string(shOut), "Operation not permitted") {
		t.Errorf("unshare -U under Default: %v, output %q; want a failure saying Operation not permitted", shErr, shOut)
	}

	got := readHelper(t, out)
	want := map[string]unix.Errno{
		"getpid":            0,
		"unshare_user":      unix.EPERM,
		"mount":             unix.EPERM,
		"clone3":            unix.ENOSYS,
		"syslog_size":       unix.EPERM,
		"io_uring_setup":    unix.EPERM,
		"socket_vsock":      unix.EPERM,
		"personality_query": 0,
		"personality_1":     unix.EPERM,
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("helper under Default: %s got errno %d (%v), want %d (%v)", name, g, g, w, w)
		}
	}
}

// The same syscalls without the filter, as root, succeed or fail otherwise.
func TestLoadThreadBaseline(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root: the unfiltered baseline mounts and unshares")
	}
	if err := exec.Command("/bin/sh", "-c", "unshare -U true").Run(); err != nil {
		t.Errorf("unshare -U without a filter: %v, want success", err)
	}
	out := tempFile(t)
	if err := helperCmd(out).Run(); err != nil {
		t.Fatal(err)
	}
	got := readHelper(t, out)
	for name, notWant := range map[string]unix.Errno{
		"unshare_user": unix.EPERM, "mount": unix.EPERM, "clone3": unix.ENOSYS, "syslog_size": unix.EPERM,
	} {
		if got[name] == notWant {
			t.Errorf("helper without a filter: %s got %v, which only the filter should give", name, got[name])
		}
	}
}

func TestLoadThreadErrors(t *testing.T) {
	if err := LoadThread(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("LoadThread(nil) = %v, want ErrInvalid", err)
	}
	// A jump past the end: the kernel refuses it.
	bad := []unix.SockFilter{{Code: unix.BPF_JMP | unix.BPF_JA, K: 5}, ret(ActAllow)}
	err := onConfinedThread(bad, func() error { return nil })
	if !errors.Is(err, unix.EINVAL) {
		t.Errorf("LoadThread(bad jump) = %v, want EINVAL", err)
	}
}
