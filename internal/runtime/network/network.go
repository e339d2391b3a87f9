package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Names and defaults.
const (
	// DefaultNetworkName names the built-in network.
	DefaultNetworkName = "default"
	// DefaultBridge is the bridge of the built-in network.
	DefaultBridge = "atoll0"
	// DefaultSubnet is the subnet of the built-in network (rkt's default).
	DefaultSubnet = "172.16.28.0/24"
)

// Errors that callers can test with errors.Is.
var (
	// ErrInvalid reports a bad argument or configuration: pod ID, network
	// list, bridge name, subnet.
	ErrInvalid = errors.New("invalid network request")
	// ErrUnknownNetwork reports a network name that is neither "default"
	// nor the name of a CNI configuration in Config.ConfDir.
	ErrUnknownNetwork = errors.New("unknown network")
	// ErrAlreadySetUp reports a second Setup for a pod that has a record.
	ErrAlreadySetUp = errors.New("pod network already set up")
	// ErrPortInUse reports a host port that another live pod publishes.
	ErrPortInUse = errors.New("port in use")
	// ErrNoAddress reports a built-in subnet with no free address.
	ErrNoAddress = errors.New("no free address")
	// ErrBadPort reports a --port value or PortMapping that cannot be used.
	ErrBadPort = errors.New("bad port mapping")
	// errBusy reports a pod whose lock another process holds.
	errBusy = errors.New("pod network busy")
)

// Config says where networks are defined and where their state lives.
type Config struct {
	ConfDir    string   // CNI network configs: *.conf, *.conflist, *.json; /etc/atoll/net.d on a machine
	PluginDirs []string // CNI plugin binaries; default /usr/lib/cni, /opt/cni/bin
	StateDir   string   // allocations, CNI cache, records per pod; <run-dir>/net on a machine (tmpfs: dies with the host, like the pods)
	Default    DefaultNetwork
}

// DefaultNetwork is the built-in "default" network: each pod gets its own
// address on a private bridge; traffic leaving the subnet is masqueraded.
type DefaultNetwork struct {
	Bridge string // default "atoll0"
	Subnet string // default "172.16.28.0/24" (rkt's default network); the gateway is the first address, on the bridge
	IPMasq bool   // masquerade traffic leaving the subnet and enable ipv4 forwarding (true on a machine)
	MTU    int    // 0 = the bridge default 1500
}

// Attachment is a pod's interface on one network.
type Attachment struct {
	Network string    // "default" or the CNI network name
	IfName  string    // eth0, eth1, ...
	IP      net.IPNet // the pod's address on it
	Gateway net.IP
	DNS     []string // nameservers the network says (CNI result DNS), if any
}

// env is one call's resolved configuration.
type env struct {
	cfg    Config
	paths  paths
	subnet *net.IPNet // built-in network
	gw     net.IP     // its gateway, the bridge's address
}

func newEnv(cfg Config) (*env, error) {
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if cfg.Default.Bridge == "" {
		cfg.Default.Bridge = DefaultBridge
	}
	if cfg.Default.Subnet == "" {
		cfg.Default.Subnet = DefaultSubnet
	}
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("%w: Config.StateDir is empty", ErrInvalid)
	}
	if len(cfg.Default.Bridge) > unix.IFNAMSIZ-1 || strings.ContainsAny(cfg.Default.Bridge, "/ \t\n") {
		return nil, fmt.Errorf("%w: bridge name %q: want at most %d characters, no '/' or spaces", ErrInvalid, cfg.Default.Bridge, unix.IFNAMSIZ-1)
	}
	if cfg.Default.MTU < 0 || cfg.Default.MTU > 65535 {
		return nil, fmt.Errorf("%w: mtu %d", ErrInvalid, cfg.Default.MTU)
	}
	_, subnet, err := net.ParseCIDR(cfg.Default.Subnet)
	if err != nil {
		return nil, fmt.Errorf("%w: default subnet %q: %w", ErrInvalid, cfg.Default.Subnet, err)
	}
	ones, bits := subnet.Mask.Size()
	if subnet.IP.To4() == nil || bits != 32 || ones < 8 || ones > 30 {
		return nil, fmt.Errorf("%w: default subnet %q: want an IPv4 subnet from /8 to /30", ErrInvalid, cfg.Default.Subnet)
	}
	subnet.IP = subnet.IP.To4()
	return &env{cfg: cfg, paths: paths{cfg.StateDir}, subnet: subnet, gw: addToIP(subnet.IP, 1)}, nil
}

// checkPodID keeps pod IDs usable as file names, iptables comments and CNI
// container IDs: a letter or digit, then letters, digits, '_', '.', '-'.
func checkPodID(podID string) error {
	ok := podID != "" && len(podID) <= 128
	for i := 0; ok && i < len(podID); i++ {
		c := podID[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("%w: pod ID %q: want a letter or digit, then letters, digits, '_', '.' or '-', at most 128", ErrInvalid, podID)
	}
	return nil
}

// Setup attaches the pod (podID: its UUID) to each named network in order
// ("default" or a CNI network in ConfDir; a CNI config named "default"
// replaces the built-in one), publishes ports (on the first network, through
// DNAT), and returns the attachments. The pod's interfaces are eth0, eth1...
// in the order of networks; lo is brought up too. On error it undoes what it
// did. The record it leaves in StateDir is what Teardown and Attachments read.
func Setup(ctx context.Context, cfg Config, podID, netnsPath string, networks []string, ports []PortMapping) (_ []Attachment, err error) {
	e, err := newEnv(cfg)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	if err := checkPodID(podID); err != nil {
		return nil, err
	}
	ports, err = normalizePorts(ports)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	plan, err := e.plan(podID, networks, len(ports) > 0)
	if err != nil {
		return nil, err
	}
	id, err := nsIdentity(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("pod %s: namespace %s: %w", podID, netnsPath, err)
	}
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("pod %s: open namespace %s: %w", podID, netnsPath, err)
	}
	defer ns.Close()

	if err := e.paths.mkdirs(); err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	lock, err := e.paths.lockPod(podID, false)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	defer lock.unlock()

	rec := &record{PodID: podID, NetNS: netnsPath, NSDev: id.dev, NSIno: id.ino, Ports: ports, Networks: plan}
	if err := e.paths.createRecord(rec); err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Undo even when ctx is what failed.
		if uerr := e.teardownLocked(context.WithoutCancel(ctx), podID, netnsPath, rec, true); uerr != nil {
			err = errors.Join(err, fmt.Errorf("pod %s: undo: %w", podID, uerr))
			return
		}
		lock.remove()
	}()

	if err := e.reservePorts(ctx, podID, ports); err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}

	nl, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("pod %s: netlink in namespace %s: %w", podID, netnsPath, err)
	}
	defer nl.Close()
	if err := loopbackUp(nl); err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}

	atts := make([]Attachment, 0, len(plan))
	for i := range rec.Networks {
		n := &rec.Networks[i]
		var pub []PortMapping
		if i == 0 {
			pub = ports
		}
		var att Attachment
		switch n.Kind {
		case kindBuiltin:
			att, err = e.setupDefault(ctx, rec, n, ns, nl, pub)
		default:
			att, err = e.setupCNI(ctx, rec, n, pub)
		}
		if err != nil {
			return nil, fmt.Errorf("network %q: pod %s: %w", n.Name, podID, err)
		}
		n.setAttachment(att)
		atts = append(atts, att)
	}
	if err := e.paths.writeRecord(rec); err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	return atts, nil
}

// plan resolves the network names into the records Setup will fill in.
func (e *env) plan(podID string, networks []string, withPorts bool) ([]netRecord, error) {
	if len(networks) == 0 {
		return nil, fmt.Errorf("pod %s: %w: no network named", podID, ErrInvalid)
	}
	seen := map[string]bool{}
	for _, name := range networks {
		switch name {
		case "host", "none":
			return nil, fmt.Errorf("network %q: pod %s: %w: the caller handles it (no Setup)", name, podID, ErrInvalid)
		case "":
			return nil, fmt.Errorf("pod %s: %w: empty network name", podID, ErrInvalid)
		}
		if seen[name] {
			return nil, fmt.Errorf("network %q: pod %s: %w: named twice", name, podID, ErrInvalid)
		}
		seen[name] = true
	}
	// Read ConfDir even for "default" alone: a config of that name replaces
	// the built-in network.
	confs, err := loadCNIConfs(e.cfg.ConfDir)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	plan := make([]netRecord, 0, len(networks))
	for i, name := range networks {
		n := netRecord{Name: name, IfName: fmt.Sprintf("eth%d", i)}
		if list, ok := confs.byName[name]; ok {
			n.Kind = kindCNI
			n.Conf = list.Bytes
			if i == 0 && withPorts && !hasPortMappings(list) {
				return nil, fmt.Errorf("network %q: pod %s: %w: no plugin in its list has the portMappings capability (add {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}})", name, podID, ErrBadPort)
			}
		} else if name == DefaultNetworkName {
			n.Kind = kindBuiltin
			n.Bridge = e.cfg.Default.Bridge
			n.HostVeth = hostVethName(podID)
			n.Subnet = e.subnet.String()
		} else {
			return nil, fmt.Errorf("network %q: pod %s: %w: %s", name, podID, ErrUnknownNetwork, confs.describe(e.cfg.ConfDir))
		}
		plan = append(plan, n)
	}
	return plan, nil
}

// Teardown undoes Setup for podID from the state recorded on disk: it works
// when the namespace is gone (kill -9) and when called twice; it is what gc
// calls. netnsPath may be empty (the recorded one is used); a path that no
// longer names the pod's namespace (a reused PID) is treated as gone. On
// error the record stays, so a later Teardown tries again. The bridge, the
// masquerade rule and the host-port chains stay: other pods may use them.
func Teardown(ctx context.Context, cfg Config, podID, netnsPath string) error {
	e, err := newEnv(cfg)
	if err != nil {
		return fmt.Errorf("pod %s: %w", podID, err)
	}
	if err := checkPodID(podID); err != nil {
		return err
	}
	return e.teardown(ctx, podID, netnsPath, false)
}

func (e *env) teardown(ctx context.Context, podID, netnsPath string, nonBlocking bool) error {
	if _, err := os.Stat(e.cfg.StateDir); errors.Is(err, os.ErrNotExist) {
		return nil // nothing was ever set up here
	}
	if err := e.paths.mkdirs(); err != nil {
		return fmt.Errorf("pod %s: %w", podID, err)
	}
	lock, err := e.paths.lockPod(podID, nonBlocking)
	if err != nil {
		return fmt.Errorf("pod %s: %w", podID, err)
	}
	defer lock.unlock()
	rec, err := e.paths.readRecord(podID)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pod %s: %w", podID, err)
	}
	if err := e.teardownLocked(ctx, podID, netnsPath, rec, false); err != nil {
		return err
	}
	lock.remove()
	return nil
}

// teardownLocked undoes what rec says, then removes rec. With no record it
// sweeps what can be found from the pod ID alone (veth, CNI cache). undo
// says Setup calls it in the same process, so rec is exact: an address not
// in it was never allocated.
func (e *env) teardownLocked(ctx context.Context, podID, netnsPath string, rec *record, undo bool) error {
	var errs []error
	if rec == nil {
		if err := deleteHostVeth(hostVethName(podID), podID, true); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, e.delCachedCNI(ctx, podID)...)
		return errors.Join(errs...)
	}
	nsPath := ""
	if rec.alive(netnsPath) {
		nsPath = netnsPath
		if nsPath == "" {
			nsPath = rec.NetNS
		}
	}
	for i := len(rec.Networks) - 1; i >= 0; i-- {
		n := &rec.Networks[i]
		var err error
		switch n.Kind {
		case kindBuiltin:
			err = e.teardownDefault(podID, n, nsPath != "", undo)
		default:
			var pub []PortMapping
			if i == 0 {
				pub = rec.Ports
			}
			err = e.teardownCNI(ctx, podID, nsPath, n, pub)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("network %q: pod %s: %w", n.Name, podID, err))
		}
	}
	if len(rec.Ports) > 0 && len(rec.Networks) > 0 && rec.Networks[0].Kind == kindBuiltin {
		var made []string
		if n := rec.Networks[0]; n.Addr != "" && n.Subnet != "" {
			made = podRules(podID, net.ParseIP(n.Addr).To4(), n.Subnet, rec.Ports)
		}
		if err := deletePodRules(ctx, podID, made); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: port rules: %w", podID, err))
		}
	}
	if err := e.releasePorts(podID, rec.Ports); err != nil {
		errs = append(errs, fmt.Errorf("pod %s: %w", podID, err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := e.paths.removeRecord(podID); err != nil {
		return fmt.Errorf("pod %s: %w", podID, err)
	}
	return nil
}

// Attachments reads what Setup recorded for podID (for `pod list`/`status`),
// or nil when there is no record. While Setup runs it lists the networks
// attached so far.
func Attachments(cfg Config, podID string) ([]Attachment, error) {
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("pod %s: %w: Config.StateDir is empty", podID, ErrInvalid)
	}
	if err := checkPodID(podID); err != nil {
		return nil, err
	}
	rec, err := paths{cfg.StateDir}.readRecord(podID)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podID, err)
	}
	var atts []Attachment
	for _, n := range rec.Networks {
		if att, ok := n.attachment(); ok {
			atts = append(atts, att)
		}
	}
	return atts, nil
}

// LoopbackUp brings lo up in the namespace at netnsPath; it is all the
// network a pod run with --net=none gets. Setup does it too.
func LoopbackUp(netnsPath string) error {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", netnsPath, err)
	}
	defer ns.Close()
	nl, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", netnsPath, err)
	}
	defer nl.Close()
	if err := loopbackUp(nl); err != nil {
		return fmt.Errorf("namespace %s: %w", netnsPath, err)
	}
	return nil
}

func loopbackUp(nl *netlink.Handle) error {
	// lo is interface 1 of every namespace: no lookup.
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
	if err := nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// nsID identifies a namespace: the nsfs inode behind its path.
type nsID struct{ dev, ino uint64 }

func nsIdentity(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	if !isNsfs(path) {
		return nsID{}, fmt.Errorf("%w: not a network namespace", ErrInvalid)
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

func isNsfs(path string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return false
	}
	return fs.Type == unix.NSFS_MAGIC
}
