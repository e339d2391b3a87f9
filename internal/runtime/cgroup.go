package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups"
	// The device rules below need the device controller's writer, which
	// this package registers when imported.
	_ "github.com/opencontainers/cgroups/devices"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/manager"

	"atoll.dev/atoll/internal/runtime/pod"
)

// cgroupPath is where a pod's cgroup lives in every hierarchy.
func cgroupPath(uuid string) string { return "/atoll/" + uuid }

// allowedDevices are the device rules of every pod: nothing but the nodes
// stage1 creates in /dev, the pod's terminals, and mknod (not use) of any
// device, as runc and Docker allow.
func allowedDevices() []*devconfig.Rule {
	rule := func(typ devconfig.Type, major, minor int64, perms string) *devconfig.Rule {
		return &devconfig.Rule{Type: typ, Major: major, Minor: minor, Permissions: devconfig.Permissions(perms), Allow: true}
	}
	return []*devconfig.Rule{
		{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm", Allow: false},
		rule(devconfig.CharDevice, devconfig.Wildcard, devconfig.Wildcard, "m"),
		rule(devconfig.BlockDevice, devconfig.Wildcard, devconfig.Wildcard, "m"),
		rule(devconfig.CharDevice, 1, 3, "rwm"),                    // null
		rule(devconfig.CharDevice, 1, 5, "rwm"),                    // zero
		rule(devconfig.CharDevice, 1, 7, "rwm"),                    // full
		rule(devconfig.CharDevice, 1, 8, "rwm"),                    // random
		rule(devconfig.CharDevice, 1, 9, "rwm"),                    // urandom
		rule(devconfig.CharDevice, 5, 0, "rwm"),                    // tty
		rule(devconfig.CharDevice, 5, 1, "rwm"),                    // console
		rule(devconfig.CharDevice, 5, 2, "rwm"),                    // ptmx
		rule(devconfig.CharDevice, 136, devconfig.Wildcard, "rwm"), // pts
	}
}

// newPodCgroup creates the pod's cgroup with its limits and moves pid in.
func newPodCgroup(uuid string, r pod.Resources, pid int) error {
	res := &cgroups.Resources{Devices: allowedDevices(), Memory: r.MemoryBytes}
	if r.CPUMilli > 0 {
		res.CpuPeriod = 100000
		res.CpuQuota = r.CPUMilli * 100
	}
	if r.PidsLimit > 0 {
		limit := r.PidsLimit
		res.PidsLimit = &limit
	}
	m, err := manager.New(&cgroups.Cgroup{Path: cgroupPath(uuid), Resources: res})
	if err != nil {
		return fmt.Errorf("pod cgroup: %w", err)
	}
	if err := m.Apply(pid); err != nil {
		m.Destroy()
		return fmt.Errorf("pod cgroup: %w", err)
	}
	if err := m.Set(res); err != nil {
		m.Destroy()
		return fmt.Errorf("pod cgroup: limits: %w", err)
	}
	return nil
}

// cgroupProcsFiles are the cgroup.procs files of a pod's cgroup in every
// hierarchy it exists in, for enter to join.
func cgroupProcsFiles(uuid string) ([]string, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: cgroupPath(uuid), Resources: &cgroups.Resources{}})
	if err != nil {
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range m.GetPaths() {
		f := filepath.Join(p, "cgroup.procs")
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		if _, err := os.Stat(f); err == nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// destroyPodCgroup removes a pod's cgroup, whether or not this process
// created it (gc after a kill -9).
func destroyPodCgroup(uuid string) error {
	m, err := manager.New(&cgroups.Cgroup{Path: cgroupPath(uuid), Resources: &cgroups.Resources{}})
	if err != nil {
		return fmt.Errorf("pod cgroup: %w", err)
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("pod cgroup: %w", err)
	}
	return nil
}
