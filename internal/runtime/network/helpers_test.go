package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Network rules for these tests: traffic goes only to loopback and to
// namespaces the test made. Each test has its own bridge (atolltest<N>) and
// subnet (10.99.<N>.0/24), IPMasq is off wherever traffic runs, and a DROP
// rule keeps anything routed from a test bridge from leaving the host even
// though the host forwards.

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth and iptables")
	}
}

func newPodID(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// testConfig gives test n its own state, bridge and subnet, and removes
// the bridge and every rule they got when the test ends.
func testConfig(t testing.TB, n int) Config {
	t.Helper()
	cfg := Config{
		ConfDir:  t.TempDir(),
		StateDir: stateDir(t),
		Default: DefaultNetwork{
			Bridge: fmt.Sprintf("atolltest%d", n),
			Subnet: fmt.Sprintf("10.99.%d.0/24", n),
		},
	}
	guardBridge(t, cfg.Default.Bridge)
	t.Cleanup(func() { cleanupDefault(t, cfg) })
	return cfg
}

// stateDir is a temporary directory on a tmpfs, as StateDir is on a
// machine (and a disk's journal, busy with others' writes, can stall the
// renames and links of every Setup), or on the disk when there is none.
func stateDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "atoll-net-test")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// guardBridge drops whatever the host would route from bridge elsewhere.
func guardBridge(t testing.TB, bridge string) {
	t.Helper()
	ctx := context.Background()
	comment := "atoll test " + bridge + " no egress"
	r := rule{table: "filter", chain: "FORWARD", insert: true, match: "-i " + bridge + " ! -o " + bridge, comment: comment, target: "-j DROP"}
	if err := iptablesRestore(ctx, map[string][]string{"filter": {r.line()}}); err != nil {
		t.Fatalf("egress guard for %s: %v", bridge, err)
	}
	t.Cleanup(func() {
		if err := deleteRules(ctx, comment); err != nil {
			t.Errorf("remove egress guard of %s: %v", bridge, err)
		}
	})
}

func cleanupDefault(t testing.TB, cfg Config) {
	t.Helper()
	ctx := context.Background()
	// Pods a failed test left behind.
	for _, f := range dirEntries(t, filepath.Join(cfg.StateDir, "pods")) {
		if id, ok := strings.CutSuffix(f, ".json"); ok {
			if err := Teardown(ctx, cfg, id, ""); err != nil {
				t.Errorf("teardown of leftover pod %s: %v", id, err)
			}
		}
	}
	deleteLink(t, cfg.Default.Bridge)
	var comments []string
	for _, r := range masqRules(cfg.Default.Subnet) {
		comments = append(comments, r.comment)
	}
	for _, r := range hostPortRules(cfg.Default.Bridge) {
		if r.table == "filter" { // the bridge's guard; the rest is shared
			comments = append(comments, r.comment)
		}
	}
	if err := deleteRules(ctx, comments...); err != nil {
		t.Errorf("remove rules of %s: %v", cfg.Default.Bridge, err)
	}
	removeHostPortChainIfUnused(t)
}

// removeHostPortChainIfUnused flushes the shared host port rules as an
// operator might, unless a pod (of this or another test package) has rules
// in the chain. The check is the kernel's: the jumps and the chain go in one
// iptables-restore, which deleting a non-empty chain fails as a whole.
func removeHostPortChainIfUnused(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	rs, err := iptablesSave(ctx)
	if err != nil {
		t.Errorf("iptables-save: %v", err)
		return
	}
	if !rs.table("nat").chains[ChainHostPorts] {
		return
	}
	del := map[string][]string{}
	for _, c := range []string{"atoll host ports", "atoll host ports masquerade"} {
		for table, lines := range rs.withComment(c) {
			del[table] = append(del[table], lines...)
		}
	}
	del["nat"] = append(del["nat"], "-X "+ChainHostPorts)
	_ = iptablesRestore(ctx, del) // fails while a pod's rules are in the chain
}

func deleteLink(t testing.TB, name string) {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		return
	}
	if err := netlink.LinkDel(l); err != nil {
		t.Errorf("delete %s: %v", name, err)
	}
}

// newNS makes a network namespace bind-mounted on a file, deleted when the
// test ends.
func newNS(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := createNS(path); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() { deleteNS(path) })
	return path
}

func createNS(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	f.Close()
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		return unix.Mount(src, path, "", unix.MS_BIND, "")
	})
	if err != nil {
		os.Remove(path)
	}
	return err
}

// onThread runs fn on a locked thread and puts the thread back in the
// test's namespace afterwards. A thread that cannot go back stays locked
// and ends with its goroutine (but the main thread is never ended, so it
// must go back).
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			errc <- errors.Join(err, serr)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// deleteNS unmounts and removes a namespace made by newNS; it dies when
// nothing else holds it (a socket in it does).
func deleteNS(path string) {
	_ = unix.Unmount(path, unix.MNT_DETACH)
	_ = os.Remove(path)
}

// inNS runs fn on a thread in the namespace at path.
func inNS(path string, fn func() error) error {
	return onThread(func() error {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return err
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// serve listens on addr in the namespace and answers each connection with
// reply; it stops when the test ends (the socket would keep the namespace
// alive).
func serve(t testing.TB, nsPath, network, addr, reply string) net.Listener {
	t.Helper()
	var l net.Listener
	err := inNS(nsPath, func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, nsPath, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, reply)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l
}

// fetch connects to addr (from the namespace at nsPath, or the host when
// it is "") and reads what the server says.
func fetch(nsPath, addr string) (string, error) {
	var got string
	do := func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	}
	var err error
	if nsPath == "" {
		err = do()
	} else {
		err = inNS(nsPath, do)
	}
	return got, err
}

func iptablesSaveText(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	return string(out)
}

// hostVethGone reports whether the pod's host-side veth is gone, waiting a
// little: a dead namespace takes its veth with it, but not at once.
func hostVethGone(podID string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := netlink.LinkByName(hostVethName(podID))
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func freePort(t testing.TB) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}
