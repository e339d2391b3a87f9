package systemd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/servicetest"
)

// requireSystemd skips a test that needs systemd as PID 1.
func requireSystemd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 || !systemdIsPID1() {
		t.Skip("needs root and systemd as PID 1 (TestUnderSystemdPID1 runs this in a container)")
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// open opens a Manager, closed when the test ends.
func open(t *testing.T, stateDir string) *Manager {
	t.Helper()
	m := openUnclosed(t, stateDir)
	t.Cleanup(func() { m.Close() })
	return m
}

func openUnclosed(t *testing.T, stateDir string) *Manager {
	t.Helper()
	m, err := New(ctxT(t), Options{StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// output is what a unit wrote to stdout and stderr, from its journal.
func output(t *testing.T, unit string) []string {
	var lines []string
	err := Journal{}.Read(ctxT(t), unit, journal.ReadOptions{}, func(e journal.Entry) error {
		if e.Stream == journal.StreamStdout || e.Stream == journal.StreamStderr {
			lines = append(lines, e.Line)
		}
		return nil
	})
	if err != nil {
		t.Errorf("journal of %s: %v", unit, err)
	}
	return lines
}

func TestConformance(t *testing.T) {
	requireSystemd(t)
	servicetest.Run(t, servicetest.Backend{
		Open:   func(t *testing.T, dir string) service.Manager { return openUnclosed(t, dir) },
		Output: func(t *testing.T, _ service.Manager, unit string) []string { return output(t, unit) },
	})
}

// TestSystemdRestoreAfterReboot empties the runtime directory as a reboot
// does: a new Manager puts the units back, enables and starts them.
func TestSystemdRestoreAfterReboot(t *testing.T) {
	requireSystemd(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	name := "atoll-ct-restore-" + filepath.Base(dir) + ".service"
	m := open(t, dir)
	if err := m.Load(ctx, name, []byte("[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n")); err != nil {
		t.Fatal(err)
	}
	defer func() {
		m := open(t, dir)
		m.Stop(ctx, name)
		m.Unload(ctx, name)
	}()
	if err := m.Enable(ctx, name); err != nil {
		t.Fatal(err)
	}
	m.Close()

	links, _ := filepath.Glob(filepath.Join(DefaultRuntimeDir, "*.wants", name))
	if len(links) == 0 {
		t.Fatalf("no enablement link for %s in %s", name, DefaultRuntimeDir)
	}
	for _, p := range append(links, filepath.Join(DefaultRuntimeDir, name)) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := sddbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.ReloadContext(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := conn.GetUnitPropertyContext(ctx, name, "LoadState"); err != nil || p.Value.Value() != "not-found" {
		t.Fatalf("after the files went: LoadState %v, %v; want not-found", p, err)
	}

	m = open(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.State(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Active == service.Active {
			if st.Enabled != "enabled" || st.Load != service.Loaded {
				t.Errorf("restored: %s, %s; want loaded and enabled", st.Load, st.Enabled)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not started after the restore: %s/%s", st.Active, st.Sub)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(DefaultRuntimeDir, name)); err != nil {
		t.Errorf("unit file not back in %s: %v", DefaultRuntimeDir, err)
	}
}

// TestSystemdHostUnitsOutOfSight checks that the backend neither reports
// nor acts on units it did not load.
func TestSystemdHostUnitsOutOfSight(t *testing.T) {
	requireSystemd(t)
	ctx := ctxT(t)
	m := open(t, t.TempDir())
	host := "systemd-journald.service"
	if st, err := m.State(ctx, host); err != nil || st.Load != service.NotFound {
		t.Errorf("state of %s: %v, %v; want not-found", host, st.Load, err)
	}
	if err := m.Stop(ctx, host); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("stop %s: %v, want ErrNotFound", host, err)
	}
	list, err := m.List(ctx)
	if err != nil || len(list) != 0 {
		t.Errorf("list of a new manager: %v, %v; want nothing", list, err)
	}
}

func TestSystemdCatShowsDropIns(t *testing.T) {
	requireSystemd(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	m := open(t, dir)
	name := "atoll-ct-cat-" + filepath.Base(dir) + ".service"
	content := "[Service]\nExecStart=/bin/sleep 1000\n"
	if err := m.Load(ctx, name, []byte(content)); err != nil {
		t.Fatal(err)
	}
	dropDir := filepath.Join(DefaultRuntimeDir, name+".d")
	os.MkdirAll(dropDir, 0o755)
	defer func() {
		os.RemoveAll(dropDir)
		m.Unload(ctx, name)
	}()
	os.WriteFile(filepath.Join(dropDir, "env.conf"), []byte("[Service]\nEnvironment=A=1\n"), 0o644)
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := m.Cat(ctx, name)
	want := content + "\n# " + filepath.Join(dropDir, "env.conf") + "\n[Service]\nEnvironment=A=1\n"
	if err != nil || string(cat) != want {
		t.Errorf("Cat = %q, %v; want %q", cat, err, want)
	}
}

func TestSystemdJournal(t *testing.T) {
	requireSystemd(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	m := open(t, dir)
	name := "atoll-ct-journal-" + filepath.Base(dir) + ".service"
	if err := m.Load(ctx, name, []byte("[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo one; echo two >&2; echo three'\n")); err != nil {
		t.Fatal(err)
	}
	defer m.Unload(ctx, name)
	if err := m.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Join(output(t, name), " ") != "one two three" {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want one two three", output(t, name))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var entries []journal.Entry
	read := func(o journal.ReadOptions) {
		entries = entries[:0]
		if err := (Journal{}).Read(ctx, name, o, func(e journal.Entry) error { entries = append(entries, e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	read(journal.ReadOptions{})
	var sawManager bool
	for _, e := range entries {
		if e.Unit != name || e.Time.IsZero() {
			t.Errorf("entry %+v: want unit %s and a time", e, name)
		}
		sawManager = sawManager || e.Stream == journal.StreamManager
	}
	if !sawManager {
		t.Errorf("no line of systemd's about the unit in %+v", entries)
	}
	read(journal.ReadOptions{Lines: 1})
	if len(entries) != 1 {
		t.Errorf("Lines 1 gave %d entries", len(entries))
	}
	read(journal.ReadOptions{Since: time.Now().Add(time.Hour)})
	if len(entries) != 0 {
		t.Errorf("Since an hour from now gave %+v", entries)
	}
	// Follow gives what there is, then waits for more until ctx ends.
	followCtx, cancel := context.WithCancel(ctx)
	got := make(chan string, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- Journal{}.Read(followCtx, name, journal.ReadOptions{Follow: true}, func(e journal.Entry) error {
			if e.Stream == journal.StreamStdout {
				got <- e.Line
			}
			return nil
		})
	}()
	for _, want := range []string{"one", "two", "three"} {
		if line := <-got; line != want {
			t.Errorf("followed %q, want %q", line, want)
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("follow ended with %v, want context.Canceled", err)
	}
	stop := errors.New("enough")
	if err := (Journal{}).Read(ctx, name, journal.ReadOptions{}, func(journal.Entry) error { return stop }); err != stop {
		t.Errorf("Read returned %v, want fn's error", err)
	}
}
