package builtin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"
)

// DefaultCgroupParent is where units' cgroups are made, in every
// hierarchy, unless Options say otherwise.
const DefaultCgroupParent = "/atoll/units"

// unitCgroup is a unit's cgroup: the same path in every hierarchy the
// machine has (the v1 controllers and named hierarchies, and the v2 one,
// which on a hybrid machine holds no controller).
type unitCgroup struct {
	path string
	mgr  cgroups.Manager
	// v2Dir is the cgroup's directory in the v2 hierarchy, "" on a
	// machine without one. Processes are listed and moved there when it
	// exists: v2 lists whole processes and kills a tree at once.
	v2Dir string
	// listDir is where processes are listed: v2Dir, or a v1 hierarchy.
	listDir string
}

// cgroupControllers are the names systemd's cg_escape keeps a unit from
// clashing with: a cgroup named after one of them plus a dot would look
// like a controller's file.
var cgroupControllers = []string{
	"cpu", "cpuacct", "cpuset", "io", "blkio", "memory", "devices", "pids", "freezer",
	"net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc",
	"bpf-firewall", "bpf-devices", "bpf-foreign", "bpf-socket-bind", "bpf-restrict-network-interfaces",
}

// cgroupName is a unit's name as a cgroup directory, escaped as systemd's
// cg_escape does: a leading underscore for names that could be taken for
// the kernel's files. Unit names hold no '/' (validUnitName checks), so
// the name cannot leave its parent.
func cgroupName(unit string) string {
	need := unit == "" || unit[0] == '_' || unit[0] == '.' ||
		unit == "notify_on_release" || unit == "release_agent" || unit == "tasks" ||
		strings.HasPrefix(unit, "cgroup.")
	if dot := strings.LastIndexByte(unit, '.'); dot > 0 && slices.Contains(cgroupControllers, unit[:dot]) {
		need = true
	}
	if need {
		return "_" + unit
	}
	return unit
}

// unitCgroupPath is where unit's cgroup is below parent.
func unitCgroupPath(parent, unit string) string {
	return path.Join("/", parent, cgroupName(unit))
}

// openUnitCgroup describes the cgroup at p (created or not).
func openUnitCgroup(p string) (*unitCgroup, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: p, Resources: &cgroups.Resources{SkipDevices: true}})
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", p, err)
	}
	cg := &unitCgroup{path: p, mgr: m, v2Dir: m.Path("")}
	cg.listDir = cg.v2Dir
	if cg.listDir == "" {
		// A v1-only machine: its pids or named systemd hierarchy, else
		// whichever it has, in a stable order.
		paths := m.GetPaths()
		for _, name := range []string{"pids", "name=systemd"} {
			if d, ok := paths[name]; ok {
				cg.listDir = d
				break
			}
		}
		if cg.listDir == "" {
			names := make([]string, 0, len(paths))
			for name := range paths {
				names = append(names, name)
			}
			slices.Sort(names)
			if len(names) > 0 {
				cg.listDir = paths[names[0]]
			}
		}
	}
	if cg.listDir == "" {
		return nil, fmt.Errorf("cgroup %s: no cgroup hierarchy is mounted", p)
	}
	return cg, nil
}

// create makes the cgroup in every hierarchy.
func (cg *unitCgroup) create() error {
	if err := cg.mgr.Apply(-1); err != nil {
		return fmt.Errorf("cgroup %s: %w", cg.path, err)
	}
	return nil
}

// pids lists the processes in the cgroup and below it; none when the
// cgroup is gone. The daemon itself is left out: on a v1 machine one of
// its threads is in the cgroup while it starts a process there.
func (cg *unitCgroup) pids() ([]int, error) {
	pids, err := cgroups.GetAllPids(cg.listDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cg.path, err)
	}
	self := os.Getpid()
	return slices.DeleteFunc(pids, func(p int) bool { return p == self }), nil
}

// empty reports whether no process is left in the cgroup.
func (cg *unitCgroup) empty() bool {
	pids, err := cg.pids()
	return err == nil && len(pids) == 0
}

// contains reports whether process pid is in the cgroup or below it.
func (cg *unitCgroup) contains(pid int) bool {
	groups, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	key := ""
	if cg.v2Dir == "" {
		for name, dir := range cg.mgr.GetPaths() {
			if dir == cg.listDir {
				key = name
			}
		}
	}
	p, ok := groups[key]
	return ok && (p == cg.path || strings.HasPrefix(p, cg.path+"/"))
}

// signal sends sig to every process in the cgroup and returns how many
// it reached. The cgroup is frozen meanwhile (when the machine has a
// freezer), so that no process forks a child that the listing misses;
// otherwise it sends again until a listing finds no process it has not
// signalled. Every process but those getting SIGKILL also gets SIGCONT,
// so that a stopped one sees the signal, as systemd does.
func (cg *unitCgroup) signal(sig syscall.Signal) (int, error) {
	frozen := cg.mgr.Freeze(cgroups.Frozen) == nil
	if frozen {
		defer cg.mgr.Freeze(cgroups.Thawed)
	}
	signalled := map[int]bool{}
	for {
		pids, err := cg.pids()
		if err != nil {
			return len(signalled), err
		}
		more := false
		for _, pid := range pids {
			if signalled[pid] {
				continue
			}
			signalled[pid], more = true, true
			if unix.Kill(pid, sig) == nil && sig != syscall.SIGKILL && sig != syscall.SIGCONT {
				unix.Kill(pid, syscall.SIGCONT)
			}
		}
		if frozen || !more {
			return len(signalled), nil
		}
	}
}

// kill sends SIGKILL to every process in the cgroup, as signal does.
//
// Not through the v2 hierarchy's cgroup.kill, though it races no fork:
// on the kernels at hand (6.18), a process later cloned into a cgroup
// that was once killed that way (CLONE_INTO_CGROUP, as startInCgroup
// does) is killed at birth, which would kill the unit's ExecStopPost= and
// its next start.
func (cg *unitCgroup) kill() error {
	_, err := cg.signal(syscall.SIGKILL)
	return err
}

// destroy removes the cgroup, and any below it, from every hierarchy.
func (cg *unitCgroup) destroy() error {
	err := cg.mgr.Destroy()
	// The library's manager forgets the paths it removed: describe the
	// cgroup afresh for the next create.
	if fresh, ferr := openUnitCgroup(cg.path); ferr == nil {
		*cg = *fresh
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", cg.path, err)
	}
	return nil
}

// waitEmpty waits until the cgroup holds no process, or the deadline.
func (cg *unitCgroup) waitEmpty(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cg.empty() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tasksFiles are the cgroup's tasks files in the v1 hierarchies: a thread
// that writes its ID there moves alone, and what it forks is born there.
func (cg *unitCgroup) tasksFiles() []string {
	var out []string
	seen := map[string]bool{}
	for name, dir := range cg.mgr.GetPaths() {
		if name == "" || dir == "" || seen[dir] {
			continue
		}
		seen[dir] = true
		if f := filepath.Join(dir, "tasks"); fileExists(f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// homeTasksFiles maps each of tasksFiles to the tasks file of the
// daemon's own cgroup in the same hierarchy: where a thread that joined
// the unit's cgroup goes back to.
func (cg *unitCgroup) homeTasksFiles() (map[string]string, error) {
	own, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	home := map[string]string{}
	for name, dir := range cg.mgr.GetPaths() {
		if name == "" || dir == "" {
			continue
		}
		ownPath, ok := own[name]
		mount, cut := strings.CutSuffix(dir, cg.path)
		if !ok || !cut {
			return nil, fmt.Errorf("cgroup %s: no way back to the daemon's cgroup in %s", cg.path, name)
		}
		home[filepath.Join(dir, "tasks")] = filepath.Join(mount, ownPath, "tasks")
	}
	return home, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// RemoveCgroupTree kills every process in the cgroup at parent and in the
// cgroups below it, then removes them all from every hierarchy: what a
// machine's units leave when the machine itself goes (the playground's
// cluster down), since units outlive their daemon.
func RemoveCgroupTree(parent string) error {
	root, err := openUnitCgroup(path.Join("/", parent))
	if err != nil {
		return err
	}
	if !fileExists(root.listDir) {
		return nil
	}
	var errs []error
	err = filepath.WalkDir(root.listDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root.listDir, p)
		cg, err := openUnitCgroup(path.Join("/", parent, filepath.ToSlash(rel)))
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		for range 10 {
			if n, err := cg.signal(syscall.SIGKILL); err != nil || n == 0 {
				break
			}
			if cg.waitEmpty(time.Second) {
				break
			}
		}
		return nil
	})
	errs = append(errs, err, root.destroy())
	return errors.Join(errs...)
}
