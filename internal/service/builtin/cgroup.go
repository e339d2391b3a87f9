package builtin

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
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
// which on a hybrid machine holds no controller). It holds its path and
// the machine's hierarchies only: its directories are the hierarchies'
// roots joined with the path, and the library's manager is made from them
// when needed (cgroupManager), so that a running unit costs no more
// memory than that, and no start or stop reads the mount table again.
type unitCgroup struct {
	path string
	mgr  cgroupManager
}

// hierarchies are the machine's cgroup hierarchies, described once:
// manager.New reads the mount table and looks at every hierarchy, a
// quarter of what making a cgroup costs, for an answer that does not
// change.
type hierarchies struct {
	// roots are the root directories, keyed as the library keys a
	// cgroup's paths: by controller ("cpu", "memory"), by name for a
	// named v1 hierarchy ("name=systemd"), "" for v2.
	roots map[string]string
	// v2 is the v2 hierarchy's root, "" on a machine without one.
	// Processes are listed and moved there when it exists: v2 lists
	// whole processes, and says in one file whether a cgroup and those
	// below it hold any (cgroup.events).
	v2 string
	// listKey is the hierarchy processes are listed in: "" (v2), or a v1
	// hierarchy on a machine without v2.
	listKey string
	// tasks are the keys of the v1 hierarchies, one per directory (two
	// controllers can share one), in a stable order: a thread that joins
	// a cgroup writes its ID to their tasks files.
	tasks []string
}

// describeHierarchies reads the machine's cgroup hierarchies.
func describeHierarchies() (*hierarchies, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: "/", Resources: &cgroups.Resources{SkipDevices: true}})
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	h := &hierarchies{roots: maps.Clone(m.GetPaths()), v2: m.Path("")}
	names := slices.Sorted(maps.Keys(h.roots))
	if len(names) == 0 {
		return nil, errors.New("cgroup hierarchies: none is mounted")
	}
	if h.v2 == "" {
		// A v1-only machine: its pids or named systemd hierarchy, else
		// whichever it has, in a stable order.
		h.listKey = names[0]
		for _, name := range []string{"name=systemd", "pids"} {
			if _, ok := h.roots[name]; ok {
				h.listKey = name
			}
		}
	}
	seen := map[string]bool{}
	for _, name := range names {
		dir := h.roots[name]
		// Units' cgroups are made with SkipDevices: the devices
		// hierarchy has none.
		if name == "" || name == "devices" || seen[dir] || !fileExists(filepath.Join(dir, "tasks")) {
			continue
		}
		seen[dir] = true
		h.tasks = append(h.tasks, name)
	}
	slices.SortFunc(h.tasks, func(a, b string) int { return strings.Compare(h.roots[a], h.roots[b]) })
	return h, nil
}

// open describes the cgroup at p (created or not).
func (h *hierarchies) open(p string) *unitCgroup {
	return &unitCgroup{path: p, mgr: cgroupManager{h: h, path: p}}
}

// openUnitCgroup describes the cgroup at p (created or not), reading the
// machine's hierarchies for it; a Manager reads them once for all its
// units.
func openUnitCgroup(p string) (*unitCgroup, error) {
	h, err := describeHierarchies()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", p, err)
	}
	return h.open(p), nil
}

// cgroupManager makes the library's manager for one cgroup, from paths
// known beforehand.
type cgroupManager struct {
	h    *hierarchies
	path string
}

// GetPaths is the cgroup's directory in every hierarchy, keyed as the
// library keys them.
func (m cgroupManager) GetPaths() map[string]string {
	paths := make(map[string]string, len(m.h.roots))
	for name, root := range m.h.roots {
		paths[name] = filepath.Join(root, m.path)
	}
	return paths
}

// get is the library's manager of the cgroup.
func (m cgroupManager) get() (cgroups.Manager, error) {
	mgr, err := manager.NewWithPaths(&cgroups.Cgroup{Path: m.path, Resources: &cgroups.Resources{SkipDevices: true}}, m.GetPaths())
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", m.path, err)
	}
	return mgr, nil
}

// dir is the cgroup's directory in hierarchy key.
func (cg *unitCgroup) dir(key string) string { return filepath.Join(cg.mgr.h.roots[key], cg.path) }

// v2Dir is the cgroup's directory in the v2 hierarchy, "" on a machine
// without one.
func (cg *unitCgroup) v2Dir() string {
	if cg.mgr.h.v2 == "" {
		return ""
	}
	return cg.dir("")
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

// create makes the cgroup in every hierarchy.
func (cg *unitCgroup) create() error {
	mgr, err := cg.mgr.get()
	if err != nil {
		return err
	}
	if err := mgr.Apply(-1); err != nil {
		return fmt.Errorf("cgroup %s: %w", cg.path, err)
	}
	return nil
}

// pids lists the processes in the cgroup and below it; none when the
// cgroup is gone. The daemon itself is left out: on a v1 machine one of
// its threads is in the cgroup while it starts a process there.
func (cg *unitCgroup) pids() ([]int, error) {
	pids, err := cgroups.GetAllPids(cg.dir(cg.mgr.h.listKey))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cg.path, err)
	}
	self := os.Getpid()
	return slices.DeleteFunc(pids, func(p int) bool { return p == self }), nil
}

// empty reports whether no process is left in the cgroup. In v2 that is
// one read of cgroup.events, which counts the cgroups below too and, as
// cgroup.procs, no process that has exited: a zombie not reaped yet
// holds no cgroup.
func (cg *unitCgroup) empty() bool {
	if cg.mgr.h.v2 != "" {
		populated, err := readPopulated(cg.dir(""))
		if errors.Is(err, os.ErrNotExist) {
			return true
		}
		if err == nil {
			return !populated
		}
	}
	pids, err := cg.pids()
	return err == nil && len(pids) == 0
}

// readPopulated reads the "populated" key of a v2 cgroup's cgroup.events.
func readPopulated(dir string) (bool, error) {
	data, err := readKernelFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events: no populated key", dir)
}

// contains reports whether process pid is in the cgroup or below it.
func (cg *unitCgroup) contains(pid int) bool {
	groups, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	p, ok := groups[cg.mgr.h.listKey]
	return ok && (p == cg.path || strings.HasPrefix(p, cg.path+"/"))
}

// signal sends sig to every process in the cgroup but those in skip
// (already signalled), and returns those it reached. The cgroup is
// frozen meanwhile (when the machine has a freezer), so that no process
// forks a child that the listing misses; otherwise it sends again until a
// listing finds no process it has not signalled. Every process but those
// getting SIGKILL also gets SIGCONT, so that a stopped one sees the
// signal, as systemd does.
func (cg *unitCgroup) signal(sig syscall.Signal, skip ...int) ([]int, error) {
	if mgr, err := cg.mgr.get(); err == nil && mgr.Freeze(cgroups.Frozen) == nil {
		defer mgr.Freeze(cgroups.Thawed)
		return cg.signalListed(sig, skip, true)
	}
	return cg.signalListed(sig, skip, false)
}

func (cg *unitCgroup) signalListed(sig syscall.Signal, skip []int, frozen bool) ([]int, error) {
	var signalled []int
	seen := map[int]bool{}
	for _, pid := range skip {
		seen[pid] = true
	}
	for {
		pids, err := cg.pids()
		if err != nil {
			return signalled, err
		}
		more := false
		for _, pid := range pids {
			if seen[pid] {
				continue
			}
			seen[pid], more = true, true
			signalled = append(signalled, pid)
			if unix.Kill(pid, sig) == nil && sig != syscall.SIGKILL && sig != syscall.SIGCONT {
				unix.Kill(pid, syscall.SIGCONT)
			}
		}
		if frozen || !more {
			return signalled, nil
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
	if err := cgroups.RemovePaths(cg.mgr.GetPaths()); err != nil {
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
	out := make([]string, len(cg.mgr.h.tasks))
	for i, name := range cg.mgr.h.tasks {
		out[i] = filepath.Join(cg.dir(name), "tasks")
	}
	return out
}

// homeTasksFiles are, in the order of tasksFiles, the tasks files of the
// cgroups the calling thread is in: where it goes back to after joining
// the unit's cgroup. It must run on the thread, locked to it.
func (cg *unitCgroup) homeTasksFiles() ([]string, error) {
	data, err := readKernelFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	// HIERARCHY-ID:CONTROLLER,...:PATH, or :name=NAME: for a named one.
	own := map[string]string{}
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSuffix(line, "\n"), ":", 3)
		if len(parts) == 3 {
			for c := range strings.SplitSeq(parts[1], ",") {
				own[c] = parts[2]
			}
		}
	}
	home := make([]string, len(cg.mgr.h.tasks))
	for i, name := range cg.mgr.h.tasks {
		ownPath, ok := own[name]
		if !ok {
			return nil, fmt.Errorf("cgroup %s: no way back to the daemon's cgroup in %s", cg.path, name)
		}
		home[i] = filepath.Join(cg.mgr.h.roots[name], ownPath, "tasks")
	}
	return home, nil
}

// readKernelFile reads a small file of the kernel's (/proc, /sys/fs/cgroup)
// with plain system calls: os.ReadFile would hand a cgroup file, which is
// pollable, to the runtime's poller, and wake it for nothing.
func readKernelFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
	}
}

// writeKernelFile writes data to a file of the kernel's in one write, as
// readKernelFile reads.
func writeKernelFile(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, data)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
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
	h, err := describeHierarchies()
	if err != nil {
		return err
	}
	root := h.open(path.Join("/", parent))
	listDir := root.dir(h.listKey)
	if !fileExists(listDir) {
		return nil
	}
	var errs []error
	err = filepath.WalkDir(listDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(listDir, p)
		cg := h.open(path.Join("/", parent, filepath.ToSlash(rel)))
		for range 10 {
			if pids, err := cg.signal(syscall.SIGKILL); err != nil || len(pids) == 0 {
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
