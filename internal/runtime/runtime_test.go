package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"atoll.dev/atoll/internal/runtime/image"
	"atoll.dev/atoll/internal/runtime/imagetest"
	"atoll.dev/atoll/internal/runtime/network"
	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/stage1"
)

// The pod's PID 1 is this test binary started again, as it is the atoll
// binary on a machine.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == stage1.Command {
		os.Exit(stage1.Main(os.Args[2:]))
	}
	code := m.Run()
	if appImage.dir != "" {
		os.RemoveAll(appImage.dir) // shared by the tests, so not in a t.TempDir
	}
	os.Exit(code)
}

// testRuntime is a runtime in a temporary root with a test app image
// imported as "test/app", and a default network of its own (its own
// bridge and subnet, no masquerading: nothing leaves the host).
type testRuntime struct {
	*Runtime
	t *testing.T
}

var appImage struct {
	sync.Once
	dir string
}

func newTestRuntime(t *testing.T, subnet int) *testRuntime {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: namespaces, mounts, cgroups and network devices")
	}
	base := t.TempDir()
	rt, err := Open(Options{
		StateDir:  filepath.Join(base, "state"),
		RunDir:    filepath.Join(base, "run"),
		ConfigDir: filepath.Join(base, "etc"),
		DefaultNetwork: network.DefaultNetwork{
			Bridge: fmt.Sprintf("atollrt%d", subnet),
			Subnet: fmt.Sprintf("10.251.%d.0/24", subnet),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	appImage.Do(func() {
		appImage.dir = imagetest.WriteLayout(t, filepath.Join(os.TempDir(), fmt.Sprintf("atoll-testapp-%d", os.Getpid())), imagetest.TestApp(t), "test/app:latest")
	})
	bridge := fmt.Sprintf("atollrt%d", subnet)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	if _, err := rt.Images.Import(context.Background(), appImage.dir, image.ImportOptions{Name: "test/app"}); err != nil {
		t.Fatal(err)
	}
	return &testRuntime{Runtime: rt, t: t}
}

// run runs a pod and returns its exit code and output.
func (r *testRuntime) run(o PodOptions, ro RunOptions) (int, string, *pod.Pod) {
	r.t.Helper()
	p, err := r.Prepare(context.Background(), o)
	if err != nil {
		r.t.Fatalf("prepare: %v", err)
	}
	out, err := os.CreateTemp(r.t.TempDir(), "out")
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	ro.Stdout, ro.Stderr = out, out
	if ro.Stdin == nil {
		ro.Stdin, _ = os.Open(os.DevNull)
	}
	code, err := r.Run(context.Background(), p, ro)
	if err != nil {
		r.t.Fatalf("run: %v", err)
	}
	data, _ := os.ReadFile(out.Name())
	return code, string(data), p
}

func app(args ...string) AppOptions {
	return AppOptions{Image: "test/app", Args: args, ArgsSet: true}
}

func TestRunExitCodes(t *testing.T) {
	r := newTestRuntime(t, 1)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"true"}, 0},
		{[]string{"false"}, 1},
		{[]string{"exit", "3"}, 3},
	} {
		code, out, _ := r.run(PodOptions{Apps: []AppOptions{app(tc.args...)}, Net: []string{"none"}}, RunOptions{Remove: true})
		if code != tc.want {
			t.Errorf("testapp %v: exit code %d, want %d (output %q)", tc.args, code, tc.want, out)
		}
	}
}

func TestIsolationDefaults(t *testing.T) {
	r := newTestRuntime(t, 2)
	run := func(args ...string) (int, string) {
		code, out, _ := r.run(PodOptions{Apps: []AppOptions{app(args...)}, Net: []string{"none"}, Hostname: "isolated"}, RunOptions{Remove: true})
		return code, out
	}
	// Only the pod's processes are visible: PID 1 (stage1) and the app.
	if code, out := run("ps"); code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 1 {
		t.Errorf("ps in the pod: exit %d, output %q; want two processes", code, out)
	}
	if code, out := run("hostname"); code != 0 || strings.TrimSpace(out) != "isolated" {
		t.Errorf("hostname: exit %d, output %q; want isolated", code, out)
	}
	_, out := run("caps")
	for _, want := range []string{"CapBnd: 00000000a80425fb", "CapEff: 00000000a80425fb", "CapInh: 0000000000000000", "CapAmb: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("caps: output %q lacks %q", out, want)
		}
	}
	if code, out := run("mount", "tmpfs", "/mnt", "tmpfs"); code == 0 {
		t.Errorf("mount in the pod succeeded (%q); want it refused", out)
	}
	if code, out := run("syscall", "init-module"); code == 0 {
		t.Errorf("loading a module succeeded (%q); want it refused", out)
	}
	if code, out := run("write", "/proc/sys/kernel/hostname", "x"); code == 0 {
		t.Errorf("writing /proc/sys succeeded (%q); want it read-only", out)
	}
	// Masked paths that this kernel has: /proc/kcore may be compiled out.
	if code, out := run("cat", "/proc/timer_list"); code != 0 || out != "" {
		t.Errorf("/proc/timer_list: exit %d, output %q; want it masked (empty)", code, out)
	}
	if code, out := run("ls", "/sys/firmware"); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("/sys/firmware: exit %d, output %q; want it masked (empty)", code, out)
	}
	if code, out := run("exe-write"); code != 0 || strings.Contains(out, "opened") {
		t.Errorf("exe-write: exit %d, output %q; want no executable opened for writing", code, out)
	}
}

func TestUserAndReadOnlyRoot(t *testing.T) {
	r := newTestRuntime(t, 3)
	a := app("id")
	a.User = "app"
	code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true})
	if code != 0 || !strings.Contains(out, "uid=1000") {
		t.Errorf("--user app: exit %d, output %q; want uid=1000", code, out)
	}
	ro := app("write", "/etc/x", "y")
	ro.ReadOnlyRootfs = true
	if code, out, _ := r.run(PodOptions{Apps: []AppOptions{ro}, Net: []string{"none"}}, RunOptions{Remove: true}); code == 0 {
		t.Errorf("write with --readonly-rootfs succeeded (%q)", out)
	}
	rw := app("write", "/etc/x", "y")
	if code, out, _ := r.run(PodOptions{Apps: []AppOptions{rw}, Net: []string{"none"}}, RunOptions{Remove: true}); code != 0 {
		t.Errorf("write to the app's own root failed: %q", out)
	}
}

func TestVolumes(t *testing.T) {
	r := newTestRuntime(t, 4)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in"), []byte("from the host"), 0o644)
	vols := []pod.Volume{{Name: "data", Kind: "host", Source: host, ReadOnly: true}}
	a := app("cat", "/data/in")
	a.Mounts = []pod.Mount{{Volume: "data", Target: "/data"}}
	code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Volumes: vols, Net: []string{"none"}}, RunOptions{Remove: true})
	if code != 0 || out != "from the host" {
		t.Errorf("host volume: exit %d, output %q", code, out)
	}
	w := app("write", "/data/out", "x")
	w.Mounts = a.Mounts
	if code, _, _ := r.run(PodOptions{Apps: []AppOptions{w}, Volumes: vols, Net: []string{"none"}}, RunOptions{Remove: true}); code == 0 {
		t.Errorf("write to a read-only volume succeeded")
	}
	if _, err := os.Stat(filepath.Join(host, "out")); err == nil {
		t.Errorf("the read-only volume's host directory was written")
	}
}

func TestMemoryLimitOOMKills(t *testing.T) {
	r := newTestRuntime(t, 5)
	a := app("alloc", "200")
	a.Memory = "32M"
	code, _, p := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{})
	if code != 128+int(syscall.SIGKILL) {
		t.Fatalf("alloc 200 MB under 32M: exit %d, want %d", code, 128+int(syscall.SIGKILL))
	}
	in, err := r.Status(p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Apps) != 1 || !in.Apps[0].OOMKilled {
		t.Fatalf("status: apps %+v, want the app marked OOM-killed", in.Apps)
	}
}

func TestKilledPodIsExitedAndCollected(t *testing.T) {
	r := newTestRuntime(t, 6)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{app("sleep", "60")}})
	if err != nil {
		t.Fatal(err)
	}
	uuid := p.UUID
	if err := p.MarkPrepared(); err != nil {
		t.Fatal(err)
	}
	// The pod process is another process (as `atoll pod run` would be),
	// so that it can be killed with -9.
	cmd := exec.Command(bin, "-test.run=^TestHelperRunPrepared$")
	cmd.Env = append(os.Environ(), "ATOLL_TEST_POD="+uuid, "ATOLL_TEST_STATE="+r.opts.StateDir, "ATOLL_TEST_RUN="+r.opts.RunDir, "ATOLL_TEST_ETC="+r.opts.ConfigDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		in, err := r.Status(uuid)
		return err == nil && in.State == "running" && len(in.Apps) == 1 && in.Apps[0].PID != 0
	}, "the pod to run")
	in, _ := r.Status(uuid)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitFor(t, func() bool {
		in, err := r.Status(uuid)
		return err == nil && in.State == "exited"
	}, "the killed pod to read as exited")
	// The lock is free once PID 1 has closed its files, a moment before
	// it is gone.
	waitFor(t, func() bool { return !alive(in.Run.PID) }, fmt.Sprintf("the pod's PID 1 (%d) to die with its pod process", in.Run.PID))
	res, err := r.GC(context.Background(), GCOptions{})
	if err != nil || len(res.Removed) != 1 {
		t.Fatalf("gc: removed %v, errors %v %v; want the pod removed", res.Removed, res.Errors, err)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", cgroupPath(uuid))); err == nil {
		t.Errorf("the pod's cgroup is still there after gc")
	}
}

// TestHelperRunPrepared is the pod process of TestKilledPodIsExitedAndCollected.
func TestHelperRunPrepared(t *testing.T) {
	uuid := os.Getenv("ATOLL_TEST_POD")
	if uuid == "" {
		t.Skip("helper process of TestKilledPodIsExitedAndCollected")
	}
	rt, err := Open(Options{StateDir: os.Getenv("ATOLL_TEST_STATE"), RunDir: os.Getenv("ATOLL_TEST_RUN"), ConfigDir: os.Getenv("ATOLL_TEST_ETC"),
		DefaultNetwork: network.DefaultNetwork{Bridge: "atollrt6", Subnet: "10.251.6.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	rt.RunPrepared(context.Background(), uuid, RunOptions{})
}

func TestEnterIsConfinedLikeTheApp(t *testing.T) {
	r := newTestRuntime(t, 7)
	a := app("sleep", "60")
	a.CapsRemove = []string{"NET_RAW"}
	p, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	uuid := p.UUID
	done := make(chan int, 1)
	go func() {
		code, _ := r.Run(context.Background(), p, RunOptions{StopTimeout: time.Second})
		done <- code
	}()
	waitFor(t, func() bool {
		in, err := r.Status(uuid)
		return err == nil && in.State == "running" && len(in.Apps) == 1 && in.Apps[0].PID != 0
	}, "the pod to run")
	bin, _ := os.Executable()
	cmd := exec.Command(bin, "-test.run=^TestHelperEnter$")
	cmd.Env = append(os.Environ(), "ATOLL_TEST_POD="+uuid, "ATOLL_TEST_STATE="+r.opts.StateDir, "ATOLL_TEST_RUN="+r.opts.RunDir, "ATOLL_TEST_ETC="+r.opts.ConfigDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("enter: %v\n%s", err, out)
	}
	for _, want := range []string{"CapBnd: 00000000a80405fb", "NoNewPrivs: 1", "Seccomp: 2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("enter caps: output %q lacks %q", out, want)
		}
	}
	if err := r.Stop(uuid, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pod did not stop after SIGTERM and the stop timeout")
	}
}

// TestHelperEnter is the `atoll pod enter` process of TestEnterIsConfinedLikeTheApp.
func TestHelperEnter(t *testing.T) {
	uuid := os.Getenv("ATOLL_TEST_POD")
	if uuid == "" {
		t.Skip("helper process of TestEnterIsConfinedLikeTheApp")
	}
	rt, err := Open(Options{StateDir: os.Getenv("ATOLL_TEST_STATE"), RunDir: os.Getenv("ATOLL_TEST_RUN"), ConfigDir: os.Getenv("ATOLL_TEST_ETC")})
	if err != nil {
		t.Fatal(err)
	}
	code, err := rt.Enter(uuid, "", []string{"/bin/testapp", "caps"})
	if err != nil || code != 0 {
		t.Fatalf("enter: code %d, %v", code, err)
	}
}

// alive reports whether pid is a live process; a zombie is not (the
// sandbox's PID 1 may never reap an orphan).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(data), ") ")
	return !strings.HasPrefix(after, "Z")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestDefaultNetworkAndPorts(t *testing.T) {
	r := newTestRuntime(t, 8)
	srv := app("http", ":80")
	// The second port is published on one host address only, named as
	// docker2aci named ports.
	p, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{srv}, Ports: []string{"80:18080", "80-tcp:127.0.0.1:18081"}, Hostname: "web"})
	if err != nil {
		t.Fatal(err)
	}
	uuid := p.UUID
	done := make(chan int, 1)
	go func() {
		devnull, _ := os.Open(os.DevNull)
		code, _ := r.Run(context.Background(), p, RunOptions{Remove: true, Stdin: devnull, Stdout: devnull, Stderr: devnull})
		done <- code
	}()
	var ip string
	waitFor(t, func() bool {
		in, err := r.Status(uuid)
		if err != nil || in.State != "running" || in.Run == nil || len(in.Run.Networks) != 1 {
			return false
		}
		ip = in.Run.Networks[0].IP
		return true
	}, "the server pod to run")
	if !strings.HasPrefix(ip, "10.251.8.") {
		t.Fatalf("pod address %s, want one in 10.251.8.0/24", ip)
	}
	// Another pod reaches it by its address, and the host through the port.
	var code int
	var out string
	for i := 0; i < 50; i++ {
		code, out, _ = r.run(PodOptions{Apps: []AppOptions{app("get", "http://"+ip+"/")}}, RunOptions{Remove: true})
		if code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 || out != "hello from web\n" {
		t.Fatalf("pod to pod: exit %d, output %q; want hello from web", code, out)
	}
	resp, err := httpGet("http://127.0.0.1:18080/")
	if err != nil || resp != "hello from web\n" {
		t.Fatalf("host to pod through --port 80:18080: %q, %v", resp, err)
	}
	if resp, err := httpGet("http://127.0.0.1:18081/"); err != nil || resp != "hello from web\n" {
		t.Errorf("host to pod through --port 80-tcp:127.0.0.1:18081: %q, %v", resp, err)
	}
	if out, _ := exec.Command("iptables-save", "-t", "nat").Output(); !strings.Contains(string(out), "-d 127.0.0.1/32") || !strings.Contains(string(out), "--dport 18081") {
		t.Errorf("no DNAT rule for 127.0.0.1:18081 in:\n%s", out)
	}
	if err := r.Stop(uuid, false); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("the server pod exited %d after SIGTERM, want 0 (it exits cleanly on SIGTERM)", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server pod did not stop")
	}
	if out, _ := exec.Command("iptables-save", "-t", "nat").Output(); strings.Contains(string(out), uuid) {
		t.Errorf("iptables rules of pod %s left after it exited", uuid)
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A hundred pods run and removed leave no pod directory, cgroup, mount,
// veth, address allocation or iptables rule behind.
func TestHundredPodsLeaveNothing(t *testing.T) {
	r := newTestRuntime(t, 9)
	// Only mounts under the test's own directories count: other processes
	// on the machine mount and unmount meanwhile.
	ownMounts := func() int { return countMatching(t, "/proc/self/mountinfo", filepath.Dir(r.opts.StateDir)) }
	mountsBefore := ownMounts()
	var uuids []string
	for i := 0; i < 100; i++ {
		code, out, p := r.run(PodOptions{Apps: []AppOptions{app("true")}}, RunOptions{Remove: true})
		if code != 0 {
			t.Fatalf("pod %d: exit %d, output %q", i, code, out)
		}
		uuids = append(uuids, p.UUID)
	}
	if got := ownMounts(); got != mountsBefore {
		t.Errorf("mounts: %d before, %d after 100 pods", mountsBefore, got)
	}
	pods, _ := r.List()
	if len(pods) != 0 {
		t.Errorf("%d pods left, want none", len(pods))
	}
	// This test's pods only: other tests' pods and units run meanwhile.
	for _, ctrl := range []string{"memory", "pids", "cpu", "devices"} {
		for _, uuid := range uuids {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctrl, cgroupPath(uuid))); err == nil {
				t.Errorf("cgroup %s%s left behind", ctrl, cgroupPath(uuid))
			}
		}
	}
	// The kernel removes a dead pod's veth pair with its namespace, a
	// little after the pod process has returned.
	var links []byte
	for i := 0; i < 100; i++ {
		links, _ = exec.Command("ip", "-o", "link", "show", "master", "atollrt9").Output()
		if len(links) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(string(links), "\n"); n != 0 {
		t.Errorf("%d veths left on the bridge: %s", n, links)
	}
	allocs, _ := filepath.Glob(filepath.Join(r.Net.StateDir, "default", "*"))
	for _, a := range allocs {
		if base := filepath.Base(a); strings.Count(base, ".") == 3 {
			t.Errorf("address allocation %s left behind", base)
		}
	}
}

func countMatching(t *testing.T, path, substr string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// A pod being prepared holds its images from before they are unpacked, and
// one that fails to prepare leaves nothing.
func TestPreparingPodHoldsItsImages(t *testing.T) {
	r := newTestRuntime(t, 10)
	ctx := context.Background()
	img, err := r.Images.Get("test/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Images.RootfsLayers(ctx, img); err != nil {
		t.Fatal(err)
	}
	p, err := r.Pods.Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.claimImage(p, &pod.Manifest{}, img); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveImage("test/app"); !errors.Is(err, image.ErrInUse) {
		t.Errorf("RemoveImage of a claimed image: %v, want ErrInUse", err)
	}
	if _, err := r.GCImages(ctx); err != nil {
		t.Fatal(err)
	}
	for _, key := range r.Images.DirKeys(img) {
		if matches, _ := filepath.Glob(filepath.Join(r.opts.StateDir, "images", "*", strings.TrimPrefix(key, "sha256:"))); len(matches) == 0 {
			t.Errorf("image gc removed %s, which a preparing pod claims", key)
		}
	}
	p.Remove()

	_, err = r.Prepare(ctx, PodOptions{Apps: []AppOptions{app("true"), {Image: "no/such-image"}}, Net: []string{"none"}})
	if err == nil {
		t.Fatal("Prepare with a missing image succeeded")
	}
	if entries, err := r.Pods.List(); err != nil || len(entries) != 0 {
		t.Errorf("pods after a failed prepare: %v, %v; want none", entries, err)
	}
}
