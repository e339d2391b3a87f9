package playground

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down removes the cluster: first the pods running on its machines (see
// stopPods: SIGTERM, SIGKILL after podStopGrace, then pod gc), then its
// processes, namespaces, links and files. It is idempotent and works from
// whatever a crashed Up left behind, finding namespaces and links by their
// names even when cluster.json is gone.
func Down(opts Options, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return ErrNeedRoot
	}
	unlock, err := hostLock()
	if err != nil {
		return err
	}
	defer unlock()
	binary, _ := opts.binary()

	c, err := Load(opts, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		// A damaged cluster.json must not stop the clean-up.
		c = nil
	}
	var problems []string

	namespaces, err := netnsList()
	if err != nil {
		problems = append(problems, err.Error())
	}
	pattern := netnsPattern(name)
	var ours []string
	for _, ns := range namespaces {
		if pattern.MatchString(ns) {
			ours = append(ours, ns)
		}
	}
	// Pods first, while their machines' namespaces are there to clean:
	// killing a pod's `atoll pod run` with the machine's processes below
	// would leave its cgroup behind.
	dir := filepath.Join(opts.dir(), name)
	problems = append(problems, stopPods(binary, clusterMachines(c, dir, name, ours), podStopGrace)...)
	var pids []int
	for _, ns := range ours {
		pids = append(pids, netnsPIDs(ns)...)
	}
	if c != nil {
		for _, m := range c.Machines {
			if alive(m.PID) && isAtoll(m.PID, binary) {
				pids = append(pids, m.PID)
			}
		}
		if c.Discovery != nil && alive(c.Discovery.PID) && isAtoll(c.Discovery.PID, binary) {
			pids = append(pids, c.Discovery.PID)
		}
	}
	// SIGKILL at once: the data goes with the cluster, and members stopping
	// together would each wait seconds to hand leadership to another.
	terminate(pids, syscall.SIGKILL, 5*time.Second)
	problems = append(problems, removeUnits(clusterMachines(c, dir, name, ours))...)

	for _, ns := range ours {
		if err := ip("netns", "del", ns); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, link := range ourLinks(name) {
		if err := ip("link", "del", link); err != nil && linkExists(link) {
			problems = append(problems, err.Error())
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("playground: down %q left something behind: %s", name, strings.Join(problems, "; "))
	}
	return nil
}

// clusterMachines are the machines whose namespaces are listed, as
// cluster.json describes them or, when it is gone, as Up lays them out.
func clusterMachines(c *Cluster, dir, cluster string, namespaces []string) []Machine {
	var machines []Machine
	for _, ns := range namespaces {
		index, err := strconv.Atoi(strings.TrimPrefix(ns, "atoll-"+cluster+"-m"))
		if err != nil {
			continue
		}
		m := newMachine(dir, cluster, index)
		if c != nil {
			if known, err := c.Machine(m.Name); err == nil && known.NetNS == ns {
				m = *known
			}
		}
		machines = append(machines, m)
	}
	return machines
}

// ourLinks lists the host links named after the cluster: its bridge and
// the host ends of its machines' veth pairs.
func ourLinks(cluster string) []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	bridge := bridgeName(cluster)
	vethPrefix := "atv" + nameHash(cluster) + "m"
	var links []string
	for _, iface := range ifaces {
		if iface.Name == bridge || strings.HasPrefix(iface.Name, vethPrefix) {
			links = append(links, iface.Name)
		}
	}
	return links
}
