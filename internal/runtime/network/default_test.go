package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestDefaultSetupTeardown(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 1)
	ns := newNS(t)
	id := newPodID(t)

	atts, err := Setup(ctx, cfg, id, ns, []string{"default"}, nil)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if len(atts) != 1 {
		t.Fatalf("Setup gave %d attachments, want 1", len(atts))
	}
	a := atts[0]
	_, subnet, _ := net.ParseCIDR(cfg.Default.Subnet)
	gw := net.ParseIP("10.99.1.1").To4()
	if a.Network != "default" || a.IfName != "eth0" {
		t.Errorf("attachment %s on %s, want default on eth0", a.Network, a.IfName)
	}
	if !subnet.Contains(a.IP.IP) || a.IP.IP.Equal(gw) || a.IP.IP.Equal(subnet.IP) || a.IP.String() != a.IP.IP.String()+"/24" {
		t.Errorf("address %s, want a pod address of %s", &a.IP, subnet)
	}
	if !a.Gateway.Equal(gw) {
		t.Errorf("gateway %s, want %s", a.Gateway, gw)
	}

	// Inside the namespace: eth0 up with the address, lo up, default route
	// via the gateway.
	nsh, err := netns.GetFromPath(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in the pod: %v", err)
	}
	if eth0.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth0 flags %v, want up", eth0.Attrs().Flags)
	}
	addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != a.IP.String() {
		t.Errorf("eth0 addresses %v (%v), want [%s]", addrs, err, &a.IP)
	}
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo: %v, flags %v; want up", err, lo.Attrs().Flags)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var def *netlink.Route
	for i, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			def = &routes[i]
		}
	}
	if def == nil || !def.Gw.Equal(gw) || def.LinkIndex != eth0.Attrs().Index {
		t.Errorf("default route %v, want via %s on eth0", def, gw)
	}

	// On the host: the veth on the bridge, named and labelled for the pod.
	veth, err := netlink.LinkByName(hostVethName(id))
	if err != nil {
		t.Fatalf("host veth: %v", err)
	}
	br, err := netlink.LinkByName(cfg.Default.Bridge)
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if veth.Attrs().MasterIndex != br.Attrs().Index || veth.Attrs().Alias != "atoll pod "+id {
		t.Errorf("veth master %d alias %q, want %d %q", veth.Attrs().MasterIndex, veth.Attrs().Alias, br.Attrs().Index, "atoll pod "+id)
	}
	addrFile := filepath.Join(cfg.StateDir, "default", a.IP.IP.String())
	if b, err := os.ReadFile(addrFile); err != nil || string(b) != id {
		t.Errorf("address file %s holds %q (%v), want %q", addrFile, b, err, id)
	}

	got, err := Attachments(cfg, id)
	if err != nil || len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(a) {
		t.Errorf("Attachments = %v, %v; want [%v]", got, err, a)
	}

	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	if !hostVethGone(id) {
		t.Errorf("veth %s still there after Teardown", hostVethName(id))
	}
	if _, err := h.LinkByName("eth0"); err == nil {
		t.Errorf("eth0 still in the pod after Teardown")
	}
	if files := dirEntries(t, filepath.Join(cfg.StateDir, "default")); len(files) != 0 {
		t.Errorf("address files after Teardown: %v, want none", files)
	}
	if files := dirEntries(t, filepath.Join(cfg.StateDir, "pods")); len(files) != 0 {
		t.Errorf("pod files after Teardown: %v, want none", files)
	}
	if got, err := Attachments(cfg, id); got != nil || err != nil {
		t.Errorf("Attachments after Teardown = %v, %v; want nil, nil", got, err)
	}
	// The bridge stays for other pods.
	if _, err := netlink.LinkByName(cfg.Default.Bridge); err != nil {
		t.Errorf("bridge after Teardown: %v, want it kept", err)
	}
}

func TestDefaultConnectivity(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 2)
	nsA, nsB := newNS(t), newNS(t)
	idA, idB := newPodID(t), newPodID(t)
	attA, err := Setup(ctx, cfg, idA, nsA, []string{"default"}, nil)
	if err != nil {
		t.Fatalf("Setup A: %v", err)
	}
	t.Cleanup(func() { Teardown(ctx, cfg, idA, nsA) })
	attB, err := Setup(ctx, cfg, idB, nsB, []string{"default"}, nil)
	if err != nil {
		t.Fatalf("Setup B: %v", err)
	}
	t.Cleanup(func() { Teardown(ctx, cfg, idB, nsB) })
	serve(t, nsA, "tcp", ":7000", "pod A")
	serve(t, nsB, "tcp", ":7000", "pod B")
	ipA, ipB := attA[0].IP.IP.String(), attB[0].IP.IP.String()

	for _, c := range []struct{ from, fromName, to, want string }{
		{nsB, "pod B", ipA, "pod A"},
		{nsA, "pod A", ipB, "pod B"},
		{"", "the host", ipA, "pod A"},
		{"", "the host", ipB, "pod B"},
	} {
		got, err := fetch(c.from, net.JoinHostPort(c.to, "7000"))
		if err != nil || got != c.want {
			t.Errorf("from %s to %s:7000: got %q, %v; want %q", c.fromName, c.to, got, err, c.want)
		}
	}
	for _, c := range []struct{ id, ns string }{{idA, nsA}, {idB, nsB}} {
		if err := Teardown(ctx, cfg, c.id, c.ns); err != nil {
			t.Errorf("Teardown %s: %v", c.id, err)
		}
	}
}

func TestDefaultConcurrentSetup(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 3) // the bridge does not exist yet: all race to make it
	const n = 20
	nss := make([]string, n)
	ids := make([]string, n)
	for i := range n {
		nss[i], ids[i] = newNS(t), newPodID(t)
	}
	atts := make([][]Attachment, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { atts[i], errs[i] = Setup(ctx, cfg, ids[i], nss[i], []string{"default"}, nil) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for i := range n {
			Teardown(ctx, cfg, ids[i], nss[i])
		}
	})
	seen := map[string]string{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Setup %d: %v", i, errs[i])
			continue
		}
		ip := atts[i][0].IP.IP.String()
		if other, dup := seen[ip]; dup {
			t.Errorf("address %s given to pods %s and %s", ip, other, ids[i])
		}
		seen[ip] = ids[i]
	}
	if files := dirEntries(t, filepath.Join(cfg.StateDir, "default")); len(files) != n {
		t.Errorf("%d address files, want %d: %v", len(files), n, files)
	}
	for i := range n {
		wg.Go(func() { errs[i] = Teardown(ctx, cfg, ids[i], nss[i]) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Teardown %d: %v", i, errs[i])
		}
		if !hostVethGone(ids[i]) {
			t.Errorf("veth of pod %d still there", i)
		}
	}
	if files := dirEntries(t, filepath.Join(cfg.StateDir, "default")); len(files) != 0 {
		t.Errorf("address files after Teardown: %v, want none", files)
	}
}

func TestTeardownAfterNamespaceDeleted(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 4)
	ns := newNS(t)
	id := newPodID(t)
	hp := freePort(t)
	if _, err := Setup(ctx, cfg, id, ns, []string{"default"}, []PortMapping{{ContainerPort: 80, HostPort: hp, Protocol: "tcp"}}); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if !strings.Contains(iptablesSaveText(t), id) {
		t.Fatalf("no iptables rule names pod %s after Setup with a port", id)
	}
	deleteNS(ns) // kill -9 of the whole pod
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if !hostVethGone(id) {
		t.Errorf("veth %s still there", hostVethName(id))
	}
	for _, d := range []string{"default", "ports", "pods"} {
		if files := dirEntries(t, filepath.Join(cfg.StateDir, d)); len(files) != 0 {
			t.Errorf("%s/ after Teardown: %v, want empty", d, files)
		}
	}
	if strings.Contains(iptablesSaveText(t), id) {
		t.Errorf("iptables rules of pod %s after Teardown", id)
	}
	if err := Teardown(ctx, cfg, id, ""); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
}

func TestPortMapping(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 5)
	hp := freePort(t)
	ports := []PortMapping{{ContainerPort: 80, HostPort: hp, Protocol: "tcp"}}
	nsA := newNS(t)
	idA := newPodID(t)
	if _, err := Setup(ctx, cfg, idA, nsA, []string{"default"}, ports); err != nil {
		t.Fatalf("Setup A: %v", err)
	}
	t.Cleanup(func() { Teardown(ctx, cfg, idA, nsA) })
	serve(t, nsA, "tcp", ":80", "pod A")

	hostPort := fmt.Sprint(hp)
	for _, addr := range []string{"127.0.0.1", "10.99.5.1"} {
		got, err := fetch("", net.JoinHostPort(addr, hostPort))
		if err != nil || got != "pod A" {
			t.Errorf("host to %s:%s: got %q, %v; want %q", addr, hostPort, got, err, "pod A")
		}
	}
	// Hairpin: another pod through the host port.
	nsC := newNS(t)
	idC := newPodID(t)
	if _, err := Setup(ctx, cfg, idC, nsC, []string{"default"}, nil); err != nil {
		t.Fatalf("Setup C: %v", err)
	}
	t.Cleanup(func() { Teardown(ctx, cfg, idC, nsC) })
	if got, err := fetch(nsC, net.JoinHostPort("10.99.5.1", hostPort)); err != nil || got != "pod A" {
		t.Errorf("pod C to the gateway's port %s: got %q, %v; want %q", hostPort, got, err, "pod A")
	}

	// The port is taken while A lives; the refused pod leaves nothing.
	nsB := newNS(t)
	idB := newPodID(t)
	_, err := Setup(ctx, cfg, idB, nsB, []string{"default"}, ports)
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), idA) {
		t.Fatalf("Setup B on A's port: got %v, want ErrPortInUse naming pod %s", err, idA)
	}
	if s := iptablesSaveText(t); strings.Contains(s, idB) {
		t.Errorf("iptables rules of refused pod B")
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "pods", idB+".json")); !os.IsNotExist(err) {
		t.Errorf("record of refused pod B: %v, want none", err)
	}

	if err := Teardown(ctx, cfg, idA, nsA); err != nil {
		t.Fatalf("Teardown A: %v", err)
	}
	if strings.Contains(iptablesSaveText(t), idA) {
		t.Errorf("iptables rules of pod A after Teardown")
	}
	if got, err := fetch("", net.JoinHostPort("127.0.0.1", hostPort)); err == nil {
		t.Errorf("host to 127.0.0.1:%s after Teardown: got %q, want an error", hostPort, got)
	}

	// A dead pod's port goes to the next pod that asks (the dead pod is
	// torn down as gc would).
	if _, err := Setup(ctx, cfg, idB, nsB, []string{"default"}, ports); err != nil {
		t.Fatalf("Setup B after A's Teardown: %v", err)
	}
	deleteNS(nsB)
	nsD := newNS(t)
	idD := newPodID(t)
	if _, err := Setup(ctx, cfg, idD, nsD, []string{"default"}, ports); err != nil {
		t.Fatalf("Setup D on dead B's port: %v", err)
	}
	t.Cleanup(func() { Teardown(ctx, cfg, idD, nsD) })
	if s := iptablesSaveText(t); strings.Contains(s, idB) {
		t.Errorf("iptables rules of dead pod B after D took its port")
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "pods", idB+".json")); !os.IsNotExist(err) {
		t.Errorf("record of dead pod B: %v, want none", err)
	}
	serve(t, nsD, "tcp", ":80", "pod D")
	if got, err := fetch("", net.JoinHostPort("127.0.0.1", hostPort)); err != nil || got != "pod D" {
		t.Errorf("host to 127.0.0.1:%s: got %q, %v; want %q", hostPort, got, err, "pod D")
	}
	for _, c := range []struct{ id, ns string }{{idC, nsC}, {idD, nsD}} {
		if err := Teardown(ctx, cfg, c.id, c.ns); err != nil {
			t.Errorf("Teardown %s: %v", c.id, err)
		}
	}
}

func TestSetupTeardownCycles(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 6)
	ns := newNS(t)
	tcp := PortMapping{ContainerPort: 80, HostPort: freePort(t), Protocol: "tcp"}
	udp := PortMapping{ContainerPort: 53, HostPort: freePort(t), Protocol: "udp"}
	var ids []string
	for i := range 100 {
		id := newPodID(t)
		ids = append(ids, id)
		ports := []PortMapping{tcp}
		if i%10 == 5 {
			ports = append(ports, udp)
		}
		podNS := ns
		if i%10 != 0 {
			// Most pods exit before their Teardown, as they do; every tenth
			// is torn down alive.
			podNS = filepath.Join(t.TempDir(), "netns")
			if err := createNS(podNS); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Setup(ctx, cfg, id, podNS, []string{"default"}, ports); err != nil {
			deleteNS(podNS)
			t.Fatalf("cycle %d: Setup: %v", i, err)
		}
		if podNS != ns {
			deleteNS(podNS)
		}
		if err := Teardown(ctx, cfg, id, podNS); err != nil {
			t.Fatalf("cycle %d: Teardown: %v", i, err)
		}
	}
	for _, id := range ids {
		if !hostVethGone(id) {
			t.Errorf("veth %s of pod %s left", hostVethName(id), id)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Alias, "atoll pod ") {
			for _, id := range ids {
				if l.Attrs().Alias == "atoll pod "+id {
					t.Errorf("link %s of pod %s left", l.Attrs().Name, id)
				}
			}
		}
	}
	for _, d := range []string{"default", "ports", "pods"} {
		if files := dirEntries(t, filepath.Join(cfg.StateDir, d)); len(files) != 0 {
			t.Errorf("%s/ after 100 cycles: %v, want empty", d, files)
		}
	}
	s := iptablesSaveText(t)
	for _, id := range ids {
		if strings.Contains(s, id) {
			t.Errorf("iptables rules of pod %s left", id)
		}
	}
}

func TestMasquerade(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 7)
	cfg.Default.IPMasq = true
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	orig, err := os.ReadFile(fwd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(fwd, orig, 0o644); err != nil {
			t.Errorf("restore ip_forward: %v", err)
		}
	})
	if err := os.WriteFile(fwd, []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Two pods at once: the rule is added once. No traffic is sent.
	nss := []string{newNS(t), newNS(t)}
	ids := []string{newPodID(t), newPodID(t)}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { _, errs[i] = Setup(ctx, cfg, ids[i], nss[i], []string{"default"}, nil) })
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("Setup %d: %v", i, errs[i])
		}
		t.Cleanup(func() { Teardown(ctx, cfg, ids[i], nss[i]) })
	}
	if b, _ := os.ReadFile(fwd); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward = %q, want 1", b)
	}
	count := func() int {
		n := 0
		for l := range strings.Lines(iptablesSaveText(t)) {
			if strings.HasPrefix(l, "-A POSTROUTING -s 10.99.7.0/24 ! -d 10.99.7.0/24 ") && strings.Contains(l, "-j MASQUERADE") {
				n++
			}
		}
		return n
	}
	if n := count(); n != 1 {
		t.Errorf("%d masquerade rules for 10.99.7.0/24, want 1", n)
	}
	for i := range 2 {
		if err := Teardown(ctx, cfg, ids[i], nss[i]); err != nil {
			t.Errorf("Teardown %d: %v", i, err)
		}
	}
	if n := count(); n != 1 {
		t.Errorf("%d masquerade rules after Teardown, want 1 (kept for other pods)", n)
	}
}

func TestSetupErrors(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 8)
	ns := newNS(t)

	id := newPodID(t)
	_, err := Setup(ctx, cfg, id, ns, []string{"default", "nosuch"}, nil)
	if !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), "available: default") {
		t.Errorf("unknown network: got %v, want ErrUnknownNetwork listing default", err)
	}
	for _, name := range []string{"host", "none"} {
		if _, err := Setup(ctx, cfg, id, ns, []string{name}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("network %s: got %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Setup(ctx, cfg, "../x", ns, []string{"default"}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("pod ID ../x: got %v, want ErrInvalid", err)
	}

	// Undo: eth0 already exists in the namespace, so the veth cannot be
	// made after the address is taken.
	if err := inNS(ns, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "eth0"
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	}); err != nil {
		t.Fatal(err)
	}
	hp := freePort(t)
	_, err = Setup(ctx, cfg, id, ns, []string{"default"}, []PortMapping{{ContainerPort: 80, HostPort: hp}})
	if err == nil {
		t.Fatalf("Setup with eth0 taken: no error")
	}
	for _, d := range []string{"default", "ports", "pods"} {
		if files := dirEntries(t, filepath.Join(cfg.StateDir, d)); len(files) != 0 {
			t.Errorf("%s/ after failed Setup: %v, want empty", d, files)
		}
	}
	if !hostVethGone(id) {
		t.Errorf("veth left by failed Setup")
	}
	if strings.Contains(iptablesSaveText(t), id) {
		t.Errorf("iptables rules left by failed Setup")
	}

	// Twice for one pod.
	ns2 := newNS(t)
	id2 := newPodID(t)
	if _, err := Setup(ctx, cfg, id2, ns2, []string{"default"}, nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { Teardown(ctx, cfg, id2, ns2) })
	if _, err := Setup(ctx, cfg, id2, ns2, []string{"default"}, nil); !errors.Is(err, ErrAlreadySetUp) {
		t.Errorf("second Setup: got %v, want ErrAlreadySetUp", err)
	}
	if atts, err := Attachments(cfg, id2); err != nil || len(atts) != 1 {
		t.Errorf("Attachments after a refused second Setup = %v, %v; want the first one's", atts, err)
	}
	if err := Teardown(ctx, cfg, id2, ns2); err != nil {
		t.Errorf("Teardown: %v", err)
	}
}

func TestLoopbackUp(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	if err := LoopbackUp(ns); err != nil {
		t.Fatalf("LoopbackUp: %v", err)
	}
	err := inNS(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo flags %v, want up", lo.Attrs().Flags)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// The way stage0 and gc use it: the namespace is a process's, named by
// /proc/<pid>/ns/net, and the process is killed.
func TestPodProcessKilled(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 16)
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ns := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	id := newPodID(t)
	hp := freePort(t)
	atts, err := Setup(ctx, cfg, id, ns, []string{"default"}, []PortMapping{{ContainerPort: 80, HostPort: hp}})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if got, err := Attachments(cfg, id); err != nil || len(got) != 1 || !got[0].IP.IP.Equal(atts[0].IP.IP) {
		t.Errorf("Attachments = %v, %v; want %v", got, err, atts)
	}
	cmd.Process.Kill() // kill -9
	cmd.Wait()
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if !hostVethGone(id) {
		t.Errorf("veth %s left", hostVethName(id))
	}
	for _, d := range []string{"default", "ports", "pods"} {
		if files := dirEntries(t, filepath.Join(cfg.StateDir, d)); len(files) != 0 {
			t.Errorf("%s/ after Teardown: %v, want empty", d, files)
		}
	}
	if strings.Contains(iptablesSaveText(t), id) {
		t.Errorf("iptables rules of pod %s after Teardown", id)
	}
}

// Shared rules that someone flushed come back with the next pod that
// publishes a port, even right after a check.
func TestHostPortRulesComeBack(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 17)
	ns := newNS(t)
	ports := []PortMapping{{ContainerPort: 80, HostPort: freePort(t), Protocol: "tcp"}}
	idA := newPodID(t)
	if _, err := Setup(ctx, cfg, idA, ns, []string{"default"}, ports); err != nil {
		t.Fatalf("Setup A: %v", err)
	}
	if err := Teardown(ctx, cfg, idA, ns); err != nil {
		t.Fatalf("Teardown A: %v", err)
	}
	removeHostPortChainIfUnused(t) // the flush
	if strings.Contains(iptablesSaveText(t), ":"+ChainHostPorts+" ") {
		t.Skipf("%s still there: another pod's rules are in it", ChainHostPorts)
	}
	idB := newPodID(t)
	if _, err := Setup(ctx, cfg, idB, ns, []string{"default"}, ports); err != nil {
		t.Fatalf("Setup B after the flush: %v", err)
	}
	s := iptablesSaveText(t)
	for _, want := range []string{":" + ChainHostPorts + " ", "-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment \"atoll host ports\"", "--comment \"atoll pod " + idB + "\" -j DNAT"} {
		if !strings.Contains(s, want) {
			t.Errorf("iptables after Setup B lacks %q", want)
		}
	}
	if err := Teardown(ctx, cfg, idB, ns); err != nil {
		t.Errorf("Teardown B: %v", err)
	}
}
