package playground

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ip runs ip(8) and returns an error that carries what it printed.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func ipOutput(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// netnsPath is where ip(8) keeps the named network namespace.
func netnsPath(name string) string { return filepath.Join("/run/netns", name) }

// startIn starts cmd in the network namespace at nsPath, and in no other
// namespace: the command shares the host's mounts, so it sees the host's
// /sys/fs/cgroup as a process on a real machine sees its own. That is why
// this does not run `ip netns exec`: it mounts a fresh sysfs over /sys,
// which hides the cgroup hierarchies that pods are put in.
func startIn(nsPath string, cmd *exec.Cmd) error {
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer target.Close()
	started := make(chan error, 1)
	go func() {
		// A child starts in the namespace of the thread that forks it. The
		// thread goes back to its own namespace afterwards: it may be the
		// main thread, whose namespace is the process's for ip(8), and
		// Down kills every process in a machine's namespace.
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			started <- fmt.Errorf("network namespace: %w", err)
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			started <- fmt.Errorf("enter network namespace %s: %w", nsPath, err)
			return
		}
		err = cmd.Start()
		// Left locked if it cannot go back: Go then ends the thread rather
		// than run other code in the machine's namespace.
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		started <- err
	}()
	return <-started
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func netnsList() ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// netnsPIDs lists every process living in the named namespace.
func netnsPIDs(ns string) []int {
	out, err := ipOutput("netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, field := range strings.Fields(out) {
		if pid, err := strconv.Atoi(field); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	return data[i+2] != 'Z' && data[i+2] != 'X'
}

// isAtoll reports whether pid runs the atoll binary, so that a PID kept in
// cluster.json and reused since by an unrelated process is never signalled.
func isAtoll(pid int, binary string) bool {
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	return exe == binary || filepath.Base(exe) == "atoll" || filepath.Base(exe) == filepath.Base(binary)
}

// terminate sends SIGTERM (or sig), waits up to grace for the processes to
// go, then SIGKILLs whatever is left and waits for that too.
func terminate(pids []int, sig syscall.Signal, grace time.Duration) {
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !anyAlive(pids) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for i := 0; i < 250 && anyAlive(pids); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

func anyAlive(pids []int) bool {
	for _, pid := range pids {
		if alive(pid) {
			return true
		}
	}
	return false
}

// hostLock serialises playground changes on this host: subnets and link
// names are host-wide, whatever directory the clusters live in.
func hostLock() (unlock func(), err error) {
	const path = "/run/atoll-playground.lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("playground: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("playground: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// subnetInUse reports whether any host interface has an address in the
// /24 of gateway.
func subnetInUse(subnet *net.IPNet) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && (subnet.Contains(ipnet.IP) || ipnet.Contains(subnet.IP)) {
			return true
		}
	}
	return false
}

// pickSubnet chooses the first 10.213.K.0/24 that neither another
// playground cluster nor any host interface uses.
func pickSubnet(taken map[string]bool) (*net.IPNet, error) {
	for k := 1; k < 255; k++ {
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.213.%d.0/24", k))
		if taken[subnet.String()] || subnetInUse(subnet) {
			continue
		}
		return subnet, nil
	}
	return nil, errors.New("playground: every 10.213.K.0/24 is in use")
}

func hostIP(subnet *net.IPNet, host int) net.IP {
	ip := make(net.IP, 4)
	copy(ip, subnet.IP.To4())
	ip[3] = byte(host)
	return ip
}
