package servicetest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"atoll.dev/atoll/internal/service"
)

// orderLog is a file units append to, to show in which order they ran.
func orderLog(e *env) (path string, read func() string) {
	path = filepath.Join(e.dir, "order")
	return path, func() string {
		data, _ := os.ReadFile(path)
		return strings.Join(strings.Fields(string(data)), " ")
	}
}

// depUnit is a long-running unit that logs "start TAG" and "stop TAG".
func depUnit(log, tag, unitSection string) string {
	return "[Unit]\n" + unitSection + "\n[Service]\n" +
		"ExecStartPre=/bin/sh -c 'echo start " + tag + " >> " + log + "'\n" +
		"ExecStart=/bin/sleep 1000\n" +
		"ExecStopPost=/bin/sh -c 'echo stop " + tag + " >> " + log + "'\n"
}

func testRequiresAfterOrdersAndPullsIn(t *testing.T, e *env) {
	log, order := orderLog(e)
	db, cache, app := e.name("db"), e.name("cache"), e.name("app")
	e.load(db, depUnit(log, "db", ""))
	e.load(cache, depUnit(log, "cache", "After="+db))
	e.load(app, depUnit(log, "app", "Requires="+db+"\nWants="+cache+" "+e.name("missing")+" network-online.target\nAfter="+db+" "+cache+" network-online.target"))
	e.start(app)
	for _, name := range []string{db, cache, app} {
		e.wantState(name, service.Active, "running")
	}
	if got := order(); got != "start db start cache start app" {
		t.Errorf("start order %q, want db, cache, app", got)
	}
	// Stopping db stops app first (it requires db), not cache (which only
	// orders after db).
	os.WriteFile(log, nil, 0o644)
	e.stop(db)
	e.wantState(app, service.Inactive, "dead")
	e.wantState(cache, service.Active, "running")
	if got := order(); got != "stop app stop db" {
		t.Errorf("stop order %q, want app then db", got)
	}
	// Restarting db restarts app with it.
	e.start(app)
	before := e.wantState(app, service.Active, "running")
	if err := e.m.Restart(e.ctx, db); err != nil {
		t.Fatal(err)
	}
	after := e.waitState(app, "running again", func(s service.UnitState) bool {
		return s.Active == service.Active && s.MainPID != 0 && s.MainPID != before.MainPID
	})
	if after.Sub != "running" {
		t.Errorf("app after restarting db: %s/%s", after.Active, after.Sub)
	}
	for _, name := range []string{app, cache, db} {
		e.stop(name)
	}
}

func testRequiredUnitFailing(t *testing.T, e *env) {
	broken, needs, wants := e.name("broken"), e.name("needs"), e.name("wants")
	e.load(broken, "[Service]\nType=oneshot\nExecStart=/bin/false\n")
	e.load(needs, "[Unit]\nRequires="+broken+"\nAfter="+broken+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	e.load(wants, "[Unit]\nWants="+broken+"\nAfter="+broken+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	err := e.m.Start(e.ctx, needs)
	if !errors.Is(err, service.ErrFailed) || !strings.Contains(err.Error(), "dependency") {
		t.Fatalf("start: %v, want ErrFailed for a dependency", err)
	}
	e.wantState(needs, service.Inactive, "dead")
	e.wantState(broken, service.Failed, "failed")
	e.start(wants)
	e.wantState(wants, service.Active, "running")
	e.stop(wants)

	orphan := e.name("orphan")
	e.load(orphan, "[Unit]\nRequires="+e.name("nowhere")+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := e.m.Start(e.ctx, orphan); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("start requiring a unit that does not exist: %v, want ErrNotFound", err)
	}
	e.wantState(orphan, service.Inactive, "dead")
}

func testBindsTo(t *testing.T, e *env) {
	base, bound := e.name("base"), e.name("bound")
	e.load(base, "[Service]\nExecStart=/bin/sleep 1000\n")
	e.load(bound, "[Unit]\nBindsTo="+base+"\nAfter="+base+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	e.start(bound)
	st := e.wantState(base, service.Active, "running")
	syscall.Kill(st.MainPID, syscall.SIGKILL) // base fails by itself
	e.waitState(bound, "stopped", func(s service.UnitState) bool { return s.Active == service.Inactive })
	e.waitState(base, "failed", func(s service.UnitState) bool { return s.Active == service.Failed })
}

func testPartOf(t *testing.T, e *env) {
	main, part := e.name("main"), e.name("part")
	e.load(main, "[Service]\nExecStart=/bin/sleep 1000\n")
	e.load(part, "[Unit]\nPartOf="+main+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	e.start(main)
	e.start(part)
	before := e.wantState(part, service.Active, "running")
	// Restarting main restarts part; stopping it stops part.
	if err := e.m.Restart(e.ctx, main); err != nil {
		t.Fatal(err)
	}
	e.waitState(part, "restarted", func(s service.UnitState) bool {
		return s.Active == service.Active && s.MainPID != 0 && s.MainPID != before.MainPID
	})
	e.stop(main)
	e.waitState(part, "stopped", func(s service.UnitState) bool { return s.Active == service.Inactive })
	// PartOf= pulls nothing in, and stopping part leaves main.
	e.start(part)
	e.wantState(main, service.Inactive, "dead")
	e.start(main)
	e.stop(part)
	e.wantState(main, service.Active, "running")
	e.stop(main)
}

func testConflicts(t *testing.T, e *env) {
	old, updated := e.name("old"), e.name("new")
	e.load(old, "[Service]\nExecStart=/bin/sleep 1000\n")
	e.load(updated, "[Unit]\nConflicts="+old+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	inactive := func(s service.UnitState) bool { return s.Active == service.Inactive }
	e.start(old)
	e.start(updated)
	// Without an ordering between them, the start does not wait for the
	// stop of the other side.
	e.waitState(old, "stopped", inactive)
	e.wantState(updated, service.Active, "running")
	// Conflicts= works both ways.
	e.start(old)
	e.waitState(updated, "stopped", inactive)
	e.wantState(old, service.Active, "running")
	e.stop(old)
}

func testOrderingCycle(t *testing.T, e *env) {
	a, b := e.name("a"), e.name("b")
	e.load(a, "[Unit]\nRequires="+b+"\nAfter="+b+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	e.load(b, "[Unit]\nRequires="+a+"\nAfter="+a+"\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := e.m.Start(e.ctx, a); err == nil {
		t.Fatal("start a unit in an ordering cycle: no error")
	}
	e.wantState(a, service.Inactive, "dead")
	e.wantState(b, service.Inactive, "dead")
}
