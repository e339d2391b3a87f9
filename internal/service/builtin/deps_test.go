package builtin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"atoll.dev/atoll/internal/service"
)

// orderLog is a file units append their names to, to show in which
// order they ran.
func orderLog(t *testing.T) (path string, read func() string) {
	path = filepath.Join(t.TempDir(), "order")
	return path, func() string {
		data, _ := os.ReadFile(path)
		return strings.Join(strings.Fields(string(data)), " ")
	}
}

// depUnit is a long-running unit that logs "start NAME" and "stop NAME".
func depUnit(log, name, unitSection string) string {
	return "[Unit]\n" + unitSection + "\n[Service]\n" +
		"ExecStartPre=/bin/sh -c 'echo start " + name + " >> " + log + "'\n" +
		"ExecStart=/bin/sleep 1000\n" +
		"ExecStopPost=/bin/sh -c 'echo stop " + name + " >> " + log + "'\n"
}

func TestRequiresAfterOrdersAndPullsIn(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	log, order := orderLog(t)
	load(t, m, "db.service", depUnit(log, "db", ""))
	load(t, m, "cache.service", depUnit(log, "cache", "After=db.service"))
	load(t, m, "app.service", depUnit(log, "app", "Requires=db.service\nWants=cache.service missing.service network-online.target\nAfter=db.service cache.service network-online.target"))
	if err := m.Start(ctx, "app.service"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"db.service", "cache.service", "app.service"} {
		wantState(t, m, name, service.Active, "running")
	}
	if got := order(); got != "start db start cache start app" {
		t.Errorf("start order %q, want db, cache, app", got)
	}
	// Stopping db stops app first (it requires db), not cache (which only
	// orders after db).
	os.WriteFile(log, nil, 0o644)
	if err := m.Stop(ctx, "db.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "app.service", service.Inactive, "dead")
	wantState(t, m, "cache.service", service.Active, "running")
	if got := order(); got != "stop app stop db" {
		t.Errorf("stop order %q, want app then db", got)
	}
	// Restarting db restarts app with it.
	if err := m.Start(ctx, "app.service"); err != nil {
		t.Fatal(err)
	}
	app := wantState(t, m, "app.service", service.Active, "running")
	if err := m.Restart(ctx, "db.service"); err != nil {
		t.Fatal(err)
	}
	if again := wantState(t, m, "app.service", service.Active, "running"); again.MainPID == app.MainPID {
		t.Error("app.service was not restarted with db.service")
	}
	for _, name := range []string{"app.service", "cache.service", "db.service"} {
		if err := m.Stop(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRequiredUnitFailing(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "broken.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
	load(t, m, "needs.service", "[Unit]\nRequires=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	load(t, m, "wants.service", "[Unit]\nWants=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	err := m.Start(ctx, "needs.service")
	if !errors.Is(err, service.ErrFailed) || !strings.Contains(err.Error(), "dependency broken.service") {
		t.Fatalf("start: %v, want ErrFailed for the dependency", err)
	}
	wantState(t, m, "needs.service", service.Inactive, "dead")
	wantState(t, m, "broken.service", service.Failed, "failed")
	if !e.log.hasLine("needs.service", "Dependency failed for needs.service.") {
		t.Errorf("log %q: want the dependency failure", e.log.get("needs.service"))
	}
	if err := m.Start(ctx, "wants.service"); err != nil {
		t.Fatalf("start with a failing wanted unit: %v", err)
	}
	wantState(t, m, "wants.service", service.Active, "running")
	m.Stop(ctx, "wants.service")

	load(t, m, "orphan.service", "[Unit]\nRequires=nowhere.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "orphan.service"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("start requiring a unit that does not exist: %v, want ErrNotFound", err)
	}
}

func TestBindsToStopsWithItsUnit(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "base.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	load(t, m, "bound.service", "[Unit]\nBindsTo=base.service\nAfter=base.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "bound.service"); err != nil {
		t.Fatal(err)
	}
	base := wantState(t, m, "base.service", service.Active, "running")
	syscall.Kill(base.MainPID, syscall.SIGKILL) // base fails by itself
	waitState(t, m, "bound.service", "stopped", func(s service.UnitState) bool { return s.Active == service.Inactive })
}

func TestConflicts(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "old.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	load(t, m, "new.service", "[Unit]\nConflicts=old.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "old.service"); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, "new.service"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "old.service", service.Inactive, "dead")
	wantState(t, m, "new.service", service.Active, "running")
	m.Stop(ctx, "new.service")
}

func TestOrderingCycle(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager()
	load(t, m, "a.service", "[Unit]\nRequires=b.service\nAfter=b.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	load(t, m, "b.service", "[Unit]\nRequires=a.service\nAfter=a.service\n[Service]\nExecStart=/bin/sleep 1000\n")
	err := m.Start(ctxT(t), "a.service")
	if err == nil || !strings.Contains(err.Error(), "ordering cycle") {
		t.Fatalf("start: %v, want an ordering cycle", err)
	}
	wantState(t, m, "a.service", service.Inactive, "dead")
}
