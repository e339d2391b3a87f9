package playground

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/discovery"
	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/pki"
)

// UpOptions says what cluster to make.
type UpOptions struct {
	Name     string // default "default"
	Machines int    // default 3
	// Members is how many machines run a store member (default 3, or
	// Machines when fewer); the rest are clients.
	Members int
	// NoTLS turns TLS off; the playground uses TLS by default.
	NoTLS bool
	// Discovery bootstraps through a discovery service on the host, which
	// decides who is a member, instead of a static member list.
	Discovery bool
	// Wait bounds how long Up waits for every machine to be healthy
	// (default one minute).
	Wait time.Duration
}

// maxSocketPath is the size of sun_path in struct sockaddr_un, terminator
// included.
const maxSocketPath = 108

// maxMachines keeps machine addresses within the /24 (.11 to .250).
const maxMachines = 240

// Up makes the cluster and waits until every machine reports healthy. On
// failure it leaves the cluster as it got so far, for Down to remove (and
// for a person to look at).
func Up(ctx context.Context, opts Options, up UpOptions) (*Cluster, error) {
	if up.Name == "" {
		up.Name = "default"
	}
	if err := checkName(up.Name); err != nil {
		return nil, err
	}
	if up.Machines == 0 {
		up.Machines = 3
	}
	if up.Members == 0 {
		up.Members = min(3, up.Machines)
	}
	if up.Wait == 0 {
		up.Wait = time.Minute
	}
	switch {
	case up.Machines < 1 || up.Machines > maxMachines:
		return nil, fmt.Errorf("playground: %d machines: want 1 to %d", up.Machines, maxMachines)
	case up.Members < 1 || up.Members > up.Machines:
		return nil, fmt.Errorf("playground: %d store members: want 1 to the number of machines (%d)", up.Members, up.Machines)
	case up.Members > 9:
		return nil, fmt.Errorf("playground: %d store members: more than 9 only slows writes; make the rest clients", up.Members)
	}
	if os.Geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	binary, err := opts.binary()
	if err != nil {
		return nil, err
	}
	c, err := create(opts, up)
	if err != nil {
		return nil, err
	}
	if err := c.startAll(binary); err != nil {
		return c, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, up.Wait)
	defer cancel()
	if err := c.waitHealthy(waitCtx); err != nil {
		return c, err
	}
	if up.Discovery {
		if err := c.learnRoles(ctx); err != nil {
			return c, err
		}
	}
	return c, nil
}

// create lays out the cluster on the host: directories, certificates,
// bridge, namespaces, links and node configs. cluster.json is written
// before anything is made on the host, so Down can always find it.
func create(opts Options, up UpOptions) (*Cluster, error) {
	unlock, err := hostLock()
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(opts.dir(), up.Name)
	if _, err := os.Stat(filepath.Join(dir, "cluster.json")); err == nil {
		return nil, fmt.Errorf("%w: %q", ErrExists, up.Name)
	}
	if linkExists(bridgeName(up.Name)) {
		return nil, fmt.Errorf("%w: bridge %s of %q is still there", ErrExists, bridgeName(up.Name), up.Name)
	}
	subnet, err := pickSubnet(takenSubnets(opts))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("playground: %w", err)
	}
	c := &Cluster{
		Name:    up.Name,
		Dir:     dir,
		Subnet:  subnet.String(),
		Gateway: hostIP(subnet, 1).String(),
		Bridge:  bridgeName(up.Name),
		TLS:     !up.NoTLS,
	}
	for i := 1; i <= up.Machines; i++ {
		m := newMachine(dir, up.Name, i)
		m.IP = hostIP(subnet, 10+i).String()
		m.Member = !up.Discovery && i <= up.Members
		c.Machines = append(c.Machines, m)
	}
	if socket := filepath.Join(c.Machines[len(c.Machines)-1].RunDir, api.SocketName); len(socket) >= maxSocketPath {
		return nil, fmt.Errorf("playground: directory %s is too deep: a machine's socket path %s would exceed the %d bytes a unix socket allows; choose a shorter --dir", opts.dir(), socket, maxSocketPath-1)
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.makeNetwork(); err != nil {
		return c, err
	}
	if c.TLS {
		if err := c.makeCertificates(); err != nil {
			return c, err
		}
	}
	if up.Discovery {
		if err := c.startDiscovery(opts, up.Members); err != nil {
			return c, err
		}
	}
	if err := c.writeConfigs(); err != nil {
		return c, err
	}
	return c, c.save()
}

// newMachine is machine index of the cluster name in dir, with the names
// and directories that follow from those.
func newMachine(dir, cluster string, index int) Machine {
	mdir := filepath.Join(dir, machineName(index))
	return Machine{
		Name:     machineName(index),
		NetNS:    netnsName(cluster, index),
		HostLink: hostLinkName(cluster, index),
		Root:     filepath.Join(mdir, "root"),
		RunDir:   filepath.Join(mdir, "run"),
		Log:      filepath.Join(mdir, "node.log"),
	}
}

func takenSubnets(opts Options) map[string]bool {
	taken := map[string]bool{}
	entries, _ := os.ReadDir(opts.dir())
	for _, e := range entries {
		if c, err := Load(opts, e.Name()); err == nil {
			taken[c.Subnet] = true
		}
	}
	return taken
}

func (c *Cluster) makeNetwork() error {
	prefix := strings.SplitN(c.Subnet, "/", 2)[1]
	steps := [][]string{
		{"link", "add", c.Bridge, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0"},
		{"addr", "add", c.Gateway + "/" + prefix, "dev", c.Bridge},
		{"link", "set", c.Bridge, "up"},
	}
	for _, m := range c.Machines {
		steps = append(steps,
			[]string{"netns", "add", m.NetNS},
			[]string{"link", "add", m.HostLink, "type", "veth", "peer", "name", "eth0", "netns", m.NetNS},
			[]string{"link", "set", m.HostLink, "master", c.Bridge, "up"},
			[]string{"-n", m.NetNS, "addr", "add", m.IP + "/" + prefix, "dev", "eth0"},
			[]string{"-n", m.NetNS, "link", "set", "eth0", "up"},
			[]string{"-n", m.NetNS, "link", "set", "lo", "up"},
		)
	}
	for _, step := range steps {
		if err := ip(step...); err != nil {
			return fmt.Errorf("playground: cluster %q network: %w", c.Name, err)
		}
	}
	return nil
}

func (c *Cluster) makeCertificates() error {
	ca, err := pki.CreateCA(filepath.Join(c.Dir, "ca"), pki.CAOptions{CommonName: "atoll playground " + c.Name + " CA"})
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.Issue(pki.IssueRequest{CommonName: "admin", Client: true})
	if err != nil {
		return err
	}
	if _, err := ca.WriteIdentity(filepath.Join(c.Dir, "client"), "client", certPEM, keyPEM); err != nil {
		return err
	}
	for _, m := range c.Machines {
		certPEM, keyPEM, err := ca.Issue(pki.IssueRequest{
			CommonName: m.Name,
			IPs:        []net.IP{net.ParseIP(m.IP)},
			DNSNames:   []string{m.Name},
			Server:     true,
			Client:     true,
		})
		if err != nil {
			return err
		}
		if _, err := ca.WriteIdentity(m.tlsDir(), "node", certPEM, keyPEM); err != nil {
			return err
		}
	}
	return nil
}

func (m Machine) tlsDir() string { return filepath.Join(m.Root, "etc", "atoll", "tls") }

func (m Machine) configFile() string { return filepath.Join(m.Root, "etc", "atoll", "node.yaml") }

// PlaygroundFleetTTL is the fleet agents' lease in the playground.
const PlaygroundFleetTTL = config.Duration(5 * time.Second)

// FleetPort is where each playground machine serves fleet's API on TCP.
const FleetPort = 49153

func (c *Cluster) writeConfigs() error {
	var initial []string
	for _, m := range c.Machines {
		if m.Member {
			initial = append(initial, m.Name+"="+c.scheme()+"://"+net.JoinHostPort(m.IP, "2380"))
		}
	}
	for _, m := range c.Machines {
		cfg := config.Config{
			Name:     m.Name,
			PublicIP: m.IP,
			Metadata: map[string]string{"playground": c.Name, "machine": m.Name},
			// The machines share the host: its systemd, if any, is no
			// machine's own.
			Units: config.Units{Backend: config.BackendBuiltin},
			// A short lease, so that a machine stopped by hand loses its
			// units to the others in seconds; every machine serves
			// fleet's API on TCP, so that journals are read across them.
			Fleet: config.Fleet{TTL: PlaygroundFleetTTL, Listen: net.JoinHostPort("0.0.0.0", strconv.Itoa(FleetPort))},
		}
		if c.TLS {
			cfg.TLSDir = m.tlsDir()
		}
		switch {
		case c.Discovery != nil:
			cfg.Store.Role = config.RoleAuto
			cfg.Store.Discovery = c.Discovery.TokenURL
		case m.Member:
			cfg.Store.Role = config.RoleMember
			cfg.Store.InitialCluster = strings.Join(initial, ",")
			cfg.Store.InitialClusterToken = "atoll-playground-" + c.Name
		default:
			cfg.Store.Role = config.RoleClient
			cfg.Store.Endpoints = c.Endpoints()
		}
		data, err := config.Marshal(cfg)
		if err != nil {
			return err
		}
		for _, d := range []string{filepath.Dir(m.configFile()), m.RunDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("playground: %w", err)
			}
		}
		if err := fsutil.WriteFileAtomic(m.configFile(), data, 0o644); err != nil {
			return fmt.Errorf("playground: %w", err)
		}
	}
	return nil
}

// discoveryPort is where the playground's discovery service listens, on
// the bridge address.
const discoveryPort = 7001

func (c *Cluster) startDiscovery(opts Options, size int) error {
	binary, err := opts.binary()
	if err != nil {
		return err
	}
	listen := net.JoinHostPort(c.Gateway, strconv.Itoa(discoveryPort))
	logFile := filepath.Join(c.Dir, "discovery.log")
	pid, err := spawn("", logFile, binary, "discovery", "serve", "--listen", listen,
		"--data-dir", filepath.Join(c.Dir, "discovery"))
	if err != nil {
		return err
	}
	c.Discovery = &Discovery{PID: pid, URL: "http://" + listen}
	if err := c.save(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dc discovery.Client
	for {
		token, err := dc.NewToken(ctx, c.Discovery.URL, size)
		if err == nil {
			c.Discovery.TokenURL = token
			return c.save()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("playground: discovery service at %s (log %s): %w", c.Discovery.URL, logFile, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// spawn starts a detached process (its own session, stdin from /dev/null,
// output to logFile) that outlives this one, in the named network
// namespace or, for "", in this one, and returns its PID.
func spawn(netns, logFile, binary string, args ...string) (int, error) {
	logF, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("playground: %w", err)
	}
	defer logF.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdout = logF
	cmd.Stderr = logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if netns == "" {
		err = cmd.Start()
	} else {
		err = startIn(netnsPath(netns), cmd)
	}
	if err != nil {
		return 0, fmt.Errorf("playground: start %s %s: %w", binary, strings.Join(args, " "), err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while we still run; after that, init does.
	go cmd.Wait()
	return pid, nil
}

// startAll starts the members one after another, each once the one before
// serves its peer API, then every client at once. etcd's bootstrap asks
// each peer whether the cluster already exists and waits a second for a
// peer that accepts connections but does not answer yet; in this order
// every peer either answers or refuses at once, which cuts seconds from
// a cluster's start. With discovery nobody knows the members in advance,
// and members start their servers only once all have registered, so every
// machine starts at once.
func (c *Cluster) startAll(binary string) error {
	var members, clients []*Machine
	for i := range c.Machines {
		if c.Machines[i].Member {
			members = append(members, &c.Machines[i])
		} else {
			clients = append(clients, &c.Machines[i])
		}
	}
	peerClient, err := c.peerHTTPClient()
	if err != nil {
		return err
	}
	for _, m := range members {
		if err := c.startMachine(m, binary); err != nil {
			return err
		}
		c.waitPeerServing(peerClient, m, 3*time.Second)
	}
	for _, m := range clients {
		if err := c.startMachine(m, binary); err != nil {
			return err
		}
	}
	return c.save()
}

// peerHTTPClient can call members' peer API with the admin identity.
func (c *Cluster) peerHTTPClient() (*http.Client, error) {
	transport := &http.Transport{}
	if files := c.ClientTLS(); files != nil {
		tlsCfg, err := files.ClientTLS()
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = tlsCfg
	}
	return &http.Client{Transport: transport, Timeout: 500 * time.Millisecond}, nil
}

// waitPeerServing waits, at most limit, until m's peer API answers; a
// machine that is slow to come up only makes the next start slower.
func (c *Cluster) waitPeerServing(hc *http.Client, m *Machine, limit time.Duration) {
	url := c.scheme() + "://" + net.JoinHostPort(m.IP, "2380") + "/members"
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && alive(m.PID) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) startMachine(m *Machine, binary string) error {
	pid, err := spawn(m.NetNS, m.Log, binary,
		"node", "--root", m.Root, "--run-dir", m.RunDir, "--config", m.configFile())
	if err != nil {
		return err
	}
	m.PID = pid
	return nil
}

// waitHealthy polls every machine's daemon until all report healthy.
func (c *Cluster) waitHealthy(ctx context.Context) error {
	pending := map[string]bool{}
	for _, m := range c.Machines {
		pending[m.Name] = true
	}
	lastErr := map[string]string{}
	for {
		for _, m := range c.Machines {
			if !pending[m.Name] {
				continue
			}
			reqCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
			h, err := client.Local{RunDir: m.RunDir}.Health(reqCtx)
			cancel()
			switch {
			case err != nil:
				lastErr[m.Name] = err.Error()
			case h.Healthy:
				delete(pending, m.Name)
			default:
				lastErr[m.Name] = h.Store.Error
			}
			if err != nil && !alive(m.PID) {
				return fmt.Errorf("playground: machine %s's daemon exited; see %s", m.Name, m.Log)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var waiting []string
			for _, m := range c.Machines {
				if pending[m.Name] {
					waiting = append(waiting, fmt.Sprintf("%s (%s; log %s)", m.Name, lastErr[m.Name], m.Log))
				}
			}
			return fmt.Errorf("playground: cluster %q not healthy: %s", c.Name, strings.Join(waiting, ", "))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// learnRoles asks each machine which role discovery gave it.
func (c *Cluster) learnRoles(ctx context.Context) error {
	for i := range c.Machines {
		m := &c.Machines[i]
		info, err := client.Local{RunDir: m.RunDir}.Machine(ctx)
		if err != nil {
			return err
		}
		m.Member = info.Store.Role != "client"
	}
	return c.save()
}
