// Package service is the node's unit manager: one Manager interface over two
// backends, systemd over D-Bus where systemd is PID 1 and atoll's own
// supervisor (package builtin) everywhere else, so that the same unit files
// run on any machine and read the same way.
//
// States are systemd's strings (systemd.unit(5), org.freedesktop.systemd1):
// a unit's LoadState, ActiveState and SubState, so `atoll unit list` reads
// like `systemctl list-units` and fleet can publish them as fleet did.
package service

import (
	"context"
	"errors"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/internal/journal"
)

// Manager runs units on one machine.
type Manager interface {
	// Load makes a unit file known under its name (web.service, or a
	// template web@.service whose instances can then be started by name).
	// Loading again replaces the file; a running unit keeps running the
	// old definition until it is restarted, as after systemd's
	// daemon-reload.
	Load(ctx context.Context, name string, content []byte) error
	// Unload forgets a unit that is not running.
	Unload(ctx context.Context, name string) error
	// Start, Stop, Restart and Reload act on a unit by name; an instance
	// of a loaded template (web@1.service) is made on first use. They
	// return once the unit has reached its new state (active, or failed:
	// an error) or ctx ends.
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Reload(ctx context.Context, name string) error
	// Enable and Disable act on [Install] WantedBy: an enabled unit is
	// started when the manager starts.
	Enable(ctx context.Context, name string) error
	Disable(ctx context.Context, name string) error
	// State reports one unit; a name never loaded reads not-found.
	State(ctx context.Context, name string) (UnitState, error)
	// List reports every loaded unit and instance.
	List(ctx context.Context) ([]UnitState, error)
	// Subscribe sends every change of a unit's state until ctx ends.
	Subscribe(ctx context.Context) (<-chan UnitState, error)
	// Cat returns the unit file as loaded, drop-ins included.
	Cat(ctx context.Context, name string) ([]byte, error)
	// DaemonReload reads the unit files and drop-ins again, as
	// `systemctl daemon-reload`, for files changed on disk by hand: new
	// files make units, changed ones apply to units that are not
	// running at once and to running ones at their next start, and a
	// unit whose file is gone goes once it is not running.
	DaemonReload(ctx context.Context) error
	// Close stops supervising, leaving the units running (a restart of
	// the daemon must not restart them).
	Close() error
}

// Journal reads the units' output, with the manager's lines about them:
// each backend comes with one (package journal's files for builtin, whose
// Logger writes them; journalctl for systemd, whose journald does).
type Journal interface {
	// Read gives fn a unit's entries in order: the last o.Lines, those
	// since o.Since, and with o.Follow the new ones until ctx ends.
	Read(ctx context.Context, unit string, o journal.ReadOptions, fn func(journal.Entry) error) error
}

// UnitState and its states are the API's wire types (package api), so
// that the daemon serves them as they are.
type (
	UnitState   = api.UnitState
	LoadState   = api.LoadState
	ActiveState = api.ActiveState
)

// Load and active states.
const (
	Loaded       = api.Loaded
	NotFound     = api.NotFound
	BadSetting   = api.BadSetting
	LoadError    = api.LoadError
	Masked       = api.Masked
	Active       = api.Active
	Reloading    = api.Reloading
	Inactive     = api.Inactive
	Failed       = api.Failed
	Activating   = api.Activating
	Deactivating = api.Deactivating
)

// Errors every backend returns, wrapped with the unit's name.
var (
	ErrNotFound = errors.New("unit not found")
	ErrTemplate = errors.New("a template cannot be started; start an instance (name@instance.service)")
	ErrFailed   = errors.New("unit failed")
	ErrRunning  = errors.New("unit is running")
)
