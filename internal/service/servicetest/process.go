package servicetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"atoll.dev/atoll/internal/service"
)

func testStartStop(t *testing.T, e *env) {
	web := e.name("web")
	if st := e.state(web); st.Load != service.NotFound {
		t.Errorf("a unit never loaded reads %s, want not-found", st.Load)
	}
	if err := e.m.Start(e.ctx, web); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("start a unit never loaded: %v, want ErrNotFound", err)
	}
	e.load(web, "[Unit]\nDescription=Web\n[Service]\nExecStart=/bin/sleep 1000\n")
	st := e.wantState(web, service.Inactive, "dead")
	if st.Load != service.Loaded || st.Enabled != "static" || st.Hash == "" {
		t.Errorf("loaded: load %s, enabled %q, hash %q; want loaded, static and a hash", st.Load, st.Enabled, st.Hash)
	}
	e.start(web)
	st = e.wantState(web, service.Active, "running")
	if !alive(st.MainPID) {
		t.Fatalf("MainPID %d is not a live process", st.MainPID)
	}
	if !strings.HasSuffix(st.Cgroup, "/"+web) {
		t.Errorf("cgroup %q, want one named after the unit", st.Cgroup)
	}
	if st.Description != "Web" || st.Since.IsZero() {
		t.Errorf("description %q since %v: want Web and a time", st.Description, st.Since)
	}
	e.stop(web)
	st = e.wantState(web, service.Inactive, "dead")
	if st.Result != "success" || st.MainPID != 0 || st.Cgroup != "" {
		t.Errorf("after stop: result %s, MainPID %d, cgroup %q; want success, none, none", st.Result, st.MainPID, st.Cgroup)
	}
}

func testExecFailure(t *testing.T, e *env) {
	bad := e.name("bad")
	e.load(bad, "[Service]\nType=exec\nExecStart=/nonexistent/program\n")
	if err := e.m.Start(e.ctx, bad); !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	st := e.wantState(bad, service.Failed, "failed")
	if st.Result != "exit-code" || st.ExitCode != "exited" || st.ExitStatus != 203 {
		t.Errorf("result %s %s/%d, want exit-code exited/203", st.Result, st.ExitCode, st.ExitStatus)
	}
	// Type=simple reports the start done once forked: the failure comes
	// after.
	simple := e.name("bad-simple")
	e.load(simple, "[Service]\nExecStart=/nonexistent/program\n")
	e.start(simple)
	e.waitState(simple, "failed", func(s service.UnitState) bool { return s.Active == service.Failed })
}

func testOneshot(t *testing.T, e *env) {
	setup := e.name("setup")
	e.load(setup, "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo one\nExecStart=/bin/echo two\n")
	e.start(setup)
	e.wantState(setup, service.Active, "exited")
	e.waitLine(setup, "two")
	if got := strings.Join(e.output(setup), " "); got != "one two" {
		t.Errorf("output %q, want one two", got)
	}
	e.stop(setup)
	e.wantState(setup, service.Inactive, "dead")

	once := e.name("once")
	e.load(once, "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	e.start(once)
	e.wantState(once, service.Inactive, "dead")

	fails := e.name("fails")
	e.load(fails, "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo first; exit 3'\nExecStart=/bin/echo never\n")
	if err := e.m.Start(e.ctx, fails); !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	st := e.wantState(fails, service.Failed, "failed")
	e.waitLine(fails, "first")
	if st.Result != "exit-code" || st.ExitStatus != 3 || e.count(fails, "never") != 0 {
		t.Errorf("result %s, exit status %d, output %q: want exit-code, 3 and the second command not run", st.Result, st.ExitStatus, e.output(fails))
	}
}

func testRestartOnFailureThenStartLimit(t *testing.T, e *env) {
	crash := e.name("crash")
	e.load(crash, `[Unit]
StartLimitIntervalSec=1min
StartLimitBurst=3
[Service]
ExecStart=/bin/sh -c 'echo run; exit 1'
Restart=on-failure
RestartSec=100ms
`)
	e.start(crash)
	e.waitCount(crash, "run", 3)
	// The fourth start, a restart, hits the limit: the unit stays
	// failed, and its result stays the failure that led there (systemd
	// sets start-limit-hit only over a success).
	e.waitState(crash, "failed", func(s service.UnitState) bool { return s.Active == service.Failed })
	time.Sleep(500 * time.Millisecond)
	st := e.wantState(crash, service.Failed, "failed")
	if st.Result != "exit-code" {
		t.Errorf("result %s, want exit-code", st.Result)
	}
	if n := e.count(crash, "run"); n != 3 {
		t.Errorf("ran %d times, want 3 (StartLimitBurst)", n)
	}
	// A manual start is refused too while the interval lasts.
	if err := e.m.Start(e.ctx, crash); !errors.Is(err, service.ErrFailed) {
		t.Errorf("start after the limit: %v, want ErrFailed", err)
	}
	if n := e.count(crash, "run"); n != 3 {
		t.Errorf("ran %d times after a refused start, want 3", n)
	}
}

func testRestartAlways(t *testing.T, e *env) {
	loop := e.name("loop")
	e.load(loop, "[Unit]\nStartLimitBurst=0\n[Service]\nExecStart=/bin/sh -c 'echo run; sleep 0.1'\nRestart=always\nRestartSec=50ms\n")
	e.start(loop)
	e.waitCount(loop, "run", 3)
	e.stop(loop)
	e.wantState(loop, service.Inactive, "dead")
	runs := e.count(loop, "run")
	time.Sleep(500 * time.Millisecond)
	if now := e.count(loop, "run"); now != runs {
		t.Errorf("ran %d more times after stop", now-runs)
	}
	// A clean exit restarts with always, not with on-failure.
	clean := e.name("clean")
	e.load(clean, "[Service]\nExecStart=/bin/true\nRestart=on-failure\n")
	e.start(clean)
	// systemd forgets an inactive unit's last run once it collects the
	// unit: only the result is certain.
	if st := e.waitState(clean, "inactive", func(s service.UnitState) bool { return s.Active == service.Inactive }); st.Result != "success" {
		t.Errorf("result %s, want success", st.Result)
	}
}

// forkScript writes a script whose main process leaves a child that
// ignores SIGTERM. The child writes its PID to a file once it ignores it,
// so a test that has read the file cannot stop the unit too early.
func forkScript(e *env) (script, pidFile string) {
	pidFile = filepath.Join(e.dir, "child.pid")
	script = filepath.Join(e.dir, "fork.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
/bin/sh -c 'trap "" TERM; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 1000' &
exec sleep 1000
`), 0o755)
	return script, pidFile
}

func testStopTimeoutKillsForkedChild(t *testing.T, e *env) {
	stubborn := e.name("stubborn")
	script, pidFile := forkScript(e)
	e.load(stubborn, "[Service]\nExecStart="+script+"\nTimeoutStopSec=500ms\n")
	e.start(stubborn)
	child := e.readPID(pidFile)
	e.wantState(stubborn, service.Active, "running")
	e.stop(stubborn)
	st := e.wantState(stubborn, service.Failed, "failed")
	if st.Result != "timeout" {
		t.Errorf("result %s, want timeout (SIGTERM was ignored until SIGKILL)", st.Result)
	}
	if alive(child) {
		t.Errorf("child %d survived the stop", child)
	}
}

func testKillModeProcess(t *testing.T, e *env) {
	keep := e.name("keep")
	script, pidFile := forkScript(e)
	e.load(keep, "[Service]\nExecStart="+script+"\nKillMode=process\nTimeoutStopSec=500ms\n")
	e.start(keep)
	child := e.readPID(pidFile)
	main := e.wantState(keep, service.Active, "running").MainPID
	e.stop(keep)
	st := e.wantState(keep, service.Inactive, "dead")
	if alive(main) {
		t.Errorf("main process %d survived the stop", main)
	}
	if st.Result != "success" {
		t.Errorf("result %s, want success", st.Result)
	}
	if !alive(child) {
		t.Fatalf("child %d was killed; KillMode=process leaves it", child)
	}
	syscall.Kill(child, syscall.SIGKILL)
	e.waitGone(child, "child")
}

func testKillModeMixed(t *testing.T, e *env) {
	mixed := e.name("mixed")
	script, pidFile := forkScript(e)
	e.load(mixed, "[Service]\nExecStart="+script+"\nKillMode=mixed\nTimeoutStopSec=30s\n")
	e.start(mixed)
	child := e.readPID(pidFile)
	e.stop(mixed)
	// SIGTERM to the main process only, then SIGKILL to the rest at once:
	// no timeout.
	st := e.wantState(mixed, service.Inactive, "dead")
	if st.Result != "success" || alive(child) {
		t.Errorf("result %s, child alive %v: want success and the child killed", st.Result, alive(child))
	}
}

func testForking(t *testing.T, e *env) {
	forking := e.name("forking")
	pidFile := filepath.Join(e.dir, "daemon.pid")
	e.load(forking, fmt.Sprintf(`[Service]
Type=forking
PIDFile=%s
ExecStart=/bin/sh -c 'sleep 1000 & echo $! > %s'
`, pidFile, pidFile))
	e.start(forking)
	st := e.wantState(forking, service.Active, "running")
	if want := e.readPID(pidFile); st.MainPID != want {
		t.Errorf("MainPID %d, want %d from the PID file", st.MainPID, want)
	}
	e.stop(forking)
	e.wantState(forking, service.Inactive, "dead")

	// Without PIDFile=, the only process left is the main one.
	guess := e.name("guess")
	e.load(guess, "[Service]\nType=forking\nExecStart=/bin/sh -c 'sleep 1000 &'\n")
	e.start(guess)
	st = e.wantState(guess, service.Active, "running")
	// The shell's child may not have executed sleep yet.
	deadline := time.Now().Add(30 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", st.MainPID))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MainPID %d is %q, want the sleep", st.MainPID, comm)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.stop(guess)
	e.wantState(guess, service.Inactive, "dead")
}
