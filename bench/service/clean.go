package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sweep removes the benchmark's cgroups from every hierarchy, killing and
// reaping any process still in them, then checks that no child process
// and no cgroup is left. What it had to remove below the contenders'
// parents (a unit's cgroup, a process) is an error too: a run should
// leave only the parents themselves.
func sweep() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	cgroupsLeft, procsLeft := 0, map[int]bool{}
	for _, mount := range mounts {
		root := filepath.Join(mount, benchCgroup)
		var dirs []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Deepest first: a cgroup goes before its parent.
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, dir := range dirs {
			if rel, _ := filepath.Rel(root, dir); strings.Count(rel, "/") >= 1 {
				cgroupsLeft++
			}
			for _, pid := range cgroupProcs(dir) {
				procsLeft[pid] = true
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		reapChildren()
		for _, dir := range dirs {
			if err := rmdirRetry(dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if children := childPIDs(); len(children) > 0 {
		errs = append(errs, fmt.Errorf("child processes left: %v", children))
	}
	if cgroupsLeft > 0 || len(procsLeft) > 0 {
		errs = append(errs, fmt.Errorf("removed what a run left: %d cgroups (over all hierarchies), %d processes", cgroupsLeft, len(procsLeft)))
	}
	return errors.Join(errs...)
}

// cgroupMounts are the mount points of the cgroup hierarchies, v1 and v2.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE ...
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fs := fields[sep+1]; fs == "cgroup" || fs == "cgroup2" {
			mounts = append(mounts, fields[4])
		}
	}
	return mounts, sc.Err()
}

// cgroupProcs lists the processes in one cgroup directory; none if it has
// no cgroup.procs (or is gone).
func cgroupProcs(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// reapChildren waits for every child that has ended.
func reapChildren() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		switch {
		case err != nil: // ECHILD: no child at all
			return
		case pid == 0: // children, none ended yet
			if len(childPIDs()) == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// rmdirRetry removes an empty cgroup, waiting a little for the kernel to
// let go of processes that just ended.
func rmdirRetry(dir string) error {
	var err error
	for range 100 {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// childPIDs are the processes whose parent is this one.
func childPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var children []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(data)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		// After the name: state, then the parent's PID.
		if fields := strings.Fields(s[end+1:]); len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			children = append(children, pid)
		}
	}
	return children
}
