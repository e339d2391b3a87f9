package node

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/service/builtin"
)

// A unit through the daemon's API: loaded, started, its output in the
// journal, and running on across a restart of the daemon.
func TestUnitsThroughTheDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: units run in cgroups of their own")
	}
	m := startMachine(t, "units", "")
	ctx := context.Background()
	parent := UnitCgroupParent(m.paths, m.sys.MachineID())
	t.Cleanup(func() { builtin.RemoveCgroupTree(parent) })
	file := "[Unit]\nDescription=greeter on %H\n[Service]\nExecStart=/bin/sh -c 'echo hello from %i in $ATOLL_ROOT; exec sleep 600'\n"
	if _, err := m.local.LoadUnit(ctx, "greet@.service", []byte(file)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.local.LoadUnit(ctx, "bad.service", []byte("ExecStart=/bin/true\n")); err == nil || !strings.Contains(err.Error(), "bad.service:1") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("loading a malformed file: %v, want HTTP 400 naming bad.service:1", err)
	}
	st, err := m.local.UnitAction(ctx, "greet@world.service", "start")
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != api.Active || st.Sub != "running" || st.MainPID == 0 || st.Description != "greeter on units" {
		t.Fatalf("after start: %+v", st)
	}
	pid := st.MainPID
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	// The machine shares the host: its units' atoll commands act on it.
	waitLine(t, m.local, "greet@world.service", "hello from world in "+m.paths.Root)

	// The daemon restarts; the unit runs on, taken over.
	m.stop()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the unit's main process died with the daemon: %v", err)
	}
	m.start(t)
	st, err = m.local.Unit(ctx, "greet@world.service")
	if err != nil || st.Active != api.Active || st.MainPID != pid {
		t.Fatalf("after the daemon's restart: %+v, %v; want active with main PID %d", st, err, pid)
	}
	list, err := m.local.Units(ctx)
	if err != nil || len(list) == 0 {
		t.Errorf("units: %v, %v", list, err)
	}
	if st, err = m.local.UnitAction(ctx, "greet@world.service", "stop"); err != nil || st.Active != api.Inactive {
		t.Errorf("after stop: %+v, %v", st, err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("main process %d still there after stop", pid)
	}
}

// waitLine waits until a unit's journal has a line containing want.
func waitLine(t *testing.T, c client.Local, unit, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		body, err := c.Journal(context.Background(), unit, client.JournalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			var e journal.Entry
			if json.Unmarshal(sc.Bytes(), &e) == nil && strings.Contains(e.Line, want) {
				body.Close()
				return
			}
		}
		body.Close()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %q in the journal of %s", want, unit)
}

// The backend: as configured; auto is systemd only where systemd is PID 1
// on a machine of its own, never for a machine sharing a host.
func TestChooseBackend(t *testing.T) {
	_, err := os.Stat("/run/systemd/system")
	hostAuto := config.BackendBuiltin
	if err == nil {
		hostAuto = config.BackendSystemd
	}
	for _, c := range []struct {
		configured, root, want string
	}{
		{"", "/", hostAuto},
		{config.BackendAuto, "", hostAuto},
		{config.BackendAuto, "/var/lib/machines/m1", config.BackendBuiltin},
		{config.BackendBuiltin, "/", config.BackendBuiltin},
		{config.BackendSystemd, "/var/lib/machines/m1", config.BackendSystemd},
	} {
		if got := chooseBackend(c.configured, Paths{Root: c.root}); got != c.want {
			t.Errorf("chooseBackend(%q, root %q) = %q, want %q", c.configured, c.root, got, c.want)
		}
	}
}
