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
	"time"
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
	// Close stops supervising, leaving the units running (a restart of
	// the daemon must not restart them).
	Close() error
}

// UnitState is what systemctl shows of a unit.
type UnitState struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Load        LoadState   `json:"loadState"`
	Active      ActiveState `json:"activeState"`
	Sub         string      `json:"subState"`
	// MainPID is the service's main process, 0 when it has none.
	MainPID int `json:"mainPID,omitempty"`
	// Since is when ActiveState last changed.
	Since time.Time `json:"since,omitzero"`
	// Result is systemd's Result of the last run: success, exit-code,
	// signal, timeout, core-dump, start-limit-hit, resources.
	Result string `json:"result,omitempty"`
	// ExitCode and ExitStatus describe how the main process ended last:
	// ExitCode is systemd's exited|killed|dumped, ExitStatus the status
	// or signal number.
	ExitCode   string `json:"exitCode,omitempty"`
	ExitStatus int    `json:"exitStatus,omitempty"`
	// Cgroup is the unit's cgroup path, the same in every hierarchy.
	Cgroup string `json:"cgroup,omitempty"`
	// Status is systemd's StatusText: what the service last said of
	// itself (sd_notify's STATUS=).
	Status string `json:"statusText,omitempty"`
	// Enabled is systemd's UnitFileState: enabled, disabled, static.
	Enabled string `json:"unitFileState,omitempty"`
	// Hash is fleet's hash of the unit file (unit.File.Hash), hex.
	Hash string `json:"hash,omitempty"`
}

// LoadState is systemd's LoadState.
type LoadState string

// Load states.
const (
	Loaded     LoadState = "loaded"
	NotFound   LoadState = "not-found"
	BadSetting LoadState = "bad-setting"
	LoadError  LoadState = "error"
	Masked     LoadState = "masked"
)

// ActiveState is systemd's ActiveState.
type ActiveState string

// Active states.
const (
	Active       ActiveState = "active"
	Reloading    ActiveState = "reloading"
	Inactive     ActiveState = "inactive"
	Failed       ActiveState = "failed"
	Activating   ActiveState = "activating"
	Deactivating ActiveState = "deactivating"
)

// Errors every backend returns, wrapped with the unit's name.
var (
	ErrNotFound = errors.New("unit not found")
	ErrTemplate = errors.New("a template cannot be started; start an instance (name@instance.service)")
	ErrFailed   = errors.New("unit failed")
	ErrRunning  = errors.New("unit is running")
)
