package builtin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	sdunit "github.com/coreos/go-systemd/v22/unit"
	"golang.org/x/sys/unix"
)

// Spec is a service unit as the builtin supervisor runs it: the settings
// of its [Unit], [Service] and [Install] sections, typed, with systemd's
// defaults filled in.
type Spec struct {
	// Name is the unit's name, web.service or web@1.service.
	Name        string
	Description string

	// Dependencies, as names (see deps.go for what the manager does
	// with them).
	Requires, Wants, BindsTo, PartOf, Conflicts, After, Before []string

	// Conditions must hold for the unit to start; a failed one leaves it
	// inactive without an error. Asserts are the same checks, failing
	// the start.
	Conditions, Asserts []Condition

	// StartLimitInterval and StartLimitBurst limit starts, automatic
	// restarts included: more than StartLimitBurst within
	// StartLimitInterval fail the unit with result start-limit-hit. A zero
	// interval disables the limit.
	StartLimitInterval time.Duration
	StartLimitBurst    int

	Type ServiceType
	// RemainAfterExit keeps the unit active (SubState exited) once its
	// processes are gone.
	RemainAfterExit bool
	// PIDFile is where a forking service writes its main PID.
	PIDFile string
	// GuessMainPID lets a forking service without PIDFile take the only
	// process left in its cgroup as its main process.
	GuessMainPID bool
	// NotifyAccess says who may send notifications: none, main, exec or
	// all (main is the default of Type=notify).
	NotifyAccess NotifyAccess

	ExecStartPre, ExecStart, ExecStartPost []Command
	ExecReload, ExecStop, ExecStopPost     []Command

	Restart RestartPolicy
	// RestartDelay is RestartSec=: how long an automatic restart waits.
	RestartDelay time.Duration
	// SuccessExitStatus adds exit statuses and signals that count as a
	// clean exit of the main process. RestartPreventExitStatus and
	// RestartForceExitStatus override Restart= for theirs.
	SuccessExitStatus        ExitStatusSet
	RestartPreventExitStatus ExitStatusSet
	RestartForceExitStatus   ExitStatusSet

	// TimeoutStart bounds each step of starting (start-pre, start,
	// start-post), TimeoutStop each step of stopping; Infinity disables
	// them.
	TimeoutStart, TimeoutStop time.Duration

	KillMode KillMode
	// KillSignal stops the unit's processes; SIGKILL follows
	// TimeoutStop later unless SendSIGKILL is false.
	KillSignal  syscall.Signal
	SendSIGKILL bool

	// Environment holds KEY=VALUE entries, the last of a name winning.
	// EnvironmentFiles are read when the unit starts and override it.
	Environment      []string
	EnvironmentFiles []EnvFile
	// User and Group are names or numbers; empty is root.
	User, Group string
	// WorkingDirectory is where processes start ("~" for User's home);
	// "/" when empty. WorkingDirectoryOptional is its "-" prefix.
	WorkingDirectory         string
	WorkingDirectoryOptional bool

	WantedBy, RequiredBy, Alias, Also []string

	// Hash identifies the options the spec was read from.
	Hash string
}

// ServiceType is Type=.
type ServiceType string

// Service types.
const (
	Simple  ServiceType = "simple"
	Exec    ServiceType = "exec"
	Forking ServiceType = "forking"
	Oneshot ServiceType = "oneshot"
	Notify  ServiceType = "notify"
)

// RestartPolicy is Restart=.
type RestartPolicy string

// Restart policies.
const (
	RestartNo         RestartPolicy = "no"
	RestartOnSuccess  RestartPolicy = "on-success"
	RestartOnFailure  RestartPolicy = "on-failure"
	RestartOnAbnormal RestartPolicy = "on-abnormal"
	RestartOnWatchdog RestartPolicy = "on-watchdog"
	RestartOnAbort    RestartPolicy = "on-abort"
	RestartAlways     RestartPolicy = "always"
)

// KillMode is KillMode=.
type KillMode string

// Kill modes.
const (
	KillControlGroup KillMode = "control-group"
	KillMixed        KillMode = "mixed"
	KillProcess      KillMode = "process"
	KillNone         KillMode = "none"
)

// NotifyAccess is NotifyAccess=.
type NotifyAccess string

// Notify access values.
const (
	NotifyNone NotifyAccess = "none"
	NotifyMain NotifyAccess = "main"
	NotifyExec NotifyAccess = "exec"
	NotifyAll  NotifyAccess = "all"
)

// Result is systemd's Result of a service: why it last stopped.
type Result string

// Results.
const (
	ResultSuccess       Result = "success"
	ResultResources     Result = "resources"
	ResultProtocol      Result = "protocol"
	ResultTimeout       Result = "timeout"
	ResultExitCode      Result = "exit-code"
	ResultSignal        Result = "signal"
	ResultCoreDump      Result = "core-dump"
	ResultWatchdog      Result = "watchdog"
	ResultStartLimitHit Result = "start-limit-hit"
)

// ExitStatusSet is a set of exit statuses and signals, as
// SuccessExitStatus= takes them.
type ExitStatusSet struct {
	Statuses []int
	Signals  []syscall.Signal
}

// Empty reports whether the set holds nothing.
func (s ExitStatusSet) Empty() bool { return len(s.Statuses) == 0 && len(s.Signals) == 0 }

// Has reports whether the set holds how a process ended.
func (s ExitStatusSet) Has(e Exit) bool {
	switch e.Code {
	case Exited:
		for _, st := range s.Statuses {
			if st == e.Status {
				return true
			}
		}
	case Killed, Dumped:
		for _, sig := range s.Signals {
			if int(sig) == e.Status {
				return true
			}
		}
	}
	return false
}

// Condition is one Condition*= or Assert*= setting.
type Condition struct {
	// Check is the setting's name without its Condition or Assert
	// prefix: PathExists, PathIsDirectory...
	Check string
	// Trigger is the "|" prefix: of all triggering conditions one must
	// hold; every other condition must hold.
	Trigger bool
	// Negate is the "!" prefix.
	Negate bool
	Value  string
}

// Defaults are the manager's defaults for settings a unit leaves out;
// a zero field takes systemd's default.
type Defaults struct {
	TimeoutStart       time.Duration // 90s
	TimeoutStop        time.Duration // 90s
	RestartDelay       time.Duration // 100ms
	StartLimitInterval time.Duration // 10s
	StartLimitBurst    int           // 5
}

func (d Defaults) withSystemd() Defaults {
	def := func(v *time.Duration, systemd time.Duration) {
		if *v == 0 {
			*v = systemd
		}
	}
	def(&d.TimeoutStart, 90*time.Second)
	def(&d.TimeoutStop, 90*time.Second)
	def(&d.RestartDelay, 100*time.Millisecond)
	def(&d.StartLimitInterval, 10*time.Second)
	if d.StartLimitBurst == 0 {
		d.StartLimitBurst = 5
	}
	return d
}

// ErrBadSetting is wrapped by ParseSpec's errors: the unit cannot run as
// written (systemd's LoadState bad-setting).
var ErrBadSetting = errors.New("bad unit setting")

// ParseSpec is Defaults{}.ParseSpec: systemd's defaults.
func ParseSpec(name string, opts []*sdunit.UnitOption) (*Spec, []string, error) {
	return Defaults{}.ParseSpec(name, opts)
}

// ParseSpec reads a service unit's options, as the unit parser yields
// them with specifiers expanded, into a Spec. Warnings are what systemd
// would log and ignore: unknown settings, settings the builtin manager
// does not implement, values it cannot read. The error, wrapping
// ErrBadSetting, is what would make systemd refuse the unit.
func (d Defaults) ParseSpec(name string, opts []*sdunit.UnitOption) (*Spec, []string, error) {
	d = d.withSystemd()
	p := &specParser{spec: &Spec{
		Name:               name,
		StartLimitInterval: d.StartLimitInterval,
		StartLimitBurst:    d.StartLimitBurst,
		RestartDelay:       d.RestartDelay,
		TimeoutStart:       d.TimeoutStart,
		TimeoutStop:        d.TimeoutStop,
		Restart:            RestartNo,
		KillMode:           KillControlGroup,
		KillSignal:         syscall.SIGTERM,
		SendSIGKILL:        true,
		GuessMainPID:       true,
	}}
	for _, o := range opts {
		p.option(o)
	}
	if err := p.finish(); err != nil {
		return nil, p.warnings, fmt.Errorf("%s: %w: %w", name, ErrBadSetting, err)
	}
	p.spec.Hash = hashOptions(opts)
	return p.spec, p.warnings, nil
}

// hashOptions identifies a list of options.
func hashOptions(opts []*sdunit.UnitOption) string {
	h := sha256.New()
	for _, o := range opts {
		fmt.Fprintf(h, "%q %q %q\n", o.Section, o.Name, o.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type specParser struct {
	spec     *Spec
	warnings []string
	// set records settings given explicitly, for defaults that depend
	// on them.
	set map[string]bool
	err error
}

func (p *specParser) warnf(o *sdunit.UnitOption, format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf("[%s] %s=%s: ", o.Section, o.Name, o.Value)+fmt.Sprintf(format, args...))
}

// ignoredSettings are accepted without a word: documentation, or
// settings that have no meaning for a supervisor without dependencies
// between targets.
var ignoredSettings = map[string]bool{
	"Unit.Documentation": true, "Unit.DefaultDependencies": true, "Unit.IgnoreOnIsolate": true,
	"Unit.RefuseManualStart": true, "Unit.RefuseManualStop": true, "Unit.AllowIsolate": true,
	"Unit.SourcePath": true, "Install.DefaultInstance": true,
}

func (p *specParser) option(o *sdunit.UnitOption) {
	if p.set == nil {
		p.set = map[string]bool{}
	}
	s := p.spec
	key := o.Section + "." + o.Name
	p.set[key] = true
	v := strings.TrimSpace(o.Value)
	if strings.HasPrefix(o.Section, "X-") || strings.HasPrefix(o.Name, "X-") || ignoredSettings[key] {
		return
	}
	list := func(l *[]string) {
		if v == "" {
			*l = nil
			return
		}
		*l = append(*l, strings.Fields(v)...)
	}
	span := func(dst *time.Duration, zeroIsInfinity bool) {
		d, err := ParseTimespan(v, time.Second)
		if err != nil {
			p.warnf(o, "%v, ignoring", err)
			return
		}
		if d == 0 && zeroIsInfinity {
			d = Infinity
		}
		*dst = d
	}
	boolean := func(dst *bool) {
		b, err := parseBool(v)
		if err != nil {
			p.warnf(o, "%v, ignoring", err)
			return
		}
		*dst = b
	}
	commands := func(dst *[]Command) {
		if v == "" {
			*dst = nil
			return
		}
		cmds, err := ParseCommandLines(v, func(msg string) { p.warnf(o, "%s", msg) })
		if err != nil {
			// systemd refuses a unit whose command line does not parse.
			p.fail(fmt.Errorf("%s=: %w", o.Name, err))
			return
		}
		*dst = append(*dst, cmds...)
	}
	exitSet := func(dst *ExitStatusSet) {
		if v == "" {
			*dst = ExitStatusSet{}
			return
		}
		set, err := parseExitStatusSet(v)
		if err != nil {
			p.warnf(o, "%v, ignoring", err)
		}
		dst.Statuses = append(dst.Statuses, set.Statuses...)
		dst.Signals = append(dst.Signals, set.Signals...)
	}
	switch o.Section {
	case "Unit":
		switch o.Name {
		case "Description":
			s.Description = v
		case "Requires":
			list(&s.Requires)
		case "Wants":
			list(&s.Wants)
		case "BindsTo":
			list(&s.BindsTo)
		case "PartOf":
			list(&s.PartOf)
		case "Conflicts":
			list(&s.Conflicts)
		case "After":
			list(&s.After)
		case "Before":
			list(&s.Before)
		case "StartLimitIntervalSec", "StartLimitInterval":
			span(&s.StartLimitInterval, false)
		case "StartLimitBurst":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				p.warnf(o, "not a count, ignoring")
				return
			}
			s.StartLimitBurst = n
		default:
			if check, ok := strings.CutPrefix(o.Name, "Condition"); ok {
				p.condition(o, &s.Conditions, check)
				return
			}
			if check, ok := strings.CutPrefix(o.Name, "Assert"); ok {
				p.condition(o, &s.Asserts, check)
				return
			}
			p.warnf(o, "unknown setting, ignoring")
		}
	case "Service":
		switch o.Name {
		case "Type":
			switch t := ServiceType(v); t {
			case Simple, Exec, Forking, Oneshot, Notify:
				s.Type = t
			case "idle":
				s.Type = Simple
			case "notify-reload":
				p.warnf(o, "reloading by signal is not supported, running as Type=notify")
				s.Type = Notify
			case "dbus":
				p.warnf(o, "D-Bus activation is not supported, running as Type=simple")
				s.Type = Simple
			default:
				p.warnf(o, "unknown service type, ignoring")
			}
		case "RemainAfterExit":
			boolean(&s.RemainAfterExit)
		case "GuessMainPID":
			boolean(&s.GuessMainPID)
		case "PIDFile":
			if v != "" && !strings.HasPrefix(v, "/") {
				p.warnf(o, "not an absolute path, ignoring")
				return
			}
			s.PIDFile = v
		case "NotifyAccess":
			switch a := NotifyAccess(v); a {
			case NotifyNone, NotifyMain, NotifyExec, NotifyAll:
				s.NotifyAccess = a
			default:
				p.warnf(o, "unknown value, ignoring")
			}
		case "ExecStartPre":
			commands(&s.ExecStartPre)
		case "ExecStart":
			commands(&s.ExecStart)
		case "ExecStartPost":
			commands(&s.ExecStartPost)
		case "ExecReload":
			commands(&s.ExecReload)
		case "ExecStop":
			commands(&s.ExecStop)
		case "ExecStopPost":
			commands(&s.ExecStopPost)
		case "Restart":
			switch r := RestartPolicy(v); r {
			case RestartNo, RestartOnSuccess, RestartOnFailure, RestartOnAbnormal, RestartOnWatchdog, RestartOnAbort, RestartAlways:
				s.Restart = r
			default:
				p.warnf(o, "unknown restart policy, ignoring")
			}
		case "RestartSec":
			span(&s.RestartDelay, false)
		case "SuccessExitStatus":
			exitSet(&s.SuccessExitStatus)
		case "RestartPreventExitStatus":
			exitSet(&s.RestartPreventExitStatus)
		case "RestartForceExitStatus":
			exitSet(&s.RestartForceExitStatus)
		case "TimeoutSec":
			span(&s.TimeoutStart, true)
			span(&s.TimeoutStop, true)
			p.set["Service.TimeoutStartSec"] = true
		case "TimeoutStartSec":
			span(&s.TimeoutStart, true)
		case "TimeoutStopSec":
			span(&s.TimeoutStop, true)
		case "StartLimitInterval", "StartLimitBurst":
			p.option(&sdunit.UnitOption{Section: "Unit", Name: o.Name, Value: o.Value})
		case "KillMode":
			switch m := KillMode(v); m {
			case KillControlGroup, KillMixed, KillProcess, KillNone:
				s.KillMode = m
			default:
				p.warnf(o, "unknown kill mode, ignoring")
			}
		case "KillSignal":
			sig, err := parseSignal(v)
			if err != nil {
				p.warnf(o, "%v, ignoring", err)
				return
			}
			s.KillSignal = sig
		case "SendSIGKILL":
			boolean(&s.SendSIGKILL)
		case "Environment":
			if v == "" {
				s.Environment = nil
				return
			}
			s.Environment = mergeEnv(s.Environment, parseEnvironment(v, func(msg string) { p.warnf(o, "%s", msg) })...)
		case "EnvironmentFile":
			if v == "" {
				s.EnvironmentFiles = nil
				return
			}
			f := EnvFile{Path: v}
			if rest, ok := strings.CutPrefix(v, "-"); ok {
				f = EnvFile{Path: rest, Optional: true}
			}
			if !strings.HasPrefix(f.Path, "/") {
				p.warnf(o, "not an absolute path, ignoring")
				return
			}
			s.EnvironmentFiles = append(s.EnvironmentFiles, f)
		case "User":
			s.User = v
		case "Group":
			s.Group = v
		case "WorkingDirectory":
			dir, optional := strings.CutPrefix(v, "-")
			if dir != "" && dir != "~" && !strings.HasPrefix(dir, "/") {
				p.warnf(o, "not an absolute path, ignoring")
				return
			}
			s.WorkingDirectory, s.WorkingDirectoryOptional = dir, optional
		default:
			p.warnf(o, "not supported by the builtin manager, ignoring")
		}
	case "Install":
		switch o.Name {
		case "WantedBy":
			list(&s.WantedBy)
		case "RequiredBy":
			list(&s.RequiredBy)
		case "Alias":
			list(&s.Alias)
		case "Also":
			list(&s.Also)
		default:
			p.warnf(o, "unknown setting, ignoring")
		}
	default:
		p.warnf(o, "unknown section, ignoring")
	}
}

func (p *specParser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// conditionChecks are the Condition*= and Assert*= checks the builtin
// manager evaluates: those on paths.
var conditionChecks = map[string]bool{
	"PathExists": true, "PathExistsGlob": true, "PathIsDirectory": true, "PathIsSymbolicLink": true,
	"PathIsMountPoint": true, "PathIsReadWrite": true, "DirectoryNotEmpty": true,
	"FileNotEmpty": true, "FileIsExecutable": true,
}

func (p *specParser) condition(o *sdunit.UnitOption, dst *[]Condition, check string) {
	v := strings.TrimSpace(o.Value)
	if v == "" {
		*dst = nil
		return
	}
	if !conditionChecks[check] {
		p.warnf(o, "not supported by the builtin manager, ignoring")
		return
	}
	c := Condition{Check: check}
	if rest, ok := strings.CutPrefix(v, "|"); ok {
		c.Trigger, v = true, strings.TrimLeft(rest, " ")
	}
	if rest, ok := strings.CutPrefix(v, "!"); ok {
		c.Negate, v = true, strings.TrimLeft(rest, " ")
	}
	if !strings.HasPrefix(v, "/") {
		p.warnf(o, "not an absolute path, ignoring")
		return
	}
	c.Value = v
	*dst = append(*dst, c)
}

// finish applies the defaults that depend on other settings and refuses
// what systemd's service_verify refuses.
func (p *specParser) finish() error {
	s := p.spec
	if p.err != nil {
		return p.err
	}
	if s.Type == "" {
		s.Type = Simple
		if len(s.ExecStart) == 0 {
			s.Type = Oneshot
		}
	}
	if s.Type == Oneshot && !p.set["Service.TimeoutStartSec"] {
		s.TimeoutStart = Infinity // systemd waits for a oneshot as long as it takes
	}
	if s.NotifyAccess == "" {
		s.NotifyAccess = NotifyNone
		if s.Type == Notify {
			s.NotifyAccess = NotifyMain
		}
	}
	switch {
	case len(s.ExecStart) == 0 && len(s.ExecStop) == 0:
		return errors.New("service has no ExecStart= and no ExecStop=")
	case s.Type != Oneshot && len(s.ExecStart) == 0:
		return fmt.Errorf("service has no ExecStart=, which only Type=oneshot allows")
	case len(s.ExecStart) == 0 && !s.RemainAfterExit:
		return errors.New("service has no ExecStart= and not RemainAfterExit=yes")
	case s.Type != Oneshot && len(s.ExecStart) > 1:
		return fmt.Errorf("service has more than one ExecStart=, which only Type=oneshot allows")
	case s.Type == Oneshot && (s.Restart == RestartAlways || s.Restart == RestartOnSuccess):
		return fmt.Errorf("a Type=oneshot service cannot have Restart=%s", s.Restart)
	}
	return nil
}

// parseBool is systemd's parse_boolean.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", v)
}

// parseSignal reads a signal as a name (SIGTERM, TERM) or a number.
func parseSignal(v string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 || n >= 65 {
			return 0, fmt.Errorf("signal %d out of range", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(v)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", v)
}

// signalName is how systemd names a signal in messages ("TERM").
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return strings.TrimPrefix(n, "SIG")
	}
	return strconv.Itoa(int(sig))
}

// parseExitStatusSet reads space-separated exit statuses (0 to 255) and
// signal names (SIGKILL); what does not read is skipped, the error saying
// what.
func parseExitStatusSet(v string) (ExitStatusSet, error) {
	var set ExitStatusSet
	var bad []string
	for _, w := range strings.Fields(v) {
		if n, err := strconv.Atoi(w); err == nil {
			if n < 0 || n > 255 {
				bad = append(bad, w)
				continue
			}
			set.Statuses = append(set.Statuses, n)
			continue
		}
		if sig := unix.SignalNum(strings.ToUpper(w)); sig != 0 && strings.HasPrefix(strings.ToUpper(w), "SIG") {
			set.Signals = append(set.Signals, sig)
			continue
		}
		bad = append(bad, w)
	}
	if len(bad) > 0 {
		return set, fmt.Errorf("not an exit status or signal: %s", strings.Join(bad, " "))
	}
	return set, nil
}

// Exit is how a process ended, as systemd's ExecMainCode/ExecMainStatus.
type Exit struct {
	// Code is exited, killed or dumped; empty when it is not known (a
	// process that was not the manager's child).
	Code   string
	Status int
}

// Exit codes.
const (
	Exited = "exited"
	Killed = "killed"
	Dumped = "dumped"
)

// exitFromWaitStatus reads a wait status.
func exitFromWaitStatus(ws unix.WaitStatus) Exit {
	switch {
	case ws.Exited():
		return Exit{Code: Exited, Status: ws.ExitStatus()}
	case ws.Signaled() && ws.CoreDump():
		return Exit{Code: Dumped, Status: int(ws.Signal())}
	case ws.Signaled():
		return Exit{Code: Killed, Status: int(ws.Signal())}
	}
	return Exit{}
}

// String is systemd's "code=exited, status=1/FAILURE".
func (e Exit) String() string {
	switch e.Code {
	case Exited:
		return fmt.Sprintf("code=exited, status=%d/%s", e.Status, exitStatusName(e.Status))
	case Killed, Dumped:
		return fmt.Sprintf("code=%s, status=%d/%s", e.Code, e.Status, signalName(syscall.Signal(e.Status)))
	}
	return "code=unknown"
}

// Exit statuses the manager gives a process that it could not start, as
// systemd's (systemd.exec(5), "Process exit codes").
const (
	exitChdir  = 200
	exitExec   = 203
	exitStdout = 209
	exitUser   = 217
	exitGroup  = 216
)

func exitStatusName(status int) string {
	switch status {
	case 0:
		return "SUCCESS"
	case 1:
		return "FAILURE"
	case 2:
		return "INVALIDARGUMENT"
	case 3:
		return "NOTIMPLEMENTED"
	case 4:
		return "NOPERMISSION"
	case 5:
		return "NOTINSTALLED"
	case 6:
		return "NOTCONFIGURED"
	case 7:
		return "NOTRUNNING"
	case exitChdir:
		return "CHDIR"
	case exitExec:
		return "EXEC"
	case exitStdout:
		return "STDOUT"
	case exitGroup:
		return "GROUP"
	case exitUser:
		return "USER"
	}
	return strconv.Itoa(status)
}

// cleanSignals are the signals a daemon's main process may die of
// cleanly: systemd counts them as success.
var cleanSignals = []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE}

// mainResult is the Result of a main process that ended as e, by
// systemd's is_clean_exit: exit status 0, the clean signals (for all
// types but oneshot) and SuccessExitStatus are success. An unknown exit
// (a process that was not the manager's child) is success too, as
// systemd treats a main process it cannot wait for.
func (s *Spec) mainResult(e Exit) Result {
	if e.Code == "" || s.SuccessExitStatus.Has(e) {
		return ResultSuccess
	}
	switch e.Code {
	case Exited:
		if e.Status == 0 {
			return ResultSuccess
		}
		return ResultExitCode
	case Killed:
		if s.Type != Oneshot {
			for _, sig := range cleanSignals {
				if int(sig) == e.Status {
					return ResultSuccess
				}
			}
		}
		return ResultSignal
	}
	return ResultCoreDump
}

// controlResult is the Result of a control process (ExecStartPre and the
// like) that ended as e: only exit status 0 is success.
func controlResult(e Exit) Result {
	switch e.Code {
	case Exited:
		if e.Status == 0 {
			return ResultSuccess
		}
		return ResultExitCode
	case Killed:
		return ResultSignal
	case Dumped:
		return ResultCoreDump
	}
	return ResultSuccess
}

// ShouldRestart is systemd's service_shall_restart: whether a unit that
// stopped by itself with result, its main process last ending as exit,
// is restarted (systemd.service(5), the table under Restart=).
func (s *Spec) ShouldRestart(result Result, exit Exit) bool {
	if s.RestartPreventExitStatus.Has(exit) {
		return false
	}
	if s.RestartForceExitStatus.Has(exit) {
		return true
	}
	switch s.Restart {
	case RestartAlways:
		return true
	case RestartOnSuccess:
		return result == ResultSuccess
	case RestartOnFailure:
		return result != ResultSuccess
	case RestartOnAbnormal:
		return result != ResultSuccess && result != ResultExitCode
	case RestartOnWatchdog:
		return result == ResultWatchdog
	case RestartOnAbort:
		return result == ResultSignal || result == ResultCoreDump
	}
	return false
}
