package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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
// opencontainers/cgroups, its directories the hierarchies' roots (read
// once) joined with its path; start /bin/sleep 3600 in its own session
// on a locked thread that has joined the v1 cgroups (their tasks files,
// written with plain system calls), cloned into the v2 one
// (CLONE_INTO_CGROUP), and goes back to this process's cgroups after each
// fork. Stopping is SIGTERM, wait4 and removing the cgroup, process by
// process. What it leaves out of the manager's work: output FIFOs (its
// processes get /dev/null), pidfds, state records, the listing of the
// cgroup at stop, goroutines per unit.
func floorRun(ctx context.Context, o options) (res result, err error) {
	before, goroutines := measureMemory(), runtime.NumGoroutine()
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
	roots, joins, err := hierarchies()
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
			paths := make(map[string]string, len(roots))
			for key, root := range roots {
				paths[key] = filepath.Join(root, p)
			}
			cg, err := manager.NewWithPaths(&cgroups.Cgroup{Path: p, Resources: &cgroups.Resources{SkipDevices: true}}, paths)
			if err != nil {
				return false, fmt.Errorf("cgroup %s: %w", p, err)
			}
			procs = append(procs, floorProc{cg: cg})
			if err := cg.Apply(-1); err != nil {
				return false, fmt.Errorf("cgroup %s: %w", p, err)
			}
			pid, stuck, err := startIn(paths, roots, joins, own, tid, devNull, env)
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
	res.growth(before, measureMemory(), o.units)
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

// hierarchies reads the machine's cgroup hierarchies once: their root
// directories, keyed as the library keys a cgroup's paths, and the keys
// of the v1 ones a thread joins (their tasks files), one per directory,
// but devices, where cgroups made with SkipDevices are not.
func hierarchies() (roots map[string]string, joins []string, err error) {
	m, err := manager.New(&cgroups.Cgroup{Path: "/", Resources: &cgroups.Resources{SkipDevices: true}})
	if err != nil {
		return nil, nil, err
	}
	roots = m.GetPaths()
	seen := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(roots)) {
		dir := roots[key]
		if key == "" || key == "devices" || seen[dir] {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "tasks")); err != nil {
			continue
		}
		seen[dir] = true
		joins = append(joins, key)
	}
	return roots, joins, nil
}

// startIn starts /bin/sleep 3600 in the cgroup whose directories are
// paths from thread tid, which joins its v1 hierarchies (joins) for the
// fork and goes back to this process's own cgroups (own, from
// /proc/self/cgroup, below roots) after. stuck reports a thread that
// could not go back.
func startIn(paths, roots map[string]string, joins []string, own map[string]string, tid int, devNull *os.File, env []string) (pid int, stuck bool, err error) {
	id := []byte(strconv.Itoa(tid))
	var joined []string
	goBack := func() bool {
		for _, key := range slices.Backward(joined) {
			if writeFile(filepath.Join(roots[key], own[key], "tasks"), id) != nil {
				return false
			}
		}
		return true
	}
	for _, key := range joins {
		if _, ok := own[key]; !ok {
			return 0, !goBack(), fmt.Errorf("no way back to this process's cgroup in %s", key)
		}
		if err := writeFile(filepath.Join(paths[key], "tasks"), id); err != nil {
			return 0, !goBack(), fmt.Errorf("join %s: %w", key, err)
		}
		joined = append(joined, key)
	}
	sys := &syscall.SysProcAttr{Setsid: true}
	if v2 := paths[""]; v2 != "" {
		fd, err := unix.Open(v2, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, !goBack(), err
		}
		defer unix.Close(fd)
		sys.UseCgroupFD, sys.CgroupFD = true, fd
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

// writeFile writes data to a cgroup file with plain system calls, as the
// manager does: os.WriteFile hands the file, which is pollable, to the
// runtime's poller.
func writeFile(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, data); err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
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
