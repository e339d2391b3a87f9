package builtin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"atoll.dev/atoll/internal/service"
)

// The conformance tests drive the manager through service.Manager only,
// with real processes in real cgroups. They need root.

func TestSimpleStartStop(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "web.service", "[Unit]\nDescription=Web\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "web.service"); err != nil {
		t.Fatal(err)
	}
	st := wantState(t, m, "web.service", service.Active, "running")
	if st.MainPID == 0 || !alive(st.MainPID) {
		t.Fatalf("MainPID %d is not a live process", st.MainPID)
	}
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
	if st.Description != "Web" || st.Load != service.Loaded || st.Enabled != "static" {
		t.Errorf("state %+v: want description Web, loaded, static", st)
	}
	if err := m.Stop(ctx, "web.service"); err != nil {
		t.Fatal(err)
	}
	st = wantState(t, m, "web.service", service.Inactive, "dead")
	if st.Result != "success" || alive(st.MainPID) {
		t.Errorf("after stop: result %s, MainPID %d", st.Result, st.MainPID)
	}
	for _, dir := range cg.mgr.GetPaths() {
		if fileExists(dir) {
			t.Errorf("cgroup %s is still there after stop", dir)
		}
	}
}

func TestExecBadBinaryFailsStart(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "bad.service", "[Service]\nType=exec\nExecStart=/nonexistent/program\n")
	err := m.Start(ctx, "bad.service")
	if !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	st := wantState(t, m, "bad.service", service.Failed, "failed")
	if st.Result != "exit-code" || st.ExitCode != "exited" || st.ExitStatus != 203 {
		t.Errorf("result %s %s/%d, want exit-code exited/203", st.Result, st.ExitCode, st.ExitStatus)
	}
	// Type=simple reports the start done once forked, as systemd: the
	// failure comes after.
	load(t, m, "bad-simple.service", "[Service]\nExecStart=/nonexistent/program\n")
	if err := m.Start(ctx, "bad-simple.service"); err != nil {
		t.Fatalf("start simple: %v", err)
	}
	waitState(t, m, "bad-simple.service", "failed", func(s service.UnitState) bool { return s.Active == service.Failed })
}

func TestOneshot(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "setup.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo one\nExecStart=/bin/echo two\n")
	if err := m.Start(ctx, "setup.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "setup.service", service.Active, "exited")
	if e.log.count("setup.service", "stdout: one") != 1 || e.log.count("setup.service", "stdout: two") != 1 {
		t.Errorf("output %q, want one and two", e.log.get("setup.service"))
	}
	if err := m.Stop(ctx, "setup.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "setup.service", service.Inactive, "dead")

	load(t, m, "once.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	if err := m.Start(ctx, "once.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "once.service", service.Inactive, "dead")

	load(t, m, "fails.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\nExecStart=/bin/echo never\n")
	if err := m.Start(ctx, "fails.service"); !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	st := wantState(t, m, "fails.service", service.Failed, "failed")
	if st.ExitStatus != 3 || e.log.count("fails.service", "stdout: never") != 0 {
		t.Errorf("exit status %d, output %q: want 3 and the second command not run", st.ExitStatus, e.log.get("fails.service"))
	}
}

func TestRestartOnFailureThenStartLimit(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "crash.service", `[Unit]
StartLimitIntervalSec=1min
StartLimitBurst=3
[Service]
ExecStart=/bin/sh -c 'echo run; exit 1'
Restart=on-failure
RestartSec=100ms
`)
	if err := m.Start(ctx, "crash.service"); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, m, "crash.service", "failed with start-limit-hit", func(s service.UnitState) bool {
		return s.Result == string(ResultStartLimitHit)
	})
	if st.Active != service.Failed || st.Sub != "failed" {
		t.Errorf("state %s/%s, want failed/failed", st.Active, st.Sub)
	}
	if n := e.log.count("crash.service", "stdout: run"); n != 3 {
		t.Errorf("ran %d times, want 3 (StartLimitBurst); log:\n%s", n, strings.Join(e.log.get("crash.service"), "\n"))
	}
	// A manual start is refused too while the interval lasts.
	if err := m.Start(ctx, "crash.service"); !errors.Is(err, service.ErrFailed) {
		t.Errorf("start after the limit: %v, want ErrFailed", err)
	}
}

func TestRestartAlways(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "loop.service", "[Service]\nExecStart=/bin/sh -c 'echo run; sleep 0.1'\nRestart=always\nRestartSec=50ms\nStartLimitBurst=0\n")
	if err := m.Start(ctx, "loop.service"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.log.count("loop.service", "stdout: run") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("ran %d times, want 3 or more", e.log.count("loop.service", "stdout: run"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Stop(ctx, "loop.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "loop.service", service.Inactive, "dead")
	runs := e.log.count("loop.service", "stdout: run")
	time.Sleep(300 * time.Millisecond)
	if now := e.log.count("loop.service", "stdout: run"); now != runs {
		t.Errorf("ran %d more times after stop", now-runs)
	}
	// A clean exit restarts with always, not with on-failure.
	load(t, m, "clean.service", "[Service]\nExecStart=/bin/true\nRestart=on-failure\n")
	if err := m.Start(ctx, "clean.service"); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "clean.service", "inactive", func(s service.UnitState) bool { return s.Active == service.Inactive })
}

// forkScript writes a script whose main process leaves a child that
// ignores SIGTERM. The child writes its PID to a file once it ignores it,
// so a test that has read the file cannot stop the unit too early.
func forkScript(t *testing.T) (script, pidFile string) {
	dir := t.TempDir()
	pidFile = filepath.Join(dir, "child.pid")
	script = filepath.Join(dir, "fork.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
/bin/sh -c 'trap "" TERM; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 1000' &
exec sleep 1000
`), 0o755)
	return script, pidFile
}

func TestStopKillsForkedChildIgnoringTERM(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	script, pidFile := forkScript(t)
	load(t, m, "stubborn.service", "[Service]\nExecStart="+script+"\nTimeoutStopSec=500ms\n")
	if err := m.Start(ctx, "stubborn.service"); err != nil {
		t.Fatal(err)
	}
	child := readPID(t, pidFile)
	st := wantState(t, m, "stubborn.service", service.Active, "running")
	if err := m.Stop(ctx, "stubborn.service"); err != nil {
		t.Fatal(err)
	}
	st = wantState(t, m, "stubborn.service", service.Failed, "failed")
	if st.Result != string(ResultTimeout) {
		t.Errorf("result %s, want timeout (SIGTERM was ignored until SIGKILL)", st.Result)
	}
	if alive(child) {
		t.Errorf("child %d survived the stop", child)
	}
	if !e.log.hasLine("stubborn.service", "State 'stop-sigterm' timed out. Killing.") {
		t.Errorf("log %q: want the SIGKILL step", e.log.get("stubborn.service"))
	}
}

func TestKillModeProcessLeavesChildren(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	script, pidFile := forkScript(t)
	load(t, m, "keep.service", "[Service]\nExecStart="+script+"\nKillMode=process\nTimeoutStopSec=500ms\n")
	if err := m.Start(ctx, "keep.service"); err != nil {
		t.Fatal(err)
	}
	child := readPID(t, pidFile)
	main := wantState(t, m, "keep.service", service.Active, "running").MainPID
	if err := m.Stop(ctx, "keep.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "keep.service", service.Inactive, "dead")
	if alive(main) {
		t.Errorf("main process %d survived the stop", main)
	}
	if !alive(child) {
		t.Fatalf("child %d was killed; KillMode=process leaves it", child)
	}
	syscall.Kill(child, syscall.SIGKILL)
	cg, _ := openUnitCgroup(unitCgroupPath(e.cgroupParent, "keep.service"))
	cg.waitEmpty(5 * time.Second)
	cg.destroy()
}

func TestKillModeMixed(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	script, pidFile := forkScript(t)
	load(t, m, "mixed.service", "[Service]\nExecStart="+script+"\nKillMode=mixed\nTimeoutStopSec=30s\n")
	if err := m.Start(ctx, "mixed.service"); err != nil {
		t.Fatal(err)
	}
	child := readPID(t, pidFile)
	if err := m.Stop(ctx, "mixed.service"); err != nil {
		t.Fatal(err)
	}
	// SIGTERM to the main process only, then SIGKILL to the rest at once:
	// no timeout.
	st := wantState(t, m, "mixed.service", service.Inactive, "dead")
	if st.Result != "success" || alive(child) {
		t.Errorf("result %s, child alive %v: want success and the child killed", st.Result, alive(child))
	}
}

func TestNotifyReady(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "ready.service", fmt.Sprintf(`[Service]
Type=notify
Environment=BUILTIN_TEST_HELPER=notify
ExecStart=%s 300ms STATUS=warming READY=1\nSTATUS=serving
`, testBinary(t)))
	states, err := m.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, "ready.service"); err != nil {
		t.Fatal(err)
	}
	st := wantState(t, m, "ready.service", service.Active, "running")
	if st.Status != "serving" {
		t.Errorf("status %q, want serving", st.Status)
	}
	// It was activating (start) until READY=1.
	var seen []string
	for len(seen) == 0 || seen[len(seen)-1] != "active/running" {
		s := <-states
		if s.Name == "ready.service" {
			seen = append(seen, string(s.Active)+"/"+s.Sub)
		}
	}
	if !containsInOrder(seen, "activating/start", "active/running") {
		t.Errorf("states %q: want activating/start then active/running", seen)
	}
	if err := m.Stop(ctx, "ready.service"); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyWithSystemdNotify uses systemd's own client, which sends as
// its parent, the main process.
func TestNotifyWithSystemdNotify(t *testing.T) {
	e := newTestEnv(t)
	tool, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("needs systemd-notify")
	}
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "tool.service", "[Service]\nType=notify\nExecStart=/bin/sh -c 'sleep 0.2; "+tool+" --ready --status=up; exec sleep 1000'\n")
	if err := m.Start(ctx, "tool.service"); err != nil {
		t.Fatal(err)
	}
	if st := wantState(t, m, "tool.service", service.Active, "running"); st.Status != "up" {
		t.Errorf("status %q, want up", st.Status)
	}
	for _, line := range e.log.get("tool.service") {
		if strings.Contains(line, "notification") {
			t.Errorf("log: %s", line)
		}
	}
	if err := m.Stop(ctx, "tool.service"); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyMainPID(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "handoff.service", fmt.Sprintf(`[Service]
Type=notify
Environment=BUILTIN_TEST_HELPER=mainpid
ExecStart=%s
`, testBinary(t)))
	if err := m.Start(ctx, "handoff.service"); err != nil {
		t.Fatal(err)
	}
	var child int
	for _, line := range e.log.get("handoff.service") {
		if rest, ok := strings.CutPrefix(line, "stdout: child "); ok {
			child, _ = strconv.Atoi(rest)
		}
	}
	st := wantState(t, m, "handoff.service", service.Active, "running")
	if child == 0 || st.MainPID != child {
		t.Fatalf("MainPID %d, want the child %d the service named", st.MainPID, child)
	}
	if err := m.Stop(ctx, "handoff.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "handoff.service", service.Inactive, "dead")
	if alive(child) {
		t.Errorf("main process %d survived the stop", child)
	}
}

func TestNotifyExitBeforeReady(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	load(t, m, "noready.service", "[Service]\nType=notify\nExecStart=/bin/true\n")
	if err := m.Start(ctxT(t), "noready.service"); !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	if st := wantState(t, m, "noready.service", service.Failed, "failed"); st.Result != string(ResultProtocol) {
		t.Errorf("result %s, want protocol", st.Result)
	}
}

func TestForking(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "daemon.pid")
	load(t, m, "forking.service", fmt.Sprintf(`[Service]
Type=forking
PIDFile=%s
ExecStart=/bin/sh -c 'sleep 1000 & echo $! > %s'
`, pidFile, pidFile))
	if err := m.Start(ctx, "forking.service"); err != nil {
		t.Fatal(err)
	}
	st := wantState(t, m, "forking.service", service.Active, "running")
	if want := readPID(t, pidFile); st.MainPID != want {
		t.Errorf("MainPID %d, want %d from the PID file", st.MainPID, want)
	}
	if err := m.Stop(ctx, "forking.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "forking.service", service.Inactive, "dead")

	// Without PIDFile=, the only process left is the main one.
	load(t, m, "guess.service", "[Service]\nType=forking\nExecStart=/bin/sh -c 'sleep 1000 &'\n")
	if err := m.Start(ctx, "guess.service"); err != nil {
		t.Fatal(err)
	}
	st = wantState(t, m, "guess.service", service.Active, "running")
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", st.MainPID)); strings.TrimSpace(string(comm)) != "sleep" {
		t.Errorf("MainPID %d is %q, want the sleep", st.MainPID, comm)
	}
	if err := m.Stop(ctx, "guess.service"); err != nil {
		t.Fatal(err)
	}
}

func TestIgnoreFailurePrefix(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "tolerant.service", `[Service]
ExecStartPre=-/bin/false
ExecStartPre=-/nonexistent
ExecStart=/bin/sleep 1000
ExecStopPost=-/bin/sh -c 'exit 7'
`)
	if err := m.Start(ctx, "tolerant.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "tolerant.service", service.Active, "running")
	if err := m.Stop(ctx, "tolerant.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "tolerant.service", service.Inactive, "dead")

	load(t, m, "strict.service", "[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "strict.service"); !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	if st := wantState(t, m, "strict.service", service.Failed, "failed"); st.Result != "exit-code" || st.MainPID != 0 {
		t.Errorf("result %s MainPID %d, want exit-code and no main process", st.Result, st.MainPID)
	}
}

func TestUserAndPrivilegedPrefix(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "who.service", `[Service]
Type=oneshot
RemainAfterExit=yes
User=nobody
ExecStart=/bin/sh -c 'echo "user $(id -un) $USER $HOME"'
ExecStart=+/bin/sh -c 'echo "privileged $(id -un)"'
`)
	if err := m.Start(ctx, "who.service"); err != nil {
		t.Fatalf("start: %v\n%s", err, strings.Join(e.log.get("who.service"), "\n"))
	}
	log := e.log.get("who.service")
	if !e.log.hasLine("who.service", "stdout: user nobody nobody /nonexistent") || !e.log.hasLine("who.service", "stdout: privileged root") {
		t.Errorf("output %q: want the first command as nobody, the + one as root", log)
	}
	m.Stop(ctx, "who.service")
}

func TestEnvironment(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("B=from-file\nC='c value'\n"), 0o644)
	load(t, m, "env.service", fmt.Sprintf(`[Service]
Type=oneshot
Environment="A=one two" B=unit
EnvironmentFile=%s
EnvironmentFile=-/nonexistent/env
ExecStart=/bin/sh -c 'echo "A=$A B=$B C=$C PATH=$PATH"'
ExecStart=/bin/echo split $A joined ${A}
WorkingDirectory=/tmp
ExecStart=/bin/pwd
`, envFile))
	if err := m.Start(ctx, "env.service"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"stdout: A=one two B=from-file C=c value PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
		"stdout: split one two joined one two",
		"stdout: /tmp",
	} {
		if !e.log.hasLine("env.service", want) {
			t.Errorf("output %q: want %q", e.log.get("env.service"), want)
		}
	}
	load(t, m, "noenv.service", "[Service]\nEnvironmentFile=/nonexistent/env\nExecStart=/bin/true\n")
	if err := m.Start(ctx, "noenv.service"); !errors.Is(err, service.ErrFailed) {
		t.Errorf("start with a missing environment file: %v, want ErrFailed", err)
	}
	if st := wantState(t, m, "noenv.service", service.Failed, "failed"); st.Result != "resources" {
		t.Errorf("result %s, want resources", st.Result)
	}
}

func TestConditionsAndAsserts(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "cond.service", "[Unit]\nConditionPathExists=/nonexistent\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "cond.service"); err != nil {
		t.Fatalf("start with an unmet condition: %v, want none", err)
	}
	wantState(t, m, "cond.service", service.Inactive, "dead")
	load(t, m, "assert.service", "[Unit]\nAssertPathExists=/nonexistent\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "assert.service"); err == nil {
		t.Fatal("start with an unmet assertion: no error")
	}
	wantState(t, m, "assert.service", service.Inactive, "dead")
	load(t, m, "trig.service", "[Unit]\nConditionPathExists=|/nonexistent\nConditionPathIsDirectory=|/tmp\n[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExit=yes\n")
	if err := m.Start(ctx, "trig.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "trig.service", service.Active, "exited")
}

func TestReloadAndStopCommands(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "reload.service", `[Service]
ExecStart=/bin/sh -c 'trap "echo reloaded" HUP; echo ready; while :; do sleep 0.05; done'
ExecReload=/bin/kill -HUP $MAINPID
ExecStop=/bin/sh -c 'echo stopping $MAINPID'
ExecStopPost=/bin/sh -c 'echo post $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS'
`)
	if err := m.Start(ctx, "reload.service"); err != nil {
		t.Fatal(err)
	}
	st := wantState(t, m, "reload.service", service.Active, "running")
	// Type=simple is active once the shell runs, maybe before its trap.
	e.log.waitLine(t, "reload.service", "stdout: ready")
	if err := m.Reload(ctx, "reload.service"); err != nil {
		t.Fatal(err)
	}
	e.log.waitLine(t, "reload.service", "stdout: reloaded")
	wantState(t, m, "reload.service", service.Active, "running")
	if err := m.Stop(ctx, "reload.service"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("stdout: stopping %d", st.MainPID), "stdout: post success killed TERM"} {
		if !e.log.hasLine("reload.service", want) {
			t.Errorf("output %q: want %q", e.log.get("reload.service"), want)
		}
	}
	load(t, m, "noreload.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	m.Start(ctx, "noreload.service")
	if err := m.Reload(ctx, "noreload.service"); err == nil {
		t.Error("reload without ExecReload=: no error")
	}
	m.Stop(ctx, "noreload.service")
}

func TestRestartAndTemplates(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "web@.service", "[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n")
	if err := m.Start(ctx, "web@.service"); !errors.Is(err, service.ErrTemplate) {
		t.Errorf("start a template: %v, want ErrTemplate", err)
	}
	for _, name := range []string{"web@1.service", "web@2.service"} {
		if err := m.Start(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if t.Failed() {
			t.Log(e.log.get("web@1.service"), e.log.get("web@2.service"))
		}
	}()
	one := wantState(t, m, "web@1.service", service.Active, "running")
	two := wantState(t, m, "web@2.service", service.Active, "running")
	if one.Cgroup == two.Cgroup || one.MainPID == two.MainPID {
		t.Errorf("instances share cgroup %s or PID %d", one.Cgroup, one.MainPID)
	}
	if err := m.Restart(ctx, "web@1.service"); err != nil {
		t.Fatal(err)
	}
	again := wantState(t, m, "web@1.service", service.Active, "running")
	if again.MainPID == one.MainPID || alive(one.MainPID) {
		t.Errorf("restart kept main process %d", one.MainPID)
	}
	if err := m.Unload(ctx, "web@.service"); !errors.Is(err, service.ErrRunning) {
		t.Errorf("unload a template with running instances: %v, want ErrRunning", err)
	}
	list, _ := m.List(ctx)
	if len(list) != 2 || list[0].Name != "web@1.service" || list[1].Name != "web@2.service" {
		t.Errorf("list %+v, want the two instances", list)
	}
	if err := m.Enable(ctx, "web@1.service"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(ctx, "web@1.service"); st.Enabled != "enabled" {
		t.Errorf("enabled %q after Enable", st.Enabled)
	}
	for _, name := range []string{"web@1.service", "web@2.service"} {
		if err := m.Stop(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Unload(ctx, "web@.service"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(ctx, "web@1.service"); st.Load != service.NotFound {
		t.Errorf("after unload: load state %s, want not-found", st.Load)
	}
}

func containsInOrder(list []string, want ...string) bool {
	for _, s := range list {
		if len(want) > 0 && s == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

var _ = context.Background

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

func TestEnabledUnitsStartWithManager(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	install := "[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n"
	load(t, m, "app.service", install)
	load(t, m, "inst@.service", install)
	load(t, m, "plain.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	for _, name := range []string{"app.service", "inst@a.service"} {
		if err := m.Enable(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Enable(ctx, "plain.service"); err == nil {
		t.Error("enable a unit without [Install]: no error")
	}
	m.Close()
	m2 := e.manager()
	for _, name := range []string{"app.service", "inst@a.service"} {
		waitState(t, m2, name, "active", func(s service.UnitState) bool { return s.Active == service.Active })
	}
	wantState(t, m2, "plain.service", service.Inactive, "dead")
	if err := m2.Disable(ctx, "app.service"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m2.State(ctx, "app.service"); st.Enabled != "disabled" {
		t.Errorf("after Disable: %q, want disabled", st.Enabled)
	}
	for _, name := range []string{"app.service", "inst@a.service"} {
		if err := m2.Stop(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadWhileRunningAppliesAtRestart(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "ver.service", "[Service]\nExecStart=/bin/sh -c 'echo v1; exec sleep 1000'\n")
	if err := m.Start(ctx, "ver.service"); err != nil {
		t.Fatal(err)
	}
	before := wantState(t, m, "ver.service", service.Active, "running")
	load(t, m, "ver.service", "[Unit]\nDescription=Version two\n[Service]\nExecStart=/bin/sh -c 'echo v2; exec sleep 1000'\n")
	st := wantState(t, m, "ver.service", service.Active, "running")
	if st.MainPID != before.MainPID {
		t.Fatalf("Load restarted the unit: PID %d, was %d", st.MainPID, before.MainPID)
	}
	if cat, _ := m.Cat(ctx, "ver.service"); !strings.Contains(string(cat), "v2") {
		t.Errorf("Cat = %q, want the new file", cat)
	}
	if err := m.Restart(ctx, "ver.service"); err != nil {
		t.Fatal(err)
	}
	e.log.waitLine(t, "ver.service", "stdout: v2")
	if err := m.Stop(ctx, "ver.service"); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx, "bad.service", []byte("[Service]\nType=simple\n")); !errors.Is(err, ErrBadSetting) {
		t.Errorf("load a unit without ExecStart=: %v, want ErrBadSetting", err)
	}
	if err := m.Unload(ctx, "ver.service"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(ctx, "ver.service"); st.Load != service.NotFound {
		t.Errorf("after unload: %s, want not-found", st.Load)
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
