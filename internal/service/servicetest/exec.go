package servicetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"atoll.dev/atoll/internal/service"
)

func testNotifyReady(t *testing.T, e *env) {
	ready := e.name("ready")
	e.load(ready, "[Service]\nType=notify\n"+e.helper("notify", `300ms STATUS=warming READY=1\nSTATUS=serving`)+"\n")
	states, err := e.m.Subscribe(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.start(ready)
	st := e.wantState(ready, service.Active, "running")
	if st.Status != "serving" {
		t.Errorf("status %q, want serving", st.Status)
	}
	// It was activating (start) until READY=1.
	var seen []string
	for len(seen) == 0 || seen[len(seen)-1] != "active/running" {
		s, ok := <-states
		if !ok {
			t.Fatalf("subscription ended; states seen %q", seen)
		}
		if s.Name == ready {
			seen = append(seen, string(s.Active)+"/"+s.Sub)
		}
	}
	if !containsInOrder(seen, "activating/start", "active/running") {
		t.Errorf("states %q: want activating/start then active/running", seen)
	}
	e.stop(ready)
}

// testNotifyWithSystemdNotify uses systemd's own client, which sends as
// its parent, the main process.
func testNotifyWithSystemdNotify(t *testing.T, e *env) {
	tool, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("needs systemd-notify")
	}
	name := e.name("tool")
	e.load(name, "[Service]\nType=notify\nExecStart=/bin/sh -c 'sleep 0.2; "+tool+" --ready --status=up; exec sleep 1000'\n")
	e.start(name)
	if st := e.wantState(name, service.Active, "running"); st.Status != "up" {
		t.Errorf("status %q, want up", st.Status)
	}
	e.stop(name)
}

func testNotifyMainPID(t *testing.T, e *env) {
	handoff := e.name("handoff")
	e.load(handoff, "[Service]\nType=notify\n"+e.helper("mainpid")+"\n")
	e.start(handoff)
	child, _ := strconv.Atoi(e.waitPrefix(handoff, "child "))
	st := e.wantState(handoff, service.Active, "running")
	if child == 0 || st.MainPID != child {
		t.Fatalf("MainPID %d, want the child %d the service named", st.MainPID, child)
	}
	e.stop(handoff)
	e.wantState(handoff, service.Inactive, "dead")
	if alive(child) {
		t.Errorf("main process %d survived the stop", child)
	}
}

func testNotifyExitBeforeReady(t *testing.T, e *env) {
	noready := e.name("noready")
	e.load(noready, "[Service]\nType=notify\nExecStart=/bin/true\n")
	if err := e.m.Start(e.ctx, noready); !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	if st := e.wantState(noready, service.Failed, "failed"); st.Result != "protocol" {
		t.Errorf("result %s, want protocol", st.Result)
	}
}

func testExecPrefixes(t *testing.T, e *env) {
	tolerant := e.name("tolerant")
	e.load(tolerant, `[Service]
ExecStartPre=-/bin/false
ExecStartPre=-/nonexistent
ExecStartPre=@/bin/sh argv0 -c 'echo $0'
ExecStartPre=:/bin/echo $HOME ${HOME}
ExecStart=/bin/sleep 1000
ExecStopPost=-/bin/sh -c 'exit 7'
`)
	e.start(tolerant)
	e.wantState(tolerant, service.Active, "running")
	e.waitLine(tolerant, "$HOME ${HOME}")
	e.waitLine(tolerant, "argv0")
	e.stop(tolerant)
	if st := e.wantState(tolerant, service.Inactive, "dead"); st.Result != "success" {
		t.Errorf("result %s, want success: the failures were ignored", st.Result)
	}

	strict := e.name("strict")
	e.load(strict, "[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 1000\n")
	if err := e.m.Start(e.ctx, strict); !errors.Is(err, service.ErrFailed) {
		t.Fatalf("start: %v, want ErrFailed", err)
	}
	if st := e.wantState(strict, service.Failed, "failed"); st.Result != "exit-code" || st.MainPID != 0 {
		t.Errorf("result %s MainPID %d, want exit-code and no main process", st.Result, st.MainPID)
	}
}

func testUserAndPrivilegedPrefix(t *testing.T, e *env) {
	who := e.name("who")
	e.load(who, `[Service]
Type=oneshot
RemainAfterExit=yes
User=nobody
ExecStart=/bin/sh -c 'echo "user $(id -un) $USER home=$HOME"'
ExecStart=+/bin/sh -c 'echo "privileged $(id -un)"'
`)
	e.start(who)
	// nobody's home, /nonexistent, is a placeholder: no $HOME.
	e.waitLine(who, "user nobody nobody home=")
	e.waitLine(who, "privileged root")
	e.stop(who)
}

func testEnvironment(t *testing.T, e *env) {
	envFile := filepath.Join(e.dir, "env")
	os.WriteFile(envFile, []byte("B=from-file\nC='c value'\n"), 0o644)
	name := e.name("env")
	e.load(name, fmt.Sprintf(`[Service]
Type=oneshot
Environment="A=one two" B=unit
EnvironmentFile=%s
EnvironmentFile=-/nonexistent/env
ExecStart=/bin/sh -c 'echo "A=$A B=$B C=$C"; echo "PATH=$PATH"'
ExecStart=/bin/echo split $A joined ${A}
WorkingDirectory=/tmp
ExecStart=/bin/pwd
`, envFile))
	e.start(name)
	for _, want := range []string{
		"A=one two B=from-file C=c value",
		"split one two joined one two",
		"/tmp",
	} {
		e.waitLine(name, want)
	}
	// systemd's PATH for services; builds with a split /usr add
	// :/sbin:/bin.
	path := e.waitPrefix(name, "PATH=")
	if want := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"; path != want && path != want+":/sbin:/bin" {
		t.Errorf("PATH=%s, want systemd's %s", path, want)
	}
	noenv := e.name("noenv")
	e.load(noenv, "[Service]\nEnvironmentFile=/nonexistent/env\nExecStart=/bin/true\n")
	if err := e.m.Start(e.ctx, noenv); !errors.Is(err, service.ErrFailed) {
		t.Errorf("start with a missing environment file: %v, want ErrFailed", err)
	}
	if st := e.wantState(noenv, service.Failed, "failed"); st.Result != "resources" {
		t.Errorf("result %s, want resources", st.Result)
	}
}

func testConditionsAndAsserts(t *testing.T, e *env) {
	cond := e.name("cond")
	e.load(cond, "[Unit]\nConditionPathExists=/nonexistent\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := e.m.Start(e.ctx, cond); err != nil {
		t.Fatalf("start with an unmet condition: %v, want none", err)
	}
	e.wantState(cond, service.Inactive, "dead")
	assert := e.name("assert")
	e.load(assert, "[Unit]\nAssertPathExists=/nonexistent\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := e.m.Start(e.ctx, assert); err == nil {
		t.Fatal("start with an unmet assertion: no error")
	}
	e.wantState(assert, service.Inactive, "dead")
	trig := e.name("trig")
	e.load(trig, "[Unit]\nConditionPathExists=|/nonexistent\nConditionPathIsDirectory=|/tmp\n[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExit=yes\n")
	e.start(trig)
	e.wantState(trig, service.Active, "exited")
	e.stop(trig)
}

func testReloadAndStopCommands(t *testing.T, e *env) {
	name := e.name("reload")
	e.load(name, `[Service]
ExecStart=/bin/sh -c 'trap "echo reloaded" HUP; echo ready; while :; do sleep 0.05; done'
ExecReload=/bin/kill -HUP $MAINPID
ExecStop=/bin/sh -c 'echo stopping $MAINPID'
ExecStopPost=/bin/sh -c 'echo post $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS'
`)
	e.start(name)
	st := e.wantState(name, service.Active, "running")
	// Type=simple is active once the shell runs, maybe before its trap.
	e.waitLine(name, "ready")
	if err := e.m.Reload(e.ctx, name); err != nil {
		t.Fatal(err)
	}
	e.waitLine(name, "reloaded")
	e.wantState(name, service.Active, "running")
	e.stop(name)
	e.waitLine(name, fmt.Sprintf("stopping %d", st.MainPID))
	e.waitLine(name, "post success killed TERM")

	noreload := e.name("noreload")
	e.load(noreload, "[Service]\nExecStart=/bin/sleep 1000\n")
	e.start(noreload)
	if err := e.m.Reload(e.ctx, noreload); err == nil {
		t.Error("reload without ExecReload=: no error")
	}
	e.wantState(noreload, service.Active, "running")
	e.stop(noreload)
}

func testTemplatesAndRestart(t *testing.T, e *env) {
	tmpl := e.template("web")
	one, two := e.instance("web", "1"), e.instance("web", "2")
	e.load(tmpl, "[Unit]\nDescription=web %i\n[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n")
	if err := e.m.Start(e.ctx, tmpl); !errors.Is(err, service.ErrTemplate) {
		t.Errorf("start a template: %v, want ErrTemplate", err)
	}
	if st := e.state(tmpl); st.Load != service.NotFound {
		t.Errorf("a template reads %s, want not-found: it is no unit", st.Load)
	}
	e.start(one)
	e.start(two)
	first := e.wantState(one, service.Active, "running")
	second := e.wantState(two, service.Active, "running")
	if first.Cgroup == second.Cgroup || first.MainPID == second.MainPID {
		t.Errorf("instances share cgroup %s or PID %d", first.Cgroup, first.MainPID)
	}
	if first.Description != "web 1" {
		t.Errorf("description %q, want the template's with %%i expanded", first.Description)
	}
	if err := e.m.Restart(e.ctx, one); err != nil {
		t.Fatal(err)
	}
	again := e.wantState(one, service.Active, "running")
	if again.MainPID == first.MainPID {
		t.Errorf("restart kept main process %d", first.MainPID)
	}
	e.waitGone(first.MainPID, "the main process before the restart")
	if err := e.m.Unload(e.ctx, tmpl); !errors.Is(err, service.ErrRunning) {
		t.Errorf("unload a template with running instances: %v, want ErrRunning", err)
	}
	list, err := e.m.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range list {
		names = append(names, st.Name)
	}
	if strings.Join(names, " ") != one+" "+two {
		t.Errorf("list %q, want the two instances", names)
	}
	if err := e.m.Enable(e.ctx, one); err != nil {
		t.Fatal(err)
	}
	if st := e.state(one); st.Enabled != "enabled" {
		t.Errorf("enabled %q after Enable", st.Enabled)
	}
	e.stop(one)
	e.stop(two)
	if err := e.m.Unload(e.ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	if st := e.state(one); st.Load != service.NotFound {
		t.Errorf("after unload: load state %s, want not-found", st.Load)
	}
	if err := e.m.Start(e.ctx, one); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("start an instance of an unloaded template: %v, want ErrNotFound", err)
	}
}

func testEnabledUnitsStartWithManager(t *testing.T, e *env) {
	install := "[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n"
	app, tmpl, inst, plain := e.name("app"), e.template("inst"), e.instance("inst", "a"), e.name("plain")
	e.load(app, install)
	e.load(tmpl, install)
	e.load(plain, "[Service]\nExecStart=/bin/sleep 1000\n")
	for _, name := range []string{app, inst} {
		if err := e.m.Enable(e.ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Enable(e.ctx, plain); err == nil {
		t.Error("enable a unit without [Install]: no error")
	}
	if st := e.state(app); st.Enabled != "enabled" || st.Active != service.Inactive {
		t.Errorf("after Enable: %s, %s; want enabled and not started", st.Enabled, st.Active)
	}
	e.reopen()
	for _, name := range []string{app, inst} {
		e.waitState(name, "active", func(s service.UnitState) bool { return s.Active == service.Active })
	}
	e.wantState(plain, service.Inactive, "dead")
	if err := e.m.Disable(e.ctx, app); err != nil {
		t.Fatal(err)
	}
	if st := e.state(app); st.Enabled != "disabled" {
		t.Errorf("after Disable: %q, want disabled", st.Enabled)
	}
	e.stop(app)
	e.stop(inst)
}

func testLoadWhileRunningAppliesAtRestart(t *testing.T, e *env) {
	ver := e.name("ver")
	e.load(ver, "[Service]\nExecStart=/bin/sh -c 'echo v1; exec sleep 1000'\n")
	e.start(ver)
	before := e.wantState(ver, service.Active, "running")
	e.load(ver, "[Unit]\nDescription=Version two\n[Service]\nExecStart=/bin/sh -c 'echo v2; exec sleep 1000'\n")
	st := e.wantState(ver, service.Active, "running")
	if st.MainPID != before.MainPID {
		t.Fatalf("Load restarted the unit: PID %d, was %d", st.MainPID, before.MainPID)
	}
	if st.Hash == before.Hash {
		t.Errorf("hash %s unchanged by a new file", st.Hash)
	}
	if cat, err := e.m.Cat(e.ctx, ver); err != nil || !strings.Contains(string(cat), "v2") {
		t.Errorf("Cat = %q, %v; want the new file", cat, err)
	}
	if err := e.m.Restart(e.ctx, ver); err != nil {
		t.Fatal(err)
	}
	e.waitLine(ver, "v2")
	e.stop(ver)
	bad := e.name("bad")
	if err := e.m.Load(e.ctx, bad, []byte("[Service]\nType=simple\n")); err == nil {
		t.Errorf("load a service without ExecStart=: no error")
		e.loaded = append(e.loaded, bad)
	}
	if st := e.state(bad); st.Load != service.NotFound {
		t.Errorf("a refused file left %s loaded (%s)", bad, st.Load)
	}
	if err := e.m.Unload(e.ctx, ver); err != nil {
		t.Fatal(err)
	}
	if st := e.state(ver); st.Load != service.NotFound {
		t.Errorf("after unload: %s, want not-found", st.Load)
	}
}

func testCloseLeavesUnitsRunning(t *testing.T, e *env) {
	tick := e.name("tick")
	e.load(tick, "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done'\n")
	e.start(tick)
	before := e.wantState(tick, service.Active, "running")
	e.waitLine(tick, "tick 2")
	e.reopen()
	if !alive(before.MainPID) {
		t.Fatal("Close killed the unit")
	}
	after := e.wantState(tick, service.Active, "running")
	if after.MainPID != before.MainPID {
		t.Errorf("running as PID %d after a new manager, want %d", after.MainPID, before.MainPID)
	}
	n := len(e.output(tick))
	e.waitLine(tick, "tick "+strconv.Itoa(n+3))
	e.stop(tick)
	e.wantState(tick, service.Inactive, "dead")
	e.waitGone(before.MainPID, "main process")
}
