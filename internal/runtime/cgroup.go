package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

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

// A pod's cgroups: the pod's own at /atoll/UUID holds only the device
// rules and no process; PID 1 runs in /atoll/UUID/pid1, and each app in
// /atoll/UUID/app-NAME with its own limits, as rkt's isolators were per app.
// So PID 1's threads count against no app's --pids-limit and its memory
// against no app's --memory, an OOM kill is told apart per app, and cgroup
// v2's rule that only leaves hold processes is kept.
const pid1Cgroup = "pid1"

// moveInV2OnHybrid makes a hybrid host move apps in its controller-less v2
// hierarchy too, as a unified host does: tests set it to run that path.
var moveInV2OnHybrid = false

// appCgroupPath is where app name of a pod lives in every hierarchy.
func appCgroupPath(uuid, name string) string { return cgroupPath(uuid) + "/app-" + name }

// newPodCgroups creates the pod's cgroups, moves pid (PID 1) into its own,
// and returns where each app goes.
func newPodCgroups(m *pod.Manifest, pid int) (map[string]pod.AppCgroup, error) {
	podRes := &cgroups.Resources{Devices: allowedDevices()}
	podCg, err := manager.New(&cgroups.Cgroup{Path: cgroupPath(m.UUID), Resources: podRes})
	if err != nil {
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	if err := podCg.Apply(-1); err != nil {
		podCg.Destroy()
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	if err := podCg.Set(podRes); err != nil {
		podCg.Destroy()
		return nil, fmt.Errorf("pod cgroup: devices: %w", err)
	}
	fail := func(err error) (map[string]pod.AppCgroup, error) {
		podCg.Destroy() // and everything below it
		return nil, err
	}
	pid1, err := manager.New(&cgroups.Cgroup{Path: cgroupPath(m.UUID) + "/" + pid1Cgroup, Resources: &cgroups.Resources{}})
	if err != nil {
		return fail(fmt.Errorf("pod cgroup: %w", err))
	}
	if err := pid1.Apply(pid); err != nil {
		return fail(fmt.Errorf("pod cgroup: %w", err))
	}
	apps := map[string]pod.AppCgroup{}
	for _, a := range m.Apps {
		res := appResources(a.Resources)
		path := appCgroupPath(m.UUID, a.Name)
		cg, err := manager.New(&cgroups.Cgroup{Path: path, Resources: res})
		if err != nil {
			return fail(fmt.Errorf("app %s cgroup: %w", a.Name, err))
		}
		if err := cg.Apply(-1); err != nil {
			return fail(fmt.Errorf("app %s cgroup: %w", a.Name, err))
		}
		if err := cg.Set(res); err != nil {
			return fail(fmt.Errorf("app %s cgroup: limits: %w", a.Name, err))
		}
		// v1 hierarchies have a tasks file; the v2 one (all of cgroups on
		// a unified host, the controller-less hierarchy of a hybrid one)
		// is the manager's "" path.
		ac := pod.AppCgroup{Path: path, Tasks: hierarchyFiles(cg, "tasks")}
		// The v2 hierarchy (the manager's "" path) holds the controllers on
		// a unified host only: on a hybrid one the app stays in PID 1's
		// cgroup there, sparing the move its wait for the kernel.
		if cgroups.IsCgroup2UnifiedMode() || moveInV2OnHybrid {
			ac.Dir, ac.PID1Dir = cg.Path(""), pid1.Path("")
		}
		apps[a.Name] = ac
	}
	return apps, nil
}

// appResources are the cgroup limits of an app. The device rules are the
// pod's again: the library writes a cgroup's whole rule set, and none
// would deny every device, the nodes the app's /dev is made of included.
func appResources(r pod.Resources) *cgroups.Resources {
	res := &cgroups.Resources{Devices: allowedDevices(), Memory: r.MemoryBytes}
	if r.CPUMilli > 0 {
		res.CpuPeriod = 100000
		res.CpuQuota = r.CPUMilli * 100
	}
	if r.PidsLimit > 0 {
		limit := r.PidsLimit
		res.PidsLimit = &limit
	}
	return res
}

// cgroupProcsFiles are the cgroup.procs files of a cgroup (such as an
// app's) in every hierarchy it exists in, for enter to join.
func cgroupProcsFiles(path string) ([]string, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}})
	if err != nil {
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	return hierarchyFiles(m, "cgroup.procs"), nil
}

// hierarchyFiles is the file name of m's cgroup in every hierarchy that
// has it, in a stable order.
func hierarchyFiles(m cgroups.Manager, name string) []string {
	var out []string
	seen := map[string]bool{}
	for _, dir := range m.GetPaths() {
		if dir == "" || seen[dir] {
			continue
		}
		seen[dir] = true
		if f := filepath.Join(dir, name); fileExists(f) {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// destroyPodCgroup removes a pod's cgroups, the apps' and PID 1's below it
// included, whether or not this process created them (gc after a kill -9).
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
