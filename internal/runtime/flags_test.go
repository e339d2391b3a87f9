package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The environment, with rkt's precedence: caller (--inherit-env) < image <
// --set-env-file < --set-env.
func TestEnvironmentPrecedence(t *testing.T) {
	r := newTestRuntime(t, 30)
	t.Setenv("ATOLL_TEST_INHERITED", "caller")
	t.Setenv("ATOLL_TEST_X", "caller")
	file := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(file, []byte("# a comment\nATOLL_TEST_X=file\nATOLL_TEST_Y=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := app("env")
	a.InheritEnv, a.EnvFiles, a.Env = true, []string{file}, []string{"ATOLL_TEST_Y=flag"}
	code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true})
	for _, want := range []string{"ATOLL_TEST_INHERITED=caller", "ATOLL_TEST_X=file", "ATOLL_TEST_Y=flag"} {
		if code != 0 || !strings.Contains(out, want+"\n") {
			t.Errorf("env: exit %d, output %q; want %s", code, out, want)
		}
	}
	a = app("env")
	a.Env = []string{"ATOLL_TEST_Y=flag"}
	if _, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true}); strings.Contains(out, "ATOLL_TEST_INHERITED") {
		t.Errorf("env without --inherit-env: output %q has the caller's environment", out)
	}
	a = app("env")
	a.Env = []string{"NOEQUALS"}
	if _, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{a}}); err == nil || !strings.Contains(err.Error(), "NOEQUALS") {
		t.Errorf("--set-env NOEQUALS: %v, want an error naming it", err)
	}
}

// --exec, --user and --group by number, --working-dir.
func TestExecUserGroupWorkingDir(t *testing.T) {
	r := newTestRuntime(t, 31)
	a := AppOptions{Image: "test/app", Exec: "/bin/testapp", Args: []string{"id"}, ArgsSet: true, User: "1234", Group: "5678"}
	code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true})
	if code != 0 || !strings.Contains(out, "uid=1234\n") || !strings.Contains(out, "gid=5678\n") {
		t.Errorf("id as 1234:5678: exit %d, output %q", code, out)
	}
	a = app("pwd")
	a.WorkingDir = "/etc"
	if code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true}); code != 0 || strings.TrimSpace(out) != "/etc" {
		t.Errorf("pwd with --working-dir=/etc: exit %d, output %q", code, out)
	}
}

// --caps-retain, --seccomp and --insecure-options loosen or tighten the
// defaults, and only as asked.
func TestConfinementOptions(t *testing.T) {
	r := newTestRuntime(t, 32)
	run := func(a AppOptions, insecure func(*PodOptions)) (int, string) {
		o := PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}
		if insecure != nil {
			insecure(&o)
		}
		code, out, _ := r.run(o, RunOptions{Remove: true})
		return code, out
	}
	a := app("caps")
	a.CapsRetain = []string{"CAP_NET_BIND_SERVICE"}
	if _, out := run(a, nil); !strings.Contains(out, "CapBnd: 0000000000000400") || !strings.Contains(out, "CapEff: 0000000000000400") {
		t.Errorf("--caps-retain=CAP_NET_BIND_SERVICE: %q, want only bit 10", out)
	}

	// chroot is allowed by default (CAP_SYS_CHROOT is one of the 14).
	if code, out := run(app("syscall", "chroot"), nil); code != 0 {
		t.Fatalf("chroot by default: exit %d, %q; want allowed", code, out)
	}
	a = app("syscall", "chroot")
	a.Seccomp = "mode=remove,errno=ENOTSUP,chroot"
	if code, out := run(a, nil); code == 0 || !strings.Contains(out, "ENOTSUP") {
		t.Errorf("chroot with --seccomp mode=remove,errno=ENOTSUP,chroot: exit %d, %q; want ENOTSUP", code, out)
	}

	if _, out := run(app("caps"), func(o *PodOptions) { o.Insecure.Seccomp = true }); !strings.Contains(out, "Seccomp: 0") {
		t.Errorf("--insecure-options=seccomp: %q, want no filter", out)
	}
	if _, out := run(app("caps"), func(o *PodOptions) { o.Insecure.Capabilities = true }); strings.Contains(out, "CapBnd: 00000000a80425fb") || !strings.Contains(out, "CapBnd: ") {
		t.Errorf("--insecure-options=capabilities: %q, want more than the default bounding set", out)
	}
	if code, out := run(app("cat", "/proc/timer_list"), func(o *PodOptions) { o.Insecure.Paths = true }); code != 0 || out == "" {
		t.Errorf("/proc/timer_list with --insecure-options=paths: exit %d, %d bytes; want it readable", code, len(out))
	}
}

// --stdin, --stdout and --stderr modes, and --dns.
func TestStreamsAndDNS(t *testing.T) {
	r := newTestRuntime(t, 33)
	a := app("echo", "to-the-log")
	a.Stdout = "log"
	code, out, p := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{})
	if code != 0 || strings.Contains(out, "to-the-log") {
		t.Errorf("--stdout=log: exit %d, streamed %q; want nothing streamed", code, out)
	}
	logFile, err := r.LogPath(p.UUID, "")
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(logFile); !strings.Contains(string(data), " stdout to-the-log") {
		t.Errorf("log %s: %q; want the line, marked stdout", logFile, data)
	}

	a = app("echo", "nowhere")
	a.Stdout = "null"
	if code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true}); code != 0 || out != "" {
		t.Errorf("--stdout=null: exit %d, output %q; want none", code, out)
	}

	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, []byte("from stdin\n"), 0o644)
	stdin, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	a = app("stdin")
	a.Stdin = "stream"
	if code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true, Stdin: stdin}); code != 0 || out != "from stdin\n" {
		t.Errorf("--stdin=stream: exit %d, output %q", code, out)
	}
	// The default stdin is null: the app reads EOF at once.
	if code, out, _ := r.run(PodOptions{Apps: []AppOptions{app("stdin")}, Net: []string{"none"}}, RunOptions{Remove: true}); code != 0 || out != "" {
		t.Errorf("stdin by default: exit %d, output %q; want EOF at once", code, out)
	}

	if code, out, _ := r.run(PodOptions{Apps: []AppOptions{app("resolv")}, DNS: []string{"192.0.2.53"}}, RunOptions{Remove: true}); code != 0 || !strings.Contains(out, "nameserver 192.0.2.53") {
		t.Errorf("--dns=192.0.2.53: exit %d, resolv.conf %q", code, out)
	}
}

// atoll pod stop: SIGTERM to the apps, SIGKILL for those still there after
// the stop timeout; an app that exits on SIGTERM has not failed.
func TestStopGracefulThenForced(t *testing.T) {
	r := newTestRuntime(t, 34)
	stop := func(args ...string) (int, string, PodInfo) {
		p, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{app(args...)}, Net: []string{"none"}})
		if err != nil {
			t.Fatal(err)
		}
		out, _ := os.CreateTemp(t.TempDir(), "out")
		defer out.Close()
		done := make(chan int, 1)
		go func() {
			code, err := r.Run(context.Background(), p, RunOptions{StopTimeout: time.Second, Stdout: out, Stderr: out})
			if err != nil {
				t.Errorf("run: %v", err)
			}
			done <- code
		}()
		waitFor(t, func() bool {
			data, _ := os.ReadFile(out.Name())
			return strings.Contains(string(data), "SIGTERM")
		}, "the app to wait for SIGTERM")
		if err := r.Stop(p.UUID, false); err != nil {
			t.Fatal(err)
		}
		code := <-done
		data, _ := os.ReadFile(out.Name())
		in, err := r.Status(p.UUID)
		if err != nil {
			t.Fatal(err)
		}
		return code, string(data), in
	}
	code, out, in := stop("signal-exit")
	if code != 0 || !strings.Contains(out, "got SIGTERM") || in.State != "exited" {
		t.Errorf("stop of an app that exits on SIGTERM: exit %d, output %q, state %s; want 0, got SIGTERM, exited", code, out, in.State)
	}
	code, _, in = stop("ignore-term")
	if code != 128+int(syscall.SIGKILL) || len(in.Apps) != 1 || in.Apps[0].Signal != "SIGKILL" {
		t.Errorf("stop of an app that ignores SIGTERM: exit %d, apps %+v; want 137 and SIGKILL", code, in.Apps)
	}
}
