package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/creack/pty"

	"atoll.dev/atoll/internal/runtime/imagetest"
	"atoll.dev/atoll/internal/runtime/trust"
)

// cgroupFile reads a file of the pod's cgroup in a v1 controller's
// hierarchy, or in the unified one when the controller is not mounted on
// its own.
func cgroupFile(t *testing.T, uuid, controller, v1File, v2File string) string {
	t.Helper()
	path := filepath.Join("/sys/fs/cgroup", controller, cgroupPath(uuid), v1File)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", controller)); err != nil {
		path = filepath.Join("/sys/fs/cgroup", cgroupPath(uuid), v2File)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(data))
}

// runningPod starts a pod in the background and returns its UUID once it
// runs, and a function that waits for its exit code.
func (r *testRuntime) runningPod(o PodOptions) (string, func() int) {
	r.t.Helper()
	p, err := r.Prepare(context.Background(), o)
	if err != nil {
		r.t.Fatalf("prepare: %v", err)
	}
	started := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		code, err := r.Run(context.Background(), p, RunOptions{Started: func(uuid string) { started <- uuid }})
		if err != nil {
			r.t.Errorf("run: %v", err)
		}
		done <- code
	}()
	select {
	case uuid := <-started:
		return uuid, func() int { return <-done }
	case code := <-done:
		r.t.Fatalf("the pod exited (%d) before it ran", code)
		return "", nil
	}
}

func TestCPUAndPidsLimits(t *testing.T) {
	r := newTestRuntime(t, 11)
	// The move into the v2 cgroup that a unified host needs, run here too.
	moveInV2OnHybrid = true
	t.Cleanup(func() { moveInV2OnHybrid = false })
	a := app("sleep", "60")
	a.CPU, a.PidsLimit = "200m", 8
	uuid, wait := r.runningPod(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}})
	if got := cgroupFile(t, uuid, "pids", "app-app/pids.max", "app-app/pids.max"); got != "8" {
		t.Errorf("pids.max = %s, want 8", got)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu"); err == nil {
		quota := cgroupFile(t, uuid, "cpu", "app-app/cpu.cfs_quota_us", "")
		period := cgroupFile(t, uuid, "cpu", "app-app/cpu.cfs_period_us", "")
		if q, _ := strconv.Atoi(quota); q*5 != atoiOr(period) {
			t.Errorf("cpu.cfs_quota_us = %s with period %s, want a fifth of it", quota, period)
		}
	} else if got := cgroupFile(t, uuid, "cpu", "", "app-app/cpu.max"); !strings.HasPrefix(got, "20000 100000") {
		t.Errorf("cpu.max = %s, want 20000 100000", got)
	}
	// The app is in its own cgroup in every hierarchy, PID 1 in its own.
	waitFor(t, func() bool {
		in, err := r.Status(uuid)
		return err == nil && len(in.Apps) == 1 && in.Apps[0].PID != 0
	}, "the app to start")
	for _, h := range []string{"memory", "pids", "unified"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h)); err != nil {
			continue
		}
		app := cgroupFile(t, uuid, h, "app-app/cgroup.procs", "app-app/cgroup.procs")
		pid1 := cgroupFile(t, uuid, h, pid1Cgroup+"/cgroup.procs", pid1Cgroup+"/cgroup.procs")
		if strings.Count(app, "\n") != 0 || app == "" || strings.Count(pid1, "\n") != 0 || pid1 == "" || app == pid1 {
			t.Errorf("%s: app cgroup holds %q, PID 1's %q; want one process each", h, app, pid1)
		}
	}
	if err := r.Stop(uuid, false); err != nil {
		t.Fatal(err)
	}
	wait()

	// The effects: the pids limit stops forks, the quota throttles.
	a = app("spawn", "20")
	a.PidsLimit = 8
	code, out, _ := r.run(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}}, RunOptions{Remove: true})
	var spawned int
	if code != 0 || fmtSscanf(out, "spawned %d of 20", &spawned) != nil || spawned == 0 || spawned >= 8 {
		// The app's threads and its children share the 8; PID 1 is
		// outside them.
		t.Errorf("spawn 20 under --pids-limit=8: exit %d, output %q; want some spawned, fewer than 8", code, out)
	}
	a = app("spin", "300")
	a.CPU = "100m"
	uuid, wait = r.runningPod(PodOptions{Apps: []AppOptions{a}, Net: []string{"none"}})
	exited := make(chan int, 1)
	go func() { exited <- wait() }()
	throttled := false
	for !throttled {
		select {
		case code := <-exited:
			t.Fatalf("spin under --cpu=100m: exit %d before any throttling was seen", code)
		case <-time.After(50 * time.Millisecond):
		}
		stat := filepath.Join("/sys/fs/cgroup/cpu", appCgroupPath(uuid, "app"), "cpu.stat")
		if _, err := os.Stat("/sys/fs/cgroup/cpu"); err != nil {
			stat = filepath.Join("/sys/fs/cgroup", appCgroupPath(uuid, "app"), "cpu.stat")
		}
		data, _ := os.ReadFile(stat)
		for _, l := range strings.Split(string(data), "\n") {
			if n, ok := strings.CutPrefix(l, "nr_throttled "); ok && n != "0" {
				throttled = true
			}
		}
	}
	r.Stop(uuid, true)
	<-exited
}

// fmtSscanf scans the first line of s that format's first word starts.
func fmtSscanf(s, format string, v ...any) error {
	word, _, _ := strings.Cut(format, " ")
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, word) {
			_, err := fmt.Sscanf(l, format, v...)
			return err
		}
	}
	return fmt.Errorf("no line starting with %q", word)
}

func atoiOr(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// A pod with --interactive gets a terminal of its own, its input and
// output relayed from the caller's.
func TestInteractiveTerminal(t *testing.T) {
	r := newTestRuntime(t, 12)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	// Prepare decides on a terminal from the process's standard input.
	saved := os.Stdin
	os.Stdin = tty
	defer func() { os.Stdin = saved }()
	p, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{app("tty")}, Net: []string{"none"}, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	// What the pod writes to the terminal, read from its master side. The
	// runtime's relay keeps reading the terminal after Run (as it would a
	// user's until the process exits), so the reader never sees EOF: the
	// test waits for the text instead, then closes the master.
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	code, err := r.Run(context.Background(), p, RunOptions{Stdin: tty, Stdout: tty, Stderr: tty, Remove: true})
	if err != nil || code != 0 {
		t.Fatalf("run: exit %d, %v; output %q", code, err, output())
	}
	waitFor(t, func() bool { return strings.Contains(output(), "stdin is a terminal") }, "the app to say its stdin is a terminal")
}

// A named network comes from a CNI config in the machine's net.d, run
// through the standard plugins.
func TestCNINamedNetwork(t *testing.T) {
	r := newTestRuntime(t, 13)
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins in /usr/lib/cni (Debian's containernetworking-plugins)")
	}
	const bridge = "atollcni13"
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "testnet",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.252.13.0/24"}]],
              "dataDir": %q}}
  ]
}`, bridge, filepath.Join(t.TempDir(), "ipam"))
	netd := filepath.Join(r.opts.ConfigDir, "net.d")
	if err := os.MkdirAll(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(netd, "10-testnet.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := r.run(PodOptions{Apps: []AppOptions{app("addrs")}, Net: []string{"testnet"}}, RunOptions{Remove: true})
	if code != 0 || !strings.Contains(out, "eth0 10.252.13.") {
		t.Fatalf("addrs on testnet: exit %d, output %q; want eth0 in 10.252.13.0/24", code, out)
	}
	// The kernel deletes the veth with the pod's namespace, a moment after.
	waitFor(t, func() bool {
		links, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).Output()
		return len(bytes.TrimSpace(links)) == 0
	}, "the pod's veth on "+bridge+" to go")
	p, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{app("true")}, Net: []string{"nosuchnet"}})
	if err == nil {
		code, err := r.Run(context.Background(), p, RunOptions{Remove: true})
		if err == nil {
			t.Errorf("a pod on an unknown network ran (exit %d)", code)
		} else if !strings.Contains(err.Error(), "nosuchnet") {
			t.Errorf("unknown network: %v, want the error to name it", err)
		}
	} else if !strings.Contains(err.Error(), "nosuchnet") {
		t.Errorf("unknown network: %v, want the error to name it", err)
	}
}

// An image imported from a layout must be signed by a key trusted for its
// name, unless the check is turned off.
func TestSignedImages(t *testing.T) {
	r := newTestRuntime(t, 14)
	layout := imagetest.WriteLayout(t, filepath.Join(t.TempDir(), "layout"), imagetest.TestApp(t), "example.com/signed/app:1")
	ctx := context.Background()
	opts := func(insecure bool) PodOptions {
		o := PodOptions{Apps: []AppOptions{{Image: layout, Args: []string{"true"}, ArgsSet: true}}, Net: []string{"none"}}
		o.Insecure.Image = insecure
		return o
	}
	if _, err := r.Prepare(ctx, opts(false)); err == nil || !strings.Contains(err.Error(), "no signature") {
		t.Fatalf("unsigned image: %v, want a refusal saying there is no signature", err)
	}

	signer, err := openpgp.NewEntity("signer", "test", "signer@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := manifestDigest(t, layout)
	var sig bytes.Buffer
	manifest, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", id))
	if err != nil {
		t.Fatal(err)
	}
	if err := openpgp.ArmoredDetachSign(&sig, signer, bytes.NewReader(manifest), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layout, "blobs", "sha256", id+".asc"), sig.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = r.Prepare(ctx, opts(false))
	if !errors.Is(err, trust.ErrNoKey) && !errors.Is(err, trust.ErrUntrustedSigner) {
		t.Fatalf("image signed by an untrusted key: %v, want ErrNoKey or ErrUntrustedSigner", err)
	}

	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := r.Trust.Trust("example.com/signed", &pub); err != nil {
		t.Fatal(err)
	}
	p, err := r.Prepare(ctx, opts(false))
	if err != nil {
		t.Fatalf("image signed by a trusted key: %v", err)
	}
	p.Remove()

	// A trusted key for another prefix does not cover the image.
	other := imagetest.WriteLayout(t, filepath.Join(t.TempDir(), "other"), imagetest.TestApp(t), "example.com/other/app:1")
	otherID := manifestDigest(t, other)
	otherManifest, _ := os.ReadFile(filepath.Join(other, "blobs", "sha256", otherID))
	sig.Reset()
	openpgp.ArmoredDetachSign(&sig, signer, bytes.NewReader(otherManifest), nil)
	os.WriteFile(filepath.Join(other, "blobs", "sha256", otherID+".asc"), sig.Bytes(), 0o644)
	o := opts(false)
	o.Apps[0].Image = other
	if _, err := r.Prepare(ctx, o); err == nil {
		t.Error("an image signed by a key trusted only for example.com/signed was accepted as example.com/other/app")
	}
	if _, err := r.Prepare(ctx, func() PodOptions { o.Insecure.Image = true; return o }()); err != nil {
		t.Errorf("--insecure-options=image: %v", err)
	}
}

// manifestDigest is the hex digest of the one image in a layout.
func manifestDigest(t *testing.T, layout string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), `"digest":"sha256:`)
	if !ok {
		_, after, ok = strings.Cut(string(data), `"digest": "sha256:`)
	}
	if !ok || len(after) < 64 {
		t.Fatalf("no manifest digest in %s", data)
	}
	return after[:64]
}

// Pods started at once get addresses of their own and leave nothing.
func TestConcurrentPods(t *testing.T) {
	r := newTestRuntime(t, 15)
	const n = 8
	var wg sync.WaitGroup
	addrs := make([]string, n)
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The second app keeps every pod up while the others start.
			show, hold := app("addrs"), app("sleep", "1")
			show.Name, hold.Name = "addrs", "hold"
			p, err := r.Prepare(context.Background(), PodOptions{Apps: []AppOptions{show, hold}})
			if err != nil {
				t.Errorf("pod %d: prepare: %v", i, err)
				return
			}
			out, _ := os.CreateTemp(t.TempDir(), "out")
			defer out.Close()
			codes[i], err = r.Run(context.Background(), p, RunOptions{Stdout: out, Stderr: out, Remove: true})
			if err != nil {
				t.Errorf("pod %d: run: %v", i, err)
			}
			data, _ := os.ReadFile(out.Name())
			for _, l := range strings.Split(string(data), "\n") {
				if ip, ok := strings.CutPrefix(l, "eth0 "); ok && !strings.Contains(ip, ":") {
					addrs[i] = ip
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, a := range addrs {
		ip, _, err := net.ParseCIDR(a)
		if codes[i] != 0 || err != nil || !strings.HasPrefix(ip.String(), "10.251.15.") {
			t.Errorf("pod %d: exit %d, address %q; want 0 and one in 10.251.15.0/24", i, codes[i], a)
		}
		if seen[a] {
			t.Errorf("address %s given to two pods", a)
		}
		seen[a] = true
	}
	if entries, _ := r.Pods.List(); len(entries) != 0 {
		t.Errorf("%d pods left after --rm", len(entries))
	}
	// The kernel deletes the veths with the pods' namespaces, a moment
	// after the pods.
	waitFor(t, func() bool {
		links, _ := exec.Command("ip", "-o", "link", "show", "master", "atollrt15").Output()
		return len(bytes.TrimSpace(links)) == 0
	}, "the pods' veths to go")
}
