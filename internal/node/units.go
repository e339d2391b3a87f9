package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/builtin"
	"atoll.dev/atoll/internal/service/systemd"
	"atoll.dev/atoll/internal/unit"
)

// UnitDir is where loaded unit files are kept: they outlive the daemon and
// the machine's reboots, as enabled units must.
func (p Paths) UnitDir() string { return filepath.Join(p.StateDir(), "units") }

// JournalDir holds the units' journals.
func (p Paths) JournalDir() string { return filepath.Join(p.StateDir(), "journal") }

// SystemdStateDir holds the systemd backend's copies of the loaded unit
// files, which it puts back into /run/systemd/system after a reboot.
func (p Paths) SystemdStateDir() string { return filepath.Join(p.StateDir(), "systemd") }

// units is the machine's unit manager and the journal its units write to.
// The units are not the daemon's parts and survive it: Close leaves them
// running and the next daemon takes them over.
type units struct {
	manager service.Manager
	journal service.Journal
	// backend is config.BackendBuiltin or config.BackendSystemd.
	backend      string
	closeJournal func() error
}

// chooseBackend resolves the configured backend: auto is systemd where
// systemd is PID 1 (sd_booted's test: /run/systemd/system exists) on a
// machine of its own, and builtin elsewhere.
func chooseBackend(configured string, paths Paths) string {
	if configured != "" && configured != config.BackendAuto {
		return configured
	}
	if paths.root() == "/" {
		if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
			return config.BackendSystemd
		}
	}
	return config.BackendBuiltin
}

func openUnits(ctx context.Context, paths Paths, cfg config.Units, machineID, hostname string) (*units, error) {
	if backend := chooseBackend(cfg.Backend, paths); backend == config.BackendSystemd {
		m, err := systemd.New(ctx, systemd.Options{StateDir: paths.SystemdStateDir()})
		if err != nil {
			return nil, fmt.Errorf("units: systemd backend: %w", err)
		}
		return &units{manager: m, journal: systemd.Journal{}, backend: backend, closeJournal: func() error { return nil }}, nil
	}
	j, err := journal.Open(paths.JournalDir(), journal.Options{})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	env := []string{builtin.DefaultPath}
	if paths.root() != "/" {
		// A machine sharing a host (the playground): its units' atoll
		// commands act on it, as they would on a machine of its own.
		env = append(env, api.RootEnv+"="+paths.root(), api.RunDirEnv+"="+paths.runDir())
	}
	m, err := builtin.New(builtin.Options{
		Environment:  env,
		UnitDir:      paths.UnitDir(),
		RunDir:       paths.runDir(),
		CgroupParent: UnitCgroupParent(paths, machineID),
		Logger:       builtin.JournalLogger(j),
		ParseUnit: builtin.UnitParser(unit.Context{
			Hostname:  hostname,
			MachineID: machineID,
			BootID:    strings.ReplaceAll(strings.TrimSpace(string(bootID)), "-", ""),
		}),
	})
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("units: %w", err)
	}
	return &units{manager: m, journal: j, backend: config.BackendBuiltin, closeJournal: j.Close}, nil
}

// UnitCgroupParent is where the units' cgroups go: the default on a machine
// of its own, one per machine when several share a host (a root other than
// /, as in the playground).
func UnitCgroupParent(paths Paths, machineID string) string {
	if paths.root() == "/" {
		return builtin.DefaultCgroupParent
	}
	return builtin.DefaultCgroupParent + "/" + machineID
}

func (u *units) close() {
	u.manager.Close()
	u.closeJournal()
}
