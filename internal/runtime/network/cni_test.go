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
	"testing"

	"github.com/vishvananda/netlink"
)

// cniNetwork writes a bridge + host-local network into cfg.ConfDir, with
// its own bridge (atollcni<n>) and subnet (10.99.<n>.0/24), and returns the
// host-local data directory.
func cniNetwork(t *testing.T, cfg Config, file, name string, n int, withPortmap bool) (bridge, subnet, dataDir string) {
	t.Helper()
	bridge = fmt.Sprintf("atollcni%d", n)
	subnet = fmt.Sprintf("10.99.%d.0/24", n)
	dataDir = filepath.Join(t.TempDir(), "ipam")
	writeConf(t, cfg.ConfDir, file, bridgeConflist(name, bridge, subnet, dataDir, false, withPortmap))
	guardBridge(t, bridge)
	t.Cleanup(func() { deleteLink(t, bridge) })
	return bridge, subnet, dataDir
}

func podAddrs(t *testing.T, ns, ifName string) []string {
	t.Helper()
	var got []string
	err := inNS(ns, func() error {
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			got = append(got, a.IPNet.String())
		}
		return err
	})
	if err != nil {
		t.Fatalf("addresses of %s in the pod: %v", ifName, err)
	}
	return got
}

func TestCNIBridge(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 9)
	_, subnet, dataDir := cniNetwork(t, cfg, "10-testnet.conflist", "testnet", 10, false)
	_, ipnet, _ := net.ParseCIDR(subnet)
	ns := newNS(t)
	id := newPodID(t)

	atts, err := Setup(ctx, cfg, id, ns, []string{"testnet"}, nil)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if len(atts) != 1 || atts[0].Network != "testnet" || atts[0].IfName != "eth0" || !ipnet.Contains(atts[0].IP.IP) {
		t.Fatalf("Setup = %+v, want one attachment to testnet on eth0 in %s", atts, subnet)
	}
	a := atts[0]
	if got := podAddrs(t, ns, "eth0"); len(got) != 1 || got[0] != a.IP.String() {
		t.Errorf("eth0 addresses %v, want [%s]", got, &a.IP)
	}
	if !a.Gateway.Equal(net.ParseIP("10.99.10.1")) {
		t.Errorf("gateway %v, want 10.99.10.1", a.Gateway)
	}
	lease := filepath.Join(dataDir, "testnet", a.IP.IP.String())
	if _, err := os.Stat(lease); err != nil {
		t.Errorf("host-local lease: %v", err)
	}
	if got, err := Attachments(cfg, id); err != nil || len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(a) {
		t.Errorf("Attachments = %v, %v; want [%v]", got, err, a)
	}

	deleteNS(ns)
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Fatalf("Teardown after the namespace is gone: %v", err)
	}
	if _, err := os.Stat(lease); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host-local lease after Teardown: %v, want it released", err)
	}
	if files := dirEntries(t, filepath.Join(cfg.StateDir, "cni", "results")); len(files) != 0 {
		t.Errorf("CNI cache after Teardown: %v, want empty", files)
	}
	if files := dirEntries(t, filepath.Join(cfg.StateDir, "pods")); len(files) != 0 {
		t.Errorf("pods/ after Teardown: %v, want empty", files)
	}
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
}

// The built-in network and a CNI one: eth0 and eth1.
func TestCNIAfterDefault(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 11)
	_, subnet, dataDir := cniNetwork(t, cfg, "20-second.json", "second", 12, false)
	_, ipnet, _ := net.ParseCIDR(subnet)
	ns := newNS(t)
	id := newPodID(t)
	atts, err := Setup(ctx, cfg, id, ns, []string{"default", "second"}, nil)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if len(atts) != 2 || atts[0].IfName != "eth0" || atts[1].IfName != "eth1" || atts[1].Network != "second" || !ipnet.Contains(atts[1].IP.IP) {
		t.Fatalf("Setup = %+v, want default on eth0 and second on eth1 in %s", atts, subnet)
	}
	if got := podAddrs(t, ns, "eth1"); len(got) != 1 || got[0] != atts[1].IP.String() {
		t.Errorf("eth1 addresses %v, want [%s]", got, &atts[1].IP)
	}
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	for _, f := range dirEntries(t, filepath.Join(dataDir, "second")) {
		if net.ParseIP(f) != nil {
			t.Errorf("host-local lease %s after Teardown, want none", f)
		}
	}
	if !hostVethGone(id) {
		t.Errorf("built-in veth after Teardown")
	}
}

// A CNI config named "default" replaces the built-in network.
func TestCNIDefaultReplacesBuiltin(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t, 13)
	_, subnet, _ := cniNetwork(t, cfg, "10-default.conflist", "default", 14, false)
	_, ipnet, _ := net.ParseCIDR(subnet)
	ns := newNS(t)
	id := newPodID(t)
	atts, err := Setup(ctx, cfg, id, ns, []string{"default"}, nil)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { Teardown(ctx, cfg, id, ns) })
	if !ipnet.Contains(atts[0].IP.IP) {
		t.Errorf("address %s, want one of the CNI network's %s", &atts[0].IP, subnet)
	}
	if _, err := netlink.LinkByName(cfg.Default.Bridge); err == nil {
		t.Errorf("built-in bridge %s made, want the CNI network only", cfg.Default.Bridge)
	}
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Errorf("Teardown: %v", err)
	}
}

func TestCNIConfigs(t *testing.T) {
	dir := t.TempDir()
	writeConf(t, dir, "10-b.conflist", bridgeConflist("b", "brb", "10.99.90.0/24", "/nonexistent", false, true))
	writeConf(t, dir, "20-a.conf", `{"cniVersion": "1.0.0", "name": "a", "type": "bridge"}`)
	writeConf(t, dir, "30-b.conf", `{"cniVersion": "1.0.0", "name": "b", "type": "ptp"}`)
	writeConf(t, dir, "40-broken.json", `{"name": `)
	writeConf(t, dir, "50-ignored.txt", `{}`)
	c, err := loadCNIConfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.names, ","); got != "b,a" {
		t.Errorf("networks %q, want %q (file order, first of a name wins)", got, "b,a")
	}
	if p := c.byName["b"].Plugins; len(p) != 2 || p[0].Network.Type != "bridge" || !hasPortMappings(c.byName["b"]) {
		t.Errorf("b: plugins %v, want bridge and portmap from 10-b.conflist", p)
	}
	if l := c.byName["a"]; len(l.Plugins) != 1 || l.Plugins[0].Network.Type != "bridge" || hasPortMappings(l) {
		t.Errorf("a: %+v, want a list of one bridge plugin", l)
	}
	d := c.describe(dir)
	if !strings.Contains(d, "available: default, b, a") || !strings.Contains(d, "40-broken.json") {
		t.Errorf("describe = %q, want the networks and the broken file", d)
	}

	// Ports need a portmap on the first network.
	e, err := newEnv(Config{ConfDir: dir, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.plan("p", []string{"a"}, true); !errors.Is(err, ErrBadPort) {
		t.Errorf("ports on a network without portmap: %v, want ErrBadPort", err)
	}
	if _, err := e.plan("p", []string{"b", "a"}, true); err != nil {
		t.Errorf("ports on b then a: %v", err)
	}
	if _, err := e.plan("p", []string{"c"}, false); !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), "available: default, b, a") {
		t.Errorf("unknown network: %v, want ErrUnknownNetwork listing default, b, a", err)
	}
}

// Ports on a CNI network go to its portmap plugin.
func TestCNIPortmap(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	before := iptablesSaveText(t)
	if strings.Contains(before, "CNI-HOSTPORT-DNAT") {
		t.Skip("CNI's portmap chains exist already: not the test's to clean up")
	}
	t.Cleanup(func() { removePortmapChains(t) })
	cfg := testConfig(t, 15)
	cniNetwork(t, cfg, "10-pm.conflist", "pm", 16, true)
	ns := newNS(t)
	id := newPodID(t)
	hp := freePort(t)
	if _, err := Setup(ctx, cfg, id, ns, []string{"pm"}, []PortMapping{{ContainerPort: 80, HostPort: hp, Protocol: "tcp"}}); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	dport := fmt.Sprintf("--dport %d ", hp)
	if s := iptablesSaveText(t); !strings.Contains(s, dport) {
		t.Errorf("no portmap rule for host port %d after Setup", hp)
	}
	deleteNS(ns)
	if err := Teardown(ctx, cfg, id, ns); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if s := iptablesSaveText(t); strings.Contains(s, dport) {
		t.Errorf("portmap rule for host port %d after Teardown", hp)
	}
}

// removePortmapChains removes what CNI's portmap leaves for good: its
// chains and the jumps to them.
func removePortmapChains(t *testing.T) {
	t.Helper()
	var lines []string
	for l := range strings.Lines(iptablesSaveText(t)) {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "*") {
			lines = append(lines, "#"+l)
		}
		if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j CNI-HOSTPORT-") && !strings.HasPrefix(l, "-A CNI-") {
			lines = append(lines, "-D"+strings.TrimPrefix(l, "-A"))
		}
	}
	var del []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "#") {
			del = append(del, l)
		}
	}
	for _, c := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"} {
		del = append(del, "-F "+c, "-X "+c)
	}
	if err := iptablesRestore(context.Background(), map[string][]string{"nat": del}); err != nil {
		t.Errorf("remove portmap chains: %v", err)
	}
	if out, err := exec.Command("iptables-save", "-t", "nat").Output(); err == nil && strings.Contains(string(out), "CNI-HOSTPORT") {
		t.Errorf("portmap chains left:\n%s", out)
	}
}
