package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"
)

// floorProc is one process of the floor and its cgroup.
type floorProc struct {
	cg  cgroups.Manager
	pid int
}

// floorRun does per process what the manager must do per unit and no
// more, in the same way (see builtin's cgroup.go and proc.go): make the
// cgroup CGROUP/floor/bench-N.service in every hierarchy with
// opencontainers/cgroups; start /bin/sleep 3600 in its own session on a
// locked thread that has joined the v1 cgroups (their tasks files),
// cloned into the v2 one (CLONE_INTO_CGROUP), and goes back to this
// process's cgroups after each fork. Stopping is SIGTERM, wait4 and
// removing the cgroup, process by process. What it leaves out of the
// manager's work: output FIFOs (its processes get /dev/null), pidfds,
// state records, the freezer while signalling, goroutines per unit.
func floorRun(ctx context.Context, o options) (res result, err error) {
	before, goroutines := rssKiB(), runtime.NumGoroutine()
	procs := make([]floorProc, 0, o.units)
	defer func() {
		// What a failed or interrupted run started.
		for _, p := range procs {
			if p.pid > 0 {
				unix.Kill(p.pid, unix.SIGKILL)
				unix.Wait4(p.pid, nil, 0, nil)
			}
			p.cg.Destroy()
		}
	}()
	own, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return result{}, err
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return result{}, err
	}
	defer devNull.Close()
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"}

	began := time.Now()
	err = onWorkerThread(func(tid int) (stuck bool, err error) {
		for _, name := range unitNames(o.units) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			p := path.Join(benchCgroup, "floor", name)
			cg, err := manager.New(&cgroups.Cgroup{Path: p, Resources: &cgroups.Resources{SkipDevices: true}})
			if err != nil {
				return false, fmt.Errorf("cgroup %s: %w", p, err)
			}
			procs = append(procs, floorProc{cg: cg})
			if err := cg.Apply(-1); err != nil {
				return false, fmt.Errorf("cgroup %s: %w", p, err)
			}
			pid, stuck, err := startIn(cg, p, own, tid, devNull, env)
			procs[len(procs)-1].pid = pid
			if err != nil {
				return stuck, fmt.Errorf("cgroup %s: %w", p, err)
			}
		}
		return false, nil
	})
	res.start = time.Since(began)
	if err != nil {
		return result{}, err
	}
	res.rssPerUnit = float64(rssKiB()-before) / float64(o.units)
	res.goroutinesPerUnit = float64(runtime.NumGoroutine()-goroutines) / float64(o.units)

	began = time.Now()
	for i := range procs {
		p := &procs[i]
		if err := unix.Kill(p.pid, unix.SIGTERM); err != nil {
			return result{}, fmt.Errorf("kill %d: %w", p.pid, err)
		}
		if _, err := unix.Wait4(p.pid, nil, 0, nil); err != nil {
			return result{}, fmt.Errorf("wait %d: %w", p.pid, err)
		}
		p.pid = 0
		if err := p.cg.Destroy(); err != nil {
			return result{}, err
		}
	}
	res.stop = time.Since(began)
	procs = nil
	return res, nil
}

// startIn starts /bin/sleep 3600 in cg (at cgPath) from thread tid, which
// joins cg's v1 hierarchies for the fork and goes back to this process's
// own cgroups (own, from /proc/self/cgroup) after. stuck reports
// a thread that could not go back.
func startIn(cg cgroups.Manager, cgPath string, own map[string]string, tid int, devNull *os.File, env []string) (pid int, stuck bool, err error) {
	paths := cg.GetPaths()
	names := make([]string, 0, len(paths))
	for name := range paths {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var joined []string
	seen := map[string]bool{}
	goBack := func() bool {
		for _, name := range slices.Backward(joined) {
			mount, _ := strings.CutSuffix(paths[name], cgPath)
			if os.WriteFile(filepath.Join(mount, own[name], "tasks"), []byte(strconv.Itoa(tid)), 0) != nil {
				return false
			}
		}
		return true
	}
	for _, name := range names {
		dir := paths[name]
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if _, err := os.Stat(filepath.Join(dir, "tasks")); err != nil {
			continue
		}
		if _, ok := own[name]; !ok || !strings.HasSuffix(dir, cgPath) {
			return 0, !goBack(), fmt.Errorf("no way back to this process's cgroup in %s", name)
		}
		if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte(strconv.Itoa(tid)), 0); err != nil {
			return 0, !goBack(), fmt.Errorf("join %s: %w", name, err)
		}
		joined = append(joined, name)
	}
	sys := &syscall.SysProcAttr{Setsid: true}
	if v2 := cg.Path(""); v2 != "" {
		f, err := os.Open(v2)
		if err != nil {
			return 0, !goBack(), err
		}
		defer f.Close()
		sys.UseCgroupFD, sys.CgroupFD = true, int(f.Fd())
	}
	proc, err := os.StartProcess("/bin/sleep", []string{"/bin/sleep", "3600"}, &os.ProcAttr{
		Dir: "/", Env: env, Files: []*os.File{devNull, devNull, devNull}, Sys: sys,
	})
	if err == nil {
		pid = proc.Pid
		proc.Release()
	}
	return pid, !goBack(), err
}

// onWorkerThread runs f on a thread locked to it that is not the main
// thread (the runtime parks a locked main thread instead of ending it). A
// thread f reports stuck in a unit's cgroups ends with its goroutine.
func onWorkerThread(f func(tid int) (stuck bool, err error)) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tid := unix.Gettid()
		if tid == unix.Getpid() {
			err := onWorkerThread(f)
			runtime.UnlockOSThread()
			done <- err
			return
		}
		stuck, err := f(tid)
		if stuck {
			done <- errors.Join(err, fmt.Errorf("thread %d could not go back to its cgroups", tid))
			return // locked: the thread ends
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}
