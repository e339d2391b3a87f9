package stage1

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/pod"
)

// EnterOptions says what to run where.
type EnterOptions struct {
	PodDir   string
	Manifest *pod.Manifest
	App      *pod.App
	// AppPID is the host PID of the app's main process: its namespaces are
	// the ones joined.
	AppPID int
	// CgroupProcs are the cgroup.procs files of the app's cgroup (one per
	// v1 hierarchy, or the v2 one).
	CgroupProcs []string
	Argv        []string
	Stdin       *os.File
	Stdout      *os.File
	Stderr      *os.File
}

// Enter runs a command inside a running app and returns its exit code. It
// joins the app's cgroup and namespaces and root, and confines
// the command exactly as the app is confined: same capabilities, seccomp
// filter, no_new_privs and user. It locks the calling goroutine to its
// thread for good; callers run it last in a short-lived process.
func Enter(o EnterOptions) (int, error) {
	for _, procs := range o.CgroupProcs {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return 0, fmt.Errorf("join the app's cgroup: %w", err)
		}
	}
	runtime.LockOSThread()
	// Namespace files are opened before any setns: after joining the mount
	// namespace, the host's /proc is out of sight.
	kinds := []struct {
		name string
		flag int
	}{{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET}, {"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS}}
	fds := make([]int, len(kinds))
	for i, k := range kinds {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", o.AppPID, k.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("app %s: open its %s namespace: %w", o.App.Name, k.name, err)
		}
		defer unix.Close(fd)
		fds[i] = fd
	}
	// A private fs context is what lets one thread of a Go process join
	// another mount namespace.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return 0, fmt.Errorf("unshare fs: %w", err)
	}
	for i, k := range kinds {
		if err := unix.Setns(fds[i], k.flag); err != nil {
			return 0, fmt.Errorf("app %s: join its %s namespace: %w", o.App.Name, k.name, err)
		}
	}
	c, err := newConfinement(o.Manifest, o.App)
	if err != nil {
		return 0, err
	}
	cmd, err := c.command(o.Argv)
	if err != nil {
		return 0, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	if err := c.confineThread(); err != nil {
		return 0, err
	}
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(unix.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// AppPID finds the host PID of an app's main process from its PID inside
// the pod: among the children of the pod's PID 1 (host PID stage1PID), the
// one whose innermost PID is podPID.
func AppPID(stage1PID, podPID int) (int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", stage1PID))
	if err != nil {
		return 0, fmt.Errorf("pod process %d: %w", stage1PID, err)
	}
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(stage1PID), "task", t.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			child, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if innermostPID(child) == podPID {
				return child, nil
			}
		}
	}
	return 0, fmt.Errorf("no process with PID %d in the pod (has the app exited?)", podPID)
}

func innermostPID(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[len(f)-1])
				return n
			}
		}
	}
	return 0
}
