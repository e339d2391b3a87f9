package builtin

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/servicetest"
	unitfile "atoll.dev/atoll/internal/unit"
)

// TestConformance runs the suite every backend passes (package
// servicetest), with real processes in real cgroups. The tests below it
// are the builtin backend's own: its cgroups, its log lines, taking
// units over from a previous daemon, its clock.
func TestConformance(t *testing.T) {
	requireRoot(t)
	envs := map[string]*testEnv{}
	logs := map[service.Manager]*memLogger{}
	servicetest.Run(t, servicetest.Backend{
		Open: func(t *testing.T, dir string) service.Manager {
			e := envs[dir]
			if e == nil {
				e = newTestEnvIn(t, dir)
				envs[dir] = e
			}
			m, err := New(Options{
				UnitDir:      e.unitDir,
				RunDir:       e.runDir,
				CgroupParent: e.cgroupParent,
				Logger:       e.log,
				ParseUnit:    UnitParser(unitfile.Context{Hostname: "atoll-test", MachineID: strings.Repeat("ab", 16)}),
			})
			if err != nil {
				t.Fatal(err)
			}
			logs[m] = e.log
			return m
		},
		Output: func(t *testing.T, m service.Manager, unit string) []string {
			var out []string
			for _, line := range logs[m].get(unit) {
				if rest, ok := strings.CutPrefix(line, "stdout: "); ok {
					out = append(out, rest)
				} else if rest, ok := strings.CutPrefix(line, "stderr: "); ok {
					out = append(out, rest)
				}
			}
			return out
		},
	})
}

func TestCgroupLayout(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "web.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "web.service"); err != nil {
		t.Fatal(err)
	}
	st := wantState(t, m, "web.service", service.Active, "running")
	if want := e.cgroupParent + "/web.service"; st.Cgroup != want {
		t.Errorf("cgroup %q, want %q", st.Cgroup, want)
	}
	cg, _ := openUnitCgroup(st.Cgroup)
	if !cg.contains(st.MainPID) {
		t.Errorf("main process %d is not in %s", st.MainPID, st.Cgroup)
	}
	// The thread that started it in the cgroup is out of it again.
	threads, _ := filepath.Glob("/proc/self/task/*/cgroup")
	for _, f := range threads {
		if data, _ := os.ReadFile(f); strings.Contains(string(data), st.Cgroup) {
			t.Errorf("daemon thread %s is in the unit's cgroup:\n%s", f, data)
		}
	}
	if err := m.Stop(ctx, "web.service"); err != nil {
		t.Fatal(err)
	}
	for _, dir := range cg.mgr.GetPaths() {
		if fileExists(dir) {
			t.Errorf("cgroup %s is still there after stop", dir)
		}
	}
}

// TestManagerLines checks the lines the manager writes to a unit's log,
// which are systemd's.
func TestManagerLines(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "fork.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
/bin/sh -c 'trap "" TERM; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 1000' &
exec sleep 1000
`), 0o755)
	load(t, m, "stubborn.service", "[Service]\nExecStart="+script+"\nTimeoutStopSec=500ms\n")
	if err := m.Start(ctx, "stubborn.service"); err != nil {
		t.Fatal(err)
	}
	readPID(t, pidFile)
	if err := m.Stop(ctx, "stubborn.service"); err != nil {
		t.Fatal(err)
	}
	if !e.log.hasLine("stubborn.service", "State 'stop-sigterm' timed out. Killing.") {
		t.Errorf("log %q: want the SIGKILL step", e.log.get("stubborn.service"))
	}
	load(t, m, "broken.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
	load(t, m, "needs.service", "[Unit]\nRequires=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "needs.service"); err == nil || !strings.Contains(err.Error(), "dependency broken.service") {
		t.Errorf("start: %v, want an error naming the dependency", err)
	}
	if !e.log.hasLine("needs.service", "Dependency failed for needs.service.") {
		t.Errorf("log %q: want the dependency failure", e.log.get("needs.service"))
	}
}

func TestLoadRefusesBadSetting(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	if err := m.Load(ctxT(t), "bad.service", []byte("[Service]\nType=simple\n")); !errors.Is(err, ErrBadSetting) {
		t.Errorf("load a unit without ExecStart=: %v, want ErrBadSetting", err)
	}
}

func TestOrderingCycleNamed(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	load(t, m, "a.service", "[Unit]\nRequires=b.service\nAfter=b.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	load(t, m, "b.service", "[Unit]\nRequires=a.service\nAfter=a.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctxT(t), "a.service"); err == nil || !strings.Contains(err.Error(), "ordering cycle") {
		t.Fatalf("start: %v, want an ordering cycle", err)
	}
}

// tickUnit prints a line every 50ms until stopped.
const tickUnit = "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done'\n"

func TestCloseLeavesUnitsAndNewTakesThemOver(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "tick.service", tickUnit)
	load(t, m, "done.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
	load(t, m, "broken.service", "[Service]\nExecStart=/bin/false\n")
	for _, name := range []string{"tick.service", "done.service", "broken.service"} {
		m.Start(ctx, name)
	}
	waitState(t, m, "broken.service", "failed", func(s service.UnitState) bool { return s.Active == service.Failed })
	before := wantState(t, m, "tick.service", service.Active, "running")
	e.log.waitLine(t, "tick.service", "stdout: tick 2")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !alive(before.MainPID) {
		t.Fatal("Close killed the unit")
	}
	time.Sleep(200 * time.Millisecond) // the unit writes on while no manager reads
	n := len(e.log.get("tick.service"))

	m2 := e.manager()
	after := wantState(t, m2, "tick.service", service.Active, "running")
	if after.MainPID != before.MainPID || after.Cgroup != before.Cgroup {
		t.Errorf("taken over as PID %d in %s, want %d in %s", after.MainPID, after.Cgroup, before.MainPID, before.Cgroup)
	}
	wantState(t, m2, "done.service", service.Active, "exited")
	if st := wantState(t, m2, "broken.service", service.Failed, "failed"); st.Result != "exit-code" {
		t.Errorf("broken.service result %s after take-over, want exit-code", st.Result)
	}
	// Output written meanwhile, and after, reaches the logger.
	deadline := time.Now().Add(10 * time.Second)
	for len(e.log.get("tick.service")) < n+5 {
		if time.Now().After(deadline) {
			t.Fatalf("no output after take-over: %q", e.log.get("tick.service")[n:])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !noTickLost(e.log.get("tick.service")) {
		t.Errorf("ticks lost across the take-over: %q", e.log.get("tick.service"))
	}
	if err := m2.Stop(ctx, "tick.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m2, "tick.service", service.Inactive, "dead")
	if alive(before.MainPID) {
		t.Errorf("main process %d survived the stop", before.MainPID)
	}
	if err := m2.Stop(ctx, "done.service"); err != nil {
		t.Fatal(err)
	}
}

// noTickLost reports whether the "tick N" lines count up without a gap.
func noTickLost(lines []string) bool {
	next := 1
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "stdout: tick "); ok {
			if n, _ := strconv.Atoi(rest); n != next {
				return false
			}
			next++
		}
	}
	return next > 1
}

// TestTakeOverAfterKill9 runs a manager in another process, kills it
// with SIGKILL, and takes its unit over.
func TestTakeOverAfterKill9(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	os.MkdirAll(e.unitDir, 0o755)
	os.WriteFile(filepath.Join(e.unitDir, "tick.service"), []byte(tickUnit+"Restart=on-failure\n"), 0o644)
	daemon := exec.Command(testBinary(t))
	daemon.Env = append(os.Environ(),
		"BUILTIN_TEST_HELPER=daemon",
		"BUILTIN_TEST_DIRS="+e.unitDir+":"+e.runDir+":"+e.cgroupParent,
		"BUILTIN_TEST_UNIT=tick.service")
	out, _ := daemon.StdoutPipe()
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		daemon.Process.Kill()
		daemon.Wait()
		t.Fatalf("daemon said %q", line)
	}
	daemon.Process.Signal(syscall.SIGKILL)
	daemon.Wait()

	m := e.manager()
	st := wantState(t, m, "tick.service", service.Active, "running")
	if st.MainPID == 0 || !alive(st.MainPID) {
		t.Fatalf("MainPID %d not alive", st.MainPID)
	}
	e.log.waitLine(t, "tick.service", "Took over running unit, main PID "+strconv.Itoa(st.MainPID)+".")
	e.log.waitPrefix(t, "tick.service", "stdout: tick ") // what the unit writes reaches the new manager
	// The main process is not this manager's child: its exit status is
	// unknown and reads as success, as systemd treats such a process, so
	// Restart=on-failure does not restart it.
	syscall.Kill(st.MainPID, syscall.SIGKILL)
	after := waitState(t, m, "tick.service", "inactive", func(s service.UnitState) bool { return s.Active == service.Inactive })
	if after.Result != "success" || after.ExitCode != "" {
		t.Errorf("result %s exit %q, want success with no exit code", after.Result, after.ExitCode)
	}
	// It starts again under the new manager, as its child.
	if err := m.Start(ctx, "tick.service"); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx, "tick.service"); err != nil {
		t.Fatal(err)
	}
}

// TestRestartSecWithClock runs the restart delay on a fake clock: the unit
// waits in auto-restart until the clock passes RestartSec=.
func TestRestartSecWithClock(t *testing.T) {
	e := newTestEnv(t)
	clock := newFakeClock()
	m, err := New(Options{UnitDir: e.unitDir, RunDir: e.runDir, CgroupParent: e.cgroupParent, Logger: e.log, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := ctxT(t)
	load(t, m, "later.service", "[Service]\nExecStart=/bin/echo run\nRestart=always\nRestartSec=1h\n")
	if err := m.Start(ctx, "later.service"); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, m, "later.service", "auto-restart", func(s service.UnitState) bool { return s.Sub == "auto-restart" })
	if st.Active != service.Activating {
		t.Errorf("auto-restart reads %s, want activating", st.Active)
	}
	clock.advance(59 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	wantState(t, m, "later.service", service.Activating, "auto-restart")
	if n := e.log.count("later.service", "stdout: run"); n != 1 {
		t.Fatalf("ran %d times before RestartSec passed, want 1", n)
	}
	clock.advance(time.Minute)
	deadline := time.Now().Add(20 * time.Second)
	for e.log.count("later.service", "stdout: run") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("not restarted once RestartSec passed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Stop(ctx, "later.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "later.service", service.Inactive, "dead")
}
