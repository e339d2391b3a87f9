package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"atoll.dev/atoll/internal/runtime/network"
	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/stage1"
)

// RunOptions say how the pod process runs a pod.
type RunOptions struct {
	// Remove deletes the pod when it exits (--rm).
	Remove bool
	// StopTimeout is how long apps get between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// Stdin, Stdout and Stderr are the pod's standard files; nil means the
	// process's own.
	Stdin, Stdout, Stderr *os.File
	// Started, if set, is called once the pod runs.
	Started func(uuid string)
}

// DefaultStopTimeout is how long apps get to exit after SIGTERM.
const DefaultStopTimeout = 10 * time.Second

// Run runs a pod this process holds (from Prepare, or RunPrepared) and
// returns its exit code once it has exited and been cleaned up. SIGTERM,
// SIGINT and SIGHUP sent to this process are passed to the pod's apps.
func (rt *Runtime) Run(ctx context.Context, p *pod.Pod, o RunOptions) (int, error) {
	defer p.Close()
	if p.Phase == pod.PhasePrepare {
		if err := p.Start(); err != nil {
			return 0, err
		}
	}
	m, err := pod.ReadManifest(p.Dir())
	if err != nil {
		return 0, err
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	stdin, stdout, stderr := orFile(o.Stdin, os.Stdin), orFile(o.Stdout, os.Stdout), orFile(o.Stderr, os.Stderr)
	code, runErr := rt.run(ctx, p, m, o, stdin, stdout, stderr)
	// Everything the pod had outside its namespaces goes, whatever happened.
	cleanErr := rt.cleanup(ctx, m)
	if o.Remove {
		if err := p.Remove(); err != nil && cleanErr == nil {
			cleanErr = err
		}
	}
	if runErr != nil {
		return code, runErr
	}
	return code, cleanErr
}

func orFile(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

func (rt *Runtime) run(ctx context.Context, p *pod.Pod, m *pod.Manifest, o RunOptions, stdin, stdout, stderr *os.File) (int, error) {
	dir := p.Dir()
	terminal := len(m.Apps) == 1 && m.Apps[0].Terminal
	var console *os.File
	if terminal {
		ptmx, tty, err := pty.Open()
		if err != nil {
			return 0, fmt.Errorf("pod %s: terminal: %w", m.UUID, err)
		}
		defer ptmx.Close()
		defer tty.Close()
		if size, err := pty.GetsizeFull(stdin); err == nil {
			pty.Setsize(ptmx, size)
		}
		if state, err := term.MakeRaw(int(stdin.Fd())); err == nil {
			defer term.Restore(int(stdin.Fd()), state)
		}
		go io.Copy(ptmx, stdin)
		go io.Copy(stdout, ptmx)
		console = tty
	}

	exe, err := readOnlySelf(dir)
	if err != nil {
		return 0, fmt.Errorf("pod %s: %w", m.UUID, err)
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		detach(exe)
		return 0, fmt.Errorf("pod %s: %w", m.UUID, err)
	}
	defer syncW.Close()
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       stage1.Args(dir, o.StopTimeout),
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		ExtraFiles: []*os.File{syncR, p.LockFile()},
		Stdin:      stdin,
		Stdout:     stdout,
		Stderr:     stderr,
	}
	if console != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = console, console, console
	}
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if m.Net.Mode != "host" {
		flags |= unix.CLONE_NEWNET
	}
	// The pod dies with this process: a unit's stop reaches it even by SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: unix.SIGKILL}
	err = cmd.Start()
	syncR.Close()
	detach(exe)
	if err != nil {
		return 0, fmt.Errorf("pod %s: start stage1: %w", m.UUID, err)
	}
	// From here on the pod's PID 1 exists and must be waited for.
	state := &pod.RunState{PID: cmd.Process.Pid, Supervisor: os.Getpid(), Started: time.Now().UTC(), Cgroup: cgroupPath(m.UUID)}
	if err := rt.setup(ctx, dir, m, state); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	if err := pod.WriteRunState(dir, state); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	if _, err := syncW.Write([]byte{1}); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("pod %s: start: %w", m.UUID, err)
	}
	syncW.Close()
	if o.Started != nil {
		o.Started(m.UUID)
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer signal.Stop(signals)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-signals:
				cmd.Process.Signal(sig)
			case <-ctx.Done():
				cmd.Process.Signal(unix.SIGTERM)
				ctx = context.Background()
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if ws, ok := exit.Sys().(unix.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	case err != nil:
		return 0, fmt.Errorf("pod %s: %w", m.UUID, err)
	}
	now := time.Now().UTC()
	state.Finished, state.ExitCode = &now, &code
	if err := pod.WriteRunState(dir, state); err != nil {
		return code, err
	}
	return code, nil
}

// setup gives the started pod its cgroup, networks and /etc files.
func (rt *Runtime) setup(ctx context.Context, dir string, m *pod.Manifest, state *pod.RunState) error {
	// The cgroups and the networks are independent, and each takes a few
	// milliseconds of the kernel's time (moving PID 1 into a v1 cgroup
	// waits for an RCU grace period): they are made at once.
	var apps map[string]pod.AppCgroup
	cgroupsMade := make(chan error, 1)
	go func() {
		var err error
		apps, err = newPodCgroups(m, state.PID)
		cgroupsMade <- err
	}()
	nets, dns, netErr := rt.setupNetworks(ctx, m, state.PID)
	if err := errors.Join(<-cgroupsMade, netErr); err != nil {
		return fmt.Errorf("pod %s: %w", m.UUID, err)
	}
	state.AppCgroups, state.Networks = apps, nets
	return writeEtc(dir, m, state.Networks, dns)
}

// setupNetworks attaches the pod whose PID 1 is pid to its networks.
func (rt *Runtime) setupNetworks(ctx context.Context, m *pod.Manifest, pid int) ([]pod.Network, []string, error) {
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	switch m.Net.Mode {
	case "none":
		return nil, nil, network.LoopbackUp(netns)
	case "contained":
		ports := make([]network.PortMapping, len(m.Net.Ports))
		for i, p := range m.Net.Ports {
			ports[i] = network.PortMapping{ContainerPort: p.ContainerPort, HostPort: p.HostPort, Protocol: p.Protocol, HostIP: p.HostIP}
		}
		atts, err := network.Setup(ctx, rt.Net, m.UUID, netns, m.Net.Networks, ports)
		if err != nil {
			return nil, nil, err
		}
		var nets []pod.Network
		var dns []string
		for _, a := range atts {
			nets = append(nets, pod.Network{Name: a.Network, IfName: a.IfName, IP: a.IP.IP.String(), Gateway: ipString(a.Gateway)})
			dns = append(dns, a.DNS...)
		}
		return nets, dns, nil
	}
	return nil, nil, nil
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

// writeEtc writes the pod's hostname, hosts and resolv.conf, which stage1
// binds over each app's.
func writeEtc(dir string, m *pod.Manifest, nets []pod.Network, netDNS []string) error {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, n := range nets {
		hosts += n.IP + "\t" + m.Hostname + "\n"
	}
	if len(nets) == 0 {
		hosts += "127.0.1.1\t" + m.Hostname + "\n"
	}
	files := map[string]string{"hostname": m.Hostname + "\n", "hosts": hosts}
	if resolv, ok := resolvConf(m, netDNS); ok {
		files["resolv.conf"] = resolv
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("pod %s: %w", m.UUID, err)
		}
	}
	return nil
}

// resolvConf is the pod's /etc/resolv.conf: the --dns servers; else the
// host's, without loopback servers a contained pod cannot reach, else the
// network's; "--dns=none" keeps the image's own file.
func resolvConf(m *pod.Manifest, netDNS []string) (string, bool) {
	switch {
	case len(m.DNS) == 1 && m.DNS[0] == "none":
		return "", false
	case len(m.DNS) > 0 && !(len(m.DNS) == 1 && m.DNS[0] == "host"):
		var b strings.Builder
		for _, s := range m.DNS {
			b.WriteString("nameserver " + s + "\n")
		}
		return b.String(), true
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	if m.Net.Mode == "host" {
		return string(host), true
	}
	var b strings.Builder
	servers := 0
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip == nil || ip.IsLoopback() {
				continue
			}
			servers++
		}
		if strings.TrimSpace(line) != "" {
			b.WriteString(line + "\n")
		}
	}
	if servers == 0 {
		for _, s := range netDNS {
			b.WriteString("nameserver " + s + "\n")
		}
	}
	return b.String(), true
}

// cleanup removes what a pod had outside its namespaces: its networks and
// its cgroup. It is safe to call more than once and after a kill -9.
func (rt *Runtime) cleanup(ctx context.Context, m *pod.Manifest) error {
	cgroupsGone := make(chan error, 1)
	go func() { cgroupsGone <- destroyPodCgroup(m.UUID) }()
	var netErr error
	if m.Net.Mode == "contained" {
		netErr = network.Teardown(ctx, rt.Net, m.UUID, "")
	}
	return errors.Join(netErr, <-cgroupsGone)
}

// readOnlySelf makes the running atoll binary available at dir/stage1
// through a read-only bind mount: stage1 is executed from there, so that
// /proc/<pid>/exe of the pod's PID 1 leads to a read-only mount.
func readOnlySelf(dir string) (string, error) {
	target := filepath.Join(dir, "stage1")
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o500)
	if err != nil {
		return "", fmt.Errorf("stage1: %w", err)
	}
	f.Close()
	if err := unix.Mount("/proc/self/exe", target, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("stage1: bind the atoll binary: %w", err)
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		detach(target)
		return "", fmt.Errorf("stage1: bind the atoll binary read-only: %w", err)
	}
	return target, nil
}

// detach lazily unmounts the stage1 bind: the running process keeps its
// executable mapped, and no mount is left behind in the host.
func detach(target string) {
	unix.Unmount(target, unix.MNT_DETACH)
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
