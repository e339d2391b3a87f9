package imagetest

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testapp runs the testapp binary on the host with args and stdin.
func testapp(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(Program(t, TestAppPkg), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestTestAppCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		stdin    string
		wantCode int
		want     []string // lines (or line prefixes ending in "*") that must appear
	}{
		{args: []string{"true"}},
		{args: []string{"false"}, wantCode: 1},
		{args: []string{"exit", "42"}, wantCode: 42},
		{args: []string{"exit", "x"}, wantCode: 2},
		{args: []string{}, wantCode: 2},
		{args: []string{"no-such-command"}, wantCode: 2},
		{args: []string{"sleep", "0.01"}},
		{args: []string{"echo", "a", "b"}, want: []string{"a b"}},
		{args: []string{"id"}, want: []string{"uid=" + strconv.Itoa(os.Getuid()), "gid=" + strconv.Itoa(os.Getgid()), "groups=*"}},
		{args: []string{"caps"}, want: []string{"CapEff: *", "CapBnd: *", "CapAmb: *", "NoNewPrivs: *", "Seccomp: *"}},
		{args: []string{"ps"}, want: []string{"* testapp"}},
		{args: []string{"cat", filepath.Join(dir, "f")}, want: []string{"content"}},
		{args: []string{"cat", filepath.Join(dir, "missing")}, wantCode: 1, want: []string{"error: *(ENOENT)"}},
		{args: []string{"write", filepath.Join(dir, "w"), "text"}, want: []string{"ok"}},
		{args: []string{"write", filepath.Join(dir, "nodir", "w"), "text"}, wantCode: 1, want: []string{"error: *ENOENT*"}},
		{args: []string{"ls", dir}, want: []string{"f"}},
		{args: []string{"ls", "-l", dir}, want: []string{"-rw------- * * 8 f"}},
		{args: []string{"stdin"}, stdin: "piped\n", want: []string{"piped"}},
		{args: []string{"tty"}, want: []string{"stdin is not a terminal"}},
		{args: []string{"pwd"}, want: []string{"/*"}},
		{args: []string{"hostname"}, want: []string{"*"}},
		{args: []string{"env"}, want: []string{"PATH=*"}},
		{args: []string{"alloc", "3"}, want: []string{"allocated 1 MB", "allocated 3 MB", "done"}},
		{args: []string{"addrs"}, want: []string{"lo*"}},
		{args: []string{"exe-write"}, want: []string{"/proc/self/exe: ETXTBSY"}},
		{args: []string{"syscall", "no-such-call"}, wantCode: 2},
		{args: []string{"get", "http://127.0.0.1:1/"}, wantCode: 1, want: []string{"error: *"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code := testapp(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			lines := strings.Split(out, "\n")
			for _, w := range tt.want {
				if !containsLine(lines, w) {
					t.Fatalf("no line %q in output:\n%s", w, out)
				}
			}
		})
	}
	if data, err := os.ReadFile(filepath.Join(dir, "w")); err != nil || string(data) != "text" {
		t.Fatalf("write wrote %q, %v", data, err)
	}
}

// containsLine reports whether a line matches pattern, where '*' matches
// any run of characters.
func containsLine(lines []string, pattern string) bool {
	for _, l := range lines {
		if match(pattern, l) {
			return true
		}
	}
	return false
}

func match(pattern, s string) bool {
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$"
	return regexp.MustCompile(re).MatchString(s)
}

// start runs testapp in the background and returns it with its stdout,
// after reading the first line.
func start(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader, string) {
	t.Helper()
	cmd := exec.Command(Program(t, TestAppPkg), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(stdout)
	first, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("testapp %s: %v", strings.Join(args, " "), err)
	}
	return cmd, r, strings.TrimSpace(first)
}

func TestTestAppSignalExit(t *testing.T) {
	t.Parallel()
	cmd, r, first := start(t, "signal-exit")
	if first != "waiting for SIGTERM" {
		t.Fatalf("first line %q", first)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil || strings.TrimSpace(string(rest)) != "got SIGTERM" {
		t.Fatalf("after SIGTERM: %v, %q", err, rest)
	}
}

func TestTestAppHTTP(t *testing.T) {
	t.Parallel()
	cmd, r, first := start(t, "http", "127.0.0.1:0")
	addr, ok := strings.CutPrefix(first, "listening on ")
	if !ok {
		t.Fatalf("first line %q", first)
	}
	host, _ := os.Hostname()
	out, code := testapp(t, "", "get", "http://"+addr+"/")
	if code != 0 || out != "hello from "+host+"\n" {
		t.Fatalf("get: exit %d, %q", code, out)
	}
	resp, err := http.Get("http://" + addr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /other: %s", resp.Status)
	}
	if _, code := testapp(t, "", "get", "http://"+addr+"/other"); code != 1 {
		t.Fatalf("get of a 404: exit %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		rest, _ := io.ReadAll(r)
		if strings.TrimSpace(string(rest)) != "terminated" {
			done <- errors.New("output after SIGTERM: " + string(rest))
			return
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("testapp http did not exit on SIGTERM")
	}
}

func TestTestAppPtrace(t *testing.T) {
	t.Parallel()
	target, _, _ := start(t, "signal-exit")
	out, code := testapp(t, "", "syscall", "ptrace-attach", strconv.Itoa(target.Process.Pid))
	// Allowed (root, or the same user without Yama restrictions) or refused
	// with an errno: never anything else.
	if code == 0 && strings.TrimSpace(out) != "ok" || code == 1 && !strings.HasPrefix(out, "E") || code > 1 {
		t.Fatalf("ptrace-attach: exit %d, %q", code, out)
	}
	t.Logf("ptrace-attach: %s", strings.TrimSpace(out))
	// The target still runs and still answers SIGTERM.
	if err := target.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := target.Wait(); err != nil {
		t.Fatalf("target after ptrace: %v", err)
	}
}

// TestTestAppSyscallProbes runs the probes that are harmless on the host
// whatever the privileges (sethostname and mount are left out: as root they
// would act on the host). Each says ok or an errno name, never a usage error.
func TestTestAppSyscallProbes(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"unshare-user"}, {"unshare-mount"}, {"init-module"}, {"reboot"}, {"swapon"}, {"keyctl"}, {"chroot"},
		{"mknod", filepath.Join(t.TempDir(), "null")},
	} {
		out, code := testapp(t, "", append([]string{"syscall"}, args...)...)
		out = strings.TrimSpace(out)
		if code == 0 && out != "ok" || code == 1 && !strings.HasPrefix(out, "E") || code > 1 {
			t.Errorf("syscall %s: exit %d, %q", strings.Join(args, " "), code, out)
		}
		t.Logf("syscall %s: %s", strings.Join(args, " "), out)
	}
}

// TestTestAppSyscallRefused runs a probe as an unprivileged user, to see a
// refusal reported as its errno name.
func TestTestAppSyscallRefused(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	// The build directory is private (0700): copy the binary somewhere
	// nobody can reach.
	dir, err := os.MkdirTemp("", "testapp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, err := os.ReadFile(Program(t, TestAppPkg))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "testapp")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, probe := range []string{"reboot", "chroot"} {
		cmd := exec.Command(bin, "syscall", probe)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || strings.TrimSpace(string(out)) != "EPERM" {
			t.Errorf("syscall %s as nobody: %v, %q; want exit 1 and EPERM", probe, err, out)
		}
	}
}
