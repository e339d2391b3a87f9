package api

import "time"

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
	// NextElapse, LastTrigger and Triggers are what systemctl
	// list-timers shows of a timer, and are set for timers only:
	// NextElapse is when it elapses next on the wall clock (systemd's
	// NextElapseUSecRealtime, or NextElapseUSecMonotonic converted),
	// zero when it is not waiting; LastTrigger is when it last started
	// its unit (LastTriggerUSec), zero if never; Triggers is the unit it
	// starts (Triggers, list-timers' ACTIVATES).
	NextElapse  time.Time `json:"nextElapse,omitzero"`
	LastTrigger time.Time `json:"lastTrigger,omitzero"`
	Triggers    string    `json:"triggers,omitempty"`
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
