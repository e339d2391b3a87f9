package playground

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/node"
	"atoll.dev/atoll/internal/service/builtin"
)

// MachineStatus is one row of Status.
type MachineStatus struct {
	Name  string `json:"name"`
	ID    string `json:"id"`
	IP    string `json:"ip"`
	Role  string `json:"role"`
	State string `json:"state"`
	// Detail says why a machine is not healthy.
	Detail string `json:"detail,omitempty"`
}

// Machine states in Status.
const (
	StateHealthy     = "healthy"
	StateUnhealthy   = "unhealthy"
	StateStopped     = "stopped"
	StatePartitioned = "partitioned"
)

// Status asks every machine's daemon how it is, in parallel.
func (c *Cluster) Status(ctx context.Context) []MachineStatus {
	out := make([]MachineStatus, len(c.Machines))
	done := make(chan struct{}, len(c.Machines))
	for i, m := range c.Machines {
		go func() {
			defer func() { done <- struct{}{} }()
			st := MachineStatus{Name: m.Name, IP: m.IP, Role: "-", ID: "-"}
			if !alive(m.PID) {
				st.State = StateStopped
				out[i] = st
				return
			}
			reqCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			local := client.Local{RunDir: m.RunDir}
			info, err := local.Machine(reqCtx)
			if err != nil {
				st.State, st.Detail = StateUnhealthy, err.Error()
				out[i] = st
				return
			}
			st.ID, st.Role = info.ID, info.Store.Role
			if info.Store.IsLeader {
				st.Role += " (leader)"
			}
			switch {
			case m.Partitioned:
				st.State = StatePartitioned
			case info.Store.Healthy:
				st.State = StateHealthy
			default:
				st.State, st.Detail = StateUnhealthy, info.Store.Error
			}
			out[i] = st
		}()
	}
	for range c.Machines {
		<-done
	}
	return out
}

// Exec runs argv inside the machine, as a person logged in there would:
// in its network namespace, with ATOLL_RUN_DIR and ATOLL_ROOT naming its
// run directory and root. So atoll commands there talk to the machine's
// daemon, and `atoll image` and `atoll pod` keep images and pods in the
// machine's state (Root/var/lib/atoll), apart from the host's and the
// other machines'; Down stops those pods. Only the network namespace is
// the machine's: mounts, cgroups and processes are the host's. Nil stdin,
// stdout or stderr mean /dev/null. It returns argv's exit status as the
// error.
func (c *Cluster) Exec(ctx context.Context, machine string, argv []string, stdin *os.File, stdout, stderr *os.File) error {
	m, err := c.Machine(machine)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return ErrNeedRoot
	}
	if len(argv) == 0 {
		return fmt.Errorf("playground: exec on %s: no command given", machine)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), m.env()...)
	// A nil *os.File in an interface would be a closed descriptor, not
	// /dev/null.
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	if err := startIn(netnsPath(m.NetNS), cmd); err != nil {
		return fmt.Errorf("playground: exec on %s: %w", machine, err)
	}
	return cmd.Wait()
}

// env is what makes atoll commands act on the machine rather than on the
// host: its daemon's run directory and its root.
func (m Machine) env() []string {
	return []string{api.RunDirEnv + "=" + m.RunDir, api.RootEnv + "=" + m.Root}
}

// update changes the cluster under the host lock: it reads cluster.json
// again, applies change and saves, so that drills run at the same time
// (stop m1 while stopping m2) never lose each other's changes.
func (c *Cluster) update(change func() error) error {
	if os.Geteuid() != 0 {
		return ErrNeedRoot
	}
	unlock, err := hostLock()
	if err != nil {
		return err
	}
	defer unlock()
	fresh, err := readCluster(c.file())
	if err != nil {
		return err
	}
	*c = *fresh
	if err := change(); err != nil {
		return err
	}
	return c.save()
}

// Stop sends sig (SIGTERM for a clean stop, SIGKILL for a crash drill) to
// the machine's daemon and waits for it to exit. It waits outside the
// host lock, so a slow shutdown holds up no other drill.
func (c *Cluster) Stop(opts Options, machine string, sig syscall.Signal) error {
	if os.Geteuid() != 0 {
		return ErrNeedRoot
	}
	binary, err := opts.binary()
	if err != nil {
		return err
	}
	current, err := readCluster(c.file())
	if err != nil {
		return err
	}
	m, err := current.Machine(machine)
	if err != nil {
		return err
	}
	stopped := m.PID
	if alive(stopped) && isAtoll(stopped, binary) {
		terminate([]int{stopped}, sig, 15*time.Second)
	}
	return c.update(func() error {
		m, err := c.Machine(machine)
		if err != nil {
			return err
		}
		if m.PID == stopped { // not started again meanwhile
			m.PID = 0
		}
		return nil
	})
}

// Crash is a power cut: the machine's daemon, its pods and every process
// of its units die at once (SIGKILL), as when the machine itself dies.
// (Stop with SIGKILL kills the daemon only: units and pods outlive their
// daemon.) Start brings the machine back, empty.
func (c *Cluster) Crash(opts Options, machine string) error {
	m, err := c.Machine(machine)
	if err != nil {
		return err
	}
	paths := node.Paths{Root: m.Root, RunDir: m.RunDir}
	id, err := os.ReadFile(paths.MachineIDFile())
	if err != nil {
		return fmt.Errorf("playground: crash %s: %w", machine, err)
	}
	if err := c.Stop(opts, machine, syscall.SIGKILL); err != nil {
		return err
	}
	binary, err := opts.binary()
	if err != nil {
		return err
	}
	if problems := stopPods(binary, []Machine{*m}, 0); len(problems) > 0 {
		return fmt.Errorf("playground: crash %s: %s", machine, strings.Join(problems, "; "))
	}
	if err := builtin.RemoveCgroupTree(node.UnitCgroupParent(paths, strings.TrimSpace(string(id)))); err != nil {
		return fmt.Errorf("playground: crash %s: units: %w", machine, err)
	}
	return nil
}

// Start starts a stopped machine's daemon again.
func (c *Cluster) Start(opts Options, machine string) error {
	binary, err := opts.binary()
	if err != nil {
		return err
	}
	return c.update(func() error {
		m, err := c.Machine(machine)
		if err != nil {
			return err
		}
		if alive(m.PID) {
			return fmt.Errorf("playground: machine %s runs already (pid %d)", machine, m.PID)
		}
		return c.startMachine(m, binary)
	})
}

// Partition cuts the machine off the network: its host-side link goes
// down, so it reaches no other machine and none reaches it. Its own
// loopback still works, so commands run by Exec reach its daemon.
func (c *Cluster) Partition(machine string) error {
	return c.update(func() error {
		m, err := c.Machine(machine)
		if err != nil {
			return err
		}
		if err := ip("link", "set", m.HostLink, "down"); err != nil {
			return fmt.Errorf("playground: partition %s: %w", machine, err)
		}
		m.Partitioned = true
		return nil
	})
}

// Heal ends every partition.
func (c *Cluster) Heal() error {
	return c.update(func() error {
		for i := range c.Machines {
			m := &c.Machines[i]
			if err := ip("link", "set", m.HostLink, "up"); err != nil {
				return fmt.Errorf("playground: heal %s: %w", m.Name, err)
			}
			m.Partitioned = false
		}
		return nil
	})
}

// Env returns the environment that points the real etcdctl at the
// cluster's store, as name/value pairs in a stable order.
func (c *Cluster) Env() [][2]string {
	env := [][2]string{{"ETCDCTL_API", "3"}, {"ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ",")}}
	if tls := c.ClientTLS(); tls != nil {
		env = append(env, [2]string{"ETCDCTL_CACERT", tls.CA}, [2]string{"ETCDCTL_CERT", tls.Cert}, [2]string{"ETCDCTL_KEY", tls.Key})
	}
	return env
}
