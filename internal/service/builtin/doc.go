// Package builtin is atoll's own service manager: service.Manager for
// machines where systemd is not PID 1 (containers, CI boxes, playground
// machines). It runs systemd service units with systemd's semantics and
// reports systemd's states, so that a unit file behaves the same under
// either backend.
//
// It imports the service package (the interface and states) and the
// go-systemd unit options; it must not import the unit-file parser
// (Options.ParseUnit brings one in) nor the journal (Options.Logger is
// the journal, through the small Logger interface defined here).
//
// # Reading units
//
// ParseSpec turns a unit's options into a Spec: systemd's time spans
// (ParseTimespan), command lines with their quoting, C escapes, $VAR and
// ${VAR} expansion and the "-", "@", ":", "+", "!" and "!!" prefixes
// (ParseCommandLines, Command.Expand), Environment= and EnvironmentFile=,
// Restart= with systemd's table (Spec.ShouldRestart), SuccessExitStatus=,
// KillMode= and KillSignal=, path conditions and assertions, with
// systemd's defaults (or the manager's, Defaults). What systemd would
// warn about and ignore comes back as warnings; what would make systemd
// refuse the unit is an error wrapping ErrBadSetting.
//
// # Process model
//
// A unit's processes are children of the daemon that must outlive it, so
// that restarting `atoll node` restarts no service:
//
//   - each runs in a session of its own (setsid) with no parent-death
//     signal;
//   - its stdout and stderr are FIFOs in the run directory, not pipes: the
//     unit holds them open read-write, so it never gets EPIPE while no
//     daemon reads, and what it writes meanwhile waits in the FIFO (1 MiB)
//     for the next daemon, which opens the FIFOs again by path (see
//     streams in output.go);
//   - its notification socket (NOTIFY_SOCKET, for Type=notify) is a
//     datagram socket per unit at a fixed path, which the next daemon
//     binds again.
//
// Each unit has a cgroup of its own, CgroupParent/NAME in every
// hierarchy (the v1 controllers and named hierarchies and the v2
// hierarchy, controller-less on a hybrid machine), made with
// opencontainers/cgroups. A process is in it from its first instruction,
// so that nothing it forks escapes: in the v1 hierarchies a thread of the
// daemon joins the cgroup (its tasks files) and forks, then ends; in v2
// the child is cloned straight into the cgroup (CLONE_INTO_CGROUP). A
// unit stops as systemd stops it: ExecStop=, then KillSignal= to what
// KillMode= names (the cgroup is frozen while it is listed and signalled,
// so that no fork slips through), TimeoutStopSec=, SIGKILL, ExecStopPost=,
// and the same for what ExecStopPost= left. cgroup.kill is not used: on
// the kernels at hand a process cloned later into a cgroup that was once
// killed so is killed at birth.
//
// Processes are watched through pidfds: a pidfd names a process, not a
// PID, so a PID reused after its process ended is never mistaken for it.
//
// # States
//
// Each unit is driven by one goroutine through systemd's service states
// (LoadState, ActiveState, SubState: dead, start-pre, start, start-post,
// running, exited, reload, stop, stop-sigterm, stop-sigkill, stop-post,
// final-sigterm, final-sigkill, failed, auto-restart) and Results
// (success, exit-code, signal, core-dump, timeout, protocol, resources,
// start-limit-hit). Restart=, RestartSec=, StartLimitIntervalSec= and
// StartLimitBurst= act as in systemd.
//
// # A new daemon takes running units over
//
// At every change of a unit's state the manager writes a record,
// RunDir/units/NAME.json: the unit file the run started from, the state,
// the cgroup, and the main PID with the process's start time (from
// /proc/PID/stat, to tell it from a later process with the same PID). New
// reads the records and takes the units over: a running unit stays
// running with the same main process, watched again through a new pidfd,
// its FIFOs and notification socket reopened; a unit that was failed
// stays failed; a unit waiting to restart restarts. What is lost:
//
//   - the exit status of a main process that is not the new daemon's
//     child (a new daemon is not the parent of the units it took over).
//     Its end is known (the pidfd), how it ended is not: it counts as
//     success, which is what systemd does for a main process it cannot
//     wait for (a "alien" one), so Restart=on-failure does not restart it
//     while Restart=always does. The same holds for the main process of
//     a forking service, whose parent has exited. A supervisor process
//     per unit (conmon's way) or the daemon tracing the process
//     (PTRACE_O_TRACEEXIT) would keep the status; neither is done yet.
//   - a control process (ExecStartPre=, ExecStop=...) in flight: a unit
//     caught starting or stopping has its processes killed, and is started
//     again if it was starting;
//   - the start-limit counters.
//
// # Dependencies
//
// Start, Stop and Restart are transactions over the units' dependencies
// (deps.go): Requires=, Wants=, BindsTo= pull units in, After= and
// Before= order the jobs, a failed required unit keeps the units ordered
// after it from starting, Conflicts= stops the other side, stopping or
// restarting a unit does the same to the units that Requires=, BindsTo=
// or PartOf= it, and a unit bound to another stops when that one goes.
// Only services take part: dependencies on targets and other unit types
// count as met.
//
// # Not yet
//
// .timer and other unit types, Requisite=, OnFailure=, job modes and
// the merging of queued jobs (a start and a stop of the same unit from
// two transactions act in turn), watchdogs, sandboxing and resource
// limits (the "+" prefix only drops User= and Group=), socket
// activation, ExecCondition=, and conditions other than the path ones.
package builtin
