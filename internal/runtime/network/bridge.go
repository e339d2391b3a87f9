package network

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// hostVethName names the host side of a pod's veth on the built-in
// network: "veth" and the first 11 hex digits of the pod's UUID (of a hash
// of the ID when it is not hex), so that `ip link` and gc can tell whose it
// is. The link's alias says "atoll pod <id>" in full.
func hostVethName(podID string) string {
	h := strings.ToLower(strings.ReplaceAll(podID, "-", ""))
	if len(h) < 11 || strings.Trim(h, "0123456789abcdef") != "" {
		sum := sha256.Sum256([]byte(podID))
		h = hex.EncodeToString(sum[:])
	}
	return "veth" + h[:11]
}

func vethAlias(podID string) string { return "atoll pod " + podID }

// macFor derives a MAC address from an IPv4 address (0a:58 and the four
// bytes, as CNI's bridge once did): an address handed to a new pod keeps its
// MAC, so neighbours' ARP caches stay right.
func macFor(ip net.IP) net.HardwareAddr {
	v4 := ip.To4()
	return net.HardwareAddr{0x0a, 0x58, v4[0], v4[1], v4[2], v4[3]}
}

func addToIP(ip net.IP, n uint32) net.IP {
	v := binary.BigEndian.Uint32(ip.To4()) + n
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, v)
	return out
}

// allocate takes the first free address of the subnet: one file per address
// under default/, created with O_CREAT|O_EXCL and holding the pod ID. The
// network, gateway (first) and broadcast addresses are never handed out.
// When all are taken, addresses of pods whose namespace is gone are
// reclaimed and the scan runs once more.
func (e *env) allocate(ctx context.Context, podID string) (net.IP, error) {
	ones, _ := e.subnet.Mask.Size()
	size := uint32(1) << (32 - ones)
	dir := e.paths.addrDir()
	var errs []error
	for pass := 0; pass < 2; pass++ {
		for i := uint32(2); i < size-1; i++ {
			ip := addToIP(e.subnet.IP, i)
			err := reserve(dir, ip.String(), podID)
			if err == nil {
				return ip, nil
			}
			if !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("allocate address: %w", err)
			}
		}
		if pass == 1 {
			break
		}
		// Full: reclaim from dead pods, then scan again.
		freed := false
		for i := uint32(2); i < size-1; i++ {
			ok, _, err := e.reclaim(ctx, dir, addToIP(e.subnet.IP, i).String(), podID)
			if err != nil {
				errs = append(errs, err)
			}
			freed = freed || ok
		}
		if !freed {
			break
		}
	}
	return nil, errors.Join(fmt.Errorf("%w in %s (every address is held by a live pod)", ErrNoAddress, e.subnet), errors.Join(errs...))
}

// setupDefault attaches the pod to the built-in network: an address, the
// bridge (created on first use), a veth pair whose pod side is made in the
// pod's namespace, and, when ports is not empty, the DNAT rules. The
// iptables work (an exec or two) runs while netlink does the rest.
func (e *env) setupDefault(ctx context.Context, rec *record, n *netRecord, ns netns.NsHandle, podNL *netlink.Handle, ports []PortMapping) (Attachment, error) {
	ip, err := e.allocate(ctx, rec.PodID)
	if err != nil {
		return Attachment{}, err
	}
	n.Addr = ip.String()
	if err := e.paths.writeRecord(rec); err != nil {
		os.Remove(filepath.Join(e.paths.addrDir(), n.Addr))
		n.Addr = ""
		return Attachment{}, err
	}
	att := Attachment{
		Network: n.Name,
		IfName:  n.IfName,
		IP:      net.IPNet{IP: ip, Mask: e.subnet.Mask},
		Gateway: e.gw,
	}

	var iptDone chan error
	if e.cfg.Default.IPMasq || len(ports) > 0 {
		iptDone = make(chan error, 1)
		podID := rec.PodID
		go func() {
			err := e.applyRules(ctx, podID, ip, ports)
			if err == nil {
				flushUDPConntrack(ports)
			}
			iptDone <- err
		}()
	}
	err = e.plumb(rec.PodID, n, ip, ns, podNL, len(ports) > 0)
	if iptDone != nil {
		err = errors.Join(err, <-iptDone)
	}
	if err != nil {
		return Attachment{}, err
	}
	return att, nil
}

// plumb does the netlink part of setupDefault.
func (e *env) plumb(podID string, n *netRecord, ip net.IP, ns netns.NsHandle, podNL *netlink.Handle, withPorts bool) error {
	host, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer host.Close()
	br, err := e.ensureBridge(host)
	if err != nil {
		return err
	}
	if withPorts {
		// Connections to 127.0.0.1:HOSTPORT are DNATed out of the bridge
		// with their loopback source (then masqueraded), as CNI's portmap
		// does; the guard rule in INPUT keeps pods off the host's loopback.
		if err := sysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1"); err != nil {
			return err
		}
	}
	if e.cfg.Default.IPMasq {
		if err := sysctl("net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
	}

	attrs := netlink.NewLinkAttrs()
	attrs.Name = n.HostVeth
	attrs.MasterIndex = br.Attrs().Index
	attrs.Flags = net.FlagUp
	attrs.MTU = e.cfg.Default.MTU
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         n.IfName,
		PeerHardwareAddr: macFor(ip),
		PeerNamespace:    netlink.NsFd(int(ns)),
	}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s (pod side %s): %w", n.HostVeth, n.IfName, err)
	}
	// The kernel ignores an alias given at creation.
	if err := host.LinkSetAlias(veth, vethAlias(podID)); err != nil {
		return fmt.Errorf("label veth %s: %w", n.HostVeth, err)
	}

	pod, err := podNL.LinkByName(n.IfName)
	if err != nil {
		return fmt.Errorf("find %s in the pod: %w", n.IfName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: e.subnet.Mask}}
	if err := podNL.AddrAdd(pod, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr.IPNet, n.IfName, err)
	}
	if err := podNL.LinkSetUp(pod); err != nil {
		return fmt.Errorf("bring %s up: %w", n.IfName, err)
	}
	route := &netlink.Route{LinkIndex: pod.Attrs().Index, Gw: e.gw}
	if err := podNL.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
		// EEXIST: an earlier network gave the pod its default route.
		return fmt.Errorf("default route via %s: %w", e.gw, err)
	}
	return nil
}

// ensureBridge creates the bridge if it is missing (two pods creating it at
// once both succeed), puts the gateway address on it and brings it up.
func (e *env) ensureBridge(host *netlink.Handle) (netlink.Link, error) {
	name := e.cfg.Default.Bridge
	br, err := host.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = e.cfg.Default.MTU
		// A fixed MAC: a bridge otherwise takes the lowest MAC of its
		// ports, and changes it as pods come and go.
		attrs.HardwareAddr = macFor(e.gw)
		if err := host.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		if br, err = host.LinkByName(name); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("%w: %s is a %s, not a bridge", ErrInvalid, name, br.Type())
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: e.gw, Mask: e.subnet.Mask}}
	if err := host.AddrAdd(br, gw); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("address %s on bridge %s: %w", gw.IPNet, name, err)
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := host.LinkSetUp(br); err != nil {
			return nil, fmt.Errorf("bring bridge %s up: %w", name, err)
		}
	}
	return br, nil
}

// teardownDefault deletes the pod's veth (see deleteHostVeth) and releases
// its address. The bridge stays.
func (e *env) teardownDefault(podID string, n *netRecord, nsAlive, undo bool) error {
	var errs []error
	if err := deleteHostVeth(n.HostVeth, podID, nsAlive); err != nil {
		errs = append(errs, err)
	}
	dir := e.paths.addrDir()
	if n.Addr != "" {
		if err := release(dir, n.Addr, podID); err != nil {
			errs = append(errs, fmt.Errorf("release address %s: %w", n.Addr, err))
		}
	} else if !undo {
		// Setup may have died between allocating and recording.
		if err := releaseAll(dir, podID); err != nil {
			errs = append(errs, fmt.Errorf("release addresses: %w", err))
		}
	}
	return errors.Join(errs...)
}

// releaseAll releases every address file that podID holds.
func releaseAll(dir, podID string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, ent := range entries {
		if err := release(dir, ent.Name(), podID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteHostVeth deletes the host side of a pod's veth (the pod side goes
// with it) if it exists and is the pod's. When the pod's namespace is gone
// it only sets the link down: the kernel deletes the pair with the
// namespace, shortly after the pod's last process, and deleting it here
// would cost what deleting any link costs, 15 ms or more (an RCU barrier),
// on the path of every pod. Down, it reaches nobody even while something
// else keeps the namespace alive.
func deleteHostVeth(name, podID string, nsAlive bool) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find veth %s: %w", name, err)
	}
	if alias := link.Attrs().Alias; alias != "" && alias != vethAlias(podID) {
		return nil // not ours: a hash collision or someone else's link
	}
	if !nsAlive {
		if link.Attrs().Flags&net.FlagUp == 0 {
			return nil
		}
		if err := netlink.LinkSetDown(link); err != nil && !gone(name) {
			return fmt.Errorf("set veth %s down: %w", name, err)
		}
		return nil
	}
	if err := netlink.LinkDel(link); err != nil && !gone(name) {
		return fmt.Errorf("delete veth %s: %w", name, err)
	}
	return nil
}

// gone reports whether the link no longer exists (it went with its
// namespace while we were at it).
func gone(name string) bool {
	_, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// sysctl sets /proc/sys/<key> to value unless it already is.
func sysctl(key, value string) error {
	path := filepath.Join("/proc/sys", key)
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// flushUDPConntrack forgets UDP flows to the pod's new host ports, once its
// DNAT rules are in: a flow that an earlier pod's rule set up would
// otherwise keep going to the old address while the client keeps sending.
// Best effort, as in CNI's portmap. It costs a conntrack dump (10 ms and
// more), so only UDP mappings pay it, while netlink does the rest.
func flushUDPConntrack(ports []PortMapping) {
	for _, m := range ports {
		if m.Protocol != "udp" {
			continue
		}
		f := &netlink.ConntrackFilter{}
		if f.AddProtocol(unix.IPPROTO_UDP) != nil || f.AddPort(netlink.ConntrackOrigDstPort, m.HostPort) != nil {
			continue
		}
		_, _ = netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	}
}
