package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/builtin"
	"atoll.dev/atoll/internal/unit"
)

// UnitDir is where loaded unit files are kept: they outlive the daemon and
// the machine's reboots, as enabled units must.
func (p Paths) UnitDir() string { return filepath.Join(p.StateDir(), "units") }

// JournalDir holds the units' journals.
func (p Paths) JournalDir() string { return filepath.Join(p.StateDir(), "journal") }

// units is the machine's unit manager and journal. The builtin manager
// runs the units; they are not the daemon's parts and survive it: Close
// leaves them running and the next daemon takes them over.
type units struct {
	manager service.Manager
	journal *journal.Journal
}

func openUnits(paths Paths, machineID, hostname string) (*units, error) {
	j, err := journal.Open(paths.JournalDir(), journal.Options{})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	m, err := builtin.New(builtin.Options{
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
	return &units{manager: m, journal: j}, nil
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
	u.journal.Close()
}
