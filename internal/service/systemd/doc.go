// Package systemd is service.Manager over systemd's D-Bus API, for
// machines where systemd is PID 1: units are systemd's own, run and
// logged by systemd, and read back through its properties.
//
// It talks to systemd through github.com/coreos/go-systemd/v22/dbus,
// over systemd's private socket (/run/systemd/private, root only, no bus
// daemon needed) or else the system bus. It imports the service package,
// package unit (names, and fleet's hash of a file), package journal (its
// Entry) and fsutil; it must not import the builtin backend.
//
// # Unit files
//
// Load writes a unit file into RuntimeDir (systemd's /run/systemd/system
// by default: a temporary file, fsynced, renamed) and has systemd reload.
// Runtime units override a packaged unit of the same name (/lib,
// /usr/lib) but not one in /etc/systemd/system, which systemd reads
// first, and they are gone after a reboot. The
// authoritative copy is in StateDir: StateDir/units holds every file
// loaded, StateDir/enabled the names of the units enabled. New writes
// back what RuntimeDir lacks, enables again, reloads, and starts the
// enabled units, so that "an enabled unit is started when the manager
// starts" holds after a reboot as with the builtin backend. Enable and
// Disable are systemd's, for the runtime ([Install] WantedBy= links in
// RuntimeDir), plus that record.
//
// # Jobs and states
//
// Start, Stop, Restart and Reload queue a job in "replace" mode, as
// systemctl does, and wait for its result: a job that ends other than
// "done" is an error wrapping service.ErrFailed that names the job's
// result and the unit's. States are systemd's properties, mapped to
// service.UnitState: LoadState, ActiveState, SubState, Description and
// UnitFileState from the Unit interface, MainPID, Result, ExecMainCode,
// ExecMainStatus, ControlGroup and StatusText from the Service interface,
// StateChangeTimestamp as Since, and fleet's hash of the file as loaded
// (unit.File.Hash). Subscribe follows systemd's PropertiesChanged
// signals, without polling (see subscribe.go).
//
// The backend sees only what it loaded: State, List and Subscribe report
// its units and the instances of its templates, jobs refuse any other
// name with service.ErrNotFound, and the host's other units stay out of
// sight. Dependencies on other units (targets, the host's services) are
// systemd's to resolve.
//
// # Journals
//
// Journal reads a unit's journal with journalctl, in the shape of
// (*journal.Journal).Read, so that `atoll unit journal` reads journald
// when this backend runs.
//
// # What differs from the builtin backend
//
//   - Everything systemd does is done: every unit type, sandboxing,
//     resource control, watchdogs, socket activation, timers.
//   - Load refuses a file only when systemd cannot load it (bad-setting,
//     error), with systemd's reason; the builtin backend reads the file
//     itself.
//   - A running unit's description and other properties change at Load
//     (systemd reloads its units in place); its processes keep running
//     the old command lines until restarted, as with builtin.
//   - Close leaves nothing to take over: systemd runs the units.
//   - ControlGroup is systemd's (/system.slice/NAME), not under a cgroup
//     parent of atoll's.
//   - UnitFileState "enabled-runtime" reads "enabled" (see fileState).
//
// # Tests
//
// The tests that need systemd run where it is PID 1, as root, and skip
// elsewhere. TestUnderSystemdPID1 runs them anyway on a machine without
// it (a CI box, a container): as root it boots systemd as PID 1 of a
// container made from the host's own filesystem (an overlay over a
// non-recursive bind of /, in new mount, PID, UTS, IPC, network and
// cgroup namespaces, with only a loopback device) and runs the package's
// tests in it as a service of that systemd; see container_test.go. It
// needs root, systemd, journalctl, overlayfs and a cgroup v2 hierarchy
// (unified or hybrid), and boots in well under a second. Run it alone
// with
//
//	go test -run TestUnderSystemdPID1 -v ./internal/service/systemd
//
// and narrow the tests run inside with ATOLL_SYSTEMD_CT_RUN, a
// -test.run pattern (ATOLL_SYSTEMD_CT_RUN=TestConformance/Notify).
package systemd
