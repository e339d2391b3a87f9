// Package servicetest is the conformance suite of service.Manager: the
// tests every backend (builtin, systemd) passes, driving real processes
// through the interface only. systemd's own behaviour (systemd 252) is
// the reference: what a test expects is what systemd does with the same
// unit file.
//
// A backend's tests call Run with a Backend, and RunHelper first thing
// in their TestMain, since some units run the test binary itself as a
// helper program (see helper.go). Units are named atoll-ct-RUN-N-NAME,
// RUN random for each Run and N counting its tests, so that no two tests
// and no host unit share a name, and each test stops and unloads what it
// loaded.
//
// Only _test files import it; it imports the service package, x/sys/unix
// and the standard library.
package servicetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/service"
)

// Backend is what the suite needs of a backend.
type Backend struct {
	// Open returns a Manager whose state (unit files, enablement, what
	// the backend keeps for its next start) lives in dir. Each test has
	// a dir of its own; a test that closes its Manager and opens another
	// over the same dir plays the machine's next daemon. The suite
	// closes every Manager it opens.
	Open func(t *testing.T, dir string) service.Manager
	// Output returns the lines the processes of unit wrote to stdout
	// and stderr so far, oldest first, without the manager's own lines.
	Output func(t *testing.T, m service.Manager, unit string) []string
}

// Run runs the suite, one subtest per behaviour.
func Run(t *testing.T, b Backend) {
	if b.Open == nil || b.Output == nil {
		t.Fatal("servicetest: Backend needs Open and Output")
	}
	var id [3]byte
	rand.Read(id[:])
	s := &suite{b: b, run: hex.EncodeToString(id[:])}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"StartStop", testStartStop},
		{"ExecFailure", testExecFailure},
		{"Oneshot", testOneshot},
		{"RestartOnFailureThenStartLimit", testRestartOnFailureThenStartLimit},
		{"RestartAlways", testRestartAlways},
		{"StopTimeoutKillsForkedChild", testStopTimeoutKillsForkedChild},
		{"KillModeProcess", testKillModeProcess},
		{"KillModeMixed", testKillModeMixed},
		{"NotifyReady", testNotifyReady},
		{"NotifyWithSystemdNotify", testNotifyWithSystemdNotify},
		{"NotifyMainPID", testNotifyMainPID},
		{"NotifyExitBeforeReady", testNotifyExitBeforeReady},
		{"Forking", testForking},
		{"ExecPrefixes", testExecPrefixes},
		{"UserAndPrivilegedPrefix", testUserAndPrivilegedPrefix},
		{"Environment", testEnvironment},
		{"ConditionsAndAsserts", testConditionsAndAsserts},
		{"ReloadAndStopCommands", testReloadAndStopCommands},
		{"TemplatesAndRestart", testTemplatesAndRestart},
		{"EnabledUnitsStartWithManager", testEnabledUnitsStartWithManager},
		{"LoadWhileRunningAppliesAtRestart", testLoadWhileRunningAppliesAtRestart},
		{"CloseLeavesUnitsRunning", testCloseLeavesUnitsRunning},
		{"RequiresAfterOrdersAndPullsIn", testRequiresAfterOrdersAndPullsIn},
		{"RequiredUnitFailing", testRequiredUnitFailing},
		{"BindsTo", testBindsTo},
		{"PartOf", testPartOf},
		{"Conflicts", testConflicts},
		{"OrderingCycle", testOrderingCycle},
		{"Timer", testTimer},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s.newEnv(t)) })
	}
}

type suite struct {
	b     Backend
	run   string
	tests int
}

// env is one test's manager, directory and unit names.
type env struct {
	t      *testing.T
	b      Backend
	dir    string
	prefix string
	m      service.Manager
	ctx    context.Context
	loaded []string
}

func (s *suite) newEnv(t *testing.T) *env {
	s.tests++
	dir := t.TempDir()
	// Units running as another user reach the files tests put here.
	os.Chmod(dir, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &env{
		t:      t,
		b:      s.b,
		dir:    dir,
		prefix: fmt.Sprintf("atoll-ct-%s-%d-", s.run, s.tests),
		ctx:    ctx,
	}
	e.m = e.open()
	t.Cleanup(e.cleanup)
	return e
}

// open opens a Manager over the test's dir; cleanup closes it.
func (e *env) open() service.Manager {
	e.t.Helper()
	return e.b.Open(e.t, e.dir)
}

// reopen closes the test's Manager and opens the next one.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.m.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.m = e.open()
}

// cleanup stops and unloads what the test loaded, so that nothing is
// left running on a machine whose systemd outlives the test, and closes
// the Manager.
func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer e.m.Close()
	if list, err := e.m.List(ctx); err == nil {
		for _, st := range list {
			if st.Active != service.Inactive && st.Active != service.Failed {
				if err := e.m.Stop(ctx, st.Name); err != nil {
					e.t.Errorf("cleanup: stop %s: %v", st.Name, err)
				}
			}
		}
	}
	for i := len(e.loaded) - 1; i >= 0; i-- {
		name := e.loaded[i]
		if err := e.m.Unload(ctx, name); err != nil && !errors.Is(err, service.ErrNotFound) {
			e.t.Errorf("cleanup: unload %s: %v", name, err)
		}
	}
}

// name is the test's unit NAME.service; template and instance name
// NAME@.service and NAME@INSTANCE.service.
func (e *env) name(base string) string { return e.prefix + base + ".service" }
func (e *env) template(base string) string {
	return e.prefix + base + "@.service"
}
func (e *env) instance(base, instance string) string {
	return e.prefix + base + "@" + instance + ".service"
}

// load loads a unit file, failing the test on error.
func (e *env) load(name, content string) {
	e.t.Helper()
	if err := e.m.Load(e.ctx, name, []byte(content)); err != nil {
		e.t.Fatalf("load %s: %v", name, err)
	}
	e.loaded = append(e.loaded, name)
}

func (e *env) start(name string) {
	e.t.Helper()
	if err := e.m.Start(e.ctx, name); err != nil {
		e.t.Fatalf("start %s: %v\noutput:\n%s", name, err, strings.Join(e.output(name), "\n"))
	}
}

func (e *env) stop(name string) {
	e.t.Helper()
	if err := e.m.Stop(e.ctx, name); err != nil {
		e.t.Fatalf("stop %s: %v", name, err)
	}
}

func (e *env) state(name string) service.UnitState {
	e.t.Helper()
	st, err := e.m.State(e.ctx, name)
	if err != nil {
		e.t.Fatalf("state of %s: %v", name, err)
	}
	return st
}

// waitState waits until the unit's state satisfies ok, failing the test
// after a while with the last state seen.
func (e *env) waitState(name, what string, ok func(service.UnitState) bool) service.UnitState {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e.state(name)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: never %s; last state %s/%s result %s", name, what, st.Active, st.Sub, st.Result)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantState checks a unit's active and sub-state now.
func (e *env) wantState(name string, active service.ActiveState, sub string) service.UnitState {
	e.t.Helper()
	st := e.state(name)
	if st.Active != active || st.Sub != sub {
		e.t.Fatalf("%s: state %s/%s (result %s), want %s/%s", name, st.Active, st.Sub, st.Result, active, sub)
	}
	return st
}

// output is what the unit's processes wrote so far.
func (e *env) output(name string) []string { return e.b.Output(e.t, e.m, name) }

// count is how many lines of the unit's output equal line.
func (e *env) count(name, line string) int {
	n := 0
	for _, got := range e.output(name) {
		if got == line {
			n++
		}
	}
	return n
}

// waitCount waits until the unit wrote line at least n times.
func (e *env) waitCount(name, line string, n int) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.count(name, line) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s wrote %q %d times, want %d; it wrote:\n%s", name, line, e.count(name, line), n, strings.Join(e.output(name), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLine waits until the unit wrote line.
func (e *env) waitLine(name, line string) { e.t.Helper(); e.waitCount(name, line, 1) }

// waitPrefix waits until the unit wrote a line starting with prefix and
// returns the rest of it.
func (e *env) waitPrefix(name, prefix string) string {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, line := range e.output(name) {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never wrote a line starting %q; it wrote:\n%s", name, prefix, strings.Join(e.output(name), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether a process runs (a zombie does not).
func alive(pid int) bool {
	if pid <= 0 || unix.Kill(pid, 0) != nil {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	return !strings.Contains(s[strings.LastIndexByte(s, ')'):], ") Z")
}

// waitGone waits until a process has ended.
func (e *env) waitGone(pid int, what string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s %d is still running", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readPID waits for a PID file and reads it.
func (e *env) readPID(path string) int {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no PID in %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// helper is the ExecStart= of one of the helper programs, with the
// Environment= line that selects it.
func (e *env) helper(name string, args ...string) string {
	e.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("Environment=%s=%s\nExecStart=%s", helperEnv, name, strings.Join(append([]string{exe}, args...), " "))
}

func containsInOrder(list []string, want ...string) bool {
	for _, s := range list {
		if len(want) > 0 && s == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}
