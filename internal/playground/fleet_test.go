package playground

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/fleet/fleetapi"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/node"
)

// fleetClient talks to fleet's API on a machine's local socket.
func fleetClient(t *testing.T, m Machine) *fleetapi.Client {
	t.Helper()
	c, err := fleetapi.NewClient("unix://"+filepath.Join(m.RunDir, "atoll.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sleeper is a unit whose one process sleeps: cheap, and easy to find in
// its machine's cgroups.
func sleeper(name string, xfleet ...string) *schema.Unit {
	u := &schema.Unit{Name: name, DesiredState: schema.StateLaunched, Options: []*schema.UnitOption{
		{Section: "Service", Name: "ExecStart", Value: "/bin/sleep 100000"},
	}}
	for _, kv := range xfleet {
		k, v, _ := strings.Cut(kv, "=")
		u.Options = append(u.Options, &schema.UnitOption{Section: "X-Fleet", Name: k, Value: v})
	}
	return u
}

// launched waits until every named unit is launched and returns where
// each runs.
func launched(t *testing.T, fc *fleetapi.Client, names ...string) map[string]string {
	t.Helper()
	var where map[string]string
	eventually(t, fmt.Sprintf("%d units launched", len(names)), func(ctx context.Context) error {
		units, err := fc.Units(ctx)
		if err != nil {
			return err
		}
		where = map[string]string{}
		all := map[string]*schema.Unit{}
		for _, u := range units {
			all[u.Name] = u
			if u.CurrentState == schema.StateLaunched {
				where[u.Name] = u.MachineID
			}
		}
		for _, n := range names {
			if _, ok := where[n]; !ok {
				return fmt.Errorf("%s not launched (%d of %d are): %+v", n, len(where), len(names), all[n])
			}
		}
		return nil
	})
	return where
}

// running reads, from outside the cluster, which units have a process on
// which machine: the processes in each machine's unit cgroups.
type observer struct {
	byID map[string]string // machine ID -> cgroup parent of its units
}

func newObserver(t *testing.T, c *Cluster) *observer {
	o := &observer{byID: map[string]string{}}
	for _, m := range c.Machines {
		paths := node.Paths{Root: m.Root, RunDir: m.RunDir}
		id, err := os.ReadFile(paths.MachineIDFile())
		if err != nil {
			t.Fatal(err)
		}
		o.byID[strings.TrimSpace(string(id))] = node.UnitCgroupParent(paths, strings.TrimSpace(string(id)))
	}
	return o
}

// where returns unit -> machines that run a process of it.
func (o *observer) where() map[string][]string {
	out := map[string][]string{}
	for id, parent := range o.byID {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/pids", parent, "*.service"))
		if len(dirs) == 0 {
			dirs, _ = filepath.Glob(filepath.Join("/sys/fs/cgroup/unified", parent, "*.service"))
		}
		for _, d := range dirs {
			procs, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err == nil && len(strings.TrimSpace(string(procs))) > 0 {
				out[filepath.Base(d)] = append(out[filepath.Base(d)], id)
			}
		}
	}
	return out
}

func machineByID(t *testing.T, c *Cluster, o *observer, id string) string {
	for _, m := range c.Machines {
		paths := node.Paths{Root: m.Root, RunDir: m.RunDir}
		b, _ := os.ReadFile(paths.MachineIDFile())
		if strings.TrimSpace(string(b)) == id {
			return m.Name
		}
	}
	t.Fatalf("no machine has ID %s", id)
	return ""
}

// Units spread over the machines; when one machine dies (daemon and units
// killed at once), its units are launched on the others within its
// lease's TTL and one reconcile, and no other unit moves.
func TestFleetMovesTheUnitsOfACrashedMachine(t *testing.T) {
	c, opts := upCluster(t, UpOptions{Machines: 3})
	ctx := context.Background()
	fc := fleetClient(t, c.Machines[0])
	var names []string
	for i := 1; i <= 6; i++ {
		u := sleeper(fmt.Sprintf("sleep@%d.service", i))
		if err := fc.CreateUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
		names = append(names, u.Name)
	}
	before := launched(t, fc, names...)
	load := map[string]int{}
	for _, id := range before {
		load[id]++
	}
	if len(load) != 3 || slices.Max(slices.Collect(maps.Values(load))) != 2 {
		t.Fatalf("units not spread 2 per machine: %v", before)
	}
	o := newObserver(t, c)
	victim := c.Machines[2]
	victimID := ""
	for id := range o.byID {
		if machineByID(t, c, o, id) == victim.Name {
			victimID = id
		}
	}
	crashed := time.Now()
	if err := c.Crash(opts, victim.Name); err != nil {
		t.Fatal(err)
	}
	after := launched(t, fc, names...)
	eventually(t, "the victim's units launched elsewhere", func(ctx context.Context) error {
		after = launched(t, fc, names...)
		for u, id := range after {
			if id == victimID {
				return fmt.Errorf("%s still on the crashed machine", u)
			}
		}
		return nil
	})
	t.Logf("the crashed machine's units were launched elsewhere %s after the crash (lease TTL %s)",
		time.Since(crashed).Round(10*time.Millisecond), time.Duration(PlaygroundFleetTTL))
	for u, id := range before {
		if id != victimID && after[u] != id {
			t.Errorf("%s moved from %s to %s though its machine lives", u, id, after[u])
		}
	}
	// What runs where, seen from outside: each unit on one machine.
	eventually(t, "each unit running once, where fleet says", func(context.Context) error {
		seen := o.where()
		for _, u := range names {
			if !slices.Equal(seen[u], []string{after[u]}) {
				return fmt.Errorf("%s runs on %v, fleet says %s", u, seen[u], after[u])
			}
		}
		return nil
	})
}

// A machine cut off from the others stops its units before they start
// elsewhere (grace 0): an observer outside the cluster, sampling the
// machines' cgroups, never sees a unit run on two machines.
func TestFleetPartitionNeverRunsAUnitTwice(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 3})
	ctx := context.Background()
	fc := fleetClient(t, c.Machines[0])
	victim := c.Machines[2]
	var names []string
	for i := 1; i <= 3; i++ {
		u := sleeper(fmt.Sprintf("solo@%d.service", i), "MachineMetadata=machine="+victim.Name)
		if i > 1 {
			u = sleeper(fmt.Sprintf("solo@%d.service", i))
		}
		if err := fc.CreateUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
		names = append(names, u.Name)
	}
	// solo@1 is pinned to the victim, so that the victim runs a unit.
	launched(t, fc, names...)
	o := newObserver(t, c)
	// Drop the pin, so solo@1 may move once its machine is gone.
	if err := fc.CreateUnit(ctx, sleeper("solo@1.service")); err != nil {
		t.Fatal(err)
	}
	t.Logf("before the partition: %v", launched(t, fc, names...))

	var (
		mu      sync.Mutex
		twice   []string
		stopped = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			select {
			case <-stopped:
				return
			default:
			}
			for u, ms := range o.where() {
				if len(ms) > 1 {
					mu.Lock()
					twice = append(twice, fmt.Sprintf("%s on %v at %s", u, ms, time.Now().Format("15:04:05.000")))
					mu.Unlock()
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := c.Partition(victim.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("partitioned %s at %s", victim.Name, time.Now().Format("15:04:05.000"))
	eventually(t, "the victim's units launched elsewhere", func(ctx context.Context) error {
		units, err := fc.Units(ctx)
		if err != nil {
			return err
		}
		for _, u := range units {
			if u.CurrentState != schema.StateLaunched || machineByID(t, c, o, u.MachineID) == victim.Name {
				return fmt.Errorf("%s is %s on %s", u.Name, u.CurrentState, u.MachineID)
			}
		}
		seen := o.where()
		for _, u := range units {
			if !slices.Equal(seen[u.Name], []string{u.MachineID}) {
				return fmt.Errorf("%s runs on %v", u.Name, seen[u.Name])
			}
		}
		return nil
	})
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(PlaygroundFleetTTL)) // the healed machine rejoins and must stay out of the way
	close(stopped)
	<-done
	if len(twice) > 0 {
		logData, _ := os.ReadFile(victim.Log)
		t.Logf("%s log:\n%s", victim.Name, tail(logData, 6000))
		t.Fatalf("units ran on two machines at once (grace 0): %v", twice[:min(len(twice), 10)])
	}
	for u, ms := range o.where() {
		if len(ms) != 1 {
			t.Errorf("after healing, %s runs on %v", u, ms)
		}
	}
}

// The engine leader's daemon killed with -9 and started again: a new
// engine term begins, and no unit moves.
func TestFleetLeaderKillMovesNothing(t *testing.T) {
	c, opts := upCluster(t, UpOptions{Machines: 3})
	ctx := context.Background()
	fc := fleetClient(t, c.Machines[0])
	var names []string
	for i := 1; i <= 6; i++ {
		u := sleeper(fmt.Sprintf("keep@%d.service", i))
		if err := fc.CreateUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
		names = append(names, u.Name)
	}
	before := launched(t, fc, names...)
	leader := ""
	eventually(t, "an engine leader", func(ctx context.Context) error {
		for _, m := range c.Machines {
			mach, err := client.Local{RunDir: m.RunDir}.Machine(ctx)
			if err == nil && slices.Contains(mach.Roles, "fleet-engine-leader") {
				leader = m.Name
				return nil
			}
		}
		return fmt.Errorf("no machine says it leads")
	})
	if err := c.Stop(opts, leader, 9); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(opts, leader); err != nil {
		t.Fatal(err)
	}
	// A unit submitted now is placed only by a leader of the new term.
	other := c.Machines[0]
	if other.Name == leader {
		other = c.Machines[1]
	}
	fc = fleetClient(t, other)
	eventually(t, "late.service submitted", func(ctx context.Context) error {
		return fc.CreateUnit(ctx, sleeper("late.service"))
	})
	after := launched(t, fc, append(names, "late.service")...)
	for _, u := range names {
		if after[u] != before[u] {
			t.Errorf("%s moved from %s to %s across the leader's restart", u, before[u], after[u])
		}
	}
}

// atollFleet runs `atoll fleet ARGS` against a machine's socket, as an
// operator would.
func atollFleet(t *testing.T, m Machine, args ...string) string {
	t.Helper()
	cmd := exec.Command(atollBinary, append([]string{"fleet", "--endpoint", "unix://" + filepath.Join(m.RunDir, "atoll.sock")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("atoll fleet %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// A rolling restart restarts every unit, one at a time: an observer
// outside the cluster never sees two of them down at once.
func TestFleetRollingRestart(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 3})
	m := c.Machines[0]
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "roll@.service"), []byte("[Service]\nExecStart=/bin/sleep 100000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(atollBinary, "fleet", "--endpoint", "unix://"+filepath.Join(m.RunDir, "atoll.sock"), "start", "roll@{1..3}")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	names := []string{"roll@1.service", "roll@2.service", "roll@3.service"}
	launched(t, fleetClient(t, m), names...)
	o := newObserver(t, c)
	pids := func() map[string]string {
		out := map[string]string{}
		for id, parent := range o.byID {
			for _, u := range names {
				b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", parent, u, "cgroup.procs"))
				if err == nil && len(strings.TrimSpace(string(b))) > 0 {
					out[u] = id + ":" + strings.TrimSpace(string(b))
				}
			}
		}
		return out
	}
	before := pids()
	if len(before) != 3 {
		t.Fatalf("running before the restart: %v", before)
	}
	var worst int
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			worst = max(worst, len(names)-len(pids()))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	out := atollFleet(t, m, "restart", "roll@{1..3}")
	close(stop)
	<-done
	t.Logf("restart said:\n%s", out)
	after := pids()
	for _, u := range names {
		if after[u] == "" || after[u] == before[u] {
			t.Errorf("%s: before %q, after %q: not restarted", u, before[u], after[u])
		}
	}
	if worst > 1 {
		t.Errorf("%d units were down at once during a rolling restart", worst)
	}
}

// 1,000 units over 10 machines: all launched, 100 on each (least loaded
// first).
func TestFleetThousandUnitsOverTenMachines(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 10})
	fc := fleetClient(t, c.Machines[0])
	ctx := context.Background()
	const n = 1000
	names := make([]string, n)
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				u := &schema.Unit{Name: names[i], DesiredState: schema.StateLaunched, Options: []*schema.UnitOption{
					{Section: "Service", Name: "Type", Value: "oneshot"},
					{Section: "Service", Name: "RemainAfterExit", Value: "yes"},
					{Section: "Service", Name: "ExecStart", Value: "/bin/true"},
				}}
				if err := fc.CreateUnit(ctx, u); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		names[i] = fmt.Sprintf("one@%04d.service", i)
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	where := launched(t, fc, names...)
	t.Logf("%d units submitted and launched over %d machines in %s", n, len(c.Machines), time.Since(start).Round(10*time.Millisecond))
	load := map[string]int{}
	for _, id := range where {
		load[id]++
	}
	for id, k := range load {
		if k != n/len(c.Machines) {
			t.Errorf("machine %s runs %d units, want %d: %v", id, k, n/len(c.Machines), load)
			break
		}
	}
	states, err := fc.UnitStates(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, s := range states {
		if s.SystemdActiveState == "active" {
			active++
		}
	}
	if active != n {
		t.Errorf("%d of %d units active", active, n)
	}
}
