// Package builtin is atoll's own service manager: service.Manager for
// machines where systemd is not PID 1 (containers, CI boxes, playground
// machines). It runs systemd service and timer units with systemd's
// semantics and reports systemd's states, so that a unit file behaves the
// same under either backend.
//
// It imports the service package (the interface and states), the
// go-systemd unit options and package calendar (OnCalendar=); it must not
// import the unit-file parser
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
//     unitOutput in output.go);
//   - its notification socket (NOTIFY_SOCKET, for Type=notify) is a
//     datagram socket per unit at a fixed path, which the next daemon
//     binds again.
//
// Each unit has a cgroup of its own, CgroupParent/NAME in every
// hierarchy (the v1 controllers and named hierarchies and the v2
// hierarchy, controller-less on a hybrid machine), made with
// opencontainers/cgroups. A process is in it from its first instruction,
// so that nothing it forks escapes: in the v1 hierarchies a thread of the
// daemon joins the cgroup (its tasks files) and forks, then goes back; in
// v2 the child is cloned straight into the cgroup (CLONE_INTO_CGROUP).
// The hierarchies are described once per manager; a unit's cgroup is
// their roots joined with its path. A unit stops as systemd stops it:
// ExecStop=, then KillSignal= to what KillMode= names, TimeoutStopSec=,
// SIGKILL, ExecStopPost=, and the same for what ExecStopPost= left. The
// main and control processes get each signal through their pidfds first;
// when the whole cgroup is to get it and holds other processes, it is
// frozen while it is listed and signalled, so that no fork slips through,
// and what the main process forks after is signalled once it has ended.
// A cgroup found empty is not looked at again by the later steps.
// cgroup.kill is not used: on the kernels at hand a process cloned later
// into a cgroup that was once killed so is killed at birth.
//
// Processes are watched through pidfds: a pidfd names a process, not a
// PID, so a PID reused after its process ended is never mistaken for it.
// One goroutine per manager (poller.go) waits on every pidfd, every
// notification socket and every output FIFO that has nothing to read;
// the Logger reads a FIFO only while output comes, and what a process
// wrote is stored before its end or its notification is acted on. A
// unit's own goroutine is the only one it holds while it runs quietly.
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
// At each change of a unit's state that matters to a takeover, the
// manager writes a record, RunDir/units/NAME.json (record.go says when
// and how): the unit file the run started from, the state,
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
// # Timers
//
// A .timer unit (systemd.timer(5), ParseTimerSpec) starts its service,
// Unit= or the timer's name with .service, when it elapses: OnActiveSec=
// counts from the timer's start, OnBootSec= from the machine's boot
// (CLOCK_BOOTTIME, or Options.BootTime), OnStartupSec= from the manager's
// start (New), OnUnitActiveSec= and OnUnitInactiveSec= from the service's
// last activation and deactivation, and OnCalendar= follows a calendar
// event (package calendar, systemd.time(7)). Each setting may be given
// several times; an empty one resets them all. Timers load, start, stop,
// enable ([Install] WantedBy=timers.target) and unload like services,
// each driven by a goroutine of its own (timer.go) through systemd's
// states: dead, waiting, running (its service is active), elapsed (it
// will not elapse again: RemainAfterElapse=, the default, keeps it
// active) and failed. UnitState's NextElapse, LastTrigger and Triggers
// are what systemctl list-timers shows. The first three bases fire once:
// a timer started after OnBootSec= has passed fires at once, then not
// again until it is stopped and started (OnActiveSec=) or never
// (OnBootSec=, OnStartupSec=), as in systemd. AccuracySec= places the
// wakeup within its span at the spot of the minute that every timer of
// the machine shares (sd-event's sleep_between, perturbed by the boot
// ID); RandomizedDelaySec= adds a random delay. Calendar timers check the
// clock at least once a minute, so that a change of the wall clock moves
// them by a minute at most.
//
// Every time is the Clock's (Options.Clock), so tests move time without
// sleeping. An active timer's record, RunDir/timers/NAME.json, lets the
// next manager go on with it as with a service: a calendar time it
// missed while no manager ran fires at once. A Persistent=true timer
// also keeps the time of its last trigger in UnitDir/.timers/stamp-NAME
// (RFC 3339, written atomically, its modification time set to match, as
// systemd's /var/lib/systemd/timers/stamp-NAME), which outlives reboots:
// starting the timer after a calendar time went by without it fires it at
// once. Unload removes the stamp. WakeSystem= is accepted with a warning.
//
// # Reloading unit files
//
// UnitDir holds unit files and their drop-ins, NAME.d/*.conf (and those
// of the template, of the name's dash prefixes and of the type, service.d,
// as systemd's unit_file_find_dirs finds them; a drop-in linked to
// /dev/null masks the others of its name). A unit reads as its file
// followed by its drop-ins in file name order, each after a "# PATH"
// comment, which is also what Cat returns and what a record keeps. New
// and DaemonReload read UnitDir; Load writes a file and reads it with the
// drop-ins already known. DaemonReload is systemctl daemon-reload for
// files edited by hand: new files become units, a changed file applies at
// once to a unit that is not running and at the next start to one that
// is, a removed file unloads a unit that is not running and leaves a
// running one in LoadState not-found until it stops. A file that does not
// read still makes a unit (LoadState error or bad-setting) and is
// reported, by file and line (Options.ParseUnit names them), in the error
// DaemonReload returns once every file is read.
//
// # Not yet
//
// Socket, path and other unit types, Requisite=, OnFailure=, job modes and
// the merging of queued jobs (a start and a stop of the same unit from
// two transactions act in turn), watchdogs, sandboxing and resource
// limits (the "+" prefix only drops User= and Group=), socket
// activation, ExecCondition=, and conditions other than the path ones.
package builtin
